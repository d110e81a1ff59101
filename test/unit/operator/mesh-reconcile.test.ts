// reconcileMesh against fake caches, a recording apiserver and a manual clock: status written only
// on change and at most once a second, PairDown/PairUp Events on transitions only, nothing after an
// operator restart when nothing changed, and a requeue for the moment a node's status goes stale.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../../src/common/time.js';
import type { IPsecMesh, IPsecMeshStatus, IPsecNode, NodePeerStatus } from '../../../src/api/types.js';
import type { NodeLease } from '../../../src/api/node-lease.js';
import type { Ctx, MeshMemory } from '../../../src/operator/context.js';
import type { KNode } from '../../../src/operator/kinds.js';
import { OperatorMetrics } from '../../../src/operator/metrics.js';
import { STALE_AFTER_MS } from '../../../src/operator/mesh-pairs.js';
import { reconcileMesh } from '../../../src/operator/resource-controllers.js';

type Peer = Omit<NodePeerStatus, 'node'>;

class Cache<T extends { metadata: { name: string } }> {
  readonly m = new Map<string, T>();
  get(name: string): T | undefined { return this.m.get(name); }
  list(): T[] { return [...this.m.values()]; }
  put(x: T): void { this.m.set(x.metadata.name, x); }
  delete(name: string): void { this.m.delete(name); }
}

interface Fake {
  ctx: Ctx; clock: ManualClock; meshes: Cache<IPsecMesh>; ipsecNodes: Cache<IPsecNode>; nodes: Cache<KNode>; nodeLeases: Map<string, NodeLease>;
  writes: IPsecMeshStatus[]; preconditions: (string | undefined)[]; events: { type: string; reason: string; note: string }[];
  /** The watch delivering our last write into the cache. */
  sync(): void;
  memory: Map<string, MeshMemory>;
}

function fake(): Fake {
  const clock = new ManualClock(Date.UTC(2026, 0, 1));
  const meshes = new Cache<IPsecMesh>(); const ipsecNodes = new Cache<IPsecNode>(); const nodes = new Cache<KNode>();
  const nodeLeases = new Map<string, NodeLease>(); // keyed namespace/name, as the informer keys them
  const writes: IPsecMeshStatus[] = []; const preconditions: (string | undefined)[] = []; const events: Fake['events'] = [];
  let rv = 1;
  meshes.put({ apiVersion: 'kipsec.io/v1alpha1', kind: 'IPsecMesh', metadata: { name: 'default', generation: 1, resourceVersion: String(rv) }, spec: { nodeSelector: { mesh: 'yes' } } });
  const memory = new Map<string, MeshMemory>();
  const ctx = {
    clock, meshMemory: memory, csrsIssued: new Set(), identityWritten: new Map(), ca: { state: undefined, progress: () => undefined }, metrics: new OperatorMetrics(),
    namespace: 'kipsec-system', caches: { meshes, ipsecNodes, nodes, nodeLeases },
    // Like the apiserver: the write's precondition is recorded, and it answers with a new resourceVersion.
    kube: { apply: (_path: string, obj: { metadata: { resourceVersion?: string }; status: IPsecMeshStatus }) => { writes.push(obj.status); preconditions.push(obj.metadata.resourceVersion); return Promise.resolve({ ...obj, metadata: { ...obj.metadata, resourceVersion: `written-${writes.length}` } }); } },
    events: { emit: (_r: unknown, type: string, reason: string, _a: string, note: string) => { events.push({ type, reason, note }); } },
  } as unknown as Ctx;
  const sync = (): void => { const m = meshes.get('default')!; const last = writes[writes.length - 1]; meshes.put({ ...m, metadata: { ...m.metadata, resourceVersion: String(++rv) }, ...(last ? { status: last } : {}) }); };
  return { ctx, clock, meshes, ipsecNodes, nodes, nodeLeases, writes, preconditions, events, sync, memory };
}

/** Put `names` in the mesh, every side established except the overrides ("a>b": what a says of b; null: not listed). */
function agents(f: Fake, names: readonly string[], over: Record<string, Peer | null> = {}, lastUpdateMs?: number): void {
  for (const a of names) {
    f.nodes.put({ metadata: { name: a, labels: { mesh: 'yes' } } });
    const peers: NodePeerStatus[] = [];
    for (const b of names) {
      if (a === b || over[`${a}>${b}`] === null) continue;
      peers.push({ node: b, ...(over[`${a}>${b}`] ?? { state: 'established' }) });
    }
    f.ipsecNodes.put({ apiVersion: 'kipsec.io/v1alpha1', kind: 'IPsecNode', metadata: { name: a }, spec: { endpoint: { address: '192.0.2.1' } }, status: {
      peers, ...(lastUpdateMs !== undefined ? { lastUpdateTime: new Date(lastUpdateMs).toISOString() } : {}),
      conditions: [{ type: 'Ready', status: 'True', reason: 'x', message: '', lastTransitionTime: 't' }, { type: 'IdentityVerified', status: 'True', reason: 'x', message: '', lastTransitionTime: 't' }],
    } });
  }
}

const NAMES = ['node-a', 'node-b', 'node-c'];
const pairEvents = (f: Fake) => f.events.filter((e) => e.reason === 'PairDown' || e.reason === 'PairUp');

test('a forming mesh: one status write with pairs, no PairDown/PairUp for pairs that were never up; nothing rewritten when nothing changed', async () => {
  const f = fake();
  agents(f, NAMES, { 'node-a>node-b': { state: 'connecting' }, 'node-b>node-a': null });
  await reconcileMesh(f.ctx, 'default');
  assert.equal(f.writes.length, 1);
  assert.deepEqual([f.writes[0]?.pairsEstablished, f.writes[0]?.pairsExpected, f.writes[0]?.worstPairs?.[0]?.state], [2, 3, 'connecting']);
  f.clock.advance(2000); agents(f, NAMES);
  await reconcileMesh(f.ctx, 'default');
  assert.equal(f.writes.length, 2);
  assert.equal(f.writes[1]?.pairsEstablished, 3);
  assert.deepEqual(pairEvents(f), [], 'pairs coming up for the first time make no Events');
  f.sync(); f.clock.advance(5000);
  await reconcileMesh(f.ctx, 'default');
  assert.equal(f.writes.length, 2, 'converged: no write');
  const gauge = (await f.ctx.metrics.meshPairs.get()).values.filter((v) => v.labels['mesh'] === 'default').map((v) => [v.labels['state'], v.value]);
  assert.deepEqual(Object.fromEntries(gauge), { established: 3, connecting: 0, failed: 0, half: 0, unknown: 0 }, 'kipsec_operator_mesh_pairs by state');
});

test('our own write not yet in the cache is not written again (the cache lags behind the apiserver)', async () => {
  const f = fake();
  agents(f, NAMES);
  await reconcileMesh(f.ctx, 'default');
  f.clock.advance(1500);
  await reconcileMesh(f.ctx, 'default'); // the watch has not delivered our write yet
  assert.equal(f.writes.length, 1);
});

test('a pair going down: one write, one PairDown naming the side and notify; while it stays down no more Events; back up: one PairUp', async () => {
  const f = fake();
  agents(f, NAMES); await reconcileMesh(f.ctx, 'default'); f.sync();
  f.clock.advance(10_000);
  agents(f, NAMES, { 'node-a>node-c': { state: 'failed', lastError: { notify: 'AUTHENTICATION_FAILED', message: 'peer identity mismatch' } }, 'node-c>node-a': { state: 'connecting' } });
  await reconcileMesh(f.ctx, 'default'); f.sync();
  assert.equal(f.writes.length, 2);
  assert.deepEqual(pairEvents(f), [{ type: 'Warning', reason: 'PairDown', note: 'node-a <-> node-c: node-a: AUTHENTICATION_FAILED: peer identity mismatch; node-c: connecting' }]);
  const since = f.writes[1]?.worstPairs?.[0]?.since;
  f.clock.advance(30_000);
  agents(f, NAMES, { 'node-a>node-c': { state: 'connecting' }, 'node-c>node-a': { state: 'connecting' } });
  await reconcileMesh(f.ctx, 'default'); f.sync();
  assert.equal(pairEvents(f).length, 1, 'still down: no second PairDown');
  assert.deepEqual([f.writes[2]?.worstPairs?.[0]?.state, f.writes[2]?.worstPairs?.[0]?.since], ['connecting', since], 'since is kept');
  f.clock.advance(30_000);
  agents(f, NAMES);
  await reconcileMesh(f.ctx, 'default');
  assert.deepEqual(pairEvents(f).map((e) => [e.type, e.reason, e.note.split(':')[0]]), [['Warning', 'PairDown', 'node-a <-> node-c'], ['Normal', 'PairUp', 'node-a <-> node-c']]);
});

test('at most one status write a second per mesh: a change right after a write waits, and its Events come with the write', async () => {
  const f = fake();
  agents(f, NAMES); await reconcileMesh(f.ctx, 'default'); f.sync();
  f.clock.advance(300);
  agents(f, NAMES, { 'node-a>node-b': { state: 'connecting' }, 'node-b>node-a': { state: 'connecting' } });
  const again = await reconcileMesh(f.ctx, 'default');
  assert.deepEqual([f.writes.length, again, pairEvents(f).length], [1, 700, 0]);
  f.clock.advance(700);
  await reconcileMesh(f.ctx, 'default');
  assert.deepEqual([f.writes.length, pairEvents(f).length], [2, 1]);
});

test('operator restart (memory lost, status in the cache): nothing changed → no write and no Event; a pair that broke meanwhile → PairDown', async () => {
  const f = fake();
  agents(f, NAMES, { 'node-a>node-b': { state: 'connecting' }, 'node-b>node-a': { state: 'connecting' } });
  await reconcileMesh(f.ctx, 'default'); f.sync();
  assert.equal(f.writes.length, 1);
  f.memory.clear(); f.clock.advance(60_000);
  await reconcileMesh(f.ctx, 'default');
  assert.deepEqual([f.writes.length, pairEvents(f).length], [1, 0]);
  f.memory.clear(); f.clock.advance(60_000);
  agents(f, NAMES, { 'node-a>node-b': { state: 'connecting' }, 'node-b>node-a': { state: 'connecting' }, 'node-b>node-c': { state: 'connecting' }, 'node-c>node-b': { state: 'connecting' } });
  await reconcileMesh(f.ctx, 'default');
  assert.deepEqual(pairEvents(f).map((e) => e.note.split(':')[0]), ['node-b <-> node-c'], 'b-c was up in the complete previous status; a-b stays down silently');
});

test('a node whose agent stops updating: the reconcile comes back when it goes stale, then its pairs are down (PairDown each) and it is not ready', async () => {
  const f = fake();
  const t0 = f.clock.now();
  agents(f, NAMES, {}, t0);
  const again = await reconcileMesh(f.ctx, 'default'); f.sync();
  assert.equal(again, STALE_AFTER_MS + 1000);
  // node-b and node-c keep refreshing; node-a's agent is gone.
  f.clock.advance(again!);
  const a = f.ipsecNodes.get('node-a')!;
  agents(f, ['node-b', 'node-c', 'node-a'], {}, f.clock.now());
  f.ipsecNodes.put(a);
  await reconcileMesh(f.ctx, 'default');
  const st = f.writes[1];
  assert.deepEqual([st?.nodesReady, st?.pairsEstablished, st?.worstPairs?.map((p) => p.state)], [2, 1, ['half', 'half']]);
  assert.deepEqual(pairEvents(f).map((e) => e.note.split(':')[0]), ['node-a <-> node-b', 'node-a <-> node-c']);
});

test('nodes not selected by the mesh\'s nodeSelector are not part of its pairs', async () => {
  const f = fake();
  agents(f, NAMES);
  f.nodes.put({ metadata: { name: 'node-c', labels: {} } });
  await reconcileMesh(f.ctx, 'default');
  assert.deepEqual([f.writes[0]?.nodesTotal, f.writes[0]?.pairsExpected, f.writes[0]?.pairsEstablished], [2, 1, 1]);
});

// Why: a forced server-side apply without a resourceVersion overwrites whatever is there, so a
// status computed from a stale cache (or sent late by a deposed leader) would land silently.
test('Kubernetes API conventions, optimistic concurrency: each mesh status apply carries the resourceVersion it builds on — the cached one, or, while the cache lags behind our own write, the one that write returned', async () => {
  const f = fake();
  agents(f, NAMES, { 'node-a>node-b': { state: 'connecting' } });
  await reconcileMesh(f.ctx, 'default');
  f.clock.advance(2000); agents(f, NAMES);
  await reconcileMesh(f.ctx, 'default'); // the cache has not seen the first write yet
  f.sync(); f.clock.advance(2000); agents(f, NAMES, { 'node-a>node-c': { state: 'failed' } });
  await reconcileMesh(f.ctx, 'default');
  assert.deepEqual(f.preconditions, ['1', 'written-1', '2']);
});
