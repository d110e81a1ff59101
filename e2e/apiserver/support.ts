// Helpers for kipsec's apiserver-lane tests: install our CRDs (server-side apply, idempotent, so
// tests in any order and in parallel processes share them), clients, and cleanup.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ALL_KINDS, buildCrd } from '../../src/api/crd.js';
import { KubeClient, resourcePath, RESOURCES, type Impersonation } from '../../src/api/kube/client.js';
import type { Logger } from '../../src/operator/logger.js';
import pino from 'pino';
import { isNotFound } from '../../src/api/kube/errors.js';
import { systemClock } from '../../src/common/time.js';
import { Operator } from '../../src/operator/operator.js';
import { parse, parseAllDocuments } from 'yaml';
import { eventually, loadKubeConfig } from '../lib/kube.js';
import { repoPath } from '../../test/lib/paths.js';

const CRD = { group: 'apiextensions.k8s.io', version: 'v1', plural: 'customresourcedefinitions' };

export function adminClient(): KubeClient { return new KubeClient(loadKubeConfig()); }

async function applyCrd(kube: KubeClient, crd: { metadata: { name: string } }): Promise<void> {
  await kube.apply(resourcePath(CRD, { name: crd.metadata.name }), crd, 'kipsec-e2e');
  await eventually(async () => {
    const c = await kube.get<{ status?: { conditions?: { type: string; status: string }[] } }>(resourcePath(CRD, { name: crd.metadata.name }));
    return c.status?.conditions?.some((x) => x.type === 'Established' && x.status === 'True') ? true : undefined;
  }, 30_000);
}

export async function installKipsecCrds(kube: KubeClient): Promise<void> {
  for (const k of ALL_KINDS) await applyCrd(kube, buildCrd(k));
}

export async function installCertManagerCrds(kube: KubeClient): Promise<void> {
  // The project's own copy (Apache-2.0, see its README), so CI needs nothing outside the repo.
  const dir = repoPath('test/third-party/cert-manager-crds');
  for (const f of ['cert-manager.io_certificaterequests.yaml', 'cert-manager.io_issuers.yaml', 'cert-manager.io_clusterissuers.yaml']) {
    await applyCrd(kube, parse(readFileSync(join(dir, f), 'utf8')) as { metadata: { name: string } });
  }
}

export async function ensureNamespace(kube: KubeClient, name: string): Promise<void> {
  await kube.apply(resourcePath(RESOURCES.namespaces, { name }), { apiVersion: 'v1', kind: 'Namespace', metadata: { name } }, 'kipsec-e2e');
}

export async function deleteQuietly(kube: KubeClient, path: string): Promise<void> {
  try { await kube.delete(path); } catch (e) { if (!isNotFound(e)) throw e; }
}

const PLURALS: Record<string, { group: string; version: string; plural: string; namespaced: boolean }> = {
  ServiceAccount: { group: '', version: 'v1', plural: 'serviceaccounts', namespaced: true },
  ClusterRole: { group: 'rbac.authorization.k8s.io', version: 'v1', plural: 'clusterroles', namespaced: false },
  ClusterRoleBinding: { group: 'rbac.authorization.k8s.io', version: 'v1', plural: 'clusterrolebindings', namespaced: false },
  Role: { group: 'rbac.authorization.k8s.io', version: 'v1', plural: 'roles', namespaced: true },
  RoleBinding: { group: 'rbac.authorization.k8s.io', version: 'v1', plural: 'rolebindings', namespaced: true },
  ValidatingAdmissionPolicy: { group: 'admissionregistration.k8s.io', version: 'v1', plural: 'validatingadmissionpolicies', namespaced: false },
  ValidatingAdmissionPolicyBinding: { group: 'admissionregistration.k8s.io', version: 'v1', plural: 'validatingadmissionpolicybindings', namespaced: false },
};

interface AnyObj { kind: string; metadata: { name: string; namespace?: string }; roleRef?: { kind: string; name: string }; spec?: { policyName?: string } }

/**
 * Apply a file from deploy/ for one test: "kipsec-system" becomes `ns`, and cluster-scoped names
 * get `-<ns>` so tests in parallel do not share them. Returns a cleanup function.
 */
export async function applyDeployFile(kube: KubeClient, file: string, ns: string): Promise<() => Promise<void>> {
  const text = readFileSync(repoPath('deploy', file), 'utf8').replaceAll('kipsec-system', ns);
  const objs = parseAllDocuments(text).map((d) => d.toJS() as AnyObj).filter((o) => o && PLURALS[o.kind]);
  const paths: string[] = [];
  for (const o of objs) {
    const r = PLURALS[o.kind]!;
    if (!r.namespaced) o.metadata.name = `${o.metadata.name}-${ns}`;
    if (o.roleRef?.kind === 'ClusterRole') o.roleRef.name = `${o.roleRef.name}-${ns}`;
    if (o.spec?.policyName) o.spec.policyName = `${o.spec.policyName}-${ns}`;
    const path = resourcePath(r, { name: o.metadata.name, ...(r.namespaced ? { namespace: ns } : {}) });
    await kube.apply(path, o, 'kipsec-e2e');
    paths.push(path);
  }
  return async () => { for (const p of paths.reverse()) await deleteQuietly(kube, p); };
}

export function serviceAccountUser(ns: string, name: string, nodeName?: string): Impersonation {
  return {
    user: `system:serviceaccount:${ns}:${name}`,
    groups: ['system:serviceaccounts', `system:serviceaccounts:${ns}`, 'system:authenticated'],
    ...(nodeName ? { extra: { 'authentication.kubernetes.io/node-name': [nodeName] } } : {}),
  };
}

export async function createNode(kube: KubeClient, name: string, ip: string): Promise<void> {
  await kube.create(resourcePath(RESOURCES.nodes), { apiVersion: 'v1', kind: 'Node', metadata: { name } });
  await kube.mergePatch(resourcePath(RESOURCES.nodes, { name, sub: 'status' }), { status: { addresses: [{ type: 'InternalIP', address: ip }] } });
}

/** A quiet pino-shaped logger for in-process operators (set KIPSEC_TEST_LOG=debug to see it). */
export function testLogger(): Logger {
  return pino({ level: process.env['KIPSEC_TEST_LOG'] ?? 'silent' }, pino.destination(2));
}

/** Delete what a test namespace's operator created (no namespace controller runs in this lane). */
export async function cleanupNamespace(kube: KubeClient, ns: string, testLabel: string): Promise<void> {
  const csrs = await kube.get<{ items: { metadata: { name: string } }[] }>(resourcePath(RESOURCES.csrs), { labelSelector: `kipsec.io/test=${testLabel}` });
  for (const c of csrs.items) await deleteQuietly(kube, resourcePath(RESOURCES.csrs, { name: c.metadata.name }));
  for (const [r, name] of [[RESOURCES.secrets, 'kipsec-ca'], [RESOURCES.configMaps, 'kipsec-trust-bundle'], [RESOURCES.leases, 'kipsec-operator']] as const) {
    await deleteQuietly(kube, resourcePath(r, { namespace: ns, name }));
  }
  await deleteQuietly(kube, resourcePath(RESOURCES.namespaces, { name: ns }));
}

/**
 * An operator for one test namespace, acting as the kipsec-operator service account (its RBAC
 * from deploy/rbac.yaml must be applied), watching only that test's CSRs and mesh, with short
 * lease timings; resolves once it leads and holds the CA. `wrap` interposes on its client.
 */
export async function startTestOperator(admin: KubeClient, ns: string, identity: string, wrap: (k: KubeClient) => KubeClient = (k) => k): Promise<Operator> {
  const op = new Operator({
    kube: wrap(admin.as(serviceAccountUser(ns, 'kipsec-operator'))), namespace: ns, identity, clock: systemClock, log: testLogger(),
    csrLabelSelector: `kipsec.io/test=${ns}`, meshName: `mesh-${ns}`, leaseDurationMs: 3000, renewDeadlineMs: 2000, retryPeriodMs: 300,
  });
  await op.start();
  await eventually(async () => (op.isLeader && op.ctx.ca.state ? true : undefined), 15_000);
  return op;
}
