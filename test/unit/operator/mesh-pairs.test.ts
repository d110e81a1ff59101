// Mesh node pairs judged from the agents' IPsecNode statuses (src/operator/mesh-pairs.ts): side and
// pair rules, stale statuses, the worst-first order, and the transitions that become PairDown /
// PairUp Events (no Event for pairs never up, none while a pair stays down, no storm after a restart).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { IPsecMeshStatus, IPsecNode, NodePeerStatus } from '../../../src/api/types.js';
import {
  STALE_AFTER_MS, downPairs, evaluatePairs, nextStaleCheckMs, pairKey, worstPairs, type PairEvaluation,
} from '../../../src/operator/mesh-pairs.js';
import { memorySince, pairEvents, seedPairMemory, trackPairs, type PairMemory, type PairTransitions } from '../../../src/operator/mesh-pair-memory.js';

const T0 = Date.UTC(2026, 0, 1);
const iso = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
type Peer = Omit<NodePeerStatus, 'node'>;
const UP: Peer = { state: 'established' };

/** An IPsecNode whose agent reports `peers` (by peer name) and Ready. */
function node(name: string, peers: Record<string, Peer>, o: { ready?: boolean; lastUpdateMs?: number } = {}): IPsecNode {
  return {
    apiVersion: 'kipsec.io/v1alpha1', kind: 'IPsecNode', metadata: { name }, spec: { endpoint: { address: '192.0.2.1' } },
    status: {
      conditions: [{ type: 'Ready', status: (o.ready ?? true) ? 'True' : 'False', reason: 'x', message: '', lastTransitionTime: 't' }],
      peers: Object.entries(peers).map(([p, s]) => ({ node: p, ...s })),
      ...(o.lastUpdateMs !== undefined ? { lastUpdateTime: iso(o.lastUpdateMs) } : {}),
    },
  };
}

/** A full mesh of `names` where every side reports established, with overrides "a>b" = what a says of b. */
function mesh(names: readonly string[], over: Record<string, Peer | null> = {}, opts: Record<string, { ready?: boolean; lastUpdateMs?: number }> = {}): IPsecNode[] {
  return names.map((a) => {
    const peers: Record<string, Peer> = {};
    for (const b of names) {
      if (a === b) continue;
      const o = over[`${a}>${b}`];
      if (o === null) continue;
      peers[b] = o ?? UP;
    }
    return node(a, peers, opts[a] ?? {});
  });
}

const pairOf = (nodes: IPsecNode[], a: string, b: string, now = T0) => downPairs(evaluatePairs(nodes, now)).find((p) => p.key === pairKey(a, b));

test('pairsExpected is n·(n−1)/2 and a pair both sides report established or rekeying is established', () => {
  const ev = evaluatePairs(mesh(['a', 'b', 'c', 'd'], { 'a>b': { state: 'rekeying' } }), T0);
  assert.deepEqual([ev.expected, ev.established, downPairs(ev).length], [6, 6, 0]);
  assert.deepEqual([evaluatePairs([], T0).expected, evaluatePairs(mesh(['a']), T0).expected], [0, 0]);
});

test('a pair only one side reports established is half, and the message names the other side and what it says', () => {
  const p = pairOf(mesh(['a', 'b'], { 'b>a': { state: 'connecting' } }), 'a', 'b');
  assert.equal(p?.state, 'half');
  assert.equal(p?.message, 'b: connecting; a reports established');
});

test('a side reporting failed with a lastError makes the pair failed; the message names that side and its IKE notify', () => {
  const p = pairOf(mesh(['node-a', 'node-b'], {
    'node-a>node-b': { state: 'failed', lastError: { notify: 'AUTHENTICATION_FAILED', message: 'peer identity CN=node-x does not match IPsecNode node-b' } },
    'node-b>node-a': { state: 'connecting' },
  }), 'node-a', 'node-b');
  assert.equal(p?.state, 'failed');
  assert.equal(p?.message, 'node-a: AUTHENTICATION_FAILED: peer identity CN=node-x does not match IPsecNode node-b; node-b: connecting');
});

test('a side still connecting but carrying a lastError counts as failed (the agent is retrying after an error)', () => {
  const p = pairOf(mesh(['a', 'b'], { 'a>b': { state: 'connecting', lastError: { notify: 'NO_PROPOSAL_CHOSEN', message: 'peer offered aes128-sha1-modp1024' } }, 'b>a': { state: 'none' } }), 'a', 'b');
  assert.equal(p?.state, 'failed');
  assert.equal(p?.message, 'a: NO_PROPOSAL_CHOSEN: peer offered aes128-sha1-modp1024 (connecting); b: no SA yet');
});

test('state failed without a lastError is still failed; connecting/none/deleting without an error is connecting', () => {
  assert.equal(pairOf(mesh(['a', 'b'], { 'a>b': { state: 'failed' }, 'b>a': { state: 'connecting' } }), 'a', 'b')?.state, 'failed');
  assert.equal(pairOf(mesh(['a', 'b'], { 'a>b': { state: 'none' }, 'b>a': { state: 'deleting' } }), 'a', 'b')?.message, 'a: no SA yet; b: deleting');
  assert.equal(pairOf(mesh(['a', 'b'], { 'a>b': { state: 'none' }, 'b>a': null }), 'a', 'b')?.state, 'connecting');
});

test('a node whose agent does not list the other is not established: unknown when neither side reports, half when one side is up', () => {
  const both = pairOf(mesh(['a', 'b'], { 'a>b': null, 'b>a': null }), 'a', 'b');
  assert.deepEqual([both?.state, both?.message], ['unknown', 'a: does not report b; b: does not report a']);
  const one = pairOf(mesh(['a', 'b'], { 'b>a': null }), 'a', 'b');
  assert.deepEqual([one?.state, one?.message], ['half', 'b: does not report a; a reports established']);
});

test('an established side keeps the pair up although it carries an old lastError (history, not state)', () => {
  const ev = evaluatePairs(mesh(['a', 'b'], { 'a>b': { state: 'established', lastError: { message: 'retransmit timeout an hour ago' } } }), T0);
  assert.equal(ev.established, 1);
});

test('peers outside the given (selected) nodes are ignored: a report about a node not in the mesh makes no pair', () => {
  const ns = mesh(['a', 'b']);
  ns[0]!.status!.peers!.push({ node: 'elsewhere', state: 'failed' });
  const ev = evaluatePairs(ns, T0);
  assert.deepEqual([ev.expected, ev.established], [1, 1]);
});

test('stale status: a node not updated for more than 3 minutes is not trusted — its reports count as unknown (half with the fresh side)', () => {
  const nodes = mesh(['a', 'b'], {}, { a: { lastUpdateMs: T0 - STALE_AFTER_MS - 1 }, b: { lastUpdateMs: T0 } });
  const ev = evaluatePairs(nodes, T0);
  assert.equal(ev.nodes.find((n) => n.name === 'a')?.stale, true);
  const p = downPairs(ev)[0];
  assert.equal(p?.state, 'half');
  assert.match(p?.message ?? '', /^a: last heard from 2025-12-31T23:56:59Z by its status: agent down or cut off from the apiserver; b reports established$/);
  // Just inside the limit it is trusted; without lastUpdateTime it is never stale.
  assert.equal(evaluatePairs(mesh(['a', 'b'], {}, { a: { lastUpdateMs: T0 - STALE_AFTER_MS } }), T0).established, 1);
  assert.equal(evaluatePairs(mesh(['a', 'b']), T0 + 10 * STALE_AFTER_MS).established, 1);
});

test('nextStaleCheckMs is when the next fresh node would go stale (so the operator looks again without a watch event)', () => {
  const nodes = mesh(['a', 'b', 'c'], {}, { a: { lastUpdateMs: T0 - 60_000 }, b: { lastUpdateMs: T0 - 10_000 }, c: { lastUpdateMs: T0 - STALE_AFTER_MS - 5000 } });
  assert.equal(nextStaleCheckMs(nodes, T0), STALE_AFTER_MS - 60_000 + 1000);
  assert.equal(nextStaleCheckMs(mesh(['a']), T0), Infinity);
});

test('worstPairs: failed before connecting before half/unknown, then longest down first, at most 10', () => {
  const names = Array.from({ length: 8 }, (_, i) => `n${i}`);
  const over: Record<string, Peer | null> = {
    'n0>n1': { state: 'connecting' }, 'n1>n0': { state: 'connecting' }, // connecting
    'n2>n3': { state: 'failed', lastError: { notify: 'TS_UNACCEPTABLE', message: 'x' } }, 'n3>n2': { state: 'connecting' }, // failed
    'n4>n5': null, 'n6>n5': null, // half
  };
  for (let i = 0; i < 7; i++) { over[`n7>n${i}`] = null; over[`n${i}>n7`] = null; } // n7 and everyone silent about each other: unknown
  const ev = evaluatePairs(mesh(names, over), T0);
  const since = (i: number, j: number): number => (pairKey(ev.nodes[i]!.name, ev.nodes[j]!.name) === pairKey('n4', 'n5') ? Date.UTC(2025, 0, 1) : T0);
  const w = worstPairs(ev, since);
  assert.equal(w.length, 10);
  assert.deepEqual(w.slice(0, 4).map((p) => [p.nodes.join('-'), p.state]), [['n2-n3', 'failed'], ['n0-n1', 'connecting'], ['n4-n5', 'half'], ['n0-n7', 'unknown']]);
  assert.equal(w[2]?.since, '2025-01-01T00:00:00Z');
  assert.deepEqual([ev.counts.failed, ev.counts.connecting, ev.counts.half, ev.counts.unknown], [1, 1, 2, 7], 'all 11 down pairs are counted; status keeps 10');
  assert.deepEqual(worstPairs(ev, since, Infinity).map((p) => p.nodes.join('-')), [...w.map((p) => p.nodes.join('-')), 'n6-n7'], 'unbounded: every pair, same order');
});

const names = (ns: IPsecNode[]): string[] => ns.map((n) => n.metadata.name);
const downKeys = (t: PairTransitions, ev: PairEvaluation): string[] => t.wentDown.map(([i, j]) => pairKey(ev.nodes[i]!.name, ev.nodes[j]!.name));
/** The pairs the memory holds as down. */
const remembered = (m: PairMemory): string[] => m.names.flatMap((a, i) => m.names.slice(i + 1).filter((b) => memorySince(m, a, b) !== undefined).map((b) => pairKey(a, b)));
/** Track from memory `m` to the nodes `ns` at `now`; the evaluation comes along for the Events. */
function step(m: PairMemory, ns: IPsecNode[], now: number): { t: PairTransitions; ev: PairEvaluation } { const ev = evaluatePairs(ns, now); return { t: trackPairs(m, ev, now), ev }; }
const first = (ns: IPsecNode[], now = T0): PairMemory => trackPairs(seedPairMemory(undefined, names(ns), now), evaluatePairs(ns, now), now).memory;

test('PairDown: a pair that was established and is not any more emits one Warning naming the side and notify', () => {
  const mem = first(mesh(['node-a', 'node-b', 'node-c']));
  const { t, ev } = step(mem, mesh(['node-a', 'node-b', 'node-c'], { 'node-a>node-b': { state: 'failed', lastError: { notify: 'AUTHENTICATION_FAILED', message: 'peer identity mismatch' } } }), T0 + 5000);
  assert.deepEqual(downKeys(t, ev), ['node-a <-> node-b']);
  assert.deepEqual(pairEvents(t, ev, T0 + 5000, 10), [{ type: 'Warning', reason: 'PairDown', note: 'node-a <-> node-b: node-a: AUTHENTICATION_FAILED: peer identity mismatch; node-b reports established' }]);
  assert.equal(memorySince(t.memory, 'node-b', 'node-a'), iso(T0 + 5000));
});

test('a pair that stays down emits nothing more and keeps its since, even when its state changes (connecting → failed)', () => {
  const ns = ['a', 'b'];
  const s1 = step(first(mesh(ns)), mesh(ns, { 'a>b': { state: 'connecting' } }), T0 + 1000);
  assert.equal(s1.t.wentDown.length, 1);
  const s2 = step(s1.t.memory, mesh(ns, { 'a>b': { state: 'failed' }, 'b>a': { state: 'failed' } }), T0 + 60_000);
  assert.deepEqual([s2.t.wentDown.length, s2.t.cameUp.length, memorySince(s2.t.memory, 'a', 'b')], [0, 0, iso(T0 + 1000)]);
});

test('PairUp: a pair that went down and is established again emits one Normal Event with how long it was down', () => {
  const ns = ['a', 'b'];
  const s1 = step(first(mesh(ns)), mesh(ns, { 'a>b': { state: 'connecting' } }), T0 + 1000);
  const s2 = step(s1.t.memory, mesh(ns), T0 + 181_000);
  assert.deepEqual(pairEvents(s2.t, s2.ev, T0 + 181_000, 10), [{ type: 'Normal', reason: 'PairUp', note: `a <-> b: established (down since ${iso(T0 + 1000)}, 3m)` }]);
  assert.deepEqual(remembered(s2.t.memory), []);
});

test('no Event for pairs that were never up: a forming mesh, or a new node, coming up emits nothing', () => {
  const s1 = step(seedPairMemory(undefined, ['a', 'b', 'c'], T0), mesh(['a', 'b', 'c'], { 'a>b': null, 'b>a': null, 'a>c': { state: 'connecting' } }), T0);
  assert.deepEqual([s1.t.wentDown.length, remembered(s1.t.memory)], [0, ['a <-> b', 'a <-> c']]);
  const s2 = step(s1.t.memory, mesh(['a', 'b', 'c']), T0 + 1000);
  assert.deepEqual([s2.t.wentDown.length, s2.t.cameUp.length], [0, 0]);
  // A fourth node joins: its pairs are new, connecting, then up — no Events either way.
  const s3 = step(s2.t.memory, mesh(['a', 'b', 'c', 'd'], { 'a>d': null, 'b>d': null, 'c>d': null }), T0 + 2000);
  assert.deepEqual([s3.t.wentDown.length, remembered(s3.t.memory)], [0, ['a <-> d', 'b <-> d', 'c <-> d']]);
  const s4 = step(s3.t.memory, mesh(['a', 'b', 'c', 'd']), T0 + 3000);
  assert.deepEqual([s4.t.wentDown.length, s4.t.cameUp.length], [0, 0]);
  // Once up, the new node's pairs are watched like the others.
  const s5 = step(s4.t.memory, mesh(['a', 'b', 'c', 'd'], { 'a>d': { state: 'connecting' } }), T0 + 4000);
  assert.deepEqual(downKeys(s5.t, s5.ev), ['a <-> d']);
});

test('a node leaving the mesh forgets its pairs: no PairDown, no PairUp; a node joining in the middle keeps the others\' memory', () => {
  const s1 = step(first(mesh(['a', 'c', 'e'])), mesh(['a', 'c', 'e'], { 'a>e': { state: 'connecting' } }), T0 + 1000);
  assert.equal(s1.t.wentDown.length, 1);
  const s2 = step(s1.t.memory, mesh(['a', 'b', 'c', 'd', 'e'], { 'a>e': { state: 'connecting' } }), T0 + 2000);
  assert.deepEqual([s2.t.wentDown.length, memorySince(s2.t.memory, 'a', 'e')], [0, iso(T0 + 1000)], 'b and d sort between the old nodes');
  const s3 = step(s2.t.memory, mesh(['a', 'c']), T0 + 3000);
  assert.deepEqual([s3.t.wentDown.length, s3.t.cameUp.length, remembered(s3.t.memory)], [0, 0, []]);
});

test('a node going down makes n−1 PairDown Events, one per pair; a mass failure is capped at the limit plus one summary Event', () => {
  const ns = ['a', 'b', 'c', 'd', 'e'];
  const mem = first(mesh(ns));
  const over: Record<string, Peer | null> = {};
  for (const x of ns) if (x !== 'e') { over[`${x}>e`] = { state: 'connecting' }; over[`e>${x}`] = null; }
  const one = step(mem, mesh(ns, over), T0 + 1000);
  assert.deepEqual(pairEvents(one.t, one.ev, T0 + 1000, 5).map((e) => e.note.split(':')[0]), ['a <-> e', 'b <-> e', 'c <-> e', 'd <-> e']);
  const all: Record<string, Peer | null> = {};
  for (const x of ns) for (const y of ns) if (x !== y) all[`${x}>${y}`] = { state: 'connecting' };
  const mass = step(mem, mesh(ns, all), T0 + 1000);
  const evs = pairEvents(mass.t, mass.ev, T0 + 1000, 5);
  assert.equal(evs.length, 6);
  assert.equal(evs[5]?.note, '5 more pairs went down (10 in all); status.worstPairs lists the worst');
});

const statusOf = (o: Partial<IPsecMeshStatus>): IPsecMeshStatus => o;

test('after an operator restart: a complete previous status (all down pairs listed) lets a pair that broke meanwhile emit PairDown', () => {
  const ns = mesh(['a', 'b', 'c'], { 'a>b': { state: 'connecting' } });
  const { t, ev } = step(seedPairMemory(statusOf({ pairsExpected: 3, pairsEstablished: 3 }), names(ns), T0), ns, T0);
  assert.deepEqual(downKeys(t, ev), ['a <-> b']);
});

test('after an operator restart: pairs still down that the status listed keep their since and emit nothing (no storm)', () => {
  const ns = mesh(['a', 'b', 'c'], { 'a>b': { state: 'connecting' } });
  const prev = statusOf({ pairsExpected: 3, pairsEstablished: 2, worstPairs: [{ nodes: ['a', 'b'], state: 'connecting', since: '2025-12-31T00:00:00Z' }] });
  const { t } = step(seedPairMemory(prev, names(ns), T0), ns, T0);
  assert.deepEqual([t.wentDown.length, t.cameUp.length, memorySince(t.memory, 'a', 'b')], [0, 0, '2025-12-31T00:00:00Z']);
});

test('after an operator restart: a listed pair that comes back emits PairUp (the on-call saw it down)', () => {
  const prev = statusOf({ pairsExpected: 3, pairsEstablished: 2, worstPairs: [{ nodes: ['b', 'a'], state: 'failed', since: '2025-12-31T00:00:00Z' }] });
  const { t, ev } = step(seedPairMemory(prev, ['c', 'b', 'a'], T0), mesh(['a', 'b', 'c']), T0);
  assert.deepEqual(t.cameUp.map((u) => [pairKey(ev.nodes[u.i]!.name, ev.nodes[u.j]!.name), iso(u.downSinceMs)]), [['a <-> b', '2025-12-31T00:00:00Z']]);
});

test('after an operator restart: a truncated previous status (more pairs down than listed) or another node count makes unlisted down pairs never-up (no PairDown storm)', () => {
  const ns = ['a', 'b', 'c', 'd'];
  const down = mesh(ns, { 'a>b': { state: 'connecting' }, 'c>d': { state: 'connecting' }, 'a>c': { state: 'connecting' } });
  const truncated = statusOf({ pairsExpected: 6, pairsEstablished: 3, worstPairs: [{ nodes: ['a', 'b'], state: 'connecting', since: '2025-12-31T00:00:00Z' }] });
  assert.equal(step(seedPairMemory(truncated, ns, T0), down, T0).t.wentDown.length, 0);
  const otherCount = statusOf({ pairsExpected: 3, pairsEstablished: 3 });
  assert.equal(step(seedPairMemory(otherCount, ns, T0), down, T0).t.wentDown.length, 0);
  assert.equal(step(seedPairMemory(undefined, ns, T0), down, T0).t.wentDown.length, 0, 'no status at all: a new mesh');
});

test('scale: 1,000 nodes that report no peers (499,500 pairs down) evaluate, track and list the worst 10 without an object per pair', () => {
  const many = Array.from({ length: 1000 }, (_, i) => node(`ip-10-0-${Math.floor(i / 250)}-${i % 250}.ec2.internal`, {}));
  const t0 = performance.now();
  const s1 = step(seedPairMemory(undefined, names(many), T0), many, T0);
  const w = worstPairs(s1.ev, () => T0);
  const ms = performance.now() - t0;
  assert.deepEqual([s1.ev.expected, s1.ev.counts.unknown, w.length, s1.t.wentDown.length], [499_500, 499_500, 10, 0]);
  assert.ok(ms < 5000, `took ${ms.toFixed(0)} ms`);
});

test('a node listing only the peers not up (status.peersListed notUp, as agents of meshes over 100 peers write it) reports every unlisted peer up, but only while it expects every other node; someNotUp leaves the unlisted unknown', () => {
  const names = ['a', 'b', 'c', 'd'];
  const nodes = mesh(names, { 'a>b': null, 'a>c': null, 'a>d': { state: 'connecting' } });
  const listing = (n: IPsecNode, peersListed: 'notUp' | 'someNotUp', peersExpected: number): IPsecNode => ({ ...n, status: { ...n.status, peersListed, peersExpected } });
  const judged = (a: IPsecNode): PairEvaluation => evaluatePairs([a, ...nodes.slice(1)], T0);
  const full = judged(listing(nodes[0]!, 'notUp', 3));
  assert.deepEqual([full.established, downPairs(full).map((p) => [p.key, p.state])], [5, [['a <-> d', 'half']]]);
  assert.match(downPairs(full)[0]!.message, /a: no SA yet|a: connecting/);
  assert.equal(pairOf([listing(nodes[0]!, 'notUp', 3), ...nodes.slice(1)], 'a', 'b'), undefined, 'a <-> b established');
  const behind = judged(listing(nodes[0]!, 'notUp', 2));
  assert.deepEqual(downPairs(behind).map((p) => [p.key, p.state]), [['a <-> b', 'half'], ['a <-> c', 'half'], ['a <-> d', 'half']], 'a expects 2 peers of 3: it has not seen a join');
  assert.match(pairOf([listing(nodes[0]!, 'notUp', 2), ...nodes.slice(1)], 'a', 'b')!.message, /a: does not report b/);
  const truncated = judged(listing(nodes[0]!, 'someNotUp', 3));
  assert.deepEqual(downPairs(truncated).map((p) => p.state), ['half', 'half', 'half']);
});
