// State-machine fuzz in CI (issue 14 "Hardening"): bounded runs of state-fuzz.ts against the
// initiator and the responder in every start state, with live wrong-PSK intruders, and one run on
// a fresh seed each time (printed on failure; KIPSEC_FUZZ_SEED=N reruns it). Long runs:
// scripts/fuzz-ike-state.ts. Each run throws StateFuzzFailure (seed, episode, last steps) on the
// first broken invariant: an exception out of receive or a timer, state past BOUNDS, an SA up
// that was not negotiated with the genuine peer, or a genuine pair that no longer works.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ExchangeType } from '../../../../src/ike/constants.js';
import { BOUNDS, runStateFuzz, START_STATES, type StateFuzzReport } from './state-fuzz.js';
import { ALICE, BOB, GENUINE_SEEDS, World } from './world.js';

function sum(o: Record<string, number>, keys: readonly string[]): number { return keys.reduce((a, k) => a + (o[k] ?? 0), 0); }

function withinBounds(r: StateFuzzReport): void {
  for (const [k, v] of Object.entries(r.peak)) assert.ok(v <= BOUNDS[k as keyof typeof BOUNDS], `${k} ${v}`);
}

for (const [i, start] of START_STATES.entries()) {
  test(`1,500 hostile inputs at the initiator and the responder from state "${start}": nothing escapes, state stays bounded, only the genuine peer's SAs come up, the pair recovers (DESIGN.md §9; RFC 7296 §2.1, §2.4, §2.15)`, async () => {
    const r = await runStateFuzz({ seed: 7_100 + i, inputs: 1_500, start, episodeInputs: 300 });
    assert.ok(r.byTarget.initiator > 0 && r.byTarget.responder > 0, JSON.stringify(r.byTarget));
    assert.ok(r.recoveries >= r.episodes, 'every episode ended with a working pair');
    withinBounds(r);
  });
}

test('a live intruder with the wrong PSK initiating to the responder never gets an SA up; its AUTH is refused (RFC 7296 §2.15, §2.21.2)', async () => {
  const r = await runStateFuzz({ seed: 7_200, inputs: 2_500, mode: 'intruder-initiator', variant: 'psk', episodeInputs: 200 });
  assert.ok(r.byTarget.intruder > 0, 'the intruder got answers');
  assert.ok(sum(r.errors, ['ERR_IKE_AUTH_FAILED', 'ERR_IKE_AUTHENTICATION_FAILED']) > 0, `AUTH was checked and refused: ${JSON.stringify(r.errors)}`);
});

test('a live intruder with the wrong PSK answering the initiator never gets an SA up at the initiator (RFC 7296 §2.15)', async () => {
  const r = await runStateFuzz({ seed: 7_300, inputs: 2_500, mode: 'intruder-responder', variant: 'psk', episodeInputs: 200 });
  assert.ok(r.byTarget.intruder > 0, 'the intruder got requests');
  assert.ok(sum(r.errors, ['ERR_IKE_AUTH_FAILED', 'ERR_IKE_AUTHENTICATION_FAILED']) > 0, `AUTH was checked and refused: ${JSON.stringify(r.errors)}`);
});

test('fragmented IKE_AUTH and CREATE_CHILD_SA under hostile input: reassembly stays within the engine-wide byte limit (RFC 7383 §2.6.1, DESIGN.md §9)', async () => {
  const r = await runStateFuzz({ seed: 7_400, inputs: 2_000, variant: 'fragmented', episodeInputs: 300 });
  assert.ok(r.peak.reassemblyBytes > 0, 'fragments were buffered');
  withinBounds(r);
});

test('the fuzz on a fresh seed each run (KIPSEC_FUZZ_SEED reruns one): the same invariants (DESIGN.md §9)', async (t) => {
  const seed = Number(process.env['KIPSEC_FUZZ_SEED'] ?? (Date.now() % 0x7fffffff));
  t.diagnostic(`seed ${seed}`);
  const r = await runStateFuzz({ seed, inputs: 4_000 });
  withinBounds(r);
});

test('the checker itself: an IKE SA whose SPIr came from the wrong-PSK intruder is not counted genuine, one between the genuine engines is', async () => {
  // Why: the "no SA without a verified AUTH" invariant is only as good as this classification.
  const w = new World('psk', GENUINE_SEEDS[0]!, 'intruder-responder');
  await w.setup('established', 'alice');
  const up = w.alice.events.find((e) => e.type === 'ike-up');
  assert.ok(up?.type === 'ike-up' && w.genuineInit(up.ikeSpis, ALICE) && w.genuineInit(up.ikeSpis, BOB), 'the genuine handshake is genuine from both sides');
  // Alice starts over; her requests now reach the intruder, who answers IKE_SA_INIT and refuses her AUTH.
  await w.alice.engine.terminate('to-bob');
  w.collect(); await w.settle();
  w.mode = 'intruder-responder';
  w.alice.engine.initiate('to-bob');
  await w.idle(); w.collect(); await w.settle();
  const auth = w.history.filter((p) => p.exchange === ExchangeType.IKE_AUTH && !p.response).at(-1)!;
  const v = new DataView(auth.datagram.buffer, auth.datagram.byteOffset);
  const spis = `${v.getBigUint64(0).toString(16).padStart(16, '0')}_i ${v.getBigUint64(8).toString(16).padStart(16, '0')}_r`;
  assert.ok(w.fromInit(spis), `negotiated by IKE_SA_INIT (${spis})`);
  assert.equal(w.genuineInit(spis, ALICE), false, 'with the intruder: not genuine');
  assert.notEqual(w.alice.engine.status().peers[0]?.ike?.state, 'established');
  await w.close();
});
