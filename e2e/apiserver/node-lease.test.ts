// Node liveness through Leases against the real apiserver (src/api/node-lease.ts): each agent's
// NodePublisher (the agent's own code, as the kipsec-agent service account bound to its node)
// renews kipsec-node-<node> and writes its IPsecNode status only when it changes; the operator
// (as kipsec-operator, deploy/rbac.yaml) judges staleness from the Lease, and from lastUpdateTime
// for an agent that has no Lease (one from before Leases). The admission policy
// (deploy/admission-policy.yaml) keeps each agent to its own node's Lease.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { systemClock } from '../../src/common/time.js';
import { RESOURCES, resourcePath, type KubeClient } from '../../src/api/kube/client.js';
import { KubeApiError } from '../../src/api/kube/errors.js';
import { findCondition } from '../../src/api/conditions.js';
import { NODE_LEASE_LABEL, nodeLeaseName, type NodeLease } from '../../src/api/node-lease.js';
import type { IPsecMesh, IPsecNode, IPsecNodeStatus } from '../../src/api/types.js';
import { createLogger } from '../../src/agent/log.js';
import { NodePublisher } from '../../src/agent/mesh/publisher.js';
import { PeerLeases } from '../../src/agent/mesh/node-lease.js';
import type { Operator } from '../../src/operator/operator.js';
import { eventually, uniqueName } from '../lib/kube.js';
import { adminClient, applyDeployFile, cleanupNamespace, createNode, deleteQuietly, ensureNamespace, installKipsecCrds, serviceAccountUser, startTestOperator } from './support.js';

/** A short heartbeat: renewed every second, stale after 3 s without a renewal. */
const LEASE_MS = 3_000;

let admin: KubeClient;
let ns: string;
let op: Operator;
const cleanups: (() => Promise<void>)[] = [];
const publishers: NodePublisher[] = [];
const meshName = (): string => `mesh-${ns}`;
const iso = (ms: number): string => new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z');

before(async () => {
  admin = adminClient();
  ns = uniqueName('kipsec-nl');
  await installKipsecCrds(admin);
  await ensureNamespace(admin, ns);
  cleanups.push(await applyDeployFile(admin, 'rbac.yaml', ns));
  cleanups.push(await applyDeployFile(admin, 'admission-policy.yaml', ns));
  await admin.create(resourcePath(RESOURCES.ipsecMeshes), { apiVersion: 'kipsec.io/v1alpha1', kind: 'IPsecMesh', metadata: { name: meshName() }, spec: { nodeSelector: { 'kipsec.io/test-mesh': ns } } });
  cleanups.push(() => deleteQuietly(admin, resourcePath(RESOURCES.ipsecMeshes, { name: meshName() })));
  op = await startTestOperator(admin, ns, 'op-nl');
});

after(async () => {
  for (const p of publishers) p.stop();
  await op.stop();
  for (const c of cleanups.reverse()) await c();
  await cleanupNamespace(admin, ns, ns);
  admin.close();
});

async function addNode(ip: string): Promise<{ name: string; agentKube: KubeClient }> {
  const name = uniqueName('nl-node');
  await createNode(admin, name, ip);
  await admin.mergePatch(resourcePath(RESOURCES.nodes, { name }), { metadata: { labels: { 'kipsec.io/test-mesh': ns } } });
  cleanups.push(() => deleteQuietly(admin, resourcePath(RESOURCES.nodes, { name })), () => deleteQuietly(admin, resourcePath(RESOURCES.ipsecNodes, { name })),
    () => deleteQuietly(admin, resourcePath(RESOURCES.leases, { namespace: ns, name: nodeLeaseName(name) })));
  return { name, agentKube: admin.as(serviceAccountUser(ns, 'kipsec-agent', name)) };
}

/** Ready, every peer established; lastUpdateTime given (the agent sets it to when it computed the status). */
function status(peers: readonly string[], lastUpdateMs: number): IPsecNodeStatus {
  return {
    conditions: [{ type: 'Ready', status: 'True', reason: 'PeersEstablished', message: `${peers.length}/${peers.length} peers established`, lastTransitionTime: '2026-01-01T00:00:00Z' }],
    peers: peers.map((node) => ({ node, state: 'established' as const })), peersUp: peers.length, peersExpected: peers.length, lastUpdateTime: iso(lastUpdateMs),
  };
}

const getMesh = (): Promise<IPsecMesh> => admin.get<IPsecMesh>(resourcePath(RESOURCES.ipsecMeshes, { name: meshName() }));
const getNode = (name: string): Promise<IPsecNode> => admin.get<IPsecNode>(resourcePath(RESOURCES.ipsecNodes, { name }));
const getLease = (name: string): Promise<NodeLease> => admin.get<NodeLease>(resourcePath(RESOURCES.leases, { namespace: ns, name: nodeLeaseName(name) }));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('agents renew their node Lease and write their IPsecNode status only on change; an agent whose Lease stops is stale for the operator within the Lease duration; an agent without a Lease is judged by lastUpdateTime', async (t) => {
  const a = await addNode('192.0.2.110');
  const b = await addNode('192.0.2.111');
  const old = await addNode('192.0.2.112'); // an agent from before Leases: lastUpdateTime, no Lease
  const names = [a.name, b.name, old.name];
  const pub = (n: { name: string; agentKube: KubeClient }): NodePublisher => {
    const p = new NodePublisher({ kube: n.agentKube, node: n.name, namespace: ns, leaseDurationMs: LEASE_MS, clock: systemClock, log: createLogger({ level: 'silent' }), minIntervalMs: 200, countersIntervalMs: 60_000 });
    publishers.push(p);
    return p;
  };
  const pa = pub(a); const pb = pub(b);
  for (const [p, n] of [[pa, a], [pb, b]] as const) await p.publishSpec({ endpoint: { address: n === a ? '192.0.2.110' : '192.0.2.111' } });
  await old.agentKube.apply(resourcePath(RESOURCES.ipsecNodes, { name: old.name }), { apiVersion: 'kipsec.io/v1alpha1', kind: 'IPsecNode', metadata: { name: old.name }, spec: { endpoint: { address: '192.0.2.112' } } }, 'kipsec-agent');
  const oldStatus = (ms: number): Promise<unknown> => old.agentKube.apply(resourcePath(RESOURCES.ipsecNodes, { name: old.name, sub: 'status' }), { apiVersion: 'kipsec.io/v1alpha1', kind: 'IPsecNode', metadata: { name: old.name }, status: status(names.filter((x) => x !== old.name), ms) }, 'kipsec-agent');
  await oldStatus(Date.now());
  // Statuses whose lastUpdateTime is ten minutes old: by lastUpdateTime alone they would be stale.
  const first = Date.now() - 10 * 60_000;
  pa.offer(status(names.filter((x) => x !== a.name), first));
  pb.offer(status(names.filter((x) => x !== b.name), first));

  const up = await eventually(async () => { const m = await getMesh(); return m.status?.nodesReady === 3 && m.status.pairsEstablished === 3 ? m : undefined; }, 20_000, 200,
    { what: 'all three nodes ready, three pairs', state: async () => JSON.stringify((await getMesh()).status) });
  assert.equal(findCondition(up.status?.conditions, 'Ready')?.status, 'True', 'two quiet nodes with fresh Leases and a fresh old agent count as ready');
  const lease = await getLease(a.name);
  assert.deepEqual([lease.spec?.holderIdentity, lease.spec?.leaseDurationSeconds, lease.metadata.labels?.[NODE_LEASE_LABEL]], [a.name, 3, 'true']);
  assert.equal((lease.metadata.ownerReferences as { kind: string; name: string }[] | undefined)?.[0]?.name, a.name, 'owned by the IPsecNode (collected with it)');

  await t.test('nothing changes for three Lease periods: the IPsecNode is not rewritten, the Lease is renewed each period', async () => {
    const nodeBefore = (await getNode(a.name)).metadata.resourceVersion;
    const leaseBefore = await getLease(a.name);
    const renewalsBefore = pa.lease!.stats.renewals;
    // The agent offers its status every tick, each computed anew (a new lastUpdateTime), same content.
    const end = Date.now() + 3 * LEASE_MS;
    while (Date.now() < end) { pa.offer(status(names.filter((x) => x !== a.name), Date.now())); await sleep(250); }
    const nodeAfter = await getNode(a.name);
    const leaseAfter = await getLease(a.name);
    const renewals = pa.lease!.stats.renewals - renewalsBefore;
    t.diagnostic(`over ${3 * LEASE_MS} ms: IPsecNode resourceVersion ${nodeBefore} -> ${nodeAfter.metadata.resourceVersion}, status writes ${pa.stats.statusWrites}, Lease renewals ${renewals}, renewTime ${leaseBefore.spec?.renewTime} -> ${leaseAfter.spec?.renewTime}`);
    assert.equal(nodeAfter.metadata.resourceVersion, nodeBefore, 'no write of the IPsecNode');
    assert.equal(nodeAfter.status?.lastUpdateTime, iso(first), 'the status written is the first one');
    assert.equal(pa.stats.statusWrites, 1);
    assert.ok(renewals >= 6, `${renewals} renewals in three periods of three renewals each`);
    assert.notEqual(leaseAfter.spec?.renewTime, leaseBefore.spec?.renewTime);
  });

  await t.test('a peer\'s agent reads that Lease by name (the reconnect check), as kipsec-agent', async () => {
    const peers = new PeerLeases({ kube: b.agentKube, namespace: ns, clock: systemClock });
    await peers.refresh([a.name, old.name]);
    assert.equal(peers.get(a.name)?.spec?.holderIdentity, a.name);
    assert.equal(peers.get(old.name), undefined, 'the old agent has none');
    assert.equal(peers.stats.failures, 0);
  });

  await t.test('agent b stops (its Lease is no longer renewed): the operator counts it stale — not ready, its reports unknown — within the Lease duration and its recheck', async () => {
    pb.stop();
    const stoppedAt = Date.now();
    const lastRenew = Date.parse((await getLease(b.name)).spec?.renewTime ?? '');
    const stale = await eventually(async () => { const m = await getMesh(); return m.status?.nodesReady === 2 ? m : undefined; }, LEASE_MS + 15_000, 200,
      { what: 'node b not ready', state: async () => JSON.stringify((await getMesh()).status) });
    const seenMs = Date.now();
    t.diagnostic(`b's last renewal ${new Date(lastRenew).toISOString()}, stopped ${new Date(stoppedAt).toISOString()}, mesh shows it stale ${seenMs - lastRenew} ms after its last renewal (Lease duration ${LEASE_MS} ms, recheck +1 s, mesh batch ≥ 1 s)`);
    const ready = findCondition(stale.status?.conditions, 'Ready');
    assert.equal(ready?.reason, 'NodesNotReady');
    assert.match(ready?.message ?? '', new RegExp(`not ready: ${b.name} \\(last heard from \\S+ by its node Lease\\)`));
    assert.equal(stale.status?.pairsEstablished, 1, 'only a <-> old: the pairs with b are half (b\'s word does not count)');
    assert.ok(seenMs - lastRenew > LEASE_MS, 'not before the Lease expired');
  });

  await t.test('the agent without a Lease: fresh lastUpdateTime counts (above), one older than 3 minutes is stale', async () => {
    await oldStatus(Date.now() - 4 * 60_000);
    const m = await eventually(async () => { const x = await getMesh(); return x.status?.nodesReady === 1 ? x : undefined; }, 15_000, 200,
      { what: 'old agent stale', state: async () => JSON.stringify((await getMesh()).status) });
    assert.match(findCondition(m.status?.conditions, 'Ready')?.message ?? '', new RegExp(`${old.name} \\(last heard from \\S+ by its status\\)`));
  });
});

test('admission: an agent writes only its own node Lease, held by itself', async () => {
  const x = await addNode('192.0.2.120');
  const y = await addNode('192.0.2.121');
  const asX = admin.as(serviceAccountUser(ns, 'kipsec-agent', x.name));
  const body = (name: string, holder: string): NodeLease => ({ apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name, namespace: ns, labels: { [NODE_LEASE_LABEL]: 'true' } }, spec: { holderIdentity: holder, leaseDurationSeconds: 3 } });
  const leases = resourcePath(RESOURCES.leases, { namespace: ns });
  const refused = (e: unknown): string => (e instanceof KubeApiError && (e.status === 403 || e.status === 422) ? 'refused' : String(e));
  // The policy applies once compiled: wait until the foreign name is refused.
  await eventually(async () => (await asX.create(leases, body(nodeLeaseName(y.name), y.name), { dryRun: 'All' }).then(() => 'allowed', refused)) === 'refused' ? true : undefined, 30_000, 250);
  assert.equal(await asX.create(leases, body(nodeLeaseName(x.name), y.name), { dryRun: 'All' }).then(() => 'allowed', refused), 'refused', 'its own name, another holder');
  assert.equal(await asX.create(leases, body('kipsec-operator-x', x.name), { dryRun: 'All' }).then(() => 'allowed', refused), 'refused', 'another prefix');
  assert.equal(await asX.create(leases, body(nodeLeaseName(x.name), x.name)).then(() => 'allowed', refused), 'allowed');
  const unbound = admin.as(serviceAccountUser(ns, 'kipsec-agent'));
  assert.equal(await unbound.create(leases, body(nodeLeaseName(y.name), y.name), { dryRun: 'All' }).then(() => 'allowed', refused), 'refused', 'a token not bound to a node');
});
