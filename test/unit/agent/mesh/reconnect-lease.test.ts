// The reconnect check (src/agent/mesh/reconnect.ts) now that statuses are written only on change:
// a peer's old status is believed while its node Lease is fresh, read by name for just the peers
// that would be acted on, and not believed when the Lease has expired (the peer's agent is gone).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../../../src/common/time.js';
import type { KubeClient } from '../../../../src/api/kube/client.js';
import { KubeApiError } from '../../../../src/api/kube/errors.js';
import { nodeLeaseName, type NodeLease } from '../../../../src/api/node-lease.js';
import type { IPsecNode } from '../../../../src/api/types.js';
import { PeerLeases } from '../../../../src/agent/mesh/node-lease.js';
import { leasesWanted, Reconnector, staleAtPeer, type ReconnectLook } from '../../../../src/agent/mesh/reconnect.js';

const NOW = Date.UTC(2026, 11, 7, 12);
const iso = (ms: number): string => new Date(ms).toISOString();
const HOUR = 3_600_000;

function peerNode(name: string, updatedMs: number): Pick<IPsecNode, 'metadata' | 'status'> {
  return { metadata: { name }, status: { lastUpdateTime: iso(updatedMs), peers: [{ node: 'node-c', state: 'established' }] } };
}
const lease = (node: string, renewMs: number): NodeLease => ({ metadata: { name: nodeLeaseName(node) }, spec: { holderIdentity: node, renewTime: iso(renewMs), leaseDurationSeconds: 180 } });
const ours = (node: string): ReconnectLook['ours'][number] => ({ name: `mesh/${node}`, node, ikeState: 'none', startAction: 'respond' });
const look = (o: Partial<ReconnectLook>): ReconnectLook => ({ self: 'node-c', ours: [], peerNodes: [], meshSize: 4, nowMs: NOW, ...o });

test('a status hours old is believed while the peer\'s Lease is fresh, not when it has expired or there is none', () => {
  const l = look({ ours: [ours('node-a'), ours('node-b'), ours('node-d')], peerNodes: [peerNode('node-a', NOW - HOUR), peerNode('node-b', NOW - HOUR), peerNode('node-d', NOW - HOUR)] });
  const leases = new Map([['node-a', lease('node-a', NOW - 30_000)], ['node-b', lease('node-b', NOW - 200_000)]]);
  assert.deepEqual(staleAtPeer({ ...l, lease: (n) => leases.get(n) }, 180_000), ['mesh/node-a']);
  assert.deepEqual(staleAtPeer(l, 180_000), [], 'without Leases, as before: too old');
});

test('Leases are wanted only for peers that would be acted on and whose status alone is too old', () => {
  const l = look({
    ours: [ours('node-a'), ours('node-b'), { ...ours('node-d'), ikeState: 'established' }],
    peerNodes: [peerNode('node-a', NOW - HOUR), peerNode('node-b', NOW - 10_000), peerNode('node-d', NOW - HOUR)],
  });
  assert.deepEqual(leasesWanted(l, 180_000), ['node-a'], 'node-b\'s status is recent; we hold an SA with node-d');
});

test('lookWithLeases reads the wanted Lease by name before judging, and acts once two looks agree', async () => {
  const clock = new ManualClock(NOW);
  const gets: string[] = [];
  const kube = { get: (path: string) => { gets.push(path.split('/').pop()!); return path.endsWith(nodeLeaseName('node-a')) ? Promise.resolve(lease('node-a', clock.now() - 5_000)) : Promise.reject(new KubeApiError(404, 'NotFound', 'x')); } } as unknown as KubeClient;
  const peers = new PeerLeases({ kube, namespace: 'kipsec-system', clock, minAgeMs: 10_000 });
  const r = new Reconnector({ confirmMs: 4_000, retryMs: 20_000, staleMs: 180_000 });
  const l = (): ReconnectLook => look({ ours: [ours('node-a'), ours('node-b')], peerNodes: [peerNode('node-a', NOW - HOUR), peerNode('node-b', NOW - HOUR)], nowMs: clock.now() });
  assert.deepEqual(await r.lookWithLeases(l(), peers), [], 'first look');
  clock.advance(5_000);
  assert.deepEqual(await r.lookWithLeases(l(), peers), ['mesh/node-a'], 'node-b has no Lease: its old status is not believed');
  assert.deepEqual(gets, ['kipsec-node-node-a', 'kipsec-node-node-b'], 'read once each: the second look used what the first read');
});
