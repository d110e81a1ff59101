// The responder with crypto workers (EngineOptions.cryptoWorkers): a burst beyond the pool's
// queue bound is dropped and counted before any state exists, and a retransmitted IKE_SA_INIT that
// arrives while the first copy's Diffie-Hellman runs is not worked on twice (RFC 7296 §2.1, §2.6).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_MAX_QUEUED } from '../../../../src/ike/crypto/pool.js';
import { Pair, type Packet } from '../pair/harness.js';

// These tests are about the worker path: no batch runs on the engine's thread (pool.ts inlineUpTo),
// read when the engines' pools are made below.
process.env['KIPSEC_IKE_CRYPTO_INLINE'] = '0';

/** IKE_SA_INIT requests that look like they come from different initiators (fresh SPIs). */
function floodFrom(first: Packet, n: number): Uint8Array[] {
  return Array.from({ length: n }, (_, i) => {
    const d = new Uint8Array(first.datagram);
    new DataView(d.buffer).setUint32(0, 0x20000000 + i);
    return d;
  });
}

async function firstInit(p: Pair): Promise<Packet> {
  p.net.fate = () => 'drop';
  p.alice.engine.initiate('to-bob');
  await p.net.pump();
  return p.net.log[0]!;
}

test('a burst of the half-open limit (1,000) is queued on the workers, not dropped: every request answered, no crypto-queue-full (RFC 8019 §4.6 admission is the limits\' job)', async () => {
  const p = new Pair({ bobOptions: { cryptoWorkers: 1, cookieThreshold: 10_000, halfOpenPerAddress: 10_000 } });
  try {
    const first = await firstInit(p);
    const sentBefore = p.net.log.length;
    // All delivered in one turn, before any job finished; the 1,001st meets the half-open limit.
    await Promise.all(floodFrom(first, 1_001).map((d) => p.bob.engine.receive(d, first.from, first.to)));
    assert.equal(p.bob.engine.status().drops['crypto-queue-full'], undefined);
    assert.equal(p.bob.engine.status().drops['half-open-limit'], 1, 'requests still in their key exchange count toward the limit');
    assert.equal(p.bob.engine.status().halfOpen, 1_000);
    assert.equal(p.net.log.length - sentBefore, 1_000, 'every admitted request answered');
  } finally { await p.alice.engine.close(); await p.bob.engine.close(); }
});

test(`a burst beyond the crypto queue bound (${DEFAULT_MAX_QUEUED}, with the half-open limit raised above it) is dropped as crypto-queue-full, counted, unanswered, with no state`, async () => {
  const p = new Pair({ bobOptions: { cryptoWorkers: 1, cookieThreshold: 100_000, halfOpenLimit: 100_000, halfOpenPerAddress: 100_000 } });
  try {
    const first = await firstInit(p);
    const sentBefore = p.net.log.length;
    await Promise.all(floodFrom(first, DEFAULT_MAX_QUEUED + 36).map((d) => p.bob.engine.receive(d, first.from, first.to)));
    assert.equal(p.bob.engine.status().drops['crypto-queue-full'], 36);
    assert.equal(p.bob.engine.status().halfOpen, DEFAULT_MAX_QUEUED);
    assert.equal(p.net.log.length - sentBefore, DEFAULT_MAX_QUEUED, `only the queued ${DEFAULT_MAX_QUEUED} were answered`);
  } finally { await p.alice.engine.close(); await p.bob.engine.close(); }
});

test('an IKE_SA_INIT retransmitted while its Diffie-Hellman runs on a worker gets one answer and one half-open SA (RFC 7296 §2.1)', async () => {
  const p = new Pair({ bobOptions: { cryptoWorkers: 1 } });
  try {
    const first = await firstInit(p);
    const sentBefore = p.net.log.length;
    await Promise.all([p.bob.engine.receive(first.datagram, first.from, first.to), p.bob.engine.receive(first.datagram, first.from, first.to)]);
    assert.equal(p.bob.engine.status().halfOpen, 1);
    assert.equal(p.bob.engine.status().drops['retransmitted-request'], 1);
    assert.equal(p.net.log.length - sentBefore, 1);
    // Once answered, a retransmission gets the same response again (§2.1).
    await p.bob.engine.receive(first.datagram, first.from, first.to);
    assert.equal(p.net.log.length - sentBefore, 2);
    assert.deepEqual(p.net.log.at(-1)!.datagram, p.net.log.at(-2)!.datagram);
  } finally { await p.alice.engine.close(); await p.bob.engine.close(); }
});

test('with crypto workers the handshake completes as inline: IKE SA and Child SA up on both sides, PSK and ECDSA certificates', async () => {
  for (const auth of ['psk', 'cert'] as const) {
    const p = new Pair({ auth, aliceOptions: { cryptoWorkers: 2 }, bobOptions: { cryptoWorkers: 2 } });
    try {
      await p.connect();
      assert.deepEqual(p.alice.events.map((e) => e.type), ['ike-up', 'child-up'], auth);
      assert.deepEqual(p.bob.events.map((e) => e.type), ['ike-up', 'child-up'], auth);
    } finally { await p.alice.engine.close(); await p.bob.engine.close(); }
  }
});

test('an engine closed while an IKE_SA_INIT\'s Diffie-Hellman runs on a worker keeps no SA and sends no answer', async () => {
  const p = new Pair({ bobOptions: { cryptoWorkers: 1 } });
  try {
    const first = await firstInit(p);
    const sentBefore = p.net.log.length;
    const received = p.bob.engine.receive(first.datagram, first.from, first.to);
    await p.bob.engine.close();
    await received;
    assert.equal(p.bob.engine.status().halfOpen, 0);
    assert.equal(p.bob.engine.status().drops['engine-closed'], 1);
    assert.equal(p.net.log.length - sentBefore, 0);
  } finally { await p.alice.engine.close(); }
});
