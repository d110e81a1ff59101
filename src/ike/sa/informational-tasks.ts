// The driver of the INFORMATIONAL steps (steps/informational.ts), responder side: it carries out
// the effects of the peer's request in order; a deleted Child SA goes to child-tasks.ts, an IKE SA
// rekey the Delete settles to ike-rekey-tasks.ts. responder.ts routes the request here.
import type { IkeMessage } from '../codec/message.js';
import type { IkePayload } from '../codec/payload.js';
import { consumeInformationalRequest } from '../steps/informational.js';
import { onPeerDeletedChild } from './child-tasks.js';
import type { EngineHost } from './host.js';
import type { IkeSa } from './ike-sa.js';
import { onPeerDeletedIke } from './ike-rekey-tasks.js';
import { activateOutbound, teardown } from './lifecycle.js';
import { retire } from './task-retransmit.js';

/** Responder: the peer's INFORMATIONAL request on `sa`. */
export async function answerInformational(e: EngineHost, sa: IkeSa, m: IkeMessage, respond: (payloads: readonly IkePayload[]) => void): Promise<void> {
  for (const f of consumeInformationalRequest(sa, m).effects) {
    switch (f.kind) {
      case 'settle-ike-rekey': onPeerDeletedIke(e, sa); break;
      case 'peer-deleted-child': await onPeerDeletedChild(e, sa, f.child); break;
      case 'respond': respond(f.payloads); break;
      case 'error': e.failure(sa.peer, f.failure); break;
      case 'activate-outbound': await activateOutbound(e, f.child); break;
      case 'teardown': await teardown(e, sa, f.reason); break;
      case 'retire': retire(e, sa); break;
    }
  }
}
