// IKE_AUTH with the first Child SA as pure steps (RFC 7296 §1.2, §2.15 AUTH, §2.4 INITIAL_CONTACT,
// §2.9 TS narrowing, §1.3.1 USE_TRANSPORT_MODE; RFC 7427 signatures; RFC 9242 §3.3.2 IntAuth). A
// certificate peer is checked in this order: chain to the CAs, identity in the certificate, the
// config's pins (if any), AUTH. Each step takes the exact exchange state it expects and returns
// the next state and the effects for the driver (sa/ike-auth-tasks.ts) to carry out in order. The
// steps never touch ports: the driver allocates the first Child SA's SPI before a step runs and
// reports the kernel's install result to the next one. Signatures run on env.crypto (a worker
// thread when the engine has them), so the steps that sign or verify are async. This file: the
// shared types and checks, and the initiator's steps; the responder's are in ike-auth-responder.ts.
//
//   HDR, SK {IDi, [CERT+], [N(INITIAL_CONTACT)], [CERTREQ], [IDr], AUTH, SAi2, TSi, TSr, [N(USE_TRANSPORT_MODE)]} -->
//                     <-- HDR, SK {IDr, [CERT+], AUTH, SAr2, TSi, TSr, [N(USE_TRANSPORT_MODE)]}
//                     <-- HDR, SK {IDr, [CERT+], AUTH, N(TS_UNACCEPTABLE | NO_PROPOSAL_CHOSEN)}  (IKE SA up, no child)
//                     <-- HDR, SK {N(AUTHENTICATION_FAILED)}
import { AuthMethod, CertEncoding, NotifyError, NotifyStatus, notifyName } from '../constants.js';
import { idBody, type IdPayload } from '../codec/payloads/id.js';
import type { IkeMessage } from '../codec/message.js';
import type { IkePayload } from '../codec/payload.js';
import { notify } from '../codec/payloads/notify.js';
import { chooseSignatureScheme, DEFAULT_SIGNATURE_HASHES, pskAuthData, signedOctets, verifyPskAuth } from '../crypto/auth.js';
import { caKeyHashes, checkPins, matchIdentity, validateCertificateChain } from '../crypto/certs.js';
import type { CryptoPool } from '../crypto/pool.js';
import { childOffer, childOfferPayloads, completeChildInitiator, type ChildEnv, type ChildIkeView } from '../exchanges/child-sa.js';
import type { IkeFailure, KernelChildSa } from '../ports.js';
import { ikeFailure } from '../sa/context.js';
import { idPayloadOf, idPayloadText, identityMatches, identityText } from '../sa/identity.js';
import type { ChildChoice, ChildRequestScratch, ChildRuntime, ChildSa, IkeKeys, PeerRuntime } from '../sa/ike-sa.js';
import { intAuthOctets, type IntAuthChain } from './intermediate.js';

/** What the IKE_AUTH steps use of the engine: Child SA negotiation's needs, and where signatures run. */
export interface AuthEnv extends ChildEnv {
  readonly crypto: Pick<CryptoPool, 'run'>;
}

/**
 * What AUTH covers (§2.15): the IKE_SA_INIT messages and nonces, SK_pi/SK_pr, and after
 * IKE_INTERMEDIATE its IntAuth chain (RFC 9242 §3.3.2); and the peer's SIGNATURE_HASH_ALGORITHMS
 * (RFC 7427 §4) for our signature.
 */
export interface AuthBasis {
  readonly initRequest: Uint8Array;
  readonly initResponse: Uint8Array;
  readonly ni: Uint8Array;
  readonly nr: Uint8Array;
  readonly keys: Pick<IkeKeys, 'prf' | 'skPi' | 'skPr'>;
  readonly intAuth: IntAuthChain | null;
  readonly peerHashes: readonly number[] | null;
}

/** One IKE_AUTH exchange, from either side; each variant holds what its next step needs. */
export type IkeAuthExchange =
  /** Initiator: IKE_SA_INIT (and any IKE_INTERMEDIATE) is done; the driver allocated the first child's SPI. */
  | { readonly tag: 'ready'; readonly peer: PeerRuntime; readonly basis: AuthBasis }
  /** Initiator: our request is out; `offer`: the first Child SA we asked for, if the config has one. */
  | { readonly tag: 'sent'; readonly peer: PeerRuntime; readonly basis: AuthBasis; readonly offer: ChildRequestScratch | null }
  /** Responder: half-open, every additional key exchange done; `peer`: the config IKE_SA_INIT matched. */
  | { readonly tag: 'awaiting'; readonly peer: PeerRuntime; readonly basis: AuthBasis }
  /** Responder: the peer is authenticated and its first Child SA acceptable; the driver allocates an inbound SPI for `choice.runtime` next. */
  | { readonly tag: 'chosen'; readonly peer: PeerRuntime; readonly remoteId: string; readonly reply: readonly IkePayload[]; readonly choice: ChildChoice; readonly initialContact: boolean }
  /** Initiator: the IKE SA is up and its first Child SA waits for the kernel; `then`: the other child configs, to queue. */
  | { readonly tag: 'installing'; readonly child: ChildSa; readonly then: readonly ChildRuntime[] }
  /** Responder: the IKE SA is up and the first Child SA waits for the kernel; `reply` goes out after it. */
  | { readonly tag: 'answer-installing'; readonly child: ChildSa; readonly reply: readonly IkePayload[]; readonly initialContact: boolean }
  | { readonly tag: 'done' };

export type AuthEffect =
  /** Our request (the driver numbers, seals and retransmits it). */
  | { readonly kind: 'send'; readonly payloads: readonly IkePayload[] }
  /** The answer to the request being handled. */
  | { readonly kind: 'respond'; readonly payloads: readonly IkePayload[] }
  /** §2.21.2: an INFORMATIONAL request the driver sends once, without waiting for its answer. */
  | { readonly kind: 'inform'; readonly payloads: readonly IkePayload[] }
  /** Responder: IDi (and IDr) chose this peer config (strongSwan's peer config switch after IKE_SA_INIT). */
  | { readonly kind: 'use-peer'; readonly peer: PeerRuntime }
  /**
   * The IKE SA is authenticated; `remoteId`: the peer's authenticated identity (for status);
   * `initialContact`: what the initiator said (responder), null as initiator.
   */
  | { readonly kind: 'establish'; readonly remoteId: string; readonly initialContact: boolean | null }
  /** Install in the kernel and attach; the result goes to the next step. `replaces`: a responder's, whose config an older SA may still carry. */
  | { readonly kind: 'install'; readonly child: ChildSa; readonly install: KernelChildSa; readonly replaces: boolean | null }
  /** §2.4 INITIAL_CONTACT: the peer holds no older IKE SA with us; tear ours down. */
  | { readonly kind: 'replace-older' }
  /** Our kernel refused the first Child SA the peer has: delete it at the peer and try again (child-tasks.ts abandonChild). */
  | { readonly kind: 'abandon'; readonly child: ChildSa }
  | { readonly kind: 'release-spi'; readonly spi: number }
  /** Queue a CREATE_CHILD_SA for a further child config. */
  | { readonly kind: 'queue-child'; readonly child: ChildRuntime }
  /** The child config could not be had on this IKE SA (a reauthentication counts it as tried). */
  | { readonly kind: 'note-failed'; readonly name: string }
  | { readonly kind: 'child-up'; readonly child: ChildSa }
  /** Recorded as the peer's lastError and emitted as an `error` event. */
  | { readonly kind: 'error'; readonly failure: IkeFailure }
  /** The IKE SA failed before it was up; `retry`: the initiator's retry timer. */
  | { readonly kind: 'teardown'; readonly retry: boolean };

export interface AuthStep<S extends IkeAuthExchange = IkeAuthExchange> { readonly next: S; readonly effects: readonly AuthEffect[] }

const DONE = { tag: 'done' } as const;
export type Done = typeof DONE;
export const done = (effects: readonly AuthEffect[]): AuthStep<Done> => ({ next: DONE, effects });

/** CERTREQ naming our trust anchors (RFC 7296 §3.7), for certificate peers; none for PSK. */
export function certReqPayloads(peer: PeerRuntime): IkePayload[] {
  const a = peer.config.auth;
  if (a.method !== 'certificate') return [];
  return [{ kind: 'certreq', encoding: CertEncoding.X509_CERT_SIGNATURE, authorities: caKeyHashes(a.cas) }];
}

export function certPayloads(peer: PeerRuntime): IkePayload[] {
  const a = peer.config.auth;
  if (a.method !== 'certificate') return [];
  return [a.certificate, ...(a.chain ?? [])].map((data) => ({ kind: 'cert' as const, encoding: CertEncoding.X509_CERT_SIGNATURE, data }));
}

/** §2.15: the octets `signer`'s AUTH covers, for its ID payload `idP`; `authMessageId`: the IKE_AUTH request's (IntAuth). */
function octetsOf(b: AuthBasis, signer: 'initiator' | 'responder', idP: IdPayload, authMessageId: number): Uint8Array {
  return signedOctets({
    realMessage: signer === 'initiator' ? b.initRequest : b.initResponse,
    peerNonce: signer === 'initiator' ? b.nr : b.ni,
    prf: b.keys.prf, skP: signer === 'initiator' ? b.keys.skPi : b.keys.skPr, idPayloadBody: idBody(idP),
    ...(b.intAuth ? { intAuth: intAuthOctets(b.intAuth, authMessageId) } : {}),
  });
}

/** Our AUTH payload as `role`, over our ID payload `idP`. */
export async function authPayload(env: AuthEnv, peer: PeerRuntime, b: AuthBasis, role: 'initiator' | 'responder', idP: IdPayload, authMessageId: number): Promise<IkePayload> {
  const octets = octetsOf(b, role, idP, authMessageId);
  const auth = peer.config.auth;
  if (auth.method === 'psk') return { kind: 'auth', method: AuthMethod.SHARED_KEY_MESSAGE_INTEGRITY_CODE, data: pskAuthData(b.keys.prf, auth.secret, octets) };
  const v = await env.crypto.run({ op: 'sign', scheme: chooseSignatureScheme(auth.privateKey, b.peerHashes).name, privateKey: auth.privateKey, octets });
  return { kind: 'auth', method: v.authMethod, data: v.authData };
}

/**
 * Check the peer's identity and AUTH (§2.15) against `peer`'s config; `peerRole`: the role of the
 * side that produced the AUTH. The peer's identity text, or the failure.
 */
export async function verifyPeerAuth(env: AuthEnv, peer: PeerRuntime, b: AuthBasis, m: IkeMessage, peerRole: 'initiator' | 'responder'): Promise<{ readonly id: string } | { readonly failure: IkeFailure }> {
  const fail = (message: string, code = 'ERR_IKE_AUTH_FAILED'): { failure: IkeFailure } => ({ failure: ikeFailure({ code, notify: 'AUTHENTICATION_FAILED', exchange: 'IKE_AUTH', message }) });
  const idP = m.first(peerRole === 'initiator' ? 'idi' : 'idr');
  const authP = m.first('auth');
  if (!idP || !authP) return fail('IKE_AUTH lacks the peer identity or AUTH payload');
  const want = peer.config.remote.id;
  if (want !== undefined && !identityMatches(want, idP)) return fail(`peer identity ${idPayloadText(idP)} is not the configured remote id`);
  const octets = octetsOf(b, peerRole, idP, m.header.messageId);
  const auth = peer.config.auth;
  const allowWeak = peer.config.ike.allowWeak ?? false;
  try {
    if (auth.method === 'psk') {
      if (authP.method !== AuthMethod.SHARED_KEY_MESSAGE_INTEGRITY_CODE) return fail(`peer used AUTH method ${authP.method}, we expect a pre-shared key`);
      verifyPskAuth(b.keys.prf, auth.secret, octets, authP.data);
    } else {
      const certs = m.all('cert').filter((c) => c.encoding === CertEncoding.X509_CERT_SIGNATURE);
      const ee = certs[0];
      if (!ee) return fail('peer sent no certificate');
      const chain = validateCertificateChain({ endEntity: ee.data, intermediates: certs.slice(1).map((c) => c.data), trustAnchors: auth.cas, nowMs: env.clock.now(), allowSha1: allowWeak });
      matchIdentity(chain.endEntity, idP.idType, idP.data);
      if (auth.peerPins) checkPins(chain.endEntity, auth.peerPins);
      await env.crypto.run({ op: 'verify', authMethod: authP.method, authData: authP.data, publicKey: chain.publicKey, octets, allowedHashes: DEFAULT_SIGNATURE_HASHES, allowSha1Rsa: allowWeak });
    }
  } catch (e) {
    const code = typeof (e as { code?: unknown }).code === 'string' ? (e as { code: string }).code : 'ERR_IKE_AUTH_FAILED';
    return fail((e as Error).message, code);
  }
  return { id: idPayloadText(idP) };
}

type Sent = Extract<IkeAuthExchange, { tag: 'sent' }>;
type Installing = Extract<IkeAuthExchange, { tag: 'installing' }>;

/**
 * Initiator: message 3. `spi`: our inbound SPI for the first child config, which the driver
 * allocated (null when the config has none); `initialContact`: we hold no other state with this
 * peer (§2.4); `messageId`: this request's (IntAuth).
 */
export async function requestAuth(env: AuthEnv, s: Extract<IkeAuthExchange, { tag: 'ready' }>, a: { readonly spi: number | null; readonly initialContact: boolean; readonly messageId: number }): Promise<AuthStep<Sent>> {
  const peer = s.peer;
  const first = peer.children[0];
  const offer = first && a.spi !== null ? childOffer(env, first, a.spi, { inIkeAuth: true }) : null;
  const idi = idPayloadOf('idi', peer.config.local.id);
  const payloads: IkePayload[] = [
    idi,
    ...certPayloads(peer),
    ...(a.initialContact ? [notify(NotifyStatus.INITIAL_CONTACT)] : []),
    ...certReqPayloads(peer),
    ...(peer.config.remote.id ? [idPayloadOf('idr', peer.config.remote.id)] : []),
    await authPayload(env, peer, s.basis, 'initiator', idi, a.messageId),
    ...(offer ? childOfferPayloads(offer, true) : []),
  ];
  return { next: { tag: 'sent', peer, basis: s.basis, offer }, effects: [{ kind: 'send', payloads }] };
}

/** Initiator: a refused or unverifiable IKE_AUTH ends the IKE SA; the retry timer restarts it. */
function failed(s: Sent, failure: IkeFailure, informPeer: boolean): AuthStep<Done> {
  return done([
    { kind: 'error', failure },
    ...(s.offer ? [{ kind: 'release-spi' as const, spi: s.offer.spi }] : []),
    ...(informPeer ? [{ kind: 'inform' as const, payloads: [notify(NotifyError.AUTHENTICATION_FAILED)] }] : []),
    { kind: 'teardown', retry: true },
  ]);
}

/** Initiator: message 4. `ike`: what the first Child SA's keys and kernel description read of the IKE SA. */
export async function consumeAuthResponse(env: AuthEnv, ike: ChildIkeView, s: Sent, m: IkeMessage): Promise<AuthStep<Installing | Done>> {
  const peer = s.peer;
  if (!m.first('auth')) {
    const err = m.errorNotifies()[0];
    const name = err ? notifyName(err.type) : null;
    // A bare AUTHENTICATION_FAILED does not say which: strongSwan, for one, answers it alike for a
    // wrong key and for identities it has no config for, so the message names all three.
    const ids = `IDi ${identityText(peer.config.local.id)}${peer.config.remote.id ? `, IDr ${identityText(peer.config.remote.id)}` : ''}`;
    const rejected = `peer rejected our authentication: a wrong pre-shared key, a certificate it does not trust, or no config on the peer for the identities we sent (${ids})`;
    return failed(s, ikeFailure({ code: err?.type === NotifyError.AUTHENTICATION_FAILED ? 'ERR_IKE_AUTH_FAILED' : 'ERR_IKE_AUTH_REFUSED', notify: name, origin: 'remote', exchange: 'IKE_AUTH', message: name === 'AUTHENTICATION_FAILED' ? rejected : `peer refused IKE_AUTH${name ? ` with ${name}` : ''}` }), false);
  }
  const v = await verifyPeerAuth(env, peer, s.basis, m, 'responder');
  if ('failure' in v) return failed(s, v.failure, true);
  const up: AuthEffect[] = [{ kind: 'establish', remoteId: v.id, initialContact: null }];
  const [first, ...rest] = peer.children;
  const queueRest = rest.map((child): AuthEffect => ({ kind: 'queue-child', child }));
  if (!first || !s.offer) return done([...up, ...queueRest]);
  const r = completeChildInitiator(env, ike, first, s.offer, m, { inIkeAuth: true, exchange: 'IKE_AUTH' });
  if (r.ok === false) return done([...up, { kind: 'error', failure: r.failure }, { kind: 'release-spi', spi: s.offer.spi }, { kind: 'note-failed', name: first.config.name }, ...queueRest]);
  // IKE_AUTH carries no KE, so never IKE_FOLLOWUP_KE (completeChildInitiator with inIkeAuth).
  if (r.ok !== true) { r.sk0.wipe(); return done([...up, ...queueRest]); }
  return { next: { tag: 'installing', child: r.child, then: rest }, effects: [...up, { kind: 'install', child: r.child, install: r.install, replaces: null }] };
}

/** Initiator: the kernel took the first Child SA (`ok`) or refused it; then the other child configs. */
export function firstChildInstalled(s: Installing, ok: boolean): AuthStep<Done> {
  return done([ok ? { kind: 'child-up', child: s.child } : { kind: 'abandon', child: s.child }, ...s.then.map((child): AuthEffect => ({ kind: 'queue-child', child }))]);
}
