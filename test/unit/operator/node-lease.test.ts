// Node liveness (src/api/node-lease.ts lastHeard) and how the operator's pair rules use it
// (src/operator/mesh-pairs.ts): the Lease decides while it is at least as new as the status minus
// its duration; without one, or behind a status written long after it (an agent without Leases),
// lastUpdateTime with the 3-minute bound; neither: never stale.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isHeardStale, lastHeard, leaseDurationMs, nodeLeaseName, nodeOfLease, STATUS_STALE_AFTER_MS, type NodeLease } from '../../../src/api/node-lease.js';
import type { IPsecNode } from '../../../src/api/types.js';
import { evaluatePairs, isStale, nextStaleCheckMs, STALE_AFTER_MS } from '../../../src/operator/mesh-pairs.js';

const NOW = Date.parse('2026-12-07T12:00:00Z');
const iso = (ms: number): string => new Date(ms).toISOString();
const lease = (node: string, renewMs: number, seconds?: number): NodeLease => ({ metadata: { name: nodeLeaseName(node), namespace: 'kipsec-system' }, spec: { holderIdentity: node, renewTime: iso(renewMs), ...(seconds !== undefined ? { leaseDurationSeconds: seconds } : {}) } });
function node(name: string, lastUpdateMs: number | undefined, peers: readonly string[] = []): IPsecNode {
  return { apiVersion: 'kipsec.io/v1alpha1', kind: 'IPsecNode', metadata: { name }, spec: { endpoint: { address: '192.0.2.1' } }, status: {
    peers: peers.map((p) => ({ node: p, state: 'established' as const })),
    ...(lastUpdateMs !== undefined ? { lastUpdateTime: iso(lastUpdateMs) } : {}),
    conditions: [{ type: 'Ready', status: 'True', reason: 'x', message: '', lastTransitionTime: 't' }],
  } };
}

test('a quiet agent with a fresh Lease is heard from although its status is hours old (the status is written only on change)', () => {
  const h = lastHeard({ lastUpdateTime: iso(NOW - 3 * 3_600_000) }, lease('a', NOW - 10_000, 180));
  assert.deepEqual(h, { atMs: NOW - 10_000, boundMs: 180_000, source: 'lease' });
  assert.equal(isHeardStale(h, NOW), false);
});

test('a Lease not renewed for longer than its leaseDurationSeconds is stale, whatever the status says; the duration is clamped to [1 s, 3 min]', () => {
  assert.equal(isHeardStale(lastHeard({ lastUpdateTime: iso(NOW - 5_000) }, lease('a', NOW - 31_000, 30)), NOW), true, 'a status write shortly after the last renewal does not extend it');
  assert.equal(isHeardStale(lastHeard(undefined, lease('a', NOW - 29_000, 30)), NOW), false);
  assert.equal(leaseDurationMs(lease('a', NOW, 3600)), STATUS_STALE_AFTER_MS, 'a day-long Lease does not hide a dead node longer than the status rule would');
  assert.equal(leaseDurationMs(lease('a', NOW, 0)), 1_000);
  assert.equal(leaseDurationMs(lease('a', NOW)), 180_000, 'no duration: the default');
});

test('an agent without a Lease (from before Leases, mid-upgrade) is judged by lastUpdateTime and the 3-minute bound; neither timestamp: never stale', () => {
  assert.deepEqual(lastHeard({ lastUpdateTime: iso(NOW - 60_000) }, undefined), { atMs: NOW - 60_000, boundMs: STALE_AFTER_MS, source: 'status' });
  assert.equal(isHeardStale(lastHeard({ lastUpdateTime: iso(NOW - STALE_AFTER_MS - 1) }, undefined), NOW), true);
  assert.equal(lastHeard({}, undefined), undefined);
  assert.equal(isHeardStale(undefined, NOW), false);
  assert.equal(lastHeard({}, { metadata: { name: 'kipsec-node-a' }, spec: { holderIdentity: 'a' } }), undefined, 'a Lease never renewed says nothing');
});

test('an agent rolled back to one without Leases: its status written more than a Lease duration after the Lease\'s last renewal means the status decides again', () => {
  const h = lastHeard({ lastUpdateTime: iso(NOW - 10_000) }, lease('a', NOW - 10 * 60_000, 180));
  assert.deepEqual([h?.source, isHeardStale(h, NOW)], ['status', false]);
  // Within one duration of the Lease's last renewal the Lease still decides (the window a rollback shows stale).
  assert.equal(lastHeard({ lastUpdateTime: iso(NOW - 10 * 60_000 + 170_000) }, lease('a', NOW - 10 * 60_000, 180))?.source, 'lease');
});

test('a Lease counts only for the node it is named after and held by (another name or holder: ignored)', () => {
  assert.equal(nodeOfLease(lease('a', NOW)), 'a');
  assert.equal(nodeOfLease({ metadata: { name: nodeLeaseName('a') }, spec: { holderIdentity: 'b', renewTime: iso(NOW) } }), undefined);
  assert.equal(nodeOfLease({ metadata: { name: 'kipsec-tunnel-x' }, spec: { holderIdentity: 'x' } }), undefined);
});

test('mesh pairs: a node with an hours-old status and a fresh Lease is trusted; its Lease expiring makes its reports unknown, and nextStaleCheckMs is when that happens', () => {
  const nodes = [node('a', NOW - 3 * 3_600_000, ['b']), node('b', NOW - 3 * 3_600_000, ['a'])];
  const leases = new Map([['a', lease('a', NOW - 20_000, 60)], ['b', lease('b', NOW - 50_000, 60)]]);
  const leaseOf = (n: string): NodeLease | undefined => leases.get(n);
  assert.equal(isStale(nodes[0]!, NOW), true, 'by its status alone: stale');
  assert.equal(isStale(nodes[0]!, NOW, leases.get('a')), false);
  assert.equal(evaluatePairs(nodes, NOW, leaseOf).established, 1);
  assert.equal(evaluatePairs(nodes, NOW).established, 0, 'without the Leases both sides would be unknown');
  assert.equal(nextStaleCheckMs(nodes, NOW, leaseOf), 10_000 + 1_000, 'b goes stale 60 s after its renewal 50 s ago, checked a second later');
  const later = evaluatePairs(nodes, NOW + 11_000, leaseOf);
  assert.deepEqual([later.established, later.counts.half, later.nodes.find((v) => v.name === 'b')?.stale], [0, 1, true]);
});
