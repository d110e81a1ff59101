// The native ESP engine (native/esp) against an independent node:crypto reference
// (reference.ts): packets it seals must open there field by field, and packets sealed there must
// come out of it byte for byte. Why: an ESP implementation that only talks to itself can agree
// with itself on a wrong layout; interoperability needs the RFC's layout.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { EspSaSpecError, type EspAlgorithm } from '../../../src/esp/codec.js';
import { EspError } from '../../../src/esp/engine.js';
import { SecretBytes } from '../../../src/common/secret.js';
import { openEsp, sealEsp, ipv4Udp, ipv6Udp } from './reference.js';
import { SKIP, harness, until, keyFor, addOutbound, addInbound, saStats, OUT_SPI, IN_SPI, REQID, LOCAL_NET } from './harness.js';
import { cidrSelector } from '../../../src/esp/selector.js';

const CASES: ReadonlyArray<{ alg: EspAlgorithm; keyBytes: number; rfc: string }> = [
  { alg: 'aes-gcm-16', keyBytes: 16, rfc: 'RFC 4106 AES-GCM-16-128' },
  { alg: 'aes-gcm-16', keyBytes: 32, rfc: 'RFC 4106 AES-GCM-16-256' },
  { alg: 'chacha20-poly1305', keyBytes: 32, rfc: 'RFC 7634 ChaCha20-Poly1305' },
];

for (const c of CASES) {
  test(`RFC 4303 §2 + ${c.rfc}: packets the engine seals open with node:crypto, field by field`, { skip: SKIP }, async (t) => {
    const h = await harness(t);
    const key = keyFor(c.alg, c.keyBytes);
    const ref = addOutbound(h, c.alg, key);
    // Payload lengths 28+0..3 give every pad length 0..3 (RFC 4303 §2.4: 4-byte alignment).
    const inners = [0, 1, 2, 3].map((n) => ipv4Udp('10.1.0.5', '10.2.0.9', randomBytes(n + 100)));
    for (const p of inners) assert.equal(h.engine.inject(p), 'sent');
    await until(() => h.received.length === inners.length, 'the peer to receive 4 datagrams');
    for (const [i, r] of h.received.entries()) {
      assert.equal(r.port, h.engine.port, 'sent from the engine socket (RFC 3948: one port for IKE and ESP)');
      const o = openEsp(ref, r.data);
      assert.equal(o.spi, OUT_SPI);
      assert.equal(o.seq, i + 1, 'the first packet on an SA has sequence number 1 (§3.3.3)');
      assert.deepEqual([...o.iv], [0, 0, 0, 0, 0, 0, 0, i + 1], 'IV = 64-bit sequence number (RFC 4106 §3.1 allows any unique IV)');
      assert.deepEqual(o.payload, inners[i]);
      assert.equal((o.payload.length + o.padLength + 2) % 4, 0, 'ciphertext 4-byte aligned');
      assert.equal(o.padLength, (4 - ((inners[i]!.length + 2) % 4)) % 4, 'minimal padding');
      assert.deepEqual([...o.pad], Array.from({ length: o.padLength }, (_, k) => k + 1), 'pad bytes 1, 2, 3 (§2.4)');
      assert.equal(o.nextHeader, 4, 'next header IPv4 (§2.6)');
      assert.equal(r.data.length, 8 + 8 + o.payload.length + o.padLength + 2 + 16);
    }
    const s = saStats(h, 'out', OUT_SPI);
    assert.equal(s.packets, 4n);
    assert.equal(s.seq, 4n);
    assert.equal(s.bytes, BigInt(inners.reduce((n, p) => n + p.length, 0)));
  });

  test(`RFC 4303 §3.4 + ${c.rfc}: packets node:crypto seals come out of the engine byte for byte`, { skip: SKIP }, async (t) => {
    const h = await harness(t);
    const key = keyFor(c.alg, c.keyBytes);
    const ref = addInbound(h, c.alg, key);
    const v4 = ipv4Udp('10.2.0.9', '10.1.0.5', randomBytes(333));
    const v6 = ipv6Udp(Buffer.from('20010db8000200000000000000000009', 'hex'), Buffer.from('20010db8000100000000000000000005', 'hex'), randomBytes(77));
    await h.send(sealEsp(ref, v4, { seq: 1 }));
    await h.send(sealEsp(ref, v6, { seq: 2 }));
    await until(() => h.events.filter((e) => e.kind === 'inner').length === 2, 'two inner packets');
    const inner = h.events.flatMap((e) => (e.kind === 'inner' ? [e.data] : []));
    assert.deepEqual(inner[0], v4);
    assert.deepEqual(inner[1], v6, 'next header 41 carries IPv6');
    const s = saStats(h, 'in', IN_SPI);
    assert.equal(s.packets, 2n);
    assert.equal(s.seq, 2n, 'highest verified sequence number');
  });
}

test('RFC 4303 §3.4.3: anti-replay window of 1024 — duplicates and packets left of the window are dropped, late ones inside it pass', { skip: SKIP }, async (t) => {
  const h = await harness(t);
  const key = keyFor('aes-gcm-16', 16);
  const ref = addInbound(h, 'aes-gcm-16', key);
  const p = ipv4Udp('10.2.0.9', '10.1.0.5', Buffer.from('x'));
  // seq: accepted?  (top after)
  const plan: Array<[number, boolean]> = [[5, true], [3, true], [5, false], [1, true], [3, false], [2000, true], [976, false], [977, true], [977, false], [1999, true], [4, false]];
  for (const [seq] of plan) await h.send(sealEsp(ref, p, { seq }));
  const accepted = plan.filter(([, ok]) => ok).length;
  await until(() => saStats(h, 'in', IN_SPI).packets + saStats(h, 'in', IN_SPI).drops.replay === BigInt(plan.length), 'every packet accounted for');
  const s = saStats(h, 'in', IN_SPI);
  assert.equal(s.packets, BigInt(accepted));
  assert.equal(s.drops.replay, BigInt(plan.length - accepted));
  assert.equal(s.seq, 2000n);
  assert.equal(s.drops.auth, 0n);
});

test('RFC 4303 §3.4: bad pad, bad ICV, truncated, unknown SPI, replayed, seq 0, wrong next header, outside the selectors — each dropped and counted by reason', { skip: SKIP }, async (t) => {
  const h = await harness(t);
  const key = keyFor('aes-gcm-16', 32);
  const ref = addInbound(h, 'aes-gcm-16', key);
  const p = ipv4Udp('10.2.0.9', '10.1.0.5', randomBytes(41)); // 69 bytes: pad length 1
  const good = sealEsp(ref, p, { seq: 10 });
  await h.send(good);
  await h.send(good); // replayed
  await h.send(sealEsp(ref, p, { seq: 11, pad: Uint8Array.of(2) })); // pad byte must be 1
  await h.send(sealEsp(ref, p, { seq: 12, flipIcvBit: true }));
  await h.send(good.subarray(0, 8 + 8 + 16)); // truncated: no room for a trailer
  await h.send(good.subarray(0, good.length - 1)); // not 4-byte aligned
  await h.send(sealEsp({ ...ref, spi: 0xdead0001 }, p, { seq: 1 })); // unknown SPI
  await h.send(sealEsp(ref, p, { seq: 0 })); // seq 0 never valid
  await h.send(sealEsp(ref, p, { seq: 13, nextHeader: 6 })); // not 4, 41 or 59
  await h.send(sealEsp(ref, p, { seq: 14, nextHeader: 59 })); // dummy: verified, then discarded
  await h.send(sealEsp(ref, ipv4Udp('10.9.0.9', '10.1.0.5', randomBytes(8)), { seq: 15 })); // source outside the SA's selectors
  await h.send(sealEsp(ref, p, { seq: 16, nextHeader: 41 })); // IPv4 packet labelled IPv6
  await until(() => h.engine.stats().counters.rxDatagrams === 12n, '12 datagrams read');
  await until(() => {
    const d = saStats(h, 'in', IN_SPI).drops;
    return d.replay + d.pad + d.auth + d.truncated + d.nextHeader + d.dummy + d.selector + d.malformed === 10n;
  }, 'every drop counted');
  const s = saStats(h, 'in', IN_SPI);
  assert.equal(s.packets, 1n, 'only the genuine packet passes');
  assert.deepEqual(
    { replay: s.drops.replay, pad: s.drops.pad, auth: s.drops.auth, truncated: s.drops.truncated, nextHeader: s.drops.nextHeader, dummy: s.drops.dummy, selector: s.drops.selector, malformed: s.drops.malformed },
    { replay: 2n, pad: 1n, auth: 1n, truncated: 2n, nextHeader: 1n, dummy: 1n, selector: 1n, malformed: 1n },
  );
  assert.equal(h.engine.stats().counters.unknownSpi, 1n);
  await until(() => h.events.some((e) => e.kind === 'inner'), 'the genuine packet delivered');
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(h.events.filter((e) => e.kind === 'inner').length, 1);
  // A packet refused after its ICV verified still moved the window (§3.4.3: update once verified).
  assert.equal(s.seq, 16n);
});

test('RFC 4303 §3.3.3: the sender stops at the hard packet limit, signals soft then hard expire, never wraps the 32-bit sequence', { skip: SKIP }, async (t) => {
  const h = await harness(t);
  addOutbound(h, 'aes-gcm-16', keyFor('aes-gcm-16', 16), { limits: { softPackets: 2n, hardPackets: 3n } });
  const p = ipv4Udp('10.1.0.5', '10.2.0.9', Buffer.from('hello'));
  const results = Array.from({ length: 5 }, () => h.engine.inject(p));
  assert.deepEqual(results, ['sent', 'sent', 'sent', 'expired', 'expired']);
  await until(() => h.events.filter((e) => e.kind === 'expire').length === 2, 'soft and hard expire');
  assert.deepEqual(h.events.filter((e) => e.kind === 'expire'), [
    { kind: 'expire', direction: 'out', spi: OUT_SPI, reqid: REQID, hard: false, reason: 'packets' },
    { kind: 'expire', direction: 'out', spi: OUT_SPI, reqid: REQID, hard: true, reason: 'packets' },
  ]);
  assert.equal(saStats(h, 'out', OUT_SPI).drops.expired, 2n);

  const h2 = await harness(t);
  addOutbound(h2, 'aes-gcm-16', keyFor('aes-gcm-16', 16), { seq: 0xfffffffen });
  assert.equal(h2.engine.inject(p), 'sent', 'sequence number 2^32-1 is the last one');
  assert.equal(h2.engine.inject(p), 'seqExhausted');
  assert.equal(h2.engine.inject(p), 'expired');
  await until(() => h2.events.some((e) => e.kind === 'expire'), 'hard expire');
  assert.deepEqual(h2.events.filter((e) => e.kind === 'expire').map((e) => e.kind === 'expire' && [e.hard, e.reason]), [[true, 'sequence']]);
});

test('RFC 3948 §2.2–2.3: marker datagrams go up as IKE (marker kept), keepalives are counted, sendIke leaves from the shared port', { skip: SKIP }, async (t) => {
  const h = await harness(t);
  const ike = Buffer.concat([Buffer.alloc(4), randomBytes(60)]);
  await h.send(ike);
  await h.send(Buffer.from([0xff]));
  await until(() => h.events.some((e) => e.kind === 'ike'), 'an ike event');
  const ev = h.events.find((e) => e.kind === 'ike');
  assert.ok(ev && ev.kind === 'ike');
  assert.deepEqual(ev.data, ike);
  assert.equal(ev.address, '127.0.0.1');
  assert.equal(ev.port, h.peerPort);
  await until(() => h.engine.stats().counters.keepalives === 1n, 'the keepalive counted');
  h.engine.sendIke(ike, '127.0.0.1', h.peerPort);
  await until(() => h.received.length === 1, 'the IKE datagram at the peer');
  assert.deepEqual(h.received[0]!.data, ike);
  assert.equal(h.received[0]!.port, h.engine.port);
});

test('the IKE queue is bounded: when JS does not keep up, datagrams are dropped and counted, never queued without end', { skip: SKIP }, async (t) => {
  const h = await harness(t, { ikeQueue: 4 });
  const ike = Buffer.concat([Buffer.alloc(4), Buffer.from('IKE')]);
  // sendIke is a synchronous sendto: the engine's RX thread reads them while this thread is busy.
  for (let i = 0; i < 50; i++) h.engine.sendIke(ike, '127.0.0.1', h.engine.port);
  // Busy-wait on the synchronous stats() so the event loop cannot drain the queue meanwhile.
  const deadline = Date.now() + 5000;
  let c = h.engine.stats().counters;
  while (c.ike + c.ikeDropped < 50n && Date.now() < deadline) c = h.engine.stats().counters;
  assert.deepEqual([c.ike, c.ikeDropped], [4n, 46n], 'four queued, the rest dropped and counted');
  await until(() => h.events.filter((e) => e.kind === 'ike').length === Number(c.ike), 'the queued ones delivered');
});

test('make-before-break: an inactive outbound SA is not used; activating it, the newest active SA of the reqid carries the traffic', { skip: SKIP }, async (t) => {
  const h = await harness(t);
  const p = ipv4Udp('10.1.0.5', '10.2.0.9', Buffer.from('x'));
  const old = addOutbound(h, 'aes-gcm-16', keyFor('aes-gcm-16', 16));
  const next = { algorithm: 'aes-gcm-16' as const, key: keyFor('aes-gcm-16', 16), spi: OUT_SPI + 1 };
  h.engine.addSa({ direction: 'out', spi: next.spi, reqid: REQID, algorithm: 'aes-gcm-16', key: new SecretBytes(next.key), peer: { address: '127.0.0.1', port: h.peerPort }, active: false });
  assert.equal(h.engine.inject(p), 'sent');
  h.engine.activateOutbound(next.spi, REQID);
  assert.equal(h.engine.inject(p), 'sent');
  assert.equal(h.engine.removeSa({ direction: 'out', spi: next.spi, reqid: REQID }), true);
  assert.equal(h.engine.removeSa({ direction: 'out', spi: next.spi, reqid: REQID }), false);
  assert.equal(h.engine.inject(p), 'sent', 'back on the old SA');
  h.engine.removeSa({ direction: 'out', spi: OUT_SPI, reqid: REQID });
  assert.equal(h.engine.inject(p), 'noSa');
  assert.equal(h.engine.inject(ipv4Udp('10.1.0.5', '10.3.0.1', Buffer.from('x'))), 'noPolicy');
  await until(() => h.received.length === 3, 'three datagrams');
  assert.deepEqual(h.received.map((r) => r.data.readUInt32BE(0)), [OUT_SPI, next.spi, OUT_SPI]);
  assert.equal(openEsp(old, h.received[2]!.data).seq, 2, 'the old SA continues its sequence');
  assert.equal(openEsp(next, h.received[1]!.data).seq, 1);
});

test('many reqids: each policy sends on the newest active outbound SA of its own reqid, whatever the install order (as XFRM picks a policy\'s state)', { skip: SKIP }, async (t) => {
  const h = await harness(t);
  const n = 40;
  const peer = { address: '127.0.0.1', port: h.peerPort };
  // Reqid r (1..n): policy 10.1.0.0/24 -> 10.3.r.0/24; SAs 0x10000 + 4r + k for k = 0..2, installed
  // interleaved across reqids (k-major), the last one inactive for every third reqid; none for r % 7 === 0.
  for (let r = 1; r <= n; r++) h.engine.addPolicy({ id: r, reqid: r, source: cidrSelector(LOCAL_NET), destination: cidrSelector(`10.3.${r}.0/24`) });
  const want = new Map<number, number>();
  for (let k = 0; k < 3; k++) {
    for (let r = n; r >= 1; r--) {
      if (r % 7 === 0) continue;
      const spi = 0x10000 + 4 * r + k;
      const active = !(k === 2 && r % 3 === 0);
      h.engine.addSa({ direction: 'out', spi, reqid: r, algorithm: 'aes-gcm-16', key: new SecretBytes(keyFor('aes-gcm-16', 16)), peer, active });
      if (active) want.set(r, spi);
    }
  }
  for (let r = 1; r <= n; r++) assert.equal(h.engine.inject(ipv4Udp('10.1.0.5', `10.3.${r}.1`, Buffer.from('x'))), r % 7 === 0 ? 'noSa' : 'sent', `reqid ${r}`);
  await until(() => h.received.length === want.size, `${want.size} datagrams`);
  const sent = [...want.keys()].sort((a, b) => a - b).map((r) => want.get(r));
  assert.deepEqual(h.received.map((x) => x.data.readUInt32BE(0)), sent);
});

test('bad control-plane input throws EspError with a code and the field, and the engine stays usable', { skip: SKIP }, async (t) => {
  const h = await harness(t);
  assert.throws(() => h.engine.addSa({ direction: 'in', spi: IN_SPI, reqid: 1, algorithm: 'aes-gcm-16', key: new SecretBytes(randomBytes(16)), sources: [], destinations: [] }),
    (e: unknown) => e instanceof EspSaSpecError && e.code === 'ERR_ESP_KEY_LENGTH' && e.message === 'aes-gcm-16: key || 4-byte salt is 16 bytes, want 20 or 36');
  assert.throws(() => h.engine.addSa({ direction: 'out', spi: 255, reqid: 1, algorithm: 'aes-gcm-16', key: new SecretBytes(randomBytes(20)) }), /spi must be/);
  addInbound(h, 'aes-gcm-16', keyFor('aes-gcm-16', 16));
  assert.throws(() => addInbound(h, 'aes-gcm-16', keyFor('aes-gcm-16', 16)), (e: unknown) => e instanceof EspError && e.code === 'ERR_ESP_EEXIST');
  h.engine.close();
  assert.throws(() => h.engine.stats(), (e: unknown) => e instanceof EspError && e.code === 'ERR_ESP_CLOSED');
});

test('saStats reads one SA: the same counters as its entry in stats(), undefined for an SA the engine does not hold (espSaStats)', { skip: SKIP }, async (t) => {
  const h = await harness(t);
  addOutbound(h, 'aes-gcm-16', keyFor('aes-gcm-16', 16));
  addInbound(h, 'aes-gcm-16', keyFor('aes-gcm-16', 16));
  for (let i = 0; i < 3; i++) assert.equal(h.engine.inject(ipv4Udp('10.1.0.5', '10.2.0.9', Buffer.alloc(40 + i))), 'sent');
  await until(() => h.received.length === 3, 'three datagrams');
  const out = h.engine.saStats({ direction: 'out', spi: OUT_SPI, reqid: REQID });
  assert.deepEqual(out, saStats(h, 'out', OUT_SPI));
  assert.equal(out?.packets, 3n);
  assert.deepEqual(h.engine.saStats({ direction: 'in', spi: IN_SPI, reqid: REQID }), saStats(h, 'in', IN_SPI));
  assert.equal(h.engine.saStats({ direction: 'in', spi: OUT_SPI, reqid: REQID }), undefined, 'direction is part of the key');
  assert.equal(h.engine.saStats({ direction: 'out', spi: OUT_SPI, reqid: REQID + 1 }), undefined, 'reqid is part of the key');
  h.engine.removeSa({ direction: 'out', spi: OUT_SPI, reqid: REQID });
  assert.equal(h.engine.saStats({ direction: 'out', spi: OUT_SPI, reqid: REQID }), undefined, 'removed');
});
