// Helpers for kipsec's apiserver-lane tests: install our CRDs (server-side apply, idempotent, so
// tests in any order and in parallel processes share them), clients, and cleanup.
import { readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ALL_KINDS, buildCrd } from '../../src/api/crd.js';
import { KubeClient, resourcePath, RESOURCES } from '../../src/api/kube/client.js';
import { isNotFound } from '../../src/api/kube/errors.js';
import { parse } from 'yaml';
import { eventually, loadKubeConfig } from '../lib/kube.js';

const CRD = { group: 'apiextensions.k8s.io', version: 'v1', plural: 'customresourcedefinitions' };
const here = dirname(fileURLToPath(import.meta.url));

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
  const dir = join(here, '..', '..', '..', 'shared', 'third-party', 'cert-manager-crds');
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
