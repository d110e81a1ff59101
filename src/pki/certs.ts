// CSRs, the self-signed CA, node certificates and their verification (DESIGN.md §4): ECDSA P-256,
// SHA-256 signatures, SAN = node name as DNS (+ node IP), short lifetimes (default 24 h).
import { KeyObject, createHash, createPublicKey, randomBytes, sign, verify } from 'node:crypto';
import { OID, OID_W, bitString, bool, children, hex, octets, oid, readTlv, seq, set, time, tlv, uint, utf8, value, whole, type Tlv } from './der.js';
import { isIP } from 'node:net';
import { SIGN_ALG, webcrypto, x509 } from './provider.js';
import { PkiError, PKI_CODES } from './errors.js';
import type { KeyPair } from './keys.js';

export const DEFAULT_NODE_CERT_LIFETIME_MS = 24 * 3_600_000;
export const DEFAULT_CA_LIFETIME_MS = 365 * 24 * 3_600_000;
/** Renew when this fraction of the lifetime has passed. */
export const RENEW_AT_FRACTION = 2 / 3;
/** Backdate notBefore so peers with slightly slow clocks accept a fresh certificate. */
const CLOCK_SKEW_MS = 5 * 60_000;

export async function createCsr(keys: KeyPair, nodeName: string, nodeIps: readonly string[] = []): Promise<string> {
  const names: x509.JsonGeneralName[] = [{ type: 'dns', value: nodeName }, ...nodeIps.map((ip) => ({ type: 'ip' as const, value: ip }))];
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: `CN=${nodeName}`,
    keys: keys.cryptoKeyPair,
    signingAlgorithm: SIGN_ALG,
    extensions: [new x509.SubjectAlternativeNameExtension(names)],
  });
  return csr.toString('pem');
}

export interface ParsedCsr {
  readonly commonName: string | undefined;
  readonly dnsNames: string[];
  readonly ipAddresses: string[];
  readonly otherSans: number;
  readonly publicKeyFingerprint: string;
  /** DER SubjectPublicKeyInfo of the requester's key. */
  readonly spki: Uint8Array;
}

function ipFromBytes(x: Uint8Array): string {
  if (x.length === 4) return [...x].join('.');
  if (x.length === 16) {
    // RFC 5952 text form: lower case, longest run (≥2) of zero groups as "::".
    const g: number[] = [];
    for (let i = 0; i < 16; i += 2) g.push((x[i]! << 8) | x[i + 1]!);
    let best = -1; let bestLen = 0;
    for (let i = 0; i < 8;) {
      if (g[i] !== 0) { i++; continue; }
      let j = i; while (j < 8 && g[j] === 0) j++;
      if (j - i > bestLen && j - i >= 2) { best = i; bestLen = j - i; }
      i = j;
    }
    const hx = (a: number[]): string => a.map((v) => v.toString(16)).join(':');
    return best < 0 ? hx(g) : `${hx(g.slice(0, best))}::${hx(g.slice(best + bestLen))}`;
  }
  return `invalid(${x.length} bytes)`;
}

/**
 * Parse a PKCS#10 request (RFC 2986) and check its self-signature (proof the requester holds the
 * key). Only ECDSA P-256 with SHA-256 is accepted (DESIGN.md §4).
 */
export async function parseCsr(pem: string): Promise<ParsedCsr> {
  const m = /-----BEGIN CERTIFICATE REQUEST-----([\s\S]+?)-----END CERTIFICATE REQUEST-----/.exec(pem);
  if (!m) throw new PkiError(PKI_CODES.badCsr, 'not a PKCS#10 request: no CERTIFICATE REQUEST PEM block');
  const b = new Uint8Array(Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64'));
  const top = readTlv(b, 0);
  const [info, sigAlg, sig] = children(b, top);
  if (!info || !sigAlg || !sig || info.tag !== 0x30 || sig.tag !== 0x03) throw new PkiError(PKI_CODES.badCsr, 'not a PKCS#10 request: bad outer structure');
  const [, subject, spkiT, attrs] = children(b, info);
  if (!subject || !spkiT) throw new PkiError(PKI_CODES.badCsr, 'not a PKCS#10 request: missing subject or key');
  const algOid = children(b, sigAlg)[0];
  if (!algOid || hex(value(b, algOid)) !== OID.ecdsaWithSha256) throw new PkiError(PKI_CODES.badCsr, 'CSR must be signed with ecdsa-with-SHA256');
  const [keyAlg] = children(b, spkiT);
  const keyAlgParts = keyAlg ? children(b, keyAlg).map((x) => hex(value(b, x))) : [];
  if (keyAlgParts[0] !== OID.ecPublicKey || keyAlgParts[1] !== OID.prime256v1) throw new PkiError(PKI_CODES.badCsr, 'key must be ECDSA P-256');
  const spki = whole(b, spkiT);
  const sigBits = value(b, sig);
  const ok = verify('sha256', whole(b, info), { key: p256PublicKey(b, spkiT, spki), dsaEncoding: 'der' }, sigBits.subarray(1));
  if (!ok) throw new PkiError(PKI_CODES.badCsr, 'CSR signature does not verify');
  let commonName: string | undefined;
  for (const rdn of children(b, subject)) for (const atv of children(b, rdn)) {
    const [oid, v] = children(b, atv);
    if (oid && v && hex(value(b, oid)) === OID.commonName) commonName = Buffer.from(value(b, v)).toString('utf8');
  }
  const dnsNames: string[] = []; const ipAddresses: string[] = []; let otherSans = 0;
  if (attrs && attrs.tag === 0xa0) {
    for (const attr of children(b, attrs)) {
      const [oid, set] = children(b, attr);
      if (!oid || !set || hex(value(b, oid)) !== OID.extensionRequest) continue;
      for (const exts of children(b, set)) for (const ext of children(b, exts)) {
        const parts = children(b, ext);
        if (hex(value(b, parts[0]!)) !== OID.subjectAltName) continue;
        const octets = parts[parts.length - 1]!;
        const names = readTlv(b, octets.valueStart, octets.end);
        for (const gn of children(b, names)) {
          if (gn.tag === 0x82) dnsNames.push(Buffer.from(value(b, gn)).toString('latin1'));
          else if (gn.tag === 0x87) ipAddresses.push(ipFromBytes(value(b, gn)));
          else otherSans++;
        }
      }
    }
  }
  return { commonName, dnsNames, ipAddresses, otherSans, publicKeyFingerprint: createHash('sha256').update(spki).digest('hex'), spki };
}

/**
 * The key of a P-256 SPKI. An uncompressed point (0x04 | X | Y, RFC 5480 §2.2) is imported as a
 * JWK: OpenSSL 3 decodes a DER SPKI through its generic decoder chain at about twice the cost, and
 * the signer imports one key per CSR. Any other encoding takes the DER path. Both check the point.
 */
function p256PublicKey(b: Uint8Array, spkiT: Tlv, spki: Uint8Array): KeyObject {
  const bits = children(b, spkiT)[1];
  const point = bits && bits.tag === 0x03 ? value(b, bits) : undefined;
  if (point && point.length === 66 && point[0] === 0 && point[1] === 0x04) {
    const coord = (from: number): string => Buffer.from(point.subarray(from, from + 32)).toString('base64url');
    return createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: coord(2), y: coord(34) }, format: 'jwk' });
  }
  return createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
}

export interface CertificateAuthority { readonly cert: x509.X509Certificate; readonly keys: KeyPair }

function serial(): string {
  const b = randomBytes(16);
  b[0] = b[0]! & 0x7f; // positive INTEGER
  return b.toString('hex');
}

export async function createCa(keys: KeyPair, commonName: string, nowMs: number, lifetimeMs = DEFAULT_CA_LIFETIME_MS): Promise<CertificateAuthority> {
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=${commonName}`,
    notBefore: new Date(nowMs - CLOCK_SKEW_MS),
    notAfter: new Date(nowMs + lifetimeMs),
    keys: keys.cryptoKeyPair,
    signingAlgorithm: SIGN_ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { cert, keys };
}

export interface SignOptions { readonly nowMs: number; readonly lifetimeMs?: number; readonly dnsNames: readonly string[]; readonly ipAddresses?: readonly string[] }

export interface IssuedCertificate { readonly pem: string; readonly notBeforeMs: number; readonly notAfterMs: number }

interface CaDer { readonly subject: Uint8Array; readonly keyId: Uint8Array | undefined; readonly key: KeyObject }
const caDerCache = new WeakMap<x509.X509Certificate, CaDer>();

/** The CA's subject Name (DER), subject key identifier and signing key, extracted once per CA. */
function caDer(ca: CertificateAuthority): CaDer {
  const hit = caDerCache.get(ca.cert);
  if (hit) return hit;
  const b = new Uint8Array(ca.cert.rawData);
  const [tbs] = children(b, readTlv(b, 0));
  const f = children(b, tbs!);
  const off = f[0]!.tag === 0xa0 ? 1 : 0; // [0] version present
  const subject = whole(b, f[off + 4]!);
  let keyId: Uint8Array | undefined;
  const extsWrap = f.find((x) => x.tag === 0xa3);
  if (extsWrap) {
    for (const ext of children(b, children(b, extsWrap)[0]!)) {
      const parts = children(b, ext);
      if (hex(value(b, parts[0]!)) !== OID_W.subjectKeyIdentifier) continue;
      const o = parts[parts.length - 1]!;
      keyId = value(b, readTlv(b, o.valueStart, o.end));
    }
  }
  const out = { subject, keyId, key: KeyObject.from(ca.keys.privateKey as unknown as Parameters<typeof KeyObject.from>[0]) };
  caDerCache.set(ca.cert, out);
  return out;
}

function ipBytes(ip: string): Uint8Array {
  if (isIP(ip) === 4) return Uint8Array.from(ip.split('.').map(Number));
  const [h = '', t = ''] = ip.includes('::') ? ip.split('::') : [ip, ''];
  const hs = h ? h.split(':') : []; const ts = t ? t.split(':') : [];
  const groups = ip.includes('::') ? [...hs, ...Array<string>(8 - hs.length - ts.length).fill('0'), ...ts] : hs;
  const out = new Uint8Array(16);
  groups.forEach((g, i) => { const v = parseInt(g, 16); out[2 * i] = v >> 8; out[2 * i + 1] = v & 0xff; });
  return out;
}

function extension(oidHex: string, critical: boolean, valueDer: Uint8Array): Uint8Array {
  return critical ? seq(oid(oidHex), bool(true), octets(valueDer)) : seq(oid(oidHex), octets(valueDer));
}

/**
 * Issue a node certificate for an already-approved CSR (SANs are the ones the caller approved):
 * X.509 v3, ECDSA-SHA256 by the CA, CA:false, keyUsage digitalSignature, EKU server+client auth,
 * authority key id. Encoded directly in DER and signed with node:crypto — the signer issues one
 * per node per renewal, and a generic ASN.1 library costs several ms each.
 */
export function issueNodeCertificate(ca: CertificateAuthority, csr: ParsedCsr, o: SignOptions): IssuedCertificate {
  const lifetime = o.lifetimeMs ?? DEFAULT_NODE_CERT_LIFETIME_MS;
  const notBeforeMs = Math.floor((o.nowMs - CLOCK_SKEW_MS) / 1000) * 1000;
  const notAfterMs = Math.floor(Math.min(o.nowMs + lifetime, ca.cert.notAfter.getTime()) / 1000) * 1000;
  const c = caDer(ca);
  const sigAlg = seq(oid(OID.ecdsaWithSha256));
  const sans = seq(...o.dnsNames.map((d) => tlv(0x82, Buffer.from(d, 'latin1'))), ...(o.ipAddresses ?? []).map((ip) => tlv(0x87, ipBytes(ip))));
  const exts = [
    extension(OID_W.basicConstraints, true, seq()),
    extension(OID_W.keyUsage, true, bitString(Uint8Array.of(0x80), 7)),
    extension(OID_W.extKeyUsage, false, seq(oid(OID_W.serverAuth), oid(OID_W.clientAuth))),
    extension(OID.subjectAltName, false, sans),
    ...(c.keyId ? [extension(OID_W.authorityKeyIdentifier, false, seq(tlv(0x80, c.keyId)))] : []),
  ];
  const tbs = seq(
    tlv(0xa0, uint(Uint8Array.of(2))),
    uint(Buffer.from(serial(), 'hex')),
    sigAlg,
    c.subject,
    seq(time(notBeforeMs), time(notAfterMs)),
    seq(set(seq(oid(OID.commonName), utf8(o.dnsNames[0] ?? 'node')))),
    csr.spki,
    tlv(0xa3, seq(...exts)),
  );
  const signature = sign('sha256', tbs, { key: c.key, dsaEncoding: 'der' });
  const der = seq(tbs, sigAlg, bitString(signature));
  const b64 = Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return { pem: `-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----\n`, notBeforeMs, notAfterMs };
}

/** issueNodeCertificate, parsed (for callers that want the certificate object). */
export async function signNodeCertificate(ca: CertificateAuthority, csr: ParsedCsr, o: SignOptions): Promise<x509.X509Certificate> {
  return parseCertificate(issueNodeCertificate(ca, csr, o).pem);
}

export function parseCertificate(pem: string): x509.X509Certificate {
  try { return new x509.X509Certificate(pem); } catch (e) { throw new PkiError(PKI_CODES.badPem, `not an X.509 certificate: ${(e as Error).message}`); }
}

/** All certificates in a PEM bundle (the trust bundle ConfigMap holds one or two CAs). */
export function parseBundle(pem: string): x509.X509Certificate[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  return blocks.map(parseCertificate);
}

export function toPem(certs: readonly x509.X509Certificate[]): string { return certs.map((c) => c.toString('pem')).join('\n') + '\n'; }

/** SHA-256 of the DER certificate, lower-case hex (IPsecNode spec.identity.certFingerprint). */
export async function certFingerprint(cert: x509.X509Certificate): Promise<string> {
  return Buffer.from(await webcrypto.subtle.digest('SHA-256', cert.rawData)).toString('hex');
}

/** SHA-256 of the DER SubjectPublicKeyInfo, lower-case hex. */
export async function spkiFingerprint(spkiDer: ArrayBuffer): Promise<string> {
  return Buffer.from(await webcrypto.subtle.digest('SHA-256', spkiDer)).toString('hex');
}

/**
 * Check that `cert` was issued by one of the CAs in `bundle` and that both are valid at `nowMs`.
 * Returns the issuing CA; throws PkiError (untrusted / expired / notCa) with the reason otherwise.
 */
export async function verifyCertificate(cert: x509.X509Certificate, bundle: readonly x509.X509Certificate[], nowMs: number): Promise<x509.X509Certificate> {
  const now = new Date(nowMs);
  if (cert.notBefore > now || cert.notAfter < now) throw new PkiError(PKI_CODES.expired, `certificate ${cert.subject} is valid ${cert.notBefore.toISOString()}..${cert.notAfter.toISOString()}, not at ${now.toISOString()}`);
  for (const ca of bundle) {
    if (ca.subject !== cert.issuer) continue;
    const bc = ca.getExtension(x509.BasicConstraintsExtension);
    if (!bc?.ca) continue;
    if (ca.notBefore > now || ca.notAfter < now) continue;
    if (await cert.verify({ publicKey: ca, signatureOnly: true })) return ca;
  }
  throw new PkiError(PKI_CODES.untrusted, `certificate ${cert.subject} (issuer ${cert.issuer}) is not signed by any trusted CA`);
}

/** The SAN names of a certificate. */
export function certificateSans(cert: x509.X509Certificate): { dns: string[]; ip: string[] } {
  const items = cert.getExtension(x509.SubjectAlternativeNameExtension)?.names.items ?? [];
  return { dns: items.filter((n) => n.type === 'dns').map((n) => n.value), ip: items.filter((n) => n.type === 'ip' && isIP(n.value) !== 0).map((n) => n.value) };
}

/** When to renew: at RENEW_AT_FRACTION of the certificate's lifetime. */
export function renewAtMs(cert: x509.X509Certificate): number {
  const start = cert.notBefore.getTime(); const end = cert.notAfter.getTime();
  return start + (end - start) * RENEW_AT_FRACTION;
}
