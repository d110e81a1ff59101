// CREATE_CHILD_SA rekeying the IKE SA, responder side, as pure steps (see ike-rekey.ts for the
// shape): consumeIkeRekeyRequest decides whether to agree, the driver then allocates our SPI for
// the new IKE SA, and acceptIkeRekeyRequest keys it (or starts IKE_FOLLOWUP_KE) and answers.
// Refusals allocate nothing.
//
//   HDR, SK {SA(IKE, SPIi'), Ni, KEi}  -->
//                  <-- HDR, SK {SA(IKE, SPIr'), Nr, KEr, [N(ADDITIONAL_KEY_EXCHANGE)(link)]}
//                  <-- HDR, SK {N(TEMPORARY_FAILURE | INVALID_SYNTAX | NO_PROPOSAL_CHOSEN | INVALID_KE_PAYLOAD)}
import type { SecretBytes } from '../../common/secret.js';
import { NotifyError } from '../constants.js';
import type { IkeMessage } from '../codec/message.js';
import type { IkePayload } from '../codec/payload.js';
import { notify } from '../codec/payloads/notify.js';
import { invalidKeNotify } from '../codec/payloads/notify-data.js';
import { createKeyShare } from '../crypto/dh.js';
import { spiBytes } from '../sa/ike-sa.js';
import { dhGroupOf, fromSaProposal, selectedToSaProposal } from '../policy/convert.js';
import { formatProposal } from '../policy/proposal.js';
import { selectProposal } from '../policy/select.js';
import type { IkeFailure } from '../ports.js';
import { ikeFailure } from '../sa/context.js';
import { NONCE_BYTES } from '../sa/defaults.js';
import type { IkeSa } from '../sa/ike-sa.js';
import { isNonEmpty } from '../non-empty.js';
import { followupMethods, linkNotify, responderStart } from './followup-ke.js';
import { done, followupInputs, keysFromOld, spiOf, successorSa, type IkeRekeyEffect, type IkeRekeyEnv, type IkeRekeyExchange, type IkeRekeyStep, type KeyedIkeSa } from './ike-rekey.js';

type Chosen = Extract<IkeRekeyExchange, { tag: 'chosen' }>;
type Done = Extract<IkeRekeyExchange, { tag: 'done' }>;

function refuse(type: number | IkePayload, failure: IkeFailure | null = null): IkeRekeyStep<Done> {
  const effects: IkeRekeyEffect[] = [{ kind: 'respond', payloads: [typeof type === 'number' ? notify(type) : type] }];
  if (failure) effects.push({ kind: 'error', failure });
  return done(effects);
}

/** Responder: the peer rekeys the IKE SA `old`. */
export function consumeIkeRekeyRequest(env: Pick<IkeRekeyEnv, 'random'>, old: KeyedIkeSa, m: IkeMessage): IkeRekeyStep<Chosen | Done> {
  // §2.25.2: an IKE SA we are closing (or already replaced) is not rekeyed.
  if (old.state.tag !== 'established') return refuse(NotifyError.TEMPORARY_FAILURE);
  // Our IKE_FOLLOWUP_KE run as initiator is still going (the driver dropped any the peer left).
  if (old.followup) return refuse(NotifyError.TEMPORARY_FAILURE);
  // A Child SA exchange we started is still open: §2.25 lets us refuse until it finishes.
  const ours = old.outstanding?.task.kind;
  if (ours !== undefined && ours !== 'ike-rekey' && ours !== 'dpd') return refuse(NotifyError.TEMPORARY_FAILURE);
  const saP = m.first('sa'); const ke = m.first('ke'); const nonce = m.first('nonce');
  if (!saP || !ke || !nonce) return refuse(NotifyError.INVALID_SYNTAX);
  const sel = selectProposal(old.peer.ikeProposals, saP.proposals.map(fromSaProposal), { kePayloadGroup: ke.group, additionalKeyExchanges: true });
  if (!sel.ok) return refuse(NotifyError.NO_PROPOSAL_CHOSEN, ikeFailure({ code: 'ERR_IKE_NO_PROPOSAL_CHOSEN', notify: 'NO_PROPOSAL_CHOSEN', exchange: 'CREATE_CHILD_SA', message: sel.message, proposals: { local: old.peer.ikeProposals.map(formatProposal), remote: [...sel.received] } }));
  const group = dhGroupOf(sel.proposal);
  if (group === null) return refuse(NotifyError.NO_PROPOSAL_CHOSEN);
  if (group !== ke.group) return refuse(invalidKeNotify(group));
  const spiI = spiOf(sel.proposal.spi);
  if (spiI === 0n) return refuse(NotifyError.INVALID_SYNTAX);
  let kePublic: Uint8Array; let secret: SecretBytes;
  try {
    const share = createKeyShare(group, { random: env.random, allowWeak: old.peer.config.ike.allowWeak ?? false });
    kePublic = share.publicValue; secret = share.computeSharedSecret(ke.data);
  } catch {
    return refuse(NotifyError.INVALID_SYNTAX);
  }
  // Our own rekey is in flight (its CREATE_CHILD_SA not yet answered, or we would be in our
  // IKE_FOLLOWUP_KE run, refused above): a collision. With IKE_FOLLOWUP_KE to come, the answer
  // to ours settles it (RFC 9370 §2.2.2; ike-rekey.ts consumeIkeRekeyResponse).
  return { next: { tag: 'chosen', sel: sel.proposal, group, spiI, ni: new Uint8Array(nonce.data), kePublic, secret, collision: ours === 'ike-rekey' }, effects: [] };
}

/** Responder: the chosen rekey with our SPI `spiR` for the new IKE SA, which the driver allocated. */
export function acceptIkeRekeyRequest(env: IkeRekeyEnv, old: KeyedIkeSa, s: Chosen, spiR: bigint): IkeRekeyStep<Done> {
  const nr = env.random.bytes(NONCE_BYTES);
  const n = { ni: s.ni, nr, spiI: s.spiI, spiR };
  const answer: IkePayload[] = [
    { kind: 'sa', proposals: [selectedToSaProposal(s.sel, spiBytes(spiR))] },
    { kind: 'nonce', data: nr },
    { kind: 'ke', group: s.group, data: s.kePublic },
  ];
  const methods = followupMethods(s.sel.transforms);
  if (isNonEmpty(methods)) {
    // RFC 9370 §2.2.2: the new IKE SA waits, unregistered and without keys, for IKE_FOLLOWUP_KE.
    const fresh = successorSa(env, old, 'responder', s.spiI, spiR, null);
    const state = responderStart(methods, s.secret, env.random);
    return done([
      { kind: 'followup', fresh, selected: s.sel, keys: followupInputs(old, s.sel, n), state },
      { kind: 'respond', payloads: [...answer, linkNotify(state.link)] },
    ]);
  }
  const keys = keysFromOld(env, old, 'responder', s.sel, { secret: s.secret, ...n });
  s.secret.wipe();
  const fresh = successorSa(env, old, 'responder', s.spiI, spiR, { selected: s.sel, keys });
  // Children move before the answer leaves, so a checkpoint never shows them on an SA the peer
  // has rekeyed. In a collision the answer to our own request settles which SA survives.
  const handOver: IkeRekeyEffect[] = s.collision ? [{ kind: 'collision', sa: old, peerSa: fresh, nonces: [n.ni, nr] }] : [{ kind: 'adopt', old, successor: fresh }, { kind: 'await-delete', sa: old }];
  return done([{ kind: 'register', sa: fresh }, ...handOver, { kind: 'respond', payloads: answer }]);
}

/**
 * Responder: the peer's last IKE_FOLLOWUP_KE was answered and `fresh` has its keys (RFC 9370
 * §2.2.4): it takes over before the answer leaves, as for a plain rekey, and the peer deletes `old`.
 */
export function peerFollowupDone(old: IkeSa, fresh: IkeSa): IkeRekeyStep<Done> {
  return done([{ kind: 'register', sa: fresh }, { kind: 'adopt', old, successor: fresh }, { kind: 'await-delete', sa: old }]);
}
