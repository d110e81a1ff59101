// Our IKE SA rekey's answers (RFC 7296 §2.8, RFC 9370 §2.2.2): the CREATE_CHILD_SA response, with
// a collision with the peer's rekey (§2.8.1) settled by nonces, each IKE_FOLLOWUP_KE response, and
// the old IKE SA handing its Child SAs to the successor.
import type { IkeMessage } from '../codec/message.js';
import { ourRekeyLoses } from '../exchanges/collision.js';
import { completeIkeRekey } from '../exchanges/ike-rekey.js';
import { keRetry } from '../exchanges/invalid-ke.js';
import { onChildFollowup } from './child-tasks.js';
import type { EngineHost } from './host.js';
import { REKEY_RETRY_MS, REKEYED_SA_TIMEOUT_MS } from './defaults.js';
import { ikeSpisText, type IkeSa, type Outstanding, type Task } from './ike-sa.js';
import { migrateChildren, scheduleIkeTimers } from './lifecycle.js';
import { moveReauthLink } from './reauth.js';
import { abandonFollowup, beginFollowup, onFollowupResponse } from './followup.js';
import { next, queueTask } from './task-queue.js';
import { retire } from './task-retransmit.js';

/** The old IKE SA hands everything to `successor` (after our or the peer's IKE rekey). */
export function adoptSuccessor(e: EngineHost, old: IkeSa, successor: IkeSa): void {
  migrateChildren(e, old, successor);
  moveReauthLink(old, successor);
  for (const t of Object.values(old.timers)) t?.cancel();
  old.timers = { rekey: null, dpd: null, halfOpen: null, rekeyed: null };
  old.state = { tag: 'rekeyed', successor };
  e.emit({ type: 'ike-rekeyed', peer: old.peer.config.name, oldIkeSpis: ikeSpisText(old), ikeSpis: ikeSpisText(successor), suite: successor.keys?.suiteText ?? '' });
  scheduleIkeTimers(e, successor);
  e.persistPeer(successor.peer.config.name);
  if (successor.pending.length > 0) void e.enqueue(successor, () => next(e, successor));
}

export async function onIkeRekey(e: EngineHost, sa: IkeSa, m: IkeMessage, o: Outstanding, task: Extract<Task, { kind: 'ike-rekey' }>): Promise<void> {
  const scratch = o.ikeRekey!;
  const r = completeIkeRekey(e, sa, scratch, m);
  const collision = sa.ikeCollision;
  sa.ikeCollision = null;
  if (!r.ok) {
    // Ours failed, the peer's went through: its SA is the successor, and the peer deletes the old one.
    if (collision) { adoptSuccessor(e, sa, collision.peerSa); awaitOldIkeDelete(e, sa); return; }
    let failure = r.failure;
    if (r.retryGroup !== undefined) {
      // §1.3.2: repeat the rekey at once with the group the peer named, once (invalid-ke.ts).
      const k = keRetry({ proposals: sa.peer.ikeProposals, sent: scratch.share.group, retried: task.group !== undefined, wanted: r.retryGroup, what: 'the IKE SA rekey' });
      if (k.kind === 'retry') { sa.pending.unshift({ kind: 'ike-rekey', group: k.group }); return; }
      failure = k.failure;
    }
    // Like any refused rekey: the IKE SA still works, try again later from its own group. Should
    // two rekeys with IKE_FOLLOWUP_KE refuse each other (each met an IKE_FOLLOWUP_KE run,
    // ike-rekey.ts), the SA's original initiator retries first, so they do not meet again.
    if (!r.temporary) e.failure(sa.peer, failure);
    const wait = r.temporary && sa.selected?.additionalKeyExchanges && sa.role === 'responder' ? 2 * REKEY_RETRY_MS : REKEY_RETRY_MS;
    if (sa.state.tag === 'established') sa.timers.rekey = e.clock.setTimer(wait, () => { void e.enqueue(sa, () => queueTask(e, sa, { kind: 'ike-rekey' })); });
    return;
  }
  const fresh = r.sa;
  if (r.followup) {
    // The peer's rekey got in while ours was open: with IKE_FOLLOWUP_KE to come, ours yields.
    if (collision) { for (const x of r.followup.secrets) x.wipe(); adoptSuccessor(e, sa, collision.peerSa); awaitOldIkeDelete(e, sa); return; }
    // The peer's chain ended here first (the answer to ours came late): its IKE SA took over.
    if (sa.state.tag !== 'established') { for (const x of r.followup.secrets) x.wipe(); return; }
    // RFC 9370 §2.2.2 with §2.8.1: we answered the peer's rekey, whose IKE_FOLLOWUP_KE we wait
    // for. Both CREATE_CHILD_SA exchanges are done, so their four nonces settle it before any
    // IKE_FOLLOWUP_KE, as strongSwan does: the loser abandons its chain (neither side has its new
    // IKE SA registered), the winner drops its run for the loser's and goes on with its own.
    const peer = sa.followup?.for === 'ike' && sa.followup.fresh.role === 'responder' ? sa.followup.fresh : null;
    if (peer && ourRekeyLoses([scratch.ni, fresh.nr], [peer.ni, peer.nr])) {
      for (const x of r.followup.secrets) x.wipe();
      // Should the peer's chain fail, rekey again later (adoptSuccessor cancels this when it ends).
      sa.timers.rekey?.cancel();
      sa.timers.rekey = e.clock.setTimer(REKEY_RETRY_MS, () => { void e.enqueue(sa, () => queueTask(e, sa, { kind: 'ike-rekey' })); });
      return;
    }
    beginFollowup(e, sa, fresh, r.followup);
    sa.pending.unshift({ kind: 'ike-followup' });
    return;
  }
  e.register(fresh);
  if (collision && ourRekeyLoses([scratch.ni, fresh.nr], collision.nonces)) {
    adoptSuccessor(e, sa, collision.peerSa);
    awaitOldIkeDelete(e, sa); // the winner deletes the old IKE SA
    fresh.state = { tag: 'rekeyed', successor: collision.peerSa };
    queueTask(e, fresh, { kind: 'ike-delete', reason: 'redundant' });
    return;
  }
  adoptSuccessor(e, sa, fresh);
  if (collision) {
    // We won (§2.8.1): the peer's new IKE SA is redundant and the peer deletes it. It is superseded,
    // not live: its Delete retires it quietly (no ike-down), and it goes on its own if none comes.
    collision.peerSa.state = { tag: 'rekeyed', successor: fresh };
    awaitOldIkeDelete(e, collision.peerSa);
  }
  queueTask(e, sa, { kind: 'ike-delete', reason: 'rekeyed' });
}

/** The answer to our IKE_FOLLOWUP_KE (RFC 9370 §2.2.2): the next one, or the new IKE SA takes over. */
export async function onFollowup(e: EngineHost, sa: IkeSa, m: IkeMessage): Promise<void> {
  const r = onFollowupResponse(e, sa, m);
  if (r === null) { e.drop('unexpected-followup-response'); return; }
  if (r.kind === 'continue') { sa.pending.unshift({ kind: 'ike-followup' }); return; }
  // A Child SA's run (child-tasks.ts): installed, or refused like its CREATE_CHILD_SA could be.
  if (r.kind === 'child' && r.pending.role === 'initiator') { await onChildFollowup(e, sa, r.pending, { secrets: r.secrets }, m); return; }
  if (r.kind === 'failed' && r.pending?.role === 'initiator') { await onChildFollowup(e, sa, r.pending, { failure: r.failure }, m); return; }
  if (r.kind === 'child') return;
  if (r.kind === 'failed') {
    // Like any refused rekey: the IKE SA still works, try again later.
    abandonFollowup(sa);
    e.failure(sa.peer, r.failure);
    if (sa.state.tag === 'established') sa.timers.rekey = e.clock.setTimer(REKEY_RETRY_MS, () => { void e.enqueue(sa, () => queueTask(e, sa, { kind: 'ike-rekey' })); });
    return;
  }
  e.register(r.fresh);
  adoptSuccessor(e, sa, r.fresh);
  queueTask(e, sa, { kind: 'ike-delete', reason: 'rekeyed' });
}

/** Responder side of an IKE rekey: the old SA waits for the peer's Delete, but not forever. */
export function awaitOldIkeDelete(e: EngineHost, old: IkeSa): void {
  old.timers.rekeyed = e.clock.setTimer(REKEYED_SA_TIMEOUT_MS, () => { void e.enqueue(old, () => { if (old.state.tag === 'rekeyed') retire(e, old); }); });
}
