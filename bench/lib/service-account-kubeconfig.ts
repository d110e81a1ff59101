// A kubeconfig holding a ServiceAccount's token (TokenRequest), for benches whose client should
// authenticate as a deployed pod does: the apiserver caches a bearer token's verification, while an
// admin client certificate costs it one chain verification per request (~0.3 ms of its CPU here).
import { writeFileSync } from 'node:fs';
import type { KubeClient } from '../../src/api/kube/client.js';
import { loadKubeConfig } from '../../e2e/lib/kube.js';

/** Writes `${dir}/${account}.kubeconfig` (mode 0600) for `ns`/`account`; returns its path. */
export async function serviceAccountKubeconfig(admin: KubeClient, ns: string, account: string, dir: string): Promise<string> {
  const cluster = loadKubeConfig().getCurrentCluster()!;
  const tr = await admin.create<{ status: { token: string } }>(`/api/v1/namespaces/${ns}/serviceaccounts/${account}/token`, { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: 3600 } });
  const ca = cluster.caFile ? `certificate-authority: ${JSON.stringify(cluster.caFile)}` : `certificate-authority-data: ${cluster.caData ?? ''}`;
  const path = `${dir}/${account}.kubeconfig`;
  writeFileSync(path, `apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: ${JSON.stringify(cluster.server)}, ${ca}}\nusers:\n- name: u\n  user: {token: ${JSON.stringify(tr.status.token)}}\ncontexts:\n- name: c\n  context: {cluster: c, user: u, namespace: ${ns}}\ncurrent-context: c\n`, { mode: 0o600 });
  return path;
}
