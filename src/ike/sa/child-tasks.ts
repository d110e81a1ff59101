// The driver of the Child SA steps (steps/child.ts, steps/child-responder.ts): it allocates SPIs
// before a step runs, carries out the step's effects in order against the engine and the kernel,
// and hands an install's result to childInstalled. tasks.ts starts our requests and routes their
// answers (and the answers to our Deletes) here; responder.ts routes the peer's CREATE_CHILD_SA
// requests and the Child SAs its Deletes name here.
import type { IkeMessage } from '../codec/message.js';
import type { IkePayload } from '../codec/payload.js';
import type { SecretBytes } from '../../common/secret.js';
import { acceptChildAfterFollowup, acceptChildRequest, consumeChildRequest } from '../steps/child-responder.js';
import { abandon, childDeleteAnswered, childFollowupSettled, childInstalled, consumeChildResponse, peerDeletedChild, peerSwitchDue, requestChild, type ChildEffect, type KernelEffect, type ChildExchange, type ChildRequest, type ChildTask, type ChildTimer, type Step } from '../steps/child.js';
import type { IkeFailure, KernelChildSa } from '../ports.js';
import { abandonFollowup, beginChildFollowup } from './followup.js';
import type { EngineHost } from './host.js';
import { REKEYED_SA_TIMEOUT_MS } from './defaults.js';
import type { ChildCollision, ChildFollowupPending, ChildRuntime, ChildSa, IkeSa, Outstanding, Task } from './ike-sa.js';
import type { KeyedIkeSa } from './ike-keys.js';
import { activateOutbound, armReauthOutboundHold, emitChildUp, installChild, removeChild, reqidStillUsed } from './lifecycle.js';
import { noteReauthChildFailed } from './reauth.js';
import { childIkeView } from './views.js';

export function releaseSpi(e: EngineHost, sa: IkeSa, spi: number | undefined): void {
  if (spi === undefined) return;
  void e.track(e.kernel.releaseSpi({ local: sa.local.address, remote: sa.remote.address, spi }));
}

/** Where a step's messages go: our request (tasks.ts) or the answer to the peer's (responder.ts). */
export interface ChildChannel {
  readonly send?: (payloads: readonly IkePayload[], step: Step) => void;
  readonly respond?: (payloads: readonly IkePayload[]) => void;
}

function allocSpi(e: EngineHost, sa: IkeSa, child: ChildRuntime): Promise<number> {
  return e.kernel.allocSpi({ local: sa.local.address, remote: sa.remote.address, reqid: child.reqid });
}

/** Initiator: allocate our inbound SPI, build the request, send it (tasks.ts checked the task still applies). */
export async function startChild(e: EngineHost, sa: IkeSa, req: ChildRequest, send: NonNullable<ChildChannel['send']>): Promise<void> {
  const spi = await allocSpi(e, sa, req.tag === 'create' ? req.runtime : req.old.runtime);
  await perform(e, sa, requestChild(e, req, spi), { send });
}

/** Initiator: the answer to our request for `task`; `o.scratch` holds what we offered. */
export async function onChildResponse(e: EngineHost, sa: KeyedIkeSa, m: IkeMessage, o: Outstanding, task: ChildTask): Promise<void> {
  if (o.scratch.kind !== 'child') return; // task-queue.ts sends every Child SA request with its offer
  const offer = o.scratch.offer;
  const retried = task.group !== undefined;
  let s: Extract<ChildExchange, { tag: 'create-sent' | 'rekey-sent' }>;
  if (task.kind === 'child-create') s = { tag: 'create-sent', runtime: task.child, offer, retried };
  else {
    // The collision is this exchange's to settle (recorded on the request now answered).
    s = { tag: 'rekey-sent', old: task.old, offer, retried, collision: o.scratch.collision };
  }
  const peer = task.kind === 'child-rekey' ? peerRekeyRun(sa, task.old) : null;
  await perform(e, sa, consumeChildResponse(e, childIkeView(sa), s, m, peer && { nonces: [peer.choice.ni, peer.nr] }), {});
}

/**
 * Our rekey of `child` in flight, which records a collision (§2.8.1): its CREATE_CHILD_SA request,
 * or our IKE_FOLLOWUP_KE run that followed it; null when none is.
 */
export function rekeyInFlight(sa: IkeSa, child: ChildSa): { collision: ChildCollision | null } | null {
  const o = sa.outstanding;
  if (o?.task.kind === 'child-rekey' && o.task.old === child && o.scratch.kind === 'child') return o.scratch;
  const run = sa.followup;
  if (run?.for === 'child' && run.pending.role === 'initiator' && run.pending.sent.tag === 'rekey-sent' && run.pending.sent.old === child) return run.pending.sent;
  return null;
}

/** The peer's rekey of `old` we answered, whose IKE_FOLLOWUP_KE we wait for (RFC 9370 §2.2.2). */
function peerRekeyRun(sa: IkeSa, old: ChildSa): Extract<ChildFollowupPending, { role: 'responder' }> | null {
  const run = sa.followup;
  return run?.for === 'child' && run.pending.role === 'responder' && run.pending.rekey?.old === old ? run.pending : null;
}

/** Responder: a CREATE_CHILD_SA request that is not an IKE SA rekey. */
export async function answerChildRequest(e: EngineHost, sa: KeyedIkeSa, m: IkeMessage, respond: (payloads: readonly IkePayload[]) => void): Promise<void> {
  const step = consumeChildRequest(e, childIkeView(sa), m);
  if (step.next.tag === 'done') { await perform(e, sa, step, { respond }); return; }
  const chosen = step.next;
  const spi = await allocSpi(e, sa, chosen.choice.runtime);
  await perform(e, sa, acceptChildRequest(e, childIkeView(sa), chosen, spi), { respond });
}

/** Initiator: our IKE_FOLLOWUP_KE run for a Child SA ended (`m`: the last response). */
export async function onChildFollowup(e: EngineHost, sa: KeyedIkeSa, p: Extract<ChildFollowupPending, { role: 'initiator' }>, r: { readonly secrets: readonly SecretBytes[] } | { readonly failure: IkeFailure }, m: IkeMessage): Promise<void> {
  // A plain rekey of the same SA the peer made meanwhile (§2.8.1) is this exchange's to settle too:
  // it was recorded on p.sent (rekeyInFlight).
  await perform(e, sa, childFollowupSettled(e, childIkeView(sa), p, r, m), {});
}

/** Responder: the peer's last IKE_FOLLOWUP_KE for a Child SA was answered (`reply`, sent once the kernel has the SA). */
export async function answerChildFollowup(e: EngineHost, sa: KeyedIkeSa, p: Extract<ChildFollowupPending, { role: 'responder' }>, secrets: readonly SecretBytes[], reply: readonly IkePayload[], respond: (payloads: readonly IkePayload[]) => void): Promise<void> {
  await perform(e, sa, acceptChildAfterFollowup(e, childIkeView(sa), p, secrets, reply), { respond });
}

/** Initiator of an INFORMATIONAL Delete of a Child SA: the peer answered. */
export async function onChildDeleteAnswered(e: EngineHost, sa: IkeSa, task: Extract<Task, { kind: 'child-delete' }>): Promise<void> {
  await perform(e, sa, childDeleteAnswered(task.child, task.reason, e.options.rekeyDeleteDelayMs), {});
}

/** Responder of an INFORMATIONAL Delete: one Child SA the peer deleted (the answer follows once all are handled). */
export async function onPeerDeletedChild(e: EngineHost, sa: IkeSa, child: ChildSa): Promise<void> {
  await perform(e, sa, peerDeletedChild(child, sa.children.values(), e.options.rekeyDeleteDelayMs, rekeyInFlight(sa, child)?.collision ?? null), {});
}

/** Our kernel refused a Child SA the peer has installed (IKE_AUTH's first one; see steps/child.ts abandon). */
export function abandonChild(e: EngineHost, sa: IkeSa, child: ChildSa, retry: ChildTask): void {
  for (const f of abandon(child, retry)) apply(e, sa, f, {});
}

/**
 * Carry out a step's effects in order; an installing step's kernel result goes to childInstalled.
 * Only kernel effects (install, activate-outbound, remove) await; the others run back to back.
 */
async function perform(e: EngineHost, sa: IkeSa, step: Step, io: ChildChannel): Promise<void> {
  let installed = false;
  for (const f of step.effects) {
    if (f.kind === 'install') installed = await installChild(e, sa, f.child, f.peerCreated ? holdForPeerReauth(e, sa, f.child, f.install, true) : f.install);
    else if (f.kind === 'activate-outbound') await activateOutbound(e, f.child);
    else if (f.kind === 'remove') await removeChild(e, sa, f.child, f.reason, f.lingerMs);
    else apply(e, sa, f, io, step);
  }
  const n = step.next;
  if (n.tag === 'create-installing' || n.tag === 'rekey-installing' || n.tag === 'answer-installing') await perform(e, sa, childInstalled(n, installed), io);
}

function apply(e: EngineHost, sa: IkeSa, f: Exclude<ChildEffect, KernelEffect>, io: ChildChannel, step?: Step): void {
  switch (f.kind) {
    case 'send':
      if (!io.send || !step) throw new Error('a Child SA request outside tasks.ts');
      io.send(f.payloads, step);
      return;
    case 'respond':
      if (!io.respond) throw new Error('a Child SA answer outside responder.ts');
      io.respond(f.payloads);
      return;
    case 'delete': sa.pending.push({ kind: 'child-delete', child: f.child, reason: f.reason }); return;
    case 'release-spi': releaseSpi(e, sa, f.spi); return;
    case 'queue': if (f.first) sa.pending.unshift(f.task); else sa.pending.push(f.task); return;
    case 'timer': armTimer(e, sa, f.afterMs, f.fire); return;
    case 'set-state': f.child.state = f.state; return;
    // child-responder.ts finds a collision only while our rekey of the SA is in flight.
    case 'collision': { const r = rekeyInFlight(sa, f.child); if (r) r.collision = { peerSa: f.peerSa, nonces: [f.peerSa.ni, f.peerSa.nr] }; return; }
    case 'note-failed': noteReauthChildFailed(sa, f.name); return;
    case 'drop-peer-run': {
      const p = peerRekeyRun(sa, f.old);
      if (p) { abandonFollowup(sa); releaseSpi(e, sa, p.inboundSpi); }
      return;
    }
    case 'followup': {
      beginChildFollowup(e, sa, f.pending, f.state);
      if (f.pending.role === 'initiator') { sa.pending.unshift({ kind: 'ike-followup' }); return; }
      // An initiator that never follows up does not hold the run (and our SPI) forever.
      const p = f.pending;
      e.clock.setTimer(REKEYED_SA_TIMEOUT_MS, () => { void e.enqueue(sa, () => { if (sa.followup?.for === 'child' && sa.followup.pending === p) { abandonFollowup(sa); releaseSpi(e, sa, p.inboundSpi); } }); });
      return;
    }
    case 'emit':
      if (f.event.type === 'child-up') emitChildUp(e, f.event.child);
      else if (f.event.type === 'child-rekeyed') emitRekeyed(e, f.event.old, f.event.successor);
      else e.failure(sa.peer, f.event.failure);
      return;
  }
}

function armTimer(e: EngineHost, sa: IkeSa, afterMs: number, fire: ChildTimer): void {
  const h = e.clock.setTimer(afterMs, () => { void e.enqueue(sa, () => onTimer(e, sa, fire)); });
  // Removing the old SA cancels its switch-over.
  if (fire.kind === 'peer-switch') fire.old.timers.push(h);
}

async function onTimer(e: EngineHost, sa: IkeSa, t: ChildTimer): Promise<void> {
  if (t.kind === 'queue') {
    // A rekey goes to the IKE SA that holds the Child SA by now (an IKE rekey meanwhile moved it).
    const holder = t.task.kind === 'child-rekey' ? e.ownerOf(t.task.old) : undefined;
    e.queueTask(holder ?? sa, t.task);
    return;
  }
  // The old SA may have moved to a successor IKE SA since (IKE rekey): remove it from there.
  const owner = e.ownerOf(t.old);
  await perform(e, owner ?? sa, peerSwitchDue(t.old, t.successor, owner !== undefined), {});
}

/**
 * The peer rekeyed `old` (a plain rekey we answered, or a collision whose winner is the peer's,
 * §2.8.1): `successor` is installed here inbound-only. Keep sending on `old` until the peer
 * deletes it: the peer installs its SA when our answer arrives, which can be after our own
 * exchange has ended, so switching now can send into an SA the peer does not have yet. The Delete
 * switches over (responder.ts); without one, we switch after REKEYED_SA_TIMEOUT_MS.
 */
export function awaitPeerSwitch(e: EngineHost, sa: IkeSa, old: ChildSa, successor: ChildSa): void {
  armTimer(e, sa, REKEYED_SA_TIMEOUT_MS, { kind: 'peer-switch', old, successor });
}

function emitRekeyed(e: EngineHost, old: ChildSa, successor: ChildSa): void {
  e.emit({ type: 'child-rekeyed', peer: old.ref.peer, child: old.ref.child, old: old.ref, ref: successor.ref, suite: successor.suiteText });
}

/**
 * A Child SA of a peer's re-authentication (reauth.ts): installed receive-only, sent on once the
 * old IKE SA's Delete comes, ESP arrives on it or REAUTH_OUTBOUND_HOLD_MS has passed, whichever is
 * first (lifecycle.ts armReauthOutboundHold). The same for
 * a new Child SA whose config another Child SA of ours already carries (`replaces`: the peer gave
 * no INITIAL_CONTACT, or it is a CREATE_CHILD_SA — crossed reauthentications seen late, a
 * simultaneous start): until our duplicate goes (lifecycle.ts teardown) or the hold ends. The
 * initiator installs its side only when our answer arrives. A redundant SA's are held for good
 * (lifecycle.ts installChild).
 */
export function holdForPeerReauth(e: EngineHost, sa: IkeSa, child: ChildSa, install: KernelChildSa, replaces: boolean): KernelChildSa {
  if (sa.reauth?.tag === 'redundant') return install;
  const peerReauth = sa.reauth?.tag === 'replacing' && !sa.reauth.ours;
  if (!peerReauth && !(replaces && reqidStillUsed(e, child))) return install;
  child.outbound = { tag: 'pending', state: install.outbound };
  armReauthOutboundHold(e, sa, child);
  return { ...install, outboundActive: false };
}
