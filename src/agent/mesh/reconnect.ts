// A peer that still holds an IKE SA with this node while this node holds none: this node lost its
// state (a reboot, a wiped state dir, SAs flushed by hand) and the peer does not know it yet. Left
// alone, the pair stays down until the peer's DPD gives up (dpd.interval + dpd.timeout of dropped
// traffic) — and longer when this node is the side that only responds. Connecting now makes the
// peer replace its stale IKE SA at once: our IKE_AUTH says INITIAL_CONTACT (RFC 7296 §2.4, we hold
// no other state with it), and the peer deletes every other IKE SA with our identity.
//
// Normally the lower address initiates (peers.ts); this is the one case where the other side does.
// The peer's word comes from its IPsecNode status, so a stale status (an agent that stopped
// writing) is not believed; the condition must hold on two looks `confirmMs` apart (a pair between
// a delete and the peer's own re-initiation looks the same for a moment); and each peer is tried at
// most once per `retryMs`: a first attempt can fail when it races the peer's view of our new
// certificate, and the next one then succeeds.
import type { IPsecNode } from '../../api/types.js';
import type { TunnelStatus } from '../status.js';

export interface ReconnectLook {
  readonly self: string;
  /** This agent's peers (mesh peers carry `node`). */
  readonly ours: readonly Pick<TunnelStatus, 'name' | 'node' | 'ikeState' | 'startAction'>[];
  readonly peerNodes: readonly Pick<IPsecNode, 'metadata' | 'status'>[];
  readonly nowMs: number;
}

export interface ReconnectTimes {
  /** Two looks at least this far apart must agree. */
  readonly confirmMs: number;
  readonly retryMs: number;
  /** A status older than this says nothing about the peer's SAs now. */
  readonly staleMs: number;
}

/** Engine names of the peers that report an IKE SA with us while we hold none and do not initiate. */
export function staleAtPeer(l: ReconnectLook, staleMs: number): string[] {
  const byNode = new Map(l.peerNodes.map((n) => [n.metadata.name, n]));
  const out: string[] = [];
  for (const t of l.ours) {
    if (t.node === undefined) continue;
    // We hold an SA, or are negotiating one, or we initiate anyway (startInitiating and keep-up).
    if (t.ikeState !== 'none' && t.ikeState !== 'failed') continue;
    if (t.startAction === 'initiate') continue;
    const st = byNode.get(t.node)?.status;
    const updated = Date.parse(st?.lastUpdateTime ?? '');
    if (!Number.isFinite(updated) || l.nowMs - updated > staleMs) continue;
    const theirs = st?.peers?.find((p) => p.node === l.self);
    if (theirs?.state === 'established' || theirs?.state === 'rekeying') out.push(t.name);
  }
  return out;
}

/** Remembers looks between calls; `look()` returns the peers to connect to now. */
export class Reconnector {
  readonly #times: ReconnectTimes;
  /** Since when each peer has been a candidate, without a break. */
  readonly #since = new Map<string, number>();
  readonly #lastTried = new Map<string, number>();

  constructor(times: ReconnectTimes) { this.#times = times; }

  look(l: ReconnectLook): string[] {
    const now = l.nowMs;
    const candidates = new Set(staleAtPeer(l, this.#times.staleMs));
    for (const name of [...this.#since.keys()]) if (!candidates.has(name)) this.#since.delete(name);
    const out: string[] = [];
    for (const name of candidates) {
      const since = this.#since.get(name);
      if (since === undefined) { this.#since.set(name, now); continue; }
      if (now - since < this.#times.confirmMs) continue;
      const last = this.#lastTried.get(name);
      if (last !== undefined && now - last < this.#times.retryMs) continue;
      this.#lastTried.set(name, now);
      out.push(name);
    }
    return out;
  }
}
