// The remote subnets of IPsecTunnels, reachable from the pods of every node: a node that is not a
// tunnel's active gateway sends them to the node that is, over the mesh. The mesh pair with the
// active gateway carries them (its "pods" Child SA: our pod CIDRs ↔ the gateway's pod CIDRs and
// the tunnel's remote subnets, mesh/peers.ts pairChildren), and the gateway's side of every pair
// offers them back (its pod CIDRs and the remote subnets ↔ the peer's pod CIDRs), so the leg from
// the pod's node to the gateway is ESP like all pod traffic between nodes. Pure, so each rule has
// a test; gateways.ts feeds it the Lease holders, node-agent.ts uses the answer.
//
// Who is active comes from the tunnel's Lease (its holderIdentity, watched), not from
// IPsecTunnel.status.activeGateway: the new holder writes the Lease the moment it takes over,
// while the status goes through the gateway's status report and the operator (seconds later, and
// not at all while the operator is down).
import { isIP } from 'node:net';
import type { IPsecTunnel } from '../../api/types.js';
import { ipToBytes } from '../../ike/sa/addr.js';
import type { DesiredPeer } from '../source.js';
import { meshPeerRoutes, type PeerRoutes } from '../userspace/mesh-routes.js';

export interface GatewayRouting {
  /** Remote subnets of the tunnels this node is the active gateway of: the local side of every mesh pair gets them. */
  readonly mine: readonly string[];
  /** Per other node: the remote subnets of the tunnels it is the active gateway of (the remote side of our pair with it). */
  readonly viaNode: ReadonlyMap<string, readonly string[]>;
}

export const NO_GATEWAY_ROUTING: GatewayRouting = { mine: [], viaNode: new Map() };

/** Policy and route mode alike: the remote subnets (not a route-mode tunnel's 0.0.0.0/0 selectors) go to the gateway. */
function carried(t: IPsecTunnel): boolean {
  return !t.metadata.deletionTimestamp;
}

/**
 * Which node carries which remote subnets. `holderOf`: the node holding the tunnel's Lease as last
 * seen (undefined: none, or released); `heldHere`: whether this node holds it by its own reckoning
 * (lease.ts `held`), which is also what puts the tunnel's IKE peer into this node's engine.
 */
export function gatewayRouting(tunnels: readonly IPsecTunnel[], self: string, holderOf: (tunnel: string) => string | undefined, heldHere: (tunnel: string) => boolean): GatewayRouting {
  const mine = new Set<string>();
  const viaNode = new Map<string, Set<string>>();
  for (const t of [...tunnels].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name))) {
    if (!carried(t)) continue;
    const name = t.metadata.name;
    const subnets = t.spec.remote.subnets ?? [];
    if (heldHere(name)) for (const s of subnets) mine.add(s);
    const holder = holderOf(name);
    if (holder === undefined || holder === '' || holder === self) continue;
    const set = viaNode.get(holder) ?? new Set<string>();
    for (const s of subnets) set.add(s);
    viaNode.set(holder, set);
  }
  return { mine: [...mine], viaNode: new Map([...viaNode].map(([n, s]) => [n, [...s]])) };
}

/** Does CIDR `outer` contain CIDR `inner` (same family, prefix at least as long, same network bits)? */
export function cidrContains(outer: string, inner: string): boolean {
  const [on = '', ob = ''] = outer.split('/'); const [inet = '', ib = ''] = inner.split('/');
  if (isIP(on) === 0 || isIP(on) !== isIP(inet)) return false;
  const max = isIP(on) === 4 ? 32 : 128;
  const obits = ob === '' ? max : Number(ob); const ibits = ib === '' ? max : Number(ib);
  if (ibits < obits) return false;
  const a = ipToBytes(on); const b = ipToBytes(inet);
  for (let i = 0, bits = obits; i < a.length && bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if (((a[i] ?? 0) & mask) !== ((b[i] ?? 0) & mask)) return false;
  }
  return true;
}

/**
 * The userspace data path's strict rules (mesh-routes.ts 218/219: decrypted traffic from a peer's
 * selectors to ours is looked up in main) must not catch what this gateway forwards between the
 * mesh and a tunnel: main routes other nodes' pod CIDRs in clear (the CNI's routes), so
 *  - a mesh pair's local side loses the remote subnets this node is the gateway of (traffic from
 *    another node's pods to them goes on through table 221 into the tunnel);
 *  - a tunnel's local side keeps, of a subnet holding other nodes' pod CIDRs (the cluster default),
 *    only this node's own pod CIDRs (traffic from the remote side to another node's pods goes on
 *    through table 221 into the mesh pair with that node).
 */
export function forwardingRoutes(routes: readonly PeerRoutes[], kinds: ReadonlyMap<string, 'mesh' | 'tunnel'>, mine: readonly string[], ownPods: readonly string[], otherPods: readonly string[]): PeerRoutes[] {
  const drop = new Set(mine);
  return routes.map((r) => {
    const kind = kinds.get(r.peer);
    if (kind === 'mesh') return drop.size === 0 ? r : { ...r, local: r.local.filter((l) => !drop.has(l)) };
    if (kind !== 'tunnel') return r;
    const local = r.local.flatMap((l) => (otherPods.some((p) => cidrContains(l, p)) ? ownPods.filter((p) => cidrContains(l, p)) : [l]));
    return { ...r, local: [...new Set(local)] };
  });
}

/** The userspace routes of these peers (mesh pairs and tunnels), adjusted as forwardingRoutes says. */
export function peerRoutesWithGateways(peers: readonly DesiredPeer[], mine: readonly string[], ownPods: readonly string[], otherPods: readonly string[]): PeerRoutes[] {
  return forwardingRoutes(meshPeerRoutes(peers), new Map(peers.map((p) => [p.name, p.kind.type])), mine, ownPods, otherPods);
}
