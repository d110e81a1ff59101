// The answer to our request goes to the step for its task kind; after it, the next queued task
// starts. IKE_INTERMEDIATE answers are handled here, IKE_SA_INIT ones in ike-init-tasks.ts,
// IKE_AUTH ones in ike-auth-tasks.ts, Child SA ones in child-tasks.ts, IKE rekey ones in
// ike-rekey-tasks.ts, those to our Delete of the IKE SA and our liveness check by the
// INFORMATIONAL steps (their effects: task-retransmit.ts performRequest).
import type { IkeMessage } from '../codec/message.js';
import { consumeIntermediateResponse } from '../steps/intermediate.js';
import { ikeDeleteAnswered, livenessAnswered } from '../steps/informational.js';
import { applyIntermediateKeys, intermediateOf, intermediateView, preAuth, setIntermediate } from './intermediate.js';
import { onChildDeleteAnswered, onChildResponse } from './child-tasks.js';
import { onAuthResponse } from './ike-auth-tasks.js';
import { onInitResponse } from './ike-init-tasks.js';
import type { EngineHost } from './host.js';
import type { IkeSa } from './ike-sa.js';
import { teardown } from './lifecycle.js';
import { finishReauth } from './reauth.js';
import { onFollowup, onIkeRekey } from './ike-rekey-tasks.js';
import { keyed } from '../steps/ike-rekey.js';
import { next } from './task-queue.js';
import { performRequest, scheduleRetry } from './task-retransmit.js';

export async function handleResponse(e: EngineHost, sa: IkeSa, m: IkeMessage, datagram: Uint8Array): Promise<void> {
  const o = sa.outstanding;
  if (o === null) return;
  o.timer?.cancel();
  sa.outstanding = null;
  const task = o.task;
  switch (task.kind) {
    case 'ike-init': await onInitResponse(e, sa, m, datagram, o); break;
    case 'ike-intermediate': if (!await onIntermediate(e, sa, m)) return; break;
    case 'ike-auth': await onAuthResponse(e, sa, m, o); break;
    case 'child-create':
    case 'child-rekey':
      if (keyed(sa)) await onChildResponse(e, sa, m, o, task);
      else e.drop('child-response-not-up');
      break;
    case 'child-delete': await onChildDeleteAnswered(e, sa, task); break;
    case 'ike-rekey': onIkeRekey(e, sa, m, o, task); break;
    case 'ike-followup': await onFollowup(e, sa, m); break;
    // Our INFORMATIONAL requests (steps/informational.ts): after our Delete the IKE SA is gone.
    case 'ike-delete': await performRequest(e, sa, ikeDeleteAnswered({ tag: 'delete-sent', reason: task.reason })); return;
    case 'dpd': await performRequest(e, sa, livenessAnswered({ tag: 'liveness-sent' })); break;
  }
  await next(e, sa);
  // A reauthentication whose new IKE SA now has every Child SA it can get deletes the old one.
  finishReauth(e, sa);
  // A response can change state without a request following it (IKE_AUTH done, child installed).
  e.persistPeer(sa.peer.config.name);
}

/** IKE_INTERMEDIATE response (steps/intermediate.ts); false when the IKE SA is gone. */
async function onIntermediate(e: EngineHost, sa: IkeSa, m: IkeMessage): Promise<boolean> {
  const s = intermediateOf(sa);
  if (s?.tag !== 'ke-sent' || !preAuth(sa)) { e.drop('unexpected-intermediate-response'); return true; }
  const step = consumeIntermediateResponse(intermediateView(e, sa), s, m);
  setIntermediate(sa, step.next);
  for (const ef of step.effects) {
    if (ef.kind === 'update-keys') applyIntermediateKeys(e, sa, ef.raw);
    else if (ef.kind === 'failed') {
      e.failure(sa.peer, ef.failure);
      await teardown(e, sa, 'negotiation-failed');
      scheduleRetry(e, sa.peer);
      return false;
    }
  }
  sa.pending.unshift(step.next.tag === 'done' ? { kind: 'ike-auth' } : { kind: 'ike-intermediate' });
  return true;
}
