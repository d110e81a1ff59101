// What the gateway-tunnel tests in the cluster lane share: PSK Secrets the agents may read by name
// only (deploy/rbac.yaml grants no Secret access; a Role per Secret name does, as
// docs/gateway-tunnels.md tells the admin), IPsecTunnel reads, and the operator's Events about a tunnel.
import { RESOURCES, resourcePath, type KubeClient } from '../../src/api/kube/client.js';
import type { IPsecTunnel, TunnelGatewayStatus } from '../../src/api/types.js';
import { deleteQuietly } from '../apiserver/support.js';
import type { Scope } from './netns.js';

/** One Secret per entry (key "psk") in `namespace`, and the Role and RoleBinding that let kipsec-agent GET exactly those. */
export async function pskSecrets(kube: KubeClient, namespace: string, psks: Readonly<Record<string, string>>): Promise<void> {
  for (const [name, psk] of Object.entries(psks)) {
    await kube.create(resourcePath(RESOURCES.secrets, { namespace }), { apiVersion: 'v1', kind: 'Secret', metadata: { name }, data: { psk: Buffer.from(psk).toString('base64') } });
  }
  const roles = { group: 'rbac.authorization.k8s.io', version: 'v1', plural: 'roles' } as const;
  const bindings = { group: 'rbac.authorization.k8s.io', version: 'v1', plural: 'rolebindings' } as const;
  await kube.create(resourcePath(roles, { namespace }), { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name: 'kipsec-agent-psk' }, rules: [{ apiGroups: [''], resources: ['secrets'], resourceNames: Object.keys(psks), verbs: ['get'] }] });
  await kube.create(resourcePath(bindings, { namespace }), { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: { name: 'kipsec-agent-psk' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'kipsec-agent-psk' }, subjects: [{ kind: 'ServiceAccount', name: 'kipsec-agent', namespace }] });
}

export const tunnelPath = (name: string): string => resourcePath(RESOURCES.ipsecTunnels, { name });
export const getTunnel = (kube: KubeClient, name: string): Promise<IPsecTunnel> => kube.get<IPsecTunnel>(tunnelPath(name));

/** Deletes the tunnels at the scope's end, finalizers cleared first (the operator may be gone by then). */
export function deleteTunnelsAfter(t: Scope, kube: KubeClient, names: readonly string[]): void {
  t.after(async () => {
    for (const name of names) {
      await kube.mergePatch(tunnelPath(name), { metadata: { finalizers: [] } }).catch(() => undefined);
      await deleteQuietly(kube, tunnelPath(name));
    }
  });
}

/** The operator's Events about an IPsecTunnel; those about cluster-scoped objects live in "default" (src/operator/events.ts). */
export async function tunnelEvents(kube: KubeClient, name: string): Promise<{ reason: string; note: string; type: string }[]> {
  const list = await kube.get<{ items: { reason: string; note: string; type: string; regarding: { kind: string; name: string } }[] }>(resourcePath(RESOURCES.events, { namespace: 'default' }));
  return list.items.filter((e) => e.regarding.kind === 'IPsecTunnel' && e.regarding.name === name);
}

/** The gateway that reports itself active with an established Child SA, if exactly one does. */
export function activeEstablished(gateways: readonly TunnelGatewayStatus[] | undefined): TunnelGatewayStatus | undefined {
  const active = (gateways ?? []).filter((g) => g.role === 'active');
  return active.length === 1 && active[0]!.childSaState === 'established' ? active[0] : undefined;
}
