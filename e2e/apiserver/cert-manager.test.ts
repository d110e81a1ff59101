// cert-manager mode against the real apiserver with cert-manager's CRDs. cert-manager's controller
// is NOT running here (it is not built in this lane): the test plays its part openly — it approves
// or denies the CertificateRequest and writes the issued certificate, as cert-manager's CA issuer
// would. What is real: the CRDs' validation, the operator's relay, RBAC, the agent's client.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { systemClock } from '../../src/common/time.js';
import { KubeClient, RESOURCES, resourcePath } from '../../src/api/kube/client.js';
import { IdentityClient, IdentityDeniedError } from '../../src/api/identity-client.js';
import { identityCrypto } from '../../src/pki/identity-crypto.js';
import { createCa, generateKeyPair, parseCertificate, parseCsr, signNodeCertificate, verifyCertificate, certificateSans } from '../../src/pki/index.js';
import { Operator } from '../../src/operator/operator.js';
import type { CertificateRequest } from '../../src/operator/kinds.js';
import { eventually, uniqueName } from '../lib/kube.js';
import { adminClient, applyDeployFile, cleanupNamespace, createNode, deleteQuietly, ensureNamespace, installCertManagerCrds, installKipsecCrds, serviceAccountUser, testLogger } from './support.js';
import { scratchDir } from '../../test/lib/tmp.js';

let admin: KubeClient;
let ns: string;
let op: Operator;
const cleanups: (() => Promise<void>)[] = [];
const meshName = (): string => `mesh-${ns}`;

before(async () => {
  admin = adminClient();
  ns = uniqueName('kipsec-cm');
  await installKipsecCrds(admin);
  await installCertManagerCrds(admin);
  await ensureNamespace(admin, ns);
  cleanups.push(await applyDeployFile(admin, 'rbac.yaml', ns));
  await admin.create(resourcePath(RESOURCES.ipsecMeshes), { apiVersion: 'kipsec.io/v1alpha1', kind: 'IPsecMesh', metadata: { name: meshName() }, spec: { identity: { source: 'cert-manager', issuerRef: { name: 'kipsec-issuer', kind: 'Issuer' }, issuerNamespace: ns, certificateLifetime: '12h' } } });
  cleanups.push(() => deleteQuietly(admin, resourcePath(RESOURCES.ipsecMeshes, { name: meshName() })));
  op = new Operator({ kube: admin.as(serviceAccountUser(ns, 'kipsec-operator')), namespace: ns, identity: 'op-cm', clock: systemClock, log: testLogger(), csrLabelSelector: `kipsec.io/test=${ns}`, meshName: meshName(), certManager: true, leaseDurationMs: 3000, renewDeadlineMs: 2000, retryPeriodMs: 300 });
  await op.start();
  await eventually(async () => (op.isLeader ? true : undefined), 10_000);
});

after(async () => {
  await op.stop();
  const crs = await admin.get<{ items: CertificateRequest[] }>(resourcePath(RESOURCES.certificateRequests, { namespace: ns }));
  for (const c of crs.items) await deleteQuietly(admin, resourcePath(RESOURCES.certificateRequests, { namespace: ns, name: c.metadata.name }));
  for (const c of cleanups.reverse()) await c();
  await cleanupNamespace(admin, ns, ns);
  admin.close();
});

function agent(node: string): IdentityClient<Awaited<ReturnType<typeof identityCrypto.generateKey>>> {
  return new IdentityClient({ kube: admin.as(serviceAccountUser(ns, 'kipsec-agent', node)), crypto: identityCrypto, nodeName: node, dir: scratchDir('kipsec-cm-'), clock: systemClock, log: { info: () => undefined, warn: () => undefined }, namespace: ns, labels: { 'kipsec.io/test': ns }, issueTimeoutMs: 20_000 });
}

async function waitForCertificateRequest(node: string): Promise<CertificateRequest> {
  return eventually(async () => {
    const l = await admin.get<{ items: CertificateRequest[] }>(resourcePath(RESOURCES.certificateRequests, { namespace: ns }), { labelSelector: `kipsec.io/node=${node}` });
    return l.items[0];
  }, 20_000);
}

test('cert-manager mode (cert-manager\'s controller played by the test): the CertificateRequest carries the issuerRef and the CSR; the agent receives the issued certificate', async () => {
  const node = uniqueName('cm-node');
  await createNode(admin, node, '192.0.2.50');
  cleanups.push(() => deleteQuietly(admin, resourcePath(RESOURCES.nodes, { name: node })));
  const a = agent(node);
  const got = a.start();
  const cr = await waitForCertificateRequest(node);
  assert.deepEqual(cr.spec.issuerRef, { name: 'kipsec-issuer', kind: 'Issuer', group: 'cert-manager.io' });
  assert.equal(cr.spec.duration, '43200s', 'the mesh certificateLifetime (12h)');
  const csr = await parseCsr(Buffer.from(cr.spec.request, 'base64').toString('utf8'));
  assert.deepEqual(csr.dnsNames, [node]);
  // --- cert-manager's part, played by the test: approve, sign with the Issuer's CA, mark Ready.
  const ca = await createCa(await generateKeyPair(), 'cert-manager test issuer CA', Date.now());
  const cert = await signNodeCertificate(ca, csr, { nowMs: Date.now(), lifetimeMs: 12 * 3_600_000, dnsNames: csr.dnsNames });
  const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  await admin.mergePatch(resourcePath(RESOURCES.certificateRequests, { namespace: ns, name: cr.metadata.name, sub: 'status' }), { status: {
    conditions: [{ type: 'Approved', status: 'True', reason: 'cert-manager.io', message: 'approved by the test', lastTransitionTime: now }, { type: 'Ready', status: 'True', reason: 'Issued', message: 'issued by the test', lastTransitionTime: now }],
    certificate: Buffer.from(cert.toString('pem')).toString('base64'), ca: Buffer.from(ca.cert.toString('pem')).toString('base64'),
  } });
  // --- end of cert-manager's part.
  const issued = await got;
  a.stop();
  const c = parseCertificate(issued.pem);
  assert.deepEqual(certificateSans(c).dns, [node]);
  await verifyCertificate(c, [ca.cert], Date.now());
  assert.equal(issued.publicKeyFingerprint, csr.publicKeyFingerprint, 'the certificate is for the key that stayed on the node');
});

test('cert-manager mode (cert-manager\'s controller played by the test): a denied CertificateRequest fails the agent\'s request with the reason', async () => {
  const node = uniqueName('cm-node');
  await createNode(admin, node, '192.0.2.51');
  cleanups.push(() => deleteQuietly(admin, resourcePath(RESOURCES.nodes, { name: node })));
  const a = agent(node);
  const got = a.start();
  const cr = await waitForCertificateRequest(node);
  const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  await admin.mergePatch(resourcePath(RESOURCES.certificateRequests, { namespace: ns, name: cr.metadata.name, sub: 'status' }), { status: {
    conditions: [{ type: 'Denied', status: 'True', reason: 'policy', message: 'no approver-policy allows this', lastTransitionTime: now }, { type: 'Ready', status: 'False', reason: 'Denied', message: 'denied', lastTransitionTime: now }],
    failureTime: now,
  } });
  await assert.rejects(got, (e: unknown) => e instanceof IdentityDeniedError && e.reason === 'CertManagerDenied' && /approver-policy/.test(e.message));
  a.stop();
});

test('cert-manager mode: a request for a node that does not exist is denied by kipsec before reaching cert-manager', async () => {
  const ghost = uniqueName('cm-ghost');
  const a = agent(ghost);
  await assert.rejects(a.start(), (e: unknown) => e instanceof IdentityDeniedError && e.reason === 'NodeNotFound');
  a.stop();
  const l = await admin.get<{ items: unknown[] }>(resourcePath(RESOURCES.certificateRequests, { namespace: ns }), { labelSelector: `kipsec.io/node=${ghost}` });
  assert.equal(l.items.length, 0);
});
