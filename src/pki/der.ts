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

// ---- writing (the node-certificate encoder, certs.ts issueNodeCertificate) ----

function lengthBytes(n: number): number[] {
  if (n < 0x80) return [n];
  const out: number[] = [];
  for (let v = n; v > 0; v >>= 8) out.unshift(v & 0xff);
  return [0x80 | out.length, ...out];
}

/** One TLV from a tag and its (concatenated) contents. */
export function tlv(tag: number, ...parts: readonly Uint8Array[]): Uint8Array {
  const len = parts.reduce((s, p) => s + p.length, 0);
  const head = [tag, ...lengthBytes(len)];
  const out = new Uint8Array(head.length + len);
  out.set(head, 0);
  let at = head.length;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

export const seq = (...parts: readonly Uint8Array[]): Uint8Array => tlv(0x30, ...parts);
export const set = (...parts: readonly Uint8Array[]): Uint8Array => tlv(0x31, ...parts);
export const oid = (hexOid: string): Uint8Array => tlv(0x06, Buffer.from(hexOid, 'hex'));
export const octets = (x: Uint8Array): Uint8Array => tlv(0x04, x);
export const utf8 = (s: string): Uint8Array => tlv(0x0c, Buffer.from(s, 'utf8'));
export const bool = (v: boolean): Uint8Array => tlv(0x01, Uint8Array.of(v ? 0xff : 0));
export const bitString = (x: Uint8Array, unusedBits = 0): Uint8Array => tlv(0x03, Uint8Array.of(unusedBits), x);

/** A positive INTEGER from big-endian magnitude bytes (leading zeros trimmed, sign byte added). */
export function uint(x: Uint8Array): Uint8Array {
  let i = 0;
  while (i < x.length - 1 && x[i] === 0) i++;
  const body = x.subarray(i);
  return (body[0]! & 0x80) ? tlv(0x02, Uint8Array.of(0), body) : tlv(0x02, body);
}

/** RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050. Seconds precision. */
export function time(ms: number): Uint8Array {
  const d = new Date(Math.floor(ms / 1000) * 1000);
  const iso = d.toISOString(); // YYYY-MM-DDTHH:MM:SS.000Z
  const digits = iso.slice(0, 19).replace(/[-:T]/g, '');
  return d.getUTCFullYear() < 2050 ? tlv(0x17, Buffer.from(`${digits.slice(2)}Z`, 'latin1')) : tlv(0x18, Buffer.from(`${digits}Z`, 'latin1'));
}

export const OID_W = {
  basicConstraints: '551d13',
  keyUsage: '551d0f',
  extKeyUsage: '551d25',
  serverAuth: '2b06010505070301',
  clientAuth: '2b06010505070302',
  authorityKeyIdentifier: '551d23',
  subjectKeyIdentifier: '551d0e',
} as const;
