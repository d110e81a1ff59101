// Proposal selection (RFC 7296 §2.7, §3.3.6) the way strongSwan does it by default
// (charon.prefer_configured_proposals = yes): the responder walks ITS configured proposals in
// order and, for each, the initiator's proposals in their order; within a match it picks, per
// transform type, the first of its own algorithms the initiator also offered. With
// preferConfigured = false the initiator's order wins (both loops and algorithms).
//
// Failure is data, not an exception: NO_PROPOSAL_CHOSEN with both sides' proposals as strings, so
// the caller can log and surface "received ... / configured ..." like strongSwan does.
import { DhId, EsnId, IntegId, TransformType } from '../constants.js';
import { describeProposal, type PolicyProposal, type PolicyTransform, type SaProtocol } from './proposal.js';

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
  /** The same transforms as a list, in the order to encode them in the reply. */
  readonly transforms: readonly PolicyTransform[];
}

export type Selection =
  | { readonly ok: true; readonly proposal: SelectedProposal }
  | { readonly ok: false; readonly notify: 'NO_PROPOSAL_CHOSEN'; readonly received: readonly string[]; readonly configured: readonly string[]; readonly message: string };

export interface SelectOptions {
  /** strongSwan's default (true): our configured order decides. */
  readonly preferConfigured?: boolean;
  /**
   * Group of the initiator's KE payload (IKE_SA_INIT / CREATE_CHILD_SA). When that group is
   * acceptable in the matched proposal it is chosen, avoiding an INVALID_KE_PAYLOAD round trip.
   * Off by default, like strongSwan with prefer_configured_proposals.
   */
  readonly kePayloadGroup?: number;
}

const TYPES = [TransformType.ENCR, TransformType.PRF, TransformType.INTEG, TransformType.DH, TransformType.ESN] as const;

/** Types a missing entry stands for: no INTEG with AEAD, no KE method, no ESN. */
const IMPLICIT_NONE: Readonly<Record<number, number>> = { [TransformType.INTEG]: IntegId.NONE, [TransformType.DH]: DhId.NONE, [TransformType.ESN]: EsnId.NO_ESN };

function candidates(p: { transforms: readonly PolicyTransform[] }, type: number): { list: PolicyTransform[]; explicit: boolean } {
  const list = p.transforms.filter((t) => t.type === type);
  const none = IMPLICIT_NONE[type];
  if (list.length === 0 && none !== undefined) return { list: [{ type, id: none }], explicit: false };
  return { list, explicit: true };
}

const same = (a: PolicyTransform, b: PolicyTransform): boolean => a.id === b.id && a.keyLength === b.keyLength;

function matchPair(ours: PolicyProposal, theirs: OfferedProposal, preferOurs: boolean, keGroup: number | undefined): SelectedProposal | null {
  if (theirs.protocol !== ours.protocol || theirs.unknownAttributes) return null;
  if (theirs.transforms.some((t) => !(TYPES as readonly number[]).includes(t.type))) return null;
  const chosen: Partial<Record<number, PolicyTransform>> = {};
  const reply: PolicyTransform[] = [];
  for (const type of TYPES) {
    const o = candidates(ours, type);
    const t = candidates(theirs, type);
    if (o.list.length === 0 && t.list.length === 0) continue;
    const [first, second] = preferOurs ? [o.list, t.list] : [t.list, o.list];
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
  return {
    num: theirs.num, protocol: ours.protocol, spi: theirs.spi, encr, transforms: reply,
    ...(prf ? { prf } : {}), ...(integ ? { integ } : {}), ...(dh ? { dh } : {}), ...(esn && ours.protocol !== 'ike' ? { esn } : {}),
  };
}

/** Responder: choose one of the peer's proposals, or NO_PROPOSAL_CHOSEN with both lists. */
export function selectProposal(configured: readonly PolicyProposal[], offered: readonly OfferedProposal[], opts: SelectOptions = {}): Selection {
  const preferOurs = opts.preferConfigured ?? true;
  if (preferOurs) {
    for (const ours of configured) for (const theirs of offered) {
      const m = matchPair(ours, theirs, true, opts.kePayloadGroup);
      if (m) return { ok: true, proposal: m };
    }
  } else {
    for (const theirs of offered) for (const ours of configured) {
      const m = matchPair(ours, theirs, false, opts.kePayloadGroup);
      if (m) return { ok: true, proposal: m };
    }
  }
  const received = offered.map(describeOffered);
  const configuredText = configured.map(describeProposal);
  return {
    ok: false, notify: 'NO_PROPOSAL_CHOSEN', received, configured: configuredText,
    message: `no acceptable proposal: received ${received.join(', ') || '(none)'}; configured ${configuredText.join(', ')}`,
  };
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
export function checkProposalReply(sent: readonly PolicyProposal[], reply: readonly OfferedProposal[]): { ok: true; proposal: SelectedProposal } | { ok: false; message: string } {
  if (reply.length !== 1) return { ok: false, message: `responder returned ${reply.length} proposals, want exactly 1` };
  const r = reply[0]!;
  const ours = sent[r.num - 1];
  if (!ours) return { ok: false, message: `responder chose proposal #${r.num}, we sent ${sent.length}` };
  for (const type of TYPES) {
    if (r.transforms.filter((t) => t.type === type).length > 1) return { ok: false, message: `responder returned several transforms of type ${type}` };
  }
  const m = matchPair(ours, r, false, undefined);
  const covers = m && r.transforms.every((t) => m.transforms.some((c) => c.type === t.type && same(c, t)));
  if (!m || !covers) return { ok: false, message: `responder's choice ${describeOffered(r)} is not in our proposal ${describeProposal(ours)}` };
  return { ok: true, proposal: m };
}
