// A peer that still holds an IKE SA with this node while this node holds none: this node lost its
// state (a reboot, a wiped state dir, SAs flushed by hand) and the peer does not know it yet. Left
// alone, the pair stays down until the peer's DPD gives up (dpd.interval + dpd.timeout of dropped
// traffic) — and longer when this node is the side that only responds. Connecting now makes the
// peer replace its stale IKE SA at once: our IKE_AUTH says INITIAL_CONTACT (RFC 7296 §2.4, we hold
// no other state with it), and the peer deletes every other IKE SA with our identity.
//
// Normally the lower address initiates (peers.ts); this is the one case where the other side does.
// The peer's word comes from its IPsecNode status, which is written only when it changes: it is
// believed while the peer is heard from — its lastUpdateTime is recent, or else its node Lease
// (src/api/node-lease.ts lastHeard, the operator's rule) is, read by name for just the peers that
// would be acted on (no agent watches the Leases of all nodes; PeerLeases bounds and caches the
// reads) — and not when its agent is gone (its last words are no evidence of an SA); the condition must hold on two looks `confirmMs` apart (a pair between
// a delete and the peer's own re-initiation looks the same for a moment); and each peer is tried at
// most once per `retryMs`: a first attempt can fail when it races the peer's view of our new
// certificate, and the next one then succeeds.
//
// One look is enough right after a new process's engine started (freshStart): no IKE SA of this
// engine can have come up, shown in the peer's status and gone again in that moment, so the SA
// the peer reports is one with our previous process (a kill -9 and restart: the responder's pairs
// then come back in one IKE_SA_INIT + IKE_AUTH instead of a status interval later). Only when the
// peers already use the IPsecNode spec we published (same endpoint and certificate: a restart with
// the key and certificate on disk); a new one would race their update. Should the peer be
// re-initiating at that very moment, the engine settles the two IKE SAs (resolveDuplicates).
import { lastHeard, type NodeLease } from '../../api/node-lease.js';
import { unlistedPeersUp } from '../../api/peer-listing.js';
import { stableJson } from '../../api/stable-json.js';
import type { IPsecNode, IPsecNodeSpec } from '../../api/types.js';
import type { TunnelStatus } from '../status.js';
import type { PeerLeases } from './node-lease.js';

export interface ReconnectLook {
  readonly self: string;
  /** This agent's peers (mesh peers carry `node`). */
  readonly ours: readonly Pick<TunnelStatus, 'name' | 'node' | 'ikeState' | 'startAction'>[];
  readonly peerNodes: readonly Pick<IPsecNode, 'metadata' | 'status'>[];
  /** Nodes in the mesh, this one included: a large mesh's statuses list only peers not up. */
  readonly meshSize: number;
  readonly nowMs: number;
  /** A peer's node Lease as last read, if any (PeerLeases). */
  readonly lease?: (node: string) => NodeLease | undefined;
}

export interface ReconnectTimes {
  /** Two looks at least this far apart must agree. */
  readonly confirmMs: number;
  readonly retryMs: number;
  /** A status older than this says nothing about the peer's SAs now, unless the peer's Lease is fresh. */
  readonly staleMs: number;
}

/** The peers that report an IKE SA with us while we hold none and do not initiate, by node (not yet judged by age). */
function reporting(l: ReconnectLook): { readonly name: string; readonly node: string; readonly status: NonNullable<ReconnectLook['peerNodes'][number]['status']> }[] {
  const byNode = new Map(l.peerNodes.map((n) => [n.metadata.name, n]));
  const out: { name: string; node: string; status: NonNullable<ReconnectLook['peerNodes'][number]['status']> }[] = [];
  for (const t of l.ours) {
    if (t.node === undefined) continue;
    // We hold an SA, or are negotiating one, or we initiate anyway (startInitiating and keep-up).
    if (t.ikeState !== 'none' && t.ikeState !== 'failed') continue;
    if (t.startAction === 'initiate') continue;
    const st = byNode.get(t.node)?.status;
    if (!st) continue;
    const theirs = st.peers?.find((p) => p.node === l.self);
    const up = theirs ? theirs.state === 'established' || theirs.state === 'rekeying' : unlistedPeersUp(st, l.meshSize);
    if (up) out.push({ name: t.name, node: t.node, status: st });
  }
  return out;
}

/** Heard from recently: the status itself (within staleMs), or its Lease (within the Lease's duration). */
function heardRecently(status: { readonly lastUpdateTime?: string }, lease: NodeLease | undefined, nowMs: number, staleMs: number): boolean {
  const h = lastHeard(status, lease);
  return h !== undefined && nowMs - h.atMs <= (h.source === 'status' ? staleMs : h.boundMs);
}

/** Engine names of the peers that report an IKE SA with us while we hold none and do not initiate. */
export function staleAtPeer(l: ReconnectLook, staleMs: number): string[] {
  return reporting(l).filter((r) => heardRecently(r.status, l.lease?.(r.node), l.nowMs, staleMs)).map((r) => r.name);
}

/** Nodes whose status alone is too old to believe: their Leases decide (read before the look). */
export function leasesWanted(l: ReconnectLook, staleMs: number): string[] {
  return reporting(l).filter((r) => !heardRecently(r.status, undefined, l.nowMs, staleMs)).map((r) => r.node);
}

/**
 * The spec this process publishes is the one already in the cluster (our previous process wrote
 * it): the peers' configs for us, pinned certificate included, need no update before our IKE_AUTH.
 */
export function peersUseOurSpec(inCluster: IPsecNodeSpec | undefined, ours: IPsecNodeSpec | undefined): boolean {
  return inCluster !== undefined && ours !== undefined && stableJson(inCluster) === stableJson(ours);
}

/** Remembers looks between calls; `look()` returns the peers to connect to now. */
export class Reconnector {
  readonly #times: ReconnectTimes;
  /** Since when each peer has been a candidate, without a break. */
  readonly #since = new Map<string, number>();
  readonly #lastTried = new Map<string, number>();
  /** When this process's engine started, until the first look after it. */
  #freshSinceMs: number | undefined;

  constructor(times: ReconnectTimes) { this.#times = times; }

  /**
   * This process's engine started at `atMs`, holding no IKE SA of its own yet, and the peers
   * already use the IPsecNode spec it published: the next look, if less than `confirmMs` later,
   * acts on first sight.
   */
  freshStart(atMs: number): void { this.#freshSinceMs = atMs; }

  /** look(), after reading the Leases of the peers whose status alone is too old (bounded, cached). */
  async lookWithLeases(l: ReconnectLook, leases: PeerLeases | undefined): Promise<string[]> {
    if (!leases) return this.look(l);
    const want = leasesWanted(l, this.#times.staleMs);
    if (want.length > 0) await leases.refresh(want);
    leases.keepOnly(new Set(want));
    return this.look({ ...l, lease: (n) => leases.get(n) });
  }

  look(l: ReconnectLook): string[] {
    const now = l.nowMs;
    const fresh = this.#freshSinceMs !== undefined && now - this.#freshSinceMs < this.#times.confirmMs;
    this.#freshSinceMs = undefined;
    const candidates = new Set(staleAtPeer(l, this.#times.staleMs));
    for (const name of [...this.#since.keys()]) if (!candidates.has(name)) this.#since.delete(name);
    const out: string[] = [];
    for (const name of candidates) {
      const since = this.#since.get(name);
      if (since === undefined) this.#since.set(name, now);
      if (!fresh && (since === undefined || now - since < this.#times.confirmMs)) continue;
      const last = this.#lastTried.get(name);
      if (last !== undefined && now - last < this.#times.retryMs) continue;
      this.#lastTried.set(name, now);
      out.push(name);
    }
    return out;
  }
}
