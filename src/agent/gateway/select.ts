// Which nodes are an IPsecTunnel's gateways (DESIGN.md §3): spec.local.nodeSelector, or
// by default the nodes labelled kipsec.io/gateway=true; and the name of the Lease per tunnel
// through which those nodes agree on one active gateway (the others stand by).
import type { IPsecTunnel } from '../../api/types.js';

export const DEFAULT_GATEWAY_SELECTOR: Readonly<Record<string, string>> = { 'kipsec.io/gateway': 'true' };

/** The Lease per tunnel, in the agent's namespace; tunnel names are DNS labels, so this is one too (≤ 253). */
export function leaseNameOf(tunnel: string): string { return `kipsec-tunnel-${tunnel}`; }

/** Does the tunnel's nodeSelector (an empty one selects every node) select a node with these labels? */
export function selectsGateway(t: Pick<IPsecTunnel, 'spec'>, labels: Readonly<Record<string, string>> | undefined): boolean {
  const sel = t.spec.local.nodeSelector ?? DEFAULT_GATEWAY_SELECTOR;
  return Object.entries(sel).every(([k, v]) => labels?.[k] === v);
}
