// IKE_FOLLOWUP_KE (RFC 9370 §2.2.2) after a CREATE_CHILD_SA that rekeys the IKE SA with additional
// key exchanges, as pure steps (the shape of child.ts and intermediate.ts): each step takes the
// exact state it expects and returns the next state and the effects for the driver (sa/followup.ts).
//
//   HDR(CREATE_CHILD_SA), SK {SA(.., ADDKE1..), Ni, KEi} -->
//                <-- HDR(CREATE_CHILD_SA), SK {SA(.., ADDKE1), Nr, KEr, N(ADDITIONAL_KEY_EXCHANGE)(link1)}
//   HDR(IKE_FOLLOWUP_KE), SK {KEi(1), N(ADDITIONAL_KEY_EXCHANGE)(link1)} -->
//                <-- HDR(IKE_FOLLOWUP_KE), SK {KEr(1), N(ADDITIONAL_KEY_EXCHANGE)(link2)}
//   HDR(IKE_FOLLOWUP_KE), SK {KEi(2), N(ADDITIONAL_KEY_EXCHANGE)(link2)} -->
//                <-- HDR(IKE_FOLLOWUP_KE), SK {KEr(2)}                     the last answer has no link
//
// All of them run on the old IKE SA, under its keys. Only after the last one does the new SA get
// keys (RFC 9370 §2.2.4), over every shared secret in order (the steps hand them over in order):
//   SKEYSEED = prf(SK_d, SK(0) | Ni | Nr | SK(1) | ... | SK(n))          (IKE SA, rekeyedIkeKeys)
//   KEYMAT = prf+(SK_d, SK(0) | Ni | Nr | SK(1) | ... | SK(n))           (Child SA, crypto/keys.ts)
// with SK_d and prf the old IKE SA's, SK(0) the CREATE_CHILD_SA KE's secret and Ni, Nr its nonces;
// the seven keys then as RFC 7296 §2.18: prf+(SKEYSEED, Ni | Nr | SPIi | SPIr) with the new SPIs.
// A request whose link the responder does not know is answered STATE_NOT_FOUND (§2.2.2).
import { equalBytes } from '../../common/bytes.js';
import { SecretBytes } from '../../common/secret.js';
import type { Random } from '../../common/time.js';
import { NotifyError, NotifyStatus, notifyName, TransformType } from '../constants.js';
import type { IkeMessage } from '../codec/message.js';
import type { IkePayload } from '../codec/payload.js';
import { notify } from '../codec/payloads/notify.js';
import type { KeyShare } from '../crypto/dh.js';
import { initiateKeyExchange, keyExchangeDataLength, respondToKeyExchange } from '../crypto/key-exchange.js';
import { expandIkeSaKeys, type IkeSaKeys, type IkeSuite } from '../crypto/keys.js';
import type { Prf } from '../crypto/prf.js';
import { transformName } from '../policy/keywords.js';
import { isNonEmpty, type NonEmpty } from '../non-empty.js';
import type { IkeFailure } from '../ports.js';

/** Octets of the link data we hand out as responder (any length is allowed; strongSwan uses 4). */
export const LINK_BYTES = 8;

/**
 * One IKE rekey's additional key exchanges, from either side. `methods[0]` is exchange `n`'s;
 * `secrets` holds SK(0) .. SK(n-1) so far (the driver wipes them if the run is abandoned).
 */
export type FollowupKe =
  /** Initiator: exchange `n` is next; `link` is what the responder's last message carried. */
  | { readonly tag: 'to-send'; readonly n: number; readonly methods: NonEmpty<number>; readonly link: Uint8Array; readonly secrets: readonly SecretBytes[] }
  /** Initiator: KEi(n) is out. */
  | { readonly tag: 'ke-sent'; readonly n: number; readonly methods: NonEmpty<number>; readonly share: KeyShare; readonly secrets: readonly SecretBytes[] }
  /** Responder: waiting for the request of exchange `n`, which must carry `link`. */
  | { readonly tag: 'awaiting'; readonly n: number; readonly methods: NonEmpty<number>; readonly link: Uint8Array; readonly secrets: readonly SecretBytes[] }
  /** Both: all `count` additional exchanges are done; the new IKE SA has its keys. */
  | { readonly tag: 'done'; readonly count: number };

/** What the steps read: randomness for key shares and links, and whether weak methods are allowed. */
export interface FollowupView {
  readonly random: Random;
  readonly allowWeak: boolean;
}

/** What a run keys: the new IKE SA of a rekey, or Child SA `name` (named in the initiator's failures). */
export type FollowupFor = { readonly kind: 'ike' } | { readonly kind: 'child'; readonly name: string };

/** The view of one run on an IKE SA (sa/followup.ts keeps it with the run). */
export interface FollowupRunView extends FollowupView { readonly for: FollowupFor }

/** What the new IKE SA's keys come from: the old IKE SA's PRF and SK_d, the new SA's suite, nonces and SPIs. */
export interface RekeyedIkeInputs {
  readonly prf: Prf;
  readonly skD: SecretBytes;
  readonly suite: IkeSuite;
  readonly ni: Uint8Array;
  readonly nr: Uint8Array;
  readonly spiI: Uint8Array;
  readonly spiR: Uint8Array;
}

export type FollowupEffect =
  /** Our IKE_FOLLOWUP_KE request on the old IKE SA. */
  | { readonly kind: 'send'; readonly payloads: readonly IkePayload[] }
  /** The answer to the request being handled. */
  | { readonly kind: 'respond'; readonly payloads: readonly IkePayload[] }
  /**
   * Every exchange is done: SK(0) .. SK(n) in order, for the new SA's keys (rekeyedIkeKeys for an
   * IKE SA, KEYMAT for a Child SA, RFC 9370 §2.2.4). The driver owns them now and wipes them.
   */
  | { readonly kind: 'complete'; readonly secrets: readonly SecretBytes[] }
  /** The rekey failed; the old IKE SA is unaffected. */
  | { readonly kind: 'failed'; readonly failure: IkeFailure };

export interface FollowupStep { readonly next: FollowupKe; readonly effects: readonly FollowupEffect[] }

/** The ADDKE methods other than NONE a chosen proposal names, in transform type order (RFC 9370 §2.2.2). */
export function followupMethods(transforms: readonly { readonly type: number; readonly id: number }[]): number[] {
  return transforms
    .filter((t) => t.type >= TransformType.ADDKE1 && t.type <= TransformType.ADDKE7 && t.id !== 0)
    .sort((a, b) => a.type - b.type)
    .map((t) => t.id);
}

/** The link data of the ADDITIONAL_KEY_EXCHANGE notify in `m`, if any. */
export function linkOf(m: IkeMessage): Uint8Array | undefined {
  const n = m.notifies(NotifyStatus.ADDITIONAL_KEY_EXCHANGE)[0];
  return n === undefined ? undefined : new Uint8Array(n.data);
}

export function linkNotify(link: Uint8Array): IkePayload { return notify(NotifyStatus.ADDITIONAL_KEY_EXCHANGE, link); }

/** RFC 9370 §2.2.4: SKEYSEED = prf(SK_d, SK(0) | Ni | Nr | SK(1) | ... | SK(n)), then the seven keys. */
export function rekeyedIkeKeys(v: RekeyedIkeInputs, secrets: readonly SecretBytes[]): IkeSaKeys {
  const [sk0, ...rest] = secrets;
  if (sk0 === undefined) throw new Error('rekeyedIkeKeys: no shared secret');
  const skeyseed = new SecretBytes(v.prf.compute(v.skD, sk0.expose(), v.ni, v.nr, ...rest.map((s) => s.expose())));
  try { return expandIkeSaKeys(v.suite, skeyseed, v.ni, v.nr, v.spiI, v.spiR); } finally { skeyseed.wipe(); }
}

export function wipeSecrets(s: FollowupKe): void {
  if (s.tag !== 'done') for (const x of s.secrets) x.wipe();
}

const methodName = (id: number): string => transformName(TransformType.DH, id);

const fail = (message: string, code = 'ERR_IKE_FOLLOWUP_KE', notifyText: string | null = null): FollowupEffect =>
  ({ kind: 'failed', failure: { code, message, exchange: 'IKE_FOLLOWUP_KE', notify: notifyText, origin: notifyText ? 'remote' : 'local', proposals: null, trafficSelectors: null } });

/** Initiator, after the CREATE_CHILD_SA response: SK(0) and the responder's first link. */
export function initiatorStart(methods: NonEmpty<number>, sk0: SecretBytes, link: Uint8Array): Extract<FollowupKe, { tag: 'to-send' }> {
  return { tag: 'to-send', n: 1, methods, link, secrets: [sk0] };
}

/** Responder, answering the CREATE_CHILD_SA: the link its response carries, and what it waits for. */
export function responderStart(methods: NonEmpty<number>, sk0: SecretBytes, random: Random): Extract<FollowupKe, { tag: 'awaiting' }> {
  return { tag: 'awaiting', n: 1, methods, link: random.bytes(LINK_BYTES), secrets: [sk0] };
}

/** Initiator: KEi(n) for methods[0] with the link the responder gave. */
export function requestFollowup(v: FollowupView, s: Extract<FollowupKe, { tag: 'to-send' }>): FollowupStep {
  const method = s.methods[0];
  const share = initiateKeyExchange(method, { random: v.random, allowWeak: v.allowWeak });
  const payloads: IkePayload[] = [{ kind: 'ke', group: method, data: share.publicValue }, linkNotify(s.link)];
  return { next: { tag: 'ke-sent', n: s.n, methods: s.methods, share, secrets: s.secrets }, effects: [{ kind: 'send', payloads }] };
}

/** Initiator: KEr(n) arrived; the next request needs the new link, the last answer gives the keys. */
export function consumeFollowupResponse(v: FollowupRunView, s: Extract<FollowupKe, { tag: 'ke-sent' }>, m: IkeMessage): FollowupStep {
  const method = s.methods[0];
  const err = m.errorNotifies()[0];
  if (err !== undefined) {
    const [of, code] = v.for.kind === 'ike' ? ['the IKE SA rekey', 'ERR_IKE_REKEY_REFUSED'] : [`Child SA ${v.for.name}`, 'ERR_IKE_CHILD_REFUSED'];
    return { next: s, effects: [fail(`peer refused additional key exchange ${s.n} (${methodName(method)}) of ${of} with ${notifyName(err.type)}`, code, notifyName(err.type))] };
  }
  const ke = m.first('ke');
  if (ke === undefined || ke.group !== method)
    return { next: s, effects: [fail(`IKE_FOLLOWUP_KE response ${s.n} has ${ke ? `a KE of method ${ke.group}` : 'no KE payload'}, want ${methodName(method)} (RFC 9370 §2.2.2)`)] };
  const rest = s.methods.slice(1);
  const link = linkOf(m);
  let more: { readonly methods: NonEmpty<number>; readonly link: Uint8Array } | null = null;
  if (isNonEmpty(rest)) {
    if (link === undefined)
      return { next: s, effects: [fail(`IKE_FOLLOWUP_KE response ${s.n} has no ADDITIONAL_KEY_EXCHANGE notify, but ${rest.length} more exchange(s) were negotiated (RFC 9370 §2.2.2)`)] };
    more = { methods: rest, link };
  }
  let secret: SecretBytes;
  try { secret = s.share.computeSharedSecret(ke.data); } catch (e) {
    return { next: s, effects: [fail(`responder's ${methodName(method)} data is invalid: ${(e as Error).message}`, 'ERR_IKE_INVALID_KE_VALUE')] };
  }
  const secrets = [...s.secrets, secret];
  if (more !== null) return { next: { tag: 'to-send', n: s.n + 1, methods: more.methods, link: more.link, secrets }, effects: [] };
  return { next: { tag: 'done', count: s.n }, effects: [{ kind: 'complete', secrets }] };
}

/**
 * Responder: the request of exchange n. A wrong or missing link is STATE_NOT_FOUND, a wrong KE
 * INVALID_SYNTAX; either ends the rekey (the old IKE SA goes on).
 */
export function respondFollowup(v: FollowupView, s: Extract<FollowupKe, { tag: 'awaiting' }>, m: IkeMessage): FollowupStep {
  const method = s.methods[0];
  const refuse = (type: number, message: string): FollowupStep => ({ next: s, effects: [{ kind: 'respond', payloads: [notify(type)] }, fail(message)] });
  const link = linkOf(m);
  if (link === undefined || !equalBytes(link, s.link))
    return refuse(NotifyError.STATE_NOT_FOUND, `IKE_FOLLOWUP_KE request ${s.n} ${link === undefined ? 'has no ADDITIONAL_KEY_EXCHANGE notify' : 'carries a link we did not give'} (RFC 9370 §2.2.2)`);
  const ke = m.first('ke');
  if (ke === undefined || ke.group !== method)
    return refuse(NotifyError.INVALID_SYNTAX, `IKE_FOLLOWUP_KE request ${s.n} has ${ke ? `a KE of method ${ke.group}` : 'no KE payload'}, want ${methodName(method)} (RFC 9370 §2.2.2)`);
  const want = keyExchangeDataLength(method, 'initiator', v.allowWeak);
  if (ke.data.length !== want) return refuse(NotifyError.INVALID_SYNTAX, `KEi(${s.n}) carries ${ke.data.length} bytes, want ${want} for ${methodName(method)}`);
  let res;
  try { res = respondToKeyExchange(method, ke.data, { random: v.random, allowWeak: v.allowWeak }); } catch (e) {
    return refuse(NotifyError.INVALID_SYNTAX, `initiator's ${methodName(method)} data is invalid: ${(e as Error).message}`);
  }
  const secrets = [...s.secrets, res.sharedSecret];
  const payloads: IkePayload[] = [{ kind: 'ke', group: method, data: res.publicValue }];
  const rest = s.methods.slice(1);
  if (isNonEmpty(rest)) {
    const next = { tag: 'awaiting' as const, n: s.n + 1, methods: rest, link: v.random.bytes(LINK_BYTES), secrets };
    return { next, effects: [{ kind: 'respond', payloads: [...payloads, linkNotify(next.link)] }] };
  }
  return { next: { tag: 'done', count: s.n }, effects: [{ kind: 'respond', payloads }, { kind: 'complete', secrets }] };
}
