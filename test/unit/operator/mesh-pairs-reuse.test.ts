// The mesh reconcile's O(n²) pair work is done again only when a pair can have changed (issue 16:
// at 5,000 nodes it took 1–2 s of CPU per reconcile, once a second, while agents published their
// identities). What is reused must be exactly what a fresh computation gives.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { IPsecNode, NodePeerStatus } from '../../../src/api/types.js';
import { evaluatePairs, worstPairs } from '../../../src/operator/mesh-pairs.js';
import { memorySince, memorySinceFn, seedPairMemory, trackPairs } from '../../../src/operator/mesh-pair-memory.js';
import { meshBatchMs } from '../../../src/operator/operator.js';

const T0 = Date.UTC(2026, 0, 2);
type Peer = Omit<NodePeerStatus, 'node'>;
const iso = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

/** Fresh objects every call, as the informer gives after an update. `tag` changes something no pair reads. */
function nodes(names: readonly string[], says: Record<string, Peer> = {}, tag = ''): IPsecNode[] {
  return names.map((a) => ({
    apiVersion: 'kipsec.io/v1alpha1', kind: 'IPsecNode', metadata: { name: a, resourceVersion: tag }, spec: { endpoint: { address: '192.0.2.1' }, identity: { certFingerprint: tag } },
    status: { peers: names.filter((b) => b !== a).map((b) => ({ node: b, ...(says[`${a}>${b}`] ?? { state: 'established' }) })) },
  }));
}
const names = ['reuse-a', 'reuse-b', 'reuse-c', 'reuse-d'];

test('updates that change no peer report reuse the pair codes, and tracking them again changes nothing', () => {
  const down: Record<string, Peer> = { 'reuse-a>reuse-b': { state: 'failed', lastError: { message: 'first' } } };
  const ev1 = evaluatePairs(nodes(names, down, '1'), T0);
  const tr1 = trackPairs(seedPairMemory(undefined, names, T0), ev1, T0);
  // New objects, new identities, same peer reports: same codes object, no transitions, same memory.
  const ev2 = evaluatePairs(nodes(names, down, '2'), T0 + 1000);
  assert.equal(ev2.codes, ev1.codes);
  assert.deepEqual([ev2.expected, ev2.established, ev2.counts], [ev1.expected, ev1.established, ev1.counts]);
  const tr2 = trackPairs(tr1.memory, ev2, T0 + 1000);
  assert.equal(tr2.memory, tr1.memory);
  assert.deepEqual([tr2.wentDown, tr2.cameUp], [[], []]);
});

test('a changed peer report, or a node more, is evaluated afresh and agrees with a cold evaluation', () => {
  const ev1 = evaluatePairs(nodes(names, {}, '1'), T0);
  const broken = nodes(names, { 'reuse-c>reuse-d': { state: 'connecting' } }, '2');
  const ev2 = evaluatePairs(broken, T0);
  assert.notEqual(ev2.codes, ev1.codes);
  assert.equal(ev2.established, ev1.established - 1);
  assert.equal(ev2.counts.half, 1);
  const more = evaluatePairs(nodes([...names, 'reuse-e'], {}, '3'), T0);
  assert.equal(more.expected, 10);
  // The same inputs evaluated again after other lists were seen still give the same answer.
  assert.deepEqual(evaluatePairs(broken, T0).counts, ev2.counts);
});

test('a reused worst-pair selection carries the messages of today, not of when it was selected', () => {
  const say = (message: string): Record<string, Peer> => ({ 'reuse-a>reuse-b': { state: 'failed', lastError: { notify: 'AUTHENTICATION_FAILED', message } } });
  const ev1 = evaluatePairs(nodes(names, say('old words'), '1'), T0);
  const mem = trackPairs(seedPairMemory(undefined, names, T0), ev1, T0).memory;
  assert.match(worstPairs(ev1, memorySinceFn(mem))[0]?.message ?? '', /old words/);
  const ev2 = evaluatePairs(nodes(names, say('new words'), '2'), T0 + 5000);
  assert.equal(ev2.codes, ev1.codes, 'same states: the codes are reused');
  const mem2 = trackPairs(mem, ev2, T0 + 5000).memory;
  assert.equal(memorySinceFn(mem2), memorySinceFn(mem), 'one since function per memory');
  const w = worstPairs(ev2, memorySinceFn(mem2));
  assert.equal(w.length, 1);
  assert.match(w[0]?.message ?? '', /reuse-a: AUTHENTICATION_FAILED: new words/);
  assert.equal(w[0]!.since, new Date(T0).toISOString().replace(/\.\d{3}Z$/, 'Z'));
});

test('the pair memory keeps every since through more distinct down-seconds than one index byte holds, and shrinks back to four-bit indexes', () => {
  const ns = Array.from({ length: 30 }, (_, i) => `many-${String(i).padStart(2, '0')}`);
  const pairs = ns.flatMap((a, i) => ns.slice(i + 1).map((b) => [a, b] as const));
  const downAt = (upTo: number, from = 0): Record<string, Peer> =>
    Object.fromEntries(pairs.slice(from, upTo).map(([a, b]) => [`${a}>${b}`, { state: 'connecting' as const }]));
  let mem = trackPairs(seedPairMemory(undefined, ns, T0), evaluatePairs(nodes(ns, {}, 's'), T0), T0).memory;
  assert.equal(mem.at.bits, 4, 'a short table: four bits a pair');
  // Pair p goes down in second p: 300 distinct sinces.
  for (let p = 0; p < 300; p++) mem = trackPairs(mem, evaluatePairs(nodes(ns, downAt(p + 1), `d${p}`), T0 + p * 1000), T0 + p * 1000).memory;
  assert.ok(mem.at.bits === 16 && mem.at.data instanceof Uint16Array, 'more than 256 states in use: two-byte indexes');
  for (const p of [0, 1, 254, 255, 299]) assert.equal(memorySince(mem, pairs[p]![0], pairs[p]![1]), iso(T0 + p * 1000), `pair ${p}`);
  // All but the last ten come back: their states are dropped at the next compaction, four bits again.
  const back = T0 + 400_000;
  const t = trackPairs(mem, evaluatePairs(nodes(ns, downAt(300, 290), 'back'), back), back);
  assert.equal(t.cameUp.length, 290);
  assert.equal(t.cameUp[0]!.downSinceMs, T0);
  const again = trackPairs(t.memory, evaluatePairs(nodes(ns, downAt(301, 290), 'more'), back + 1000), back + 1000).memory;
  assert.equal(again.at.bits, 4);
  assert.ok(again.states.length <= 14, `${again.states.length} states`);
  for (const p of [290, 299]) assert.equal(memorySince(again, pairs[p]![0], pairs[p]![1]), iso(T0 + p * 1000));
  assert.equal(memorySince(again, pairs[300]![0], pairs[300]![1]), iso(back + 1000));
  assert.equal(memorySince(again, pairs[0]![0], pairs[0]![1]), undefined);
});

test('mesh batching waits 1 s, or ten times the last reconcile when that took more than 100 ms', () => {
  assert.equal(meshBatchMs(undefined), 1000);
  assert.equal(meshBatchMs(20), 1000);
  assert.equal(meshBatchMs(450.2), 4502);
});

test('rows shared between a node\'s old and new objects follow each report: down, up again, down elsewhere', () => {
  // Unchanged rows are shared with the last evaluation's, changed ones built afresh (mesh-pairs.ts rowOf).
  const steps: [Record<string, Peer>, number][] = [
    [{}, 0], [{ 'reuse-a>reuse-b': { state: 'connecting' } }, 1], [{}, 0],
    [{ 'reuse-c>reuse-d': { state: 'failed', lastError: { message: 'x' } }, 'reuse-b>reuse-a': { state: 'connecting' } }, 2], [{}, 0],
  ];
  steps.forEach(([says, down], k) => {
    const ev = evaluatePairs(nodes(names, says, `step-${k}`), T0);
    assert.equal(ev.expected - ev.established, down, `step ${k}`);
    if (down === 0) assert.equal(ev.counts.established, 6);
  });
});
