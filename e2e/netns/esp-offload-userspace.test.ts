// The userspace ESP engine's kernel offloads (native/esp/esp_offload.c): where the kernel offers
// them, TUN TSO (IFF_VNET_HDR + TUNSETOFFLOAD), UDP GSO (UDP_SEGMENT) and UDP GRO (UDP_GRO) are
// switched on and used — their counters move during a TCP transfer — and with every offload
// forced off (KIPSEC_ESP_OFFLOADS=none, the fallback ladder's last rung) the same bytes arrive.
// Both runs carry the same random file each way through two fresh namespaces (bench/esp-pair.ts),
// compared byte for byte, and IKE datagrams sent during the transfer reach JS unchanged (the
// RFC 3948 §2.2 non-ESP marker is checked per datagram after a GRO receive is cut apart).
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { espTunnelPair, INNER, type EspSide, type EspStatsJson } from '../../bench/esp-pair.js';
import type { Netns } from '../lib/netns.js';

const BYTES = 8 * 1024 * 1024;
const IKE_DATAGRAMS = 16;

/** socat from `from` to `toIp` in `to`: the file `name` in dir, received as `name`.recv. */
async function transfer(dir: string, name: string, from: Netns, to: Netns, toIp: string): Promise<Buffer> {
  const recv = join(dir, `${name}.recv`);
  const server = to.spawn('socat', ['-u', `TCP-LISTEN:5001,bind=${toIp},reuseaddr`, `OPEN:${recv},creat,trunc`]);
  const done = new Promise<number | null>((r) => server.once('exit', (code) => r(code)));
  let client = { code: 1, stdout: '', stderr: '' };
  for (let i = 0; i < 40 && client.code !== 0; i++) { // the listener may not be up yet: retry, bounded
    client = await from.run('socat', ['-u', `OPEN:${join(dir, name)}`, `TCP:${toIp}:5001,connect-timeout=2`], { timeoutMs: 60_000, check: false });
    if (client.code !== 0) await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(client.code, 0, `socat client: ${client.stderr}`);
  assert.equal(await Promise.race([done, new Promise<string>((r) => setTimeout(() => r('timeout'), 30_000))]), 0, 'socat server finished');
  return readFileSync(recv);
}

/** IKE datagrams (marker + a counter + filler, sizes 40..1400) from a to b while traffic runs; b must pass each up unchanged. */
async function ikeRoundTrip(a: EspSide, b: EspSide): Promise<void> {
  const sent = Array.from({ length: IKE_DATAGRAMS }, (_, i) => Buffer.concat([Buffer.alloc(4), Buffer.from([i]), randomBytes(35 + i * 90)]).toString('hex'));
  for (const d of sent) await a.command({ op: 'sendIke', data: d });
  const got: string[] = [];
  for (let i = 0; i < IKE_DATAGRAMS; i++) got.push(await b.nextIke());
  assert.deepEqual(got.sort(), [...sent].sort(), 'every IKE datagram reached JS byte for byte');
}

const n = (s: EspStatsJson, c: string): bigint => BigInt(s.counters[c] ?? '-1');

async function run(t: TestContext, offloads: string | undefined, a2b: Buffer, b2a: Buffer): Promise<{ a: EspStatsJson; b: EspStatsJson }> {
  const { a, b } = await espTunnelPair(t, offloads === undefined ? {} : { offloads });
  const dir = mkdtempSync(join(tmpdir(), 'kipsec-esp-offload-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'a2b'), a2b);
  writeFileSync(join(dir, 'b2a'), b2a);
  const [, gotB] = await Promise.all([ikeRoundTrip(a, b), transfer(dir, 'a2b', a.ns, b.ns, INNER.b)]);
  assert.ok(gotB.equals(a2b), `a→b: ${gotB.length} bytes received of ${a2b.length}, equal: ${gotB.equals(a2b)}`);
  const gotA = await transfer(dir, 'b2a', b.ns, a.ns, INNER.a);
  assert.ok(gotA.equals(b2a), `b→a: ${gotA.length} bytes received of ${b2a.length}, equal: ${gotA.equals(b2a)}`);
  const s = { a: await a.stats(), b: await b.stats() };
  for (const x of [...s.a.sas, ...s.b.sas]) assert.equal(x.drops['auth'], '0', `${x.direction} 0x${x.spi.toString(16)}: ICV failures`);
  for (const x of [s.a, s.b]) assert.equal(n(x, 'malformedOutbound'), 0n, 'no TUN read was malformed');
  return s;
}

test('userspace ESP offloads (TUN TSO, UDP GSO, UDP GRO) are used where the kernel offers them, and forced off the same bytes arrive both ways (native/esp/esp_offload.c)', async (t) => {
  const a2b = randomBytes(BYTES);
  const b2a = randomBytes(BYTES / 4);
  let on: { a: EspStatsJson; b: EspStatsJson } | undefined;
  await t.test('offloads on (all the kernel offers)', async (t2) => { on = await run(t2, undefined, a2b, b2a); });
  assert.ok(on);
  for (const [side, s] of Object.entries(on)) {
    const o = s.offloads;
    t.diagnostic(`${side}: offloads ${JSON.stringify(o)}; tunSuperPackets ${s.counters['tunSuperPackets']} → tunSegments ${s.counters['tunSegments']}, gsoSends ${s.counters['gsoSends']} (${s.counters['gsoDatagrams']} datagrams), groReceives ${s.counters['groReceives']} (${s.counters['groDatagrams']} datagrams), gsoFallbacks ${s.counters['gsoFallbacks']}`);
    // Each offload the probe switched on carried part of the traffic: the sender's TUN handed over
    // TCP super-packets and its socket sent GSO runs; the receiver's socket got GRO receives.
    if (o['tunTso']) assert.ok(n(s, 'tunSuperPackets') > 0n && n(s, 'tunSegments') > n(s, 'tunSuperPackets'), `${side}: TSO super-packets cut into segments`);
    if (o['udpGso']) assert.ok(n(s, 'gsoSends') > 0n && n(s, 'gsoDatagrams') > n(s, 'gsoSends'), `${side}: GSO sends of several datagrams`);
    if (o['udpGro'] && on[side === 'a' ? 'b' : 'a'].offloads['udpGso']) assert.ok(n(s, 'groReceives') > 0n && n(s, 'groDatagrams') > n(s, 'groReceives'), `${side}: GRO receives cut apart`);
  }
  let off: { a: EspStatsJson; b: EspStatsJson } | undefined;
  await t.test('every offload forced off (KIPSEC_ESP_OFFLOADS=none)', async (t2) => { off = await run(t2, 'none', a2b, b2a); });
  assert.ok(off);
  for (const [side, s] of Object.entries(off)) {
    assert.deepEqual(s.offloads, { udpGso: false, udpGro: false, tunVnetHdr: false, tunCsum: false, tunTso: false }, `${side}: nothing probed`);
    for (const c of ['gsoSends', 'groReceives', 'tunSuperPackets']) assert.equal(n(s, c), 0n, `${side}: ${c} stays 0 with the offloads off`);
  }
});
