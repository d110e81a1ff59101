// Which data path a cluster agent runs, and whether the IPsecMesh accepts it (DESIGN.md §5). Pure,
// so every combination of flag, mesh and kernel has a test.
//
// The data path is chosen once, at start: the userspace one owns the NAT-T port and a TUN device,
// the kernel one the XFRM state, and the two cannot trade places under live SAs.
//   --datapath kernel | userspace   the node runs that; a mesh asking for the other one leaves the
//                                   node out of the mesh (DatapathMismatch), never half in it
//   --datapath auto (cluster default) the mesh decides: spec.datapath kernel or userspace is taken as
//                                   asked, auto means kernel when the kernel accepts an ESP state,
//                                   else userspace. A mesh asking for kernel on a kernel without ESP
//                                   is DatapathUnavailable; the agent then runs userspace (idle), so a
//                                   mesh switched to auto or userspace later needs no restart.
// Held out for either reason the node has no SAs, but with strict mode its peers' pod CIDRs stay
// guarded (on userspace: blackholed, heldPeerRoutes), so its pods send nothing in clear meanwhile.
// The userspace engine does tunnel-mode ESP in UDP for one local address: the mesh's pod CIDR
// pairs fit it; transport-mode pairs (hostToHost) are refused per peer, with the reason. An overlay
// (VXLAN, Geneve) is not encrypted in transport mode there: the node publishes routed traffic and
// its pod CIDRs go in tunnel mode through the TUN device, whose routes (table 221, ahead of the
// CNI's routes in main) take pod packets to mesh peers past the overlay device (userspaceTraffic).
import { errorMessage } from '../../common/errors.js';
import type { IPsecNode } from '../../api/types.js';
import type { DesiredPeer } from '../source.js';
import type { PeerRoutes } from '../userspace/mesh-routes.js';
import { userspacePeer } from '../userspace/peer.js';
import { meshPeerName, type MeshPeers } from './peers.js';
import type { ResolvedTraffic } from './traffic.js';

export type DatapathFlag = 'kernel' | 'userspace' | 'auto';
export type Datapath = 'kernel' | 'userspace';
export type MeshDatapath = 'kernel' | 'userspace' | 'auto';

/** The probe's answer (src/agent/diagnose.ts probeKernelEsp). */
export interface KernelEsp { readonly ok: boolean; readonly reason?: string }

export interface DatapathChoice { readonly datapath: Datapath; readonly reason: string }

export const DATAPATH_REASONS = { unavailable: 'DatapathUnavailable', mismatch: 'DatapathMismatch' } as const;

const refuses = (esp: KernelEsp): string => `the kernel refuses ESP states${esp.reason ? ` (${esp.reason})` : ''}`;

/** At start: the data path this agent runs, and why (logged, in `kipsec status`). */
export function chooseNodeDatapath(flag: DatapathFlag, mesh: { readonly name: string; readonly datapath: MeshDatapath } | undefined, esp: KernelEsp): DatapathChoice {
  if (flag !== 'auto') return { datapath: flag, reason: `--datapath ${flag}` };
  if (mesh?.datapath === 'userspace') return { datapath: 'userspace', reason: `IPsecMesh ${mesh.name} asks for userspace` };
  if (esp.ok) return { datapath: 'kernel', reason: `--datapath auto: the kernel accepts ESP states${mesh?.datapath === 'kernel' ? `; IPsecMesh ${mesh.name} asks for kernel` : ''}` };
  return { datapath: 'userspace', reason: `--datapath auto: ${refuses(esp)}${mesh?.datapath === 'kernel' ? `; IPsecMesh ${mesh.name} asks for kernel, so the node stays out of it` : ''}` };
}

/** While running: why the mesh cannot have this node on the data path it runs, or undefined. */
export function datapathProblem(flag: DatapathFlag, running: DatapathChoice, mesh: { readonly name: string; readonly datapath: MeshDatapath }, esp: KernelEsp): { readonly reason: string; readonly message: string } | undefined {
  // Forced onto a kernel without ESP: say so, rather than let every Child SA install fail.
  if (running.datapath === 'kernel' && !esp.ok)
    return { reason: DATAPATH_REASONS.unavailable, message: `this agent runs the kernel data path (${running.reason}), but ${refuses(esp)}; run it with --datapath auto or userspace` };
  if (mesh.datapath === 'auto' || mesh.datapath === running.datapath) return undefined;
  if (mesh.datapath === 'kernel' && !esp.ok)
    return { reason: DATAPATH_REASONS.unavailable, message: `IPsecMesh ${mesh.name} asks for the kernel data path, but on this node ${refuses(esp)}; set spec.datapath to auto or userspace` };
  return {
    reason: DATAPATH_REASONS.mismatch,
    // With --datapath auto a restart follows the mesh; an explicit flag has to change first.
    message: `IPsecMesh ${mesh.name} asks for the ${mesh.datapath} data path; this agent runs ${running.datapath} (${running.reason}): ${flag === 'auto' ? 'restart the agent (the data path is chosen at start)' : `restart it with --datapath ${mesh.datapath} or auto`}, or set spec.datapath to auto`,
  };
}

/**
 * Strict mode while the mesh wants this node but not on the data path it runs: no SAs, but its
 * peers' pod CIDRs stay guarded (userspace: blackholed), so the node's pods send nothing in clear.
 */
export function heldPeerRoutes(reason: string | undefined, strict: boolean, local: readonly string[], peers: readonly IPsecNode[]): PeerRoutes[] {
  if (!strict || (reason !== DATAPATH_REASONS.unavailable && reason !== DATAPATH_REASONS.mismatch)) return [];
  return peers.map((n) => ({ peer: meshPeerName(n.metadata.name), remote: n.spec.podCIDRs ?? [], local }));
}

/** One peer as the userspace engine runs it, or why it cannot. */
function adapt(p: DesiredPeer): DesiredPeer | string {
  if (p.config.children.some((c) => c.mode === 'transport'))
    return 'transport-mode ESP (overlay or hostToHost traffic) needs the kernel data path; this node runs userspace (tunnel mode only)';
  try {
    // ESP in UDP always (the engine has no raw ESP), and only suites the engine can key.
    return { ...p, config: userspacePeer(p.config), installRoutes: false };
  } catch (e) { return `the userspace data path cannot run it: ${errorMessage(e)}`; }
}

/** The mesh's peers for the userspace data path: those it cannot run move to `skipped` with the reason. */
export function userspaceMeshPeers(m: MeshPeers): MeshPeers {
  const peers: DesiredPeer[] = [];
  const skipped = [...m.skipped];
  for (const p of m.peers) {
    const r = adapt(p);
    if (typeof r === 'string') skipped.push({ node: p.kind.type === 'mesh' ? p.kind.node : p.name, reason: r });
    else peers.push(r);
  }
  return { peers, skipped, notes: m.notes };
}

/** The traffic a userspace node publishes: an overlay becomes routed (pod CIDRs in tunnel mode through the TUN), with why. */
export function userspaceTraffic(r: ResolvedTraffic): ResolvedTraffic {
  if (r.traffic.mode !== 'overlay') return r;
  return { traffic: { mode: 'routed' }, source: r.source, message: `${r.message}; but the userspace data path has no transport mode: pod CIDRs in tunnel mode through its TUN device, past the overlay` };
}
