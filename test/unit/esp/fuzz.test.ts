// The ESP input path under fuzz (fuzz-model.ts, fuzz-run.ts): truncated, bad pad, bad ICV,
// replayed, out-of-window, wrong-SPI, oversized and random datagrams and mutations of valid
// packets, interleaved with valid ones, across four SAs (AES-GCM, ChaCha20-Poly1305 with ESN,
// AES-CBC+HMAC-SHA-256 with ESN, AES-CBC+HMAC-SHA-512). Why: bad input must never crash the
// engine, and each drop must be counted under its reason — the counters are what an operator
// reads to tell an attack from a broken peer. scripts/fuzz-esp.ts runs the same for millions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SKIP, harness, until, saStats } from './harness.js';
import { EspFuzzModel } from './fuzz-model.js';
import { engineOutcomes, runEspFuzz } from './fuzz-run.js';
import { SecretBytes } from '../../../src/common/secret.js';
import { cidrSelector } from '../../../src/esp/selector.js';
import { ipv4Udp, sealEsp } from './reference.js';

const FIXED_SEED = 20261206;
const FRESH_SEED = Date.now() % 0x7fffffff;

for (const [what, seed] of [['fixed', FIXED_SEED], ['fresh', FRESH_SEED]] as const) {
  test(`RFC 4303 §3.4 + RFC 3948 §2.2: 6,000 fuzz inputs (${what} seed ${seed}) — each counted once under the reason the reference predicts, delivered + drops = inputs exactly, valid ones still delivered byte for byte`, { skip: SKIP }, async () => {
    console.log(`esp fuzz seed ${seed} (reproduce: node --import tsx scripts/fuzz-esp.ts --count 6000 --seed ${seed})`);
    const r = await runEspFuzz({ count: 6000, seed, checkInner: true, timeLimitMs: 60_000 });
    assert.deepEqual(r.mismatches, [], `seed ${seed}`);
    assert.equal(r.inputs, 6000);
    const total = [...r.got.values()].reduce((a, b) => a + b, 0n);
    assert.equal(total, r.rxDatagrams, 'every datagram read is charged to exactly one counter');
    assert.equal(r.rxDatagrams, 6000n, 'no datagram lost before the engine counted it');
    for (const [k, n] of r.expected) assert.equal(r.got.get(k), BigInt(n), `${k}`);
    // The mix reaches every reason the input path has (a fuzz that never hits one proves nothing about it).
    for (const reason of ['delivered', 'replay', 'auth', 'pad', 'nextHeader', 'dummy', 'malformed', 'selector', 'truncated', 'tooBig', 'unknownSpi', 'runt', 'keepalive', 'ike'] as const)
      assert.ok((r.got.get(reason) ?? 0n) > 0n, `some input counted as ${reason}`);
    assert.ok((r.got.get('delivered') ?? 0n) > 1000n, 'valid packets interleaved with junk still get through');
    if (seed === FIXED_SEED) assert.ok(r.tops.some((x) => x.esn && x.seq > 0xffff_ffffn), 'an ESN SA crossed 2^32 during the run');
  });
}

test('RFC 4303 §3.4 (fast-check): arbitrary datagrams and arbitrary edits of a valid packet are each counted once, as the reference predicts, and a valid packet after them is delivered', { skip: SKIP }, async (t) => {
  const h = await harness(t);
  const model = new EspFuzzModel(FIXED_SEED);
  const sa = model.sas[0]!;
  h.engine.addSa({
    direction: 'in', spi: sa.ref.spi, reqid: 1, algorithm: sa.ref.algorithm, key: new SecretBytes(sa.ref.key),
    sources: [cidrSelector('10.2.0.0/24')], destinations: [cidrSelector('10.1.0.0/24')],
  });
  let seq = 1;
  let delivered = 0n;
  const datagram = fc.oneof(
    fc.uint8Array({ maxLength: 300 }),
    fc.record({ at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }), cut: fc.boolean() }).map(({ at, bytes, cut }) => {
      const good = sealEsp(sa.ref, ipv4Udp('10.2.0.1', '10.1.0.1', Buffer.from('fast-check')), { seq: 1_000_000 });
      const i = at % good.length;
      const b = cut ? Buffer.concat([good.subarray(0, i), Buffer.from(bytes)]) : Buffer.from(good);
      if (!cut) for (const [k, v] of bytes.entries()) b[(i + k) % b.length]! ^= v | 1; // never the identity
      return b.equals(good) ? Buffer.concat([b, Buffer.from([1])]) : b;
    }),
  );
  await fc.assert(fc.asyncProperty(datagram, async (d) => {
    const data = Buffer.from(d);
    const want = model.classify(data).outcome;
    const before = h.engine.stats();
    await h.send(data);
    await until(() => h.engine.stats().counters.rxDatagrams > before.counters.rxDatagrams, 'the datagram read');
    const after = h.engine.stats();
    const a = engineOutcomes(after).total, b = engineOutcomes(before).total;
    const moved = [...a].filter(([k, n]) => n !== (b.get(k) ?? 0n)).map(([k, n]) => [k, n - (b.get(k) ?? 0n)]);
    assert.deepEqual(moved, [[want, 1n]]);
    const good = model.seal(sa, ipv4Udp('10.2.0.1', '10.1.0.1', Buffer.from('ok')), BigInt(seq++));
    model.classify(good, 'delivered');
    await h.send(good);
    delivered++;
    await until(() => saStats(h, 'in', sa.ref.spi).packets === delivered, 'the valid packet after it delivered');
  }), { numRuns: 150, seed: FIXED_SEED });
});
