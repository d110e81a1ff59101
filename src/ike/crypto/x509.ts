// Minimal X.509 reading for IKE certificate authentication: node:crypto's X509Certificate does the
// signature checks and SAN matching (OpenSSL), and this module reads from the DER what node does
// not expose (raw subject/issuer Names, validity as instants, basicConstraints pathLen, keyUsage
// bits, extendedKeyUsage, which critical extensions nobody processes). RFC 5280 §4.1 structure:
//   Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }
//   TBSCertificate ::= SEQUENCE { [0] version, serial, signature, issuer, validity, subject,
//                                 subjectPublicKeyInfo, [1] issuerUID, [2] subjectUID, [3] extensions }
// (@peculiar/x509 would do this too, but in this install it cannot load: its tsyringe dependency
// requires a Reflect metadata polyfill that is not installed.)
import { X509Certificate, type KeyObject } from 'node:crypto';
import { equalBytes, toHex } from '../../common/bytes.js';
import { readAll, readTlv, type Tlv } from './der.js';
import { CertificateError } from './errors.js';

/** RFC 5280 §4.2.1.3 KeyUsage bits as bit positions counted from the most significant bit. */
export const KeyUsageBit = { digitalSignature: 0, nonRepudiation: 1, keyEncipherment: 2, dataEncipherment: 3, keyAgreement: 4, keyCertSign: 5, cRLSign: 6 } as const;

export interface CertInfo {
  readonly der: Uint8Array;
  readonly cert: X509Certificate;
  readonly publicKey: KeyObject;
  /** DER of the subject Name: what ID_DER_ASN1_DN carries (RFC 7296 §3.5). */
  readonly subjectDer: Uint8Array;
  readonly issuerDer: Uint8Array;
  /** OID (content octets, hex) of the issuer's signature on this certificate. */
  readonly signatureAlgorithm: string;
  readonly notBeforeMs: number;
  readonly notAfterMs: number;
  /** Absent when the extension is absent. */
  readonly basicConstraints?: { readonly ca: boolean; readonly pathLen?: number };
  /** KeyUsage as a set of KeyUsageBit positions; absent when the extension is absent. */
  readonly keyUsage?: ReadonlySet<number>;
  /** ExtendedKeyUsage KeyPurposeIds (OID content octets, hex); absent when the extension is absent. */
  readonly extKeyUsage?: ReadonlySet<string>;
  /** Dotted OIDs of critical extensions nothing here processes (RFC 5280 §4.2: the path check refuses them). */
  readonly unprocessedCritical?: readonly string[];
}

const OID_BASIC_CONSTRAINTS = '551d13';
const OID_KEY_USAGE = '551d0f';
const OID_EXT_KEY_USAGE = '551d25';
/**
 * Extensions that may be critical because we act on them: the three above, subjectAltName
 * (node's checkHost/checkIP/checkEmail), and the key identifiers, which only help path building.
 */
const PROCESSED = new Set([OID_BASIC_CONSTRAINTS, OID_KEY_USAGE, OID_EXT_KEY_USAGE, '551d11', '551d0e', '551d23']);

/** OID content octets as dotted text (X.690 §8.19), for messages. */
export function oidText(hex: string): string {
  const b = Buffer.from(hex, 'hex');
  const arcs: bigint[] = [];
  let v = 0n;
  for (const x of b) { v = (v << 7n) | BigInt(x & 0x7f); if (!(x & 0x80)) { arcs.push(v); v = 0n; } }
  const first = arcs.shift() ?? 0n;
  const top = first < 80n ? first / 40n : 2n;
  return [top, first - top * 40n, ...arcs].join('.');
}

function malformed(msg: string): CertificateError { return new CertificateError('ERR_IKE_CERT_MALFORMED', msg); }

/** UTCTime (YYMMDDHHMMSSZ) or GeneralizedTime (YYYYMMDDHHMMSSZ), RFC 5280 §4.1.2.5. */
function parseTime(t: Tlv): number {
  const s = new TextDecoder().decode(t.value);
  const m = t.tag === 0x17 ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s) : t.tag === 0x18 ? /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s) : null;
  if (!m) throw malformed(`bad certificate time "${s}"`);
  let year = Number(m[1]);
  if (t.tag === 0x17) year += year >= 50 ? 1900 : 2000;
  return Date.UTC(year, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
}

type Extensions = { -readonly [K in 'basicConstraints' | 'keyUsage' | 'extKeyUsage' | 'unprocessedCritical']?: NonNullable<CertInfo[K]> };

function parseExtensions(ext: Tlv | undefined): Extensions {
  const out: Extensions = {};
  if (!ext) return out;
  const list = readTlv(ext.value);
  const unprocessed: string[] = [];
  for (const e of readAll(list.value)) {
    const fields = readAll(e.value);
    const oid = fields[0];
    const value = fields[fields.length - 1];
    if (!oid) continue;
    const id = toHex(oid.value);
    const critical = fields.length === 3 && fields[1]!.tag === 0x01 && fields[1]!.value[0] !== 0;
    if (critical && !PROCESSED.has(id)) unprocessed.push(oidText(id));
    if (!value || value.tag !== 0x04) continue;
    if (id === OID_EXT_KEY_USAGE) {
      out.extKeyUsage = new Set(readAll(readTlv(value.value).value).filter((p) => p.tag === 0x06).map((p) => toHex(p.value)));
    } else if (id === OID_BASIC_CONSTRAINTS) {
      const seq = readTlv(value.value);
      let ca = false; let pathLen: number | undefined;
      for (const f of readAll(seq.value)) {
        if (f.tag === 0x01) ca = f.value[0] !== 0;
        else if (f.tag === 0x02) { pathLen = 0; for (const b of f.value) pathLen = pathLen * 256 + b; }
      }
      out.basicConstraints = pathLen === undefined ? { ca } : { ca, pathLen };
    } else if (id === OID_KEY_USAGE) {
      const bits = readTlv(value.value);
      if (bits.tag !== 0x03 || bits.value.length < 1) throw malformed('bad keyUsage BIT STRING');
      const set = new Set<number>();
      for (let i = 1; i < bits.value.length; i++) for (let b = 0; b < 8; b++) if (bits.value[i]! & (0x80 >> b)) set.add((i - 1) * 8 + b);
      out.keyUsage = set;
    }
  }
  if (unprocessed.length) out.unprocessedCritical = unprocessed;
  return out;
}

/** Parse a DER certificate (from a CERT payload, encoding 4). */
export function parseCertificate(der: Uint8Array): CertInfo {
  let cert: X509Certificate;
  try { cert = new X509Certificate(der); } catch (e) { throw malformed(`not an X.509 certificate (${(e as Error).message})`); }
  try {
    const [tbsTlv, sigAlg] = readAll(readTlv(der).value);
    const sigOid = readAll(sigAlg?.value ?? new Uint8Array(0))[0];
    if (!tbsTlv || sigOid?.tag !== 0x06) throw malformed('no signatureAlgorithm');
    const tbs = readAll(tbsTlv.value);
    let i = 0;
    if (tbs[0]?.tag === 0xa0) i++; // version
    const issuer = tbs[i + 2]; const validity = tbs[i + 3]; const subject = tbs[i + 4];
    if (!issuer || !validity || !subject) throw malformed('truncated TBSCertificate');
    const [nb, na] = readAll(validity.value);
    if (!nb || !na) throw malformed('bad validity');
    const ext = tbs.slice(i + 6).find((t) => t.tag === 0xa3);
    return {
      der, cert, publicKey: cert.publicKey, signatureAlgorithm: toHex(sigOid.value),
      subjectDer: subject.raw, issuerDer: issuer.raw,
      notBeforeMs: parseTime(nb), notAfterMs: parseTime(na),
      ...parseExtensions(ext),
    };
  } catch (e) {
    if (e instanceof CertificateError) throw e;
    throw malformed(`cannot parse certificate (${(e as Error).message})`);
  }
}

export function sameName(a: Uint8Array, b: Uint8Array): boolean { return equalBytes(a, b); }
