// Which of a renegotiated peer's XFRM policies its new config no longer carries, so they go at once
// instead of with the old Child SAs. A gateway failover renegotiates mesh pairs (the tunnel's
// remote subnets move between their selectors, mesh/peers.ts), and the old IKE SA's Delete may
// never be answered (the old gateway's agent or node is dead): its Child SAs, and their policies,
// then stay for the whole retransmission schedule (~165 s). All IPsec policies share one priority
// and XFRM picks the older of two equal-priority matches, so the stale ones win over those that
// must carry the traffic now: on the new gateway, its pods ↔ the remote subnets through the old
// gateway beat its own tunnel's cluster ↔ remote subnets. The selectors the new config still has
// stay until the Child SAs go (pod ↔ pod traffic keeps its ESP while the pair is negotiated again).
import { bytesToIp } from '../../ike/sa/addr.js';
import { parseTs, prefixLengthOf } from '../../ike/sa/ts.js';
import type { PeerConfig } from '../../ike/engine.js';
import { cidrContains } from './routing.js';

/** Per child name: the new config's local and remote selectors as CIDRs (protocol and ports aside). */
export type CarriedSelectors = ReadonlyMap<string, { readonly local: readonly string[]; readonly remote: readonly string[] }>;

/** A policy as the kernel holds it: direction and its selector's CIDRs. */
export interface PolicySelector {
  readonly dir: 'in' | 'out' | 'fwd';
  readonly selector: { readonly src: string; readonly dst: string };
}

/** The selector's addresses as one CIDR, as the kernel port writes them (kernel.ts tsCidr); a range is none. */
function cidrOf(text: string): string | undefined {
  let r;
  try { r = parseTs(text); } catch { return undefined; }
  const bits = prefixLengthOf(r);
  return bits === null ? undefined : `${bytesToIp(r.start)}/${bits}`;
}

export function carriedSelectors(config: Pick<PeerConfig, 'children'>): CarriedSelectors {
  const cidrs = (ts: readonly string[]): string[] => ts.map(cidrOf).filter((c): c is string => c !== undefined);
  return new Map(config.children.map((c) => [c.name, { local: cidrs(c.localTs), remote: cidrs(c.remoteTs) }]));
}

/**
 * Whether the new config still has a place for this policy of `child`: its local and remote sides
 * (out: src, dst; in and fwd: dst, src) each inside one of the child's new selectors. Inside, not
 * equal: a responder may have narrowed what was negotiated.
 */
export function stillCarried(carried: CarriedSelectors, child: string, p: PolicySelector): boolean {
  const c = carried.get(child);
  if (!c) return false;
  const [local, remote] = p.dir === 'out' ? [p.selector.src, p.selector.dst] : [p.selector.dst, p.selector.src];
  return c.local.some((l) => cidrContains(l, local)) && c.remote.some((r) => cidrContains(r, remote));
}
