// The seam between where peers come from and what the agent does with them. The standalone
// config file (file-source.ts) and the Kubernetes watches of cluster mode (mesh/source.ts) are two
// sources of the same thing: a complete snapshot of the desired peers. planPeers() turns the
// running set and a new snapshot into what to add, update, renegotiate and remove — a pure
// function, so every rule has a unit test — and the applier (applier.ts) carries it out.
//
// `synced`: a source that has not yet seen its whole input (a Kubernetes list still running, the
// apiserver unreachable at start) says so, and nothing is removed on its word: a peer missing from
// a partial snapshot is not a peer that went away.
import type { PeerConfig } from '../ike/engine.js';
import type { PolicySpec } from '../xfrm/index.js';

export interface DesiredPeer {
  /** The engine's peer name: the tunnel name, or "mesh/<node>". */
  readonly name: string;
  readonly config: PeerConfig;
  /**
   * Changes when anything about the peer changes. A change of `sessionDigest` alone (credentials
   * of the peer, trust anchors, proposals, timers) updates the engine's config and keeps the SAs:
   * they follow from their next rekey or handshake.
   */
  readonly digest: string;
  /**
   * Changes when the SAs themselves must change: addresses, traffic selectors, modes. The peer's
   * SAs are then deleted and negotiated again.
   */
  readonly sessionDigest: string;
  /** Routes to the remote subnets (spec.installRoutes). */
  readonly installRoutes: boolean;
  /** As written, for error messages that show both proposal lists. */
  readonly ikeProposalText: readonly string[];
  readonly espProposalText: readonly string[];
  /**
   * Strict mode: block policies that drop this peer's traffic whenever no SA carries it, installed
   * before the engine knows the peer and removed after its SAs (strict.ts).
   */
  readonly blocks: readonly PolicySpec[];
  /**
   * The pair must always be up (a mesh): when the peer deletes the IKE SA — it renegotiates after a
   * change of its own, or restarted without state — the side that initiates connects again.
   */
  readonly keepUp?: boolean;
  /** What status shows as the kind of peer ("tunnel", or "mesh" with the node name). */
  readonly kind: { readonly type: 'tunnel' } | { readonly type: 'mesh'; readonly node: string };
}

export interface PeerSnapshot {
  readonly synced: boolean;
  readonly peers: readonly DesiredPeer[];
}

export interface RunningPeer {
  readonly digest: string;
  readonly sessionDigest: string;
}

export interface PeerPlan {
  readonly add: readonly DesiredPeer[];
  /** Same SAs, new config (engine.addPeer replaces it; SAs follow from their next rekey). */
  readonly update: readonly DesiredPeer[];
  /** SAs must be negotiated again: remove, then add. */
  readonly renegotiate: readonly DesiredPeer[];
  readonly remove: readonly string[];
  readonly unchanged: readonly string[];
}

/** What to do to get from `running` to `next`. Without `synced`, nothing is removed. */
export function planPeers(running: ReadonlyMap<string, RunningPeer>, next: PeerSnapshot): PeerPlan {
  const add: DesiredPeer[] = []; const update: DesiredPeer[] = []; const renegotiate: DesiredPeer[] = []; const unchanged: string[] = [];
  const seen = new Set<string>();
  for (const p of next.peers) {
    if (seen.has(p.name)) throw new Error(`peer snapshot names "${p.name}" twice`);
    seen.add(p.name);
    const r = running.get(p.name);
    if (!r) add.push(p);
    else if (r.sessionDigest !== p.sessionDigest) renegotiate.push(p);
    else if (r.digest !== p.digest) update.push(p);
    else unchanged.push(p.name);
  }
  const remove = next.synced ? [...running.keys()].filter((n) => !seen.has(n)) : [];
  return { add, update, renegotiate, remove, unchanged };
}
