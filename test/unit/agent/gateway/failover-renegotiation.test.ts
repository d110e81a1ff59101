// A gateway failover seen from the new gateway (node-b): its mesh pair with the old gateway
// (node-a) carried node-b's pods ↔ the tunnel's remote subnet (the VPC) while node-a was active;
// now node-b runs the tunnel itself (the cluster's pods ↔ the VPC) and the pair is negotiated
// again without the VPC on node-a's side. The old pair's Delete goes unanswered when node-a's agent
// or node is dead, so its Child SA stays for the retransmission schedule (~165 s), and XFRM picks
// the older of two equal-priority policies: the pair's "node-b's pods → VPC through node-a" beat
// the tunnel's "pods → VPC", and node-b's own pods lost the VPC (cluster lane 50-gateway-failover).
// The selectors the new config no longer carries go when the Delete is sent; the rest stay with
// the old Child SA (pod ↔ pod traffic keeps its ESP until the pair is up again).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent } from '../../../../src/agent/daemon.js';
import { carriedSelectors, stillCarried } from '../../../../src/agent/gateway/moved-selectors.js';
import { missingTuning } from '../../../../src/agent/native.js';
import type { DesiredPeer } from '../../../../src/agent/source.js';
import { FakeEngine, FakeSockets, FakeXfrm, logSink } from '../fakes.js';
import { CHARON, CLUSTER, NODE_A, NODE_B, PODS_A, PODS_B, VPC, child, childSaOf, desiredPeer } from './policy-fixtures.js';

const peer = (name: string, remote: string, children: ReturnType<typeof child>[], session: string, kind: DesiredPeer['kind']): DesiredPeer =>
  desiredPeer(name, { local: { address: NODE_B, node: 'node-b' }, remote, children, kind, session });

/** node-b's pair with node-a while node-a is the active gateway, and after node-b took over. */
const pairWhileAActive = peer('mesh/node-a', NODE_A, [child('pods', [PODS_B], [PODS_A, VPC])], 'a-active', { type: 'mesh', node: 'node-a' });
const pairAfterTakeover = peer('mesh/node-a', NODE_A, [child('pods', [PODS_B, VPC], [PODS_A])], 'b-active', { type: 'mesh', node: 'node-a' });
const tunnel = peer('vpc', CHARON, [child('vpc', [CLUSTER], [VPC])], 'vpc', { type: 'tunnel' });

const childSa = childSaOf;

test('a renegotiated pair no longer carries what moved: the new gateway\'s pair with the old one loses the VPC on the old gateway\'s side, keeps the pods; narrowed selectors still count as carried', () => {
  const after = carriedSelectors(pairAfterTakeover.config);
  const pol = (dir: 'in' | 'out' | 'fwd', src: string, dst: string) => ({ dir, selector: { src, dst } });
  assert.equal(stillCarried(after, 'pods', pol('out', PODS_B, VPC)), false);
  assert.equal(stillCarried(after, 'pods', pol('in', VPC, PODS_B)), false);
  assert.equal(stillCarried(after, 'pods', pol('fwd', VPC, PODS_B)), false);
  for (const [dir, src, dst] of [['out', PODS_B, PODS_A], ['in', PODS_A, PODS_B], ['fwd', PODS_A, PODS_B]] as const) assert.equal(stillCarried(after, 'pods', pol(dir, src, dst)), true, `${dir} ${src} → ${dst}`);
  assert.equal(stillCarried(after, 'pods', pol('out', '10.244.2.0/25', PODS_A)), true, 'a narrowed selector inside the new one');
  assert.equal(stillCarried(after, 'gateway-out', pol('out', PODS_B, PODS_A)), false, 'a child the new config does not have carries nothing');
  // node-c's pair with the old gateway: the VPC leaves its remote side.
  const nodeC = carriedSelectors({ children: [child('pods', ['10.244.3.0/24'], [PODS_A])] });
  assert.equal(stillCarried(nodeC, 'pods', pol('out', '10.244.3.0/24', VPC)), false);
  assert.equal(stillCarried(nodeC, 'pods', pol('out', '10.244.3.0/24', PODS_A)), true);
});

test('failover on the new gateway with the old gateway dead: its pair with the old gateway, renegotiated without the VPC, gives up its VPC policies when its Delete is sent (not answered); the pod policies stay with the old Child SA until it goes, the tunnel\'s stay', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kipsec-failover-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const xfrm = new FakeXfrm();
  let engine: FakeEngine | undefined;
  // FakeEngine.removePeer sends nothing and removes nothing: the Delete that node-a never answers.
  const agent = new Agent({ log: logSink().log, controlSocket: join(dir, 'agent.sock'), xfrm, sockets: new FakeSockets(), tuning: missingTuning('unit test'),
    engineFactory: (ports, peers) => { engine = new FakeEngine(ports, peers); return engine; } });
  await agent.start({ synced: true, peers: [pairWhileAActive] }, { initiate: false });
  t.after(() => agent.shutdown());
  const kernel = engine!.ports.kernel;
  const old = childSa(pairWhileAActive, 0xc0000a01);
  await kernel.installChildSa(old);
  /** Where the kernel sends or expects node-b's traffic with the VPC: "<dir> <src> > <dst> via <tunnel peer>". */
  const vpcPolicies = (): string[] => xfrm.policies.filter((p) => p.selector.src === VPC || p.selector.dst === VPC)
    .map((p) => `${p.dir} ${p.selector.src} > ${p.selector.dst} via ${p.dir === 'out' ? p.templates?.[0]?.dst : p.templates?.[0]?.src}`).sort();
  assert.deepEqual(vpcPolicies(), [`fwd ${VPC} > ${PODS_B} via ${NODE_A}`, `in ${VPC} > ${PODS_B} via ${NODE_A}`, `out ${PODS_B} > ${VPC} via ${NODE_A}`]);

  // node-b holds the Lease: the pair is negotiated again without the VPC on node-a's side, the tunnel added.
  const r = await agent.apply({ synced: true, peers: [pairAfterTakeover, tunnel] });
  assert.deepEqual(r.changed, ['mesh/node-a']);
  assert.deepEqual(vpcPolicies(), [], 'no policy sends node-b\'s VPC traffic to node-a any more');
  const podPolicies = (): number => xfrm.policies.filter((p) => p.selector.src === PODS_A || p.selector.dst === PODS_A).length;
  assert.equal(podPolicies(), 3, 'node-b ↔ node-a pods still through the old Child SA');

  await kernel.installChildSa(childSa(tunnel, 0xc0000b01));
  assert.deepEqual(vpcPolicies(), [`fwd ${VPC} > ${CLUSTER} via ${CHARON}`, `in ${VPC} > ${CLUSTER} via ${CHARON}`, `out ${CLUSTER} > ${VPC} via ${CHARON}`]);
  // The old Child SA goes at last (the Delete timed out): its pod policies with it, the tunnel's untouched.
  await kernel.deleteChildSa({ peer: old.peer, child: old.child, reqid: 1, inboundSpi: old.inbound.spi, outboundSpi: old.outbound.spi, local: NODE_B, remote: NODE_A }, { keepPolicies: false });
  assert.equal(podPolicies(), 0);
  assert.equal(vpcPolicies().length, 3);
});
