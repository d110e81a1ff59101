// The userspace ESP data path (issue 12) on real parts: two namespaces on a veth, each with a TUN
// device and the native engine (bench/esp-peer.ts, fixed keys, no IKE), routes 10.1.0.0/24 ↔
// 10.2.0.0/24 into the TUN. Ping and a TCP transfer go through, byte for byte, and tcpdump on the
// veth sees only ESP in UDP 4500 — after the same probe was shown to see plaintext when the
// tunnel's routes are replaced by plain ones (a probe that cannot see plaintext proves nothing).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { classifyPcapFile, formatReport, WireCapture } from '../lib/capture.js';
import { espTunnelPair, INNER, WIRE } from '../../bench/esp-pair.js';

const PODS = [{ node: 'a', cidr: INNER.aNet }, { node: 'b', cidr: INNER.bNet }];
const TRANSFER_BYTES = 4 << 20;

test('userspace ESP between two namespaces: ping and a 4 MiB TCP transfer arrive intact, the wire carries only ESP-in-UDP 4500, and the probe sees plaintext without the tunnel', async (t) => {
  const { a, b } = await espTunnelPair(t);
  const dir = mkdtempSync(join(tmpdir(), 'kipsec-esp-e2e-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));

  const wire = await WireCapture.start(t, a.ns, { iface: 'eth0', filter: ['ip'] });
  const ping = await a.ns.run('ping', ['-c', '3', '-i', '0.2', '-W', '2', '-I', INNER.a, INNER.b], { timeoutMs: 20_000 });
  assert.match(ping.stdout, /3 received/);

  const sent = randomBytes(TRANSFER_BYTES);
  writeFileSync(join(dir, 'send'), sent);
  const server = b.ns.spawn('socat', ['-u', `TCP-LISTEN:5001,bind=${INNER.b},reuseaddr`, `OPEN:${join(dir, 'recv')},creat,trunc`]);
  const serverDone = new Promise<number | null>((r) => server.once('exit', (code) => r(code)));
  let client = { code: 1, stdout: '', stderr: '' };
  for (let i = 0; i < 40 && client.code !== 0; i++) { // the listener may not be up yet: retry, bounded
    client = await a.ns.run('socat', ['-u', `OPEN:${join(dir, 'send')}`, `TCP:${INNER.b}:5001,connect-timeout=2`], { timeoutMs: 60_000, check: false });
    if (client.code !== 0) await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(client.code, 0, `socat client: ${client.stderr}`);
  const serverCode = await Promise.race([serverDone, new Promise<string>((r) => setTimeout(() => r('timeout'), 30_000))]);
  assert.equal(serverCode, 0, 'socat server finished');
  const got = readFileSync(join(dir, 'recv'));
  assert.equal(got.length, sent.length);
  assert.ok(got.equals(sent), 'received bytes equal sent bytes');

  const cap = await wire.stop();
  assert.ok(cap.complete, `capture incomplete: ${cap.stderr}`);
  const report = classifyPcapFile(cap.file, { podCidrs: PODS });
  assert.equal(report.plaintextBetweenPods, 0, formatReport(report));
  assert.ok(report.espInUdp > 2000, `ESP-in-UDP packets: ${report.espInUdp}`);
  assert.equal(report.packets, report.espInUdp, `every IPv4 packet on the veth is ESP in UDP 4500: ${formatReport(report)}`);

  const [sa, sb] = [await a.stats(), await b.stats()];
  const out = sa.sas.find((s) => s.direction === 'out')!;
  const inB = sb.sas.find((s) => s.direction === 'in')!;
  assert.ok(BigInt(out.packets) > 2000n && BigInt(inB.packets) > 2000n, `a out ${out.packets}, b in ${inB.packets}`);
  for (const s of [...sa.sas, ...sb.sas]) assert.equal(s.drops['auth'], '0', `${s.direction} ICV failures`);
  t.diagnostic(`a→b: ${out.packets} ESP packets, ${out.bytes} inner bytes; wire: ${report.espInUdp} ESP-in-UDP packets of ${report.packets}`);

  // The same probe, the tunnel's routes replaced by plain routes over the veth: it must see plaintext.
  await a.ns.run('ip', ['route', 'replace', INNER.bNet, 'via', WIRE.b, 'src', INNER.a]);
  await b.ns.run('ip', ['route', 'replace', INNER.aNet, 'via', WIRE.a, 'src', INNER.b]);
  const probe = await WireCapture.start(t, a.ns, { iface: 'eth0', filter: ['ip'] });
  const plain = await a.ns.run('ping', ['-c', '2', '-i', '0.2', '-W', '2', '-I', INNER.a, INNER.b], { timeoutMs: 20_000 });
  assert.match(plain.stdout, /2 received/);
  const pr = classifyPcapFile((await probe.stop()).file, { podCidrs: PODS });
  assert.ok(pr.plaintextBetweenPods >= 4 && (pr.plaintextByProtocol['icmp'] ?? 0) >= 4, `the probe saw plaintext ICMP: ${formatReport(pr)}`);
});
