// A minimal DER reader (ITU-T X.690) for the one structure the signer parses thousands of times:
// PKCS#10 requests (RFC 2986). @peculiar/x509's generic ASN.1 schema parser costs ~5 ms per CSR;
// this walks only the fields we need and leaves the signature check to node:crypto (OpenSSL).
import { PkiError, PKI_CODES } from './errors.js';

export interface Tlv { readonly tag: number; readonly start: number; readonly valueStart: number; readonly end: number }

export function readTlv(b: Uint8Array, at: number, limit = b.length): Tlv {
  if (at + 2 > limit) throw new PkiError(PKI_CODES.badCsr, `DER: truncated at ${at}`);
  const tag = b[at]!;
  if ((tag & 0x1f) === 0x1f) throw new PkiError(PKI_CODES.badCsr, `DER: multi-byte tag at ${at}`);
  let len = b[at + 1]!;
  let p = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 3 || p + n > limit) throw new PkiError(PKI_CODES.badCsr, `DER: bad length at ${at}`);
    len = 0;
    for (let i = 0; i < n; i++) len = (len << 8) | b[p++]!;
  }
  if (p + len > limit) throw new PkiError(PKI_CODES.badCsr, `DER: value overruns its container at ${at}`);
  return { tag, start: at, valueStart: p, end: p + len };
}

/** The TLVs directly inside a constructed value. */
export function children(b: Uint8Array, t: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let p = t.valueStart; p < t.end;) { const c = readTlv(b, p, t.end); out.push(c); p = c.end; }
  return out;
}

export const value = (b: Uint8Array, t: Tlv): Uint8Array => b.subarray(t.valueStart, t.end);
export const whole = (b: Uint8Array, t: Tlv): Uint8Array => b.subarray(t.start, t.end);
export const hex = (x: Uint8Array): string => Buffer.from(x.buffer, x.byteOffset, x.byteLength).toString('hex');

export const OID = {
  commonName: '550403',
  extensionRequest: '2a864886f70d01090e',
  subjectAltName: '551d11',
  ecPublicKey: '2a8648ce3d0201',
  prime256v1: '2a8648ce3d030107',
  ecdsaWithSha256: '2a8648ce3d040302',
} as const;
