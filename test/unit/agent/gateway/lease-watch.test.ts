// Every agent learns the active gateway of each IPsecTunnel from the watched Lease holders
// (src/agent/gateway/gateways.ts routing()), also on nodes that are no gateway: a new holder changes
// the routes at once, a renewal (one per second per tunnel) changes nothing. A fake apiserver
// that lists and then streams watch events.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KubeClient, WatchEvent } from '../../../../src/api/kube/client.js';
import type { IPsecTunnel } from '../../../../src/api/types.js';
import { ManualClock } from '../../../../src/common/time.js';
import { createLogger } from '../../../../src/agent/log.js';
import { TunnelGateways } from '../../../../src/agent/gateway/gateways.js';
import type { Lease } from '../../../../src/agent/gateway/lease.js';

const NS = 'kipsec-system';
const vpc = { apiVersion: 'kipsec.io/v1alpha1', kind: 'IPsecTunnel', metadata: { name: 'vpc', resourceVersion: '1' }, spec: { local: {}, remote: { address: '192.0.2.100', subnets: ['10.99.0.0/24'] }, auth: { psk: { secretRef: { name: 'x', namespace: NS } } } } } as IPsecTunnel;
const lease = (holder: string, renew: string, rv: string): Lease => ({ metadata: { name: 'kipsec-tunnel-vpc', namespace: NS, resourceVersion: rv }, spec: { holderIdentity: holder, renewTime: renew, leaseDurationSeconds: 4 } });

function fakeKube(): { kube: KubeClient; push: (path: string, e: WatchEvent<unknown>) => void } {
  const lists: Record<string, unknown[]> = { ipsectunnels: [vpc], leases: [lease('node-a', 't1', '5')] };
  const watchers = new Map<string, (e: WatchEvent<unknown>) => void>();
  const kind = (path: string): string => path.split('/').pop()!;
  const kube = {
    get: (path: string) => Promise.resolve({ items: lists[kind(path)] ?? [], metadata: { resourceVersion: '9' } }),
    watch: (path: string, _q: unknown, onEvent: (e: WatchEvent<unknown>) => void, signal: AbortSignal) => {
      watchers.set(kind(path), onEvent);
      return new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    },
  } as unknown as KubeClient;
  return { kube, push: (path, e) => watchers.get(path)!(e) };
}

test('a node that is no gateway routes a tunnel\'s remote subnets to the Lease holder; a new holder moves them at once, a renewal is no change', async () => {
  const { kube, push } = fakeKube();
  const g = new TunnelGateways({ kube, node: 'node-c', namespace: NS, labels: () => ({}), clock: new ManualClock(), log: createLogger({ level: 'silent' }) });
  let changes = 0;
  g.onChange(() => { changes++; });
  g.start();
  await g.waitForSync();
  await g.leases.waitForSync();
  await new Promise((r) => setImmediate(r));
  assert.deepEqual([...g.routing().viaNode], [['node-a', ['10.99.0.0/24']]]);
  assert.deepEqual(g.routing().mine, [], 'not a gateway: it offers nothing');
  assert.deepEqual(g.active, []);
  const before = changes;
  push('leases', { type: 'MODIFIED', object: lease('node-a', 't2', '6') });
  assert.equal(changes, before, 'a renewal changes nothing');
  push('leases', { type: 'MODIFIED', object: lease('node-b', 't3', '7') });
  assert.equal(changes, before + 1, 'a new holder is a change');
  assert.deepEqual([...g.routing().viaNode], [['node-b', ['10.99.0.0/24']]]);
  push('leases', { type: 'MODIFIED', object: lease('', 't4', '8') });
  assert.equal(g.routing().viaNode.size, 0, 'released: routed nowhere until the next holder');
  await g.stop(false);
});
