// RFC 7296 §3.5 Identification payloads IDi (type 35) and IDr (type 36): ID Type (1), RESERVED (3),
// Identification Data. The whole body (including the reserved octets) is what AUTH signs
// (§2.15 RestOfInitIDPayload), so `raw` is not kept separately: encodeId reproduces it exactly.
import type { Reader, Writer } from '../../../common/bytes.js';
import { IdType } from '../../constants.js';
import { fail, skipReserved, type PayloadFlags } from './base.js';

export interface IdPayload extends PayloadFlags {
  readonly kind: 'idi' | 'idr';
  readonly idType: number;
  readonly data: Uint8Array;
}

export function decodeId(r: Reader, kind: 'idi' | 'idr'): IdPayload {
  const idType = r.u8('ID type');
  skipReserved(r, 3);
  const data = r.rest();
  const want = idType === IdType.ID_IPV4_ADDR ? 4 : idType === IdType.ID_IPV6_ADDR ? 16 : undefined;
  if (want !== undefined && data.length !== want)
    fail(r, 'ERR_IKE_ID_LENGTH', `${kind === 'idi' ? 'IDi' : 'IDr'} of type ${idType} is ${data.length} bytes, want ${want}`);
  return { kind, idType, data };
}

export function encodeId(w: Writer, p: IdPayload): void {
  w.u8(p.idType).zeros(3).bytes(p.data);
}

/** The bytes AUTH covers for this ID (RFC 7296 §2.15: the payload body without the generic header). */
export function idBody(p: IdPayload): Uint8Array {
  const out = new Uint8Array(4 + p.data.length);
  out[0] = p.idType;
  out.set(p.data, 4);
  return out;
}
