// CREATE_CHILD_SA rekeying the IKE SA (RFC 7296 §1.3.2, §2.18, §2.8.1 collisions).
//
//   HDR, SK {SA(IKE, SPIi'), Ni, KEi}  -->
//                  <-- HDR, SK {SA(IKE, SPIr'), Nr, KEr}
//
// The new IKE SA's keys come from the old SA's SK_d (§2.18); the side that initiated the rekey is
// the "original initiator" of the new SA. Child SAs move to the new IKE SA; the rekey initiator
// then deletes the old IKE SA with an INFORMATIONAL on it. With RFC 9370 additional key exchanges
// chosen, the response carries N(ADDITIONAL_KEY_EXCHANGE) and the new SA gets its keys only after
// the IKE_FOLLOWUP_KE exchanges (steps/followup-ke.ts, driven by sa/followup.ts).
import { SecretBytes } from '../../common/secret.js';
import { NotifyError, notifyName } from '../constants.js';
import type { IkeMessage } from '../codec/message.js';
import type { IkePayload } from '../codec/payload.js';
import { notify } from '../codec/payloads/notify.js';
import { invalidKeNotify } from '../codec/payloads/notify-data.js';
import { createKeyShare, type KeyShare } from '../crypto/dh.js';
import { deriveRekeyedIkeSaKeys, type IkeSaKeys, type IkeSuite } from '../crypto/keys.js';
import { followupMethods, initiatorStart, linkNotify, linkOf, responderStart, type FollowupKe, type RekeyedIkeInputs } from '../steps/followup-ke.js';
import { dhGroupOf, fromSaProposal, ikeSuiteOf, selectedToSaProposal, toSaProposals } from '../policy/convert.js';
import { formatProposal } from '../policy/proposal.js';
import { checkProposalReply, selectProposal, type SelectedProposal } from '../policy/select.js';
import type { IkeFailure } from '../ports.js';
import { ikeFailure, type Ctx } from '../sa/context.js';
import { NONCE_BYTES } from '../sa/defaults.js';
import { ikeKeysOf } from '../sa/ike-keys.js';
import { suiteText } from '../sa/memo.js';
import type { IkeRekeyScratch, IkeSa } from '../sa/ike-sa.js';
import { spiBytes } from './ike-init.js';

function spiOf(b: Uint8Array): bigint { return b.length === 8 ? new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0) : 0n; }

/** A fresh IKE SA record that inherits endpoints, NAT state and peer from `old`. */
export function successorSa(ctx: Ctx, old: IkeSa, role: 'initiator' | 'responder', spiI: bigint, spiR: bigint): IkeSa {
  const now = ctx.clock.now();
  return {
    serial: ctx.newSerial(), peer: old.peer, role, spiI, spiR, state: { tag: 'established' }, keys: null,
    local: old.local, remote: old.remote, natLocal: old.natLocal, natRemote: old.natRemote, fragmentation: old.fragmentation,
    peerHashes: old.peerHashes, initRequest: null, initResponse: null, intermediate: null, ni: new Uint8Array(0), nr: new Uint8Array(0),
    selected: null, remoteId: old.remoteId, nextRequestId: 0, outstanding: null, pending: [], expectedRequestId: 0,
    lastResponse: null, fragments: null, children: new Map(), lingering: new Map(), reauth: null, ikeCollision: null, createdAtMs: now, establishedAtMs: now, upSerial: ctx.newSerial(),
    rekeyAtMs: null, resumedAtMs: null, lastInboundMs: now, timers: { rekey: null, dpd: null, halfOpen: null, rekeyed: null }, queue: Promise.resolve(),
  };
}

function installKeys(ctx: Ctx, old: IkeSa, sa: IkeSa, sel: SelectedProposal, suite: IkeSuite, secret: SecretBytes, ni: Uint8Array, nr: Uint8Array, group: number): void {
  const oldKeys = old.keys!;
  const raw = deriveRekeyedIkeSaKeys({ suite, sharedSecret: secret, ni, nr, spiI: spiBytes(sa.spiI), spiR: spiBytes(sa.spiR), oldPrfId: oldKeys.suite.prfId, oldSkD: oldKeys.skD });
  sa.selected = sel; sa.ni = ni; sa.nr = nr;
  installRekeyedKeys(ctx, sa, raw, group);
}

/** The new IKE SA's keys, once known (at once, or after its IKE_FOLLOWUP_KE exchanges). `sa.selected` is set. */
export function installRekeyedKeys(ctx: Ctx, sa: IkeSa, raw: IkeSaKeys, group = dhGroupOf(sa.selected!) ?? 0): void {
  const sel = sa.selected!;
  sa.keys = ikeKeysOf({ suite: ikeSuiteOf(sel), suiteText: suiteText('ike', sel.transforms), dhGroup: group, raw, role: sa.role, random: ctx.random });
}

/** What the new IKE SA's keys come from after IKE_FOLLOWUP_KE (steps/followup-ke.ts rekeyedIkeKeys). */
export function rekeyedInputs(old: IkeSa, fresh: IkeSa): RekeyedIkeInputs {
  return { prf: old.keys!.prf, skD: old.keys!.skD, suite: ikeSuiteOf(fresh.selected!), ni: fresh.ni, nr: fresh.nr, spiI: spiBytes(fresh.spiI), spiR: spiBytes(fresh.spiR) };
}

/** Initiator: SA with our new SPI, Ni, KEi in the current IKE SA's group (or the one the peer asked for). */
export function buildIkeRekeyRequest(ctx: Ctx, sa: IkeSa, wanted?: number): { payloads: IkePayload[]; scratch: IkeRekeyScratch } {
  const spi = ctx.newIkeSpi();
  const group = wanted ?? sa.keys!.dhGroup;
  const share = createKeyShare(group, { random: ctx.random, allowWeak: sa.peer.config.ike.allowWeak ?? false });
  const ni = ctx.random.bytes(NONCE_BYTES);
  const payloads: IkePayload[] = [
    { kind: 'sa', proposals: toSaProposals(sa.peer.ikeProposals, spiBytes(spi)) },
    { kind: 'nonce', data: ni },
    { kind: 'ke', group, data: share.publicValue },
  ];
  return { payloads, scratch: { spi, ni, share } };
}

export type IkeRekeyCompletion =
  /** `followup`: additional key exchanges were chosen; `sa` has no keys until they are done. */
  | { readonly ok: true; readonly sa: IkeSa; readonly followup?: Extract<FollowupKe, { tag: 'to-send' }> }
  /** `retryGroup`: the KE method an INVALID_KE_PAYLOAD asked for (invalid-ke.ts decides). */
  | { readonly ok: false; readonly failure: IkeFailure; readonly temporary: boolean; readonly retryGroup?: number };

/** Initiator: the response; builds the new IKE SA (not yet registered or active). */
export function completeIkeRekey(ctx: Ctx, old: IkeSa, s: IkeRekeyScratch, m: IkeMessage): IkeRekeyCompletion {
  const err = m.errorNotifies()[0];
  if (err !== undefined) {
    const temporary = err.type === NotifyError.TEMPORARY_FAILURE;
    const failure = ikeFailure({ code: temporary ? 'ERR_IKE_REKEY_TEMPORARY' : 'ERR_IKE_REKEY_REFUSED', notify: notifyName(err.type), origin: 'remote', exchange: 'CREATE_CHILD_SA', message: 'peer refused the IKE SA rekey' });
    if (err.type === NotifyError.INVALID_KE_PAYLOAD && err.data.length === 2) return { ok: false, temporary, failure, retryGroup: (err.data[0]! << 8) | err.data[1]! };
    return { ok: false, temporary, failure };
  }
  const bad = (message: string): IkeRekeyCompletion => ({ ok: false, temporary: false, failure: ikeFailure({ code: 'ERR_IKE_BAD_REKEY_REPLY', message, origin: 'remote', exchange: 'CREATE_CHILD_SA' }) });
  const saP = m.first('sa'); const ke = m.first('ke'); const nonce = m.first('nonce');
  if (!saP || !ke || !nonce) return bad('IKE rekey response lacks SA, KE or Nr');
  const check = checkProposalReply(old.peer.ikeProposals, saP.proposals.map(fromSaProposal), { additionalKeyExchanges: true });
  if (!check.ok) return bad(check.message);
  const spiR = spiOf(saP.proposals[0]?.spi ?? new Uint8Array(0));
  if (spiR === 0n || ke.group !== s.share.group || dhGroupOf(check.proposal) !== ke.group) return bad('IKE rekey response has no SPI or a mismatched KE');
  const methods = followupMethods(check.proposal.transforms);
  const link = linkOf(m);
  if (methods.length > 0 && link === undefined) return bad('IKE rekey response chose additional key exchanges but has no ADDITIONAL_KEY_EXCHANGE notify (RFC 9370 §2.2.2)');
  let secret: SecretBytes;
  try { secret = s.share.computeSharedSecret(ke.data); } catch (e) { return bad((e as Error).message); }
  const sa = successorSa(ctx, old, 'initiator', s.spi, spiR);
  if (methods.length > 0) {
    sa.selected = check.proposal; sa.ni = s.ni; sa.nr = new Uint8Array(nonce.data);
    return { ok: true, sa, followup: initiatorStart(methods, secret, link!) };
  }
  installKeys(ctx, old, sa, check.proposal, ikeSuiteOf(check.proposal), secret, s.ni, new Uint8Array(nonce.data), ke.group);
  secret.wipe();
  return { ok: true, sa };
}

export type IkeRekeyRequestOutcome =
  | { readonly kind: 'rekeyed'; readonly reply: IkePayload[]; readonly sa: IkeSa; readonly collision: boolean }
  /** RFC 9370 §2.2.2: additional key exchanges follow in IKE_FOLLOWUP_KE; `sa` has no keys yet. */
  | { readonly kind: 'followup'; readonly reply: IkePayload[]; readonly sa: IkeSa; readonly state: Extract<FollowupKe, { tag: 'awaiting' }> }
  | { readonly kind: 'refused'; readonly reply: IkePayload[]; readonly failure: IkeFailure | null };

/** Responder: the peer rekeys the IKE SA. */
export function respondIkeRekey(ctx: Ctx, old: IkeSa, m: IkeMessage, weAreRekeying: boolean): IkeRekeyRequestOutcome {
  // §2.25.2: an IKE SA we are closing (or already replaced) is not rekeyed.
  if (old.state.tag !== 'established') return { kind: 'refused', reply: [notify(NotifyError.TEMPORARY_FAILURE)], failure: null };
  // Our IKE_FOLLOWUP_KE run as initiator is still going (responder.ts dropped any the peer left).
  if (old.followup) return { kind: 'refused', reply: [notify(NotifyError.TEMPORARY_FAILURE)], failure: null };
  // A Child SA exchange we started is still open: §2.25 lets us refuse until it finishes.
  const busy = old.outstanding !== null && old.outstanding.task.kind !== 'ike-rekey' && old.outstanding.task.kind !== 'dpd';
  if (busy) return { kind: 'refused', reply: [notify(NotifyError.TEMPORARY_FAILURE)], failure: null };
  const saP = m.first('sa'); const ke = m.first('ke'); const nonce = m.first('nonce');
  if (!saP || !ke || !nonce) return { kind: 'refused', reply: [notify(NotifyError.INVALID_SYNTAX)], failure: null };
  const sel = selectProposal(old.peer.ikeProposals, saP.proposals.map(fromSaProposal), { kePayloadGroup: ke.group, additionalKeyExchanges: true });
  if (!sel.ok) return { kind: 'refused', reply: [notify(NotifyError.NO_PROPOSAL_CHOSEN)], failure: ikeFailure({ code: 'ERR_IKE_NO_PROPOSAL_CHOSEN', notify: 'NO_PROPOSAL_CHOSEN', exchange: 'CREATE_CHILD_SA', message: sel.message, proposals: { local: old.peer.ikeProposals.map(formatProposal), remote: [...sel.received] } }) };
  const group = dhGroupOf(sel.proposal);
  if (group === null) return { kind: 'refused', reply: [notify(NotifyError.NO_PROPOSAL_CHOSEN)], failure: null };
  if (group !== ke.group) return { kind: 'refused', reply: [invalidKeNotify(group)], failure: null };
  const spiI = spiOf(sel.proposal.spi);
  if (spiI === 0n) return { kind: 'refused', reply: [notify(NotifyError.INVALID_SYNTAX)], failure: null };
  let share: KeyShare; let secret: SecretBytes;
  try { share = createKeyShare(group, { random: ctx.random, allowWeak: old.peer.config.ike.allowWeak ?? false }); secret = share.computeSharedSecret(ke.data); } catch {
    return { kind: 'refused', reply: [notify(NotifyError.INVALID_SYNTAX)], failure: null };
  }
  const methods = followupMethods(sel.proposal.transforms);
  // Our own rekey is in flight (its CREATE_CHILD_SA not yet answered, or we would be in our
  // IKE_FOLLOWUP_KE run, refused above): with IKE_FOLLOWUP_KE to come, the answer to ours settles
  // the collision (RFC 9370 §2.2.2, §2.8.1; sa/ike-rekey-tasks.ts onIkeRekey).
  const spiR = ctx.newIkeSpi();
  const nr = ctx.random.bytes(NONCE_BYTES);
  const sa = successorSa(ctx, old, 'responder', spiI, spiR);
  if (methods.length > 0) {
    sa.selected = sel.proposal; sa.ni = new Uint8Array(nonce.data); sa.nr = nr;
    const state = responderStart(methods, secret, ctx.random);
    const reply: IkePayload[] = [
      { kind: 'sa', proposals: [selectedToSaProposal(sel.proposal, spiBytes(spiR))] },
      { kind: 'nonce', data: nr },
      { kind: 'ke', group, data: share.publicValue },
      linkNotify(state.link),
    ];
    return { kind: 'followup', reply, sa, state };
  }
  installKeys(ctx, old, sa, sel.proposal, ikeSuiteOf(sel.proposal), secret, new Uint8Array(nonce.data), nr, group);
  secret.wipe();
  const reply: IkePayload[] = [
    { kind: 'sa', proposals: [selectedToSaProposal(sel.proposal, spiBytes(spiR))] },
    { kind: 'nonce', data: nr },
    { kind: 'ke', group, data: share.publicValue },
  ];
  return { kind: 'rekeyed', reply, sa, collision: weAreRekeying };
}
