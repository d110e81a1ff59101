// INFORMATIONAL (RFC 7296 §1.4) as pure steps (the shape of child.ts): Delete of Child SAs and of
// the IKE SA (§1.4.1), liveness checks (§2.4, an empty request), and error notifies about the IKE
// SA (§2.21.2). Steps read records but never change them; the effects say what the drivers do, in
// order. The peer's request is answered by consumeInformationalRequest (driver:
// sa/informational-tasks.ts); a Child SA it deletes goes to the Child SA steps (child.ts
// peerDeletedChild), an IKE SA rekey its Delete settles to the IKE rekey steps (ike-rekey.ts
// peerDeletedRekeyingIke). Our own Delete of the IKE SA and our liveness check, their answers, and
// a request of ours the peer never answers (§2.4: it is dead) are the steps below them (driver:
// sa/task-queue.ts sends, sa/task-retransmit.ts carries out the rest). Our Delete of a Child SA is
// the Child SA steps' (child.ts childDeleteAnswered); its payloads are built here.
//
//   HDR, SK {D(ESP, our inbound SPIs)}  -->   <-- HDR, SK {D(ESP, its inbound SPIs of those pairs)}
//   HDR, SK {D(IKE)}                    -->   <-- HDR, SK {}
//   HDR, SK {}                          -->   <-- HDR, SK {}                     (liveness check)
//   HDR, SK {N(AUTHENTICATION_FAILED)}  -->                                      (after IKE_AUTH, §2.21.2)
import { NotifyError, ProtocolId } from '../constants.js';
import type { IkeMessage } from '../codec/message.js';
import type { IkePayload } from '../codec/payload.js';
import { spi32, spiNumber } from '../exchanges/child-sa.js';
import type { DownReason, IkeFailure } from '../ports.js';
import { ikeFailure } from '../sa/context.js';
import { upKeyedOf, upOf, type ChildSa, type IkeSa, type IkeSaState, type Task } from '../sa/ike-sa.js';
import { peerDeletedRekeyingIke } from './ike-rekey.js';

/** Our Delete of Child SAs: the SPIs we receive on (§3.11). */
export function deleteChildPayloads(children: readonly ChildSa[]): IkePayload[] {
  return [{ kind: 'delete', protocolId: ProtocolId.ESP, spis: children.map((c) => spi32(c.ref.inboundSpi)) }];
}

/** Our Delete of the IKE SA the request travels on. */
export function deleteIkePayloads(): IkePayload[] { return [{ kind: 'delete', protocolId: ProtocolId.IKE, spis: [] }]; }

/** How an IKE SA ends, after the peer's request or ours. */
type IkeSaEnd =
  /** Recorded as the peer's lastError and emitted as an `error` event. */
  | { readonly kind: 'error'; readonly failure: IkeFailure }
  /** The IKE SA goes, with its Child SAs, events and kernel states. */
  | { readonly kind: 'teardown'; readonly reason: DownReason }
  /** The superseded IKE SA goes quietly (its Child SAs live on its successor). */
  | { readonly kind: 'retire' };

export type InformationalEffect =
  | IkeSaEnd
  /** The peer's Delete settles our colliding IKE SA rekey (ike-rekey.ts peerDeletedRekeyingIke). */
  | { readonly kind: 'settle-ike-rekey' }
  /** The peer deleted `child` (found by our outbound SPI = its inbound SPI): child.ts peerDeletedChild. */
  | { readonly kind: 'peer-deleted-child'; readonly child: ChildSa }
  | { readonly kind: 'respond'; readonly payloads: readonly IkePayload[] }
  /** Make-before-break after the peer's reauthentication: start sending on `child`. */
  | { readonly kind: 'activate-outbound'; readonly child: ChildSa };

export interface InformationalStep { readonly next: { readonly tag: 'done' }; readonly effects: readonly InformationalEffect[] }

/** Responder: the peer's INFORMATIONAL request on `sa`: Delete payloads and notifies; an empty request is a liveness check. */
export function consumeInformationalRequest(sa: IkeSa, m: IkeMessage): InformationalStep {
  const deleted: ChildSa[] = [];
  let deleteIke = false;
  for (const d of m.all('delete')) {
    if (d.protocolId === ProtocolId.IKE) { deleteIke = true; continue; }
    if (d.protocolId !== ProtocolId.ESP) continue;
    for (const raw of d.spis) {
      const spi = spiNumber(raw);
      const c = [...sa.children.values()].find((x) => x.ref.outboundSpi === spi);
      if (c !== undefined && !deleted.includes(c)) deleted.push(c);
    }
  }
  const effects: InformationalEffect[] = [];
  // §2.8.2: the Delete of the old IKE SA can overtake the answer to our colliding rekey: the
  // peer's new SA takes over first, and the old one is then retired below.
  const handedOver = deleteIke && peerDeletedRekeyingIke(sa).effects.length > 0;
  if (handedOver) effects.push({ kind: 'settle-ike-rekey' });
  for (const child of deleted) effects.push({ kind: 'peer-deleted-child', child });
  // §1.4.1: answer a Child delete with Deletes for our halves, except those we are deleting
  // ourselves already (their own Delete request is in flight); an IKE delete gets an empty reply.
  const answer = deleted.filter((c) => c.state.tag !== 'deleting');
  effects.push({ kind: 'respond', payloads: deleteIke || answer.length === 0 ? [] : deleteChildPayloads(answer) });
  if (m.errorNotifies()[0]?.type === NotifyError.AUTHENTICATION_FAILED) {
    effects.push(
      { kind: 'error', failure: ikeFailure({ code: 'ERR_IKE_AUTH_FAILED', notify: 'AUTHENTICATION_FAILED', origin: 'remote', exchange: 'INFORMATIONAL', message: 'peer rejected our authentication' }) },
      { kind: 'teardown', reason: 'negotiation-failed' },
    );
    return { next: { tag: 'done' }, effects };
  }
  if (!deleteIke) return { next: { tag: 'done' }, effects };
  if (handedOver || sa.state.tag === 'rekeyed') effects.push({ kind: 'retire' });
  // The peer's reauthentication is complete (reauth.ts): its new IKE SA has the Child SAs; send on
  // them from now on, then the old ones go (their inbound states linger).
  else if (sa.reauth?.tag === 'superseded' && sa.state.tag === 'established') {
    for (const c of sa.children.values()) if (c.state.tag === 'rekeyed' && c.state.successor) effects.push({ kind: 'activate-outbound', child: c.state.successor });
    effects.push({ kind: 'teardown', reason: 'reauthenticated' });
  } else if (sa.state.tag !== 'dead') effects.push({ kind: 'teardown', reason: 'peer-deleted' });
  return { next: { tag: 'done' }, effects };
}

/** Why we delete an IKE SA (the ike-delete task's reason); it decides how the SA ends. */
export type IkeDeleteReason = Extract<Task, { kind: 'ike-delete' }>['reason'];

/** Our INFORMATIONAL request on the IKE SA (the driver keeps it as the outstanding task). */
export type OwnInformational =
  /** D(IKE) is out; `reason`: how the IKE SA ends, answered or not. */
  | { readonly tag: 'delete-sent'; readonly reason: IkeDeleteReason }
  /** The empty request of a liveness check is out (retransmitted within dpd.timeout). */
  | { readonly tag: 'liveness-sent' }
  | { readonly tag: 'done' };

export type RequestEffect =
  | IkeSaEnd
  /** Our request (the driver numbers, seals and retransmits it). */
  | { readonly kind: 'send'; readonly payloads: readonly IkePayload[] }
  | { readonly kind: 'set-state'; readonly state: IkeSaState }
  // The three below: unless the peer was terminated by the time the driver gets to them.
  /** A connection we initiated failed before it was up: initiate again later (startAction initiate). */
  | { readonly kind: 'retry-initiation' }
  /** dpd.action restart: initiate again now, unless another IKE SA with the peer is live by then. */
  | { readonly kind: 'restart' }
  /** dpd.action hold: trap policies, so the next packet to the peer starts a negotiation. */
  | { readonly kind: 'install-traps' };

export interface RequestStep<S extends OwnInformational = OwnInformational> { readonly next: S; readonly effects: readonly RequestEffect[] }

type DeleteSent = Extract<OwnInformational, { tag: 'delete-sent' }>;
type LivenessSent = Extract<OwnInformational, { tag: 'liveness-sent' }>;
const DONE = { tag: 'done' } as const;
const done = (effects: readonly RequestEffect[]): RequestStep<typeof DONE> => ({ next: DONE, effects });

/** What our Delete step reads of the engine. */
export interface DeleteEnv {
  /** Our duplicate `sa` is about to be deleted: the surviving IKE SA's Child SAs held receive-only (sa/lifecycle.ts). */
  heldBySurvivor(sa: IkeSa): readonly ChildSa[];
}

/**
 * Initiator: D(IKE) on `sa` for `reason`. A terminated or reauthenticated SA, and a duplicate of a
 * simultaneous start, are deleting from now on (nothing new starts on them); a duplicate's Delete
 * remembers the survivor's Child SAs held receive-only, to send on them once it is gone.
 */
export function requestIkeDelete(env: DeleteEnv, sa: IkeSa, reason: IkeDeleteReason): RequestStep<DeleteSent | typeof DONE> {
  // Only an IKE SA past IKE_AUTH is deleted with a message; one still negotiating has nothing to delete at the peer.
  const up = upOf(sa);
  const keyed = upKeyedOf(sa);
  if (up === null || keyed === null) return done([]);
  const effects: RequestEffect[] = [];
  if (reason === 'duplicate') effects.push({ kind: 'set-state', state: { tag: 'deleting', sendOn: env.heldBySurvivor(sa), up, keyed } });
  else if (reason === 'terminated' || reason === 'reauthenticated') effects.push({ kind: 'set-state', state: { tag: 'deleting', up, keyed } });
  effects.push({ kind: 'send', payloads: deleteIkePayloads() });
  return { next: { tag: 'delete-sent', reason }, effects };
}

/** How the IKE SA we delete ends: rekeyed and redundant ones retire (their Child SAs live on elsewhere). */
const DELETE_END: Readonly<Record<IkeDeleteReason, IkeSaEnd>> = {
  terminated: { kind: 'teardown', reason: 'terminated' },
  duplicate: { kind: 'teardown', reason: 'replaced' },
  reauthenticated: { kind: 'teardown', reason: 'reauthenticated' },
  rekeyed: { kind: 'retire' },
  redundant: { kind: 'retire' },
};

/** Initiator: the (empty) answer to our D(IKE): the IKE SA ends. */
export function ikeDeleteAnswered(s: DeleteSent): RequestStep<typeof DONE> {
  return done([DELETE_END[s.reason]]);
}

/**
 * Initiator: our D(IKE) went unanswered through every retransmission. The SA ends all the same;
 * a terminated one as every dead peer's would (§2.4), but with no error: we were ending it anyway.
 */
export function ikeDeleteUnanswered(sa: IkeSa, s: DeleteSent): RequestStep<typeof DONE> {
  if (s.reason !== 'terminated') return ikeDeleteAnswered(s);
  if (sa.state.tag === 'rekeyed') return done([{ kind: 'retire' }]);
  return done([DELETE_END.terminated, ...afterDeath(sa, 'terminated')]);
}

/** Initiator: a liveness check (§2.4), an empty request; only an established IKE SA needs one. */
export function requestLiveness(sa: IkeSa): RequestStep<LivenessSent | typeof DONE> {
  if (sa.state.tag !== 'established') return done([]);
  return { next: { tag: 'liveness-sent' }, effects: [{ kind: 'send', payloads: [] }] };
}

/** Initiator: the peer answered our liveness check: it is alive (the receipt already counts as inbound traffic). */
export function livenessAnswered(_s: LivenessSent): RequestStep<typeof DONE> {
  return done([]);
}

/** What the driver knows of a request that went unanswered: its task, how often it was resent, why it may have been lost. */
export interface Unanswered {
  readonly task: Task['kind'];
  readonly tries: number;
  readonly exchange: IkeFailure['exchange'];
  /** Appended to the error's message (sa/wire.ts unfragmentedHint), or ''. */
  readonly hint: string;
}

/** Initiator: our liveness check went unanswered within dpd.timeout: the peer is dead, and dpd.action follows. */
export function livenessUnanswered(sa: IkeSa, _s: LivenessSent, u: Omit<Unanswered, 'task'>): RequestStep<typeof DONE> {
  return requestUnanswered(sa, { ...u, task: 'dpd' });
}

/**
 * Initiator: a request of ours other than a Delete of the IKE SA went unanswered through every
 * retransmission: §2.4, the peer is dead and the IKE SA goes with the reason `dpd-timeout` for a
 * liveness check, `retransmit-limit` otherwise; a rekeyed one retires quietly.
 */
export function requestUnanswered(sa: IkeSa, u: Unanswered): RequestStep<typeof DONE> {
  if (sa.state.tag === 'rekeyed') return done([{ kind: 'retire' }]);
  const reason = u.task === 'dpd' ? 'dpd-timeout' : 'retransmit-limit';
  const failure = ikeFailure({ code: 'ERR_IKE_TIMEOUT', message: `no response after ${u.tries} retransmissions (${u.task})${u.hint}`, exchange: u.exchange });
  return done([{ kind: 'error', failure }, { kind: 'teardown', reason }, ...afterDeath(sa, reason)]);
}

/**
 * What follows an IKE SA that died without being asked to (dpd.action, RFC 3706-style): nothing
 * for a terminated peer; an initiation that never came up is retried; a dead peer's SA is
 * restarted, or its traffic trapped, or (clear) nothing.
 */
function afterDeath(sa: Pick<IkeSa, 'state' | 'peer'>, reason: DownReason): RequestEffect[] {
  const peer = sa.peer;
  if (peer.terminated) return [];
  if (sa.state.tag !== 'established' && sa.state.tag !== 'deleting') return [{ kind: 'retry-initiation' }];
  if (reason !== 'dpd-timeout' && reason !== 'retransmit-limit') return [];
  const action = peer.config.dpd.action;
  return action === 'restart' ? [{ kind: 'restart' }] : action === 'hold' ? [{ kind: 'install-traps' }] : [];
}
