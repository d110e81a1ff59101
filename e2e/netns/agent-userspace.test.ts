// Netns lane (host kernel, which has XFRM policies but no esp4 — the point, issue 12): two real
// `kipsec agent --standalone` processes, one with --datapath userspace and one with --datapath auto
// (which must pick userspace here), on a veth; PSK, AES-GCM. IKE establishes over the ESP engine's
// 4500 socket, pings pass both ways, a TCP transfer arrives byte for byte, the wire carries only
// UDP (IKE 500 then ESP-in-UDP 4500), a Child SA rekey under a 10 Hz ping loses nothing, and
// SIGTERM exits 0 and takes the TUN device and its routes away. Last, the same capture is shown to
// see plaintext once plain routes replace the tunnel (a probe that cannot see plaintext proves nothing).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { classifyPcapFile, formatReport, WireCapture } from '../lib/capture.js';
import { pair, type Netns } from '../lib/netns.js';
import { AgentProcess, ContinuousPing, pollUntil, tunnelYaml } from '../vm/agent-harness.js';
import type { ContinuousPingResult } from '../lib/traffic.js';

const PSK = 'kipsec e2e userspace: correct horse battery staple';
const PODS = [{ node: 'a', cidr: '10.1.0.0/24' }, { node: 'b', cidr: '10.2.0.0/24' }];
const TRANSFER_BYTES = 2 << 20;

test('kipsec agent --datapath userspace refuses an ESP proposal its engine cannot key (HMAC-SHA-1): the field, the data path, exit 2, nothing bound', async (t) => {
  const [na] = await pair(t, { a: '192.0.2.1/24', b: '192.0.2.2/24' });
  const config = tunnelYaml({ name: 'cbc', local: '192.0.2.1', remote: '192.0.2.2', localSubnets: ['10.1.0.0/24'], remoteSubnets: ['10.2.0.0/24'], esp: ['aes256-sha1'] });
  const e = await AgentProcess.start(t, na, { config, files: { psk: `${PSK}\n` }, args: ['--datapath', 'userspace'] }).catch((x: Error) => x);
  assert.ok(e instanceof Error, 'agent must not start');
  assert.match(e.message, /exited 2 before listening/);
  assert.match(e.message, /cbc spec\.esp\.proposals\[0\]: "aes256-sha1" has an integrity algorithm other than HMAC-SHA2; --datapath userspace supports only aes128gcm16, aes256gcm16, chacha20poly1305, or aes128\/aes256 with sha256, sha384 or sha512/);
  assert.notEqual((await na.run('ip', ['link', 'show', 'kipsec0'], { check: false })).code, 0, 'no TUN device');
});

async function transfer(dir: string, from: Netns, to: Netns, toIp: string): Promise<void> {
  const sent = randomBytes(TRANSFER_BYTES);
  writeFileSync(join(dir, 'send'), sent);
  const server = to.spawn('socat', ['-u', `TCP-LISTEN:5001,bind=${toIp},reuseaddr`, `OPEN:${join(dir, 'recv')},creat,trunc`]);
  const serverDone = new Promise<number | null>((r) => server.once('exit', (code) => r(code)));
  let client = { code: 1, stdout: '', stderr: '' };
  for (let i = 0; i < 40 && client.code !== 0; i++) { // the listener may not be up yet: retry, bounded
    client = await from.run('socat', ['-u', `OPEN:${join(dir, 'send')}`, `TCP:${toIp}:5001,connect-timeout=2`], { timeoutMs: 30_000, check: false });
    if (client.code !== 0) await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(client.code, 0, `socat client: ${client.stderr}`);
  const serverCode = await Promise.race([serverDone, new Promise<string>((r) => setTimeout(() => r('timeout'), 30_000))]);
  assert.equal(serverCode, 0, 'socat server finished');
  const got = readFileSync(join(dir, 'recv'));
  assert.equal(got.length, sent.length);
  assert.ok(got.equals(sent), 'received bytes equal sent bytes');
}

/** `kipsec rekey NAME --child` under a 10 Hz ping from 10.1.0.1 to 10.2.0.1; no ping may be lost. */
async function rekeyUnderPing(a: AgentProcess, na: Netns, name: string, before: string): Promise<ContinuousPingResult> {
  const ping = new ContinuousPing(na, '10.1.0.1', '10.2.0.1', { intervalMs: 100 });
  await new Promise((r) => setTimeout(r, 1_000));
  const r = await a.kipsec(['rekey', name, '--child']);
  assert.equal(r.code, 0, r.stderr);
  await pollUntil('the rekeyed Child SA alone', 20_000, async () => {
    const s = await a.tunnel(name);
    return s.children.length === 1 && s.children[0]!.spiIn !== before && s.children[0]!.state === 'installed' ? s : undefined;
  }, async () => JSON.stringify(await a.tunnel(name)));
  await new Promise((r) => setTimeout(r, 1_500));
  const pr = await ping.stop();
  assert.ok(pr.sent >= 20, `pings sent: ${pr.sent}`);
  assert.deepEqual(pr.lost, [], `lost across the rekey: ${pr.lost.join(', ')}\n${pr.tail}`);
  return pr;
}

test('kipsec agent --datapath userspace|auto: IKE over the ESP engine, ping both ways, a byte-identical TCP transfer, only UDP on the wire, a Child SA rekey under ping without loss, SIGTERM removes TUN and routes', async (t) => {
  const started = Date.now();
  const [na, nb] = await pair(t, { a: '192.0.2.1/24', b: '192.0.2.2/24' });
  await na.run('ip', ['addr', 'add', '10.1.0.1/24', 'dev', 'lo']);
  await nb.run('ip', ['addr', 'add', '10.2.0.1/24', 'dev', 'lo']);
  const dir = mkdtempSync(join(tmpdir(), 'kipsec-agent-us-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));

  const yaml = (local: string, remote: string, ls: string, rs: string, startAction: 'initiate' | 'respond'): string =>
    tunnelYaml({ name: 'us', local, remote, localSubnets: [ls], remoteSubnets: [rs], startAction });
  const wire = await WireCapture.start(t, na, { iface: 'eth0', filter: ['ip'] });
  const b = await AgentProcess.start(t, nb, { config: yaml('192.0.2.2', '192.0.2.1', '10.2.0.0/24', '10.1.0.0/24', 'respond'), files: { psk: `${PSK}\n` }, args: ['--datapath', 'auto'] });
  const a = await AgentProcess.start(t, na, { config: yaml('192.0.2.1', '192.0.2.2', '10.1.0.0/24', '10.2.0.0/24', 'initiate'), files: { psk: `${PSK}\n` }, args: ['--datapath', 'userspace'] });
  const up = await a.waitEstablished('us', 30_000);
  await b.waitEstablished('us', 30_000);
  assert.equal(up.natDetected, true, 'userspace forces UDP encapsulation (natTraversal always)');
  assert.equal((await a.status()).datapath, 'userspace');
  assert.equal((await b.status()).datapath, 'userspace', '--datapath auto picks userspace on a kernel without ESP');
  assert.match(b.log(), /"datapath":"userspace","reason":"the kernel refuses ESP states[^"]*","msg":"datapath chosen"/);
  assert.match(await a.table(), /datapath userspace/);
  const link = await na.run('ip', ['-o', 'link', 'show', 'kipsec0']);
  assert.match(link.stdout, /mtu 1406\b/, 'TUN MTU = 1500 - the largest ESP-in-UDP overhead (AES-CBC + HMAC-SHA2-512)');
  assert.match((await na.run('ip', ['route', 'show', '10.2.0.0/24'])).stdout, /dev kipsec0/);

  for (const [from, src, dst] of [[na, '10.1.0.1', '10.2.0.1'], [nb, '10.2.0.1', '10.1.0.1']] as const) {
    const ping = await from.run('ping', ['-c', '3', '-i', '0.2', '-W', '2', '-I', src, dst], { timeoutMs: 20_000, check: false });
    assert.match(ping.stdout, /3 received/, `${src} → ${dst}: ${ping.stdout}${ping.stderr}`);
  }
  await transfer(dir, na, nb, '10.2.0.1');

  // Child SA rekey under a 10 Hz ping: make-before-break in the engine, nothing lost.
  const pr = await rekeyUnderPing(a, na, 'us', up.children[0]!.spiIn);
  const after = await a.tunnel('us');
  assert.ok(after.children[0]!.packetsIn > 0, 'the new inbound SA carries the echo replies');

  const cap = await wire.stop();
  assert.ok(cap.complete, `capture incomplete: ${cap.stderr}`);
  const report = classifyPcapFile(cap.file, { podCidrs: PODS });
  assert.equal(report.plaintextBetweenPods, 0, formatReport(report));
  // With UDP GSO on (the agent's "data path up" log line lists the offloads) up to 64 ESP
  // datagrams cross the veth as one skb, which the capture sees as one packet.
  const gso = /"offloads":\[[^\]]*"udpGso"/.test(a.log());
  assert.ok(report.espInUdp > (gso ? 1000 / 64 : 1000), `ESP-in-UDP packets: ${report.espInUdp} (UDP GSO ${gso ? 'on' : 'off'})`);
  assert.equal(report.esp, report.espInUdp, 'no raw ESP (protocol 50): the userspace path always encapsulates');
  assert.equal(report.packets, report.espInUdp + report.ike + report.nattKeepalive, `only IKE, keepalives and ESP in UDP 4500 on the veth: ${formatReport(report)}`);
  t.diagnostic(`wire: ${report.espInUdp} ESP-in-UDP, ${report.ike} IKE of ${report.packets}; ping across rekey ${pr.received}/${pr.sent}, longest gap ${pr.longestGapMs} ms`);

  assert.equal(await a.stop(), 0);
  assert.equal(await b.stop(), 0);
  for (const ns of [na, nb]) {
    const l = await ns.run('ip', ['link', 'show', 'kipsec0'], { check: false });
    assert.notEqual(l.code, 0, 'the TUN device is gone');
    assert.doesNotMatch((await ns.run('ip', ['route'])).stdout, /kipsec0/);
  }
  assert.ok(!a.log().includes(PSK) && !b.log().includes(PSK));

  // The same probe with plain routes over the veth: it sees plaintext.
  await na.run('ip', ['route', 'add', '10.2.0.0/24', 'via', '192.0.2.2', 'src', '10.1.0.1']);
  await nb.run('ip', ['route', 'add', '10.1.0.0/24', 'via', '192.0.2.1', 'src', '10.2.0.1']);
  const plain = await WireCapture.start(t, na, { iface: 'eth0', filter: ['ip'] });
  const p = await na.run('ping', ['-c', '2', '-i', '0.2', '-W', '2', '-I', '10.1.0.1', '10.2.0.1'], { timeoutMs: 20_000 });
  assert.match(p.stdout, /2 received/);
  const pc = await plain.stop();
  const pr2 = classifyPcapFile(pc.file, { podCidrs: PODS });
  assert.ok(pr2.plaintextBetweenPods >= 4, `the probe sees plaintext: ${formatReport(pr2)}`);
  t.diagnostic(`wall time ${Date.now() - started} ms`);
});

test('kipsec agent --datapath userspace with AES-CBC + HMAC-SHA2-512-256 and ESN (RFC 3602, RFC 4868, RFC 4303 §2.2.1): ping both ways, a byte-identical TCP transfer, a Child SA rekey with PFS under ping without loss', async (t) => {
  const [na, nb] = await pair(t, { a: '192.0.2.1/24', b: '192.0.2.2/24' });
  await na.run('ip', ['addr', 'add', '10.1.0.1/24', 'dev', 'lo']);
  await nb.run('ip', ['addr', 'add', '10.2.0.1/24', 'dev', 'lo']);
  const dir = mkdtempSync(join(tmpdir(), 'kipsec-agent-us-cbc-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const esp = ['aes256-sha512-ecp256-esn'];
  const yaml = (local: string, remote: string, ls: string, rs: string, startAction: 'initiate' | 'respond'): string =>
    tunnelYaml({ name: 'cbc', local, remote, localSubnets: [ls], remoteSubnets: [rs], startAction, esp });
  const b = await AgentProcess.start(t, nb, { config: yaml('192.0.2.2', '192.0.2.1', '10.2.0.0/24', '10.1.0.0/24', 'respond'), files: { psk: `${PSK}\n` }, args: ['--datapath', 'userspace'] });
  const a = await AgentProcess.start(t, na, { config: yaml('192.0.2.1', '192.0.2.2', '10.1.0.0/24', '10.2.0.0/24', 'initiate'), files: { psk: `${PSK}\n` }, args: ['--datapath', 'userspace'] });
  const up = await a.waitEstablished('cbc', 30_000);
  await b.waitEstablished('cbc', 30_000);
  assert.match(up.children[0]!.suite, /^aes256-sha512/, `negotiated ESP suite ${up.children[0]!.suite}`);
  assert.match(await a.table(), /esn|ESN/i, 'the table names ESN');
  for (const [from, src, dst] of [[na, '10.1.0.1', '10.2.0.1'], [nb, '10.2.0.1', '10.1.0.1']] as const) {
    const ping = await from.run('ping', ['-c', '3', '-i', '0.2', '-W', '2', '-s', '1378', '-I', src, dst], { timeoutMs: 20_000, check: false });
    assert.match(ping.stdout, /3 received/, `${src} → ${dst} (a full-MTU packet): ${ping.stdout}${ping.stderr}`);
  }
  await transfer(dir, na, nb, '10.2.0.1');
  await rekeyUnderPing(a, na, 'cbc', up.children[0]!.spiIn);
  assert.equal(up.children[0]!.suite, 'aes256-sha512-esn', 'the IKE_AUTH Child SA has no key exchange of its own');
  assert.equal((await a.tunnel('cbc')).children[0]!.suite, 'aes256-sha512-ecp256-esn', 'the rekey ran a fresh ECP-256 exchange (PFS, RFC 7296 §1.3.1)');
  assert.equal(await a.stop(), 0);
  assert.equal(await b.stop(), 0);
});
