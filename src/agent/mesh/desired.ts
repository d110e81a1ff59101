// What the node agent wants from the cluster's state at one moment: the peer snapshot for the
// engine (mesh pairs and the IPsecTunnels this node is the active gateway of), why the node is idle
// if it is, the traffic mode, the CAs, the userspace TUN routes and the routes to other gateways.
// A function of the watches' caches and the choices made at start; node-agent.ts applies it.
import { REASONS } from '../../api/conditions.js';
import type { LinkInfo } from '../../xfrm/index.js';
import type { TunnelGateways } from '../gateway/gateways.js';
import { gatewayRoutes, type GatewayRoute } from '../gateway/node-routes.js';
import { NO_GATEWAY_ROUTING, peerRoutesWithGateways } from '../gateway/routing.js';
import type { DesiredPeer, PeerSnapshot } from '../source.js';
import type { PeerRoutes } from '../userspace/mesh-routes.js';
import { userspacePeer } from '../userspace/peer.js';
import { datapathProblem, heldPeerRoutes, userspaceMeshPeers, userspaceTraffic, type DatapathChoice, type DatapathFlag, type KernelEsp } from './datapath.js';
import type { NodeIdentity } from './identity.js';
import { meshPeers, type MeshPeers } from './peers.js';
import { activeMeshOf, resolveMesh, selects, type MeshSettings } from './settings.js';
import { resolveTraffic, type ResolvedTraffic } from './traffic.js';
import { podCidrsOf, type MeshWatch } from './watch.js';

export interface Desired {
  readonly snapshot: PeerSnapshot;
  readonly mesh: MeshSettings | undefined;
  readonly inactive: { readonly reason: string; readonly message: string } | undefined;
  readonly peers: MeshPeers;
  readonly traffic: ResolvedTraffic;
  readonly podCIDRs: readonly string[];
  /** The CAs the engine was given (DER) and their digest; undefined while there is no bundle. */
  readonly cas: { readonly der: readonly Uint8Array[]; readonly digest: string } | undefined;
  /** Userspace: the peers whose pod CIDRs go into the TUN device (and are blackholed, strict). */
  readonly routes: readonly PeerRoutes[];
  /** Tunnels' remote subnets this node routes to their active gateway (table 220). */
  readonly gatewayRoutes: readonly GatewayRoute[];
}

export interface DesiredInput {
  readonly node: string;
  readonly meshName: string | undefined;
  readonly watch: MeshWatch;
  readonly gateways: TunnelGateways | undefined;
  /** --datapath, the data path chosen at start, and what the kernel ESP probe found. */
  readonly flag: DatapathFlag;
  readonly datapath: DatapathChoice;
  readonly esp: KernelEsp;
  readonly links: readonly LinkInfo[];
  /** The last applied result: kept while no usable certificate or trust bundle is at hand. */
  readonly previous: Desired | undefined;
}

/** spec.traffic and the links decide; on userspace an overlay is passed by in tunnel mode (datapath.ts). */
export function trafficOf(mesh: MeshSettings | undefined, links: readonly LinkInfo[], datapath: DatapathChoice): ResolvedTraffic {
  const r = resolveTraffic(mesh ?? { trafficMode: 'auto', overlay: undefined }, links);
  return datapath.datapath === 'userspace' ? userspaceTraffic(r) : r;
}

export function computeDesired(i: DesiredInput, address: string, identity: NodeIdentity): Desired {
  const { watch, node } = i;
  const podCIDRs = podCidrsOf(watch.node(node));
  const chosen = activeMeshOf(watch.meshes.list(), i.meshName);
  const mesh = chosen ? resolveMesh(chosen).settings : undefined;
  const traffic = trafficOf(mesh, i.links, i.datapath);
  const empty = { peers: [], skipped: [], notes: [] };
  const inactive = !chosen || !mesh
    ? { reason: REASONS.NoMesh, message: i.meshName ? `no IPsecMesh named ${i.meshName}` : 'no IPsecMesh in the cluster' }
    : !selects(mesh, watch.labelsOf(node)) ? { reason: REASONS.NotInMesh, message: `IPsecMesh ${chosen.metadata.name}'s nodeSelector does not select this node` }
      : datapathProblem(i.flag, i.datapath, { name: chosen.metadata.name, datapath: mesh.datapath }, i.esp);
  const id = identity.meshIdentity(watch.trustBundle());
  const cas = id ? { der: id.cas, digest: id.bundleDigest } : i.previous?.cas;
  const others = !mesh ? [] : watch.ipsecNodes.list().filter((n) => n.metadata.name !== node && watch.nodeExists(n.metadata.name) && selects(mesh, watch.labelsOf(n.metadata.name)));
  const tunnels = tunnelPeers(i, address, podCIDRs);
  // IPsecTunnels' remote subnets: to their active gateways over the mesh (gateway/routing.ts).
  const via = i.gateways?.routing() ?? NO_GATEWAY_ROUTING;
  const otherPods = watch.ipsecNodes.list().filter((n) => n.metadata.name !== node).flatMap((n) => n.spec.podCIDRs ?? []);
  const routesOf = (ps: readonly DesiredPeer[]): PeerRoutes[] => peerRoutesWithGateways(ps, via.mine, podCIDRs, otherPods);
  // The remote subnets of tunnels another node is the active gateway of, routed to that node: on
  // userspace only those no mesh pair takes into the TUN device.
  const toGateways = (routes: readonly PeerRoutes[]): GatewayRoute[] => gatewayRoutes(via.viaNode, address, (n) => watch.ipsecNodes.get(n)?.spec.endpoint?.address,
    i.datapath.datapath === 'userspace' ? new Set(routes.flatMap((r) => r.remote)) : undefined);
  if (inactive || !mesh) {
    const routes = [...heldPeerRoutes(inactive?.reason, mesh?.strict ?? false, podCIDRs, others), ...routesOf(tunnels)];
    return { snapshot: { synced: watch.synced, peers: tunnels }, mesh, inactive, peers: empty, traffic, podCIDRs, cas, routes, gatewayRoutes: toGateways(routes) };
  }
  if (!id) {
    // No usable certificate or trust bundle right now (it is being replaced, or unreadable): the
    // peers stay as they are — a snapshot that is not synced removes nothing.
    const prev = i.previous;
    return { snapshot: { synced: false, peers: prev?.snapshot.peers ?? [] }, mesh, inactive: prev ? undefined : { reason: 'IdentityNotReady', message: 'no usable certificate or trust bundle yet' }, peers: prev?.peers ?? empty, traffic, podCIDRs, cas, routes: prev?.routes ?? [], gatewayRoutes: prev?.gatewayRoutes ?? [] };
  }
  const all = meshPeers({ name: node, address, podCIDRs, traffic: traffic.traffic, gatewaySubnets: via.mine }, others, mesh, id, via.viaNode);
  const peers = i.datapath.datapath === 'userspace' ? userspaceMeshPeers(all) : all;
  const routes = routesOf([...peers.peers, ...tunnels]);
  return { snapshot: { synced: watch.synced, peers: [...peers.peers, ...tunnels] }, mesh, inactive: undefined, peers, traffic, podCIDRs, cas, routes, gatewayRoutes: toGateways(routes) };
}

/** The tunnels this node is the active gateway of; local.subnets default to every known pod CIDR. */
function tunnelPeers(i: DesiredInput, address: string, podCIDRs: readonly string[]): DesiredPeer[] {
  const g = i.gateways;
  if (!g) return [];
  const cluster = new Set([...podCIDRs, ...i.watch.ipsecNodes.list().flatMap((n) => n.spec.podCIDRs ?? [])]);
  return g.peers(address, [...cluster].sort(), i.datapath.datapath === 'userspace' ? userspacePeer : undefined);
}
