// Garbage collection of IPsecNodes whose Node is gone (src/operator/node-gc.ts): the pure choice of
// what to delete, then collectIpsecNode against fake caches and a recording apiserver — it asks the
// apiserver before deleting (the Node cache may lag) and deletes only the object it looked at.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KubeApiError } from '../../../src/api/kube/errors.js';
import type { IPsecNode } from '../../../src/api/types.js';
import type { Ctx } from '../../../src/operator/context.js';
import type { KNode } from '../../../src/operator/kinds.js';
import { OperatorMetrics } from '../../../src/operator/metrics.js';
import { collectIpsecNode, orphanedIpsecNodes } from '../../../src/operator/node-gc.js';

const ipn = (name: string, over: Partial<IPsecNode['metadata']> = {}): IPsecNode => ({ apiVersion: 'kipsec.io/v1alpha1', kind: 'IPsecNode', metadata: { name, uid: `uid-${name}`, ...over }, spec: { endpoint: { address: '192.0.2.1' } } });
const names = (xs: readonly { metadata: { name: string } }[]): string[] => xs.map((x) => x.metadata.name);
const existing = (...ns: string[]) => (n: string): boolean => ns.includes(n);

test('chooses the IPsecNodes whose Node does not exist, and only those', () => {
  assert.deepEqual(names(orphanedIpsecNodes([ipn('a'), ipn('b'), ipn('c')], existing('a', 'c'), true)), ['b']);
  assert.deepEqual(names(orphanedIpsecNodes([ipn('a')], existing('a'), true)), []);
});

// Before the first complete list, "no such Node" means "not listed yet": deleting then would wipe
// every node's IPsecNode on an operator start.
test('chooses nothing before the caches synced, even when no Node is known', () => {
  assert.deepEqual(orphanedIpsecNodes([ipn('a'), ipn('b')], existing(), false), []);
});

test('leaves an IPsecNode that is already being deleted', () => {
  assert.deepEqual(orphanedIpsecNodes([ipn('a', { deletionTimestamp: '2026-01-01T00:00:00Z' })], existing(), true), []);
});

interface Call { verb: string; path: string; body?: unknown }

function fake(o: { nodes?: string[]; ipsecNodes?: IPsecNode[]; synced?: boolean; liveNodes?: string[]; deleteError?: KubeApiError } = {}) {
  const calls: Call[] = []; const events: { type: string; reason: string; note: string; name: string }[] = [];
  const cache = <T extends { metadata: { name: string } }>(xs: T[]) => {
    const m = new Map(xs.map((x) => [x.metadata.name, x]));
    return { get: (n: string) => m.get(n), list: () => [...m.values()], hasSynced: o.synced ?? true };
  };
  const metrics = new OperatorMetrics();
  const ctx = {
    caches: { nodes: cache<KNode>((o.nodes ?? []).map((name) => ({ metadata: { name } }))), ipsecNodes: cache(o.ipsecNodes ?? []) },
    kube: {
      get: (path: string) => { calls.push({ verb: 'GET', path }); const n = path.split('/').pop()!; return (o.liveNodes ?? []).includes(n) ? Promise.resolve({ metadata: { name: n } }) : Promise.reject(new KubeApiError(404, 'NotFound', `nodes "${n}" not found`)); },
      request: (verb: string, path: string, opts: { body?: unknown }) => { calls.push({ verb, path, body: opts.body }); return o.deleteError ? Promise.reject(o.deleteError) : Promise.resolve({}); },
    },
    log: { info: () => undefined, warn: () => undefined, debug: () => undefined },
    metrics,
    events: { emit: (r: { name: string }, type: string, reason: string, _a: string, note: string) => { events.push({ type, reason, note, name: r.name }); } },
  } as unknown as Ctx;
  return { ctx, calls, events, metrics };
}

test('deletes the IPsecNode of a Node the apiserver does not have, with its uid as precondition; logs an Event and counts it', async () => {
  const f = fake({ nodes: ['other'], ipsecNodes: [ipn('gone')] });
  assert.equal(await collectIpsecNode(f.ctx, 'gone'), undefined);
  assert.deepEqual(f.calls, [
    { verb: 'GET', path: '/api/v1/nodes/gone' },
    { verb: 'DELETE', path: '/apis/kipsec.io/v1alpha1/ipsecnodes/gone', body: { apiVersion: 'v1', kind: 'DeleteOptions', preconditions: { uid: 'uid-gone' } } },
  ]);
  assert.deepEqual(f.events, [{ type: 'Normal', reason: 'NodeGone', note: 'deleted IPsecNode gone: Node gone does not exist', name: 'gone' }]);
  assert.match(await f.metrics.registry.metrics(), /kipsec_operator_ipsecnodes_collected_total 1/);
});

test('keeps an IPsecNode whose Node is missing from the cache but present in the apiserver (the Node cache lags)', async () => {
  const f = fake({ ipsecNodes: [ipn('new')], liveNodes: ['new'] });
  assert.equal(await collectIpsecNode(f.ctx, 'new'), undefined);
  assert.deepEqual(f.calls.map((c) => c.verb), ['GET']);
  assert.deepEqual(f.events, []);
});

test('before the caches synced: no request at all, and a look again later', async () => {
  const f = fake({ ipsecNodes: [ipn('a')], synced: false });
  assert.equal(typeof await collectIpsecNode(f.ctx, 'a'), 'number');
  assert.deepEqual(f.calls, []);
});

test('an IPsecNode whose Node exists, or that is gone from the cache, costs no request', async () => {
  const f = fake({ nodes: ['a'], ipsecNodes: [ipn('a')] });
  assert.equal(await collectIpsecNode(f.ctx, 'a'), undefined);
  assert.equal(await collectIpsecNode(f.ctx, 'b'), undefined);
  assert.deepEqual(f.calls, []);
});

test('a delete that finds the object gone or re-created (uid precondition failed) is done, without an Event', async () => {
  for (const err of [new KubeApiError(404, 'NotFound', 'x'), new KubeApiError(409, 'Conflict', 'Precondition failed: UID in precondition: uid-a, UID in object meta: uid-b')]) {
    const f = fake({ ipsecNodes: [ipn('a')], deleteError: err });
    assert.equal(await collectIpsecNode(f.ctx, 'a'), undefined);
    assert.deepEqual(f.events, []);
  }
});

test('any other delete failure is thrown (the queue retries with backoff)', async () => {
  const f = fake({ ipsecNodes: [ipn('a')], deleteError: new KubeApiError(403, 'Forbidden', 'cannot delete') });
  await assert.rejects(collectIpsecNode(f.ctx, 'a'), /Forbidden/);
});
