// Node identity end to end against the real apiserver (DESIGN.md §4). The operator runs in-process
// as its own service account (deploy/rbac.yaml, via impersonation); agents submit CSRs as
// kipsec-agent with pod-bound node info, using the agent-side IdentityClient.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { systemClock } from '../../src/common/time.js';
import { KubeClient, RESOURCES, resourcePath } from '../../src/api/kube/client.js';
import { IdentityClient, IdentityDeniedError } from '../../src/api/identity-client.js';
import { ANNOTATIONS, SIGNER_NAME } from '../../src/api/names.js';
import { identityCrypto } from '../../src/pki/identity-crypto.js';
import { certFingerprint, createCsr, generateKeyPair, parseBundle, parseCertificate, verifyCertificate, certificateSans } from '../../src/pki/index.js';
import type { IPsecMesh } from '../../src/api/types.js';
import { Operator } from '../../src/operator/operator.js';
import { eventually, uniqueName } from '../lib/kube.js';
import { adminClient, applyDeployFile, cleanupNamespace, createNode, deleteQuietly, ensureNamespace, installKipsecCrds, serviceAccountUser, testLogger } from './support.js';
import { scratchDir } from '../../test/lib/tmp.js';

let admin: KubeClient;
let ns: string;
let op: Operator;
const cleanups: (() => Promise<void>)[] = [];
const silent = { info: () => undefined, warn: () => undefined };

function startOperator(identity: string): Operator {
  const o = new Operator({
    kube: admin.as(serviceAccountUser(ns, 'kipsec-operator')), namespace: ns, identity, clock: systemClock, log: testLogger(),
    csrLabelSelector: `kipsec.io/test=${ns}`, meshName: `mesh-${ns}`, leaseDurationMs: 3000, renewDeadlineMs: 2000, retryPeriodMs: 500, healthPort: 0, healthHost: '127.0.0.1',
  });
  return o;
}

/** An agent's IdentityClient; `asNode` is the node its pod-bound token names (null: a token not bound to a pod). */
function agent(node: string, ip: string, asNode: string | null = node): IdentityClient<Awaited<ReturnType<typeof identityCrypto.generateKey>>> {
  return new IdentityClient({
    kube: admin.as(serviceAccountUser(ns, 'kipsec-agent', asNode ?? undefined)), crypto: identityCrypto, nodeName: node, nodeIps: [ip],
    dir: scratchDir('kipsec-id-'), clock: systemClock, log: silent, namespace: ns, labels: { 'kipsec.io/test': ns }, issueTimeoutMs: 20_000,
  });
}

async function bundle(): Promise<string> {
  const cm = await admin.get<{ data?: Record<string, string> }>(resourcePath(RESOURCES.configMaps, { namespace: ns, name: 'kipsec-trust-bundle' }));
  return cm.data?.['ca.crt'] ?? '';
}

before(async () => {
  admin = adminClient();
  ns = uniqueName('kipsec-id');
  await installKipsecCrds(admin);
  await ensureNamespace(admin, ns);
  cleanups.push(await applyDeployFile(admin, 'rbac.yaml', ns));
  op = startOperator('op-1');
  await op.start();
  await eventually(async () => (op.isLeader ? true : undefined), 15_000);
  await eventually(async () => ((await bundle().catch(() => '')) ? true : undefined), 15_000);
});

after(async () => {
  await op.stop();
  for (const c of cleanups.reverse()) await c();
  await cleanupNamespace(admin, ns, ns);
  admin.close();
});

async function node(ip: string): Promise<string> {
  const name = uniqueName('node');
  await createNode(admin, name, ip);
  cleanups.push(() => deleteQuietly(admin, resourcePath(RESOURCES.nodes, { name })));
  return name;
}

test('the agent of node X gets a certificate for X: approved, signed with SAN X, verifying against the trust bundle; key file is 0600', async () => {
  const x = await node('192.0.2.10');
  const a = agent(x, '192.0.2.10');
  const cert = await a.start();
  a.stop();
  const c = parseCertificate(cert.pem);
  assert.deepEqual(certificateSans(c), { dns: [x], ip: ['192.0.2.10'] });
  assert.ok(Math.abs(cert.notAfterMs - cert.notBeforeMs - (24 * 3600_000 + 5 * 60_000)) < 2000, 'default lifetime 24 h (+5 min backdating)');
  await verifyCertificate(c, parseBundle(await bundle()), Date.now());
  const { statSync } = await import('node:fs');
  assert.equal(statSync(a.keyPath).mode & 0o777, 0o600);
  const csrs = await admin.get<{ items: { spec: { username: string }; status: { conditions: { type: string; reason: string }[] } }[] }>(resourcePath(RESOURCES.csrs), { labelSelector: `kipsec.io/node=${x}` });
  assert.equal(csrs.items[0]?.spec.username, `system:serviceaccount:${ns}:kipsec-agent`);
  assert.equal(csrs.items[0]?.status.conditions[0]?.reason, 'KipsecNodeIdentity');
});

test('a CSR naming a non-existent node is denied with reason NodeNotFound', async () => {
  const ghost = uniqueName('ghost');
  const a = agent(ghost, '192.0.2.11');
  await assert.rejects(a.start(), (e: unknown) => e instanceof IdentityDeniedError && e.reason === 'NodeNotFound' && e.message.includes(ghost));
  a.stop();
});

test('a CSR from another account (the admin, not kipsec-agent) is denied with reason UnauthorizedRequester', async () => {
  const x = await node('192.0.2.12');
  const pem = await createCsr(await generateKeyPair(), x);
  const name = uniqueName('csr-admin');
  await admin.create(resourcePath(RESOURCES.csrs), { apiVersion: 'certificates.k8s.io/v1', kind: 'CertificateSigningRequest', metadata: { name, labels: { 'kipsec.io/test': ns } }, spec: { request: Buffer.from(pem).toString('base64'), signerName: SIGNER_NAME, usages: ['digital signature'] } });
  const c = await eventually(async () => {
    const o = await admin.get<{ status?: { conditions?: { type: string; reason: string; message: string }[] } }>(resourcePath(RESOURCES.csrs, { name }));
    return o.status?.conditions?.find((x) => x.type === 'Denied');
  });
  assert.equal(c.reason, 'UnauthorizedRequester');
  assert.match(c.message, /kipsec-admin/);
});

test("an agent on node Y asking for node X's identity is denied with reason NodeMismatch", async () => {
  const x = await node('192.0.2.13');
  const a = agent(x, '192.0.2.13', 'some-other-node');
  await assert.rejects(a.start(), (e: unknown) => e instanceof IdentityDeniedError && e.reason === 'NodeMismatch');
  a.stop();
});

type CsrList = { items: { metadata: { name: string }; spec: { extra?: Record<string, string[]> }; status?: { conditions?: { type: string; reason: string; message: string }[] } }[] };

test('a second key for a node with a live identity, from a token not bound to a pod, is denied (IdentityInUse) saying what the admin can do; renewal with the same key is signed', async () => {
  const x = await node('192.0.2.14');
  const a = agent(x, '192.0.2.14');
  const first = await a.start();
  const second = await a.renew();
  a.stop();
  assert.equal(second.publicKeyFingerprint, first.publicKeyFingerprint);
  assert.notEqual(second.fingerprint, first.fingerprint);
  const b = agent(x, '192.0.2.14', null);
  await assert.rejects(b.start(), (e: unknown) => e instanceof IdentityDeniedError && e.reason === 'IdentityInUse' && /not come from a pod bound to node/.test(e.message) && /kubectl delete csr /.test(e.message));
  b.stop();
});

// Node reboot with a wiped state directory: the agent comes back with a new key. The apiserver puts
// the pod's node into the CSR (spec.extra, here from impersonated user info as a pod-bound token
// gives it), so the operator lets the new key replace the live one at once.
test('a node back with a new key (wiped state dir), asking from a pod bound to it, gets a certificate for the new key at once; the approval names what it supersedes', async () => {
  const x = await node('192.0.2.17');
  const a = agent(x, '192.0.2.17');
  const before1 = await a.start();
  a.stop();
  const rebooted = agent(x, '192.0.2.17'); // a fresh state directory: a new key
  const after1 = await rebooted.start();
  rebooted.stop();
  assert.notEqual(after1.publicKeyFingerprint, before1.publicKeyFingerprint);
  assert.ok(before1.notAfterMs > Date.now(), 'the old certificate is still live');
  await verifyCertificate(parseCertificate(after1.pem), parseBundle(await bundle()), Date.now());
  const csrs = await admin.get<CsrList>(resourcePath(RESOURCES.csrs), { labelSelector: `kipsec.io/node=${x}` });
  const superseding = csrs.items.filter((c) => c.status?.conditions?.some((k) => k.type === 'Approved' && /supersedes/.test(k.message)));
  assert.equal(superseding.length, 1, JSON.stringify(csrs.items.map((c) => c.status?.conditions)));
  assert.deepEqual(superseding[0]!.spec.extra?.['authentication.kubernetes.io/node-name'], [x], 'the apiserver recorded the pod-bound node in the CSR');
  assert.match(superseding[0]!.status!.conditions!.find((k) => k.type === 'Approved')!.message, /in a pod on that node; its new key supersedes the live identity with another key \(CSR /);
});

/** The trust bundle ConfigMap as agents see it: the CAs (SHA-256 of each) and the annotations. */
async function bundleState(): Promise<{ cas: string[]; signing: string | undefined; phase: string | undefined }> {
  const cm = await admin.get<{ metadata: { annotations?: Record<string, string> }; data?: Record<string, string> }>(resourcePath(RESOURCES.configMaps, { namespace: ns, name: 'kipsec-trust-bundle' }));
  const cas = await Promise.all(parseBundle(cm.data?.['ca.crt'] ?? '').map((c) => certFingerprint(c)));
  return { cas, signing: cm.metadata.annotations?.[ANNOTATIONS.signingCa], phase: cm.metadata.annotations?.[ANNOTATIONS.caRotationPhase] };
}

test('CA rotation goes in phases: the next CA is trusted before it signs, signs only once every node trusts it, and leaves the old one in the bundle until every node presents a new-CA certificate (DESIGN.md §4)', async () => {
  const x = await node('192.0.2.15');
  const a = agent(x, '192.0.2.15');
  const before1 = await a.start();
  const old = await bundleState();
  assert.equal(old.cas.length, 1);
  assert.deepEqual([old.signing, old.phase], [old.cas[0], undefined]);
  const oldFp = old.cas[0]!;
  // The node as its agent publishes it: what its engine trusts and which CA issued its certificate.
  const ipnPath = resourcePath(RESOURCES.ipsecNodes, { name: x });
  await admin.create(resourcePath(RESOURCES.ipsecNodes), { apiVersion: 'kipsec.io/v1alpha1', kind: 'IPsecNode', metadata: { name: x }, spec: { endpoint: { address: '192.0.2.15' }, identity: { certFingerprint: before1.fingerprint, trustedCAs: [oldFp], issuerFingerprint: oldFp } } });
  cleanups.push(() => deleteQuietly(admin, ipnPath));
  const mesh = `mesh-${ns}`;
  await admin.create(resourcePath(RESOURCES.ipsecMeshes), { apiVersion: 'kipsec.io/v1alpha1', kind: 'IPsecMesh', metadata: { name: mesh }, spec: {} });
  cleanups.push(() => deleteQuietly(admin, resourcePath(RESOURCES.ipsecMeshes, { name: mesh })));
  const meshStatus = async (): Promise<IPsecMesh['status']> => (await admin.get<IPsecMesh>(resourcePath(RESOURCES.ipsecMeshes, { name: mesh }))).status;

  await admin.mergePatch(resourcePath(RESOURCES.secrets, { namespace: ns, name: 'kipsec-ca' }), { metadata: { annotations: { [ANNOTATIONS.caRotateRequested]: 'true' } } });
  const trusting = await eventually(async () => { const b = await bundleState(); return b.phase === 'Trusting' ? b : undefined; }, 15_000);
  assert.equal(trusting.cas.length, 2);
  assert.equal(trusting.signing, oldFp, 'the old CA still signs while a node does not trust the next one');
  const newFp = trusting.cas.find((c) => c !== oldFp)!;
  const st1 = await eventually(async () => { const s = await meshStatus(); return s?.caRotation?.phase === 'Trusting' ? s : undefined; }, 15_000);
  assert.deepEqual([st1!.caRotation!.nodesDone, st1!.caRotation!.waitingFor?.includes(x), st1!.caRotation!.newCaFingerprint], [0, true, newFp]);
  // A renewal now still gets an old-CA certificate: a peer that has not loaded the new CA could not verify a new one.
  const during = await a.renew();
  assert.equal(await certFingerprint(await verifyCertificate(parseCertificate(during.pem), parseBundle(await bundle()), Date.now())), oldFp);
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal((await bundleState()).phase, 'Trusting', 'the phase waits for the node');

  await admin.mergePatch(ipnPath, { spec: { identity: { trustedCAs: [oldFp, newFp] } } });
  const reissuing = await eventually(async () => { const b = await bundleState(); return b.phase === 'Reissuing' ? b : undefined; }, 15_000);
  assert.equal(reissuing.signing, newFp);
  assert.deepEqual([...reissuing.cas].sort(), [oldFp, newFp].sort(), 'both CAs stay trusted');
  const after1 = await a.renew();
  a.stop();
  assert.equal(await certFingerprint(await verifyCertificate(parseCertificate(after1.pem), parseBundle(await bundle()), Date.now())), newFp, 'renewed certificate is signed by the new CA');
  const st2 = await eventually(async () => { const s = await meshStatus(); return s?.caRotation?.phase === 'Reissuing' ? s : undefined; }, 15_000);
  assert.match(st2!.caRotation!.message ?? '', new RegExp(`0/1 nodes present a certificate from the new CA; waiting for ${x} \\(${x} still presents a certificate from the old CA\\)`));
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal((await bundleState()).cas.length, 2, 'the old CA stays while the node presents an old-CA certificate');

  await admin.mergePatch(ipnPath, { spec: { identity: { certFingerprint: after1.fingerprint, issuerFingerprint: newFp } } });
  const done = await eventually(async () => { const b = await bundleState(); return b.phase === undefined && b.cas.length === 1 ? b : undefined; }, 15_000);
  assert.deepEqual([done.cas[0], done.signing], [newFp, newFp]);
  const s = await admin.get<{ data: Record<string, string>; metadata: { annotations?: Record<string, string> } }>(resourcePath(RESOURCES.secrets, { namespace: ns, name: 'kipsec-ca' }));
  assert.deepEqual([s.data['previous.crt'], s.data['next.crt'], s.data['next.key'], s.metadata.annotations?.[ANNOTATIONS.caRotateRequested]], [undefined, undefined, undefined, undefined], 'rotation state and request cleared');
  const st3 = await eventually(async () => { const m = await meshStatus(); return m?.caRotation === undefined && m?.caFingerprint === newFp ? m : undefined; }, 15_000);
  assert.equal(st3!.rotationInProgress, false);
  // Events of a cluster-scoped object live in "default".
  const want = ['CARotationStarted', 'CARotationReissuing', 'CARotationFinished'];
  const reasons = async (): Promise<string[]> => (await admin.get<{ items: Array<{ reason?: string; regarding?: { name?: string } }> }>(resourcePath(RESOURCES.events, { namespace: 'default' })))
    .items.filter((e) => e.regarding?.name === mesh).map((e) => e.reason ?? '');
  await eventually(async () => { const r = await reasons(); return want.every((w) => r.includes(w)) ? true : undefined; }, 15_000).catch(async () => assert.fail(`Events on the mesh: ${(await reasons()).join(', ')}`));
});

test('restarting the operator reconverges without a second CA, and signs what arrived while it was down', async () => {
  const before1 = (await admin.get<{ data: Record<string, string> }>(resourcePath(RESOURCES.secrets, { namespace: ns, name: 'kipsec-ca' }))).data['tls.crt'];
  await op.stop();
  const x = await node('192.0.2.16');
  const a = agent(x, '192.0.2.16');
  const pending = a.start();
  op = startOperator('op-2');
  await op.start();
  const cert = await pending;
  a.stop();
  assert.equal(op.ctx.ca.created, 0, 'the restarted operator created no CA');
  const after1 = (await admin.get<{ data: Record<string, string> }>(resourcePath(RESOURCES.secrets, { namespace: ns, name: 'kipsec-ca' }))).data['tls.crt'];
  assert.equal(after1, before1);
  await verifyCertificate(parseCertificate(cert.pem), parseBundle(await bundle()), Date.now());
  const secrets = await admin.get<{ items: unknown[] }>(resourcePath(RESOURCES.secrets, { namespace: ns }));
  assert.equal(secrets.items.length, 1, 'exactly one Secret (the CA) in the operator namespace');
});

test('health endpoints and metrics are served', async () => {
  const base = `http://127.0.0.1:${op.healthPort!}`;
  assert.equal((await fetch(`${base}/healthz`)).status, 200);
  assert.equal((await fetch(`${base}/readyz`)).status, 200);
  const m = await (await fetch(`${base}/metrics`)).text();
  assert.match(m, /kipsec_operator_leader 1/);
  assert.match(m, /kipsec_operator_csr_decisions_total/);
});
