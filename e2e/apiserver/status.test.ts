// Status that explains itself, against the real apiserver: the operator verifies each IPsecNode's
// published certificate (IdentityVerified), aggregates the mesh (Ready/Degraded, nodes ready/total,
// CA fingerprint, observedGeneration), aggregates gateway reports into IPsecTunnel status, holds a
// finalizer until gateways tore the tunnel down, posts Events, and writes status only on change.
// Node pairs: agents report their peers in their own IPsecNode status; the operator counts the
// pairs, lists the worst, emits PairDown/PairUp on the mesh, and `kipsec status --kubeconfig`
// prints the same pairs as a matrix.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { systemClock } from '../../src/common/time.js';
import { KubeClient, RESOURCES, resourcePath } from '../../src/api/kube/client.js';
import { isNotFound } from '../../src/api/kube/errors.js';
import { IdentityClient } from '../../src/api/identity-client.js';
import { findCondition } from '../../src/api/conditions.js';
import type { IPsecMesh, IPsecNode, IPsecTunnel } from '../../src/api/types.js';
import { identityCrypto } from '../../src/pki/identity-crypto.js';
import { Operator } from '../../src/operator/operator.js';
import { eventually, kubeconfigPath, uniqueName } from '../lib/kube.js';
import type { NodePeerStatus } from '../../src/api/types.js';
import { run as kipsec } from '../../src/cli/main.js';
import { goodTunnelSpec } from '../../test/unit/api/cases.js';
import { adminClient, applyDeployFile, cleanupNamespace, createNode, deleteQuietly, ensureNamespace, installKipsecCrds, serviceAccountUser, testLogger } from './support.js';
import { scratchDir } from '../../test/lib/tmp.js';

let admin: KubeClient;
let ns: string;
let op: Operator;
const cleanups: (() => Promise<void>)[] = [];
const meshName = (): string => `mesh-${ns}`;
const now = (): string => new Date().toISOString().replace(/\.\d+Z$/, 'Z');

before(async () => {
  admin = adminClient();
  ns = uniqueName('kipsec-st');
  await installKipsecCrds(admin);
  await ensureNamespace(admin, ns);
  cleanups.push(await applyDeployFile(admin, 'rbac.yaml', ns));
  await admin.create(resourcePath(RESOURCES.ipsecMeshes), { apiVersion: 'kipsec.io/v1alpha1', kind: 'IPsecMesh', metadata: { name: meshName() }, spec: { nodeSelector: { 'kipsec.io/test-mesh': ns } } });
  cleanups.push(() => deleteQuietly(admin, resourcePath(RESOURCES.ipsecMeshes, { name: meshName() })));
  op = new Operator({ kube: admin.as(serviceAccountUser(ns, 'kipsec-operator')), namespace: ns, identity: 'op-st', clock: systemClock, log: testLogger(), csrLabelSelector: `kipsec.io/test=${ns}`, meshName: meshName(), leaseDurationMs: 3000, renewDeadlineMs: 2000, retryPeriodMs: 300 });
  await op.start();
  await eventually(async () => (op.isLeader ? true : undefined), 10_000);
});

after(async () => {
  await op.stop();
  for (const c of cleanups.reverse()) await c();
  await cleanupNamespace(admin, ns, ns);
  admin.close();
});

/** An agent's part: node, certificate, IPsecNode with its identity, Ready condition as kipsec-agent. */
async function joinNode(ip: string, fingerprintOverride?: string, label = 'kipsec.io/test-mesh'): Promise<{ name: string; agentKube: KubeClient }> {
  const name = uniqueName('st-node');
  await createNode(admin, name, ip);
  await admin.mergePatch(resourcePath(RESOURCES.nodes, { name }), { metadata: { labels: { [label]: ns } } });
  cleanups.push(() => deleteQuietly(admin, resourcePath(RESOURCES.nodes, { name })), () => deleteQuietly(admin, resourcePath(RESOURCES.ipsecNodes, { name })));
  const agentKube = admin.as(serviceAccountUser(ns, 'kipsec-agent', name));
  const id = new IdentityClient({ kube: agentKube, crypto: identityCrypto, nodeName: name, dir: scratchDir('kipsec-st-'), clock: systemClock, log: { info: () => undefined, warn: () => undefined }, namespace: ns, labels: { 'kipsec.io/test': ns } });
  const cert = await id.start();
  id.stop();
  await agentKube.apply(resourcePath(RESOURCES.ipsecNodes, { name }), { apiVersion: 'kipsec.io/v1alpha1', kind: 'IPsecNode', metadata: { name }, spec: { endpoint: { address: ip }, identity: { certFingerprint: fingerprintOverride ?? cert.fingerprint, publicKeyFingerprint: cert.publicKeyFingerprint, san: name } } }, 'kipsec-agent');
  await agentKube.apply(resourcePath(RESOURCES.ipsecNodes, { name, sub: 'status' }), { apiVersion: 'kipsec.io/v1alpha1', kind: 'IPsecNode', metadata: { name }, status: { datapath: 'userspace', conditions: [{ type: 'Ready', status: 'True', reason: 'AllPeersEstablished', message: 'ok', lastTransitionTime: now() }] } }, 'kipsec-agent');
  return { name, agentKube };
}

const getNode = (name: string): Promise<IPsecNode> => admin.get<IPsecNode>(resourcePath(RESOURCES.ipsecNodes, { name }));
const getMesh = (): Promise<IPsecMesh> => admin.get<IPsecMesh>(resourcePath(RESOURCES.ipsecMeshes, { name: meshName() }));

test('an IPsecNode publishing the certificate the operator issued gets IdentityVerified=True next to the agent\'s own Ready condition; the mesh becomes Ready with the CA fingerprint', async () => {
  const { name } = await joinNode('192.0.2.60');
  const n = await eventually(async () => { const x = await getNode(name); return findCondition(x.status?.conditions, 'IdentityVerified')?.status === 'True' ? x : undefined; });
  assert.equal(findCondition(n.status?.conditions, 'IdentityVerified')?.reason, 'CertificateMatches');
  assert.equal(findCondition(n.status?.conditions, 'Ready')?.status, 'True', 'the agent-owned condition survives the operator\'s apply');
  const m = await eventually(async () => { const x = await getMesh(); return x.status?.nodesTotal === 1 && findCondition(x.status.conditions, 'Ready')?.status === 'True' ? x : undefined; });
  assert.equal(m.status?.nodesReady, 1);
  assert.equal(m.status?.observedGeneration, m.metadata.generation);
  assert.match(m.status?.caFingerprint ?? '', /^[0-9a-f]{64}$/);
  assert.equal(findCondition(m.status?.conditions, 'Ready')?.observedGeneration, m.metadata.generation);
  const evs = await eventually(async () => {
    const l = await admin.get<{ items: { reason: string; regarding: { name: string } }[] }>(resourcePath(RESOURCES.events, { namespace: 'default' }));
    const mine = l.items.filter((e) => e.regarding.name === meshName());
    return mine.length > 0 ? mine : undefined;
  });
  assert.equal(evs[0]?.reason, 'AllNodesReady');
});

test('an IPsecNode with a certificate the operator never issued is flagged (UnknownCertificate) and the mesh reports Degraded naming it', async () => {
  const { name } = await joinNode('192.0.2.61', 'ab'.repeat(32));
  const n = await eventually(async () => { const x = await getNode(name); return findCondition(x.status?.conditions, 'IdentityVerified')?.status === 'False' ? x : undefined; });
  assert.equal(findCondition(n.status?.conditions, 'IdentityVerified')?.reason, 'UnknownCertificate');
  const m = await eventually(async () => { const x = await getMesh(); const d = findCondition(x.status?.conditions, 'Degraded'); return d?.status === 'True' && d.message.includes(name) ? x : undefined; });
  assert.equal(findCondition(m.status?.conditions, 'Degraded')?.reason, 'UnknownCertificate');
});

test('status is written only when it changes: a converged mesh is not rewritten by unrelated updates', async () => {
  const m1 = await eventually(async () => { const x = await getMesh(); return x.status?.nodesTotal !== undefined ? x : undefined; });
  await new Promise((r) => setTimeout(r, 1500));
  const settled = await getMesh();
  // Touch the nodes (no change that matters to status): the mesh is re-reconciled but not re-written.
  for (const n of op.caches.ipsecNodes.list().filter((x) => x.metadata.name.startsWith('st-node'))) {
    await admin.mergePatch(resourcePath(RESOURCES.ipsecNodes, { name: n.metadata.name }), { metadata: { annotations: { touched: String(Date.now()) } } }).catch(() => undefined);
  }
  await new Promise((r) => setTimeout(r, 2500));
  const after1 = await getMesh();
  assert.equal(after1.metadata.resourceVersion, settled.metadata.resourceVersion);
  assert.ok(m1);
});

test('an IPsecTunnel gets a finalizer and NoGatewayReports status, then Established/Ready with the suite from gateway reports, and is deleted only after the gateway tore it down', async () => {
  const { name: gw, agentKube } = await joinNode('192.0.2.62');
  const tname = uniqueName('tun');
  const tpath = resourcePath(RESOURCES.ipsecTunnels, { name: tname });
  cleanups.push(async () => { await admin.mergePatch(tpath, { metadata: { finalizers: null } }).catch(() => undefined); await deleteQuietly(admin, tpath); });
  await admin.create(resourcePath(RESOURCES.ipsecTunnels), { apiVersion: 'kipsec.io/v1alpha1', kind: 'IPsecTunnel', metadata: { name: tname }, spec: goodTunnelSpec() });
  const t1 = await eventually(async () => { const t = await admin.get<IPsecTunnel>(tpath); return t.status?.conditions ? t : undefined; });
  assert.deepEqual(t1.metadata.finalizers, ['kipsec.io/tunnel-teardown']);
  assert.equal(findCondition(t1.status?.conditions, 'Ready')?.reason, 'NoGatewayReports');
  // The gateway's agent reports the tunnel in its own IPsecNode status.
  const report = (state: string): Promise<unknown> => agentKube.apply(resourcePath(RESOURCES.ipsecNodes, { name: gw, sub: 'status' }), { apiVersion: 'kipsec.io/v1alpha1', kind: 'IPsecNode', metadata: { name: gw }, status: { tunnels: [{ name: tname, role: 'active', ikeSaState: state, childSaState: state, negotiatedSuite: 'aes256gcm16-prfsha384-x25519', bytesIn: 10, bytesOut: 20 }] } }, 'kipsec-agent');
  await report('established');
  const t2 = await eventually(async () => { const t = await admin.get<IPsecTunnel>(tpath); return findCondition(t.status?.conditions, 'Established')?.status === 'True' ? t : undefined; });
  assert.equal(findCondition(t2.status?.conditions, 'Ready')?.status, 'True');
  assert.equal(t2.status?.negotiatedSuite, 'aes256gcm16-prfsha384-x25519');
  assert.equal(t2.status?.gateways?.[0]?.node, gw);
  await admin.delete(tpath);
  await new Promise((r) => setTimeout(r, 1500));
  assert.ok((await admin.get<IPsecTunnel>(tpath)).metadata.deletionTimestamp, 'still there while the gateway reports an SA');
  await report('none');
  await eventually(async () => admin.get(tpath).then(() => undefined, (e: unknown) => (isNotFound(e) ? true : undefined)), 10_000);
});

test('node pairs: agents\' peer reports make pairsEstablished/worstPairs; a pair that breaks gets a PairDown Event naming the side and IKE notify, PairUp when it is back; kipsec status --kubeconfig prints the matrix', async () => {
  const pm = `pairs-${ns}`;
  const label = 'kipsec.io/test-pairs';
  await admin.create(resourcePath(RESOURCES.ipsecMeshes), { apiVersion: 'kipsec.io/v1alpha1', kind: 'IPsecMesh', metadata: { name: pm }, spec: { nodeSelector: { [label]: ns } } });
  cleanups.push(() => deleteQuietly(admin, resourcePath(RESOURCES.ipsecMeshes, { name: pm })));
  const getPm = (): Promise<IPsecMesh> => admin.get<IPsecMesh>(resourcePath(RESOURCES.ipsecMeshes, { name: pm }));
  const joined = [await joinNode('192.0.2.70', undefined, label), await joinNode('192.0.2.71', undefined, label), await joinNode('192.0.2.72', undefined, label)];
  const [a, b] = [joined[0]!, joined[1]!];
  // Pairs of nodes that have not reported each other yet: not established, and never up (no Events).
  const forming = await eventually(async () => { const x = await getPm(); return x.status?.pairsExpected === 3 ? x : undefined; });
  assert.equal(forming.status?.pairsEstablished, 0);
  assert.equal(forming.status?.worstPairs?.[0]?.state, 'unknown');
  /** Each agent writes its own IPsecNode status (as kipsec-agent): every peer established but the overrides. */
  const report = async (over: Record<string, Omit<NodePeerStatus, 'node'>> = {}, bytes = 0): Promise<void> => {
    for (const me of joined) {
      const peers = joined.filter((x) => x !== me).map((x) => ({ node: x.name, ...(over[`${me.name}>${x.name}`] ?? { state: 'established' as const }), bytesIn: bytes }));
      await me.agentKube.apply(resourcePath(RESOURCES.ipsecNodes, { name: me.name, sub: 'status' }), { apiVersion: 'kipsec.io/v1alpha1', kind: 'IPsecNode', metadata: { name: me.name }, status: {
        peers, peersUp: peers.filter((p) => p.state === 'established').length, peersExpected: peers.length, lastUpdateTime: now(),
        conditions: [{ type: 'Ready', status: 'True', reason: 'PeersEstablished', message: 'ok', lastTransitionTime: now() }],
      } }, 'kipsec-agent');
    }
  };
  await report();
  const up = await eventually(async () => { const x = await getPm(); return x.status?.pairsEstablished === 3 && findCondition(x.status.conditions, 'Ready')?.status === 'True' ? x : undefined; });
  assert.equal(findCondition(up.status?.conditions, 'Ready')?.reason, 'AllPairsEstablished');
  assert.equal(up.status?.worstPairs, undefined);
  // Counters move (the agent's once-a-minute write): nothing in the mesh status changes, no write.
  await new Promise((r) => setTimeout(r, 1500));
  const settled = await getPm();
  await report({}, 4096);
  await new Promise((r) => setTimeout(r, 2500));
  assert.equal((await getPm()).metadata.resourceVersion, settled.metadata.resourceVersion, 'counters alone do not rewrite the mesh');

  const pairEvents = async (reason: string): Promise<{ note: string; type: string }[]> => {
    const l = await admin.get<{ items: { reason: string; note: string; type: string; regarding: { name: string } }[] }>(resourcePath(RESOURCES.events, { namespace: 'default' }));
    return l.items.filter((e) => e.regarding.name === pm && e.reason === reason);
  };
  assert.deepEqual([(await pairEvents('PairDown')).length, (await pairEvents('PairUp')).length], [0, 0], 'pairs coming up for the first time make no Events');

  await report({ [`${a.name}>${b.name}`]: { state: 'failed', lastError: { notify: 'AUTHENTICATION_FAILED', message: `peer identity does not match IPsecNode ${b.name}` } }, [`${b.name}>${a.name}`]: { state: 'connecting' } });
  const [x, y] = [a.name, b.name].sort() as [string, string];
  const down = await eventually(async () => { const m = await getPm(); return m.status?.pairsEstablished === 2 ? m : undefined; });
  const w = down.status?.worstPairs?.[0];
  assert.deepEqual([w?.nodes, w?.state], [[x, y], 'failed']);
  assert.match(w?.message ?? '', new RegExp(`^${a.name}: AUTHENTICATION_FAILED: peer identity does not match IPsecNode ${b.name}; ${b.name}: connecting$`));
  assert.deepEqual([findCondition(down.status?.conditions, 'Degraded')?.reason, findCondition(down.status?.conditions, 'Ready')?.reason], ['PairsNotEstablished', 'PairsNotEstablished']);
  const pd = await eventually(async () => { const e = await pairEvents('PairDown'); return e.length > 0 ? e : undefined; });
  assert.equal(pd[0]?.type, 'Warning');
  assert.match(pd[0]?.note ?? '', new RegExp(`^${x} <-> ${y}: ${a.name}: AUTHENTICATION_FAILED: `));

  // The matrix from the apiserver, no control socket.
  const out: string[] = []; const err: string[] = [];
  assert.equal(await kipsec(['status', '--kubeconfig', kubeconfigPath(), '--mesh', pm], { out: (l) => out.push(l), err: (l) => err.push(l) }), 0, err.join('\n'));
  assert.equal(out[0], `mesh ${pm} (nodes ${label}=${ns}): 2/3 pairs established, 3/3 nodes ready`);
  const rowA = out.find((l) => l.includes(` ${a.name} `));
  assert.match(rowA ?? '', /ready\s+(-|UP|XX)\s+(-|UP|XX)\s+(-|UP|XX)$/);
  assert.ok(rowA?.includes('XX'), rowA);
  assert.ok(out.some((l) => l.includes(`${x} <-> ${y}`) && l.includes('AUTHENTICATION_FAILED')), out.join('\n'));

  await report();
  const back = await eventually(async () => { const e = await pairEvents('PairUp'); return e.length > 0 ? e : undefined; });
  assert.equal(back[0]?.type, 'Normal');
  assert.match(back[0]?.note ?? '', new RegExp(`^${x} <-> ${y}: established \\(down since `));
  assert.equal((await pairEvents('PairDown')).length, 1, 'one PairDown for one pair going down once');
  const healed = await eventually(async () => { const m = await getPm(); return m.status?.pairsEstablished === 3 ? m : undefined; });
  assert.equal(findCondition(healed.status?.conditions, 'Degraded')?.status, 'False');
});
