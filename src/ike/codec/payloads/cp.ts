// RFC 7296 §3.15 Configuration payload: CFG Type (1), RESERVED (3), Configuration Attributes
// (§3.15.1): R bit + Attribute Type (15 bits), Length (2), Value. Values stay opaque here; the
// attribute table in constants.ts names the types.
import type { Reader, Writer } from '../../../common/bytes.js';
import { MAX_CP_ATTRIBUTES } from '../limits.js';
import { fail, skipReserved, type PayloadFlags } from './base.js';

export interface CpAttribute { readonly type: number; readonly value: Uint8Array }

export interface CpPayload extends PayloadFlags { readonly kind: 'cp'; readonly cfgType: number; readonly attributes: readonly CpAttribute[] }

export function decodeCp(r: Reader): CpPayload {
  const cfgType = r.u8('CFG type');
  skipReserved(r, 3);
  const attributes: CpAttribute[] = [];
  while (!r.done) {
    if (attributes.length >= MAX_CP_ATTRIBUTES) fail(r, 'ERR_IKE_CP_ATTRIBUTES', `more than ${MAX_CP_ATTRIBUTES} configuration attributes`);
    const type = r.u16('CP attribute type') & 0x7fff; // the R bit is reserved: ignored on receipt
    const len = r.u16('CP attribute length');
    attributes.push({ type, value: r.bytes(len, 'CP attribute value') });
  }
  return { kind: 'cp', cfgType, attributes };
}

export function encodeCp(w: Writer, p: CpPayload): void {
  w.u8(p.cfgType).zeros(3);
  for (const a of p.attributes) w.u16(a.type & 0x7fff).u16(a.value.length).bytes(a.value);
}
