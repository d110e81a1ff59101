// What `kipsec status` shows, as data (the control socket's `status` answer, `--json` prints it
// as is) and as a table (a pure function of that data). Field names follow the IPsecTunnel
// status (src/api) so cluster and standalone report the same things. Nothing here holds a key.
import type { EspStatusView } from './userspace/status.js';

export type SaStateName = 'none' | 'connecting' | 'established' | 'rekeying' | 'deleting' | 'failed';

export interface ChildStatus {
  readonly name: string;
  readonly state: 'installed' | 'rekeying' | 'adopted';
  readonly suite: string;
  readonly mode?: 'tunnel' | 'transport';
  /** 8 hex digits, as `ip xfrm state` and strongSwan print them. */
  readonly spiIn: string;
  readonly spiOut: string;
  readonly localTs: readonly string[];
  readonly remoteTs: readonly string[];
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly packetsIn: number;
  readonly packetsOut: number;
  readonly encap: boolean;
  readonly installedAt?: string;
  readonly nextRekeyAt?: string;
}

export interface LastError {
  /** The IKE notify that caused it, e.g. NO_PROPOSAL_CHOSEN, AUTHENTICATION_FAILED. */
  readonly notify?: string;
  readonly message: string;
  readonly time: string;
  readonly localProposals?: readonly string[];
  readonly remoteProposals?: readonly string[];
}

export interface TunnelStatus {
  readonly name: string;
  /** Mesh peers: the peer's node name. */
  readonly node?: string;
  readonly local: string;
  readonly remote: string;
  readonly startAction: string;
  readonly ikeState: SaStateName;
  readonly ikeSuite?: string;
  /** Initiator and responder IKE SPIs, 16 hex digits each. */
  readonly ikeSpis?: { readonly initiator: string; readonly responder: string };
  readonly role?: 'initiator' | 'responder';
  readonly natDetected?: boolean;
  readonly remotePort?: number;
  readonly establishedAt?: string;
  /** This agent resumed the IKE SA from a checkpoint after a restart (not negotiated by this process). */
  readonly resumedAt?: string;
  readonly nextRekeyAt?: string;
  readonly lastRekeyAt?: string;
  readonly children: readonly ChildStatus[];
  /** The Child SAs the peer's config asks for (by name): the peer is up when each one is installed. */
  readonly expectedChildren?: readonly string[];
  readonly lastError?: LastError;
}

/** IKE SA up and every Child SA the config asks for installed (adopted ones count: they carry traffic). */
export function peerIsUp(t: Pick<TunnelStatus, 'ikeState' | 'children' | 'expectedChildren'>): boolean {
  if (t.ikeState !== 'established' && t.ikeState !== 'rekeying') return false;
  const have = new Set(t.children.map((c) => c.name));
  return t.expectedChildren ? t.expectedChildren.every((n) => have.has(n)) : have.size > 0;
}

/** Cluster mode: who this node is in the mesh. */
export interface ClusterInfo {
  readonly node: string;
  readonly address: string;
  readonly mesh: string | null;
  /** Why the node takes no part, when it does not ("no IPsecMesh", "nodeSelector does not match"). */
  readonly inactive?: string;
  readonly strict: boolean;
  readonly traffic: string;
  readonly podCIDRs: readonly string[];
  readonly certificate?: { readonly fingerprint: string; readonly notAfter: string };
  readonly peersExpected: number;
  readonly peersUp: number;
  /** Peers the agent cannot set up, with the reason (e.g. the peer has not published its identity). */
  readonly skipped: readonly { readonly node: string; readonly reason: string }[];
}

export interface AgentStatus {
  readonly pid: number;
  readonly startedAt: string;
  readonly datapath: 'kernel' | 'userspace';
  /** Why that data path (--datapath auto: what the probe found; cluster mode: the mesh's ask). */
  readonly datapathReason?: string;
  /** Where the peers come from: the config file (standalone) or "cluster" */
  readonly configFile: string;
  readonly configLoadedAt: string;
  readonly cluster?: ClusterInfo;
  /** What IKE engine drives the tunnels ("kipsec" or why none is available). */
  readonly engine: string;
  readonly ports: { readonly ike: number; readonly natt: number };
  /** What the IKE side turned away: the engine's drops by reason, and datagrams the sockets refused. */
  readonly ike?: IkeCounters;
  /** Userspace data path: the ESP engine's offloads in use, counters and SA drops (src/agent/userspace/status.ts). */
  readonly esp?: EspStatusView;
  readonly tunnels: readonly TunnelStatus[];
}

export interface IkeCounters {
  readonly halfOpen: number;
  readonly cookiesActive: boolean;
  /** The engine's drop counters by reason (src/ike: e.drop), since the agent started. */
  readonly drops: Readonly<Record<string, number>>;
  /** Datagrams refused before the engine: not IKE, too large, ESP-in-UDP without a kernel SA. */
  readonly udp: { readonly received: number; readonly invalid: number; readonly espInUdpDropped: number };
}

/** "integrity 3, malformed 12": the drop reasons, most frequent first. */
export function dropsText(drops: Readonly<Record<string, number>>): string {
  return Object.entries(drops).filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).map(([k, n]) => `${k} ${n}`).join(', ');
}

function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n; let u = -1;
  while (v >= 1024 && u < units.length - 1) { v /= 1024; u++; }
  return `${v.toFixed(1)} ${units[u]}`;
}

function when(iso: string | undefined, nowMs: number): string {
  if (iso === undefined) return '-';
  const t = Date.parse(iso);
  const d = Math.round((t - nowMs) / 1000);
  const rel = Math.abs(d) < 60 ? `${Math.abs(d)}s` : Math.abs(d) < 3600 ? `${Math.round(Math.abs(d) / 60)}m` : `${(Math.abs(d) / 3600).toFixed(1)}h`;
  return `${iso.replace(/\.\d+Z$/, 'Z')} (${d >= 0 ? 'in ' : ''}${rel}${d < 0 ? ' ago' : ''})`;
}

/** The human table: one block per tunnel, one line per Child SA. */
export function formatStatus(s: AgentStatus, nowMs: number): string[] {
  const lines: string[] = [];
  lines.push(`agent pid ${s.pid}, up since ${s.startedAt}, datapath ${s.datapath}${s.datapathReason ? ` (${s.datapathReason})` : ''}, IKE ports ${s.ports.ike}/${s.ports.natt}, engine ${s.engine}`);
  const cl = s.cluster;
  if (cl) {
    lines.push(`node ${cl.node} (${cl.address}), mesh ${cl.mesh ?? '-'}${cl.inactive ? ` — inactive: ${cl.inactive}` : ''}, traffic ${cl.traffic}, strict ${cl.strict ? 'on' : 'off'}, pod CIDRs ${cl.podCIDRs.join(',') || '-'}`);
    if (cl.certificate) lines.push(`identity ${cl.certificate.fingerprint.slice(0, 16)}…, valid until ${cl.certificate.notAfter}`);
    lines.push(`peers ${cl.peersUp}/${cl.peersExpected} up`);
    for (const k of cl.skipped) lines.push(`  skipped ${k.node}: ${k.reason}`);
  } else {
    lines.push(`config ${s.configFile} (loaded ${s.configLoadedAt}), ${s.tunnels.length} tunnel${s.tunnels.length === 1 ? '' : 's'}`);
  }
  if (s.ike) {
    const d = dropsText(s.ike.drops);
    lines.push(`IKE ${s.ike.halfOpen} half-open${s.ike.cookiesActive ? ', COOKIEs demanded' : ''}; dropped ${d || 'none'}; ${s.ike.udp.received} datagrams received, ${s.ike.udp.invalid} not IKE`);
  }
  if (s.esp) {
    const drops = dropsText(Object.fromEntries(Object.entries(s.esp.drops).filter(([k]) => k !== 'dummy')));
    lines.push(`ESP engine: offloads ${s.esp.offloads.join(', ') || 'none'}; SA drops ${drops || 'none'}; ${s.esp.counters['rxDatagrams'] ?? 0} datagrams in, ${s.esp.counters['txDatagrams'] ?? 0} out`);
  }
  for (const t of s.tunnels) {
    lines.push('');
    const role = t.role ? `, ${t.role}` : '';
    const nat = t.natDetected ? `, NAT-T (port ${t.remotePort ?? 4500})` : '';
    lines.push(`${t.name}: ${t.local} <-> ${t.remote}  IKE ${t.ikeState.toUpperCase()}${role}${nat}  [start: ${t.startAction}]`);
    if (t.ikeSuite) lines.push(`  suite      ${t.ikeSuite}`);
    if (t.ikeSpis) lines.push(`  IKE SPIs   ${t.ikeSpis.initiator}_i ${t.ikeSpis.responder}_r`);
    if (t.establishedAt) lines.push(`  established ${when(t.establishedAt, nowMs)}`);
    if (t.resumedAt) lines.push(`  resumed    ${when(t.resumedAt, nowMs)} after an agent restart`);
    if (t.nextRekeyAt) lines.push(`  next rekey ${when(t.nextRekeyAt, nowMs)}`);
    for (const c of t.children) {
      lines.push(`  child ${c.name} ${c.state.toUpperCase()}  ${c.suite}${c.mode === 'transport' ? ' transport' : ''}${c.encap ? ' (ESP-in-UDP)' : ''}`);
      lines.push(`    ${c.localTs.join(',')} === ${c.remoteTs.join(',')}`);
      lines.push(`    in  ${c.spiIn}  ${bytes(c.bytesIn).padStart(10)}  ${String(c.packetsIn).padStart(8)} pkts`);
      lines.push(`    out ${c.spiOut}  ${bytes(c.bytesOut).padStart(10)}  ${String(c.packetsOut).padStart(8)} pkts`);
      if (c.nextRekeyAt) lines.push(`    rekey ${when(c.nextRekeyAt, nowMs)}`);
    }
    if (t.children.length === 0) lines.push('  no Child SA');
    if (t.lastError) {
      const e = t.lastError;
      lines.push(`  last error ${e.time}: ${e.notify ? `${e.notify}: ` : ''}${e.message}`);
      if (e.localProposals) lines.push(`    our proposals:   ${e.localProposals.join(', ') || '(none)'}`);
      if (e.remoteProposals) lines.push(`    peer proposals:  ${e.remoteProposals.join(', ') || '(none)'}`);
    }
  }
  return lines;
}
