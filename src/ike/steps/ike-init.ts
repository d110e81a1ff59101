// IKE_SA_INIT as pure steps (RFC 7296 §1.2, §2.6, §2.10, §2.23; RFC 7383 §2.3; RFC 7427 §4). Each
// step takes the exact exchange state it expects and returns the next state and the effects for
// the driver (sa/ike-init-tasks.ts) to carry out; steps never touch ports. This file: the shared
// message parts and types, and the initiator's steps; the responder's are in ike-init-responder.ts.
//
//   initiator                                   responder
//   HDR, SAi1, KEi, Ni, N(NAT_D*), N(FRAG), N(SHA), [N(INTERMEDIATE_EXCHANGE_SUPPORTED)] -->
//                           <-- HDR, SAr1, KEr, Nr, N(NAT_D*), N(FRAG), N(SHA), [N(IES)], [CERTREQ]
//   or, stateless:          <-- HDR, N(COOKIE)            (under load, §2.6)
//                           <-- HDR, N(INVALID_KE_PAYLOAD) (wrong group guessed, §1.3)
//                           <-- HDR, N(NO_PROPOSAL_CHOSEN)
//
// An RFC 9370 proposal with ADDKE transforms is offered with N(INTERMEDIATE_EXCHANGE_SUPPORTED)
// (RFC 9242 §3) and chosen only from a peer that sent it; the additional key exchanges then run in
// IKE_INTERMEDIATE (intermediate.ts) before IKE_AUTH (ike-auth.ts).
import { hash } from 'node:crypto';
import { ParseError } from '../../common/errors.js';
import type { Random } from '../../common/time.js';
import { ExchangeType, isAdditionalKeyExchangeType, NotifyError, NotifyStatus, notifyName } from '../constants.js';
import type { IkeHeader } from '../codec/header.js';
import { encodeMessage, type IkeMessage } from '../codec/message.js';
import type { IkePayload } from '../codec/payload.js';
import { notify } from '../codec/payloads/notify.js';
import { cookieData, cookieNotify, invalidKeGroup, natDetectionHash, natDetectionInput, natDetectionNotify, signatureHashAlgorithms, signatureHashAlgorithmsNotify } from '../codec/payloads/notify-data.js';
import { DEFAULT_SIGNATURE_HASHES } from '../crypto/auth.js';
import { createKeyShare } from '../crypto/dh.js';
import { deriveIkeSaKeys, type IkeSaKeys } from '../crypto/keys.js';
import type { SecretBytes } from '../../common/secret.js';
import { acceptsDhGroup, dhGroupOf, fromSaProposal, ikeSuiteOf, toSaProposals } from '../policy/convert.js';
import { describeProposal, formatProposal } from '../policy/proposal.js';
import { checkProposalReply, type SelectedProposal } from '../policy/select.js';
import type { Endpoint, IkeFailure } from '../ports.js';
import { ikeFailure } from '../sa/context.js';
import { MAX_INIT_RETRIES, NONCE_BYTES } from '../sa/defaults.js';
import { ikeKeysOf } from '../sa/ike-keys.js';
import { spiBytes, type IkeKeys, type IkeSaState, type PeerRuntime } from '../sa/ike-sa.js';
import { addressBytes, suiteText } from '../sa/memo.js';
import { isNonEmpty } from '../non-empty.js';
import { additionalMethods, EMPTY_CHAIN, type Intermediate } from './intermediate.js';

/** What the IKE_SA_INIT steps read of the IKE SA: its peer config, SPIi, role and addresses. */
export interface InitEnds {
  readonly peer: PeerRuntime;
  readonly role: 'initiator' | 'responder';
  readonly spiI: bigint;
  readonly local: Endpoint;
  readonly remote: Endpoint;
}

/** What IKE_SA_INIT leaves the IKE SA with: keys, proposal, nonces and messages (AUTH covers them), NAT and options. */
export interface InitResult {
  readonly spiR: bigint;
  readonly keys: IkeKeys;
  readonly selected: SelectedProposal;
  readonly ni: Uint8Array;
  readonly nr: Uint8Array;
  readonly request: Uint8Array;
  readonly response: Uint8Array;
  readonly natLocal: boolean;
  readonly natRemote: boolean;
  /** Both sides announced IKEV2_FRAGMENTATION_SUPPORTED (RFC 7383 §2.3). */
  readonly fragmentation: boolean;
  readonly peerHashes: number[] | null;
  /** RFC 9370: the additional key exchanges to run in IKE_INTERMEDIATE; null when none were chosen. */
  readonly intermediate: Intermediate | null;
}

export type InitSent = Extract<IkeSaState, { tag: 'init-sent' }>;

export type InitEffect =
  /** Initiator: (re)send message 1; the driver arms its retransmission. */
  | { readonly kind: 'send'; readonly datagram: Uint8Array }
  /** Responder: the answer to message 1, to where it came from. */
  | { readonly kind: 'respond'; readonly datagram: Uint8Array }
  /** Counted and ignored; the initiator's request stays outstanding for the real answer. */
  | { readonly kind: 'drop'; readonly reason: string }
  /** The IKE SA's IKE_SA_INIT outcome. */
  | { readonly kind: 'keyed'; readonly result: InitResult }
  /** Initiator: the responder's SPI, of an answer that failed after naming it (its ike-down event names both). */
  | { readonly kind: 'responder-spi'; readonly spi: bigint }
  /** Initiator, §2.23: behind a NAT (or forced) IKE moves to port 4500 from the next exchange on. */
  | { readonly kind: 'float' }
  /** Initiator: what comes next, IKE_INTERMEDIATE (RFC 9370 §2.2.1) or IKE_AUTH. */
  | { readonly kind: 'next'; readonly task: 'ike-intermediate' | 'ike-auth' }
  /** Recorded as the peer's lastError and emitted as an `error` event. */
  | { readonly kind: 'error'; readonly failure: IkeFailure }
  /** Initiator: the IKE SA failed; its retry timer restarts it. */
  | { readonly kind: 'teardown' };

/** A step's result. The initiator's states are the SA record's (init-sent, then keyed or done); the responder's are in ike-init-responder.ts. */
export interface InitStep<S> { readonly next: S; readonly effects: readonly InitEffect[] }

function natHash(spiI: bigint, spiR: bigint, ep: Endpoint): Uint8Array {
  // One-shot hash(): no Hash object per digest (eight per handshake, both sides); the Buffer owns its memory.
  const d = hash('sha1', natDetectionInput(spiI, spiR, addressBytes(ep.address), ep.port), 'buffer');
  return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
}

export function natNotifies(random: Random, peer: PeerRuntime, spiI: bigint, spiR: bigint, local: Endpoint, remote: Endpoint): IkePayload[] {
  // natTraversal 'always': a source hash that cannot match makes both sides see a NAT (strongSwan's encap=yes).
  const source = peer.config.natTraversal === 'always' ? random.bytes(20) : natHash(spiI, spiR, local);
  return [natDetectionNotify('source', source), natDetectionNotify('destination', natHash(spiI, spiR, remote))];
}

/** RFC 7296 §2.23: compare the peer's hashes with what we see. Absent notifies = no NAT-T support = no NAT. */
function detectNat(m: IkeMessage, spiI: bigint, spiR: bigint, local: Endpoint, remote: Endpoint): { local: boolean; remote: boolean } {
  const dst = m.notify(NotifyStatus.NAT_DETECTION_DESTINATION_IP);
  const srcs = m.notifies(NotifyStatus.NAT_DETECTION_SOURCE_IP);
  if (dst === undefined || srcs.length === 0) return { local: false, remote: false };
  const eq = (a: Uint8Array, b: Uint8Array): boolean => Buffer.from(a).equals(Buffer.from(b));
  const localNat = !eq(natDetectionHash(dst), natHash(spiI, spiR, local));
  const want = natHash(spiI, spiR, remote);
  const remoteNat = !srcs.some((s) => eq(natDetectionHash(s), want));
  return { local: localNat, remote: remoteNat };
}

/** `f()`, or the ParseError it threw (malformed notify data). */
function parsed<T>(f: () => T): T | ParseError {
  try { return f(); } catch (e) { if (e instanceof ParseError) return e; throw e; }
}

export interface InitNotes { readonly nat: { readonly local: boolean; readonly remote: boolean }; readonly peerHashes: number[] | null }

/**
 * NAT detection (§2.23) and the peer's SIGNATURE_HASH_ALGORITHMS (RFC 7427 §4) of an IKE_SA_INIT
 * message, or the ParseError of malformed notify data: read before the SA changes, since the
 * message is not authenticated (a forged one must leave the exchange as it was).
 */
export function readInitNotifies(m: IkeMessage, spiI: bigint, spiR: bigint, local: Endpoint, remote: Endpoint): InitNotes | ParseError {
  return parsed(() => {
    const sha = m.notify(NotifyStatus.SIGNATURE_HASH_ALGORITHMS);
    return { nat: detectNat(m, spiI, spiR, local, remote), peerHashes: sha ? signatureHashAlgorithms(sha) : null };
  });
}

/** Why a peer without IKE_INTERMEDIATE gets no proposal with additional key exchanges. */
export const ADDKE_NEEDS_INTERMEDIATE = 'additional key exchanges (RFC 9370) run in IKE_INTERMEDIATE, which the peer did not announce (no INTERMEDIATE_EXCHANGE_SUPPORTED, RFC 9242 §3)';

/** We offer ADDKE transforms (even only NONE): announce IKE_INTERMEDIATE so the peer may choose them. */
function offersAdditionalKe(peer: PeerRuntime): boolean {
  return peer.ikeProposals.some((p) => p.transforms.some((t) => isAdditionalKeyExchangeType(t.type)));
}

function commonNotifies(peer: PeerRuntime): IkePayload[] {
  const out: IkePayload[] = [];
  if (offersAdditionalKe(peer)) out.push(notify(NotifyStatus.INTERMEDIATE_EXCHANGE_SUPPORTED));
  if ((peer.config.fragmentMtu ?? 1) > 0) out.push(notify(NotifyStatus.IKEV2_FRAGMENTATION_SUPPORTED));
  out.push(signatureHashAlgorithmsNotify(DEFAULT_SIGNATURE_HASHES));
  return out;
}

export function initHeader(spiI: bigint, spiR: bigint, response: boolean): IkeHeader {
  return { initiatorSpi: spiI, responderSpi: spiR, exchangeType: ExchangeType.IKE_SA_INIT, initiator: !response, response, higherVersion: false, minorVersion: 0, messageId: 0 };
}

/** The SA's keys from g^ir and the nonces (§2.14), and what else IKE_SA_INIT settled (both roles). */
export function initResult(random: Random, ends: InitEnds, m: IkeMessage, a: {
  readonly sel: SelectedProposal; readonly group: number; readonly secret: SecretBytes; readonly spiR: bigint;
  readonly ni: Uint8Array; readonly nr: Uint8Array; readonly request: Uint8Array; readonly response: Uint8Array; readonly notes: InitNotes;
}): InitResult {
  const suite = ikeSuiteOf(a.sel);
  const raw: IkeSaKeys = deriveIkeSaKeys({ suite, sharedSecret: a.secret, ni: a.ni, nr: a.nr, spiI: spiBytes(ends.spiI), spiR: spiBytes(a.spiR) });
  a.secret.wipe();
  const keys = ikeKeysOf({ suite, suiteText: suiteText('ike', a.sel.transforms), dhGroup: a.group, raw, role: ends.role, random });
  const methods = additionalMethods(a.sel.transforms);
  const peer = ends.peer;
  return {
    spiR: a.spiR, keys, selected: a.sel, ni: a.ni, nr: a.nr, request: a.request, response: a.response,
    natLocal: a.notes.nat.local || peer.config.natTraversal === 'always', natRemote: a.notes.nat.remote,
    fragmentation: (peer.config.fragmentMtu ?? 1) > 0 && m.has(NotifyStatus.IKEV2_FRAGMENTATION_SUPPORTED),
    peerHashes: a.notes.peerHashes,
    intermediate: !isNonEmpty(methods) ? null : ends.role === 'initiator' ? { tag: 'to-send', n: 1, methods, chain: EMPTY_CHAIN } : { tag: 'awaiting', n: 1, methods, chain: EMPTY_CHAIN },
  };
}

/** Initiator: (re)build message 1 in `group`; a repeat keeps Ni (`ni`) and carries the responder's cookie. */
export function requestInit(random: Random, ends: InitEnds, a: { readonly group: number; readonly cookie: Uint8Array | null; readonly retries: number; readonly ni?: Uint8Array }): InitStep<InitSent> {
  const peer = ends.peer;
  const share = createKeyShare(a.group, { random, allowWeak: peer.config.ike.allowWeak ?? false });
  const ni = a.ni ?? random.bytes(NONCE_BYTES);
  const payloads: IkePayload[] = [
    ...(a.cookie ? [cookieNotify(a.cookie)] : []),
    { kind: 'sa', proposals: toSaProposals(peer.ikeProposals) },
    { kind: 'ke', group: a.group, data: share.publicValue },
    { kind: 'nonce', data: ni },
    ...natNotifies(random, peer, ends.spiI, 0n, ends.local, ends.remote),
    ...commonNotifies(peer),
  ];
  const request = encodeMessage(initHeader(ends.spiI, 0n, false), payloads);
  return { next: { tag: 'init-sent', share, ni, request, cookie: a.cookie, retries: a.retries }, effects: [{ kind: 'send', datagram: request }] };
}

const failedWith = (failure: IkeFailure, spiR?: bigint): InitStep<{ readonly tag: 'done' }> => ({
  next: { tag: 'done' }, effects: [...(spiR === undefined ? [] : [{ kind: 'responder-spi' as const, spi: spiR }]), { kind: 'error', failure }, { kind: 'teardown' }],
});

/** Initiator: message 2 arrived (`datagram`, decoded as `m`). */
export function consumeInitResponse(random: Random, ends: InitEnds, s: InitSent, m: IkeMessage, datagram: Uint8Array): InitStep<InitSent | { readonly tag: 'keyed' } | { readonly tag: 'done' }> {
  const peer = ends.peer;
  // §2.4: an unauthenticated response with malformed notify data may be forged; drop it and keep
  // the request outstanding for the real one.
  const dropped = (reason: string): InitStep<InitSent> => ({ next: s, effects: [{ kind: 'drop', reason }] });
  const cookie = m.notify(NotifyStatus.COOKIE);
  if (cookie !== undefined) {
    const data = parsed(() => cookieData(cookie));
    if (data instanceof ParseError) return dropped('malformed-init-response');
    if (s.retries >= MAX_INIT_RETRIES) return failedWith(ikeFailure({ code: 'ERR_IKE_COOKIE_LOOP', message: 'responder keeps demanding cookies', exchange: 'IKE_SA_INIT', notify: 'COOKIE', origin: 'remote' }));
    // §2.6: resend the same request with the cookie first; same Ni, same group.
    return requestInit(random, ends, { group: s.share.group, cookie: data, retries: s.retries + 1, ni: s.ni });
  }
  const invalidKe = m.notify(NotifyError.INVALID_KE_PAYLOAD);
  if (invalidKe !== undefined) {
    const group = parsed(() => invalidKeGroup(invalidKe));
    if (group instanceof ParseError) return dropped('malformed-init-response');
    if (!acceptsDhGroup(peer.ikeProposals, group) || group === s.share.group || s.retries >= MAX_INIT_RETRIES)
      return failedWith(ikeFailure({ code: 'ERR_IKE_INVALID_KE', message: `responder wants DH group ${group}, which we did not propose`, exchange: 'IKE_SA_INIT', notify: 'INVALID_KE_PAYLOAD', origin: 'remote' }));
    // §1.3: again in the group the responder asked for, same Ni.
    return requestInit(random, ends, { group, cookie: s.cookie, retries: s.retries + 1, ni: s.ni });
  }
  const err = m.errorNotifies()[0];
  if (err !== undefined) {
    const name = notifyName(err.type);
    const noProposal = err.type === NotifyError.NO_PROPOSAL_CHOSEN;
    return failedWith(ikeFailure({
      code: noProposal ? 'ERR_IKE_NO_PROPOSAL_CHOSEN' : 'ERR_IKE_INIT_REFUSED', notify: name, origin: 'remote', exchange: 'IKE_SA_INIT',
      message: noProposal ? `peer accepted none of our IKE proposals: ${peer.ikeProposals.map(describeProposal).join(', ')}` : `peer refused IKE_SA_INIT with ${name}`,
      proposals: noProposal ? { local: peer.ikeProposals.map(formatProposal), remote: null } : null,
    }));
  }
  const saP = m.first('sa'); const ke = m.first('ke'); const nonce = m.first('nonce');
  if (!saP || !ke || !nonce || m.header.responderSpi === 0n) return dropped('init-response-incomplete');
  const check = checkProposalReply(peer.ikeProposals, saP.proposals.map(fromSaProposal), { additionalKeyExchanges: m.has(NotifyStatus.INTERMEDIATE_EXCHANGE_SUPPORTED), addkeRefusal: ADDKE_NEEDS_INTERMEDIATE });
  if (!check.ok) return failedWith(ikeFailure({ code: 'ERR_IKE_BAD_PROPOSAL_REPLY', message: check.message, exchange: 'IKE_SA_INIT', origin: 'remote' }));
  const sel = check.proposal;
  if (dhGroupOf(sel) !== ke.group || ke.group !== s.share.group)
    return failedWith(ikeFailure({ code: 'ERR_IKE_KE_MISMATCH', message: `responder's KE is group ${ke.group}, we sent ${s.share.group}`, exchange: 'IKE_SA_INIT', origin: 'remote' }));
  const spiR = m.header.responderSpi;
  const notes = readInitNotifies(m, ends.spiI, spiR, ends.local, ends.remote);
  if (notes instanceof ParseError) return dropped('malformed-init-response');
  let secret: SecretBytes;
  try { secret = s.share.computeSharedSecret(ke.data); } catch (e) {
    return failedWith(ikeFailure({ code: 'ERR_IKE_INVALID_KE_VALUE', message: (e as Error).message, exchange: 'IKE_SA_INIT', origin: 'remote' }), spiR);
  }
  const result = initResult(random, ends, m, { sel, group: ke.group, secret, spiR, ni: s.ni, nr: new Uint8Array(nonce.data), request: s.request, response: new Uint8Array(datagram), notes });
  const float = (result.natLocal || result.natRemote) && ends.local.port === 500;
  return {
    next: { tag: 'keyed' },
    effects: [{ kind: 'keyed', result }, ...(float ? [{ kind: 'float' as const }] : []), { kind: 'next', task: result.intermediate ? 'ike-intermediate' : 'ike-auth' }],
  };
}
