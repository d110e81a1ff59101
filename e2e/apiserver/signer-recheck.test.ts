// The signer does not take an approval on trust (DESIGN.md §4; the security finding "the signer
// signs any approved kipsec.io/node-identity CSR"). Anyone with `approve` on the signer — a cluster
// admin running `kubectl certificate approve` — can approve a request the operator's policy would
// deny. Here the test's admin approves bad requests by hand before the operator sees them (the CSR
// gets the operator's test label only after the approval), and the signer must refuse each one:
// no certificate, a Failed condition saying why, and a Warning Event.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { KubeClient, RESOURCES, resourcePath } from '../../src/api/kube/client.js';
import { SIGNER_NAME } from '../../src/api/names.js';
import { createCsr, generateKeyPair } from '../../src/pki/index.js';
import { Operator } from '../../src/operator/operator.js';
import { eventually, uniqueName } from '../lib/kube.js';
import { adminClient, applyDeployFile, cleanupNamespace, createNode, deleteQuietly, ensureNamespace, installKipsecCrds, serviceAccountUser, startTestOperator } from './support.js';

let admin: KubeClient;
let ns: string;
let op: Operator;
let node: string;
const cleanups: (() => Promise<void>)[] = [];

interface CsrView {
  metadata: { name: string; resourceVersion?: string };
  spec: Record<string, unknown>;
  status?: { certificate?: string; conditions?: { type: string; status: string; reason: string; message: string }[] };
}
interface EventView { reason: string; note: string; type: string; action: string; regarding: { name: string } }

before(async () => {
  admin = adminClient();
  ns = uniqueName('kipsec-sr');
  await installKipsecCrds(admin);
  await ensureNamespace(admin, ns);
  cleanups.push(await applyDeployFile(admin, 'rbac.yaml', ns));
  node = uniqueName('sr-node');
  await createNode(admin, node, '192.0.2.80');
  cleanups.push(() => deleteQuietly(admin, resourcePath(RESOURCES.nodes, { name: node })));
  op = await startTestOperator(admin, ns, 'op-sr');
});

after(async () => {
  await op.stop();
  for (const c of cleanups.reverse()) await c();
  await cleanupNamespace(admin, ns, ns);
  admin.close();
});

/**
 * Create a CSR as `requester`, approve it as the admin the way `kubectl certificate approve` does
 * (PUT /approval with reason KubectlApprove), then hand it to the operator (its label selector).
 */
async function approvedByHand(requester: KubeClient, names: { dns: string; ips?: string[] }, usages = ['digital signature', 'server auth', 'client auth']): Promise<string> {
  const name = uniqueName('sr-csr');
  const pem = await createCsr(await generateKeyPair(), names.dns, names.ips ?? []);
  await requester.create(resourcePath(RESOURCES.csrs), { apiVersion: 'certificates.k8s.io/v1', kind: 'CertificateSigningRequest', metadata: { name }, spec: { request: Buffer.from(pem).toString('base64'), signerName: SIGNER_NAME, usages } });
  cleanups.push(() => deleteQuietly(admin, resourcePath(RESOURCES.csrs, { name })));
  const c = await admin.get<CsrView>(resourcePath(RESOURCES.csrs, { name }));
  await admin.update(resourcePath(RESOURCES.csrs, { name, sub: 'approval' }), { ...c, status: { conditions: [{ type: 'Approved', status: 'True', reason: 'KubectlApprove', message: 'This CSR was approved by kubectl certificate approve.' }] } });
  await admin.mergePatch(resourcePath(RESOURCES.csrs, { name }), { metadata: { labels: { 'kipsec.io/test': ns } } });
  return name;
}

async function refused(name: string, reason: string, why: RegExp): Promise<void> {
  const path = resourcePath(RESOURCES.csrs, { name });
  const failed = await eventually(async () => { const c = await admin.get<CsrView>(path); return c.status?.certificate || c.status?.conditions?.some((x) => x.type === 'Failed') ? c : undefined; }, 20_000);
  assert.equal(failed.status?.certificate, undefined, 'the signer issued a certificate for a request its policy denies');
  const f = failed.status!.conditions!.find((x) => x.type === 'Failed')!;
  assert.equal(f.reason, reason);
  assert.match(f.message, /^approved \(KubectlApprove\), but the signer does not issue it: /);
  assert.match(f.message, why);
  assert.equal(failed.status?.certificate, undefined, 'no certificate');
  const ev = await eventually(async () => {
    const l = await admin.get<{ items: EventView[] }>(resourcePath(RESOURCES.events, { namespace: 'default' }));
    return l.items.find((e) => e.regarding.name === name && e.reason === reason);
  }, 10_000);
  assert.deepEqual([ev.type, ev.action], ['Warning', 'Sign']);
  assert.equal(ev.note, f.message);
  // And it stays unsigned (a Failed CSR is final for the signer).
  await new Promise((r) => setTimeout(r, 1000));
  assert.equal((await admin.get<CsrView>(path)).status?.certificate, undefined);
}

test('signer re-checks the requester: a CSR for a real node, requested by someone other than the agent service account and approved by hand, is not signed (UnauthorizedRequester)', async () => {
  const name = await approvedByHand(admin, { dns: node, ips: ['192.0.2.80'] });
  await refused(name, 'UnauthorizedRequester', new RegExp(`requested by kipsec-admin, only system:serviceaccount:${ns}:kipsec-agent may request node identities`));
});

test('signer re-checks the Node: a CSR from the agent service account naming a Node that does not exist, approved by hand, is not signed (NodeNotFound)', async () => {
  const ghost = uniqueName('sr-ghost');
  const name = await approvedByHand(admin.as(serviceAccountUser(ns, 'kipsec-agent')), { dns: ghost });
  await refused(name, 'NodeNotFound', new RegExp(`node ${ghost} does not exist`));
});

test('signer re-checks the requester\'s node: an agent pod on another node asking for this node\'s identity, approved by hand, is not signed (NodeMismatch)', async () => {
  const name = await approvedByHand(admin.as(serviceAccountUser(ns, 'kipsec-agent', 'some-other-node')), { dns: node });
  await refused(name, 'NodeMismatch', new RegExp(`the requesting pod runs on node some-other-node but asks for ${node}`));
});

test('signer re-checks usages: a CSR asking for code signing, approved by hand, is not signed (UnsupportedUsages)', async () => {
  const name = await approvedByHand(admin.as(serviceAccountUser(ns, 'kipsec-agent', node)), { dns: node }, ['digital signature', 'code signing']);
  await refused(name, 'UnsupportedUsages', /usages code signing are not allowed/);
});
