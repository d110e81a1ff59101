// The mesh as peers: from this node, the resolved IPsecMesh and the other nodes' IPsecNodes, the
// engine configs of one IKE SA per peer node (DESIGN.md §3, §5). Pure, so each rule has a test.
//
//  - Identity: certificates (RFC 7427), our FQDN identity = our node name (the CSR signer makes it
//    the certificate's only DNS SAN); the peer must present a certificate chained to the trust
//    bundle, naming the peer node, whose key (or certificate) is the one its IPsecNode publishes.
//  - Traffic, per pair: routed → one tunnel-mode Child SA "pods", all our pod CIDRs ↔ all the
//    peer's (IPv4 and IPv6 alike). Overlay (both nodes carry the same VXLAN/Geneve port) → two
//    transport-mode Child SAs between the node addresses, OVN-Kubernetes style: "overlay-out"
//    (our any port → the peer's overlay port) and "overlay-in" (the reverse). hostToHost →
//    transport mode for everything between the node addresses ("host"; it covers the overlay).
//  - IPsecTunnels (gateway/routing.ts): the remote subnets of the tunnels a node is the active
//    gateway of join the "pods" child on both ends of its pairs — its local side, the peer's
//    remote side — so pods on every node reach them through the gateway, encrypted on the way.
//    An overlay pair has no "pods" child: tunnel-mode children "gateway-out" (our pods ↔ the peer's
//    remote subnets) and "gateway-in" (ours ↔ the peer's pods) carry them instead.
//  - Who initiates: the side with the lower address (the engine settles a simultaneous start
//    with the same rule, src/ike/sa/lifecycle.ts resolveDuplicates), so normally only one knocks.
import { createHash, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import type { IPsecNode } from '../../api/types.js';
import type { ChildConfig, PeerConfig } from '../../ike/engine.js';
import { compareBytes, ipToBytes } from '../../ike/sa/addr.js';
import { blockPolicies } from '../strict.js';
import type { DesiredPeer } from '../source.js';
import type { MeshSettings, Overlay } from './settings.js';

export interface NodeTraffic {
  readonly mode: 'routed' | 'overlay';
  readonly overlay?: Overlay;
}

export interface MeshSelf {
  readonly name: string;
  readonly address: string;
  readonly podCIDRs: readonly string[];
  readonly traffic: NodeTraffic;
  /** Remote subnets of the IPsecTunnels this node is the active gateway of. */
  readonly gatewaySubnets?: readonly string[];
}

export interface MeshIdentity {
  /** Our certificate (DER), then intermediates. */
  readonly certificate: Uint8Array;
  readonly chain: readonly Uint8Array[];
  readonly privateKey: KeyObject;
  /** The trust bundle (DER). */
  readonly cas: readonly Uint8Array[];
  /** SHA-256 of our certificate and of the bundle: in the digest, so a renewal updates the peers. */
  readonly certFingerprint: string;
  readonly bundleDigest: string;
}

export interface MeshPeers {
  readonly peers: readonly DesiredPeer[];
  /** Nodes we cannot set up, with the reason in the product's words. */
  readonly skipped: readonly { readonly node: string; readonly reason: string }[];
  /** Peers set up with a caveat worth showing (e.g. the two nodes disagree on the traffic mode). */
  readonly notes: readonly { readonly node: string; readonly note: string }[];
}

export const MESH_PEER_PREFIX = 'mesh/';
export function meshPeerName(node: string): string { return `${MESH_PEER_PREFIX}${node}`; }

const digest = (v: unknown): string => createHash('sha256').update(JSON.stringify(v)).digest('hex').slice(0, 16);

function family(cidr: string): number { return isIP(cidr.split('/')[0] ?? ''); }

function contains(cidr: string, ip: string): boolean {
  const [net = '', bitsText = ''] = cidr.split('/');
  if (isIP(net) !== isIP(ip)) return false;
  const a = ipToBytes(net); const b = ipToBytes(ip);
  let bits = Number(bitsText);
  for (let i = 0; i < a.length && bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if (((a[i] ?? 0) & mask) !== ((b[i] ?? 0) & mask)) return false;
  }
  return true;
}

/** A CIDR as the first and last address of its range (per family), for a sort-and-sweep. */
function rangeOf(cidr: string): { readonly fam: number; readonly lo: bigint; readonly hi: bigint } {
  const [net = '', bitsText = ''] = cidr.split('/');
  const bytes = ipToBytes(net);
  const width = BigInt(bytes.length * 8);
  let v = 0n;
  for (const b of bytes) v = (v << 8n) | BigInt(b);
  const host = (1n << (width - BigInt(Number(bitsText)))) - 1n;
  return { fam: bytes.length, lo: v & ~host, hi: (v & ~host) | host };
}

/**
 * Claims no node may make: a pod CIDR that overlaps this node's or another node's, an endpoint
 * address another node claims too. Each agent writes its own IPsecNode, so one compromised or
 * misconfigured node could otherwise claim another's pods and receive their traffic (the policy
 * for a remote CIDR points at whichever peer claims it). Both claimants are refused: from here
 * there is no telling which one is honest, and no SA is safer than one to the wrong node.
 * Sort and sweep, O(n log n): this runs on every mesh change in clusters of thousands of nodes.
 */
function conflictingClaims(self: MeshSelf, nodes: readonly IPsecNode[]): Map<string, string> {
  const out = new Map<string, string>();
  const flag = (node: string, reason: string): void => { if (node !== self.name && !out.has(node)) out.set(node, reason); };
  const claims: { node: string; cidr: string; fam: number; lo: bigint; hi: bigint }[] = [];
  for (const c of self.podCIDRs) claims.push({ node: self.name, cidr: c, ...rangeOf(c) });
  const byAddress = new Map<string, string>();
  for (const n of nodes) {
    const name = n.metadata.name;
    if (name === self.name) continue;
    for (const c of n.spec.podCIDRs ?? []) claims.push({ node: name, cidr: c, ...rangeOf(c) });
    const addr = n.spec.endpoint?.address;
    if (addr === undefined) continue;
    const first = byAddress.get(addr);
    if (first === undefined) { byAddress.set(addr, name); continue; }
    flag(name, `its endpoint address ${addr} is also claimed by node ${first}`);
    flag(first, `its endpoint address ${addr} is also claimed by node ${name}`);
  }
  claims.sort((x, y) => x.fam - y.fam || (x.lo < y.lo ? -1 : x.lo > y.lo ? 1 : 0));
  // The claim reaching furthest so far; a later one starting inside it overlaps it.
  let reach: (typeof claims)[number] | undefined;
  for (const c of claims) {
    if (reach && reach.fam === c.fam && c.lo <= reach.hi && reach.node !== c.node) {
      const whose = (n: string): string => (n === self.name ? "this node's" : `node ${n}'s`);
      flag(c.node, `it claims a pod CIDR (${c.cidr}) overlapping ${whose(reach.node)} ${reach.cidr}`);
      flag(reach.node, `it claims a pod CIDR (${reach.cidr}) overlapping ${whose(c.node)} ${c.cidr}`);
    }
    if (!reach || reach.fam !== c.fam || c.hi > reach.hi) reach = c;
  }
  return out;
}

function hostCidr(ip: string): string { return `${ip}/${isIP(ip) === 6 ? 128 : 32}`; }

/** Tunnel subnets a pair can carry: of a family both nodes' pods have, not a pod CIDR, never one holding a node address (IKE itself would be caught). */
function tunnelSubnets(subnets: readonly string[] | undefined, local: readonly string[], remote: readonly string[], a: string, b: string): string[] {
  return (subnets ?? []).filter((c) => !local.includes(c) && !remote.includes(c) && local.some((l) => family(l) === family(c)) && remote.some((r) => family(r) === family(c)) && !contains(c, a) && !contains(c, b));
}

/** The Child SAs of one pair; empty with a reason when there is nothing to protect. */
export function pairChildren(self: MeshSelf, peer: { readonly address: string; readonly podCIDRs: readonly string[]; readonly traffic: NodeTraffic | undefined; readonly gatewaySubnets?: readonly string[] }, m: MeshSettings): { children: ChildConfig[]; note?: string } {
  const base = { espProposals: [...m.espProposals], rekeyTimeMs: m.espRekeyMs, lifeTimeMs: m.espLifeMs,
    ...(m.espLifePackets !== undefined ? { lifePackets: m.espLifePackets } : {}), ...(m.espLifeBytes !== undefined ? { lifeBytes: m.espLifeBytes } : {}) };
  const children: ChildConfig[] = [];
  const a = hostCidr(self.address); const b = hostCidr(peer.address);
  const ov = self.traffic.mode === 'overlay' && peer.traffic?.mode === 'overlay' && self.traffic.overlay && peer.traffic.overlay
    && self.traffic.overlay.protocol === peer.traffic.overlay.protocol && self.traffic.overlay.port === peer.traffic.overlay.port ? self.traffic.overlay : undefined;
  let note: string | undefined;
  if (m.hostToHost) {
    children.push({ ...base, name: 'host', mode: 'transport', localTs: [a], remoteTs: [b] });
  } else if (ov) {
    children.push({ ...base, name: 'overlay-out', mode: 'transport', localTs: [`${a}[udp]`], remoteTs: [`${b}[udp/${ov.port}]`] });
    children.push({ ...base, name: 'overlay-in', mode: 'transport', localTs: [`${a}[udp/${ov.port}]`], remoteTs: [`${b}[udp]`] });
  }
  if (ov) {
    // Traffic to a tunnel's remote subnets leaves the overlay (it is routed to the gateway node, not
    // into the VXLAN/Geneve device), so the transport-mode children never see it: a tunnel-mode
    // child per direction carries it, our pods ↔ the peer's remote subnets and the reverse.
    const pods = self.podCIDRs; const peerPods = peer.podCIDRs.filter((r) => pods.some((l) => family(l) === family(r)));
    const viaPeer = tunnelSubnets(peer.gatewaySubnets, pods, peerPods, self.address, peer.address);
    const viaUs = tunnelSubnets(self.gatewaySubnets, pods, peerPods, self.address, peer.address);
    if (viaPeer.length > 0) children.push({ ...base, name: 'gateway-out', mode: 'tunnel', localTs: [...pods], remoteTs: viaPeer });
    if (viaUs.length > 0) children.push({ ...base, name: 'gateway-in', mode: 'tunnel', localTs: viaUs, remoteTs: peerPods });
  }
  if (!ov) {
    if (self.traffic.mode !== (peer.traffic?.mode ?? 'routed')) note = `traffic modes differ (this node ${self.traffic.mode}, peer ${peer.traffic?.mode ?? 'routed'}): pod CIDRs are encrypted in tunnel mode`;
    const local = self.podCIDRs; const remote = peer.podCIDRs.filter((r) => local.some((l) => family(l) === family(r)));
    const via = (subnets: readonly string[] | undefined): string[] => tunnelSubnets(subnets, local, remote, self.address, peer.address);
    if (local.length > 0 && remote.length > 0) children.push({ ...base, name: 'pods', mode: 'tunnel', localTs: [...local, ...via(self.gatewaySubnets)], remoteTs: [...remote, ...via(peer.gatewaySubnets)] });
    else if (!m.hostToHost) note = local.length === 0 ? 'this node has no pod CIDR (Node spec.podCIDRs)' : 'the peer publishes no pod CIDR of a family this node has';
  }
  return note === undefined ? { children } : { children, note };
}

/** `viaNode`: per peer node, the remote subnets of the IPsecTunnels it is the active gateway of. */
export function meshPeers(self: MeshSelf, nodes: readonly IPsecNode[], m: MeshSettings, id: MeshIdentity, viaNode?: ReadonlyMap<string, readonly string[]>): MeshPeers {
  const peers: DesiredPeer[] = [];
  const skipped: { node: string; reason: string }[] = [];
  const notes: { node: string; note: string }[] = [];
  const ownNets = self.podCIDRs;
  const conflicts = conflictingClaims(self, nodes);
  for (const n of [...nodes].sort((x, y) => x.metadata.name.localeCompare(y.metadata.name))) {
    const node = n.metadata.name;
    if (node === self.name) continue;
    const skip = (reason: string): void => { skipped.push({ node, reason }); };
    const conflict = conflicts.get(node);
    if (conflict) { skip(conflict); continue; }
    const address = n.spec.endpoint?.address;
    if (!address || isIP(address) === 0) { skip('its IPsecNode has no endpoint address'); continue; }
    if (isIP(address) !== isIP(self.address)) { skip(`its address ${address} is not of this node's family (${self.address})`); continue; }
    if (address === self.address) { skip(`it claims this node's address ${address}`); continue; }
    const pins = { spkiSha256: n.spec.identity?.publicKeyFingerprint ? [n.spec.identity.publicKeyFingerprint] : [], certSha256: n.spec.identity?.certFingerprint ? [n.spec.identity.certFingerprint] : [] };
    if (pins.spkiSha256.length + pins.certSha256.length === 0) { skip('it has not published its identity yet'); continue; }
    const podCIDRs = n.spec.podCIDRs ?? [];
    const inside = [...ownNets, ...podCIDRs].find((c) => contains(c, self.address) || contains(c, address));
    if (inside) { skip(`pod CIDR ${inside} contains a node address: IKE itself would be caught`); continue; }
    const traffic = n.spec.traffic ? { mode: n.spec.traffic.mode, ...(n.spec.traffic.overlay ? { overlay: { protocol: n.spec.traffic.overlay.protocol, port: n.spec.traffic.overlay.port ?? (n.spec.traffic.overlay.protocol === 'vxlan' ? 4789 : 6081) } } : {}) } : undefined;
    const gatewaySubnets = viaNode?.get(node);
    const { children, note } = pairChildren(self, { address, podCIDRs, traffic, ...(gatewaySubnets ? { gatewaySubnets } : {}) }, m);
    if (children.length === 0) { skip(note ?? 'nothing to encrypt'); continue; }
    const initiate = compareBytes(ipToBytes(self.address), ipToBytes(address)) < 0;
    const ikePort = n.spec.endpoint.ikePort ?? 500;
    const name = meshPeerName(node);
    const config: PeerConfig = {
      name,
      local: { address: self.address, id: { type: 'fqdn', value: self.name } },
      remote: { address, ...(ikePort !== 500 ? { port: ikePort } : {}), id: { type: 'fqdn', value: node } },
      auth: {
        method: 'certificate', certificate: id.certificate, ...(id.chain.length ? { chain: [...id.chain] } : {}), privateKey: id.privateKey, cas: [...id.cas],
        peerPins: { spkiSha256: pins.spkiSha256, certSha256: pins.certSha256 },
      },
      ike: { proposals: [...m.ikeProposals], rekeyTimeMs: m.ikeRekeyMs },
      children,
      dpd: { intervalMs: m.dpdIntervalMs, timeoutMs: m.dpdTimeoutMs, action: m.dpdAction },
      startAction: initiate ? 'initiate' : 'respond',
      natTraversal: m.natTraversal,
    };
    const sessionDigest = digest({ local: self.address, address, ikePort, children: children.map((c) => [c.name, c.mode, c.localTs, c.remoteTs]) });
    peers.push({
      name, config, sessionDigest,
      digest: digest({ sessionDigest, pins, cert: id.certFingerprint, bundle: id.bundleDigest, ike: config.ike, esp: [m.espProposals, m.espRekeyMs, m.espLifeMs, String(m.espLifePackets), String(m.espLifeBytes)], dpd: config.dpd, start: config.startAction, natt: m.natTraversal, strict: m.strict }),
      installRoutes: false, keepUp: true,
      ikeProposalText: m.ikeProposals, espProposalText: m.espProposals,
      blocks: m.strict ? blockPolicies(config) : [],
      kind: { type: 'mesh', node },
    });
    if (note) notes.push({ node, note });
  }
  return { peers, skipped, notes };
}
