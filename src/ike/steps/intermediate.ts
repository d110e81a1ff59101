// IKE_INTERMEDIATE (RFC 9242) carrying RFC 9370's additional key exchanges, as pure steps (the
// shape of child.ts): each step takes the exact state it expects and returns the next state and
// the effects for the driver (sa/tasks.ts as initiator, sa/responder.ts as responder).
//
//   HDR(IKE_SA_INIT), SAi1{.., ADDKE1..}, KEi, Ni, N(INTERMEDIATE_EXCHANGE_SUPPORTED) -->
//                <-- HDR(IKE_SA_INIT), SAr1{.., ADDKE1}, KEr, Nr, N(INTERMEDIATE_EXCHANGE_SUPPORTED)
//   HDR(IKE_INTERMEDIATE, MID 1), SK {KEi(1)} -->
//                <-- HDR(IKE_INTERMEDIATE, MID 1), SK {KEr(1)}          keys updated (below)
//   ... one exchange per ADDKE method chosen, in transform type order ...
//   HDR(IKE_AUTH, MID n+1), SK {.., AUTH} -->                            AUTH covers IntAuth
//
// RFC 9370 §2.2.1: after exchange n, with SK(n) its shared secret,
//   SKEYSEED(n) = prf(SK_d(n-1), SK(n) | Ni | Nr)
//   {SK_d(n) | SK_ai(n) | SK_ar(n) | SK_ei(n) | SK_er(n) | SK_pi(n) | SK_pr(n)} = prf+(SKEYSEED(n), Ni | Nr | SPIi | SPIr)
// the next message (IKE_INTERMEDIATE or IKE_AUTH) is protected with the new keys.
//
// RFC 9242 §3.3.2: each message of exchange n is authenticated in IKE_AUTH through
//   IntAuth_in = prf(SK_pi(n-1), IntAuth_i(n-1) | IntAuth_in_A | IntAuth_in_P)   (request)
//   IntAuth_rn = prf(SK_pr(n-1), IntAuth_r(n-1) | IntAuth_rn_A | IntAuth_rn_P)   (response)
// with SK_p the keys that protected the message and IntAuth_x0 empty. _A is the IKE header and
// the Encrypted payload's generic header, _P the inner payloads in the clear; the Length fields
// in both headers count only _A | _P (no IV, padding, ICV), and a fragmented message counts as
// the one SK message it was split from. AUTH then signs
//   ... | IntAuth_iN | IntAuth_rN | IKE_AUTH_MID   (IKE_AUTH_MID: the IKE_AUTH request's Message ID, 4 octets).
import { concatBytes } from '../../common/bytes.js';
import type { SecretBytes } from '../../common/secret.js';
import type { Random } from '../../common/time.js';
import { NotifyError, notifyName, TransformType } from '../constants.js';
import { encodePayloadChain } from '../codec/chain.js';
import { encryptedPrefix } from '../codec/envelope.js';
import type { IkeHeader } from '../codec/header.js';
import type { IkeMessage } from '../codec/message.js';
import type { IkePayload } from '../codec/payload.js';
import { notify } from '../codec/payloads/notify.js';
import type { KeyShare } from '../crypto/dh.js';
import { initiateKeyExchange, keyExchangeDataLength, respondToKeyExchange } from '../crypto/key-exchange.js';
import { computeRekeyedSkeyseed, expandIkeSaKeys, type IkeSaKeys, type IkeSuite } from '../crypto/keys.js';
import type { Prf } from '../crypto/prf.js';
import { transformName } from '../policy/keywords.js';
import { isNonEmpty, type NonEmpty } from '../non-empty.js';
import type { IkeFailure } from '../ports.js';
import type { FollowupView, RekeyedIkeInputs } from './followup-ke.js';

/** IntAuth_iN and IntAuth_rN so far (both empty before the first exchange). */
export interface IntAuthChain { readonly i: Uint8Array; readonly r: Uint8Array }

export const EMPTY_CHAIN: IntAuthChain = { i: new Uint8Array(0), r: new Uint8Array(0) };

/** The additional key exchanges of one IKE SA setup, from either side. `methods[0]` is exchange `n`'s. */
export type Intermediate =
  /** Initiator: exchange `n` is next (IKE_SA_INIT done, or exchange n-1 answered). */
  | { readonly tag: 'to-send'; readonly n: number; readonly methods: NonEmpty<number>; readonly chain: IntAuthChain }
  /** Initiator: KEi(n) is out; `chain.i` already holds IntAuth_in. */
  | { readonly tag: 'ke-sent'; readonly n: number; readonly methods: NonEmpty<number>; readonly share: KeyShare; readonly chain: IntAuthChain }
  /** Responder: waiting for the request of exchange `n`. */
  | { readonly tag: 'awaiting'; readonly n: number; readonly methods: NonEmpty<number>; readonly chain: IntAuthChain }
  /** Both: every additional key exchange is done (`count` of them); IKE_AUTH may start. */
  | { readonly tag: 'done'; readonly count: number; readonly chain: IntAuthChain };

/**
 * What the steps read of the IKE SA: what a key update mixes in (the same inputs as a rekeyed IKE
 * SA's keys, followup-ke.ts), and SK_pi/SK_pr for the IntAuth chain.
 */
export interface IntermediateView extends RekeyedIkeInputs, FollowupView {
  readonly skPi: SecretBytes;
  readonly skPr: SecretBytes;
}

export type IntermediateEffect =
  /** Our request (the driver seals it under the current keys with the header it gave the step). */
  | { readonly kind: 'send'; readonly payloads: readonly IkePayload[] }
  /** The answer to the request being handled, sealed under the current keys. */
  | { readonly kind: 'respond'; readonly payloads: readonly IkePayload[] }
  /** Replace the IKE SA's keys (after the message of this step went out or was read). */
  | { readonly kind: 'update-keys'; readonly raw: IkeSaKeys }
  /** The IKE SA cannot be set up; `notifyPeer` only for errors the peer does not know of yet. */
  | { readonly kind: 'failed'; readonly failure: IkeFailure };

export interface IntermediateStep<S extends Intermediate = Intermediate> { readonly next: S; readonly effects: readonly IntermediateEffect[] }

/** The ADDKE methods other than NONE a chosen proposal names, in transform type order (RFC 9370 §2.2.1). */
export function additionalMethods(transforms: readonly { readonly type: number; readonly id: number }[]): number[] {
  return transforms
    .filter((t) => t.type >= TransformType.ADDKE1 && t.type <= TransformType.ADDKE7 && t.id !== 0)
    .sort((a, b) => a.type - b.type)
    .map((t) => t.id);
}

/** IntAuth_A | IntAuth_P of one IKE_INTERMEDIATE message (RFC 9242 §3.3.2, see the file comment). */
export function intAuthData(header: IkeHeader, inner: readonly IkePayload[]): Uint8Array {
  const { firstType, bytes } = encodePayloadChain(inner);
  return concatBytes(encryptedPrefix(header, [], firstType, bytes.length), bytes);
}

/**
 * IntAuth_A | IntAuth_P of a received IKE_INTERMEDIATE message from the octets that arrived (RFC
 * 9242 §3.1): the sender's MAC covers what it sent, which need not be what our encoder would make
 * of the decoded payloads (reserved bits, the critical bit). Only the two Length fields change.
 * A message built in process (no received octets) is its own encoding.
 */
export function receivedIntAuthData(m: IkeMessage): Uint8Array {
  const r = m.received;
  if (r === undefined) return intAuthData(m.header, m.payloads);
  const a = r.prefix.slice();
  const v = new DataView(a.buffer);
  v.setUint32(24, a.length + r.plaintext.length);
  v.setUint16(a.length - 2, 4 + r.plaintext.length);
  return concatBytes(a, r.plaintext);
}

/** IntAuth_n = prf(SK_p, IntAuth_(n-1) | IntAuth_n_A | IntAuth_n_P) of a message we send. */
export function nextIntAuth(prf: Prf, skP: SecretBytes, prev: Uint8Array, header: IkeHeader, inner: readonly IkePayload[]): Uint8Array {
  return prf.compute(skP, prev, intAuthData(header, inner));
}

/** IntAuth_n of a message we received, over its octets as received. */
export function receivedIntAuth(prf: Prf, skP: SecretBytes, prev: Uint8Array, m: IkeMessage): Uint8Array {
  return prf.compute(skP, prev, receivedIntAuthData(m));
}

/** IntAuth = IntAuth_iN | IntAuth_rN | IKE_AUTH_MID, appended to both sides' signed octets. */
export function intAuthOctets(chain: IntAuthChain, authMessageId: number): Uint8Array {
  const mid = new Uint8Array(4);
  new DataView(mid.buffer).setUint32(0, authMessageId >>> 0);
  return concatBytes(chain.i, chain.r, mid);
}

/** RFC 9370 §2.2.1 key update after exchange n. */
export function updatedKeys(v: IntermediateView, secret: SecretBytes): IkeSaKeys {
  const skeyseed = computeRekeyedSkeyseed(v.prf, v.skD, secret, v.ni, v.nr);
  try { return expandIkeSaKeys(v.suite, skeyseed, v.ni, v.nr, v.spiI, v.spiR); } finally { skeyseed.wipe(); }
}

function methodName(id: number): string { return transformName(TransformType.DH, id); }

function after(n: number, methods: NonEmpty<number>, chain: IntAuthChain, role: 'initiator' | 'responder'): Intermediate {
  const rest = methods.slice(1);
  if (!isNonEmpty(rest)) return { tag: 'done', count: n, chain };
  return role === 'initiator' ? { tag: 'to-send', n: n + 1, methods: rest, chain } : { tag: 'awaiting', n: n + 1, methods: rest, chain };
}

const fail = (message: string, code = 'ERR_IKE_INTERMEDIATE', notifyText: string | null = null): IntermediateEffect =>
  ({ kind: 'failed', failure: { code, message, exchange: 'IKE_INTERMEDIATE', notify: notifyText, origin: notifyText ? 'remote' : 'local', proposals: null, trafficSelectors: null } });

/** Initiator: KEi(n) for methods[0]. `header` is the request's (the driver sends with that Message ID). */
export function requestIntermediate(v: IntermediateView, s: Extract<Intermediate, { tag: 'to-send' }>, header: IkeHeader): IntermediateStep {
  const method = s.methods[0];
  const share = initiateKeyExchange(method, { random: v.random, allowWeak: v.allowWeak });
  const payloads: IkePayload[] = [{ kind: 'ke', group: method, data: share.publicValue }];
  const i = nextIntAuth(v.prf, v.skPi, s.chain.i, header, payloads);
  return { next: { tag: 'ke-sent', n: s.n, methods: s.methods, share, chain: { i, r: s.chain.r } }, effects: [{ kind: 'send', payloads }] };
}

/** Initiator: KEr(n) arrived (`m`: the decrypted response). */
export function consumeIntermediateResponse(v: IntermediateView, s: Extract<Intermediate, { tag: 'ke-sent' }>, m: IkeMessage): IntermediateStep {
  const method = s.methods[0];
  const err = m.errorNotifies()[0];
  if (err !== undefined) return { next: s, effects: [fail(`peer refused additional key exchange ${s.n} (${methodName(method)}) with ${notifyName(err.type)}`, 'ERR_IKE_INTERMEDIATE_REFUSED', notifyName(err.type))] };
  const ke = m.first('ke');
  if (ke === undefined || ke.group !== method)
    return { next: s, effects: [fail(`IKE_INTERMEDIATE response ${s.n} has ${ke ? `a KE of method ${ke.group}` : 'no KE payload'}, want ${methodName(method)} (RFC 9370 §2.2.1)`)] };
  let secret: SecretBytes;
  try { secret = s.share.computeSharedSecret(ke.data); } catch (e) {
    return { next: s, effects: [fail(`responder's ${methodName(method)} data is invalid: ${(e as Error).message}`, 'ERR_IKE_INVALID_KE_VALUE')] };
  }
  const r = receivedIntAuth(v.prf, v.skPr, s.chain.r, m);
  const raw = updatedKeys(v, secret);
  secret.wipe();
  return { next: after(s.n, s.methods, { i: s.chain.i, r }, 'initiator'), effects: [{ kind: 'update-keys', raw }] };
}

/**
 * Responder: the request of exchange n (`m` decrypted); `header` is our response's. The answer is
 * sealed under the current keys, so update-keys comes after respond.
 */
export function respondIntermediate(v: IntermediateView, s: Extract<Intermediate, { tag: 'awaiting' }>, m: IkeMessage, header: IkeHeader): IntermediateStep {
  const method = s.methods[0];
  const ke = m.first('ke');
  const refuse = (message: string): IntermediateStep => ({ next: s, effects: [{ kind: 'respond', payloads: [notify(NotifyError.INVALID_SYNTAX)] }, fail(message)] });
  if (ke === undefined || ke.group !== method)
    return refuse(`IKE_INTERMEDIATE request ${s.n} has ${ke ? `a KE of method ${ke.group}` : 'no KE payload'}, want ${methodName(method)} (RFC 9370 §2.2.1)`);
  if (ke.data.length !== keyExchangeDataLength(method, 'initiator', v.allowWeak))
    return refuse(`KEi(${s.n}) carries ${ke.data.length} bytes, want ${keyExchangeDataLength(method, 'initiator', v.allowWeak)} for ${methodName(method)}`);
  let res;
  try { res = respondToKeyExchange(method, ke.data, { random: v.random, allowWeak: v.allowWeak }); } catch (e) {
    return refuse(`initiator's ${methodName(method)} data is invalid: ${(e as Error).message}`);
  }
  const i = receivedIntAuth(v.prf, v.skPi, s.chain.i, m);
  const payloads: IkePayload[] = [{ kind: 'ke', group: method, data: res.publicValue }];
  const r = nextIntAuth(v.prf, v.skPr, s.chain.r, header, payloads);
  const raw = updatedKeys(v, res.sharedSecret);
  res.sharedSecret.wipe();
  return { next: after(s.n, s.methods, { i, r }, 'responder'), effects: [{ kind: 'respond', payloads }, { kind: 'update-keys', raw }] };
}

/** The view of an IKE SA whose IKE_SA_INIT is done (keys, nonces and both SPIs present). */
export function viewOf(a: {
  readonly keys: { readonly suite: IkeSuite; readonly prf: Prf; readonly skD: SecretBytes; readonly skPi: SecretBytes; readonly skPr: SecretBytes };
  readonly ni: Uint8Array; readonly nr: Uint8Array; readonly spiI: Uint8Array; readonly spiR: Uint8Array; readonly random: Random; readonly allowWeak: boolean;
}): IntermediateView {
  return { suite: a.keys.suite, prf: a.keys.prf, skD: a.keys.skD, skPi: a.keys.skPi, skPr: a.keys.skPr, ni: a.ni, nr: a.nr, spiI: a.spiI, spiR: a.spiR, random: a.random, allowWeak: a.allowWeak };
}

