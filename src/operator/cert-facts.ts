// What the identity index needs of an issued certificate — the SHA-256 of its DER and of its
// SubjectPublicKeyInfo, notAfter, the first DNS SAN — read straight from the DER (RFC 5280 §4.1).
// It runs for every signed CSR the informer sees, 5,000 at once when an operator starts on a large
// cluster: node:crypto's X509Certificate plus a public-key export took 3.3 of the operator's 22
// busy CPU-seconds there (bench/operator-scale); this walk takes microseconds. Nothing is
// verified: the index records what the apiserver holds, as before.
import { createHash } from 'node:crypto';
import { OID, children, hex, readTlv, value, whole, type Tlv } from '../pki/der.js';

export interface CertFacts {
  readonly certFingerprint: string;
  readonly publicKeyFingerprint: string;
  readonly notAfterMs: number;
  readonly dnsName: string | undefined;
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----([\s\S]+?)-----END CERTIFICATE-----/;
const sha256 = (x: Uint8Array): string => createHash('sha256').update(x).digest('hex');

/** The first certificate of a PEM bundle; throws on anything else. */
export function certFacts(pem: string): CertFacts {
  const m = PEM_CERT.exec(pem);
  if (!m) throw new Error('no CERTIFICATE PEM block');
  const b = new Uint8Array(Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64'));
  const top = readTlv(b, 0);
  const [tbs] = children(b, top);
  if (top.tag !== 0x30 || !tbs || tbs.tag !== 0x30) throw new Error('not an X.509 certificate');
  // TBSCertificate: [0] version?, serial, signature, issuer, validity, subject, spki, …, [3] extensions
  const f = children(b, tbs);
  const off = f[0]?.tag === 0xa0 ? 1 : 0;
  const validity = f[off + 3]; const spki = f[off + 5];
  if (!validity || !spki || spki.tag !== 0x30) throw new Error('not an X.509 certificate: no validity or key');
  const notAfter = children(b, validity)[1];
  if (!notAfter) throw new Error('not an X.509 certificate: no notAfter');
  return { certFingerprint: sha256(whole(b, top)), publicKeyFingerprint: sha256(whole(b, spki)), notAfterMs: derTimeMs(b, notAfter), dnsName: firstDnsSan(b, f.find((x) => x.tag === 0xa3)) };
}

function firstDnsSan(b: Uint8Array, extsWrap: Tlv | undefined): string | undefined {
  const exts = extsWrap ? children(b, extsWrap)[0] : undefined;
  for (const ext of exts ? children(b, exts) : []) {
    const parts = children(b, ext);
    if (!parts[0] || hex(value(b, parts[0])) !== OID.subjectAltName) continue;
    const octets = parts[parts.length - 1]!;
    for (const gn of children(b, readTlv(b, octets.valueStart, octets.end))) if (gn.tag === 0x82) return Buffer.from(value(b, gn)).toString('latin1');
  }
  return undefined;
}

/** UTCTime (years 1950–2049) or GeneralizedTime, seconds precision, Z. */
function derTimeMs(b: Uint8Array, t: Tlv): number {
  const s = Buffer.from(value(b, t)).toString('latin1');
  const m = t.tag === 0x17 ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s) : t.tag === 0x18 ? /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s) : null;
  if (!m) throw new Error(`not a certificate time: ${s}`);
  const y = Number(m[1]);
  const year = t.tag === 0x17 ? (y >= 50 ? 1900 + y : 2000 + y) : y;
  return Date.UTC(year, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
}
