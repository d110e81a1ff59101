// Exchanges we initiate, strongSwan task-queue style: tasks wait in `pending` while a request is
// outstanding (window size 1, RFC 7296 §2.3), and the next one starts by building the request for
// its kind (or finds it moot). Sending and retransmitting is task-retransmit.ts.
import { ExchangeType } from '../constants.js';
import type { IkePayload } from '../codec/payload.js';
import { requestIntermediate } from '../steps/intermediate.js';
import { intermediateOf, intermediateView, preAuth, setIntermediate } from './intermediate.js';
import { deleteChildPayloads, requestIkeDelete, requestLiveness } from '../steps/informational.js';
import { startChild } from './child-tasks.js';
import { startAuth } from './ike-auth-tasks.js';
import type { EngineHost } from './host.js';
import { REKEY_RETRY_MS } from './defaults.js';
import { NO_SCRATCH, type IkeSa, type RequestScratch, type Task } from './ike-sa.js';
import { heldBySurvivor } from './lifecycle.js';
import { nextFollowupRequest } from './followup.js';
import type { Step } from '../steps/child.js';
import { keyed, requestIkeRekey } from '../steps/ike-rekey.js';
import { arm, mtuOf, performRequest } from './task-retransmit.js';
import { headerFor, sealMessage } from './wire.js';

export function queueTask(e: EngineHost, sa: IkeSa, task: Task): void {
  if (sa.state.tag === 'dead') return;
  if (task.kind === 'child-rekey' && sa.pending.some((t) => t.kind === 'child-rekey' && t.old === task.old)) return;
  if ((task.kind === 'ike-rekey' || task.kind === 'dpd') && sa.pending.some((t) => t.kind === task.kind)) return;
  sa.pending.push(task);
  void e.enqueue(sa, () => next(e, sa));
}

/** Start pending tasks until one sends a request (the others may have become moot). */
export async function next(e: EngineHost, sa: IkeSa): Promise<void> {
  while (sa.outstanding === null) {
    const task = sa.pending.shift();
    if (task === undefined || await start(e, sa, task)) return;
  }
}

function send(e: EngineHost, sa: IkeSa, task: Task, exchangeType: number, payloads: readonly IkePayload[], scratch: RequestScratch = NO_SCRATCH): void {
  const messageId = sa.nextRequestId++;
  const datagrams = sealMessage(sa, headerFor(sa, exchangeType, messageId, false), payloads, mtuOf(sa));
  arm(e, sa, { task, messageId, exchangeType, datagrams, scratch, tries: 0, timer: null });
}

/** The offer a Child SA request step made, kept with the request for its answer. */
function offerOf(step: Step): RequestScratch {
  return step.next.tag === 'create-sent' || step.next.tag === 'rekey-sent' ? { kind: 'child', offer: step.next.offer, collision: null } : NO_SCRATCH;
}

async function start(e: EngineHost, sa: IkeSa, task: Task): Promise<boolean> {
  const established = sa.state.tag === 'established';
  switch (task.kind) {
    case 'ike-init': return false;
    case 'ike-intermediate': {
      const s = intermediateOf(sa);
      if (sa.state.tag !== 'auth-sent' || s?.tag !== 'to-send' || !preAuth(sa)) return false;
      const header = headerFor(sa, ExchangeType.IKE_INTERMEDIATE, sa.nextRequestId, false);
      const step = requestIntermediate(intermediateView(e, sa), s, header);
      setIntermediate(sa, step.next);
      for (const ef of step.effects) if (ef.kind === 'send') send(e, sa, task, ExchangeType.IKE_INTERMEDIATE, ef.payloads);
      return true;
    }
    case 'ike-auth':
      // steps/ike-auth.ts, after IKE_SA_INIT and every IKE_INTERMEDIATE.
      return startAuth(e, sa, (payloads, offer) => send(e, sa, task, ExchangeType.IKE_AUTH, payloads, offer ? { kind: 'child', offer, collision: null } : NO_SCRATCH));
    case 'child-create': {
      if (!established) return false;
      if (sa.followup) { deferChild(e, sa, task); return false; }
      const g = task.group === undefined ? {} : { group: task.group };
      await startChild(e, sa, { tag: 'create', runtime: task.child, ...g }, (payloads, step) => send(e, sa, task, ExchangeType.CREATE_CHILD_SA, payloads, offerOf(step)));
      return true;
    }
    case 'child-rekey': {
      const old = task.old;
      if (!established || old.state.tag !== 'installed' || sa.children.get(old.ref.inboundSpi) !== old) return false;
      if (sa.followup) { deferChild(e, sa, task); return false; }
      const g = task.group === undefined ? {} : { group: task.group };
      await startChild(e, sa, { tag: 'rekey', old, ...g }, (payloads, step) => send(e, sa, task, ExchangeType.CREATE_CHILD_SA, payloads, offerOf(step)));
      return true;
    }
    case 'child-delete': {
      if (!established) return false;
      if (task.reason === 'terminated' && task.child.state.tag !== 'deleted') task.child.state = { tag: 'deleting' };
      send(e, sa, task, ExchangeType.INFORMATIONAL, deleteChildPayloads([task.child]));
      return true;
    }
    case 'ike-rekey': {
      // Superseded by a reauthentication: the new IKE SA replaces this one, it is not rekeyed.
      if (sa.reauth?.tag === 'superseded') return false;
      if (!established || [...sa.children.values()].some((c) => c.state.tag === 'rekeying')) {
        if (established) sa.timers.rekey = e.clock.setTimer(REKEY_RETRY_MS, () => { void e.enqueue(sa, () => queueTask(e, sa, task)); });
        return false;
      }
      // A peer's IKE_FOLLOWUP_KE run on this SA is still open: ours waits for it.
      if (sa.followup) { sa.timers.rekey = e.clock.setTimer(REKEY_RETRY_MS, () => { void e.enqueue(sa, () => queueTask(e, sa, task)); }); return false; }
      if (!keyed(sa)) return false;
      // The new IKE SA's SPI first, then the step (steps/ike-rekey.ts); its one effect is the request.
      const step = requestIkeRekey(e, sa, e.newIkeSpi(), task.group);
      for (const ef of step.effects) if (ef.kind === 'send') send(e, sa, task, ExchangeType.CREATE_CHILD_SA, ef.payloads, { kind: 'ike-rekey', offer: step.next.offer, collision: null });
      return true;
    }
    case 'ike-followup': {
      const payloads = established ? nextFollowupRequest(sa) : null;
      if (payloads === null) return false;
      send(e, sa, task, ExchangeType.IKE_FOLLOWUP_KE, payloads);
      return true;
    }
    case 'ike-delete':
    case 'dpd': {
      // INFORMATIONAL (steps/informational.ts): the step finds it moot or sends it.
      const step = task.kind === 'dpd' ? requestLiveness(sa) : requestIkeDelete({ heldBySurvivor: (s) => heldBySurvivor(e, s) }, sa, task.reason);
      await performRequest(e, sa, step, (payloads) => send(e, sa, task, ExchangeType.INFORMATIONAL, payloads));
      return step.next.tag !== 'done';
    }
  }
}

/** The peer's IKE_FOLLOWUP_KE run (sa/followup.ts) holds the IKE SA's one run slot: try the Child SA task later. */
function deferChild(e: EngineHost, sa: IkeSa, task: Task): void {
  e.clock.setTimer(REKEY_RETRY_MS, () => { void e.enqueue(sa, () => queueTask(e, sa, task)); });
}
