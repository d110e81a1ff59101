// Just enough DER (X.690) to build and read RFC 7427 AlgorithmIdentifiers: definite lengths,
// single-octet tags. Anything else is a ParseError, which the AUTH layer turns into
// AUTHENTICATION_FAILED.
import { ParseError } from '../../common/errors.js';
import { concatBytes, fromHex } from '../../common/bytes.js';

/** `raw` is the whole encoding (tag, length and value); `end` is the offset after it. */
export interface Tlv { readonly tag: number; readonly value: Uint8Array; readonly raw: Uint8Array; readonly end: number }

/** Read one TLV at `at`; `end` is the offset after it. */
export function readTlv(b: Uint8Array, at = 0): Tlv {
  if (at + 2 > b.length) throw new ParseError('ERR_DER', 'truncated DER header', at);
  const tag = b[at]!;
  let len = b[at + 1]!;
  let p = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 3 || p + n > b.length) throw new ParseError('ERR_DER', 'unsupported DER length', at);
    len = 0;
    for (let i = 0; i < n; i++) len = (len << 8) | b[p + i]!;
    p += n;
  }
  if (p + len > b.length) throw new ParseError('ERR_DER', `DER value of ${len} octets overruns its container`, at);
  return { tag, value: b.subarray(p, p + len), raw: b.subarray(at, p + len), end: p + len };
}

/** All TLVs inside a constructed value. */
export function readAll(b: Uint8Array): Tlv[] {
  const out: Tlv[] = [];
  for (let at = 0; at < b.length;) { const t = readTlv(b, at); out.push(t); at = t.end; }
  return out;
}

export function tlv(tag: number, ...content: readonly Uint8Array[]): Uint8Array {
  const v = concatBytes(...content);
  const len = v.length < 0x80 ? [v.length] : v.length < 0x100 ? [0x81, v.length] : [0x82, v.length >> 8, v.length & 0xff];
  return concatBytes(new Uint8Array([tag, ...len]), v);
}

export const SEQUENCE = 0x30;
export const OID = 0x06;
export const NULL_DER = fromHex('0500');
export function oid(hex: string): Uint8Array { return tlv(OID, fromHex(hex)); }
export function smallInt(n: number): Uint8Array { return tlv(0x02, new Uint8Array([n])); }
