// RFC 7296 §3.3 Security Association payload: a list of Proposal substructures (§3.3.1), each with
// Transform substructures (§3.3.2), each with Transform Attributes (§3.3.5; only KEY_LENGTH is
// defined). The Last Substruc octets (0 = last, 2 = more proposals, 3 = more transforms) and the
// counts are redundant with the lists; the decoder checks they agree and the encoder derives them.
import type { Reader, Writer } from '../../../common/bytes.js';
import { ProtocolId, TransformAttr } from '../../constants.js';
import { MAX_PROPOSALS, MAX_TRANSFORMS, MAX_TRANSFORM_ATTRIBUTES } from '../limits.js';
import { fail, skipReserved, type PayloadFlags } from './base.js';

/** §3.3.5: AF=1 is Type/Value (16-bit value inline), AF=0 is Type/Length/Value. */
export type TransformAttribute =
  | { readonly type: number; readonly format: 'tv'; readonly value: number }
  | { readonly type: number; readonly format: 'tlv'; readonly value: Uint8Array };

export interface Transform {
  readonly type: number;
  readonly id: number;
  readonly attributes: readonly TransformAttribute[];
}

export interface Proposal {
  /** §3.3.1: 1 for the first proposal, same number = AND, next number = OR; echoed in the reply. */
  readonly num: number;
  readonly protocolId: number;
  /** Empty for IKE in IKE_SA_INIT, 8 octets for IKE rekeying, 4 for AH/ESP. */
  readonly spi: Uint8Array;
  readonly transforms: readonly Transform[];
}

export interface SaPayload extends PayloadFlags { readonly kind: 'sa'; readonly proposals: readonly Proposal[] }

const LAST = 0;
const MORE_PROPOSALS = 2;
const MORE_TRANSFORMS = 3;
const AF_TV = 0x8000;

function decodeAttributes(r: Reader): TransformAttribute[] {
  const out: TransformAttribute[] = [];
  while (!r.done) {
    if (out.length >= MAX_TRANSFORM_ATTRIBUTES) fail(r, 'ERR_IKE_SA_ATTRIBUTES', `more than ${MAX_TRANSFORM_ATTRIBUTES} transform attributes`);
    const word = r.u16('attribute type');
    const type = word & 0x7fff;
    if (word & AF_TV) {
      out.push({ type, format: 'tv', value: r.u16('attribute value') });
    } else {
      if (type === TransformAttr.KEY_LENGTH) fail(r, 'ERR_IKE_SA_KEY_LENGTH', 'KEY_LENGTH attribute must use the TV format (RFC 7296 §3.3.5)');
      const n = r.u16('attribute length');
      out.push({ type, format: 'tlv', value: r.bytes(n, 'attribute value') });
    }
  }
  return out;
}

function decodeTransform(r: Reader, last: boolean): Transform {
  const more = r.u8('transform last');
  if (more !== (last ? LAST : MORE_TRANSFORMS))
    fail(r, 'ERR_IKE_SA_TRANSFORM_LAST', `transform "last substruc" is ${more}, want ${last ? LAST : MORE_TRANSFORMS}`);
  skipReserved(r, 1);
  const len = r.u16('transform length');
  if (len < 8) fail(r, 'ERR_IKE_SA_TRANSFORM_LENGTH', `transform length is ${len}, want at least 8`);
  const body = r.sub(len - 4, 'transform');
  const type = body.u8('transform type');
  skipReserved(body, 1);
  const id = body.u16('transform id');
  return { type, id, attributes: decodeAttributes(body) };
}

function decodeProposal(r: Reader, last: boolean): Proposal {
  const more = r.u8('proposal last');
  if (more !== (last ? LAST : MORE_PROPOSALS))
    fail(r, 'ERR_IKE_SA_PROPOSAL_LAST', `proposal "last substruc" is ${more}, want ${last ? LAST : MORE_PROPOSALS}`);
  skipReserved(r, 1);
  const len = r.u16('proposal length');
  if (len < 8) fail(r, 'ERR_IKE_SA_PROPOSAL_LENGTH', `proposal length is ${len}, want at least 8`);
  const body = r.sub(len - 4, 'proposal');
  const num = body.u8('proposal num');
  const protocolId = body.u8('protocol id');
  if (protocolId !== ProtocolId.IKE && protocolId !== ProtocolId.AH && protocolId !== ProtocolId.ESP)
    fail(body, 'ERR_IKE_SA_PROTOCOL', `proposal protocol id is ${protocolId}, want 1 (IKE), 2 (AH) or 3 (ESP)`);
  const spiSize = body.u8('spi size');
  const wantSpi = protocolId === ProtocolId.IKE ? [0, 8] : [4];
  if (!wantSpi.includes(spiSize))
    fail(body, 'ERR_IKE_SA_SPI_SIZE', `proposal SPI size is ${spiSize} for protocol ${protocolId}, want ${wantSpi.join(' or ')}`);
  const count = body.u8('transform count');
  if (count > MAX_TRANSFORMS) fail(body, 'ERR_IKE_SA_TRANSFORMS', `proposal has ${count} transforms, want at most ${MAX_TRANSFORMS}`);
  const spi = body.bytes(spiSize, 'proposal spi');
  const transforms: Transform[] = [];
  for (let i = 0; i < count; i++) transforms.push(decodeTransform(body, i === count - 1));
  if (!body.done) fail(body, 'ERR_IKE_SA_PROPOSAL_LENGTH', `proposal has ${body.remaining} bytes after its ${count} transforms`);
  return { num, protocolId, spi, transforms };
}

export function decodeSa(r: Reader): SaPayload {
  const proposals: Proposal[] = [];
  if (r.done) fail(r, 'ERR_IKE_SA_EMPTY', 'SA payload has no proposals');
  for (;;) {
    if (proposals.length >= MAX_PROPOSALS) fail(r, 'ERR_IKE_SA_PROPOSALS', `more than ${MAX_PROPOSALS} proposals`);
    // The first octet of each proposal says whether another one follows.
    const last = r.source[r.offset] === LAST;
    proposals.push(decodeProposal(r, last));
    if (last) {
      if (!r.done) fail(r, 'ERR_IKE_SA_PROPOSAL_LAST', `${r.remaining} bytes follow the last proposal`);
      break;
    }
    if (r.done) fail(r, 'ERR_IKE_SA_PROPOSAL_LAST', 'proposal says more follow, but the SA payload ends');
  }
  return { kind: 'sa', proposals };
}

function encodeTransform(w: Writer, t: Transform, last: boolean): void {
  w.u8(last ? LAST : MORE_TRANSFORMS).u8(0);
  const lenAt = w.reserve(2);
  const start = w.length - 4;
  w.u8(t.type).u8(0).u16(t.id);
  for (const a of t.attributes) {
    if (a.format === 'tv') w.u16(AF_TV | (a.type & 0x7fff)).u16(a.value);
    else w.u16(a.type & 0x7fff).u16(a.value.length).bytes(a.value);
  }
  w.setU16(lenAt, w.length - start);
}

export function encodeSa(w: Writer, p: SaPayload): void {
  p.proposals.forEach((prop, i) => {
    w.u8(i === p.proposals.length - 1 ? LAST : MORE_PROPOSALS).u8(0);
    const lenAt = w.reserve(2);
    const start = w.length - 4;
    w.u8(prop.num).u8(prop.protocolId).u8(prop.spi.length).u8(prop.transforms.length).bytes(prop.spi);
    prop.transforms.forEach((t, j) => encodeTransform(w, t, j === prop.transforms.length - 1));
    w.setU16(lenAt, w.length - start);
  });
}

/** The KEY_LENGTH attribute of a transform (bits), if present (RFC 7296 §3.3.5). */
export function keyLength(t: Transform): number | undefined {
  for (const a of t.attributes) if (a.type === TransformAttr.KEY_LENGTH && a.format === 'tv') return a.value;
  return undefined;
}
