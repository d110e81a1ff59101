// Remote subnets of IPsecTunnels reachable from every node (src/agent/gateway/routing.ts): the
// Lease holder decides which mesh pair carries them; both ends of that pair put them in the "pods"
// Child SA (src/agent/mesh/peers.ts), so the leg to the gateway is ESP; the userspace strict rules
// do not send what the gateway forwards between mesh and tunnel to main (clear on the wire).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import type { IPsecMesh, IPsecNode, IPsecTunnel } from '../../../../src/api/types.js';
import { cidrContains, forwardingRoutes, gatewayRouting } from '../../../../src/agent/gateway/routing.js';
import { meshPeers, pairChildren, type MeshIdentity, type MeshSelf } from '../../../../src/agent/mesh/peers.js';
import { resolveMesh } from '../../../../src/agent/mesh/settings.js';

function tunnel(name: string, subnets: string[], o: Partial<IPsecTunnel['spec']> & { deleting?: boolean } = {}): IPsecTunnel {
  const { deleting, ...spec } = o;
  return {
    apiVersion: 'kipsec.io/v1alpha1', kind: 'IPsecTunnel', metadata: { name, ...(deleting ? { deletionTimestamp: '2026-12-07T00:00:00Z' } : {}) },
    spec: { local: {}, remote: { address: '192.0.2.100', subnets }, auth: { psk: { secretRef: { name: 'x', namespace: 'y' } } }, ...spec },
  } as IPsecTunnel;
}

const settings = resolveMesh({ apiVersion: 'kipsec.io/v1alpha1', kind: 'IPsecMesh', metadata: { name: 'default', creationTimestamp: '2026-01-01T00:00:00Z' }, spec: {} } as IPsecMesh).settings;
const selfC: MeshSelf = { name: 'node-c', address: '192.0.2.13', podCIDRs: ['10.244.3.0/24'], traffic: { mode: 'routed' } };

test('the Lease holder carries a tunnel\'s remote subnets: other nodes route them to it, the holder (by its own reckoning) offers them; none while released; deleted tunnels never; route mode by its remote subnets (not its 0.0.0.0/0 selectors)', () => {
  const tunnels = [tunnel('vpc', ['10.99.0.0/24']), tunnel('dc', ['172.16.0.0/16', '10.99.0.0/24']), tunnel('free', ['10.50.0.0/16']), tunnel('rt', ['172.31.0.0/16'], { profile: 'aws' }), tunnel('gone', ['10.60.0.0/16'], { deleting: true })];
  const holders: Record<string, string> = { vpc: 'node-a', dc: 'node-a', free: '', rt: 'node-b', gone: 'node-a' };
  const onC = gatewayRouting(tunnels, 'node-c', (n) => holders[n], () => false);
  assert.deepEqual(onC.mine, []);
  assert.deepEqual([...onC.viaNode], [['node-a', ['172.16.0.0/16', '10.99.0.0/24']], ['node-b', ['172.31.0.0/16']]]);
  assert.deepEqual(gatewayRouting(tunnels, 'node-b', (n) => holders[n], (n) => n === 'rt').mine, ['172.31.0.0/16'], 'the route-mode tunnel\'s gateway offers its VPC to the mesh');
  const onA = gatewayRouting(tunnels, 'node-a', (n) => holders[n], (n) => n === 'vpc' || n === 'dc');
  assert.deepEqual(onA.mine, ['172.16.0.0/16', '10.99.0.0/24']);
  assert.deepEqual([...onA.viaNode], [['node-b', ['172.31.0.0/16']]], 'never a route to ourselves');
  // The Lease says node-a while node-a no longer counts itself active (renew deadline passed): it stops offering them.
  assert.deepEqual(gatewayRouting(tunnels, 'node-a', (n) => holders[n], () => false).mine, []);
});

test('the mesh pair with the active gateway: its "pods" Child SA gets the remote subnets on the gateway\'s side, at both ends; a failover moves them, which renegotiates the pair (new selectors)', () => {
  const ownCert = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const id: MeshIdentity = { certificate: new Uint8Array([0x30, 0]), chain: [], privateKey: ownCert.privateKey, cas: [new Uint8Array([0x30, 0])], certFingerprint: 'c'.repeat(64), bundleDigest: 'd' };
  const node = (name: string, address: string, cidr: string): IPsecNode => ({ apiVersion: 'kipsec.io/v1alpha1', kind: 'IPsecNode', metadata: { name }, spec: { endpoint: { address }, podCIDRs: [cidr], identity: { publicKeyFingerprint: 'a'.repeat(64) } } } as IPsecNode);
  const nodes = [node('node-a', '192.0.2.11', '10.244.1.0/24'), node('node-b', '192.0.2.12', '10.244.2.0/24')];
  const before = meshPeers(selfC, nodes, settings, id, new Map([['node-a', ['10.99.0.0/24']]]));
  const toA = before.peers.find((p) => p.name === 'mesh/node-a')!; const toB = before.peers.find((p) => p.name === 'mesh/node-b')!;
  assert.deepEqual(toA.config.children.map((c) => [c.name, c.localTs, c.remoteTs]), [['pods', ['10.244.3.0/24'], ['10.244.1.0/24', '10.99.0.0/24']]]);
  assert.deepEqual(toB.config.children[0]!.remoteTs, ['10.244.2.0/24']);
  assert.ok(toA.blocks.some((b) => b.selector.dst === '10.99.0.0/24'), 'strict: the pod traffic to the remote subnet is blocked while no SA carries it');
  // The gateway's own view of the same pair mirrors it (narrowing needs no help then).
  const gw = pairChildren({ name: 'node-a', address: '192.0.2.11', podCIDRs: ['10.244.1.0/24'], traffic: { mode: 'routed' }, gatewaySubnets: ['10.99.0.0/24'] }, { address: '192.0.2.13', podCIDRs: ['10.244.3.0/24'], traffic: { mode: 'routed' } }, settings);
  assert.deepEqual(gw.children.map((c) => [c.localTs, c.remoteTs]), [[['10.244.1.0/24', '10.99.0.0/24'], ['10.244.3.0/24']]]);
  const after = meshPeers(selfC, nodes, settings, id, new Map([['node-b', ['10.99.0.0/24']]]));
  const afterA = after.peers.find((p) => p.name === 'mesh/node-a')!; const afterB = after.peers.find((p) => p.name === 'mesh/node-b')!;
  assert.deepEqual(afterB.config.children[0]!.remoteTs, ['10.244.2.0/24', '10.99.0.0/24']);
  assert.notEqual(afterA.sessionDigest, toA.sessionDigest, 'the old gateway\'s pair renegotiates without the subnet');
  assert.notEqual(afterB.sessionDigest, toB.sessionDigest, 'the new gateway\'s pair renegotiates with it');
});

test('a remote subnet holding either node\'s address, or of a family the pair does not carry, stays out of the mesh pair (IKE itself would be caught)', () => {
  const peer = { address: '192.0.2.11', podCIDRs: ['10.244.1.0/24'], traffic: { mode: 'routed' as const }, gatewaySubnets: ['0.0.0.0/0', '192.0.2.0/24', 'fd99::/64', '10.99.0.0/24'] };
  const r = pairChildren(selfC, peer, settings);
  assert.deepEqual(r.children[0]!.remoteTs, ['10.244.1.0/24', '10.99.0.0/24']);
});

test('userspace strict rules on a gateway: a mesh pair\'s inbound rules leave out the remote subnets (forwarded on into the tunnel); a tunnel\'s keep only this node\'s pods of a cluster-wide subnet (the rest goes on into the mesh, not to main in clear)', () => {
  const routes = [
    { peer: 'mesh/node-c', remote: ['10.244.3.0/24'], local: ['10.244.1.0/24', '10.99.0.0/24'] },
    { peer: 'vpc', remote: ['10.99.0.0/24'], local: ['10.96.0.0/16', '10.244.0.0/16'] },
    { peer: 'other', remote: ['10.1.0.0/16'], local: ['10.244.0.0/16'] },
  ];
  const kinds = new Map<string, 'mesh' | 'tunnel'>([['mesh/node-c', 'mesh'], ['vpc', 'tunnel']]);
  const out = forwardingRoutes(routes, kinds, ['10.99.0.0/24'], ['10.244.1.0/24'], ['10.244.2.0/24', '10.244.3.0/24']);
  assert.deepEqual(out[0]!.local, ['10.244.1.0/24']);
  assert.deepEqual(out[0]!.remote, ['10.244.3.0/24'], 'the TUN routes and blackholes stay');
  assert.deepEqual(out[1]!.local, ['10.96.0.0/16', '10.244.1.0/24']);
  assert.deepEqual(out[2], routes[2], 'a peer of unknown kind is left alone');
  assert.equal(cidrContains('10.244.0.0/16', '10.244.3.0/24'), true);
  assert.equal(cidrContains('10.244.3.0/24', '10.244.0.0/16'), false);
  assert.equal(cidrContains('fd00::/16', '10.244.0.0/16'), false);
});
