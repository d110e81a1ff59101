// The driver of the IKE SA rekey steps (steps/ike-rekey.ts, steps/ike-rekey-responder.ts): it
// allocates the new IKE SA's SPI before a step runs and carries out the step's effects in order
// against the engine. task-queue.ts sends our request, task-responses.ts routes its answer and the
// answers to our IKE_FOLLOWUP_KE here; responder.ts routes the peer's requests and its Delete of
// an IKE SA here. The old IKE SA hands its Child SAs to the successor in adoptSuccessor.
import type { IkeMessage } from '../codec/message.js';
import type { IkePayload } from '../codec/payload.js';
import { notify } from '../codec/payloads/notify.js';
import { NotifyError } from '../constants.js';
import { acceptIkeRekeyRequest, consumeIkeRekeyRequest, peerFollowupDone } from '../steps/ike-rekey-responder.js';
import { consumeIkeRekeyResponse, ikeFollowupSettled, keyed, peerDeletedRekeyingIke, type IkeRekeyEffect, type IkeRekeyStep } from '../steps/ike-rekey.js';
import { onChildFollowup } from './child-tasks.js';
import type { EngineHost } from './host.js';
import { REKEYED_SA_TIMEOUT_MS } from './defaults.js';
import { ikeSpisText, rekeyedState, upKeyedOf, type IkeSa, type Outstanding, type Task } from './ike-sa.js';
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
  old.state = rekeyedState(old, successor);
  e.emit({ type: 'ike-rekeyed', peer: old.peer.config.name, oldIkeSpis: ikeSpisText(old), ikeSpis: ikeSpisText(successor), suite: upKeyedOf(successor)?.keys.suiteText ?? '' });
  scheduleIkeTimers(e, successor);
  e.persistPeer(successor.peer.config.name);
  if (successor.pending.length > 0) void e.enqueue(successor, () => next(e, successor));
}

/** Initiator: the answer to our CREATE_CHILD_SA rekeying `sa`; `o.scratch` holds what we offered. */
export function onIkeRekey(e: EngineHost, sa: IkeSa, m: IkeMessage, o: Outstanding, task: Extract<Task, { kind: 'ike-rekey' }>): void {
  const offer = o.scratch.kind === 'ike-rekey' ? o.scratch.offer : null;
  if (offer === null || !keyed(sa)) return; // task-queue.ts sends every IKE rekey with its offer, on a keyed SA
  // The collision is this exchange's to settle (the request it was recorded on is answered now).
  const collision = o.scratch.kind === 'ike-rekey' ? o.scratch.collision : null;
  const run = sa.followup;
  const peerRun = run?.for === 'ike' && run.fresh.role === 'responder' ? { nonces: [run.keys.ni, run.keys.nr] } : null;
  perform(e, sa, consumeIkeRekeyResponse(e, sa, { tag: 'sent', offer, retried: task.group !== undefined, collision }, m, peerRun), {});
}

/** The answer to our IKE_FOLLOWUP_KE (RFC 9370 §2.2.2): the next one, or the new SA (IKE or Child) gets its keys. */
export async function onFollowup(e: EngineHost, sa: IkeSa, m: IkeMessage): Promise<void> {
  const r = onFollowupResponse(e, sa, m);
  if (r === null) { e.drop('unexpected-followup-response'); return; }
  if (r.kind === 'continue') { sa.pending.unshift({ kind: 'ike-followup' }); return; }
  // A Child SA's run (child-tasks.ts): installed, or refused like its CREATE_CHILD_SA could be.
  // The run lives on an IKE SA that is up (task-queue.ts sends IKE_FOLLOWUP_KE only there).
  if (r.kind === 'child' && r.pending.role === 'initiator' && keyed(sa)) { await onChildFollowup(e, sa, r.pending, { secrets: r.secrets }, m); return; }
  if (r.kind === 'failed' && r.pending?.role === 'initiator' && keyed(sa)) { await onChildFollowup(e, sa, r.pending, { failure: r.failure }, m); return; }
  if (r.kind === 'child') return;
  perform(e, sa, ikeFollowupSettled(sa, r.kind === 'failed' ? { failure: r.failure } : { fresh: r.fresh }), {});
}

/** Responder: the peer's CREATE_CHILD_SA rekeying `sa`. */
export function answerIkeRekey(e: EngineHost, sa: IkeSa, m: IkeMessage, respond: (payloads: readonly IkePayload[]) => void): void {
  if (!keyed(sa)) { respond([notify(NotifyError.TEMPORARY_FAILURE)]); return; }
  const step = consumeIkeRekeyRequest(e, sa, m);
  if (step.next.tag !== 'chosen') { perform(e, sa, step, { respond }); return; }
  perform(e, sa, acceptIkeRekeyRequest(e, sa, step.next, e.newIkeSpi()), { respond });
}

/** Responder: the peer's last IKE_FOLLOWUP_KE for rekeying `old` was answered; `fresh` has its keys (the answer follows). */
export function answerIkeFollowupDone(e: EngineHost, old: IkeSa, fresh: IkeSa): void {
  perform(e, old, peerFollowupDone(old, fresh), {});
}

/** Either role: the peer's INFORMATIONAL deletes `sa` (see steps/ike-rekey.ts peerDeletedRekeyingIke). */
export function onPeerDeletedIke(e: EngineHost, sa: IkeSa): void {
  perform(e, sa, peerDeletedRekeyingIke(sa), {});
}

/** Carry out a step's effects in order (none awaits: an IKE rekey changes no kernel state). */
function perform(e: EngineHost, sa: IkeSa, step: IkeRekeyStep, io: { readonly respond?: (payloads: readonly IkePayload[]) => void }): void {
  for (const f of step.effects) apply(e, sa, f, io);
}

function apply(e: EngineHost, sa: IkeSa, f: IkeRekeyEffect, io: { readonly respond?: (payloads: readonly IkePayload[]) => void }): void {
  switch (f.kind) {
    case 'send': throw new Error('an IKE rekey request outside task-queue.ts');
    case 'respond':
      if (!io.respond) throw new Error('an IKE rekey answer outside responder.ts');
      io.respond(f.payloads);
      return;
    case 'register': e.register(f.sa); return;
    case 'adopt': adoptSuccessor(e, f.old, f.successor); return;
    case 'await-delete': awaitOldIkeDelete(e, f.sa); return;
    case 'delete': queueTask(e, f.sa, { kind: 'ike-delete', reason: f.reason }); return;
    case 'set-state': f.sa.state = f.state; return;
    // On our IKE rekey request in flight (ike-rekey-responder.ts records a collision only then).
    case 'collision': { const s = f.sa.outstanding?.scratch; if (s?.kind === 'ike-rekey') s.collision = { peerSa: f.peerSa, nonces: f.nonces }; return; }
    case 'forget-collision': { const s = f.sa.outstanding?.scratch; if (s?.kind === 'ike-rekey') s.collision = null; return; }
    case 'retry-now': sa.pending.unshift({ kind: 'ike-rekey', group: f.group }); return;
    case 'retry-later':
      sa.timers.rekey?.cancel();
      sa.timers.rekey = e.clock.setTimer(f.afterMs, () => { void e.enqueue(sa, () => queueTask(e, sa, { kind: 'ike-rekey' })); });
      return;
    case 'drop-peer-run': abandonFollowup(sa); return;
    case 'followup': {
      beginFollowup(e, sa, f.fresh, f.selected, f.keys, f.state);
      if (f.fresh.role === 'initiator') { sa.pending.unshift({ kind: 'ike-followup' }); return; }
      // An initiator that never follows up (it gave up, or restarted) does not hold the run forever.
      const fresh = f.fresh;
      e.clock.setTimer(REKEYED_SA_TIMEOUT_MS, () => { void e.enqueue(sa, () => { if (sa.followup?.for === 'ike' && sa.followup.fresh === fresh) abandonFollowup(sa); }); });
      return;
    }
    case 'error': e.failure(sa.peer, f.failure); return;
  }
}

/** Responder side of an IKE rekey: the old SA waits for the peer's Delete, but not forever. */
export function awaitOldIkeDelete(e: EngineHost, old: IkeSa): void {
  old.timers.rekeyed = e.clock.setTimer(REKEYED_SA_TIMEOUT_MS, () => { void e.enqueue(old, () => { if (old.state.tag === 'rekeyed') retire(e, old); }); });
}
