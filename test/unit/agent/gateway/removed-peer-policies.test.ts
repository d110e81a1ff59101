// A removed peer's Delete may never be answered (the remote dead): an old gateway that lost the
// tunnel's Lease while its agent still runs removes the tunnel peer, and its Child SA would keep
// its policies for the whole retransmission schedule. XFRM picks the older of two equal-priority
// policies, so the node's own pods would keep matching the stale ones. The policies go when the
// Delete is sent (those another reqid took over stay); the SAs stay for inbound ESP in flight.
// With strict mode the peer's block policies go only after its IPsec policies: in between its
// traffic is dropped, never sent in clear.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent } from '../../../../src/agent/daemon.js';
import { missingTuning } from '../../../../src/agent/native.js';
import type { DesiredPeer } from '../../../../src/agent/source.js';
import { blockPolicies } from '../../../../src/agent/strict.js';
import { NetlinkErrnoError, XfrmNotFoundError, type PolicyId, type PolicySpec, type PolicyState } from '../../../../src/xfrm/index.js';
import { FakeEngine, FakeSockets, FakeXfrm, logSink } from '../fakes.js';
import { CHARON, CLUSTER, NODE_A, NODE_B, PODS_A, PODS_B, VPC, child, childSaOf, desiredPeer } from './policy-fixtures.js';

const peer = (name: string, remote: string, children: ReturnType<typeof child>[], kind: DesiredPeer['kind'], strict = false): DesiredPeer =>
  desiredPeer(name, { local: { address: NODE_A, node: 'node-a' }, remote, children, kind, ...(strict ? { blocks: blockPolicies } : {}) });

const tunnel = peer('vpc', CHARON, [child('vpc', [CLUSTER], [VPC])], { type: 'tunnel' });
const pairWithB = peer('mesh/node-b', NODE_B, [child('pods', [PODS_A], [PODS_B])], { type: 'mesh', node: 'node-b' }, true);

const childSa = childSaOf;

/** The kernel tells policies apart by selector, direction and mark too (FakeXfrm by the first two). */
const samePolicy = (a: PolicyId, b: PolicyId): boolean => a.dir === b.dir && a.selector.src === b.selector.src && a.selector.dst === b.selector.dst
  && (a.mark?.value ?? 0) === (b.mark?.value ?? 0) && (a.mark?.mask ?? 0) === (b.mark?.mask ?? 0);

/** Keeps blocks next to IPsec policies, and records which kind each delete removes (blocks carry a mark, IPsec ones none). */
class OrderedXfrm extends FakeXfrm {
  deleted: string[] = [];
  override async updatePolicy(p: PolicySpec): Promise<void> {
    this.policies = this.policies.filter((x) => !samePolicy(x, p));
    this.policies.push({ ...p, index: 0, current: { bytes: 0n, packets: 0n, add_time: 0n, use_time: 0n } } as PolicyState);
  }
  override async deletePolicy(id: PolicyId): Promise<void> {
    this.deleted.push(`${id.mark ? 'block' : 'ipsec'} ${id.dir} ${id.selector.src} > ${id.selector.dst}`);
    const n = this.policies.length;
    this.policies = this.policies.filter((x) => !samePolicy(x, id));
    if (this.policies.length === n) throw new XfrmNotFoundError('delete', { kind: 'other', text: `policy ${id.dir}` }, new NetlinkErrnoError(3 /* ESRCH */, 0));
  }
}

async function agentWith(t: { after: (fn: () => unknown) => void }, xfrm: FakeXfrm, peers: DesiredPeer[]): Promise<{ agent: Agent; engine: FakeEngine }> {
  const dir = mkdtempSync(join(tmpdir(), 'kipsec-removed-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  let engine: FakeEngine | undefined;
  // FakeEngine.removePeer sends nothing and removes nothing: the Delete that is never answered.
  const agent = new Agent({ log: logSink().log, controlSocket: join(dir, 'agent.sock'), xfrm, sockets: new FakeSockets(), tuning: missingTuning('unit test'),
    engineFactory: (ports, ps) => { engine = new FakeEngine(ports, ps); return engine; } });
  await agent.start({ synced: true, peers }, { initiate: false });
  t.after(() => agent.shutdown());
  return { agent, engine: engine! };
}

test('an old gateway that lost the Lease removes the tunnel peer: its policies go when the Delete is sent (not answered), its SAs stay for ESP in flight, the mesh pair\'s are untouched', async (t) => {
  const xfrm = new FakeXfrm();
  const { agent, engine } = await agentWith(t, xfrm, [pairWithB, tunnel]);
  const kernel = engine.ports.kernel;
  const vpc = childSa(tunnel, 0xc0000b01);
  await kernel.installChildSa(childSa(pairWithB, 0xc0000a01));
  await kernel.installChildSa(vpc);
  const vpcPolicies = (): number => xfrm.policies.filter((p) => p.selector.src === VPC || p.selector.dst === VPC).length;
  const podPolicies = (): number => xfrm.policies.filter((p) => p.action !== 'block' && (p.selector.src === PODS_B || p.selector.dst === PODS_B)).length;
  assert.equal(vpcPolicies(), 3);

  const r = await agent.apply({ synced: true, peers: [pairWithB] });
  assert.deepEqual(r.removed, ['vpc']);
  assert.equal(vpcPolicies(), 0, 'no policy sends the cluster\'s VPC traffic into the tunnel whose Delete goes unanswered');
  assert.ok(xfrm.sas.some((s) => s.spi === vpc.inbound.spi && s.dst === NODE_A), 'the inbound SA stays until the Delete is answered or times out');
  assert.equal(podPolicies(), 3, 'the mesh pair keeps its policies');

  // The Delete times out at last: the SA goes, nothing of anyone else's with it.
  await kernel.deleteChildSa({ peer: vpc.peer, child: vpc.child, reqid: 1, inboundSpi: vpc.inbound.spi, outboundSpi: vpc.outbound.spi, local: NODE_A, remote: CHARON }, { keepPolicies: false });
  assert.ok(!xfrm.sas.some((s) => s.spi === vpc.inbound.spi));
  assert.equal(podPolicies(), 3);
});

test('a removed strict-mode mesh peer: its IPsec policies go before its block policies, so its pods\' traffic is dropped in between, never sent in clear', async (t) => {
  const xfrm = new OrderedXfrm();
  const { agent, engine } = await agentWith(t, xfrm, [pairWithB]);
  await engine.ports.kernel.installChildSa(childSa(pairWithB, 0xc0000a01));
  assert.equal(xfrm.policies.filter((p) => p.action === 'block').length, 6, 'out, in, fwd: a pair of blocks each');

  await agent.apply({ synced: true, peers: [] });
  const ipsec = xfrm.deleted.filter((d) => d.startsWith('ipsec'));
  assert.deepEqual([...ipsec].sort(), [`ipsec fwd ${PODS_B} > ${PODS_A}`, `ipsec in ${PODS_B} > ${PODS_A}`, `ipsec out ${PODS_A} > ${PODS_B}`]);
  const lastIpsec = xfrm.deleted.findLastIndex((d) => d.startsWith('ipsec'));
  const firstBlock = xfrm.deleted.findIndex((d) => d.startsWith('block'));
  assert.ok(firstBlock > lastIpsec, `blocks removed only after the IPsec policies: ${xfrm.deleted.join(', ')}`);
  assert.equal(xfrm.policies.length, 0);
  assert.ok(xfrm.sas.some((s) => s.spi === 0xc0000a01), 'the SAs stay for the Delete exchange');
});
