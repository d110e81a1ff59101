// The ESP engine's control plane: selectors from CIDRs, the stats codec, NAT peer moves, and SA /
// policy changes racing the data path (the table is swapped under the workers' feet; nothing may
// be freed while a worker holds it, and no packet may see a half-built table).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { cidrSelector } from '../../../src/esp/selector.js';
import { EspEngine } from '../../../src/esp/engine.js';
import { decodeStats, ESP_COUNTERS, ESP_DROP_REASONS, EspStatsError } from '../../../src/esp/codec.js';
import { SecretBytes } from '../../../src/common/secret.js';
import { ConfigError } from '../../../src/common/errors.js';
import { sealEsp, ipv4Udp, openEsp } from './reference.js';
import { SKIP, harness, until, keyFor, addInbound, addOutbound, saStats, IN_SPI, OUT_SPI, REQID } from './harness.js';

test('cidrSelector gives the inclusive range of IPv4 and IPv6 CIDRs and refuses bad ones', () => {
  assert.deepEqual(cidrSelector('10.1.0.77/24'), { start: '10.1.0.0', end: '10.1.0.255' });
  assert.deepEqual(cidrSelector('192.0.2.1'), { start: '192.0.2.1', end: '192.0.2.1' });
  assert.deepEqual(cidrSelector('0.0.0.0/0'), { start: '0.0.0.0', end: '255.255.255.255' });
  assert.deepEqual(cidrSelector('2001:db8:1::5/64'), { start: '2001:db8:1:0:0:0:0:0', end: '2001:db8:1:0:ffff:ffff:ffff:ffff' });
  assert.throws(() => cidrSelector('10.1.0.0/33'), ConfigError);
  assert.throws(() => cidrSelector('nonsense/8'), ConfigError);
});

test('decodeStats types every counter and drop reason, and refuses an addon that lost one', () => {
  const zeros = (names: readonly string[]) => Object.fromEntries(names.map((n) => [n, 0n]));
  const raw = { counters: zeros(ESP_COUNTERS), sas: [{ direction: 'in' as const, spi: 300, reqid: 1, active: true, packets: 1n, bytes: 2n, seq: 3n, softExpired: false, hardExpired: false, lastUseMs: null, drops: zeros(ESP_DROP_REASONS) }] };
  assert.equal(decodeStats(raw).sas[0]!.drops.replay, 0n);
  const { replay: _gone, ...fewer } = raw.sas[0]!.drops;
  assert.throws(() => decodeStats({ ...raw, sas: [{ ...raw.sas[0]!, drops: fewer }] }), (e: unknown) => e instanceof EspStatsError && /drops|replay/.test(e.message));
});

test('RFC 7296 §2.23 NAT float: updateSa moves the outbound peer, later packets go to the new port', { skip: SKIP }, async (t) => {
  const h = await harness(t);
  const ref = addOutbound(h, 'aes-gcm-16', keyFor('aes-gcm-16', 16));
  const moved = createSocket('udp4');
  await new Promise<void>((r) => moved.bind(0, '127.0.0.1', r));
  t.after(() => moved.close());
  const got: Buffer[] = [];
  moved.on('message', (m) => got.push(m));
  const p = ipv4Udp('10.1.0.5', '10.2.0.9', Buffer.from('x'));
  assert.equal(h.engine.inject(p), 'sent');
  h.engine.updateSa({ direction: 'out', spi: OUT_SPI, reqid: REQID }, { peer: { address: '127.0.0.1', port: moved.address().port } });
  assert.equal(h.engine.inject(p), 'sent');
  await until(() => h.received.length === 1 && got.length === 1, 'one datagram at each port');
  assert.equal(openEsp(ref, got[0]!).seq, 2);
});

test('outer IPv6: the engine binds ::1, ESP in UDP over IPv6 goes out to an IPv6 peer and comes back in', { skip: SKIP }, async (t) => {
  const engine = EspEngine.open({ tunFd: null, address: '::1', port: 0 });
  t.after(() => engine.close());
  const peer = createSocket('udp6');
  await new Promise<void>((r) => peer.bind(0, '::1', r));
  t.after(() => peer.close());
  const got: Buffer[] = [];
  peer.on('message', (m) => got.push(m));
  const inner: Buffer[] = [];
  engine.on((e) => { if (e.kind === 'inner') inner.push(e.data); });
  const key = keyFor('aes-gcm-16', 16);
  engine.addSa({ direction: 'out', spi: OUT_SPI, reqid: REQID, algorithm: 'aes-gcm-16', key: new SecretBytes(key), peer: { address: '::1', port: peer.address().port } });
  engine.addSa({ direction: 'in', spi: IN_SPI, reqid: REQID, algorithm: 'aes-gcm-16', key: new SecretBytes(key), sources: [cidrSelector('10.2.0.0/24')], destinations: [cidrSelector('10.1.0.0/24')] });
  engine.addPolicy({ id: 1, reqid: REQID, source: cidrSelector('10.1.0.0/24'), destination: cidrSelector('10.2.0.0/24') });
  const p = ipv4Udp('10.1.0.5', '10.2.0.9', Buffer.from('over v6'));
  assert.equal(engine.inject(p), 'sent');
  await until(() => got.length === 1, 'the datagram at the IPv6 peer');
  assert.deepEqual(openEsp({ algorithm: 'aes-gcm-16', key, spi: OUT_SPI }, got[0]!).payload, p);
  const back = ipv4Udp('10.2.0.9', '10.1.0.5', Buffer.from('and back'));
  await new Promise<void>((r, j) => peer.send(sealEsp({ algorithm: 'aes-gcm-16', key, spi: IN_SPI }, back, { seq: 1 }), engine.port, '::1', (e) => (e ? j(e) : r())));
  await until(() => inner.length === 1, 'the inner packet');
  assert.deepEqual(inner[0], back);
});

test('inbound hard byte limit (RFC 4301 §4.4.2.1 lifetimes): the packet reaching it passes, later ones are dropped as expired, one hard expire', { skip: SKIP }, async (t) => {
  const h = await harness(t);
  const ref = addInbound(h, 'aes-gcm-16', keyFor('aes-gcm-16', 16), { limits: { softBytes: 60n, hardBytes: 100n } });
  const p = ipv4Udp('10.2.0.9', '10.1.0.5', randomBytes(41)); // 69 bytes
  for (let seq = 1; seq <= 3; seq++) await h.send(sealEsp(ref, p, { seq }));
  await until(() => { const s = saStats(h, 'in', IN_SPI); return s.packets + s.drops.expired === 3n; }, 'three packets accounted for');
  const s = saStats(h, 'in', IN_SPI);
  assert.deepEqual([s.packets, s.drops.expired, s.softExpired, s.hardExpired], [2n, 1n, true, true]);
  await until(() => h.events.filter((e) => e.kind === 'expire').length === 2, 'soft and hard expire');
  assert.deepEqual(h.events.flatMap((e) => (e.kind === 'expire' ? [[e.direction, e.hard, e.reason]] : [])), [['in', false, 'bytes'], ['in', true, 'bytes']]);
});

test('DESIGN.md §9: random datagrams — short, marker-less, with a known SPI and garbage after it — are counted and dropped, and the engine still works', { skip: SKIP }, async (t) => {
  const h = await harness(t);
  const ref = addInbound(h, 'aes-gcm-16', keyFor('aes-gcm-16', 16));
  const spi = Buffer.alloc(4);
  spi.writeUInt32BE(IN_SPI);
  const n = 2000;
  for (let i = 0; i < n; i++) {
    const body = randomBytes(i % 97);
    // Half carry the installed SPI, so they reach the length, replay and ICV checks.
    const d = i % 2 === 0 ? Buffer.concat([spi, body]) : Buffer.concat([Buffer.from([1 + (i % 255)]), body]);
    await h.send(d);
  }
  await until(() => h.engine.stats().counters.rxDatagrams === BigInt(n), `${n} datagrams read`);
  await h.send(sealEsp(ref, ipv4Udp('10.2.0.9', '10.1.0.5', Buffer.from('still alive')), { seq: 0x7fffffff }));
  await until(() => h.events.some((e) => e.kind === 'inner'), 'a genuine packet after the garbage');
  const s = saStats(h, 'in', IN_SPI);
  const c = h.engine.stats().counters;
  const sum = (r: Readonly<Record<string, bigint>>): bigint => Object.values(r).reduce((a, b) => a + b, 0n);
  assert.equal(s.packets, 1n);
  assert.equal(sum(s.drops) + c.runts + c.unknownSpi + c.keepalives + c.ike, BigInt(n), 'every datagram counted once');
});

test('SA and policy changes racing inbound and outbound traffic: no packet lost to a half-built table, nothing used after free', { skip: SKIP }, async (t) => {
  const h = await harness(t);
  const key = keyFor('aes-gcm-16', 16);
  const ref = addInbound(h, 'aes-gcm-16', key);
  addOutbound(h, 'aes-gcm-16', keyFor('aes-gcm-16', 16));
  const inner = ipv4Udp('10.2.0.9', '10.1.0.5', randomBytes(64));
  const out = ipv4Udp('10.1.0.5', '10.2.0.9', randomBytes(64));
  const total = 3000;
  let seq = 1;
  let churn = 0;
  for (let round = 0; round < 30; round++) {
    const sends: Array<Promise<void>> = [];
    for (let i = 0; i < total / 30; i++) sends.push(h.send(sealEsp(ref, inner, { seq: seq++ })));
    // While those are in flight: swap unrelated SAs and policies in and out, and send outbound.
    for (let k = 0; k < 20; k++, churn++) {
      const spi = 0x5000 + (churn % 50);
      h.engine.addSa({ direction: 'in', spi, reqid: 99, algorithm: 'aes-gcm-16', key: new SecretBytes(randomBytes(20)), sources: [cidrSelector('10.7.0.0/16')], destinations: [cidrSelector('10.8.0.0/16')] });
      h.engine.addPolicy({ id: 100 + k, reqid: 99, priority: 10, source: cidrSelector('10.7.0.0/16'), destination: cidrSelector('10.8.0.0/16') });
      assert.equal(h.engine.inject(out), 'sent');
      assert.equal(h.engine.removeSa({ direction: 'in', spi, reqid: 99 }), true);
      assert.equal(h.engine.removePolicy(100 + k), true);
    }
    await Promise.all(sends);
  }
  await until(() => h.engine.stats().counters.rxDatagrams >= BigInt(total), `${total} datagrams read`, 10_000);
  const s = saStats(h, 'in', IN_SPI);
  const udpLoss = BigInt(total) - s.packets;
  assert.equal(s.drops.auth + s.drops.replay + s.drops.truncated, 0n);
  assert.equal(udpLoss, 0n, 'every datagram decapsulated');
  assert.equal(saStats(h, 'out', OUT_SPI).packets, BigInt(churn));
});
