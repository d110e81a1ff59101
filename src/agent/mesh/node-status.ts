// The agent's part of its IPsecNode status, as a pure function of what it knows, so every field
// and reason has a test and "write only on change" is a comparison. The operator owns the
// IdentityVerified condition; the agent owns Ready and everything else here.
import { REASONS, type Condition, type DesiredCondition } from '../../api/conditions.js';
import type { IPsecNodeStatus, NodePeerStatus } from '../../api/types.js';
import { peerIsUp, type ClusterInfo, type TunnelStatus } from '../status.js';
import { espCost, maxInnerPacket, type ResolvedTraffic } from './traffic.js';

export interface NodeStatusInput {
  readonly nowMs: number;
  /** The data path this agent runs (mesh/datapath.ts). */
  readonly datapath: 'kernel' | 'userspace';
  /** Userspace: the offloads the ESP engine uses (src/agent/userspace/status.ts). */
  readonly offloads?: readonly string[] | undefined;
  /** Why the node takes no part in a mesh, or undefined when it does. */
  readonly inactive: { readonly reason: string; readonly message: string } | undefined;
  readonly peers: readonly TunnelStatus[];
  readonly skipped: readonly { readonly node: string; readonly reason: string }[];
  readonly traffic: ResolvedTraffic;
  readonly strict: boolean;
  readonly certNotAfterMs: number | undefined;
  readonly identityValid: boolean;
  /** Block policies for every known peer are in the kernel (or strict mode is off). */
  readonly policiesIn: boolean;
  /** MTU of the interface carrying the node address. */
  readonly mtu: number | undefined;
  readonly xfrmErrors: Readonly<Record<string, number>>;
  readonly existing: readonly Condition[] | undefined;
}

const iso = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
const UP = new Set(['established', 'rekeying']);

function peerEntry(t: TunnelStatus): NodePeerStatus {
  const children = t.children;
  const up = peerIsUp(t);
  // IKE up but a Child SA missing: the pair does not carry all its traffic yet (or was refused).
  const state: NodePeerStatus['state'] = UP.has(t.ikeState) && !up ? (t.lastError ? 'failed' : 'connecting') : t.ikeState;
  const sum = (k: 'bytesIn' | 'bytesOut' | 'packetsIn' | 'packetsOut'): number => children.reduce((a, c) => a + c[k], 0);
  return {
    node: t.node ?? t.name, state: up ? t.ikeState : state,
    ...(t.role ? { role: t.role } : {}),
    address: t.remote,
    ...(t.ikeSuite ? { ikeSuite: t.ikeSuite } : {}),
    ...(children[0]?.suite ? { espSuite: children[0].suite } : {}),
    ...(t.ikeSpis ? { ikeSpis: `${t.ikeSpis.initiator}_i ${t.ikeSpis.responder}_r` } : {}),
    ...(children.length ? { children: children.slice(0, 8).map((c) => ({ name: c.name, ...(c.mode ? { mode: c.mode } : {}), spiIn: c.spiIn, spiOut: c.spiOut })) } : {}),
    ...(t.establishedAt ? { establishedTime: t.establishedAt.replace(/\.\d{3}Z$/, 'Z') } : {}),
    ...(t.lastRekeyAt ? { lastRekeyTime: t.lastRekeyAt.replace(/\.\d{3}Z$/, 'Z') } : {}),
    bytesIn: sum('bytesIn'), bytesOut: sum('bytesOut'), packetsIn: sum('packetsIn'), packetsOut: sum('packetsOut'),
    ...(t.lastError ? { lastError: { message: t.lastError.message.slice(0, 1024), ...(t.lastError.notify ? { notify: t.lastError.notify } : {}), time: t.lastError.time.replace(/\.\d{3}Z$/, 'Z') } } : {}),
  };
}

/** The worst inner packet size over the established Child SAs (and the overhead that leaves). */
function innerSize(peers: readonly TunnelStatus[], mtu: number | undefined): { overhead: number; inner: number } | undefined {
  if (mtu === undefined) return undefined;
  let inner: number | undefined;
  for (const p of peers) {
    if (!UP.has(p.ikeState)) continue;
    for (const c of p.children) {
      const cost = espCost(c.suite);
      if (!cost) continue;
      const n = maxInnerPacket(mtu, cost, { mode: c.mode ?? 'tunnel', ipv6: p.remote.includes(':'), encap: c.encap });
      inner = inner === undefined ? n : Math.min(inner, n);
    }
  }
  return inner === undefined ? undefined : { overhead: mtu - inner, inner };
}

export function readyCondition(i: NodeStatusInput, up: number, expected: number): DesiredCondition {
  if (i.inactive) return { type: 'Ready', status: 'False', reason: i.inactive.reason, message: i.inactive.message };
  if (!i.identityValid) return { type: 'Ready', status: 'False', reason: 'IdentityNotReady', message: 'the node has no valid certificate' };
  if (!i.policiesIn) return { type: 'Ready', status: 'False', reason: 'PoliciesNotInstalled', message: 'strict-mode block policies are not all in the kernel yet' };
  if (expected === 0) return { type: 'Ready', status: 'True', reason: REASONS.NoPeers, message: 'identity valid, policies in; no peer node in the mesh yet' };
  const down = i.peers.filter((p) => !peerIsUp(p)).map((p) => `${p.node ?? p.name}: ${p.lastError ? `${p.lastError.notify ? `${p.lastError.notify}: ` : ''}${p.lastError.message}` : p.ikeState}`);
  const skipped = i.skipped.map((s) => `${s.node}: ${s.reason}`);
  const problems = [...down, ...skipped];
  return up === expected
    ? { type: 'Ready', status: 'True', reason: REASONS.PeersEstablished, message: `${up}/${expected} peers established` }
    : { type: 'Ready', status: 'True', reason: REASONS.PeersNotEstablished, message: `${up}/${expected} peers established; ${problems.slice(0, 5).join('; ')}${problems.length > 5 ? `; and ${problems.length - 5} more` : ''}`.slice(0, 2000) };
}

/**
 * Every mesh peer gets an entry up to this many peers. Beyond, only those not up do
 * (`peersListed: notUp`), at most PEERS_NOT_UP_MAX: a full list grows the object by ~470 bytes a
 * peer (etcd refuses one of 1.5 MiB, ~3,300 peers), and every agent watches every IPsecNode, so
 * each status write crosses the apiserver once per node — O(n²) bytes per write, O(n³) a minute.
 */
export const PEERS_LISTED_ALL_MAX = 100;
export const PEERS_NOT_UP_MAX = 100;

/** The entries to publish and what they cover (see PEERS_LISTED_ALL_MAX). */
export function listedPeers(entries: readonly NodePeerStatus[]): { readonly peers: NodePeerStatus[]; readonly peersListed: NonNullable<IPsecNodeStatus['peersListed']> } {
  if (entries.length <= PEERS_LISTED_ALL_MAX) return { peers: [...entries], peersListed: 'all' };
  const notUp = entries.filter((e) => !UP.has(e.state));
  if (notUp.length <= PEERS_NOT_UP_MAX) return { peers: notUp, peersListed: 'notUp' };
  // Failed ones (with their errors) first, then by name; the rest stay unlisted and unknown.
  const rank = (e: NodePeerStatus): number => (e.lastError || e.state === 'failed' ? 0 : 1);
  const worst = [...notUp].sort((a, b) => rank(a) - rank(b) || a.node.localeCompare(b.node)).slice(0, PEERS_NOT_UP_MAX);
  return { peers: worst.sort((a, b) => a.node.localeCompare(b.node)), peersListed: 'someNotUp' };
}

export function computeNodeStatus(i: NodeStatusInput): IPsecNodeStatus {
  const entries = i.peers.map(peerEntry);
  for (const s of i.skipped) entries.push({ node: s.node, state: 'none', lastError: { message: s.reason } });
  entries.sort((a, b) => a.node.localeCompare(b.node));
  const up = entries.filter((e) => UP.has(e.state)).length;
  const expected = entries.length;
  const listed = listedPeers(entries);
  const want = readyCondition(i, up, expected);
  const prev = i.existing?.find((c) => c.type === 'Ready');
  const ready: Condition = { ...want, lastTransitionTime: prev && prev.status === want.status ? prev.lastTransitionTime : iso(i.nowMs) };
  const size = innerSize(i.peers, i.mtu);
  return {
    conditions: [ready],
    datapath: i.datapath,
    ...(i.offloads ? { datapathOffloads: [...i.offloads] } : {}),
    strict: i.strict,
    traffic: { mode: i.traffic.traffic.mode, ...(i.traffic.traffic.overlay ? { overlay: i.traffic.traffic.overlay } : {}), source: i.traffic.source, message: i.traffic.message },
    peersUp: up, peersExpected: expected,
    ...(size ? { espOverheadBytes: size.overhead, maxInnerPacketBytes: size.inner } : {}),
    ...(i.certNotAfterMs !== undefined ? { certificateNotAfter: iso(i.certNotAfterMs) } : {}),
    peers: listed.peers,
    ...(listed.peersListed !== 'all' ? { peersListed: listed.peersListed } : {}),
    xfrmErrors: { ...i.xfrmErrors },
    lastUpdateTime: iso(i.nowMs),
  };
}

/** The mesh part of `kipsec status` (ClusterInfo), from what the node agent knows. */
export function clusterInfoOf(i: {
  readonly node: string; readonly address: string;
  readonly desired: {
    readonly mesh: { readonly name: string; readonly strict: boolean } | undefined; readonly inactive: { readonly message: string } | undefined;
    readonly traffic: { readonly message: string }; readonly podCIDRs: readonly string[]; readonly peers: { readonly skipped: ClusterInfo['skipped'] };
  } | undefined;
  readonly certificate: { readonly fingerprint: string; readonly notAfterMs: number } | undefined;
  /** Peers the engine runs, and how many of them are up. */
  readonly running: number; readonly up: number;
}): ClusterInfo {
  const d = i.desired; const c = i.certificate;
  return {
    node: i.node, address: i.address, mesh: d?.mesh?.name ?? null,
    ...(d?.inactive ? { inactive: d.inactive.message } : {}),
    strict: d?.mesh?.strict ?? false, traffic: d?.traffic.message ?? 'unknown', podCIDRs: d?.podCIDRs ?? [],
    ...(c ? { certificate: { fingerprint: c.fingerprint, notAfter: new Date(c.notAfterMs).toISOString() } } : {}),
    peersExpected: i.running + (d?.peers.skipped.length ?? 0), peersUp: i.up,
    skipped: d?.peers.skipped ?? [],
  };
}

/**
 * What must reach the apiserver soon: everything but the counters and the update time. Counters
 * alone are written at a slow cadence, so a busy mesh does not write O(nodes) objects a second.
 */
export function significantPart(s: IPsecNodeStatus): string {
  const noCounters = <T extends object>(x: T): T => ({ ...x, bytesIn: undefined, bytesOut: undefined, packetsIn: undefined, packetsOut: undefined });
  return JSON.stringify({ ...s, lastUpdateTime: undefined, xfrmErrors: undefined, peers: s.peers?.map(noCounters), tunnels: s.tunnels?.map(noCounters) });
}
