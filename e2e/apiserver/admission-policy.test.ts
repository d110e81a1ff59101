// deploy/admission-policy.yaml against the real apiserver: an agent may write only the IPsecNode
// of the node it runs on. The first test uses a real service-account token minted with the
// TokenRequest API and bound to a Pod on node X (the apiserver itself puts node X into the user's
// extra info); the others impersonate the same user info.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { KubeConfig } from '@kubernetes/client-node';
import { KubeClient, RESOURCES, resourcePath } from '../../src/api/kube/client.js';
import { KubeApiError } from '../../src/api/kube/errors.js';
import { eventually, kubeconfigPath, loadKubeConfig, uniqueName } from '../lib/kube.js';
import { adminClient, applyDeployFile, createNode, deleteQuietly, ensureNamespace, installKipsecCrds, serviceAccountUser } from './support.js';

let admin: KubeClient;
let ns: string;
const cleanups: (() => Promise<void>)[] = [];

const ipsecNode = (name: string, ip: string): unknown => ({ apiVersion: 'kipsec.io/v1alpha1', kind: 'IPsecNode', metadata: { name }, spec: { endpoint: { address: ip } } });
const nodesPath = resourcePath(RESOURCES.ipsecNodes);

async function newNode(ip: string): Promise<string> {
  const name = uniqueName('n');
  await createNode(admin, name, ip);
  cleanups.push(() => deleteQuietly(admin, resourcePath(RESOURCES.nodes, { name })), () => deleteQuietly(admin, resourcePath(RESOURCES.ipsecNodes, { name })));
  return name;
}

function forbidden(e: unknown, re: RegExp): boolean {
  return e instanceof KubeApiError && (e.status === 403 || e.status === 422) && re.test(e.message);
}

before(async () => {
  admin = adminClient();
  ns = uniqueName('kipsec-vap');
  await installKipsecCrds(admin);
  await ensureNamespace(admin, ns);
  cleanups.push(await applyDeployFile(admin, 'rbac.yaml', ns));
  cleanups.push(await applyDeployFile(admin, 'admission-policy.yaml', ns));
  // The policy is enforced once the apiserver has compiled it: probe until a foreign write is refused.
  const probe = await newNode('198.51.100.1');
  const agent = admin.as(serviceAccountUser(ns, 'kipsec-agent', 'elsewhere'));
  await eventually(async () => {
    const r = await agent.create(nodesPath, ipsecNode(probe, '198.51.100.1'), { dryRun: 'All' }).then(() => 'allowed', (e: unknown) => (forbidden(e, /own node/) ? 'denied' : String(e)));
    return r === 'denied' ? true : undefined;
  }, 30_000, 250);
});

after(async () => {
  for (const c of cleanups.reverse()) await c();
  await deleteQuietly(admin, resourcePath(RESOURCES.namespaces, { name: ns }));
  admin.close();
});

test('with a real pod-bound service-account token, the agent on node X may write IPsecNode X but not IPsecNode Y', async () => {
  const x = await newNode('198.51.100.10');
  const y = await newNode('198.51.100.11');
  const pod = await admin.create<{ metadata: { name: string; uid: string } }>(resourcePath({ group: '', version: 'v1', plural: 'pods' }, { namespace: ns }), {
    apiVersion: 'v1', kind: 'Pod', metadata: { name: uniqueName('agent') },
    spec: { nodeName: x, serviceAccountName: 'kipsec-agent', containers: [{ name: 'agent', image: 'kipsec:test' }] },
  });
  cleanups.push(() => deleteQuietly(admin, resourcePath({ group: '', version: 'v1', plural: 'pods' }, { namespace: ns, name: pod.metadata.name })));
  const tr = await admin.create<{ status: { token: string } }>(`/api/v1/namespaces/${ns}/serviceaccounts/kipsec-agent/token`, {
    apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest',
    spec: { expirationSeconds: 3600, boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: pod.metadata.name, uid: pod.metadata.uid } },
  });
  const base = loadKubeConfig();
  const cluster = base.getCurrentCluster()!;
  const kc = new KubeConfig();
  kc.loadFromOptions({ clusters: [{ name: 'c', server: cluster.server, caFile: cluster.caFile ?? '', skipTLSVerify: false }], users: [{ name: 'agent', token: tr.status.token }], contexts: [{ name: 'c', cluster: 'c', user: 'agent' }], currentContext: 'c' });
  void kubeconfigPath;
  const agent = new KubeClient(kc);
  try {
    // The apiserver's own view of this token: user kipsec-agent with node X in extra.
    const review = await agent.create<{ status: { userInfo: { username: string; extra?: Record<string, string[]> } } }>('/apis/authentication.k8s.io/v1/selfsubjectreviews', { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' });
    assert.equal(review.status.userInfo.username, `system:serviceaccount:${ns}:kipsec-agent`);
    assert.deepEqual(review.status.userInfo.extra?.['authentication.kubernetes.io/node-name'], [x]);
    await agent.create(nodesPath, ipsecNode(x, '198.51.100.10'));
    await agent.mergePatch(resourcePath(RESOURCES.ipsecNodes, { name: x, sub: 'status' }), { status: { datapath: 'userspace' } });
    await assert.rejects(agent.create(nodesPath, ipsecNode(y, '198.51.100.11')), (e: unknown) => forbidden(e, new RegExp(`own node \\(${x}\\), not ${y}`)));
  } finally { agent.close(); }
});

test("the agent may not change another node's IPsecNode or its status, nor delete it", async () => {
  const y = await newNode('198.51.100.21');
  await admin.create(nodesPath, ipsecNode(y, '198.51.100.21'));
  const agentX = admin.as(serviceAccountUser(ns, 'kipsec-agent', 'node-x'));
  await assert.rejects(agentX.mergePatch(resourcePath(RESOURCES.ipsecNodes, { name: y }), { spec: { endpoint: { address: '203.0.113.66' } } }), (e: unknown) => forbidden(e, /own node/));
  await assert.rejects(agentX.mergePatch(resourcePath(RESOURCES.ipsecNodes, { name: y, sub: 'status' }), { status: { datapath: 'kernel' } }), (e: unknown) => forbidden(e, /own node/));
  // Deleting is not even in the agent's RBAC (the operator side cleans up nodes that left).
  await assert.rejects(agentX.delete(resourcePath(RESOURCES.ipsecNodes, { name: y })), (e: unknown) => forbidden(e, /cannot delete/));
});

test('an agent token not bound to a node gets no IPsecNode writes; the admin is not affected', async () => {
  const z = await newNode('198.51.100.31');
  const unbound = admin.as(serviceAccountUser(ns, 'kipsec-agent'));
  await assert.rejects(unbound.create(nodesPath, ipsecNode(z, '198.51.100.31')), (e: unknown) => forbidden(e, /token not bound to a node/));
  await admin.create(nodesPath, ipsecNode(z, '198.51.100.31'));
});

test('RBAC: the agent cannot approve CSRs or read the CA Secret', async () => {
  const agent = admin.as(serviceAccountUser(ns, 'kipsec-agent', 'node-x'));
  const review = async (attrs: Record<string, string>): Promise<boolean> => (await agent.create<{ status: { allowed: boolean } }>('/apis/authorization.k8s.io/v1/selfsubjectaccessreviews', { apiVersion: 'authorization.k8s.io/v1', kind: 'SelfSubjectAccessReview', spec: { resourceAttributes: attrs } })).status.allowed;
  assert.equal(await review({ group: 'certificates.k8s.io', resource: 'certificatesigningrequests', subresource: 'approval', verb: 'update' }), false);
  assert.equal(await review({ group: 'certificates.k8s.io', resource: 'signers', verb: 'approve', name: 'kipsec.io/node-identity' }), false);
  assert.equal(await review({ group: '', resource: 'secrets', verb: 'get', namespace: ns, name: 'kipsec-ca' }), false);
  assert.equal(await review({ group: 'certificates.k8s.io', resource: 'certificatesigningrequests', verb: 'create' }), true);
});
