// CREATE_CHILD_SA rekeying the IKE SA (RFC 7296 §1.3.2, §2.18; collisions §2.8.2 by §2.8.1's
// nonce rule) as pure steps, the shape of child.ts: each step takes the exact exchange state it
// expects and returns the next state and the effects for the driver (sa/ike-rekey-tasks.ts) to
// carry out in order. Steps read records but never change them and never touch ports; the driver
// allocates the new IKE SA's SPI before a step runs. This file: the shared types, the initiator's
// steps, and what follows for both roles (the IKE_FOLLOWUP_KE run's end as initiator, the peer's
// Delete of the old SA overtaking our answer); the responder's steps are in ike-rekey-responder.ts.
//
//   HDR, SK {SA(IKE, SPIi'), Ni, KEi}  -->
//                  <-- HDR, SK {SA(IKE, SPIr'), Nr, KEr, [N(ADDITIONAL_KEY_EXCHANGE)(link)]}
//                  <-- HDR, SK {N(TEMPORARY_FAILURE | NO_PROPOSAL_CHOSEN | INVALID_KE_PAYLOAD | INVALID_SYNTAX)}
//
// The new IKE SA's keys come from the old SA's SK_d (§2.18): SKEYSEED = prf(SK_d, g^ir | Ni | Nr).
// The side that initiated the rekey is the original initiator of the new SA. Child SAs move to the
// new IKE SA; the rekey initiator then deletes the old one with an INFORMATIONAL on it. With RFC
// 9370 additional key exchanges chosen the new SA gets its keys only after IKE_FOLLOWUP_KE
// (followup-ke.ts, driven by sa/followup.ts).
import { SecretBytes } from '../../common/secret.js';
import type { Clock, Random } from '../../common/time.js';
import { NotifyError, notifyName } from '../constants.js';
import { invalidKeGroup } from '../codec/payloads/notify-data.js';
import type { IkeMessage } from '../codec/message.js';
import type { IkePayload } from '../codec/payload.js';
import { createKeyShare } from '../crypto/dh.js';
import { deriveRekeyedIkeSaKeys, type IkeSaKeys } from '../crypto/keys.js';
import { ourRekeyLoses } from './collision.js';
import { rekeyedState, spiBytes, upOf } from '../sa/ike-sa.js';
import { upKeysOf, type KeyedIkeSa } from '../sa/ike-keys.js';
import { keRetry } from '../exchanges/invalid-ke.js';
import { dhGroupOf, fromSaProposal, ikeSuiteOf, toSaProposals } from '../policy/convert.js';
import { checkProposalReply, type SelectedProposal } from '../policy/select.js';
import type { IkeFailure } from '../ports.js';
import { ikeFailure } from '../sa/context.js';
import { NONCE_BYTES, REKEY_RETRY_MS } from '../sa/defaults.js';
import { ikeKeysOf } from '../sa/ike-keys.js';
import type { IkeCollision, IkeKeys, IkeRekeyScratch, IkeSa, IkeSaState } from '../sa/ike-sa.js';
import { suiteText } from '../sa/memo.js';
import { isNonEmpty } from '../non-empty.js';
import { followupMethods, initiatorStart, linkOf, type FollowupKe, type RekeyedIkeInputs } from './followup-ke.js';

/** An IKE SA that is up and keyed: only such a one is rekeyed (the driver checks before a step). */
export { upKeyed as keyed, type KeyedIkeSa } from '../sa/ike-keys.js';

/** What the steps use of the engine: time and randomness, and serials for a new IKE SA record. */
export interface IkeRekeyEnv {
  readonly clock: Pick<Clock, 'now'>;
  readonly random: Random;
  newSerial(): number;
}

export type { IkeCollision } from '../sa/ike-sa.js';

/** One CREATE_CHILD_SA exchange rekeying the IKE SA, from either side. */
export type IkeRekeyExchange =
  /** Initiator: our request is out; `collision`: see IkeCollision (the driver takes it off the record for this step). */
  | { readonly tag: 'sent'; readonly offer: IkeRekeyScratch; readonly retried: boolean; readonly collision: IkeCollision | null }
  /**
   * Responder: the request is acceptable; the driver allocates our SPI for the new SA next.
   * `collision`: our own rekey of this IKE SA is in flight (§2.8.2).
   */
  | {
    readonly tag: 'chosen'; readonly sel: SelectedProposal; readonly group: number; readonly spiI: bigint; readonly ni: Uint8Array;
    readonly kePublic: Uint8Array; readonly secret: SecretBytes; readonly collision: boolean;
  }
  | { readonly tag: 'done' };

export type IkeRekeyEffect =
  /** Our request (the driver numbers, seals and retransmits it). */
  | { readonly kind: 'send'; readonly payloads: readonly IkePayload[] }
  /** The answer to the request being handled. */
  | { readonly kind: 'respond'; readonly payloads: readonly IkePayload[] }
  /** Make the new IKE SA `sa` (keyed) reachable by its SPI; it is not live until adopted. */
  | { readonly kind: 'register'; readonly sa: IkeSa }
  /** `old` hands its Child SAs (and timers, reauthentication link) to `successor` and is superseded. */
  | { readonly kind: 'adopt'; readonly old: IkeSa; readonly successor: IkeSa }
  /** `sa` is superseded: it waits for the peer's Delete, at most REKEYED_SA_TIMEOUT_MS. */
  | { readonly kind: 'await-delete'; readonly sa: IkeSa }
  /** Queue an INFORMATIONAL Delete of `sa`. */
  | { readonly kind: 'delete'; readonly sa: IkeSa; readonly reason: 'rekeyed' | 'redundant' }
  | { readonly kind: 'set-state'; readonly sa: IkeSa; readonly state: IkeSaState }
  /** §2.8.2: we answered the peer's rekey of `sa` (its result `peerSa`, `nonces` its exchange's Ni, Nr) while ours is in flight. */
  | { readonly kind: 'collision'; readonly sa: IkeSa; readonly peerSa: IkeSa; readonly nonces: readonly Uint8Array[] }
  /** The collision on `sa` is settled (the peer's Delete of `sa` came first). */
  | { readonly kind: 'forget-collision'; readonly sa: IkeSa }
  /** §1.3.2: repeat our rekey at once (ahead of other tasks) with the KE method the peer asked for. */
  | { readonly kind: 'retry-now'; readonly group: number }
  /** Rekey again in `afterMs` (replaces a pending rekey timer). */
  | { readonly kind: 'retry-later'; readonly afterMs: number }
  /**
   * RFC 9370 §2.2.2: `fresh` (keying: no keys yet, not registered) waits for IKE_FOLLOWUP_KE on the old
   * SA; the driver keeps the run (sa/followup.ts). `keys`: what its keys come from.
   */
  | { readonly kind: 'followup'; readonly fresh: IkeSa; readonly selected: SelectedProposal; readonly keys: RekeyedIkeInputs; readonly state: FollowupKe }
  /** RFC 9370 §2.2.2: we won a collision with the peer's rekey: drop our run for its IKE_FOLLOWUP_KE. */
  | { readonly kind: 'drop-peer-run' }
  /** Recorded as the peer's lastError and emitted as an `error` event. */
  | { readonly kind: 'error'; readonly failure: IkeFailure };

export interface IkeRekeyStep<S extends IkeRekeyExchange = IkeRekeyExchange> { readonly next: S; readonly effects: readonly IkeRekeyEffect[] }

type Sent = Extract<IkeRekeyExchange, { tag: 'sent' }>;
const DONE = { tag: 'done' } as const;
export const done = (effects: readonly IkeRekeyEffect[]): IkeRekeyStep<typeof DONE> => ({ next: DONE, effects });

export function spiOf(b: Uint8Array): bigint { return b.length === 8 ? new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0) : 0n; }

/**
 * The record of the new IKE SA: endpoints, NAT state and peer from `old`; not registered, not
 * live. `keyed`: its proposal and keys, null while IKE_FOLLOWUP_KE is to come (it is keying then).
 */
export function successorSa(env: IkeRekeyEnv, old: IkeSa, role: 'initiator' | 'responder', spiI: bigint, spiR: bigint, keyed: { readonly selected: SelectedProposal; readonly keys: IkeKeys } | null): IkeSa {
  const now = env.clock.now();
  const up = { remoteId: upOf(old)?.remoteId ?? null, establishedAtMs: now, upSerial: env.newSerial(), rekeyAtMs: null, resumedAtMs: null };
  return {
    serial: env.newSerial(), peer: old.peer, role, spiI, spiR,
    state: keyed === null ? { tag: 'keying', up } : { tag: 'established', up, keyed: { selected: keyed.selected, keys: upKeysOf(keyed.keys) } },
    local: old.local, remote: old.remote, natLocal: old.natLocal, natRemote: old.natRemote, fragmentation: old.fragmentation,
    peerHashes: old.peerHashes, nextRequestId: 0, outstanding: null, pending: [], expectedRequestId: 0,
    lastResponse: null, fragments: null, children: new Map(), lingering: null, reauth: null, followup: null, createdAtMs: now,
    lastInboundMs: now, timers: { rekey: null, dpd: null, halfOpen: null, rekeyed: null }, queue: Promise.resolve(),
  };
}

/** The new IKE SA's keys and ciphers from its §2.14 key set. */
export function rekeyedKeys(random: Random, role: 'initiator' | 'responder', sel: SelectedProposal, raw: IkeSaKeys): IkeKeys {
  return ikeKeysOf({ suite: ikeSuiteOf(sel), suiteText: suiteText('ike', sel.transforms), dhGroup: dhGroupOf(sel) ?? 0, raw, role, random });
}

/** §2.18: the new IKE SA's keys from g^ir and the old SA's SK_d and PRF, the new SPIs in the order of the new SA's roles. */
export function keysFromOld(env: Pick<IkeRekeyEnv, 'random'>, old: KeyedIkeSa, role: 'initiator' | 'responder', sel: SelectedProposal, a: { readonly secret: SecretBytes; readonly ni: Uint8Array; readonly nr: Uint8Array; readonly spiI: bigint; readonly spiR: bigint }): IkeKeys {
  const raw = deriveRekeyedIkeSaKeys({ suite: ikeSuiteOf(sel), sharedSecret: a.secret, ni: a.ni, nr: a.nr, spiI: spiBytes(a.spiI), spiR: spiBytes(a.spiR), oldPrfId: old.state.keyed.keys.suite.prfId, oldSkD: old.state.keyed.keys.skD });
  return rekeyedKeys(env.random, role, sel, raw);
}

/** What the new IKE SA's keys come from after IKE_FOLLOWUP_KE (followup-ke.ts rekeyedIkeKeys). */
export function followupInputs(old: KeyedIkeSa, sel: SelectedProposal, a: { readonly ni: Uint8Array; readonly nr: Uint8Array; readonly spiI: bigint; readonly spiR: bigint }): RekeyedIkeInputs {
  const k = old.state.keyed.keys;
  return { prf: k.prf, skD: k.skD, suite: ikeSuiteOf(sel), ni: a.ni, nr: a.nr, spiI: spiBytes(a.spiI), spiR: spiBytes(a.spiR) };
}

/** Initiator: SA with our new SPI `spi` (the driver's), Ni, KEi in the IKE SA's group or the one the peer asked for (`group`). */
export function requestIkeRekey(env: IkeRekeyEnv, old: KeyedIkeSa, spi: bigint, group?: number): IkeRekeyStep<Sent> {
  const g = group ?? old.state.keyed.keys.dhGroup;
  const share = createKeyShare(g, { random: env.random, allowWeak: old.peer.config.ike.allowWeak ?? false });
  const ni = env.random.bytes(NONCE_BYTES);
  const payloads: IkePayload[] = [
    { kind: 'sa', proposals: toSaProposals(old.peer.ikeProposals, spiBytes(spi)) },
    { kind: 'nonce', data: ni },
    { kind: 'ke', group: g, data: share.publicValue },
  ];
  return { next: { tag: 'sent', offer: { spi, ni, share }, retried: group !== undefined, collision: null }, effects: [{ kind: 'send', payloads }] };
}

type Completion =
  /** `nr`: the responder's nonce; `followup`: additional key exchanges were chosen, `sa` has no keys until they are done. */
  | { readonly ok: true; readonly sa: IkeSa; readonly nr: Uint8Array; readonly followup: { readonly state: Extract<FollowupKe, { tag: 'to-send' }>; readonly keys: RekeyedIkeInputs; readonly selected: SelectedProposal } | null }
  /** `retryGroup`: the KE method an INVALID_KE_PAYLOAD asked for (invalid-ke.ts decides). */
  | { readonly ok: false; readonly failure: IkeFailure; readonly temporary: boolean; readonly retryGroup?: number };

function complete(env: IkeRekeyEnv, old: KeyedIkeSa, s: IkeRekeyScratch, m: IkeMessage): Completion {
  const err = m.errorNotifies()[0];
  if (err !== undefined) {
    const temporary = err.type === NotifyError.TEMPORARY_FAILURE;
    const failure = ikeFailure({ code: temporary ? 'ERR_IKE_REKEY_TEMPORARY' : 'ERR_IKE_REKEY_REFUSED', notify: notifyName(err.type), origin: 'remote', exchange: 'CREATE_CHILD_SA', message: 'peer refused the IKE SA rekey' });
    if (err.type === NotifyError.INVALID_KE_PAYLOAD && err.data.length === 2) return { ok: false, temporary, failure, retryGroup: invalidKeGroup(err) };
    return { ok: false, temporary, failure };
  }
  const bad = (message: string): Completion => ({ ok: false, temporary: false, failure: ikeFailure({ code: 'ERR_IKE_BAD_REKEY_REPLY', message, origin: 'remote', exchange: 'CREATE_CHILD_SA' }) });
  const saP = m.first('sa'); const ke = m.first('ke'); const nonce = m.first('nonce');
  if (!saP || !ke || !nonce) return bad('IKE rekey response lacks SA, KE or Nr');
  const check = checkProposalReply(old.peer.ikeProposals, saP.proposals.map(fromSaProposal), { additionalKeyExchanges: true });
  if (!check.ok) return bad(check.message);
  const sel = check.proposal;
  const spiR = spiOf(saP.proposals[0]?.spi ?? new Uint8Array(0));
  if (spiR === 0n || ke.group !== s.share.group || dhGroupOf(sel) !== ke.group) return bad('IKE rekey response has no SPI or a mismatched KE');
  const methods = followupMethods(sel.transforms);
  const link = linkOf(m);
  if (methods.length > 0 && link === undefined) return bad('IKE rekey response chose additional key exchanges but has no ADDITIONAL_KEY_EXCHANGE notify (RFC 9370 §2.2.2)');
  let secret: SecretBytes;
  try { secret = s.share.computeSharedSecret(ke.data); } catch (e) { return bad((e as Error).message); }
  const n = { ni: s.ni, nr: new Uint8Array(nonce.data), spiI: s.spi, spiR };
  if (link !== undefined && isNonEmpty(methods)) {
    const sa = successorSa(env, old, 'initiator', s.spi, spiR, null);
    return { ok: true, sa, nr: n.nr, followup: { state: initiatorStart(methods, secret, link), keys: followupInputs(old, sel, n), selected: sel } };
  }
  const keys = keysFromOld(env, old, 'initiator', sel, { secret, ...n });
  secret.wipe();
  return { ok: true, sa: successorSa(env, old, 'initiator', s.spi, spiR, { selected: sel, keys }), nr: n.nr, followup: null };
}

/** `old` yields to the peer's new IKE SA: it takes over, and the peer deletes `old`. */
const yieldTo = (old: IkeSa, peerSa: IkeSa): IkeRekeyEffect[] => [{ kind: 'adopt', old, successor: peerSa }, { kind: 'await-delete', sa: old }];

/**
 * Initiator: the answer to our request. `peerRun`: the peer's rekey of this IKE SA that we
 * answered with IKE_FOLLOWUP_KE to come, by the nonces of its CREATE_CHILD_SA (Ni, our Nr).
 */
export function consumeIkeRekeyResponse(env: IkeRekeyEnv, old: KeyedIkeSa, s: Sent, m: IkeMessage, peerRun: { readonly nonces: readonly Uint8Array[] } | null = null): IkeRekeyStep<typeof DONE> {
  const r = complete(env, old, s.offer, m);
  const collision = s.collision;
  if (!r.ok) {
    // Ours failed, the peer's went through: its SA is the successor, and the peer deletes the old one.
    if (collision) return done(yieldTo(old, collision.peerSa));
    let failure = r.failure;
    if (r.retryGroup !== undefined) {
      // §1.3.2: repeat the rekey at once with the group the peer named, once (invalid-ke.ts).
      const k = keRetry({ proposals: old.peer.ikeProposals, sent: s.offer.share.group, retried: s.retried, wanted: r.retryGroup, what: 'the IKE SA rekey' });
      if (k.kind === 'retry') return done([{ kind: 'retry-now', group: k.group }]);
      failure = k.failure;
    }
    // Like any refused rekey: the IKE SA still works, try again later from its own group. Should
    // two rekeys with IKE_FOLLOWUP_KE refuse each other (each met an IKE_FOLLOWUP_KE run), the
    // SA's original initiator retries first, so they do not meet again.
    const effects: IkeRekeyEffect[] = r.temporary ? [] : [{ kind: 'error', failure }];
    const wait = r.temporary && old.state.keyed.selected.additionalKeyExchanges && old.role === 'responder' ? 2 * REKEY_RETRY_MS : REKEY_RETRY_MS;
    if (old.state.tag === 'established') effects.push({ kind: 'retry-later', afterMs: wait });
    return done(effects);
  }
  const fresh = r.sa;
  if (r.followup !== null) {
    const f = r.followup;
    const wipe = (): void => { for (const x of f.state.secrets) x.wipe(); };
    // The peer's rekey got in while ours was open: with IKE_FOLLOWUP_KE to come, ours yields.
    if (collision) { wipe(); return done(yieldTo(old, collision.peerSa)); }
    // The peer's chain ended here first (the answer to ours came late): its IKE SA took over.
    if (old.state.tag !== 'established') { wipe(); return done([]); }
    const run: IkeRekeyEffect = { kind: 'followup', fresh, selected: f.selected, keys: f.keys, state: f.state };
    if (peerRun === null) return done([run]);
    // RFC 9370 §2.2.2 with §2.8.2: we answered the peer's rekey, whose IKE_FOLLOWUP_KE we wait
    // for. Both CREATE_CHILD_SA exchanges are done, so their four nonces settle it before any
    // IKE_FOLLOWUP_KE, as strongSwan does: the loser abandons its chain (neither side has its new
    // IKE SA registered), the winner drops its run for the loser's and goes on with its own.
    if (!ourRekeyLoses([s.offer.ni, r.nr], peerRun.nonces)) return done([{ kind: 'drop-peer-run' }, run]);
    wipe();
    // Should the peer's chain fail, rekey again later (the adoption cancels this when it ends).
    return done([{ kind: 'retry-later', afterMs: REKEY_RETRY_MS }]);
  }
  const register: IkeRekeyEffect = { kind: 'register', sa: fresh };
  if (collision && ourRekeyLoses([s.offer.ni, r.nr], collision.nonces)) {
    // Ours is the redundant SA (§2.8.1): the peer's takes over, the peer deletes the old one, we delete ours.
    return done([register, ...yieldTo(old, collision.peerSa), { kind: 'set-state', sa: fresh, state: rekeyedState(fresh, collision.peerSa) }, { kind: 'delete', sa: fresh, reason: 'redundant' }]);
  }
  const effects: IkeRekeyEffect[] = [register, { kind: 'adopt', old, successor: fresh }];
  // We won: the peer's new IKE SA is redundant and the peer deletes it. It is superseded, not
  // live: its Delete retires it quietly (no ike-down), and it goes on its own if none comes.
  if (collision) effects.push({ kind: 'set-state', sa: collision.peerSa, state: rekeyedState(collision.peerSa, fresh) }, { kind: 'await-delete', sa: collision.peerSa });
  effects.push({ kind: 'delete', sa: old, reason: 'rekeyed' });
  return done(effects);
}

/**
 * Initiator: our IKE_FOLLOWUP_KE run on `old` ended (RFC 9370 §2.2.2): `fresh` has its keys and
 * takes over, and we delete `old`; or the run failed, and like any refused rekey the IKE SA
 * still works and rekeys again later.
 */
export function ikeFollowupSettled(old: IkeSa, r: { readonly fresh: IkeSa } | { readonly failure: IkeFailure }): IkeRekeyStep<typeof DONE> {
  if ('failure' in r) return done([{ kind: 'error', failure: r.failure }, ...(old.state.tag === 'established' ? [{ kind: 'retry-later', afterMs: REKEY_RETRY_MS } as const] : [])]);
  return done([{ kind: 'register', sa: r.fresh }, { kind: 'adopt', old, successor: r.fresh }, { kind: 'delete', sa: old, reason: 'rekeyed' }]);
}

/**
 * Either role: the peer deleted `old` (INFORMATIONAL {D(IKE)}). §2.8.2: in a collision the peer
 * deletes the old IKE SA only once it has won, and its Delete can overtake the answer to our own
 * request: its new SA takes over now (the driver then retires `old`, and with it our request).
 */
export function peerDeletedRekeyingIke(old: IkeSa): IkeRekeyStep<typeof DONE> {
  const o = old.outstanding;
  const c = o?.task.kind === 'ike-rekey' && o.scratch.kind === 'ike-rekey' ? o.scratch.collision : null;
  if (c === null || old.state.tag !== 'established') return done([]);
  return done([{ kind: 'forget-collision', sa: old }, { kind: 'adopt', old, successor: c.peerSa }]);
}
