// Builds small X.509 v3 certificates in DER for tests, written from RFC 5280 §4.1 with the
// crypto layer's DER helpers and signed by node:crypto: an independent construction that
// node's OpenSSL-backed X509Certificate must accept.
import { sign, type KeyObject } from 'node:crypto';
import { concatBytes, fromHex } from '../../../../src/common/bytes.js';
import { NULL_DER, oid, SEQUENCE, tlv } from '../../../../src/ike/crypto/der.js';

export function dn(cn: string, o = 'kipsec test'): Uint8Array {
  const atv = (oidHex: string, v: string): Uint8Array => tlv(0x31, tlv(SEQUENCE, oid(oidHex), tlv(0x0c, new TextEncoder().encode(v))));
  return tlv(SEQUENCE, atv('55040a', o), atv('550403', cn));
}

function time(ms: number): Uint8Array {
  const d = new Date(ms);
  const p = (n: number): string => String(n).padStart(2, '0');
  const body = `${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}Z`;
  const y = d.getUTCFullYear();
  return y < 2050 ? tlv(0x17, new TextEncoder().encode(`${p(y % 100)}${body}`)) : tlv(0x18, new TextEncoder().encode(`${y}${body}`));
}

/** Signature digests the builder can sign with; sha1 and md5 exist to test that they are refused. */
export type CertSigHash = 'sha256' | 'sha1' | 'md5';

function sigAlg(key: KeyObject, h: CertSigHash = 'sha256'): Uint8Array {
  const t = key.asymmetricKeyType;
  if (t === 'ec') return tlv(SEQUENCE, oid(h === 'sha1' ? '2a8648ce3d0401' : '2a8648ce3d040302'));
  if (t === 'ed25519') return tlv(SEQUENCE, oid('2b6570'));
  return tlv(SEQUENCE, oid({ sha256: '2a864886f70d01010b', sha1: '2a864886f70d010105', md5: '2a864886f70d010104' }[h]), NULL_DER);
}

/** One Extension (RFC 5280 §4.1): extnID, [critical TRUE], extnValue OCTET STRING. */
export function ext(oidHex: string, critical: boolean, value: Uint8Array): Uint8Array {
  return tlv(SEQUENCE, oid(oidHex), ...(critical ? [fromHex('0101ff')] : []), tlv(0x04, value));
}

export interface CertSpec {
  readonly subject: Uint8Array;
  readonly issuer: Uint8Array;
  readonly publicKey: KeyObject;
  readonly signingKey: KeyObject;
  readonly notBeforeMs: number;
  readonly notAfterMs: number;
  readonly serial?: number;
  readonly ca?: boolean;
  readonly pathLen?: number;
  /** KeyUsage bit positions (0 = digitalSignature, 5 = keyCertSign). */
  readonly keyUsage?: readonly number[];
  readonly dns?: readonly string[];
  readonly ip?: readonly Uint8Array[];
  readonly email?: readonly string[];
  /** Mark subjectAltName critical (RFC 5280 §4.2.1.6: required when the subject is empty). */
  readonly sanCritical?: boolean;
  /** ExtendedKeyUsage KeyPurposeIds as OID hex (RFC 5280 §4.2.1.12). */
  readonly eku?: readonly string[];
  readonly ekuCritical?: boolean;
  /** Further DER Extensions (see ext), appended as given. */
  readonly extraExtensions?: readonly Uint8Array[];
  /** Digest of the issuer's signature (default sha256; md5 only with RSA signing keys). */
  readonly sigHash?: CertSigHash;
}

export function buildCert(s: CertSpec): Uint8Array {
  const exts: Uint8Array[] = [];
  if (s.ca !== undefined) {
    const fields = [...(s.ca ? [fromHex('0101ff')] : []), ...(s.pathLen === undefined ? [] : [tlv(0x02, new Uint8Array([s.pathLen]))])];
    exts.push(ext('551d13', true, tlv(SEQUENCE, ...fields)));
  }
  if (s.keyUsage) {
    const bytes = new Uint8Array(2);
    for (const b of s.keyUsage) bytes[b >> 3] = bytes[b >> 3]! | (0x80 >> (b & 7));
    const used = bytes[1] === 0 ? bytes.subarray(0, 1) : bytes;
    let unused = 0; const last = used[used.length - 1]!;
    while (unused < 7 && !(last & (1 << unused))) unused++;
    exts.push(ext('551d0f', true, tlv(0x03, new Uint8Array([unused]), used)));
  }
  const names = [
    ...(s.dns ?? []).map((d) => tlv(0x82, new TextEncoder().encode(d))),
    ...(s.ip ?? []).map((a) => tlv(0x87, a)),
    ...(s.email ?? []).map((e) => tlv(0x81, new TextEncoder().encode(e))),
  ];
  if (names.length) exts.push(ext('551d11', s.sanCritical ?? false, tlv(SEQUENCE, ...names)));
  if (s.eku) exts.push(ext('551d25', s.ekuCritical ?? false, tlv(SEQUENCE, ...s.eku.map((o) => oid(o)))));
  exts.push(...(s.extraExtensions ?? []));
  const spki = new Uint8Array(s.publicKey.export({ format: 'der', type: 'spki' }));
  const alg = sigAlg(s.signingKey, s.sigHash);
  const tbs = tlv(SEQUENCE,
    tlv(0xa0, tlv(0x02, new Uint8Array([2]))),
    tlv(0x02, new Uint8Array([s.serial ?? 1])),
    alg, s.issuer, tlv(SEQUENCE, time(s.notBeforeMs), time(s.notAfterMs)), s.subject, spki,
    ...(exts.length ? [tlv(0xa3, tlv(SEQUENCE, ...exts))] : []));
  const hash = s.signingKey.asymmetricKeyType === 'ed25519' ? null : s.sigHash ?? 'sha256';
  const sig = new Uint8Array(sign(hash, tbs, s.signingKey));
  return tlv(SEQUENCE, tbs, alg, tlv(0x03, concatBytes(new Uint8Array([0]), sig)));
}
