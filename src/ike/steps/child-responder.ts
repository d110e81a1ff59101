// CREATE_CHILD_SA for a Child SA, responder side, as pure steps (see child.ts for the shape):
// consumeChildRequest decides whether to agree, the driver then allocates our inbound SPI for the
// chosen child, and acceptChildRequest derives the keys and asks for the install; childInstalled
// (child.ts) sends the answer once the kernel has the SA. Refusals allocate nothing.
//
//   HDR, SK {[N(REKEY_SA)], SA, Ni, [KEi], TSi, TSr}  -->
//                      <-- HDR, SK {SA, Nr, [KEr], TSi, TSr}
//                      <-- HDR, SK {N(TEMPORARY_FAILURE | CHILD_SA_NOT_FOUND | INVALID_SYNTAX | NO_PROPOSAL_CHOSEN | TS_UNACCEPTABLE | INVALID_KE_PAYLOAD)}
import { NotifyError, NotifyStatus, ProtocolId } from '../constants.js';
import type { IkeMessage } from '../codec/message.js';
import type { IkePayload } from '../codec/payload.js';
import { notify } from '../codec/payloads/notify.js';
import { rekeySa } from '../codec/payloads/notify-data.js';
import type { SecretBytes } from '../../common/secret.js';
import { acceptChild, childAnswer, chooseChild, spi32, spiNumber, type ChildChoice, type ChildEnv, type ChildIkeView } from '../exchanges/child-sa.js';
import { NONCE_BYTES } from '../sa/defaults.js';
import { isNonEmpty } from '../non-empty.js';
import { followupMethods, linkNotify, responderStart } from './followup-ke.js';
import type { IkeFailure, KernelChildSa } from '../ports.js';
import type { ChildFollowupPending, ChildSa, IkeSa, Task } from '../sa/ike-sa.js';
import type { ChildEffect, ChildExchange, Step } from './child.js';

/** What the responder reads of its IKE SA besides what negotiation does: its state and Child SAs. */
export interface ResponderIkeView extends ChildIkeView {
  readonly state: { readonly tag: IkeSa['state']['tag'] };
  readonly children: ReadonlyMap<number, ChildSa>;
  /** Our IKE_FOLLOWUP_KE run on the IKE SA (sa/followup.ts; the peer's are dropped by now): a request needing another one waits. */
  readonly followup?: { readonly for: 'ike' | 'child' } | null;
  /** Our request in flight, if any. */
  readonly outstanding?: { readonly task: Task } | null;
}

/**
 * The IKE SA holds one IKE_FOLLOWUP_KE run (sa/followup.ts): while one is open, or while the
 * answer to our own CREATE_CHILD_SA for another SA may start one, a request that needs a run is
 * refused with TEMPORARY_FAILURE (§2.25) and retried. Our rekey of `old` itself is a collision,
 * settled when its answer comes (child.ts consumeChildResponse).
 */
function runSlotTaken(ike: ResponderIkeView, old: ChildSa | null): boolean {
  if (ike.followup) return true;
  const t = ike.outstanding?.task;
  if (t?.kind === 'child-rekey') return t.old !== old;
  return t?.kind === 'child-create' || t?.kind === 'ike-rekey';
}

/** RFC 9370: the chosen proposal has additional key exchanges (run in IKE_FOLLOWUP_KE). */
const needsFollowup = (c: ChildChoice): boolean => followupMethods(c.sel.transforms).length > 0;

type Chosen = Extract<ChildExchange, { tag: 'chosen' }>;

function refuse(reply: readonly IkePayload[], failure: IkeFailure | null = null): Step<{ readonly tag: 'done' }> {
  const effects: ChildEffect[] = [{ kind: 'respond', payloads: reply }];
  if (failure) effects.push({ kind: 'emit', event: { type: 'error', failure } });
  return { next: { tag: 'done' }, effects };
}

/** Responder: a CREATE_CHILD_SA request that is not an IKE SA rekey. */
export function consumeChildRequest(env: Pick<ChildEnv, 'random'>, ike: ResponderIkeView, m: IkeMessage): Step<Chosen | { readonly tag: 'done' }> {
  if (ike.state.tag !== 'established') return refuse([notify(NotifyError.TEMPORARY_FAILURE)]);
  const rk = m.notify(NotifyStatus.REKEY_SA);
  if (rk === undefined) {
    const n = chooseChild(env, ike, m, { inIkeAuth: false, only: null, exchange: 'CREATE_CHILD_SA' });
    if (n.ok && needsFollowup(n.choice) && runSlotTaken(ike, null)) { n.choice.pfs?.wipe(); return refuse([notify(NotifyError.TEMPORARY_FAILURE)]); }
    return n.ok ? { next: { tag: 'chosen', choice: n.choice, rekey: null }, effects: [] } : refuse(n.reply, n.failure);
  }
  let named: { protocolId: number; spi: Uint8Array };
  try { named = rekeySa(rk); } catch { return refuse([notify(NotifyError.INVALID_SYNTAX)]); }
  const spi = spiNumber(named.spi);
  // REKEY_SA names the SPI the peer receives on, i.e. our outbound SPI, and its protocol: our
  // Child SAs are all ESP, so an AH SA with that SPI is not one of them (§3.10.1).
  const old = named.protocolId === ProtocolId.ESP ? [...ike.children.values()].find((c) => c.ref.outboundSpi === spi) : undefined;
  if (old === undefined) return refuse([{ ...notify(NotifyError.CHILD_SA_NOT_FOUND), protocolId: named.protocolId, spi: spi32(spi) }]);
  // §2.25.1: a rekey of an SA we are deleting (or already replaced) gets TEMPORARY_FAILURE.
  if (old.state.tag !== 'installed' && old.state.tag !== 'rekeying') return refuse([notify(NotifyError.TEMPORARY_FAILURE)]);
  const n = chooseChild(env, ike, m, { inIkeAuth: false, only: old.runtime, exchange: 'CREATE_CHILD_SA' });
  if (!n.ok) return refuse(n.reply, n.failure);
  // With IKE_FOLLOWUP_KE to come while the run slot is taken (by our run for this very SA too:
  // our CREATE_CHILD_SA was answered before this request came, so the peer never saw a
  // collision), the request is refused and retried, as after any TEMPORARY_FAILURE (RFC 9370
  // §2.2.2, as strongSwan answers it).
  if (needsFollowup(n.choice) && runSlotTaken(ike, old)) { n.choice.pfs?.wipe(); return refuse([notify(NotifyError.TEMPORARY_FAILURE)]); }
  // Our own rekey of `old` is in flight: a collision (§2.8.1). With IKE_FOLLOWUP_KE to come, the
  // answer to our request settles it (child.ts consumeChildResponse).
  return { next: { tag: 'chosen', choice: n.choice, rekey: { old, collision: old.state.tag === 'rekeying' } }, effects: [] };
}

/** Responder: the chosen Child SA on our inbound SPI `inboundSpi`, which the driver allocated for `s.choice.runtime`'s reqid. */
export function acceptChildRequest(env: ChildEnv, ike: ChildIkeView, s: Chosen, inboundSpi: number): Step<Extract<ChildExchange, { tag: 'answer-installing' } | { tag: 'done' }>> {
  const methods = followupMethods(s.choice.sel.transforms);
  if (isNonEmpty(methods) && s.choice.pfs) {
    // RFC 9370 §2.2.2: answer with N(ADDITIONAL_KEY_EXCHANGE); keys and install after the last IKE_FOLLOWUP_KE.
    const nr = env.random.bytes(NONCE_BYTES);
    const state = responderStart(methods, s.choice.pfs, env.random);
    return {
      next: { tag: 'done' },
      effects: [
        { kind: 'followup', pending: { role: 'responder', choice: s.choice, rekey: s.rekey, inboundSpi, nr }, state },
        { kind: 'respond', payloads: [...childAnswer(s.choice, inboundSpi, nr), linkNotify(state.link)] },
      ],
    };
  }
  return acceptChosen(env, ike, s, inboundSpi);
}

/**
 * Responder: the last IKE_FOLLOWUP_KE request of the peer's CREATE_CHILD_SA was answered by the
 * steps (`reply`, held until the install): KEYMAT = prf+(SK_d, SK(0) | Ni | Nr | SK(1) | ... | SK(n))
 * (RFC 9370 §2.2.4), then as for a plain request.
 */
export function acceptChildAfterFollowup(env: ChildEnv, ike: ChildIkeView, p: Extract<ChildFollowupPending, { role: 'responder' }>, secrets: readonly SecretBytes[], reply: readonly IkePayload[]): Step<Extract<ChildExchange, { tag: 'answer-installing' }>> {
  const [, ...rest] = secrets;
  // A collision is one only if our own rekey of the SA is still in flight now: one that lost to
  // this chain (child.ts consumeChildResponse) or was refused made this a plain rekey.
  const rekey = p.rekey && { old: p.rekey.old, collision: p.rekey.old.state.tag === 'rekeying' };
  const step = acceptChosen(env, ike, { tag: 'chosen', choice: p.choice, rekey }, p.inboundSpi, { nr: p.nr, additional: rest });
  for (const x of secrets) x.wipe();
  return { next: { ...step.next, reply }, effects: step.effects };
}

function acceptChosen(env: ChildEnv, ike: ChildIkeView, s: Chosen, inboundSpi: number, after?: { readonly nr: Uint8Array; readonly additional: readonly SecretBytes[] }): Step<Extract<ChildExchange, { tag: 'answer-installing' }>> {
  const n = acceptChild(env, ike, s.choice, inboundSpi, after);
  if (s.rekey === null) {
    return { next: { tag: 'answer-installing', child: n.child, reply: n.reply, rekey: null }, effects: [{ kind: 'install', child: n.child, install: n.install, peerCreated: true }] };
  }
  // Make-before-break (§2.8): install the new inbound SA now, but keep sending on the old one
  // until the initiator deletes it. The kernel does not hold the outbound state until the switch,
  // so the record keeps it (the checkpoint needs it to switch after a restart).
  const install: KernelChildSa = { ...n.install, outboundActive: false };
  const child: ChildSa = { ...n.child, outbound: { tag: 'pending', state: n.install.outbound } };
  return { next: { tag: 'answer-installing', child, reply: n.reply, rekey: s.rekey }, effects: [{ kind: 'install', child, install, peerCreated: false }] };
}
