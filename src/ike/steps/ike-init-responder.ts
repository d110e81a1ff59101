// IKE_SA_INIT, responder side, as pure steps (see ike-init.ts for the shape and the diagram).
// consumeInitRequest answers statelessly (COOKIE under load, INVALID_KE_PAYLOAD, NO_PROPOSAL_CHOSEN,
// a malformed request) or chooses the proposal and draws our private value, all before the first
// await; the driver then runs the Diffie-Hellman on its crypto pool and, once it succeeded,
// allocates our SPI, and acceptInitRequest keys the half-open IKE SA and answers.
import { ParseError } from '../../common/errors.js';
import { SecretBytes } from '../../common/secret.js';
import type { Random } from '../../common/time.js';
import { NotifyError, NotifyStatus } from '../constants.js';
import { encodeMessage, type IkeMessage } from '../codec/message.js';
import type { IkePayload } from '../codec/payload.js';
import { notify } from '../codec/payloads/notify.js';
import { cookieNotify, invalidKeNotify, replyNotifyFor, signatureHashAlgorithmsNotify } from '../codec/payloads/notify-data.js';
import { DEFAULT_SIGNATURE_HASHES } from '../crypto/auth.js';
import { drawPrivateValue } from '../crypto/dh.js';
import type { DhJobResult } from '../crypto/jobs.js';
import { CryptoQueueFullError, CryptoWorkerError } from '../crypto/pool.js';
import type { CookieJar } from '../exchanges/cookie.js';
import { dhGroupOf, fromSaProposal, selectedToSaProposal } from '../policy/convert.js';
import { formatProposal } from '../policy/proposal.js';
import { selectProposal, type SelectedProposal } from '../policy/select.js';
import { ikeFailure } from '../sa/context.js';
import { NONCE_BYTES } from '../sa/defaults.js';
import { certReqPayloads } from './ike-auth.js';
import { ADDKE_NEEDS_INTERMEDIATE, initHeader, initResult, natNotifies, readInitNotifies, type InitEffect, type InitEnds, type InitNotes, type InitStep } from './ike-init.js';

export interface InitResponderEnv {
  readonly random: Random;
  readonly cookies: CookieJar;
  readonly cookiesRequired: boolean;
  /**
   * Asked once a demanded cookie verified and before any DH work; a drop reason refuses the
   * request silently (strongSwan's order: cookie, then block_threshold, receiver.c drop_ike_sa_init).
   */
  readonly blocked?: () => string | null;
}

/** Responder: message 1 on a new half-open IKE SA (not yet registered). */
export type InitResponse =
  | { readonly tag: 'received'; readonly ends: InitEnds; readonly request: Uint8Array }
  /** The proposal is chosen and our private value drawn: the driver runs the DH next. */
  | {
    readonly tag: 'chosen'; readonly ends: InitEnds; readonly request: Uint8Array; readonly m: IkeMessage; readonly sel: SelectedProposal; readonly group: number;
    readonly privateValue: Uint8Array; readonly peerPublicValue: Uint8Array; readonly ni: Uint8Array; readonly notes: InitNotes; readonly intermediate: boolean;
  }
  /** Keyed and answered: the driver registers it as half-open. */
  | { readonly tag: 'half-open' }
  | { readonly tag: 'done' };

type Chosen = Extract<InitResponse, { tag: 'chosen' }>;
type Done = Extract<InitResponse, { tag: 'done' }>;

const done = (effects: readonly InitEffect[]): InitStep<Done> => ({ next: { tag: 'done' }, effects });
const dropped = (reason: string): InitStep<Done> => done([{ kind: 'drop', reason }]);

/** A reply that leaves no state, counted as a drop with `reason`. */
function stateless(s: Pick<Chosen, 'ends'>, payloads: readonly IkePayload[], reason: string, failure?: Extract<InitEffect, { kind: 'error' }>['failure']): InitStep<Done> {
  return done([{ kind: 'respond', datagram: encodeMessage(initHeader(s.ends.spiI, 0n, true), payloads) }, { kind: 'drop', reason }, ...(failure ? [{ kind: 'error' as const, failure }] : [])]);
}

/** Responder: message 1 (`s.request`, decoded as `m`). */
export function consumeInitRequest(env: InitResponderEnv, s: Extract<InitResponse, { tag: 'received' }>, m: IkeMessage): InitStep<Chosen | Done> {
  const { ends } = s;
  const peer = ends.peer;
  const saP = m.first('sa'); const ke = m.first('ke'); const nonce = m.first('nonce');
  if (!saP || !ke || !nonce) return dropped('init-request-incomplete');
  if (env.cookiesRequired) {
    const c = m.notify(NotifyStatus.COOKIE);
    if (c === undefined || !env.cookies.verify(c.data, nonce.data, ends.remote.address, ends.spiI))
      return stateless(s, [cookieNotify(env.cookies.make(nonce.data, ends.remote.address, ends.spiI))], 'cookie-sent');
  }
  const blocked = env.blocked?.() ?? null;
  if (blocked !== null) return dropped(blocked);
  // §2.21.1: malformed notify data makes the request malformed, answered like an undecodable one.
  const notes = readInitNotifies(m, ends.spiI, 0n, ends.local, ends.remote);
  if (notes instanceof ParseError) return stateless(s, [replyNotifyFor(notes)], 'malformed-init-request');
  const intermediate = m.has(NotifyStatus.INTERMEDIATE_EXCHANGE_SUPPORTED);
  const sel = selectProposal(peer.ikeProposals, saP.proposals.map(fromSaProposal), { additionalKeyExchanges: intermediate, addkeRefusal: ADDKE_NEEDS_INTERMEDIATE });
  if (!sel.ok) {
    return stateless(s, [notify(NotifyError.NO_PROPOSAL_CHOSEN)], 'no-proposal-chosen',
      ikeFailure({ code: 'ERR_IKE_NO_PROPOSAL_CHOSEN', notify: 'NO_PROPOSAL_CHOSEN', exchange: 'IKE_SA_INIT', message: sel.message, proposals: { local: peer.ikeProposals.map(formatProposal), remote: [...sel.received] } }));
  }
  const group = dhGroupOf(sel.proposal);
  if (group === null) return dropped('no-dh-group');
  if (ke.group !== group) return stateless(s, [invalidKeNotify(group)], 'invalid-ke');
  const privateValue = drawPrivateValue(group, env.random, peer.config.ike.allowWeak ?? false);
  return { next: { tag: 'chosen', ends, request: s.request, m, sel: sel.proposal, group, privateValue, peerPublicValue: ke.data, ni: new Uint8Array(nonce.data), notes, intermediate }, effects: [] };
}

/** Responder: the DH job failed; a full queue or a failed worker drops the request (the peer retransmits). */
export function initDhFailed(s: Chosen, err: unknown): InitStep<Done> {
  if (err instanceof CryptoQueueFullError) return dropped('crypto-queue-full');
  if (err instanceof CryptoWorkerError) return dropped('crypto-worker-failed');
  return stateless(s, [notify(NotifyError.INVALID_SYNTAX)], 'invalid-ke-value');
}

/** Responder: g^ir and KEr from the DH job, and our SPI `spiR`, which the driver allocated: key the SA and answer. */
export function acceptInitRequest(random: Random, s: Chosen, dh: DhJobResult, spiR: bigint): InitStep<Extract<InitResponse, { tag: 'half-open' }>> {
  const { ends } = s;
  const nr = random.bytes(NONCE_BYTES);
  const secret = new SecretBytes(dh.sharedSecret);
  // The answer is part of what AUTH covers (§2.15): the result holds it once built below.
  const keyed = initResult(random, ends, s.m, { sel: s.sel, group: s.group, secret, spiR, ni: s.ni, nr, request: s.request, response: new Uint8Array(0), notes: s.notes });
  const payloads: IkePayload[] = [
    { kind: 'sa', proposals: [selectedToSaProposal(s.sel, new Uint8Array(0))] },
    { kind: 'ke', group: s.group, data: dh.publicValue },
    { kind: 'nonce', data: nr },
    ...natNotifies(random, ends.peer, ends.spiI, spiR, ends.local, ends.remote),
    ...(keyed.fragmentation ? [notify(NotifyStatus.IKEV2_FRAGMENTATION_SUPPORTED)] : []),
    ...(s.intermediate ? [notify(NotifyStatus.INTERMEDIATE_EXCHANGE_SUPPORTED)] : []),
    signatureHashAlgorithmsNotify(DEFAULT_SIGNATURE_HASHES),
    ...certReqPayloads(ends.peer),
  ];
  const response = encodeMessage(initHeader(ends.spiI, spiR, true), payloads);
  return { next: { tag: 'half-open' }, effects: [{ kind: 'keyed', result: { ...keyed, response } }, { kind: 'respond', datagram: response }] };
}
