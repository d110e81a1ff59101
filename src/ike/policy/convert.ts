// Bridges between policy proposals, the codec's SA payload (src/ike/codec/payloads/sa.ts) and the
// crypto layer's suites. Kept apart so the policy logic itself needs neither.
import type { Proposal as SaProposal, Transform as SaTransform } from '../codec/payloads/sa.js';
import { DhId, EsnId, ProtocolId, TransformAttr, TransformType } from '../constants.js';
import type { ChildSuite, IkeSuite } from '../crypto/keys.js';
import type { PolicyProposal, PolicyTransform } from './proposal.js';
import type { OfferedProposal, SelectedProposal } from './select.js';

const PROTOCOL_ID = { ike: ProtocolId.IKE, esp: ProtocolId.ESP } as const;

function toSaTransform(t: PolicyTransform): SaTransform {
  return { type: t.type, id: t.id, attributes: t.keyLength === undefined ? [] : [{ type: TransformAttr.KEY_LENGTH, format: 'tv', value: t.keyLength }] };
}

/** Our configured proposals as SA payload proposals, numbered from 1 (§3.3.1). */
export function toSaProposals(ps: readonly PolicyProposal[], spi: Uint8Array = new Uint8Array(0)): SaProposal[] {
  return ps.map((p, i) => ({ num: i + 1, protocolId: PROTOCOL_ID[p.protocol], spi, transforms: p.transforms.map(toSaTransform) }));
}

/** The responder's reply proposal: the chosen transforms under the initiator's proposal number. */
export function selectedToSaProposal(s: SelectedProposal, spi: Uint8Array): SaProposal {
  return { num: s.num, protocolId: PROTOCOL_ID[s.protocol], spi, transforms: s.transforms.map(toSaTransform) };
}

/** A received SA payload proposal as policy data. */
export function fromSaProposal(p: SaProposal): OfferedProposal {
  const protocol = p.protocolId === ProtocolId.IKE ? 'ike' : p.protocolId === ProtocolId.ESP ? 'esp' : p.protocolId === ProtocolId.AH ? 'ah' : (`protocol${p.protocolId}` as const);
  let unknownAttributes = false;
  const transforms = p.transforms.map((t): PolicyTransform => {
    let keyLength: number | undefined;
    for (const a of t.attributes) {
      if (a.type === TransformAttr.KEY_LENGTH && a.format === 'tv') keyLength = a.value;
      else unknownAttributes = true;
    }
    return keyLength === undefined ? { type: t.type, id: t.id } : { type: t.type, id: t.id, keyLength };
  });
  return { num: p.num, protocol, spi: p.spi, transforms, ...(unknownAttributes ? { unknownAttributes } : {}) };
}

/** The crypto suite of a selected IKE proposal. */
export function ikeSuiteOf(s: SelectedProposal): IkeSuite {
  if (!s.prf) throw new TypeError('IKE proposal without a PRF');
  return {
    encrId: s.encr.id, prfId: s.prf.id,
    ...(s.encr.keyLength === undefined ? {} : { encrKeyBits: s.encr.keyLength }),
    ...(s.integ ? { integId: s.integ.id } : {}),
  };
}

/** The key lengths that matter for Child SA KEYMAT (§2.17). */
export function childSuiteOf(s: SelectedProposal): ChildSuite {
  return {
    encrId: s.encr.id,
    ...(s.encr.keyLength === undefined ? {} : { encrKeyBits: s.encr.keyLength }),
    ...(s.integ ? { integId: s.integ.id } : {}),
  };
}

/** The chosen KE method, or null (ESP without PFS). */
export function dhGroupOf(s: SelectedProposal): number | null {
  return s.dh && s.dh.id !== DhId.NONE ? s.dh.id : null;
}

export function esnOf(s: SelectedProposal): boolean {
  return s.esn?.id === EsnId.ESN;
}

/** The first KE method of our first proposal: the group to send a KE payload for when initiating. */
export function preferredDhGroup(ps: readonly PolicyProposal[]): number | null {
  for (const p of ps) for (const t of p.transforms) if (t.type === TransformType.DH && t.id !== DhId.NONE) return t.id;
  return null;
}

/** Whether `group` appears in any of our proposals (to answer INVALID_KE_PAYLOAD correctly). */
export function acceptsDhGroup(ps: readonly PolicyProposal[], group: number): boolean {
  return ps.some((p) => p.transforms.some((t) => t.type === TransformType.DH && t.id === group));
}
