// IKE_AUTH, responder side, as pure steps (see ike-auth.ts for the shape): consumeAuthRequest
// picks the peer config IDi/IDr name, checks the peer's AUTH, signs ours and chooses the first
// Child SA; the driver then allocates its inbound SPI, acceptAuthRequest keys it and asks for the
// install, and answerInstalled sends the answer once the kernel has (or refused) it. A failed
// first Child SA leaves the IKE SA up (§1.2): the answer carries the reason instead of SA/TS.
//
//   HDR, SK {IDi, [CERT+], [N(INITIAL_CONTACT)], [CERTREQ], [IDr], AUTH, SAi2, TSi, TSr} -->
//                     <-- HDR, SK {IDr, [CERT+], AUTH, SAr2, TSi, TSr}
//                     <-- HDR, SK {IDr, [CERT+], AUTH, N(TS_UNACCEPTABLE | NO_PROPOSAL_CHOSEN)}
//                     <-- HDR, SK {IDr, [CERT+], AUTH, N(NO_ADDITIONAL_SAS)}  (our kernel refused the child)
//                     <-- HDR, SK {N(AUTHENTICATION_FAILED)}
import { NotifyError, NotifyStatus } from '../constants.js';
import type { IkeMessage } from '../codec/message.js';
import type { IkePayload } from '../codec/payload.js';
import { notify } from '../codec/payloads/notify.js';
import { acceptChild, chooseChild, type ChildIkeView } from '../exchanges/child-sa.js';
import type { IkeFailure } from '../ports.js';
import { ikeFailure } from '../sa/context.js';
import { idPayloadOf, identityMatches } from '../sa/identity.js';
import type { PeerRuntime } from '../sa/ike-sa.js';
import { authPayload, certPayloads, done, verifyPeerAuth, type AuthEffect, type AuthEnv, type AuthStep, type Done, type IkeAuthExchange } from './ike-auth.js';

type Awaiting = Extract<IkeAuthExchange, { tag: 'awaiting' }>;
type Chosen = Extract<IkeAuthExchange, { tag: 'chosen' }>;
type AnswerInstalling = Extract<IkeAuthExchange, { tag: 'answer-installing' }>;

/** The IKE SA as the first Child SA sees it once IDi chose `peer`. */
function withPeer(ike: ChildIkeView, peer: PeerRuntime): ChildIkeView {
  return { ...ike, peer };
}

/** The half-open IKE SA ends with `failure`; `reply`: what the peer is told. */
function refuse(reply: readonly IkePayload[], failure: IkeFailure, before: readonly AuthEffect[] = []): AuthStep<Done> {
  return done([...before, { kind: 'respond', payloads: reply }, { kind: 'error', failure }, { kind: 'teardown', retry: false }]);
}

/** RFC 9370 §2.2.1: IKE_AUTH while an additional key exchange is still to run in IKE_INTERMEDIATE. */
export function authTooEarly(): AuthStep<Done> {
  return refuse([notify(NotifyError.INVALID_SYNTAX)], ikeFailure({ code: 'ERR_IKE_INTERMEDIATE_SKIPPED', exchange: 'IKE_AUTH', message: 'IKE_AUTH before every additional key exchange (RFC 9370 §2.2.1) was done in IKE_INTERMEDIATE' }));
}

/**
 * Responder: message 3. `candidates`: the peer configs reachable at these addresses, the one
 * IKE_SA_INIT matched first; the first whose remote id matches IDi (and local id IDr, if sent)
 * is used. `ike`: what the first Child SA reads of the IKE SA.
 */
export async function consumeAuthRequest(env: AuthEnv, ike: ChildIkeView, s: Awaiting, m: IkeMessage, candidates: readonly PeerRuntime[]): Promise<AuthStep<Chosen | Done>> {
  const idi = m.first('idi');
  const idr = m.first('idr');
  if (!idi || !m.first('auth')) return refuse([notify(NotifyError.AUTHENTICATION_FAILED)], ikeFailure({ code: 'ERR_IKE_AUTH_FAILED', notify: 'AUTHENTICATION_FAILED', exchange: 'IKE_AUTH', message: 'IKE_AUTH without IDi or AUTH (EAP is not supported)' }));
  const matching = candidates.filter((p) => (p.config.remote.id === undefined || identityMatches(p.config.remote.id, idi)) && (idr === undefined || identityMatches(p.config.local.id, idr)));
  const peer = matching[0] ?? s.peer;
  const usePeer: AuthEffect = { kind: 'use-peer', peer };
  const v = await verifyPeerAuth(env, peer, s.basis, m, 'initiator');
  if ('failure' in v) return refuse([notify(NotifyError.AUTHENTICATION_FAILED)], v.failure, [usePeer]);
  const ownId = idPayloadOf('idr', peer.config.local.id);
  const reply: IkePayload[] = [ownId, ...certPayloads(peer), await authPayload(env, peer, s.basis, 'responder', ownId, m.header.messageId)];
  const initialContact = m.has(NotifyStatus.INITIAL_CONTACT);
  if (!m.first('sa')) return done([usePeer, ...up(v.id, initialContact, reply)]);
  const chosen = chooseChild(env, withPeer(ike, peer), m, { inIkeAuth: true, only: null, exchange: 'IKE_AUTH' });
  if (!chosen.ok) return done([usePeer, ...up(v.id, initialContact, [...reply, ...chosen.reply]), ...(chosen.failure ? [{ kind: 'error' as const, failure: chosen.failure }] : [])]);
  return { next: { tag: 'chosen', peer, remoteId: v.id, reply, choice: chosen.choice, initialContact }, effects: [usePeer] };
}

/** The IKE SA is up without a first Child SA: older SAs go (INITIAL_CONTACT), then the answer. */
function up(remoteId: string, initialContact: boolean, reply: readonly IkePayload[]): AuthEffect[] {
  return [{ kind: 'establish', remoteId, initialContact }, ...(initialContact ? [{ kind: 'replace-older' as const }] : []), { kind: 'respond', payloads: reply }];
}

/** Responder: the chosen first Child SA on our inbound SPI `inboundSpi`, which the driver allocated. */
export function acceptAuthRequest(env: AuthEnv, ike: ChildIkeView, s: Chosen, inboundSpi: number): AuthStep<AnswerInstalling> {
  const a = acceptChild(env, withPeer(ike, s.peer), s.choice, inboundSpi);
  return {
    next: { tag: 'answer-installing', child: a.child, reply: [...s.reply, ...a.reply], initialContact: s.initialContact },
    // Without INITIAL_CONTACT the peer may still send on an older SA of this config (reauthentication).
    effects: [{ kind: 'establish', remoteId: s.remoteId, initialContact: s.initialContact }, { kind: 'install', child: a.child, install: a.install, replaces: !s.initialContact }],
  };
}

/**
 * Responder: the kernel took the first Child SA (`ok`) or refused it. Older SAs go after the
 * install (INITIAL_CONTACT), so the new SA's policies carry on and nothing leaves in clear between;
 * refused, the answer goes without the child rather than with one we do not have.
 */
export function answerInstalled(s: AnswerInstalling, ok: boolean): AuthStep<Done> {
  const reply = ok ? s.reply : [...s.reply.filter((x) => x.kind !== 'sa' && x.kind !== 'tsi' && x.kind !== 'tsr' && !(x.kind === 'notify' && x.type === NotifyStatus.USE_TRANSPORT_MODE)), notify(NotifyError.NO_ADDITIONAL_SAS)];
  return done([...(s.initialContact ? [{ kind: 'replace-older' as const }] : []), { kind: 'respond', payloads: reply }, ...(ok ? [{ kind: 'child-up' as const, child: s.child }] : [])]);
}
