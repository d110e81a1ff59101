// A gateway failover seen from a node that is no gateway (node-c): the mesh pair with the new
// gateway (node-a) takes the tunnel's remote subnet into its selectors, the pair with the old one
// (node-b) still has it until its old Child SA goes. XFRM holds one policy per selector and
// direction (the later UPDPOLICY replaced node-b's with node-a's), so node-b's Child SA going away
// later, for good or after DPD with its policies kept, must leave the remote subnet's policies to
// node-a's Child SA: deleting them by selector cut node-c's pods off the remote subnet (the cluster
// lane's 50-gateway-failover, after the old gateway's agent came back and the stale pair ended).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { XfrmKernel } from '../../../../src/agent/kernel.js';
import { SecretBytes } from '../../../../src/common/secret.js';
import type { KernelChildSa, KernelPolicy, KernelSa, TrafficSelector } from '../../../../src/ike/ports.js';
import { FakeXfrm, logSink } from '../fakes.js';

const NODE_C = '192.0.2.13';
const ADDRESS = { 'mesh/node-a': '192.0.2.11', 'mesh/node-b': '192.0.2.12' } as const;
const REQID = { 'mesh/node-a': 0x4b000a, 'mesh/node-b': 0x4b000b } as const;
const PODS = { 'mesh/node-a': '10.244.1.0/24', 'mesh/node-b': '10.244.2.0/24' } as const;
const OWN_PODS = '10.244.3.0/24';
const VPC = '10.99.0.0/24';
type Peer = keyof typeof ADDRESS;

const ts = (cidr: string): TrafficSelector => { const [a, p] = cidr.split('/'); return { family: 'ipv4', startAddress: a!, endAddress: a!, prefixLength: Number(p), protocol: 0, startPort: 0, endPort: 65535 }; };
const life = { softSec: 3000, hardSec: 3600, softBytes: 0n, hardBytes: 0n, softPackets: 0n, hardPackets: 0n };
const sa = (spi: number, src: string, dst: string): KernelSa => ({ spi, source: src, destination: dst, esn: false, replayWindow: 32, encap: null, lifetimes: life,
  algorithms: { kind: 'aead', name: 'rfc4106(gcm(aes))', key: new SecretBytes(new Uint8Array(36)), icvBits: 128 } });

/** node-c's "pods" Child SA with `peer`: our pods ↔ the peer's pods and `remote` (the remote subnets when it is the active gateway). */
function pods(peer: Peer, inSpi: number, remote: readonly string[]): KernelChildSa {
  const them = ADDRESS[peer];
  const policies = [PODS[peer], ...remote].flatMap((dst): KernelPolicy[] => [
    { direction: 'out', source: ts(OWN_PODS), destination: ts(dst), tunnelSource: NODE_C, tunnelDestination: them, priority: 100 },
    { direction: 'in', source: ts(dst), destination: ts(OWN_PODS), tunnelSource: them, tunnelDestination: NODE_C, priority: 100 },
    { direction: 'fwd', source: ts(dst), destination: ts(OWN_PODS), tunnelSource: them, tunnelDestination: NODE_C, priority: 100 },
  ]);
  return { peer, child: 'pods', reqid: 1, mode: 'tunnel', inbound: sa(inSpi, them, NODE_C), outbound: sa(inSpi + 0x1000000, NODE_C, them), policies, outboundActive: true, ifId: null, mark: null };
}
const ref = (c: KernelChildSa) => ({ peer: c.peer, child: c.child, reqid: c.reqid, inboundSpi: c.inbound.spi, outboundSpi: c.outbound.spi, local: NODE_C, remote: c.outbound.destination });

function setup() {
  const xfrm = new FakeXfrm();
  const k = new XfrmKernel({ xfrm, log: logSink().log, reqidOf: (peer) => REQID[peer as Peer], wantsRoutes: () => false });
  /** Which pair's reqid each of the remote subnet's policies sends to (out) or expects (in, fwd). */
  const vpcOwners = (): string[] => xfrm.policies.filter((p) => p.selector.src === VPC || p.selector.dst === VPC)
    .map((p) => `${p.dir} ${p.templates?.[0]?.reqid === REQID['mesh/node-a'] ? 'node-a' : p.templates?.[0]?.reqid === REQID['mesh/node-b'] ? 'node-b' : '?'}`).sort();
  return { xfrm, k, vpcOwners };
}

test('failover on a node that is no gateway: the old gateway\'s pair ending for good after the new gateway\'s pair took the remote subnet leaves its policies to the new pair; its own pod policies go', async () => {
  const { xfrm, k, vpcOwners } = setup();
  const oldB = pods('mesh/node-b', 0xc0000b01, [VPC]);
  await k.installChildSa(oldB);
  assert.deepEqual(vpcOwners(), ['fwd node-b', 'in node-b', 'out node-b']);
  // The Lease moved to node-a: its pair is negotiated again with the remote subnet (UPDPOLICY takes the selectors over).
  await k.installChildSa(pods('mesh/node-a', 0xc0000a01, [VPC]));
  assert.deepEqual(vpcOwners(), ['fwd node-a', 'in node-a', 'out node-a']);
  // node-b's old Child SA ends (the stale pair deleted once node-b answers again, or its Delete timed out).
  await k.deleteChildSa(ref(oldB), { keepPolicies: false });
  assert.deepEqual(vpcOwners(), ['fwd node-a', 'in node-a', 'out node-a'], 'the remote subnet still goes to the active gateway');
  assert.equal(xfrm.policies.filter((p) => p.selector.src === PODS['mesh/node-b'] || p.selector.dst === PODS['mesh/node-b']).length, 0, 'node-b\'s pod policies are gone with its Child SA');
  // node-b's new pair, without the remote subnet, changes nothing for it.
  await k.installChildSa(pods('mesh/node-b', 0xc0000b02, []));
  assert.deepEqual(vpcOwners(), ['fwd node-a', 'in node-a', 'out node-a']);
});

test('failover on a node that is no gateway: the old gateway found dead (policies kept for a successor) and its peer then removed leaves the remote subnet\'s policies to the new gateway\'s pair', async () => {
  const { k, vpcOwners } = setup();
  const oldB = pods('mesh/node-b', 0xc0000b01, [VPC]);
  await k.installChildSa(oldB);
  const newA = pods('mesh/node-a', 0xc0000a01, [VPC]);
  await k.installChildSa(newA);
  await k.deleteChildSa(ref(oldB), { keepPolicies: true });
  assert.deepEqual(vpcOwners(), ['fwd node-a', 'in node-a', 'out node-a']);
  await k.removeTrap({ peer: 'mesh/node-b', child: 'pods', reqid: 1 });
  assert.deepEqual(vpcOwners(), ['fwd node-a', 'in node-a', 'out node-a'], 'the remote subnet still goes to the active gateway');
  // The new gateway's pair ending for good takes what it holds.
  await k.deleteChildSa(ref(newA), { keepPolicies: false });
  assert.deepEqual(vpcOwners(), []);
});

test('failover back: the pair that lost the remote subnet to another pair and is negotiated with it again holds it again, and its end removes it', async () => {
  const { k, vpcOwners } = setup();
  const b1 = pods('mesh/node-b', 0xc0000b01, [VPC]);
  await k.installChildSa(b1);
  const a1 = pods('mesh/node-a', 0xc0000a01, [VPC]);
  await k.installChildSa(a1);
  const b2 = pods('mesh/node-b', 0xc0000b02, [VPC]);
  await k.installChildSa(b2);
  await k.deleteChildSa(ref(b1), { keepPolicies: true });
  await k.deleteChildSa(ref(a1), { keepPolicies: false });
  assert.deepEqual(vpcOwners(), ['fwd node-b', 'in node-b', 'out node-b'], 'node-a\'s pair ending leaves node-b\'s selectors');
  await k.deleteChildSa(ref(b2), { keepPolicies: false });
  assert.deepEqual(vpcOwners(), []);
});
