// IKE_AUTH with the first Child SA (RFC 7296 §1.2, §2.15 AUTH, §2.4 INITIAL_CONTACT, §2.9 TS
// narrowing, §1.3.1 USE_TRANSPORT_MODE; RFC 7427 signatures). A certificate peer is checked in
// this order: chain to the CAs, identity in the certificate, the config's pins (if any), AUTH.
//
//   HDR, SK {IDi, [CERT+], [N(INITIAL_CONTACT)], [CERTREQ], [IDr], AUTH, SAi2, TSi, TSr, [N(USE_TRANSPORT_MODE)]} -->
//                     <-- HDR, SK {IDr, [CERT+], AUTH, SAr2, TSi, TSr, [N(USE_TRANSPORT_MODE)]}
//                     <-- HDR, SK {IDr, [CERT+], AUTH, N(TS_UNACCEPTABLE | NO_PROPOSAL_CHOSEN)}  (IKE SA up, no child)
//                     <-- HDR, SK {N(AUTHENTICATION_FAILED)}
import { CertEncoding, NotifyError, NotifyStatus, notifyName } from '../constants.js';
import { idBody } from '../codec/payloads/id.js';
import type { IkeMessage } from '../codec/message.js';
import type { IkePayload } from '../codec/payload.js';
import { notify } from '../codec/payloads/notify.js';
import { chooseSignatureScheme, DEFAULT_SIGNATURE_HASHES, pskAuthData, signedOctets, verifyPskAuth } from '../crypto/auth.js';
import { caKeyHashes, checkPins, matchIdentity, validateCertificateChain } from '../crypto/certs.js';
import { AuthMethod } from '../constants.js';
import type { IkeFailure, KernelChildSa } from '../ports.js';
import { ikeFailure, type Ctx } from '../sa/context.js';
import { idPayloadOf, idPayloadText, identityMatches, identityText } from '../sa/identity.js';
import type { ChildRequestScratch, ChildSa, IkeSa, PeerRuntime } from '../sa/ike-sa.js';
import { intAuthOctets } from '../steps/intermediate.js';
import { childOfferPayloads, completeChildInitiator, negotiateChildResponder, prepareChildOffer } from './child-sa.js';

/** RFC 9242 §3.3.2: what IKE_INTERMEDIATE adds to both sides' signed octets; `authMessageId`: the IKE_AUTH request's. */
function intAuthOf(sa: IkeSa, authMessageId: number): { intAuth?: Uint8Array } {
  return sa.intermediate?.tag === 'done' ? { intAuth: intAuthOctets(sa.intermediate.chain, authMessageId) } : {};
}

/** RFC 9370: IKE_AUTH only once every additional key exchange is done. */
export function intermediatePending(sa: IkeSa): boolean {
  return sa.intermediate !== null && sa.intermediate.tag !== 'done';
}

/** Our AUTH payload; a signature runs on ctx.crypto (a worker thread when the engine has them). */
async function authPayload(ctx: Ctx, sa: IkeSa, role: 'initiator' | 'responder', idP: ReturnType<typeof idPayloadOf>, authMessageId: number): Promise<IkePayload> {
  const keys = sa.keys!;
  const octets = signedOctets({
    realMessage: role === 'initiator' ? sa.initRequest! : sa.initResponse!,
    peerNonce: role === 'initiator' ? sa.nr : sa.ni,
    prf: keys.prf, skP: role === 'initiator' ? keys.skPi : keys.skPr, idPayloadBody: idBody(idP),
    ...intAuthOf(sa, authMessageId),
  });
  const auth = sa.peer.config.auth;
  if (auth.method === 'psk') return { kind: 'auth', method: AuthMethod.SHARED_KEY_MESSAGE_INTEGRITY_CODE, data: pskAuthData(keys.prf, auth.secret, octets) };
  const v = await ctx.crypto.run({ op: 'sign', scheme: chooseSignatureScheme(auth.privateKey, sa.peerHashes).name, privateKey: auth.privateKey, octets });
  return { kind: 'auth', method: v.authMethod, data: v.authData };
}

/** CERTREQ naming our trust anchors (RFC 7296 §3.7), for certificate peers; none for PSK. */
export function certReqPayloads(peer: PeerRuntime): IkePayload[] {
  const a = peer.config.auth;
  if (a.method !== 'certificate') return [];
  return [{ kind: 'certreq', encoding: CertEncoding.X509_CERT_SIGNATURE, authorities: caKeyHashes(a.cas) }];
}

function certPayloads(peer: PeerRuntime): IkePayload[] {
  const a = peer.config.auth;
  if (a.method !== 'certificate') return [];
  return [a.certificate, ...(a.chain ?? [])].map((data) => ({ kind: 'cert' as const, encoding: CertEncoding.X509_CERT_SIGNATURE, data }));
}

/**
 * Check the peer's identity and AUTH (RFC 7296 §2.15). `peerRole` is the role of the side that
 * produced the AUTH. Throws nothing: returns a failure.
 */
export async function verifyPeerAuth(ctx: Ctx, sa: IkeSa, peer: PeerRuntime, m: IkeMessage, peerRole: 'initiator' | 'responder'): Promise<IkeFailure | null> {
  const exchange = 'IKE_AUTH' as const;
  const fail = (message: string, code = 'ERR_IKE_AUTH_FAILED'): IkeFailure => ikeFailure({ code, notify: 'AUTHENTICATION_FAILED', exchange, message });
  const idP = m.first(peerRole === 'initiator' ? 'idi' : 'idr');
  const authP = m.first('auth');
  if (!idP || !authP) return fail('IKE_AUTH lacks the peer identity or AUTH payload');
  const want = peer.config.remote.id;
  if (want !== undefined && !identityMatches(want, idP)) return fail(`peer identity ${idPayloadText(idP)} is not the configured remote id`);
  const keys = sa.keys!;
  const octets = signedOctets({
    realMessage: peerRole === 'initiator' ? sa.initRequest! : sa.initResponse!,
    peerNonce: peerRole === 'initiator' ? sa.nr : sa.ni,
    prf: keys.prf, skP: peerRole === 'initiator' ? keys.skPi : keys.skPr, idPayloadBody: idBody(idP),
    ...intAuthOf(sa, m.header.messageId),
  });
  const auth = peer.config.auth;
  try {
    if (auth.method === 'psk') {
      if (authP.method !== AuthMethod.SHARED_KEY_MESSAGE_INTEGRITY_CODE) return fail(`peer used AUTH method ${authP.method}, we expect a pre-shared key`);
      verifyPskAuth(keys.prf, auth.secret, octets, authP.data);
    } else {
      const certs = m.all('cert').filter((c) => c.encoding === CertEncoding.X509_CERT_SIGNATURE);
      const ee = certs[0];
      if (!ee) return fail('peer sent no certificate');
      const chain = validateCertificateChain({ endEntity: ee.data, intermediates: certs.slice(1).map((c) => c.data), trustAnchors: auth.cas, nowMs: ctx.clock.now(), allowSha1: peer.config.ike.allowWeak ?? false });
      matchIdentity(chain.endEntity, idP.idType, idP.data);
      if (auth.peerPins) checkPins(chain.endEntity, auth.peerPins);
      await ctx.crypto.run({ op: 'verify', authMethod: authP.method, authData: authP.data, publicKey: chain.publicKey, octets, allowedHashes: DEFAULT_SIGNATURE_HASHES, allowSha1Rsa: peer.config.ike.allowWeak ?? false });
    }
  } catch (e) {
    const code = typeof (e as { code?: unknown }).code === 'string' ? (e as { code: string }).code : 'ERR_IKE_AUTH_FAILED';
    return fail((e as Error).message, code);
  }
  sa.remoteId = idPayloadText(idP);
  return null;
}

/** Initiator: allocate the first child's SPI and build message 3. */
export async function buildAuthRequest(ctx: Ctx, sa: IkeSa): Promise<{ payloads: IkePayload[]; child: ChildRequestScratch | undefined }> {
  const peer = sa.peer;
  const first = peer.children[0];
  const child = first ? await prepareChildOffer(ctx, sa, first, { inIkeAuth: true }) : undefined;
  const idi = idPayloadOf('idi', peer.config.local.id);
  const payloads: IkePayload[] = [
    idi,
    ...certPayloads(peer),
    ...(ctx.initialContact(sa) ? [notify(NotifyStatus.INITIAL_CONTACT)] : []),
    ...certReqPayloads(peer),
    ...(peer.config.remote.id ? [idPayloadOf('idr', peer.config.remote.id)] : []),
    await authPayload(ctx, sa, 'initiator', idi, sa.nextRequestId),
    ...(child ? childOfferPayloads(child, true) : []),
  ];
  return { payloads, child };
}

export type AuthResponseOutcome =
  | { readonly kind: 'established'; readonly child: { readonly sa: ChildSa; readonly install: KernelChildSa } | null; readonly childFailure: IkeFailure | null }
  | { readonly kind: 'failed'; readonly failure: IkeFailure; readonly notifyPeer: boolean }
  | { readonly kind: 'drop'; readonly reason: string };

/** Initiator: message 4. */
export async function consumeAuthResponse(ctx: Ctx, sa: IkeSa, m: IkeMessage, scratch: ChildRequestScratch | undefined): Promise<AuthResponseOutcome> {
  if (sa.state.tag !== 'auth-sent') return { kind: 'drop', reason: 'unexpected-auth-response' };
  if (!m.first('auth')) {
    const err = m.errorNotifies()[0];
    const name = err ? notifyName(err.type) : null;
    // A bare AUTHENTICATION_FAILED does not say which: strongSwan, for one, answers it alike for a
    // wrong key and for identities it has no config for, so the message names all three.
    const ids = `IDi ${identityText(sa.peer.config.local.id)}${sa.peer.config.remote.id ? `, IDr ${identityText(sa.peer.config.remote.id)}` : ''}`;
    const rejected = `peer rejected our authentication: a wrong pre-shared key, a certificate it does not trust, or no config on the peer for the identities we sent (${ids})`;
    return { kind: 'failed', notifyPeer: false, failure: ikeFailure({ code: err?.type === NotifyError.AUTHENTICATION_FAILED ? 'ERR_IKE_AUTH_FAILED' : 'ERR_IKE_AUTH_REFUSED', notify: name, origin: 'remote', exchange: 'IKE_AUTH', message: name === 'AUTHENTICATION_FAILED' ? rejected : `peer refused IKE_AUTH${name ? ` with ${name}` : ''}` }) };
  }
  const f = await verifyPeerAuth(ctx, sa, sa.peer, m, 'responder');
  if (f) return { kind: 'failed', failure: f, notifyPeer: true };
  sa.intermediate = null; // its IntAuth chain was only for AUTH
  const first = sa.peer.children[0];
  if (!first || !scratch) return { kind: 'established', child: null, childFailure: null };
  const r = completeChildInitiator(ctx, sa, first, scratch, m, { inIkeAuth: true, exchange: 'IKE_AUTH' });
  if (r.ok === false) return { kind: 'established', child: null, childFailure: r.failure };
  // IKE_AUTH carries no KE, so never IKE_FOLLOWUP_KE (completeChildInitiator with inIkeAuth).
  if (r.ok !== true) { r.sk0.wipe(); return { kind: 'established', child: null, childFailure: null }; }
  return { kind: 'established', child: { sa: r.child, install: r.install }, childFailure: null };
}

export type AuthRequestOutcome =
  | { readonly kind: 'established'; readonly reply: IkePayload[]; readonly peer: PeerRuntime; readonly initialContact: boolean; readonly child: { readonly sa: ChildSa; readonly install: KernelChildSa } | null; readonly childFailure: IkeFailure | null }
  | { readonly kind: 'failed'; readonly reply: IkePayload[]; readonly failure: IkeFailure }
  | { readonly kind: 'drop'; readonly reason: string };

/**
 * Responder: message 3. `candidates` are peer configs reachable at these addresses; the one whose
 * remote id matches IDi (and local id matches IDr, if sent) is used (strongSwan's peer config
 * switch after IKE_SA_INIT).
 */
export async function respondAuth(ctx: Ctx, sa: IkeSa, m: IkeMessage, candidates: readonly PeerRuntime[]): Promise<AuthRequestOutcome> {
  if (sa.state.tag !== 'init-done') return { kind: 'drop', reason: 'unexpected-auth-request' };
  if (intermediatePending(sa)) return { kind: 'failed', reply: [notify(NotifyError.INVALID_SYNTAX)], failure: ikeFailure({ code: 'ERR_IKE_INTERMEDIATE_SKIPPED', exchange: 'IKE_AUTH', message: 'IKE_AUTH before every additional key exchange (RFC 9370 §2.2.1) was done in IKE_INTERMEDIATE' }) };
  const idi = m.first('idi');
  const idr = m.first('idr');
  if (!idi || !m.first('auth')) return { kind: 'failed', reply: [notify(NotifyError.AUTHENTICATION_FAILED)], failure: ikeFailure({ code: 'ERR_IKE_AUTH_FAILED', notify: 'AUTHENTICATION_FAILED', exchange: 'IKE_AUTH', message: 'IKE_AUTH without IDi or AUTH (EAP is not supported)' }) };
  const matching = candidates.filter((p) => (p.config.remote.id === undefined || identityMatches(p.config.remote.id, idi)) && (idr === undefined || identityMatches(p.config.local.id, idr)));
  const peer = matching[0] ?? sa.peer;
  sa.peer = peer;
  const f = await verifyPeerAuth(ctx, sa, peer, m, 'initiator');
  if (f) return { kind: 'failed', reply: [notify(NotifyError.AUTHENTICATION_FAILED)], failure: f };
  const ownId = idPayloadOf('idr', peer.config.local.id);
  const reply: IkePayload[] = [ownId, ...certPayloads(peer), await authPayload(ctx, sa, 'responder', ownId, m.header.messageId)];
  sa.intermediate = null; // its IntAuth chain was only for AUTH
  let child: { sa: ChildSa; install: KernelChildSa } | null = null;
  let childFailure: IkeFailure | null = null;
  if (m.first('sa')) {
    const n = await negotiateChildResponder(ctx, sa, m, { inIkeAuth: true, only: null, exchange: 'IKE_AUTH' });
    if (n.ok) child = { sa: n.child, install: n.install };
    else childFailure = n.failure;
    reply.push(...n.reply);
  }
  return { kind: 'established', reply, peer, initialContact: m.has(NotifyStatus.INITIAL_CONTACT), child, childFailure };
}
