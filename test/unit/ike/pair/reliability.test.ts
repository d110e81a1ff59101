// Loss, duplication, reordering and silence (RFC 7296 §2.1 retransmission and the response cache,
// §2.3 message-ID window, §2.4 liveness): the handshake must converge on the same SAs, answers to
// retransmitted requests come from the cache (not recomputed), and a peer that stays silent is
// given up after charon's schedule (4 s × 1.8^n, 5 retransmits ≈ 165 s).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ExchangeType } from '../../../../src/ike/constants.js';
import { mirrored, Pair, type Packet } from './harness.js';

const isInit = (p: Packet): boolean => p.exchange === ExchangeType.IKE_SA_INIT;
const isAuth = (p: Packet): boolean => p.exchange === ExchangeType.IKE_AUTH;

function dropOnce(match: (p: Packet) => boolean): (p: Packet) => 'deliver' | 'drop' {
  let done = false;
  return (p) => { if (!done && match(p)) { done = true; return 'drop'; } return 'deliver'; };
}

for (const [label, match] of [
  ['IKE_SA_INIT request', (p: Packet) => isInit(p) && !p.response],
  ['IKE_SA_INIT response', (p: Packet) => isInit(p) && p.response],
  ['IKE_AUTH request', (p: Packet) => isAuth(p) && !p.response],
  ['IKE_AUTH response', (p: Packet) => isAuth(p) && p.response],
] as const) {
  test(`loss of the ${label} is repaired by the initiator's retransmission after 4 s (RFC 7296 §2.1)`, async () => {
    const p = new Pair();
    p.net.fate = dropOnce(match);
    await p.connect();
    assert.equal(p.alice.events.filter((e) => e.type === 'ike-up').length, 0);
    await p.advance(4_000);
    assert.deepEqual(p.alice.events.map((e) => e.type), ['ike-up', 'child-up']);
    assert.deepEqual(p.bob.events.map((e) => e.type), ['ike-up', 'child-up']);
    assert.ok(mirrored(p.alice.kernel, p.bob.kernel), 'mirrored(p.alice.kernel, p.bob.kernel)');
    assert.equal(p.bob.kernel.ops('install').length, 1, 'the responder installed the child once');
  });
}

test('a lost IKE_AUTH response is re-sent from the response cache: same bytes, no second install (RFC 7296 §2.1)', async () => {
  const p = new Pair();
  p.net.fate = dropOnce((x) => isAuth(x) && x.response);
  await p.connect();
  await p.advance(4_000);
  const responses = p.net.log.filter((x) => isAuth(x) && x.response);
  assert.equal(responses.length, 2);
  assert.deepEqual(responses[0]!.datagram, responses[1]!.datagram);
  assert.equal(p.bob.engine.status().drops['retransmitted-request'], 1);
});

test('duplicated datagrams in every direction change nothing: one IKE SA, one child each side (RFC 7296 §2.1)', async () => {
  const p = new Pair();
  p.net.fate = () => 'duplicate';
  await p.connect();
  assert.deepEqual(p.alice.events.map((e) => e.type), ['ike-up', 'child-up']);
  assert.deepEqual(p.bob.events.map((e) => e.type), ['ike-up', 'child-up']);
  assert.equal(p.alice.kernel.ops('install').length, 1);
  assert.equal(p.bob.kernel.ops('install').length, 1);
  const drops = { ...p.alice.engine.status().drops, ...p.bob.engine.status().drops };
  assert.ok((drops['retransmitted-request'] ?? 0) >= 1, 'duplicate requests answered from the cache');
  assert.ok((drops['unexpected-response'] ?? 0) >= 1, 'duplicate responses dropped');
});

test('duplicated IKE_SA_INIT requests create one half-open SA and get the same response (RFC 7296 §2.1)', async () => {
  const p = new Pair();
  p.net.fate = (x) => (isInit(x) && !x.response ? 'duplicate' : 'deliver');
  await p.connect();
  const responses = p.net.log.filter((x) => isInit(x) && x.response);
  assert.equal(responses.length, 2);
  assert.deepEqual(responses[0]!.datagram, responses[1]!.datagram);
  assert.equal(p.bob.engine.status().peers[0]?.ike?.state, 'established');
});

test('reordering: a DPD request overtaken by its own retransmission and an old response arriving late are handled by message IDs (RFC 7296 §2.3)', async () => {
  const p = new Pair({ bob: { dpd: { intervalMs: 0, action: 'clear' } } });
  await p.connect();
  // Hold bob's responses so alice retransmits; then deliver them late and reversed.
  p.net.fate = (x) => (x.exchange === ExchangeType.INFORMATIONAL && x.response ? 'hold' : 'deliver');
  await p.advance(30_000);
  await p.advance(4_000);
  assert.equal(p.net.held.length, 2, 'original response and the cached one for the retransmission');
  p.net.fate = () => 'deliver';
  p.net.releaseHeld(true);
  await p.net.pump();
  assert.equal(p.alice.engine.status().peers[0]?.ike?.state, 'established');
  assert.equal(p.alice.engine.status().drops['unexpected-response'], 1, 'the second copy finds no outstanding request');
  // The SA keeps working: the next exchange uses the next message ID.
  await p.advance(30_000);
  const dpd = p.net.log.filter((x) => x.exchange === ExchangeType.INFORMATIONAL && !x.response);
  assert.deepEqual([...new Set(dpd.map((x) => x.messageId))], [2, 3]);
});

test('a request outside the window is dropped without an answer (RFC 7296 §2.3)', async () => {
  const p = new Pair();
  await p.connect();
  const auth = p.net.log.find((x) => isAuth(x) && !x.response)!;
  const forged = new Uint8Array(auth.datagram);
  new DataView(forged.buffer).setUint32(20, 7); // message ID 7 while bob expects 2
  await p.bob.engine.receive(forged, auth.from, auth.to);
  assert.equal(p.bob.engine.status().drops['window'], 1);
  assert.equal(p.net.queue.length, 0);
});

test('retransmission gives up after 5 retransmits at 4 s × 1.8^n (≈165 s) and reports why (RFC 7296 §2.4, charon defaults)', async () => {
  const p = new Pair();
  p.net.fate = (x) => (x.response ? 'deliver' : 'drop');
  await p.connect();
  await p.advance(165_000);
  const sent = p.net.log.filter((x) => isInit(x) && !x.response);
  assert.equal(sent.length, 6, 'first transmission + 5 retransmissions');
  assert.equal(p.alice.events.filter((e) => e.type === 'ike-down').length, 0, 'still waiting before 165.06 s');
  await p.advance(1_000);
  const err = p.alice.events.find((e) => e.type === 'error');
  assert.equal(err?.type === 'error' ? err.error.code : null, 'ERR_IKE_TIMEOUT');
  assert.ok(p.alice.events.some((e) => e.type === 'ike-down' && e.reason === 'retransmit-limit'), 'ike-down retransmit-limit');
  assert.equal(p.alice.engine.status().peers[0]?.ike, null);
});

test('retransmission timing follows 4, 7.2, 12.96, 23.33, 41.99 s gaps, then gives up after 75.58 s more (charon retransmit_timeout/base/tries)', async () => {
  const p = new Pair();
  p.net.fate = () => 'drop';
  const t0 = p.clock.now();
  p.alice.engine.initiate('to-bob');
  await p.net.pump();
  await p.advance(170_000);
  const at = p.net.log.filter((x) => isInit(x)).map((x) => Math.round(x.atMs - t0));
  assert.deepEqual(at, [0, 4_000, 11_200, 24_160, 47_488, 89_478]);
  const down = p.alice.events.find((e) => e.type === 'ike-down');
  assert.equal(down?.type, 'ike-down');
});

test('DPD: an idle IKE SA sends an empty INFORMATIONAL after dpd.interval and stays up when answered (RFC 7296 §2.4)', async () => {
  const p = new Pair();
  await p.connect();
  await p.advance(30_000);
  const dpd = p.net.log.filter((x) => x.exchange === ExchangeType.INFORMATIONAL);
  assert.equal(dpd.length, 4, 'both sides were idle: each sent a liveness check and answered the other');
  assert.deepEqual(dpd.filter((x) => !x.response).map((x) => x.from.address).sort(), ['192.0.2.1', '192.0.2.2']);
  assert.equal(p.alice.engine.status().peers[0]?.ike?.state, 'established');
});

test('DPD is skipped while ESP arrives from the peer (kernel counters show recent inbound traffic)', async () => {
  const p = new Pair({ bob: { dpd: { intervalMs: 0, action: 'clear' } } });
  await p.connect();
  for (let i = 0; i < 4; i++) {
    p.alice.kernel.counters = { ...p.alice.kernel.counters, lastInboundMs: p.clock.now() + 29_000 };
    await p.advance(30_000);
  }
  assert.equal(p.net.log.filter((x) => x.exchange === ExchangeType.INFORMATIONAL).length, 0);
  assert.ok(p.alice.kernel.ops('query').length >= 3, 'p.alice.kernel.ops("query").length >= 3');
  p.alice.kernel.counters = { ...p.alice.kernel.counters, lastInboundMs: null };
  await p.advance(30_000);
  assert.equal(p.net.log.filter((x) => x.exchange === ExchangeType.INFORMATIONAL).length, 2);
});

test('DPD timeout: a silent peer is declared dead, its Child SAs removed but their policies kept (no traffic in clear meanwhile), and dpd.action restart re-initiates with INITIAL_CONTACT (RFC 7296 §2.4)', async () => {
  const p = new Pair({ bob: { dpd: { intervalMs: 300_000, action: 'clear' } } });
  await p.connect();
  p.net.fate = () => 'drop';
  await p.advance(30_000 + 166_000);
  assert.ok(p.alice.events.some((e) => e.type === 'ike-down' && e.reason === 'dpd-timeout'), 'p.alice.events.some((e) => e.type === "ike-down" && e.reason === "dpd-timeout")');
  assert.ok(p.alice.events.some((e) => e.type === 'child-down' && e.reason === 'dpd-timeout'), 'p.alice.events.some((e) => e.type === "child-down" && e.reason === "dpd-timeout")');
  assert.equal(p.alice.kernel.installed.size, 0);
  const del = p.alice.kernel.ops('delete') as Array<{ opts: { keepPolicies: boolean } }>;
  assert.equal(del[0]?.opts.keepPolicies, true, 'restart keeps the policies until the new Child SA replaces them');
  // restart: a new IKE_SA_INIT went out after the timeout.
  const downAt = p.clock.now();
  const inits = p.net.log.filter((x) => isInit(x) && !x.response);
  assert.equal(inits[0]?.atMs, downAt - 166_000 - 30_000, 'the first handshake');
  assert.ok(inits.length >= 2, 'a new IKE_SA_INIT after the timeout');
  p.net.fate = () => 'deliver';
  await p.advance(60_000);
  assert.equal(p.alice.engine.status().peers[0]?.ike?.state, 'established');
  assert.equal(p.alice.kernel.installed.size, 1);
  assert.ok(p.bob.events.some((e) => e.type === 'ike-down' && e.reason === 'replaced'), 'bob dropped its stale SA on INITIAL_CONTACT');
  assert.equal(p.bob.kernel.installed.size, 1);
  // Bob installs the new Child SA before removing the stale one, so their shared policies stay
  // and nothing leaves in clear between the two.
  const bobOps = p.bob.kernel.calls.filter((c) => c.op === 'install' || c.op === 'delete');
  assert.deepEqual(bobOps.map((c) => c.op), ['install', 'install', 'delete']);
  assert.equal((bobOps[2]!.arg as { opts: { keepPolicies: boolean } }).opts.keepPolicies, true);
});

test('DPD timeout with action hold keeps policies and installs trap policies instead (DESIGN.md §3 dpd.action)', async () => {
  const p = new Pair({ alice: { dpd: { intervalMs: 30_000, action: 'hold' } } });
  await p.connect();
  p.net.fate = () => 'drop';
  await p.advance(30_000 + 166_000);
  const del = p.alice.kernel.ops('delete') as Array<{ opts: { keepPolicies: boolean } }>;
  assert.equal(del[0]?.opts.keepPolicies, true);
  assert.equal(p.alice.kernel.traps.length, 1);
});

test('the responder detects a dead initiator through its own DPD, from the other role (RFC 7296 §2.4)', async () => {
  const p = new Pair({ bob: { dpd: { intervalMs: 10_000, action: 'clear' } }, alice: { dpd: { intervalMs: 0, action: 'clear' } } });
  await p.connect();
  p.net.fate = () => 'drop';
  await p.advance(10_000 + 166_000);
  assert.ok(p.bob.events.some((e) => e.type === 'ike-down' && e.reason === 'dpd-timeout'), 'p.bob.events.some((e) => e.type === "ike-down" && e.reason === "dpd-timeout")');
  assert.equal(p.bob.kernel.installed.size, 0);
  const del = p.bob.kernel.ops('delete') as Array<{ opts: { keepPolicies: boolean } }>;
  assert.equal(del[0]?.opts.keepPolicies, false, 'clear removes the policies too');
  assert.equal(p.net.log.filter((x) => isInit(x)).length, 2, 'clear: no re-initiation');
});

test('garbage and truncated datagrams are counted and dropped, never thrown (DESIGN.md §9)', async () => {
  const p = new Pair();
  await p.connect();
  const auth = p.net.log.find((x) => isAuth(x) && !x.response)!;
  for (const bad of [new Uint8Array(0), new Uint8Array(27), auth.datagram.subarray(0, 40), Uint8Array.from(auth.datagram, (b, i) => (i === 60 ? b ^ 1 : b))]) {
    await p.bob.engine.receive(bad, auth.from, auth.to);
  }
  const drops = p.bob.engine.status().drops;
  assert.ok((drops['decode'] ?? 0) >= 3, '(drops["decode"] ?? 0) >= 3');
  assert.equal(p.bob.engine.status().peers[0]?.ike?.state, 'established');
});

test('startAction initiate keeps trying: after the retransmission limit the peer is retried every retryInterval until it answers', async () => {
  const p = new Pair();
  p.net.fate = () => 'drop';
  p.alice.engine.initiate('to-bob');
  await p.net.pump();
  await p.advance(166_000);
  assert.ok(p.alice.events.some((e) => e.type === 'ike-down' && e.reason === 'retransmit-limit'), 'first attempt given up');
  const before = p.net.log.filter((x) => isInit(x)).length;
  await p.advance(30_000);
  assert.equal(p.net.log.filter((x) => isInit(x)).length, before + 1, 'a new attempt after 30 s');
  p.net.fate = () => 'deliver';
  await p.advance(5_000);
  assert.equal(p.alice.engine.status().peers[0]?.ike?.state, 'established');
  assert.ok(mirrored(p.alice.kernel, p.bob.kernel), 'mirrored');
});

test('a refused attempt (wrong PSK) is retried after retryInterval, and terminate() stops the retries', async () => {
  const p = new Pair({ bobPsk: 'wrong' });
  await p.connect();
  await p.advance(30_000);
  const errs = p.alice.events.filter((e) => e.type === 'error').length;
  assert.equal(errs, 2, 'two attempts, two AUTHENTICATION_FAILED');
  await p.alice.engine.terminate('to-bob');
  const n = p.net.log.length;
  await p.advance(120_000);
  assert.equal(p.net.log.filter((x) => isInit(x)).length, p.net.log.slice(0, n).filter((x) => isInit(x)).length, 'no more attempts');
});

test('dpd.timeoutMs bounds an unanswered liveness check (CRD dpd.timeout) instead of the full retransmission schedule', async () => {
  const p = new Pair({ alice: { dpd: { intervalMs: 30_000, action: 'clear', timeoutMs: 20_000 } }, bob: { dpd: { intervalMs: 0, action: 'clear' } } });
  await p.connect();
  p.net.fate = () => 'drop';
  await p.advance(30_000 + 19_000);
  assert.equal(p.alice.events.filter((e) => e.type === 'ike-down').length, 0);
  await p.advance(1_000);
  assert.ok(p.alice.events.some((e) => e.type === 'ike-down' && e.reason === 'dpd-timeout'), 'down 20 s after the first DPD');
  const dpd = p.net.log.filter((x) => x.exchange === ExchangeType.INFORMATIONAL).map((x) => Math.round(x.atMs - p.net.log[0]!.atMs));
  assert.deepEqual(dpd, [30_000, 34_000, 41_200], 'sent at 0, 4, 11.2 s of the check; gave up at 20 s');
});
