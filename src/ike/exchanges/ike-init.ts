// IKE_SA_INIT (RFC 7296 §1.2, §2.6, §2.10, §2.23; RFC 7383 §2.3; RFC 7427 §4).
//
//   initiator                                   responder
//   HDR, SAi1, KEi, Ni, N(NAT_D*), N(FRAG), N(SHA), [N(INTERMEDIATE_EXCHANGE_SUPPORTED)] -->
//                           <-- HDR, SAr1, KEr, Nr, N(NAT_D*), N(FRAG), N(SHA), [N(IES)], [CERTREQ]
//   or, stateless:          <-- HDR, N(COOKIE)            (under load, §2.6)
//                           <-- HDR, N(INVALID_KE_PAYLOAD) (wrong group guessed, §1.3)
//                           <-- HDR, N(NO_PROPOSAL_CHOSEN)
//
// Initiator: startInit builds message 1 (state init-sent); consumeInitResponse checks the state
// and returns what to do next. Responder: respondInit answers statelessly or creates the
// half-open IKE SA (state init-done). An RFC 9370 proposal with ADDKE transforms is offered with
// N(INTERMEDIATE_EXCHANGE_SUPPORTED) (RFC 9242 §3) and chosen only from a peer that sent it; the
// additional key exchanges then run in IKE_INTERMEDIATE (steps/intermediate.ts) before IKE_AUTH.
import { createHash } from 'node:crypto';
import { ParseError } from '../../common/errors.js';
import { SecretBytes } from '../../common/secret.js';
import { ExchangeType, NotifyError, NotifyStatus, notifyName } from '../constants.js';
import type { IkeHeader } from '../codec/header.js';
import { encodeMessage, type IkeMessage } from '../codec/message.js';
import type { IkePayload } from '../codec/payload.js';
import { notify } from '../codec/payloads/notify.js';
import { cookieData, cookieNotify, invalidKeGroup, invalidKeNotify, natDetectionHash, natDetectionInput, natDetectionNotify, replyNotifyFor, signatureHashAlgorithms, signatureHashAlgorithmsNotify } from '../codec/payloads/notify-data.js';
import { DEFAULT_SIGNATURE_HASHES } from '../crypto/auth.js';
import { createKeyShare, drawPrivateValue } from '../crypto/dh.js';
import type { DhJobResult } from '../crypto/jobs.js';
import { CryptoQueueFullError, CryptoWorkerError } from '../crypto/pool.js';
import { deriveIkeSaKeys, type IkeSaKeys, type IkeSuite } from '../crypto/keys.js';
import { acceptsDhGroup, dhGroupOf, fromSaProposal, ikeSuiteOf, selectedToSaProposal, toSaProposals } from '../policy/convert.js';
import { describeProposal } from '../policy/proposal.js';
import { checkProposalReply, selectProposal, type SelectedProposal } from '../policy/select.js';
import { formatProposal } from '../policy/proposal.js';
import type { Endpoint, IkeFailure } from '../ports.js';
import { ikeKeysOf } from '../sa/ike-keys.js';
import { addressBytes, suiteText } from '../sa/memo.js';
import { ikeFailure, type Ctx } from '../sa/context.js';
import { MAX_INIT_RETRIES, NONCE_BYTES } from '../sa/defaults.js';
import { spiBytes, type IkeKeys, type IkeSa, type PeerRuntime } from '../sa/ike-sa.js';
import { additionalMethods, EMPTY_CHAIN } from '../steps/intermediate.js';
import { isAdditionalKeyExchangeType } from '../constants.js';
import type { CookieJar } from './cookie.js';
import { certReqPayloads } from '../steps/ike-auth.js';

function natHash(spiI: bigint, spiR: bigint, ep: Endpoint): Uint8Array {
  return new Uint8Array(createHash('sha1').update(natDetectionInput(spiI, spiR, addressBytes(ep.address), ep.port)).digest());
}

function natNotifies(ctx: Ctx, peer: PeerRuntime, spiI: bigint, spiR: bigint, local: Endpoint, remote: Endpoint): IkePayload[] {
  // natTraversal 'always': a source hash that cannot match makes both sides see a NAT (strongSwan's encap=yes).
  const source = peer.config.natTraversal === 'always' ? ctx.random.bytes(20) : natHash(spiI, spiR, local);
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

/**
 * NAT detection (§2.23) and the peer's SIGNATURE_HASH_ALGORITHMS (RFC 7427 §4) of an IKE_SA_INIT
 * message, or the ParseError of malformed notify data: read before the SA changes, since the
 * message is not authenticated (a forged one must leave the exchange as it was).
 */
function readInitNotifies(m: IkeMessage, spiI: bigint, spiR: bigint, local: Endpoint, remote: Endpoint): { readonly nat: { local: boolean; remote: boolean }; readonly peerHashes: number[] | null } | ParseError {
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

function initHeader(spiI: bigint, spiR: bigint, response: boolean): IkeHeader {
  return { initiatorSpi: spiI, responderSpi: spiR, exchangeType: ExchangeType.IKE_SA_INIT, initiator: !response, response, higherVersion: false, minorVersion: 0, messageId: 0 };
}

/** Initiator: (re)build message 1; keeps Ni and the key share in the state for the response. */
export function startInit(ctx: Ctx, sa: IkeSa, group: number, cookie: Uint8Array | null, retries: number, ni?: Uint8Array): Uint8Array {
  const peer = sa.peer;
  const share = createKeyShare(group, { random: ctx.random, allowWeak: peer.config.ike.allowWeak ?? false });
  const nonce = ni ?? ctx.random.bytes(NONCE_BYTES);
  const payloads: IkePayload[] = [
    ...(cookie ? [cookieNotify(cookie)] : []),
    { kind: 'sa', proposals: toSaProposals(peer.ikeProposals) },
    { kind: 'ke', group, data: share.publicValue },
    { kind: 'nonce', data: nonce },
    ...natNotifies(ctx, peer, sa.spiI, 0n, sa.local, sa.remote),
    ...commonNotifies(peer),
  ];
  const request = encodeMessage(initHeader(sa.spiI, 0n, false), payloads);
  sa.state = { tag: 'init-sent', share, ni: nonce, request, cookie, retries };
  sa.ni = nonce;
  return request;
}

export type InitOutcome =
  | { readonly kind: 'retry'; readonly group: number; readonly cookie: Uint8Array | null; readonly retries: number; readonly ni: Uint8Array }
  | { readonly kind: 'failed'; readonly failure: IkeFailure }
  | { readonly kind: 'ok' }
  | { readonly kind: 'drop'; readonly reason: string };

function keysFor(sa: IkeSa, suite: IkeSuite, sel: SelectedProposal, raw: IkeSaKeys, ctx: Ctx, group: number): IkeKeys {
  return ikeKeysOf({ suite, suiteText: suiteText('ike', sel.transforms), dhGroup: group, raw, role: sa.role, random: ctx.random });
}

/** Initiator: message 2 arrived. */
export function consumeInitResponse(ctx: Ctx, sa: IkeSa, m: IkeMessage, datagram: Uint8Array): InitOutcome {
  const s = sa.state;
  if (s.tag !== 'init-sent') return { kind: 'drop', reason: 'unexpected-init-response' };
  const peer = sa.peer;
  // §2.4: an unauthenticated response with malformed notify data may be forged; drop it and keep
  // the request outstanding for the real one.
  const malformed = { kind: 'drop', reason: 'malformed-init-response' } as const;
  const cookie = m.notify(NotifyStatus.COOKIE);
  if (cookie !== undefined) {
    const data = parsed(() => cookieData(cookie));
    if (data instanceof ParseError) return malformed;
    if (s.retries >= MAX_INIT_RETRIES) return { kind: 'failed', failure: ikeFailure({ code: 'ERR_IKE_COOKIE_LOOP', message: 'responder keeps demanding cookies', exchange: 'IKE_SA_INIT', notify: 'COOKIE', origin: 'remote' }) };
    // §2.6: resend the same request with the cookie first; same Ni, same group.
    return { kind: 'retry', group: s.share.group, cookie: data, retries: s.retries + 1, ni: s.ni };
  }
  const invalidKe = m.notify(NotifyError.INVALID_KE_PAYLOAD);
  if (invalidKe !== undefined) {
    const group = parsed(() => invalidKeGroup(invalidKe));
    if (group instanceof ParseError) return malformed;
    if (!acceptsDhGroup(peer.ikeProposals, group) || group === s.share.group || s.retries >= MAX_INIT_RETRIES)
      return { kind: 'failed', failure: ikeFailure({ code: 'ERR_IKE_INVALID_KE', message: `responder wants DH group ${group}, which we did not propose`, exchange: 'IKE_SA_INIT', notify: 'INVALID_KE_PAYLOAD', origin: 'remote' }) };
    return { kind: 'retry', group, cookie: s.cookie, retries: s.retries + 1, ni: s.ni };
  }
  const err = m.errorNotifies()[0];
  if (err !== undefined) {
    const name = notifyName(err.type);
    const f = ikeFailure({
      code: err.type === NotifyError.NO_PROPOSAL_CHOSEN ? 'ERR_IKE_NO_PROPOSAL_CHOSEN' : 'ERR_IKE_INIT_REFUSED', notify: name, origin: 'remote', exchange: 'IKE_SA_INIT',
      message: err.type === NotifyError.NO_PROPOSAL_CHOSEN ? `peer accepted none of our IKE proposals: ${peer.ikeProposals.map(describeProposal).join(', ')}` : `peer refused IKE_SA_INIT with ${name}`,
      proposals: err.type === NotifyError.NO_PROPOSAL_CHOSEN ? { local: peer.ikeProposals.map(formatProposal), remote: null } : null,
    });
    return { kind: 'failed', failure: f };
  }
  const saP = m.first('sa'); const ke = m.first('ke'); const nonce = m.first('nonce');
  if (!saP || !ke || !nonce || m.header.responderSpi === 0n) return { kind: 'drop', reason: 'init-response-incomplete' };
  const intermediate = m.has(NotifyStatus.INTERMEDIATE_EXCHANGE_SUPPORTED);
  const check = checkProposalReply(peer.ikeProposals, saP.proposals.map(fromSaProposal), { additionalKeyExchanges: intermediate, addkeRefusal: ADDKE_NEEDS_INTERMEDIATE });
  if (!check.ok) return { kind: 'failed', failure: ikeFailure({ code: 'ERR_IKE_BAD_PROPOSAL_REPLY', message: check.message, exchange: 'IKE_SA_INIT', origin: 'remote' }) };
  const sel = check.proposal;
  if (dhGroupOf(sel) !== ke.group || ke.group !== s.share.group)
    return { kind: 'failed', failure: ikeFailure({ code: 'ERR_IKE_KE_MISMATCH', message: `responder's KE is group ${ke.group}, we sent ${s.share.group}`, exchange: 'IKE_SA_INIT', origin: 'remote' }) };
  const notes = readInitNotifies(m, sa.spiI, m.header.responderSpi, sa.local, sa.remote);
  if (notes instanceof ParseError) return malformed;
  sa.spiR = m.header.responderSpi;
  const suite = ikeSuiteOf(sel);
  let secret: SecretBytes;
  try { secret = s.share.computeSharedSecret(ke.data); } catch (e) {
    return { kind: 'failed', failure: ikeFailure({ code: 'ERR_IKE_INVALID_KE_VALUE', message: (e as Error).message, exchange: 'IKE_SA_INIT', origin: 'remote' }) };
  }
  const raw = deriveIkeSaKeys({ suite, sharedSecret: secret, ni: s.ni, nr: nonce.data, spiI: spiBytes(sa.spiI), spiR: spiBytes(sa.spiR) });
  secret.wipe();
  sa.keys = keysFor(sa, suite, sel, raw, ctx, ke.group);
  sa.selected = sel;
  sa.nr = new Uint8Array(nonce.data);
  sa.initRequest = s.request;
  sa.initResponse = new Uint8Array(datagram);
  sa.natLocal = notes.nat.local || peer.config.natTraversal === 'always';
  sa.natRemote = notes.nat.remote;
  sa.fragmentation = (peer.config.fragmentMtu ?? 1) > 0 && m.has(NotifyStatus.IKEV2_FRAGMENTATION_SUPPORTED);
  sa.peerHashes = notes.peerHashes;
  const methods = additionalMethods(sel.transforms);
  sa.intermediate = methods.length > 0 ? { tag: 'to-send', n: 1, methods, chain: EMPTY_CHAIN } : null;
  sa.state = { tag: 'auth-sent' };
  return { kind: 'ok' };
}

export interface InitResponderEnv {
  readonly cookies: CookieJar;
  readonly cookiesRequired: boolean;
  /**
   * Asked once a demanded cookie verified and before any DH work; a drop reason refuses the
   * request silently (strongSwan's order: cookie, then block_threshold, receiver.c drop_ike_sa_init).
   */
  readonly blocked?: () => string | null;
}

export type RespondInitOutcome =
  | { readonly kind: 'stateless'; readonly datagram: Uint8Array; readonly failure: IkeFailure | null; readonly reason: string }
  | { readonly kind: 'created'; readonly datagram: Uint8Array }
  | { readonly kind: 'drop'; readonly reason: string };

/**
 * Responder: message 1 for the (new, not yet registered) half-open `sa` of `peer`. Everything up
 * to the Diffie-Hellman runs before the first await (cookie, limits, proposal); the DH runs on
 * ctx.crypto, and a full crypto queue drops the request (counted, the peer retransmits).
 */
export async function respondInit(ctx: Ctx, env: InitResponderEnv, sa: IkeSa, m: IkeMessage, datagram: Uint8Array, from: Endpoint): Promise<RespondInitOutcome> {
  if (sa.state.tag !== 'init-done') return { kind: 'drop', reason: 'unexpected-init-request' };
  const peer = sa.peer;
  const saP = m.first('sa'); const ke = m.first('ke'); const nonce = m.first('nonce');
  if (!saP || !ke || !nonce) return { kind: 'drop', reason: 'init-request-incomplete' };
  const reply = (payloads: IkePayload[]): Uint8Array => encodeMessage(initHeader(sa.spiI, 0n, true), payloads);
  if (env.cookiesRequired) {
    const c = m.notify(NotifyStatus.COOKIE);
    if (c === undefined || !env.cookies.verify(c.data, nonce.data, from.address, sa.spiI))
      return { kind: 'stateless', datagram: reply([cookieNotify(env.cookies.make(nonce.data, from.address, sa.spiI))]), failure: null, reason: 'cookie-sent' };
  }
  const blocked = env.blocked?.() ?? null;
  if (blocked !== null) return { kind: 'drop', reason: blocked };
  // §2.21.1: malformed notify data makes the request malformed, answered like an undecodable one.
  const notes = readInitNotifies(m, sa.spiI, 0n, sa.local, from);
  if (notes instanceof ParseError) return { kind: 'stateless', datagram: reply([replyNotifyFor(notes)]), failure: null, reason: 'malformed-init-request' };
  const offered = saP.proposals.map(fromSaProposal);
  const intermediate = m.has(NotifyStatus.INTERMEDIATE_EXCHANGE_SUPPORTED);
  const sel = selectProposal(peer.ikeProposals, offered, { additionalKeyExchanges: intermediate, addkeRefusal: ADDKE_NEEDS_INTERMEDIATE });
  if (!sel.ok) {
    return {
      kind: 'stateless', datagram: reply([notify(NotifyError.NO_PROPOSAL_CHOSEN)]), reason: 'no-proposal-chosen',
      failure: ikeFailure({ code: 'ERR_IKE_NO_PROPOSAL_CHOSEN', notify: 'NO_PROPOSAL_CHOSEN', exchange: 'IKE_SA_INIT', message: sel.message, proposals: { local: peer.ikeProposals.map(formatProposal), remote: [...sel.received] } }),
    };
  }
  const group = dhGroupOf(sel.proposal);
  if (group === null) return { kind: 'drop', reason: 'no-dh-group' };
  if (ke.group !== group) return { kind: 'stateless', datagram: reply([invalidKeNotify(group)]), failure: null, reason: 'invalid-ke' };
  const allowWeak = peer.config.ike.allowWeak ?? false;
  let dh: DhJobResult;
  try {
    dh = await ctx.crypto.run({ op: 'dh', group, privateValue: drawPrivateValue(group, ctx.random, allowWeak), peerPublicValue: ke.data, allowWeak });
  } catch (e) {
    if (e instanceof CryptoQueueFullError) return { kind: 'drop', reason: 'crypto-queue-full' };
    if (e instanceof CryptoWorkerError) return { kind: 'drop', reason: 'crypto-worker-failed' };
    return { kind: 'stateless', datagram: reply([notify(NotifyError.INVALID_SYNTAX)]), failure: null, reason: 'invalid-ke-value' };
  }
  const secret = new SecretBytes(dh.sharedSecret);
  sa.spiR = ctx.newIkeSpi();
  const nr = ctx.random.bytes(NONCE_BYTES);
  const suite = ikeSuiteOf(sel.proposal);
  const raw = deriveIkeSaKeys({ suite, sharedSecret: secret, ni: nonce.data, nr, spiI: spiBytes(sa.spiI), spiR: spiBytes(sa.spiR) });
  secret.wipe();
  sa.keys = keysFor(sa, suite, sel.proposal, raw, ctx, group);
  sa.selected = sel.proposal;
  sa.ni = new Uint8Array(nonce.data); sa.nr = nr;
  sa.natLocal = notes.nat.local || peer.config.natTraversal === 'always';
  sa.natRemote = notes.nat.remote;
  sa.fragmentation = (peer.config.fragmentMtu ?? 1) > 0 && m.has(NotifyStatus.IKEV2_FRAGMENTATION_SUPPORTED);
  sa.peerHashes = notes.peerHashes;
  const methods = additionalMethods(sel.proposal.transforms);
  sa.intermediate = methods.length > 0 ? { tag: 'awaiting', n: 1, methods, chain: EMPTY_CHAIN } : null;
  const payloads: IkePayload[] = [
    { kind: 'sa', proposals: [selectedToSaProposal(sel.proposal, new Uint8Array(0))] },
    { kind: 'ke', group, data: dh.publicValue },
    { kind: 'nonce', data: nr },
    ...natNotifies(ctx, peer, sa.spiI, sa.spiR, sa.local, from),
    ...(sa.fragmentation ? [notify(NotifyStatus.IKEV2_FRAGMENTATION_SUPPORTED)] : []),
    ...(intermediate ? [notify(NotifyStatus.INTERMEDIATE_EXCHANGE_SUPPORTED)] : []),
    signatureHashAlgorithmsNotify(DEFAULT_SIGNATURE_HASHES),
    ...certReqPayloads(peer),
  ];
  const response = encodeMessage(initHeader(sa.spiI, sa.spiR, true), payloads);
  sa.initRequest = new Uint8Array(datagram);
  sa.initResponse = response;
  return { kind: 'created', datagram: response };
}
