// The agent's heartbeat and its status writes (src/agent/mesh/node-lease.ts, publisher.ts), against
// a fake apiserver that keeps resourceVersions like the real one: the node Lease is created once
// (labelled, owned by the IPsecNode) and then updated in place every third of its duration; a 409
// or a 404 is met by reading it again or creating it; the IPsecNode status is not rewritten while
// nothing changes. Peers' Leases are read by name, only those asked for, bounded and cached.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../../../src/common/time.js';
import type { KubeClient } from '../../../../src/api/kube/client.js';
import { KubeApiError } from '../../../../src/api/kube/errors.js';
import { NODE_LEASE_LABEL, type NodeLease } from '../../../../src/api/node-lease.js';
import type { IPsecNodeStatus } from '../../../../src/api/types.js';
import { NodeLeaseRenewer, PeerLeases } from '../../../../src/agent/mesh/node-lease.js';
import { NodePublisher } from '../../../../src/agent/mesh/publisher.js';
import { logSink } from '../fakes.js';

interface Call { readonly verb: string; readonly path: string }
interface Stored { metadata: { name: string; resourceVersion?: string; uid?: string; [k: string]: unknown }; [k: string]: unknown }

/** Objects by path; PUT needs the stored resourceVersion (else 409), GET of a missing one is 404. */
function fakeApiserver(): { kube: KubeClient; calls: Call[]; objects: Map<string, Stored> } {
  const objects = new Map<string, Stored>();
  const calls: Call[] = [];
  let rv = 100;
  const notFound = (path: string): KubeApiError => new KubeApiError(404, 'NotFound', `${path} not found`);
  const store = (path: string, o: Stored): Stored => { const saved = { ...o, metadata: { ...o.metadata, resourceVersion: String(++rv), uid: o.metadata.uid ?? `uid-${path}` } }; objects.set(path, saved); return structuredClone(saved); };
  const kube = {
    get: (path: string) => { calls.push({ verb: 'GET', path }); const o = objects.get(path); return o ? Promise.resolve(structuredClone(o)) : Promise.reject(notFound(path)); },
    create: (path: string, body: Stored) => {
      calls.push({ verb: 'POST', path });
      const full = `${path}/${body.metadata.name}`;
      if (objects.has(full)) return Promise.reject(new KubeApiError(409, 'AlreadyExists', 'exists'));
      return Promise.resolve(store(full, body));
    },
    update: (path: string, body: Stored) => {
      calls.push({ verb: 'PUT', path });
      const o = objects.get(path);
      if (!o) return Promise.reject(notFound(path));
      if (o.metadata.resourceVersion !== body.metadata.resourceVersion) return Promise.reject(new KubeApiError(409, 'Conflict', 'the object has been modified'));
      return Promise.resolve(store(path, { ...body, metadata: { ...body.metadata, ...(o.metadata.uid !== undefined ? { uid: o.metadata.uid } : {}) } }));
    },
    apply: (path: string, body: Stored) => { calls.push({ verb: 'APPLY', path }); return Promise.resolve(store(path, { ...objects.get(path), ...body, metadata: { ...objects.get(path)?.metadata, ...body.metadata } })); },
  } as unknown as KubeClient;
  return { kube, calls, objects };
}

/** Advance in small steps, letting the async writes each timer starts finish in between. */
async function run(clock: ManualClock, ms: number, stepMs = 100): Promise<void> {
  const flush = async (): Promise<void> => { for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r)); };
  for (let t = 0; t < ms; t += stepMs) { await flush(); clock.advance(Math.min(stepMs, ms - t)); await flush(); }
}

const LEASE = '/apis/coordination.k8s.io/v1/namespaces/kipsec-system/leases/kipsec-node-node-a';

function status(nowMs: number, peersUp = 1): IPsecNodeStatus {
  return { conditions: [{ type: 'Ready', status: 'True', reason: 'PeersEstablished', message: `${peersUp}/1 peers established`, lastTransitionTime: '2026-01-01T00:00:00Z' }], peersUp, peersExpected: 1, lastUpdateTime: new Date(nowMs).toISOString() };
}

test('the node Lease is created once, labelled and owned by the IPsecNode, then updated in place every third of its duration (one PUT a period, no reads)', async () => {
  const clock = new ManualClock(Date.UTC(2026, 11, 7));
  const { kube, calls, objects } = fakeApiserver();
  const p = new NodePublisher({ kube, node: 'node-a', namespace: 'kipsec-system', clock, log: logSink().log, leaseDurationMs: 30_000 });
  await p.publishSpec({ endpoint: { address: '192.0.2.1' } });
  assert.equal(calls.filter((c) => c.path === LEASE || c.path.endsWith('/leases')).length, 0, 'no heartbeat before the agent runs (its first status)');
  p.offer(status(clock.now()));
  await run(clock, 60_000);
  const l = objects.get(LEASE) as unknown as NodeLease;
  assert.deepEqual([l.spec?.holderIdentity, l.spec?.leaseDurationSeconds, l.metadata.labels?.[NODE_LEASE_LABEL]], ['node-a', 30, 'true']);
  assert.deepEqual(l.metadata.ownerReferences, [{ apiVersion: 'kipsec.io/v1alpha1', kind: 'IPsecNode', name: 'node-a', uid: 'uid-/apis/kipsec.io/v1alpha1/ipsecnodes/node-a' }]);
  const leaseCalls = calls.filter((c) => c.path.includes('/leases'));
  assert.deepEqual(leaseCalls.slice(0, 2).map((c) => c.verb), ['GET', 'POST'], 'looked for, then created');
  assert.deepEqual(new Set(leaseCalls.slice(2).map((c) => c.verb)), new Set(['PUT']));
  assert.equal(leaseCalls.length - 2, 6, 'renewed every 10 s for 60 s');
  assert.equal(l.spec?.renewTime, '2026-12-07T00:01:00.000000Z');
  p.stop();
  await run(clock, 60_000);
  assert.equal(calls.filter((c) => c.path.includes('/leases')).length, leaseCalls.length, 'nothing after stop (a SIGTERM leaves the Lease to expire or to the next process)');
});

test('a renewal meeting a 409 (the Lease was written by someone else) or a 404 (deleted) reads it again or creates it; the holder and label are restored', async () => {
  const clock = new ManualClock(Date.UTC(2026, 11, 7));
  const { kube, calls, objects } = fakeApiserver();
  const r = new NodeLeaseRenewer({ kube, namespace: 'kipsec-system', node: 'node-a', clock, log: logSink().log, durationMs: 30_000 });
  await r.renew();
  const o = objects.get(LEASE)!;
  objects.set(LEASE, { ...o, metadata: { ...o.metadata, resourceVersion: '999', labels: {} }, spec: { holderIdentity: 'intruder', renewTime: '2020-01-01T00:00:00.000000Z' } });
  await r.renew();
  const after = objects.get(LEASE) as unknown as NodeLease;
  assert.deepEqual([after.spec?.holderIdentity, after.metadata.labels?.[NODE_LEASE_LABEL]], ['node-a', 'true']);
  assert.deepEqual(calls.slice(-3).map((c) => c.verb), ['PUT', 'GET', 'PUT'], 'refused, read, written');
  objects.delete(LEASE);
  await r.renew();
  assert.deepEqual(calls.slice(-3).map((c) => c.verb), ['PUT', 'GET', 'POST']);
  assert.deepEqual([r.stats.creates, r.stats.renewals], [2, 1], 'created, renewed after the 409, created again after the 404');
});

test('a failing renewal is retried within the period and logged once, not per attempt', async () => {
  const clock = new ManualClock(Date.UTC(2026, 11, 7));
  const sink = logSink();
  let failing = true;
  const fails = { get: () => (failing ? Promise.reject(new KubeApiError(503, 'ServiceUnavailable', 'etcd')) : Promise.reject(new KubeApiError(404, 'NotFound', 'x'))), create: (_p: string, b: unknown) => Promise.resolve(b) } as unknown as KubeClient;
  const r = new NodeLeaseRenewer({ kube: fails, namespace: 'kipsec-system', node: 'node-a', clock, log: sink.log, durationMs: 180_000 });
  r.start();
  await run(clock, 30_000, 1_000);
  assert.ok(r.stats.failures >= 6 && r.stats.failures <= 7, `${r.stats.failures} attempts in 30 s: every 5 s, not every period (60 s)`);
  assert.equal(sink.lines.filter((l) => l.includes('node Lease renewal failed')).length, 1);
  failing = false;
  await run(clock, 5_000, 1_000);
  assert.equal(r.stats.creates, 1);
  r.stop();
});

test('the IPsecNode status is not rewritten while nothing changes (an hour of ticks: one write), a change goes out within minIntervalMs', async () => {
  const clock = new ManualClock(Date.UTC(2026, 11, 7));
  const { kube, calls } = fakeApiserver();
  const p = new NodePublisher({ kube, node: 'node-a', namespace: 'kipsec-system', clock, log: logSink().log, minIntervalMs: 2_000 });
  const statusWrites = (): number => calls.filter((c) => c.path.endsWith('/status')).length;
  for (let i = 0; i < 720; i++) { p.offer(status(clock.now())); await run(clock, 5_000, 5_000); }
  assert.equal(statusWrites(), 1, 'the heartbeat is the Lease, not lastUpdateTime');
  assert.equal(calls.filter((c) => c.verb === 'PUT' && c.path === LEASE).length, 60, 'the Lease: created at the start, renewed every 60 s (a third of 180 s) to the hour');
  p.offer(status(clock.now(), 0));
  await run(clock, 2_000, 500);
  assert.equal(statusWrites(), 2);
  p.stop();
});

test('PeerLeases: reads only the Leases asked for, at most maxReads per call, each kept for minAgeMs; a missing one is remembered as none', async () => {
  const clock = new ManualClock(Date.UTC(2026, 11, 7));
  const { kube, calls, objects } = fakeApiserver();
  objects.set('/apis/coordination.k8s.io/v1/namespaces/kipsec-system/leases/kipsec-node-b', { metadata: { name: 'kipsec-node-b' }, spec: { holderIdentity: 'b' } });
  const peers = new PeerLeases({ kube, namespace: 'kipsec-system', clock, minAgeMs: 10_000, maxReads: 2 });
  await peers.refresh(['b', 'c', 'd']);
  assert.equal(calls.length, 2, 'bounded');
  assert.deepEqual([peers.get('b')?.spec?.holderIdentity, peers.get('c')], ['b', undefined]);
  await peers.refresh(['b', 'c', 'd']);
  assert.deepEqual(calls.map((c) => c.path.split('/').pop()), ['kipsec-node-b', 'kipsec-node-c', 'kipsec-node-d'], 'b and c were read just now; d next');
  clock.advance(10_000);
  await peers.refresh(['b']);
  assert.equal(calls.length, 4);
  peers.keepOnly(new Set(['c']));
  assert.equal(peers.get('b'), undefined);
});

test('while the node\'s Node object is gone the Lease is held (no renewal, no re-create after the garbage collector took it); released, it is renewed at once and every period again', async () => {
  const clock = new ManualClock(Date.UTC(2026, 11, 7));
  const { kube, calls, objects } = fakeApiserver();
  const p = new NodePublisher({ kube, node: 'node-a', namespace: 'kipsec-system', clock, log: logSink().log, leaseDurationMs: 30_000 });
  await p.publishSpec({ endpoint: { address: '192.0.2.1' } });
  p.offer(status(clock.now()));
  await run(clock, 15_000);
  const leaseCalls = (): number => calls.filter((c) => c.path.includes('/leases')).length;
  assert.ok(objects.has(LEASE));
  p.lease?.hold(true);
  objects.delete(LEASE); // the garbage collector, after the operator deleted the IPsecNode
  const before = leaseCalls();
  await run(clock, 60_000);
  assert.equal(leaseCalls(), before, 'six periods held: not one Lease request');
  assert.equal(objects.has(LEASE), false, 'not created again');
  p.lease?.hold(false);
  await run(clock, 1_000);
  assert.ok(objects.has(LEASE), 'created again at once when the Node is back');
  const back = leaseCalls();
  await run(clock, 30_000);
  assert.equal(leaseCalls() - back, 3, 'renewed every 10 s again, one timer chain');
  p.stop();
});
