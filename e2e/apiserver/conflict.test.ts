// 409 Conflict against the real apiserver (Kubernetes API conventions, "Concurrency Control and
// Consistency": a write carrying a resourceVersion that is no longer current is refused with 409,
// and the writer re-reads and tries again). The test sits between the operator and the apiserver:
// when the operator is about to write, the test first changes the same object as the admin, so the
// operator's write carries a stale resourceVersion. The operator must meet the 409, retry on the
// new version, and end in the right state without undoing the test's change.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { KubeClient, RESOURCES, resourcePath } from '../../src/api/kube/client.js';
import { KubeApiError } from '../../src/api/kube/errors.js';
import { SIGNER_NAME } from '../../src/api/names.js';
import type { IPsecTunnel } from '../../src/api/types.js';
import { createCsr, generateKeyPair } from '../../src/pki/index.js';
import { Operator } from '../../src/operator/operator.js';
import { eventually, uniqueName } from '../lib/kube.js';
import { goodTunnelSpec } from '../../test/unit/api/cases.js';
import { adminClient, applyDeployFile, cleanupNamespace, createNode, deleteQuietly, ensureNamespace, installKipsecCrds, serviceAccountUser, startTestOperator } from './support.js';

let admin: KubeClient;
let ns: string;
let op: Operator;
const cleanups: (() => Promise<void>)[] = [];

/** One write the operator sent through the interposer: what, and how the apiserver answered. */
interface Sent { readonly verb: 'apply' | 'mergePatch'; readonly path: string; readonly body: unknown; readonly status: number }
const sent: Sent[] = [];
/** Runs before the operator's write of `path` is forwarded; the first matching hook is consumed. */
const hooks: { readonly match: (verb: Sent['verb'], path: string) => boolean; readonly run: () => Promise<void> }[] = [];

/**
 * The operator's client with its apply and merge-patch writes passing through the test first. A
 * Proxy, with every other member bound to the real client (its private fields need `this` to be it).
 */
function interposed(kube: KubeClient): KubeClient {
  const pass = async <T>(verb: Sent['verb'], path: string, body: unknown, send: () => Promise<T>): Promise<T> => {
    const i = hooks.findIndex((h) => h.match(verb, path));
    if (i >= 0) await hooks.splice(i, 1)[0]!.run();
    try {
      const r = await send();
      sent.push({ verb, path, body, status: 200 });
      return r;
    } catch (e) {
      sent.push({ verb, path, body, status: e instanceof KubeApiError ? e.status : 0 });
      throw e;
    }
  };
  return new Proxy(kube, {
    get(target, prop): unknown {
      if (prop === 'apply') return <T>(path: string, obj: unknown, fm: string, force?: boolean): Promise<T> => pass('apply', path, obj, () => target.apply<T>(path, obj, fm, force));
      if (prop === 'mergePatch') return <T>(path: string, patch: unknown, fm?: string): Promise<T> => pass('mergePatch', path, patch, () => target.mergePatch<T>(path, patch, fm));
      const v: unknown = Reflect.get(target, prop, target);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

async function reconcileResults(controller: string, result: string): Promise<number> {
  const m = await op.metrics.reconciles.get();
  return m.values.find((v) => v.labels['controller'] === controller && v.labels['result'] === result)?.value ?? 0;
}

before(async () => {
  admin = adminClient();
  ns = uniqueName('kipsec-cf');
  await installKipsecCrds(admin);
  await ensureNamespace(admin, ns);
  cleanups.push(await applyDeployFile(admin, 'rbac.yaml', ns));
  op = await startTestOperator(admin, ns, 'op-cf', interposed);
});

after(async () => {
  await op.stop();
  for (const c of cleanups.reverse()) await c();
  await cleanupNamespace(admin, ns, ns);
  admin.close();
});

test('Kubernetes API conventions, optimistic concurrency: a tunnel status apply computed before a concurrent spec change meets 409, is retried, and the status that lands describes the new generation', async () => {
  const name = uniqueName('cf-tun');
  const path = resourcePath(RESOURCES.ipsecTunnels, { name });
  let changedTo: number | undefined;
  hooks.push({
    match: (verb, p) => verb === 'apply' && p === `${path}/status`,
    // Between the operator's read (generation 1) and its status write: a user edits the spec.
    run: async () => {
      const t = await admin.mergePatch<IPsecTunnel>(path, { spec: { remote: { subnets: ['172.31.0.0/16', '172.30.0.0/16'] } } });
      changedTo = t.metadata.generation;
    },
  });
  await admin.create(resourcePath(RESOURCES.ipsecTunnels), { apiVersion: 'kipsec.io/v1alpha1', kind: 'IPsecTunnel', metadata: { name }, spec: goodTunnelSpec() });
  cleanups.push(async () => {
    await admin.mergePatch(path, { metadata: { finalizers: null } }).catch(() => undefined);
    await deleteQuietly(admin, path);
  });
  // The apiserver may show the status before the operator's client has its answer: wait for both.
  const landed = (): boolean => sent.some((s) => s.path === `${path}/status` && s.status === 200);
  const done = await eventually(async () => {
    const t = await admin.get<IPsecTunnel>(path);
    return changedTo !== undefined && t.status?.observedGeneration === changedTo && landed() ? t : undefined;
  }, 20_000);
  assert.equal(changedTo, 2, 'the spec change made generation 2');
  const writes = sent.filter((s) => s.verb === 'apply' && s.path === `${path}/status`);
  assert.equal(writes[0]?.status, 409, `the write based on generation 1 was refused: ${JSON.stringify(writes.map((w) => w.status))}`);
  assert.ok(writes.some((w) => w.status === 200), 'and retried until it landed');
  // No stale status ever landed: every accepted write was computed from generation 2.
  for (const w of writes.filter((x) => x.status === 200)) assert.equal((w.body as { status: { observedGeneration?: number } }).status.observedGeneration, 2);
  assert.deepEqual(done.spec.remote.subnets, ['172.31.0.0/16', '172.30.0.0/16'], 'the concurrent change is kept');
  assert.equal(done.status?.conditions?.find((c) => c.type === 'Ready')?.observedGeneration, 2);
  assert.ok(await reconcileResults('tunnel', 'conflict') >= 1, 'counted as a conflict, not as an error');
});

test('Kubernetes API conventions, optimistic concurrency: a CSR approval that meets 409 (the CSR changed under the operator) is retried; the node gets its certificate and the concurrent change is kept', async () => {
  const node = uniqueName('cf-node');
  await createNode(admin, node, '192.0.2.90');
  cleanups.push(() => deleteQuietly(admin, resourcePath(RESOURCES.nodes, { name: node })));
  const name = uniqueName('cf-csr');
  const path = resourcePath(RESOURCES.csrs, { name });
  hooks.push({
    match: (verb, p) => verb === 'mergePatch' && p === `${path}/approval`,
    run: async () => { await admin.mergePatch(path, { metadata: { annotations: { 'example.com/touched': 'by-test' } } }); },
  });
  const pem = await createCsr(await generateKeyPair(), node, ['192.0.2.90']);
  await admin.as(serviceAccountUser(ns, 'kipsec-agent', node)).create(resourcePath(RESOURCES.csrs), {
    apiVersion: 'certificates.k8s.io/v1', kind: 'CertificateSigningRequest', metadata: { name, labels: { 'kipsec.io/test': ns } },
    spec: { request: Buffer.from(pem).toString('base64'), signerName: SIGNER_NAME, usages: ['digital signature', 'server auth', 'client auth'] },
  });
  type CsrView = { metadata: { annotations?: Record<string, string> }; status?: { certificate?: string; conditions?: { type: string; reason: string }[] } };
  const signed = await eventually(async () => { const c = await admin.get<CsrView>(path); return c.status?.certificate ? c : undefined; }, 20_000);
  const approvals = sent.filter((s) => s.path === `${path}/approval`);
  assert.deepEqual(approvals.map((a) => a.status).slice(0, 2), [409, 200], 'refused once as stale, then approved on the new version');
  assert.deepEqual(signed.status?.conditions?.map((c) => `${c.type}/${c.reason}`), ['Approved/KipsecNodeIdentity'], 'approved exactly once');
  assert.equal(signed.metadata.annotations?.['example.com/touched'], 'by-test');
  assert.ok(await reconcileResults('csr', 'conflict') >= 1);
});
