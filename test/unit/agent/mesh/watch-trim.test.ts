// What the agent's informers keep of watched objects (src/agent/mesh/watch-trim.ts): less memory,
// never a different decision by the code that reads them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { trimIpsecNode, trimNodeMeta, trimOwnNode } from '../../../../src/agent/mesh/watch-trim.js';
import { staleAtPeer, type ReconnectLook } from '../../../../src/agent/mesh/reconnect.js';
import type { IPsecNode } from '../../../../src/api/types.js';
import type { SaStateName } from '../../../../src/agent/status.js';

const MANAGED = [{ manager: 'kipsec-agent', operation: 'Apply', fieldsV1: { 'f:status': { 'f:peers': {} } } }];
const NOW = Date.parse('2026-12-07T10:00:00Z');

function ipsecNode(name: string, peers: { node: string; state: SaStateName }[], extra: Partial<NonNullable<IPsecNode['status']>> = {}): IPsecNode {
  return {
    apiVersion: 'kipsec.io/v1alpha1', kind: 'IPsecNode',
    metadata: { name, resourceVersion: '7', managedFields: structuredClone(MANAGED) } as IPsecNode['metadata'],
    spec: { endpoint: { address: '192.0.2.1' }, podCIDRs: ['10.244.1.0/24'] },
    status: {
      conditions: [{ type: 'Ready', status: 'True', reason: 'PeersEstablished', message: 'ok', lastTransitionTime: new Date(NOW).toISOString() }],
      datapath: 'kernel', lastUpdateTime: new Date(NOW - 5_000).toISOString(), peersUp: peers.length, peers: peers.map((p) => ({ ...p, ikeSuite: 'AES_GCM_16_256/PRF_HMAC_SHA2_384/CURVE_25519', bytesIn: 1, bytesOut: 2 })),
      ...extra,
    },
  };
}

test('another node\'s IPsecNode keeps its spec and, of its status, only what the reconnect check reads: the time, the listing, the entry about this node', () => {
  const n = trimIpsecNode('node-c')(ipsecNode('node-a', [{ node: 'node-b', state: 'established' }, { node: 'node-c', state: 'rekeying' }], { peersListed: 'notUp', peersExpected: 200 }));
  assert.deepEqual(n.spec, { endpoint: { address: '192.0.2.1' }, podCIDRs: ['10.244.1.0/24'] });
  assert.deepEqual(n.status, { lastUpdateTime: new Date(NOW - 5_000).toISOString(), peersListed: 'notUp', peersExpected: 200, peers: [{ node: 'node-c', state: 'rekeying', ikeSuite: 'AES_GCM_16_256/PRF_HMAC_SHA2_384/CURVE_25519', bytesIn: 1, bytesOut: 2 }] });
  assert.equal((n.metadata as { managedFields?: unknown }).managedFields, undefined);
  assert.equal(n.metadata.resourceVersion, '7', 'the informer needs the resourceVersion');
});

test('this node\'s own IPsecNode keeps its whole status (the agent reads its conditions back) but not managedFields', () => {
  const n = trimIpsecNode('node-a')(ipsecNode('node-a', [{ node: 'node-b', state: 'established' }]));
  assert.equal(n.status?.conditions?.[0]?.type, 'Ready');
  assert.equal(n.status?.peers?.length, 1);
  assert.equal((n.metadata as { managedFields?: unknown }).managedFields, undefined);
});

test('a Node keeps name, resourceVersion, uid and labels (the mesh nodeSelector); this node also its pod CIDRs and addresses', () => {
  const node = {
    metadata: { name: 'node-a', resourceVersion: '9', uid: 'u1', labels: { 'kipsec.io/gateway': 'true' }, annotations: { 'node.alpha.kubernetes.io/ttl': '0' }, managedFields: MANAGED },
    spec: { podCIDR: '10.244.1.0/24', podCIDRs: ['10.244.1.0/24'], providerID: 'aws:///x' },
    status: { addresses: [{ type: 'InternalIP', address: '192.0.2.1' }], images: [{ names: ['x'] }] },
  };
  assert.deepEqual(trimNodeMeta(structuredClone(node)), { metadata: { name: 'node-a', resourceVersion: '9', uid: 'u1', labels: { 'kipsec.io/gateway': 'true' } } });
  assert.deepEqual(trimOwnNode(structuredClone(node)), {
    metadata: { name: 'node-a', resourceVersion: '9', uid: 'u1', labels: { 'kipsec.io/gateway': 'true' } },
    spec: { podCIDR: '10.244.1.0/24', podCIDRs: ['10.244.1.0/24'] },
    status: { addresses: [{ type: 'InternalIP', address: '192.0.2.1' }] },
  });
});

test('the reconnect check decides the same on trimmed IPsecNodes as on whole ones, for any statuses (property)', () => {
  const states: SaStateName[] = ['none', 'connecting', 'established', 'rekeying', 'failed'];
  const names = ['node-a', 'node-b', 'node-c', 'node-d'];
  const arbNode = (name: string): fc.Arbitrary<IPsecNode> => fc.record({
    peers: fc.subarray(names.filter((x) => x !== name)).chain((ps) => fc.tuple(...ps.map((p) => fc.constantFrom(...states).map((state) => ({ node: p, state }))))),
    listed: fc.constantFrom(undefined, 'all' as const, 'notUp' as const, 'someNotUp' as const),
    expected: fc.integer({ min: 0, max: 4 }),
    ageMs: fc.integer({ min: 0, max: 400_000 }),
  }).map((r) => ipsecNode(name, r.peers, { lastUpdateTime: new Date(NOW - r.ageMs).toISOString(), ...(r.listed ? { peersListed: r.listed } : {}), peersExpected: r.expected }));
  fc.assert(fc.property(fc.tuple(...names.map(arbNode)), fc.array(fc.constantFrom(...states), { minLength: 4, maxLength: 4 }), (nodes, ourStates) => {
    const ours: ReconnectLook['ours'] = names.filter((x) => x !== 'node-c').map((x, i) => ({ name: `mesh/${x}`, node: x, ikeState: ourStates[i]!, startAction: 'respond' }));
    const look = (peerNodes: IPsecNode[]): ReconnectLook => ({ self: 'node-c', ours, peerNodes, meshSize: 4, nowMs: NOW });
    const whole = staleAtPeer(look(nodes.map((n) => structuredClone(n))), 180_000);
    const trimmed = staleAtPeer(look(nodes.map((n) => trimIpsecNode('node-c')(structuredClone(n)))), 180_000);
    assert.deepEqual(trimmed, whole);
  }), { numRuns: 500 });
});
