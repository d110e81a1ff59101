// Proposal selection (RFC 7296 §2.7, §3.3.6) the way strongSwan does it by default
// (charon.prefer_configured_proposals = yes): the responder walks ITS configured proposals in
// order and, for each, the initiator's proposals in their order; within a match it picks, per
// transform type, the first of its own algorithms the initiator also offered. With
// preferConfigured = false the initiator's order wins (both loops and algorithms).
//
// Failure is data, not an exception: NO_PROPOSAL_CHOSEN with both sides' proposals as strings, so
// the caller can log and surface "received ... / configured ..." like strongSwan does.
//
// RFC 9370 §2.2.1: each Additional Key Exchange type (ADDKE1..7) is negotiated on its own like every
// other type; NONE among the offered IDs makes it optional, and a type the peer lists gets exactly
// one of its IDs back. Until the exchange code performs them, a choice that needs an additional key
// exchange is refused (NO_PROPOSAL_CHOSEN naming the reason) unless `additionalKeyExchanges` is set;
// a peer that offers them with NONE still gets NONE.
import { ADDITIONAL_KE_TYPES, DhId, EsnId, IntegId, TransformType, isAdditionalKeyExchangeType } from '../constants.js';
import { transformName } from './keywords.js';
import { ADDITIONAL_KE_NOT_NEGOTIATED, describeProposal, type PolicyProposal, type PolicyTransform, type SaProtocol } from './proposal.js';

/** A proposal as received from the peer (see fromSaProposal in convert.ts). */
export interface OfferedProposal {
  /** Proposal Num, echoed in the reply. */
  readonly num: number;
  readonly protocol: SaProtocol | 'ah' | `protocol${number}`;
  readonly spi: Uint8Array;
  readonly transforms: readonly PolicyTransform[];
  /** True when a transform carried an attribute we do not understand: the proposal cannot match (§3.3.6). */
  readonly unknownAttributes?: boolean;
}

/** The chosen proposal: exactly one transform of each type it uses. */
export interface SelectedProposal {
  readonly num: number;
  readonly protocol: SaProtocol;
  /** The peer's SPI from its proposal (the responder puts its own SPI in the reply). */
  readonly spi: Uint8Array;
  readonly encr: PolicyTransform;
  readonly prf?: PolicyTransform;
  readonly integ?: PolicyTransform;
  /** Absent when no KE method was chosen (ESP without PFS). */
  readonly dh?: PolicyTransform;
  readonly esn?: PolicyTransform;
  /** RFC 9370: the chosen ADDKE1..7 methods other than NONE, in type order; absent when there are none. */
  readonly additionalKeyExchanges?: readonly PolicyTransform[];
  /** The same transforms as a list, in the order to encode them in the reply. */
  readonly transforms: readonly PolicyTransform[];
}

export type Selection =
  | { readonly ok: true; readonly proposal: SelectedProposal }
  | {
    readonly ok: false; readonly notify: 'NO_PROPOSAL_CHOSEN'; readonly received: readonly string[]; readonly configured: readonly string[]; readonly message: string;
    /** Set when a proposal matched but needed additional key exchanges, which are not negotiated yet. */
    readonly reason?: 'ADDITIONAL_KE_NOT_NEGOTIATED';
  };

export interface SelectOptions {
  /** strongSwan's default (true): our configured order decides. */
  readonly preferConfigured?: boolean;
  /**
   * Group of the initiator's KE payload (IKE_SA_INIT / CREATE_CHILD_SA). When that group is
   * acceptable in the matched proposal it is chosen, avoiding an INVALID_KE_PAYLOAD round trip.
   * Off by default, like strongSwan with prefer_configured_proposals.
   */
  readonly kePayloadGroup?: number;
  /**
   * Accept a choice with ADDKE methods other than NONE: in IKE_SA_INIT when the initiator announced
   * IKE_INTERMEDIATE (RFC 9242 §3), and in CREATE_CHILD_SA (IKE_FOLLOWUP_KE); off in IKE_AUTH. Off, such
   * a match is skipped and named in the failure, with `addkeRefusal` as the reason.
   */
  readonly additionalKeyExchanges?: boolean;
  /** Why ADDKE methods cannot be negotiated here; default ADDITIONAL_KE_NOT_NEGOTIATED. */
  readonly addkeRefusal?: string;
}

const TYPES: readonly number[] = [TransformType.ENCR, TransformType.PRF, TransformType.INTEG, TransformType.DH, ...ADDITIONAL_KE_TYPES, TransformType.ESN];

/** Types a missing entry stands for: no INTEG with AEAD, no KE method, no additional KE, no ESN. */
const IMPLICIT_NONE: Readonly<Record<number, number>> = {
  [TransformType.INTEG]: IntegId.NONE, [TransformType.DH]: DhId.NONE, [TransformType.ESN]: EsnId.NO_ESN,
  ...Object.fromEntries(ADDITIONAL_KE_TYPES.map((t) => [t, DhId.NONE])),
};

/** IMPLICIT_NONE's entries as transforms, one shared (frozen) object per type. */
const IMPLICIT_NONE_TRANSFORM: ReadonlyMap<number, PolicyTransform> = new Map(Object.entries(IMPLICIT_NONE).map(([type, id]) => [Number(type), Object.freeze({ type: Number(type), id })]));

const hasType = (p: { transforms: readonly PolicyTransform[] }, type: number): boolean => {
  for (const t of p.transforms) if (t.type === type) return true;
  return false;
};

function candidates(p: { transforms: readonly PolicyTransform[] }, type: number): { list: PolicyTransform[]; explicit: boolean } {
  const list = p.transforms.filter((t) => t.type === type);
  const none = IMPLICIT_NONE[type];
  if (list.length === 0 && none !== undefined) return { list: [{ type, id: none }], explicit: false };
  return { list, explicit: true };
}

const same = (a: PolicyTransform, b: PolicyTransform): boolean => a.id === b.id && a.keyLength === b.keyLength;

function matchPair(ours: PolicyProposal, theirs: OfferedProposal, preferOurs: boolean, keGroup: number | undefined): SelectedProposal | null {
  if (theirs.protocol !== ours.protocol || theirs.unknownAttributes) return null;
  if (theirs.transforms.some((t) => !TYPES.includes(t.type))) return null;
  const chosen: Partial<Record<number, PolicyTransform>> = {};
  const reply: PolicyTransform[] = [];
  for (const type of TYPES) {
    // Neither side names the type (the seven ADDKE types, mostly): both stand for its NONE, which is
    // chosen and not echoed; without building the two one-entry candidate lists for it.
    const implicit = IMPLICIT_NONE_TRANSFORM.get(type);
    if (implicit !== undefined && !hasType(ours, type) && !hasType(theirs, type)) { chosen[type] = implicit; continue; }
    const o = candidates(ours, type);
    const t = candidates(theirs, type);
    if (o.list.length === 0 && t.list.length === 0) continue;
    // Not a destructured pair: that is an array and an iterator per type, four matches per handshake.
    const first = preferOurs ? o.list : t.list; const second = preferOurs ? t.list : o.list;
    let pick = first.find((a) => second.some((b) => same(a, b)));
    if (type === TransformType.DH && keGroup !== undefined) {
      const ke = o.list.find((a) => a.id === keGroup && t.list.some((b) => same(a, b)));
      if (ke) pick = ke;
    }
    if (!pick) return null;
    chosen[type] = pick;
    // Echo an explicit NONE only if the peer sent it; never invent transforms it did not offer.
    if (t.explicit) reply.push(pick);
  }
  const encr = chosen[TransformType.ENCR];
  if (!encr) return null;
  const opt = (type: number, noneId?: number): PolicyTransform | undefined => {
    const c = chosen[type];
    return c && c.id !== noneId ? c : undefined;
  };
  const prf = opt(TransformType.PRF); const integ = opt(TransformType.INTEG, IntegId.NONE);
  const dh = opt(TransformType.DH, DhId.NONE); const esn = chosen[TransformType.ESN];
  const addke: PolicyTransform[] = [];
  for (const t of ADDITIONAL_KE_TYPES) { const c = opt(t, DhId.NONE); if (c) addke.push(c); }
  return {
    num: theirs.num, protocol: ours.protocol, spi: theirs.spi, encr, transforms: reply,
    ...(prf ? { prf } : {}), ...(integ ? { integ } : {}), ...(dh ? { dh } : {}), ...(esn && ours.protocol !== 'ike' ? { esn } : {}),
    ...(addke.length > 0 ? { additionalKeyExchanges: addke } : {}),
  };
}

/** `p` with only NONE for each ADDKE type it names, or null if a type it names does not allow NONE. */
function noneOnly(p: PolicyProposal): PolicyProposal | null {
  const types = new Set(p.transforms.filter((t) => isAdditionalKeyExchangeType(t.type)).map((t) => t.type));
  for (const type of types) if (!p.transforms.some((t) => t.type === type && t.id === DhId.NONE)) return null;
  return { ...p, transforms: p.transforms.filter((t) => !isAdditionalKeyExchange(t)) };
}

/** "ke1_mlkem768, ke2_mlkem1024" for messages. */
function describeAdditional(ts: readonly PolicyTransform[]): string {
  return ts.map((t) => transformName(t.type, t.id)).join(', ');
}

/** Responder: choose one of the peer's proposals, or NO_PROPOSAL_CHOSEN with both lists. */
export function selectProposal(configured: readonly PolicyProposal[], offered: readonly OfferedProposal[], opts: SelectOptions = {}): Selection {
  const preferOurs = opts.preferConfigured ?? true;
  const pairs = preferOurs
    ? configured.flatMap((ours) => offered.map((theirs) => [ours, theirs] as const))
    : offered.flatMap((theirs) => configured.map((ours) => [ours, theirs] as const));
  let needsAddke: SelectedProposal | undefined;
  for (const [ours, theirs] of pairs) {
    const m = matchPair(ours, theirs, preferOurs, opts.kePayloadGroup);
    if (!m) continue;
    if (m.additionalKeyExchanges && !opts.additionalKeyExchanges) {
      // Our proposal may also allow NONE for each of those types: that match is acceptable.
      const plain = noneOnly(ours);
      const n = plain ? matchPair(plain, theirs, preferOurs, opts.kePayloadGroup) : null;
      if (n && !n.additionalKeyExchanges) return { ok: true, proposal: n };
      needsAddke ??= m; continue;
    }
    return { ok: true, proposal: m };
  }
  const received = offered.map(describeOffered);
  const configuredText = configured.map(describeProposal);
  const base = `no acceptable proposal: received ${received.join(', ') || '(none)'}; configured ${configuredText.join(', ')}`;
  const fail = (why: string): Selection => ({
    ok: false, notify: 'NO_PROPOSAL_CHOSEN', received, configured: configuredText, reason: 'ADDITIONAL_KE_NOT_NEGOTIATED', message: `${base}; ${why}: ${opts.addkeRefusal ?? ADDITIONAL_KE_NOT_NEGOTIATED}`,
  });
  if (needsAddke?.additionalKeyExchanges) return fail(`proposal #${needsAddke.num} would need ${describeAdditional(needsAddke.additionalKeyExchanges)}`);
  if (!opts.additionalKeyExchanges) {
    // Say so when the peer's proposal would match but for ADDKE types it does not let us answer NONE to.
    for (const [ours, theirs] of pairs) {
      const required = theirs.transforms.filter(isAdditionalKeyExchange);
      const rest = { ...theirs, transforms: theirs.transforms.filter((t) => !isAdditionalKeyExchangeType(t.type)) };
      if (required.length > 0 && matchPair(ours, rest, preferOurs, opts.kePayloadGroup)) return fail(`the peer's proposal #${theirs.num} requires ${describeAdditional(required)}`);
    }
  }
  return { ok: false, notify: 'NO_PROPOSAL_CHOSEN', received, configured: configuredText, message: base };
}

export function describeOffered(p: OfferedProposal): string {
  const proto = p.protocol === 'ike' || p.protocol === 'esp' ? p.protocol : 'esp';
  const text = describeProposal({ protocol: proto, transforms: p.transforms });
  return p.protocol === proto ? text : `${p.protocol.toUpperCase()}:${text.slice(text.indexOf(':') + 1)}`;
}

/**
 * Initiator: check the responder's reply (§2.7: exactly one proposal, one transform per type,
 * and a subset of the proposal we sent under that number). Our proposals are numbered from 1.
 */
export function checkProposalReply(
  sent: readonly PolicyProposal[], reply: readonly OfferedProposal[], opts: { readonly additionalKeyExchanges?: boolean; readonly addkeRefusal?: string } = {},
): { ok: true; proposal: SelectedProposal } | { ok: false; message: string } {
  const r = reply[0];
  if (reply.length !== 1 || r === undefined) return { ok: false, message: `responder returned ${reply.length} proposals, want exactly 1` };
  const ours = sent[r.num - 1];
  if (!ours) return { ok: false, message: `responder chose proposal #${r.num}, we sent ${sent.length}` };
  for (const type of TYPES) {
    let n = 0;
    for (const t of r.transforms) if (t.type === type) n++;
    if (n > 1) return { ok: false, message: `responder returned several transforms of type ${type}` };
  }
  // RFC 9370 §2.2.1: an ADDKE type we offered comes back as exactly one of our IDs (NONE included),
  // and one we did not offer does not come back at all.
  for (const type of ADDITIONAL_KE_TYPES) {
    const offered = hasType(ours, type);
    const returned = hasType(r, type);
    if (offered !== returned)
      return { ok: false, message: `responder ${returned ? 'returned' : 'left out'} Additional Key Exchange ${type - TransformType.ADDKE1 + 1} (transform type ${type}), which we ${offered ? 'offered' : 'did not offer'}` };
  }
  const m = matchPair(ours, r, false, undefined);
  const covers = m && r.transforms.every((t) => m.transforms.some((c) => c.type === t.type && same(c, t)));
  if (!m || !covers) return { ok: false, message: `responder's choice ${describeOffered(r)} is not in our proposal ${describeProposal(ours)}` };
  if (m.additionalKeyExchanges && !opts.additionalKeyExchanges)
    return { ok: false, message: `responder chose ${describeAdditional(m.additionalKeyExchanges)}: ${opts.addkeRefusal ?? ADDITIONAL_KE_NOT_NEGOTIATED}` };
  return { ok: true, proposal: m };
}

/** Whether `t` is one of RFC 9370's ADDKE transforms other than NONE. */
export function isAdditionalKeyExchange(t: PolicyTransform): boolean {
  return isAdditionalKeyExchangeType(t.type) && t.id !== DhId.NONE;
}
