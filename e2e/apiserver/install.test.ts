// The install artifacts against the real apiserver: every object `helm template charts/kipsec`
// renders (and every object in deploy/) passes the apiserver's validation (server-side dry run).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { resourcePath, type KubeClient } from '../../src/api/kube/client.js';
import { uniqueName } from '../lib/kube.js';
import { adminClient, deleteQuietly, ensureNamespace, installKipsecCrds } from './support.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const helm = join(process.env['KIPSEC_CACHE'] ?? join(homedir(), '.cache', 'kipsec'), 'bin', 'v1.36.3', 'helm');

const KINDS: Record<string, { group: string; version: string; plural: string; namespaced: boolean }> = {
  Namespace: { group: '', version: 'v1', plural: 'namespaces', namespaced: false },
  ServiceAccount: { group: '', version: 'v1', plural: 'serviceaccounts', namespaced: true },
  Service: { group: '', version: 'v1', plural: 'services', namespaced: true },
  ClusterRole: { group: 'rbac.authorization.k8s.io', version: 'v1', plural: 'clusterroles', namespaced: false },
  ClusterRoleBinding: { group: 'rbac.authorization.k8s.io', version: 'v1', plural: 'clusterrolebindings', namespaced: false },
  Role: { group: 'rbac.authorization.k8s.io', version: 'v1', plural: 'roles', namespaced: true },
  RoleBinding: { group: 'rbac.authorization.k8s.io', version: 'v1', plural: 'rolebindings', namespaced: true },
  Deployment: { group: 'apps', version: 'v1', plural: 'deployments', namespaced: true },
  DaemonSet: { group: 'apps', version: 'v1', plural: 'daemonsets', namespaced: true },
  ValidatingAdmissionPolicy: { group: 'admissionregistration.k8s.io', version: 'v1', plural: 'validatingadmissionpolicies', namespaced: false },
  ValidatingAdmissionPolicyBinding: { group: 'admissionregistration.k8s.io', version: 'v1', plural: 'validatingadmissionpolicybindings', namespaced: false },
};

let kube: KubeClient; let ns: string;
before(async () => { kube = adminClient(); ns = uniqueName('kipsec-inst'); await installKipsecCrds(kube); await ensureNamespace(kube, ns); });
after(async () => { await deleteQuietly(kube, resourcePath(KINDS['Namespace']!, { name: ns })); kube.close(); });

async function dryRunAll(text: string, namespace: string): Promise<string[]> {
  const kinds: string[] = [];
  for (const d of parseAllDocuments(text)) {
    const o = d.toJS() as { kind?: string; metadata?: { name: string; namespace?: string } } | null;
    if (!o?.kind || o.kind === 'Namespace') continue;
    const r = KINDS[o.kind];
    assert.ok(r, `unexpected kind ${o.kind}`);
    if (r.namespaced) o.metadata!.namespace = namespace;
    await kube.create(resourcePath(r, r.namespaced ? { namespace } : {}), o, { dryRun: 'All' });
    kinds.push(o.kind);
  }
  return kinds;
}

test('helm template charts/kipsec renders objects the apiserver accepts (server-side dry run)', async () => {
  const out = execFileSync(helm, ['template', 'kipsec', join(root, 'charts', 'kipsec'), '--namespace', ns, '--kube-version', '1.36.3'], { encoding: 'utf8' });
  const kinds = await dryRunAll(out, ns);
  for (const k of ['Deployment', 'DaemonSet', 'ClusterRole', 'ValidatingAdmissionPolicy']) assert.ok(kinds.includes(k), k);
});

test('deploy/*.yaml objects pass the apiserver validation (server-side dry run)', async () => {
  for (const f of ['rbac.yaml', 'operator.yaml', 'agent.yaml', 'admission-policy.yaml']) {
    await dryRunAll(readFileSync(join(root, 'deploy', f), 'utf8').replaceAll('kipsec-system', ns), ns);
  }
});
