// CREATE_CHILD_SA for a Child SA as pure steps (RFC 7296 §1.3.1 new Child SA, §1.3.3 rekey, §2.8
// make-before-break, §2.8.1 simultaneous rekeys, §2.25 crossing deletes). Each step takes the exact
// exchange state it expects and returns the next state and the effects for the driver
// (sa/child-tasks.ts) to carry out in order. Steps read records but never change them and never
// touch ports: the driver allocates SPIs before a step runs and reports kernel results to the
// next one. This file: the shared types, the initiator's steps, and what follows for both roles
// (the install outcome, the switch-over to the peer's new SA, the peer's Delete of a Child SA);
// the responder's steps are in child-responder.ts.
//
//   new child:   HDR, SK {SA, Ni, [KEi], TSi, TSr, [N(USE_TRANSPORT_MODE)]}  -->
//   rekey:       HDR, SK {N(REKEY_SA), SA, Ni, [KEi], TSi, TSr}             -->
//                                   <-- HDR, SK {SA, Nr, [KEr], TSi, TSr}
//                                   <-- HDR, SK {N(TEMPORARY_FAILURE | CHILD_SA_NOT_FOUND | NO_PROPOSAL_CHOSEN | TS_UNACCEPTABLE | INVALID_KE_PAYLOAD)}
import { isAdditionalKeyExchangeType, NotifyError, ProtocolId } from '../constants.js';
import type { IkeMessage } from '../codec/message.js';
import type { IkePayload } from '../codec/payload.js';
import { notify } from '../codec/payloads/notify.js';
import { rekeySaNotify } from '../codec/payloads/notify-data.js';
import type { SecretBytes } from '../../common/secret.js';
import { childOffer, childOfferPayloads, completeChildInitiator, finishChildInitiator, spi32, type ChildChoice, type ChildCompletion, type ChildEnv, type ChildIkeView } from '../exchanges/child-sa.js';
import { ourRekeyLoses } from './collision.js';
import { keRetry } from '../exchanges/invalid-ke.js';
import type { IkeFailure, KernelChildSa } from '../ports.js';
import { REKEY_RETRY_MS, REKEYED_SA_TIMEOUT_MS } from '../sa/defaults.js';
import { OUTBOUND_ACTIVE, type ChildCollision, type ChildFollowupPending, type ChildRequestScratch, type ChildRuntime, type ChildSa, type ChildSent, type ChildState, type Task } from '../sa/ike-sa.js';
import { initiatorStart, type FollowupKe } from './followup-ke.js';

export type ChildTask = Extract<Task, { kind: 'child-create' | 'child-rekey' }>;

/** One CREATE_CHILD_SA exchange for a Child SA, from either side; each variant holds what its next step needs. */
export type ChildExchange =
  /** Initiator: our request for a new Child SA (create-sent) or our rekey of `old` (rekey-sent) is out (ike-sa.ts ChildSent). */
  | ChildSent
  /** Responder: the request is acceptable; the driver allocates an inbound SPI for `choice.runtime` next. */
  | { readonly tag: 'chosen'; readonly choice: ChildChoice; readonly rekey: { readonly old: ChildSa; readonly collision: boolean } | null }
  /** Initiator: a new Child SA (or a rekey whose old SA the peer deleted meanwhile) waits for the kernel; `retry` if it refuses. */
  | { readonly tag: 'create-installing'; readonly child: ChildSa; readonly retry: ChildTask }
  /** Initiator: the successor of `old` waits for the kernel. */
  | { readonly tag: 'rekey-installing'; readonly old: ChildSa; readonly child: ChildSa }
  /** Responder: the Child SA we agreed to waits for the kernel; `reply` goes out if it takes it. */
  | { readonly tag: 'answer-installing'; readonly child: ChildSa; readonly reply: readonly IkePayload[]; readonly rekey: { readonly old: ChildSa; readonly collision: boolean } | null }
  | { readonly tag: 'done' };

export type ChildTimer =
  | { readonly kind: 'queue'; readonly task: ChildTask }
  /** The peer rekeyed `old`: send on `successor` once the peer deletes `old`, or when this fires. */
  | { readonly kind: 'peer-switch'; readonly old: ChildSa; readonly successor: ChildSa };

export type ChildEffect =
  /** Our request (the driver numbers, seals and retransmits it). */
  | { readonly kind: 'send'; readonly payloads: readonly IkePayload[] }
  /** The answer to the request being handled (the driver seals, caches and sends it). */
  | { readonly kind: 'respond'; readonly payloads: readonly IkePayload[] }
  /**
   * Install in the kernel and attach to the IKE SA; the result goes to childInstalled.
   * `peerCreated`: a new Child SA the peer asked for, which the driver installs receive-only while
   * one of ours carries the same config (reauthentication, crossed starts).
   */
  | { readonly kind: 'install'; readonly child: ChildSa; readonly install: KernelChildSa; readonly peerCreated: boolean }
  /** Queue an INFORMATIONAL Delete of `child` at the peer. */
  | { readonly kind: 'delete'; readonly child: ChildSa; readonly reason: 'rekeyed' | 'redundant' }
  /** Make-before-break, second half: start sending on `child` (installed receive-only). */
  | { readonly kind: 'activate-outbound'; readonly child: ChildSa }
  /** Take `child` off its IKE SA; its kernel states go after `lingerMs` (packets still in flight on it). */
  | { readonly kind: 'remove'; readonly child: ChildSa; readonly reason: 'rekeyed' | 'terminated' | 'peer-deleted'; readonly lingerMs: number }
  | { readonly kind: 'release-spi'; readonly spi: number }
  /** Queue another exchange; `first`: ahead of the others (an INVALID_KE_PAYLOAD repeat, §1.3). */
  | { readonly kind: 'queue'; readonly task: ChildTask; readonly first: boolean }
  | { readonly kind: 'timer'; readonly afterMs: number; readonly fire: ChildTimer }
  | { readonly kind: 'set-state'; readonly child: ChildSa; readonly state: ChildState }
  /** §2.8.1: we answered the peer's rekey of `child` while ours is in flight; `peerSa` is its result. */
  | { readonly kind: 'collision'; readonly child: ChildSa; readonly peerSa: ChildSa }
  | { readonly kind: 'emit'; readonly event: ChildEvent }
  /** The child config could not be had on this IKE SA (a reauthentication counts it as tried). */
  | { readonly kind: 'note-failed'; readonly name: string }
  /** RFC 9370 §2.2.2: the keys wait for IKE_FOLLOWUP_KE; the driver keeps `pending` with the run (sa/followup.ts). */
  | { readonly kind: 'followup'; readonly pending: ChildFollowupPending; readonly state: FollowupKe }
  /** RFC 9370 §2.2.2: we won a collision with the peer's rekey of `old`: drop our run for its IKE_FOLLOWUP_KE (and its SPI). */
  | { readonly kind: 'drop-peer-run'; readonly old: ChildSa };

export type ChildEvent =
  | { readonly type: 'child-up'; readonly child: ChildSa }
  | { readonly type: 'child-rekeyed'; readonly old: ChildSa; readonly successor: ChildSa }
  /** Recorded as the peer's lastError and emitted as an `error` event. */
  | { readonly type: 'error'; readonly failure: IkeFailure };

/** The effects the driver awaits (kernel calls); the others run back to back. */
export type KernelEffect = Extract<ChildEffect, { kind: 'install' | 'activate-outbound' | 'remove' }>;

export interface Step<S extends ChildExchange = ChildExchange> { readonly next: S; readonly effects: readonly ChildEffect[] }

type Sent = Extract<ChildExchange, { tag: 'create-sent' | 'rekey-sent' }>;
export type Installing = Extract<ChildExchange, { tag: 'create-installing' | 'rekey-installing' | 'answer-installing' }>;

const DONE = { tag: 'done' } as const;
const done = (effects: readonly ChildEffect[]): Step<typeof DONE> => ({ next: DONE, effects });

export type ChildRequest =
  | { readonly tag: 'create'; readonly runtime: ChildRuntime; readonly group?: number }
  | { readonly tag: 'rekey'; readonly old: ChildSa; readonly group?: number };

/**
 * Initiator: the request for `req` on our inbound SPI `spi`, which the driver allocated for the
 * child's reqid. A rekey keeps the old SA's selectors and mode and names it in REKEY_SA (§1.3.3);
 * `group` is a KE method the peer asked for with INVALID_KE_PAYLOAD.
 */
export function requestChild(env: Pick<ChildEnv, 'random'>, req: ChildRequest, spi: number): Step<Sent> {
  const g = req.group === undefined ? {} : { group: req.group };
  if (req.tag === 'create') {
    const offer = childOffer(env, req.runtime, spi, { inIkeAuth: false, ...g });
    return { next: { tag: 'create-sent', runtime: req.runtime, offer, retried: req.group !== undefined }, effects: [{ kind: 'send', payloads: childOfferPayloads(offer, false) }] };
  }
  const old = req.old;
  const offer = childOffer(env, old.runtime, spi, { inIkeAuth: false, localTs: old.localTs, remoteTs: old.remoteTs, mode: old.mode, ...g });
  return {
    next: { tag: 'rekey-sent', old, offer, retried: req.group !== undefined, collision: null },
    effects: [
      { kind: 'set-state', child: old, state: { tag: 'rekeying' } },
      { kind: 'send', payloads: [rekeySaNotify(ProtocolId.ESP, spi32(old.ref.inboundSpi)), ...childOfferPayloads(offer, false)] },
    ],
  };
}

/**
 * A refused offer: the group to repeat it with (INVALID_KE_PAYLOAD we can follow), or the failure
 * to report — for INVALID_KE_PAYLOAD we cannot follow, invalid-ke.ts's, which names the groups.
 */
function refusal(child: ChildRuntime, s: ChildRequestScratch, retried: boolean, r: Extract<ChildCompletion, { ok: false }>): { readonly group: number } | { readonly failure: IkeFailure } {
  if (r.retryGroup === undefined) return { failure: r.failure };
  const k = keRetry({ proposals: child.espProposals, sent: s.share?.group ?? null, retried, wanted: r.retryGroup, what: `Child SA ${child.config.name}` });
  return k.kind === 'retry' ? { group: k.group } : { failure: k.failure };
}

/**
 * We refused an answer that carried no error notify, so the peer has installed its side of the SA
 * (RFC 7296 §1.3): after a rekey it would move its traffic there and lose it. Delete it at the peer,
 * as strongSwan does, with the SPI we offered (§3.11: the SPI we would have received on). The
 * record exists only to name that SPI; nothing of it is in our kernel.
 */
function deleteRefusedAtPeer(env: Pick<ChildEnv, 'clock'>, ike: ChildIkeView, child: ChildRuntime, s: ChildRequestScratch, m: IkeMessage): ChildEffect[] {
  if (m.errorNotifies().length > 0) return [];
  const now = env.clock.now();
  const ref = { peer: ike.peer.config.name, child: child.config.name, reqid: child.reqid, inboundSpi: s.spi, outboundSpi: 0, local: ike.local.address, remote: ike.remote.address };
  const refused: ChildSa = {
    runtime: child, state: { tag: 'deleted' }, ref, mode: s.mode, suiteText: '', localTs: s.localTs, remoteTs: s.remoteTs, encap: null, ni: s.ni, nr: new Uint8Array(0),
    installedAtMs: now, rekeyAtMs: now, expiresAtMs: now, outbound: OUTBOUND_ACTIVE, timers: [],
  };
  return [{ kind: 'delete', child: refused, reason: 'redundant' }];
}

/** `successor` (the peer's) replaces `old`: we keep sending on `old` until the peer deletes it. */
function peerSuccessor(old: ChildSa, successor: ChildSa): ChildEffect[] {
  return [
    { kind: 'set-state', child: old, state: { tag: 'rekeyed', successor } },
    { kind: 'timer', afterMs: REKEYED_SA_TIMEOUT_MS, fire: { kind: 'peer-switch', old, successor } },
    { kind: 'emit', event: { type: 'child-rekeyed', old, successor } },
  ];
}

/**
 * The peer's rekey of the SA ours rekeys, answered by us with IKE_FOLLOWUP_KE to come
 * (child-responder.ts): `nonces` are its CREATE_CHILD_SA's Ni and our Nr.
 */
export interface PeerRekeyRun { readonly nonces: readonly Uint8Array[] }

/** Initiator: the answer to our CREATE_CHILD_SA request. `peerRun`: see PeerRekeyRun. */
export function consumeChildResponse(env: ChildEnv, ike: ChildIkeView, s: Sent, m: IkeMessage, peerRun: PeerRekeyRun | null = null): Step {
  const runtime = s.tag === 'create-sent' ? s.runtime : s.old.runtime;
  const r = completeChildInitiator(env, ike, runtime, s.offer, m, { inIkeAuth: false, exchange: 'CREATE_CHILD_SA' });
  if (r.ok !== 'followup') return settleChildResponse(env, ike, s, r, m);
  // The responder chose additional key exchanges: KEYMAT after IKE_FOLLOWUP_KE (a rekeyed SA stays rekeying).
  const run: ChildEffect = { kind: 'followup', pending: { role: 'initiator', sent: s, reply: r.reply }, state: initiatorStart(r.methods, r.sk0, r.link) };
  if (s.tag !== 'rekey-sent' || (s.collision === null && peerRun === null)) return done([run]);
  // RFC 9370 §2.2.2 with RFC 7296 §2.8.1: the peer rekeys `old` too. Both CREATE_CHILD_SA
  // exchanges are done, so their four nonces settle it before any IKE_FOLLOWUP_KE, as strongSwan
  // does: the loser abandons its chain (nothing of it is installed on either side, so there is
  // nothing to delete) and the winner drops its run for the loser's. The peer's chain that already
  // ended here (`collision`) has its SA installed: ours yields to it.
  const ours = [s.offer.ni, r.reply.nr];
  const lost = s.collision !== null || (peerRun !== null && ourRekeyLoses(ours, peerRun.nonces));
  if (!lost) return done([{ kind: 'drop-peer-run', old: s.old }, run]);
  r.sk0.wipe();
  const effects: ChildEffect[] = [{ kind: 'release-spi', spi: s.offer.spi }];
  // The peer's chain goes on, and ends as a plain rekey of `old` (acceptChildAfterFollowup); should
  // it fail, we rekey again later (the task is dropped if `old` is rekeyed by then).
  if (s.collision === null) return done([...effects, { kind: 'set-state', child: s.old, state: { tag: 'installed' } }, { kind: 'timer', afterMs: REKEY_RETRY_MS, fire: { kind: 'queue', task: { kind: 'child-rekey', old: s.old } } }]);
  // The winner's Delete of `old` came first and switched us over (peerDeletedChild).
  if (s.old.state.tag === 'deleted') return done(effects);
  return done([...effects, ...peerSuccessor(s.old, s.collision.peerSa)]);
}

/**
 * Initiator: the IKE_FOLLOWUP_KE exchanges after our CREATE_CHILD_SA ended (`m`: the last
 * response): with SK(0)..SK(n) in order, KEYMAT = prf+(SK_d, SK(0) | Ni | Nr | SK(1) | ... | SK(n))
 * (RFC 9370 §2.2.4) and the Child SA is installed as after a plain answer; or they failed.
 */
export function childFollowupSettled(env: ChildEnv, ike: ChildIkeView, p: Extract<ChildFollowupPending, { role: 'initiator' }>, r: { readonly secrets: readonly SecretBytes[] } | { readonly failure: IkeFailure }, m: IkeMessage): Step {
  const s = p.sent;
  if ('failure' in r) return settleChildResponse(env, ike, s, { ok: false, failure: r.failure, ...(r.failure.notify === 'TEMPORARY_FAILURE' ? { temporary: true } : {}) }, m);
  const [sk0, ...rest] = r.secrets;
  const fin = finishChildInitiator(env, ike, s.tag === 'create-sent' ? s.runtime : s.old.runtime, s.offer, p.reply, sk0 ?? null, false, rest);
  for (const x of rest) x.wipe();
  return settleChildResponse(env, ike, s, fin, m);
}

/** Initiator: what follows a completed (or refused) answer to our request. */
function settleChildResponse(env: ChildEnv, ike: ChildIkeView, s: Sent, r: Exclude<ChildCompletion, { ok: 'followup' }>, m: IkeMessage): Step {
  const runtime = s.tag === 'create-sent' ? s.runtime : s.old.runtime;
  if (!r.ok) {
    const effects: ChildEffect[] = [{ kind: 'release-spi', spi: s.offer.spi }, ...deleteRefusedAtPeer(env, ike, runtime, s.offer, m)];
    const wait = retryAfter(ike, s);
    return s.tag === 'create-sent' ? createRefused(s, r, effects, wait) : rekeyRefused(s, r, effects, wait);
  }
  const fresh = r.child;
  if (s.tag === 'create-sent') return { next: { tag: 'create-installing', child: fresh, retry: { kind: 'child-create', child: runtime } }, effects: [{ kind: 'install', child: fresh, install: r.install, peerCreated: false }] };
  const { old, collision } = s;
  // The peer won the collision and deleted the old SA before this answer came: its new SA took
  // over; ours is redundant, so it is not installed and the peer drops its side.
  if (old.state.tag === 'deleted' && collision) return done([{ kind: 'release-spi', spi: s.offer.spi }, { kind: 'delete', child: fresh, reason: 'redundant' }]);
  // The peer deleted the old SA while we rekeyed it (§2.25.1): keep the new one as a plain child.
  if (old.state.tag === 'deleted') return { next: { tag: 'create-installing', child: fresh, retry: { kind: 'child-create', child: runtime } }, effects: [{ kind: 'install', child: fresh, install: r.install, peerCreated: false }] };
  // §2.8.1: our new SA holds the lowest nonce; it is redundant and we delete it.
  if (collision && ourRekeyLoses([s.offer.ni, fresh.nr], collision.nonces))
    return done([{ kind: 'release-spi', spi: s.offer.spi }, ...peerSuccessor(old, collision.peerSa), { kind: 'delete', child: fresh, reason: 'redundant' }]);
  return { next: { tag: 'rekey-installing', old, child: fresh }, effects: [{ kind: 'install', child: fresh, install: r.install, peerCreated: false }] };
}

/**
 * How long a refused request waits before it is tried again. Should two with additional key
 * exchanges refuse each other (each met an IKE_FOLLOWUP_KE run, child-responder.ts), the IKE SA's
 * original initiator retries first, so they do not meet again.
 */
function retryAfter(ike: ChildIkeView, s: Sent): number {
  const addke = s.offer.proposals.some((p) => p.transforms.some((t) => isAdditionalKeyExchangeType(t.type) && t.id !== 0));
  return addke && ike.role === 'responder' ? 2 * REKEY_RETRY_MS : REKEY_RETRY_MS;
}

function createRefused(s: Extract<Sent, { tag: 'create-sent' }>, r: Extract<ChildCompletion, { ok: false }>, effects: ChildEffect[], wait: number): Step {
  const next = refusal(s.runtime, s.offer, s.retried, r);
  if ('group' in next) return done([...effects, { kind: 'queue', task: { kind: 'child-create', child: s.runtime, group: next.group }, first: true }]);
  if (r.temporary) return done([...effects, { kind: 'timer', afterMs: wait, fire: { kind: 'queue', task: { kind: 'child-create', child: s.runtime } } }]);
  return done([...effects, { kind: 'emit', event: { type: 'error', failure: next.failure } }, { kind: 'note-failed', name: s.runtime.config.name }]);
}

function rekeyRefused(s: Extract<Sent, { tag: 'rekey-sent' }>, r: Extract<ChildCompletion, { ok: false }>, effects: ChildEffect[], wait: number): Step {
  const { old, collision } = s;
  // Our rekey failed but the peer's went through: its SA is the successor (§2.8.1).
  if (collision && old.state.tag !== 'deleted') return done([...effects, ...peerSuccessor(old, collision.peerSa)]);
  if (old.state.tag !== 'rekeying') return done(effects); // deleted meanwhile (§2.25.1)
  effects.push({ kind: 'set-state', child: old, state: { tag: 'installed' } });
  const next = refusal(old.runtime, s.offer, s.retried, r);
  if ('group' in next) return done([...effects, { kind: 'queue', task: { kind: 'child-rekey', old, group: next.group }, first: true }]);
  // The old SA still carries traffic: try again later, from our own group (its hard lifetime bounds this).
  if (!r.temporary) effects.push({ kind: 'emit', event: { type: 'error', failure: next.failure } });
  return done([...effects, { kind: 'timer', afterMs: wait, fire: { kind: 'queue', task: { kind: 'child-rekey', old } } }]);
}

/**
 * Our kernel refused a Child SA the peer has installed (the driver reported why): delete it at
 * the peer, where it would swallow traffic, and negotiate again later (strongSwan deletes it too).
 */
export function abandon(child: ChildSa, retry: ChildTask): Exclude<ChildEffect, KernelEffect>[] {
  return [
    { kind: 'note-failed', name: child.ref.child },
    { kind: 'delete', child, reason: 'redundant' },
    { kind: 'timer', afterMs: REKEY_RETRY_MS, fire: { kind: 'queue', task: retry } },
  ];
}

/** Either role: the kernel took (`ok`) or refused the Child SA of the exchange. */
export function childInstalled(s: Installing, ok: boolean): Step<typeof DONE> {
  switch (s.tag) {
    case 'create-installing':
      return done(ok ? [{ kind: 'emit', event: { type: 'child-up', child: s.child } }] : abandon(s.child, s.retry));
    case 'rekey-installing':
      if (!ok) return done([{ kind: 'set-state', child: s.old, state: { tag: 'installed' } }, ...abandon(s.child, { kind: 'child-rekey', old: s.old })]);
      return done([
        { kind: 'set-state', child: s.old, state: { tag: 'rekeyed', successor: s.child } },
        { kind: 'emit', event: { type: 'child-rekeyed', old: s.old, successor: s.child } },
        { kind: 'delete', child: s.old, reason: 'rekeyed' },
      ]);
    case 'answer-installing': {
      // The kernel refused: answer without a Child SA rather than with one we do not have.
      if (!ok) return done([{ kind: 'respond', payloads: [notify(NotifyError.NO_ADDITIONAL_SAS)] }]);
      const respond: ChildEffect = { kind: 'respond', payloads: s.reply };
      if (s.rekey === null) return done([respond, { kind: 'emit', event: { type: 'child-up', child: s.child } }]);
      const { old, collision } = s.rekey;
      // Before the answer: the checkpoint it writes must say which SA the new one replaces (or
      // collides with, §2.8.1), or a restart takes the old SA for a live one. In a collision the
      // initiator's side settles which SA survives (consumeChildResponse, or the peer's Delete).
      if (collision) return done([{ kind: 'collision', child: old, peerSa: s.child }, respond]);
      // Make-before-break (§2.8): the initiator deletes the old SA next; until then we send on it.
      return done([
        { kind: 'set-state', child: old, state: { tag: 'rekeyed', successor: s.child } },
        respond,
        { kind: 'emit', event: { type: 'child-rekeyed', old, successor: s.child } },
        { kind: 'timer', afterMs: REKEYED_SA_TIMEOUT_MS, fire: { kind: 'peer-switch', old, successor: s.child } },
      ]);
    }
  }
}

/**
 * Either role, REKEYED_SA_TIMEOUT_MS after the peer's new SA `successor` took over `old` and the
 * peer has not deleted `old` (its Delete would have switched over): send on the successor and
 * remove the old SA. If the peer deleted the successor instead (the redundant SA of a collision),
 * the old SA stays. `owned`: `old` is still on one of our IKE SAs.
 */
export function peerSwitchDue(old: ChildSa, successor: ChildSa, owned: boolean): Step<typeof DONE> {
  if (!owned || old.state.tag !== 'rekeyed' || old.state.successor !== successor) return done([]);
  if (successor.state.tag === 'deleted') return done([{ kind: 'set-state', child: old, state: { tag: 'installed' } }]);
  return done([{ kind: 'activate-outbound', child: successor }, { kind: 'remove', child: old, reason: 'rekeyed', lingerMs: 0 }]);
}

/**
 * Either role: the peer's INFORMATIONAL Delete named `child` (RFC 7296 §1.4.1). Completing a rekey
 * (§2.8): the successor takes the traffic and the old inbound state lingers `lingerMs` for packets
 * in flight. The peer's SA of a collision it lost, or of an answer its initiator refused: the old
 * SA carries on. Otherwise the Child SA is simply gone. `siblings`: the IKE SA's Child SAs.
 */
export function peerDeletedChild(child: ChildSa, siblings: Iterable<ChildSa>, lingerMs: number, collision: ChildCollision | null = null): Step<typeof DONE> {
  // §2.8.1: the peer deletes the old SA of a collision only once it has won; its Delete can
  // overtake the answer to our own request, whose SA is then the redundant one.
  if (child.state.tag === 'rekeying' && collision) {
    const winner = collision.peerSa;
    return done([
      { kind: 'activate-outbound', child: winner },
      { kind: 'emit', event: { type: 'child-rekeyed', old: child, successor: winner } },
      { kind: 'remove', child, reason: 'rekeyed', lingerMs },
    ]);
  }
  // Make-before-break, responder side: now send on the new SA.
  if (child.state.tag === 'rekeyed' && child.state.successor)
    return done([{ kind: 'activate-outbound', child: child.state.successor }, { kind: 'remove', child, reason: 'rekeyed', lingerMs }]);
  if (child.outbound.tag === 'pending') {
    const effects: ChildEffect[] = [{ kind: 'remove', child, reason: 'rekeyed', lingerMs: 0 }];
    for (const old of siblings) if (old.state.tag === 'rekeyed' && old.state.successor === child) effects.push({ kind: 'set-state', child: old, state: { tag: 'installed' } });
    return done(effects);
  }
  return done([{ kind: 'remove', child, reason: child.state.tag === 'deleting' ? 'terminated' : 'peer-deleted', lingerMs: 0 }]);
}

/**
 * Initiator of an INFORMATIONAL Delete of `child`: the peer answered (RFC 7296 §1.4.1). After our
 * rekey the old SA goes, its inbound state lingering `lingerMs` (§2.8); after terminate() it goes at
 * once. A redundant or expired SA is already out of the kernel.
 */
export function childDeleteAnswered(child: ChildSa, reason: Extract<Task, { kind: 'child-delete' }>['reason'], lingerMs: number): Step<typeof DONE> {
  if (reason === 'rekeyed') return done([{ kind: 'remove', child, reason: 'rekeyed', lingerMs }]);
  if (reason === 'terminated') return done([{ kind: 'remove', child, reason: 'terminated', lingerMs: 0 }]);
  return done([]);
}
