// IKE SA checkpoints: what a restarted daemon needs to resume an IKE SA instead of negotiating a
// new one (DESIGN.md §9: a restart drops no traffic).
//
// Why resume rather than re-establish: as IKE_AUTH responder the peer (strongSwan) sends on the
// new Child SA the moment it has installed it, before our IKE_AUTH response processing can install
// the inbound state, so packets in that window are lost; installing the inbound state before the
// response would accept ESP under keys from a peer not yet authenticated. A resumed IKE SA keeps
// the Child SAs in the kernel as they are, answers the peer's retransmissions from the response
// cache, and its next rekey replaces them make-before-break as usual (strongSwan's HA plugin syncs
// the same state to a standby for the same reason).
//
// This module takes the checkpoint of a live IKE SA (snapshotSa) and is the one import for the
// rest: the model is in checkpoint-types.ts, the bytes in checkpoint-encode.ts and
// checkpoint-decode.ts, resuming from a checkpoint in restore.ts.
import type { ChildCheckpoint, IkeSaCheckpoint, ReauthCheckpoint, TaskCheckpoint } from './checkpoint-types.js';
import type { ChildCollision, ChildSa, IkeSa, Task } from './ike-sa.js';

export * from './checkpoint-types.js';
export { encodeCheckpoint } from './checkpoint-encode.js';
export { decodeCheckpoint } from './checkpoint-decode.js';

function ourSpiOf(sa: Pick<IkeSa, 'role' | 'spiI' | 'spiR'>): bigint { return sa.role === 'initiator' ? sa.spiI : sa.spiR; }

/** `collision`: recorded on our rekey of `c` in flight (ike-sa.ts ChildCollision). */
function childCheckpoint(c: ChildSa, collision: ChildCollision | null = null): ChildCheckpoint {
  const st = c.state;
  return {
    name: c.runtime.config.name, state: st.tag, successorSpi: st.tag === 'rekeyed' && st.successor ? st.successor.ref.inboundSpi : null,
    inboundSpi: c.ref.inboundSpi, outboundSpi: c.ref.outboundSpi, local: c.ref.local, remote: c.ref.remote,
    mode: c.mode, suite: c.suiteText, localTs: c.localTs, remoteTs: c.remoteTs, encap: c.encap, ni: c.ni, nr: c.nr,
    installedAtMs: c.installedAtMs, rekeyAtMs: c.rekeyAtMs, expiresAtMs: c.expiresAtMs,
    outboundPending: c.outbound.tag === 'pending', pendingOutbound: c.outbound.tag === 'pending' ? c.outbound.state : null,
    collision: collision ? { peer: collision.peerSa.ref.inboundSpi, nonces: collision.nonces } : null,
  };
}

function taskCheckpoint(t: Task): TaskCheckpoint | null {
  switch (t.kind) {
    case 'ike-init': case 'ike-intermediate': case 'ike-auth': return null; // only before the SA is established
    // The run (keys of a new SA still open) is not kept, and neither is its request: resent after
    // a restart, it would let the peer finish an SA we no longer can (snapshotSa rewinds its Message ID).
    case 'ike-followup': return null;
    case 'child-create': return { kind: t.kind, child: t.child.config.name, group: t.group ?? null };
    case 'child-rekey': return { kind: t.kind, old: childCheckpoint(t.old), group: t.group ?? null };
    case 'child-delete': return { kind: t.kind, child: childCheckpoint(t.child), reason: t.reason };
    case 'ike-delete': return { kind: t.kind, reason: t.reason };
    case 'ike-rekey': return { kind: t.kind, group: t.group ?? null };
    case 'dpd': return { kind: t.kind };
  }
}

/** The checkpoint of `sa`, or null when it is not in a state worth resuming (half-open, deleting, dead). */
export function snapshotSa(sa: IkeSa): IkeSaCheckpoint | null {
  const st = sa.state;
  if ((st.tag !== 'established' && st.tag !== 'rekeyed') || st.keyed === null) return null;
  const o = sa.outstanding;
  const outstandingTask = o ? taskCheckpoint(o.task) : null;
  const childOffer = o?.scratch.kind === 'child' ? o.scratch.offer : null;
  const rekey = o?.scratch.kind === 'ike-rekey' ? o.scratch : null;
  const rekeyOffer = rekey?.offer ?? null;
  const k = st.keyed.keys;
  return {
    peer: sa.peer.config.name, role: sa.role, spiI: sa.spiI, spiR: sa.spiR,
    state: st.tag, successorSpi: st.tag === 'rekeyed' && st.successor ? ourSpiOf(st.successor) : null,
    local: sa.local, remote: sa.remote, natLocal: sa.natLocal, natRemote: sa.natRemote, fragmentation: sa.fragmentation, peerHashes: sa.peerHashes,
    suite: k.suite, suiteText: k.suiteText, dhGroup: k.dhGroup, selected: st.keyed.selected,
    skD: k.skD, skAi: k.sk.skAi, skAr: k.sk.skAr, skEi: k.sk.skEi, skEr: k.sk.skEr,
    remoteId: st.up?.remoteId ?? null, nextRequestId: o?.task.kind === 'ike-followup' ? o.messageId : sa.nextRequestId, expectedRequestId: sa.expectedRequestId, lastResponse: sa.lastResponse,
    outstanding: o && outstandingTask ? {
      task: outstandingTask, messageId: o.messageId, exchangeType: o.exchangeType, datagrams: o.datagrams, firstSentMs: o.firstSentMs ?? null,
      child: childOffer === null ? null : {
        spi: childOffer.spi, ni: childOffer.ni, share: childOffer.share ? { group: childOffer.share.group, privateValue: childOffer.share.exportPrivate() } : null,
        proposals: childOffer.proposals, mode: childOffer.mode, localTs: childOffer.localTs, remoteTs: childOffer.remoteTs,
      },
      ikeRekey: rekeyOffer === null ? null : { spi: rekeyOffer.spi, ni: rekeyOffer.ni, share: { group: rekeyOffer.share.group, privateValue: rekeyOffer.share.exportPrivate() } },
    } : null,
    pending: sa.pending.map(taskCheckpoint).filter((t): t is TaskCheckpoint => t !== null),
    createdAtMs: sa.createdAtMs, establishedAtMs: st.up?.establishedAtMs ?? null, rekeyAtMs: st.up?.rekeyAtMs ?? null,
    // A collision is kept with the request it was recorded on (an IKE_FOLLOWUP_KE run is not kept, see taskCheckpoint).
    children: [...sa.children.values()].filter((c) => c.state.tag !== 'deleted').map((c) => childCheckpoint(c, o?.task.kind === 'child-rekey' && o.task.old === c && o.scratch.kind === 'child' ? o.scratch.collision : null)),
    lingering: [...sa.lingering?.values() ?? []].map(({ ref, untilMs }) => ({ name: ref.child, inboundSpi: ref.inboundSpi, outboundSpi: ref.outboundSpi, local: ref.local, remote: ref.remote, untilMs })),
    reauth: reauthCheckpoint(sa),
    ikeCollision: rekey?.collision ? { peer: ourSpiOf(rekey.collision.peerSa), nonces: rekey.collision.nonces } : null,
  };
}

function reauthCheckpoint(sa: IkeSa): ReauthCheckpoint | null {
  const link = sa.reauth;
  // A redundant SA (reauth.ts) is not kept as such: resumed, it is a plain IKE SA that its
  // initiator deletes, or the simultaneous-start rule does.
  if (link === null || link.tag === 'redundant') return null;
  const other = link.tag === 'replacing' ? link.old : link.successor;
  return { tag: link.tag, spi: ourSpiOf(other), ours: link.ours, failed: link.tag === 'replacing' ? [...link.failed] : [] };
}
