// Kernel lane: the userspace ESP data path against kernel ESP, so the two data paths are shown to
// agree on the wire (RFC 4303, RFC 3948 ESP in UDP). One kipsec agent with `--datapath userspace`
// (ns A, one local address) holds four tunnels:
//   gcm     ↔ charon with kernel ESP, AES-GCM-16-128, kipsec initiates, kipsec rekeys the Child SA
//   chacha  ↔ charon with kernel ESP, ChaCha20-Poly1305, charon initiates and rekeys
//   cbc     ↔ charon with kernel ESP, AES-CBC-256 + HMAC-SHA2-256-128 with ECP-256 PFS, kipsec initiates
//   kk      ↔ a second kipsec agent on kernel XFRM (ns C), AES-GCM-16-256, C initiates; both rekey
// On each: SPIs equal on both ends, pings both ways, a 1 MiB TCP transfer verified byte for byte,
// and Child SA rekeys under a 10/s ping with no ping lost (RFC 7296 §1.3.3, §2.8).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lan, type Netns } from '../lib/netns.js';
import { StrongSwan } from '../lib/strongswan.js';
import { AgentProcess, ContinuousPing, pollUntil, tunnelYaml } from './agent-harness.js';
import { swanctlConf } from './agent-swan.js';
import { prepareVm } from './agent-vm.js';

prepareVm();
const PSK = 'kipsec e2e userspace interop: correct horse battery staple';
const A = '192.0.2.1';
const C = '192.0.2.5';

interface Tunnel { readonly name: string; readonly n: number; readonly peer: string; readonly esp: string; readonly kipsecStarts: boolean; readonly suite: RegExp }
const SWAN: readonly Tunnel[] = [
  { name: 'gcm', n: 1, peer: '192.0.2.2', esp: 'aes128gcm16', kipsecStarts: true, suite: /^aes128gcm16/ },
  { name: 'chacha', n: 2, peer: '192.0.2.3', esp: 'chacha20poly1305', kipsecStarts: false, suite: /^chacha20poly1305/ },
  { name: 'cbc', n: 3, peer: '192.0.2.4', esp: 'aes256-sha256-ecp256', kipsecStarts: true, suite: /^aes256-sha256/ },
];
const KK: Tunnel = { name: 'kk', n: 4, peer: C, esp: 'aes256gcm16', kipsecStarts: false, suite: /^aes256gcm16/ };

async function transfer(dir: string, from: Netns, to: Netns, toIp: string, bytes: number): Promise<void> {
  const sent = randomBytes(bytes);
  const src = join(dir, `send-${toIp}`); const dst = join(dir, `recv-${toIp}`);
  writeFileSync(src, sent);
  const server = to.spawn('socat', ['-u', `TCP-LISTEN:5001,bind=${toIp},reuseaddr`, `OPEN:${dst},creat,trunc`]);
  const done = new Promise<number | null>((r) => server.once('exit', (code) => r(code)));
  let client = { code: 1, stdout: '', stderr: '' };
  for (let i = 0; i < 40 && client.code !== 0; i++) { // the listener may not be up yet: bounded retry
    client = await from.run('socat', ['-u', `OPEN:${src}`, `TCP:${toIp}:5001,connect-timeout=2`], { timeoutMs: 60_000, check: false });
    if (client.code !== 0) await new Promise((r) => setTimeout(r, 150));
  }
  assert.equal(client.code, 0, `socat to ${toIp}: ${client.stderr}`);
  assert.equal(await Promise.race([done, new Promise<string>((r) => setTimeout(() => r('timeout'), 60_000))]), 0, `socat server on ${toIp} finished`);
  assert.ok(readFileSync(dst).equals(sent), `the ${bytes} bytes to ${toIp} arrived unchanged`);
}

test('kipsec userspace ESP ↔ charon kernel ESP (AES-GCM, ChaCha20-Poly1305, AES-CBC+SHA2, both roles) and ↔ kipsec on kernel XFRM: SPIs agree, pings both ways, byte-identical TCP, Child SA rekeys under ping without loss', async (t) => {
  const [a, b, c] = await lan(t, [`${A}/24`, '192.0.2.2/24', `${C}/24`]);
  for (const x of SWAN.slice(1)) await b!.run('ip', ['addr', 'add', `${x.peer}/24`, 'dev', 'eth0']);
  for (const x of [...SWAN, KK]) {
    await a!.run('ip', ['addr', 'add', `10.1.${x.n}.1/24`, 'dev', 'lo']);
    await (x === KK ? c! : b!).run('ip', ['addr', 'add', `10.2.${x.n}.1/24`, 'dev', 'lo']);
  }
  const dir = mkdtempSync(join(tmpdir(), 'kipsec-us-interop-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));

  const swan = await StrongSwan.start(t, b!, {
    mode: 'kernel',
    swanctl: swanctlConf(SWAN.map((x) => ({ name: x.name, local: x.peer, remote: A, localTs: `10.2.${x.n}.0/24`, remoteTs: `10.1.${x.n}.0/24`, proposals: 'aes256gcm16-prfsha384-x25519', espProposals: x.esp, auth: { psk: PSK } }))),
  });
  const yaml = (x: Tunnel, local: string, remote: string, ls: string, rs: string, initiate: boolean): string =>
    tunnelYaml({ name: x.name, local, remote, localSubnets: [ls], remoteSubnets: [rs], esp: [x.esp], startAction: initiate ? 'initiate' : 'respond' });
  const config = [...SWAN, KK].map((x) => yaml(x, A, x.peer, `10.1.${x.n}.0/24`, `10.2.${x.n}.0/24`, x.kipsecStarts)).join('---\n');
  const us = await AgentProcess.start(t, a!, { config, files: { psk: `${PSK}\n` }, args: ['--datapath', 'userspace'] });
  const kk = await AgentProcess.start(t, c!, { config: yaml(KK, C, A, `10.2.${KK.n}.0/24`, `10.1.${KK.n}.0/24`, true), files: { psk: `${PSK}\n` }, args: ['--datapath', 'kernel'] });
  const why = async (): Promise<string> => `userspace agent:\n${await us.table()}\n${us.log().slice(-4000)}\nkernel agent:\n${await kk.table()}\nswanctl --list-sas:\n${await swan.listSas()}\ncharon log tail:\n${swan.log().slice(-3000)}`;

  for (const x of SWAN.filter((s) => !s.kipsecStarts)) {
    const r = await swan.initiate(x.name, 60);
    assert.equal(r.code, 0, `charon could not initiate ${x.name}:\n${r.stdout}${r.stderr}\n${await why()}`);
  }
  for (const x of [...SWAN, KK]) await us.waitEstablished(x.name, 120_000).catch(async (e: unknown) => { throw new Error(`${String(e)}\n${await why()}`, { cause: e }); });
  assert.equal((await us.status()).datapath, 'userspace');
  assert.equal((await kk.status()).datapath, 'kernel');

  /** Our only installed Child SA and the peer's mirror each other (our inbound is its outbound). */
  const agreed = (x: Tunnel, not?: string) => pollUntil(`${x.name}: the peer's Child SA mirrors ours`, 60_000, async () => {
    const ours = (await us.tunnel(x.name)).children.filter((k) => k.state === 'installed');
    const o = ours[0];
    if (ours.length !== 1 || !o || o.spiIn === not) return undefined;
    const theirs = x === KK
      ? (await kk.tunnel(x.name)).children.filter((k) => k.state === 'installed').map((k) => ({ spiIn: k.spiIn, spiOut: k.spiOut }))
      : (await swan.childSas()).filter((k) => k.name === x.name && k.state === 'INSTALLED');
    return theirs.length === 1 && theirs[0]!.spiOut === o.spiIn && theirs[0]!.spiIn === o.spiOut ? o : undefined;
  }, why);

  for (const x of [...SWAN, KK]) {
    const peerNs = x === KK ? c! : b!;
    const o = await agreed(x);
    assert.match(o.suite, x.suite, `${x.name}: ESP suite ${o.suite}`);
    for (const [from, src, dst] of [[a!, `10.1.${x.n}.1`, `10.2.${x.n}.1`], [peerNs, `10.2.${x.n}.1`, `10.1.${x.n}.1`]] as const) {
      const p = await from.run('ping', ['-c', '3', '-i', '0.2', '-W', '3', '-I', src, dst], { timeoutMs: 30_000, check: false });
      assert.match(p.stdout, /3 received/, `${x.name}: ${src} → ${dst}\n${p.stdout}${p.stderr}\n${await why()}`);
    }
    await transfer(dir, a!, peerNs, `10.2.${x.n}.1`, 1 << 20);
    t.diagnostic(`${x.name}: ${o.suite}, SPIs in ${o.spiIn} out ${o.spiOut} agree with the ${x === KK ? 'kernel agent' : 'charon'}; pings both ways; 1 MiB TCP byte-identical`);
  }

  // Child SA rekeys under a 10/s ping on every tunnel: by us, by charon, and both ways on kk.
  const pings = new Map([...SWAN, KK].map((x) => [x.name, new ContinuousPing(a!, `10.1.${x.n}.1`, `10.2.${x.n}.1`)]));
  await new Promise((r) => setTimeout(r, 1_500));
  const rekeys: Array<[Tunnel, string, () => Promise<void>]> = [
    [SWAN[0]!, 'kipsec (userspace)', async () => { const r = await us.kipsec(['rekey', 'gcm', '--child']); assert.equal(r.code, 0, r.stderr); }],
    [SWAN[1]!, 'charon', async () => { await swan.swanctl(['--rekey', '--child', 'chacha']); }],
    [SWAN[2]!, 'kipsec (userspace)', async () => { const r = await us.kipsec(['rekey', 'cbc', '--child']); assert.equal(r.code, 0, r.stderr); }],
    [KK, 'kipsec (kernel)', async () => { const r = await kk.kipsec(['rekey', 'kk', '--child']); assert.equal(r.code, 0, r.stderr); }],
    [KK, 'kipsec (userspace)', async () => { const r = await us.kipsec(['rekey', 'kk', '--child']); assert.equal(r.code, 0, r.stderr); }],
  ];
  for (const [x, by, run] of rekeys) {
    const before = (await agreed(x)).spiIn;
    await run();
    const now = await agreed(x, before);
    if (x === SWAN[2]) assert.match(now.suite, /ecp256/, 'the CBC tunnel rekeyed with a fresh ECP-256 exchange (PFS)');
    t.diagnostic(`${x.name}: Child SA rekey by ${by}: in ${before} -> ${now.spiIn}`);
  }
  await new Promise((r) => setTimeout(r, 2_000));
  for (const [name, ping] of pings) {
    const pr = await ping.stop();
    assert.ok(pr.wasRunning && pr.sent > 30, `${name}: ping ran (${pr.sent} sent)`);
    assert.deepEqual(pr.lost, [], `${name}: pings lost across the rekeys: ${pr.lost.join(', ')}\n${pr.tail}\n${await why()}`);
    t.diagnostic(`${name}: ${pr.received}/${pr.sent} pings across the rekeys, longest gap ${pr.longestGapMs} ms`);
  }
  assert.equal(await us.stop(), 0);
  assert.equal(await kk.stop(), 0);
});
