// Peer certificate validation for IKE_AUTH (RFC 7296 §3.6-3.7, RFC 4945 §5 profile):
//   1. build a path from the end-entity certificate through the CERT-payload intermediates to one
//      of the configured CA certificates (issuer Name = subject Name, signature verifies and is
//      not MD5, nor SHA-1 unless allowSha1);
//   2. every certificate on the path, trust anchor included, is inside its validity period at the
//      injected clock's instant;
//   3. issuers are CAs (basicConstraints cA, pathLen respected) and, when keyUsage is present,
//      may sign certificates (keyCertSign); the end entity, when keyUsage is present, may sign
//      (digitalSignature or nonRepudiation, RFC 4945 §5.1.3.2) and, when extendedKeyUsage is
//      present, names an IKE purpose (RFC 5280 §4.2.1.12, RFC 4945 §5.1.3.12); the end entity
//      and intermediates carry no critical extension we do not process (RFC 5280 §4.2); at most
//      MAX_CHAIN_CERTIFICATES / MAX_CHAIN_BYTES of CERT payloads are looked at;
//   4. the peer's IKE identity is in the end-entity certificate (RFC 4945 §3.1: IP address, DNS
//      and email SANs; ID_DER_ASN1_DN against the subject). Revocation is out of scope here;
//   5. when the peer config pins keys or certificates, the end entity matches one pin
//      (checkPins: SHA-256 of its SubjectPublicKeyInfo or of the whole certificate, as
//      RFC 7469 §2.4 pins a key, applied to a peer we already trust through the CAs).
// Failures are CertificateError with a fixed code; the exchange layer answers AUTHENTICATION_FAILED.
import { createHash, type KeyObject } from 'node:crypto';
import { IdType } from '../constants.js';
import { parseCertificateCached, signedBy } from './cert-cache.js';
import { CertificateError } from './errors.js';
import { KeyUsageBit, sameName, type CertInfo } from './x509.js';

/**
 * Most CERT payloads (end entity included) and octets we look at: the peer is not yet
 * authenticated, and RFC 7383 fragments let it send 256 KiB. A path is at most 8 certificates
 * (maxLength); the rest allows a few alternatives (cross-signed CAs) beside it.
 */
export const MAX_CHAIN_CERTIFICATES = 16;
export const MAX_CHAIN_BYTES = 65_536;

export interface ChainInput {
  /** DER of the peer's end-entity certificate (first CERT payload). */
  readonly endEntity: Uint8Array;
  /** DER of further CERT payloads, any order. */
  readonly intermediates?: readonly Uint8Array[];
  /** DER of the configured CA certificates. */
  readonly trustAnchors: readonly Uint8Array[];
  /** The instant to validate at, in ms (Clock.now()). */
  readonly nowMs: number;
  /** Longest accepted path including end entity and anchor (default 8). */
  readonly maxLength?: number;
  /** Accept SHA-1 certificate signatures on the path (a profile's allowWeak; default false). */
  readonly allowSha1?: boolean;
}

export interface ValidatedChain {
  readonly endEntity: CertInfo;
  /** The key that must verify the AUTH payload. */
  readonly publicKey: KeyObject;
  /** End entity first, trust anchor last. */
  readonly path: readonly CertInfo[];
}

function describe(c: CertInfo): string { return `"${c.cert.subject.replace(/\n/g, ', ')}"`; }

function checkValidity(c: CertInfo, nowMs: number): void {
  if (nowMs < c.notBeforeMs) throw new CertificateError('ERR_IKE_CERT_NOT_YET_VALID', `certificate ${describe(c)} is not valid before ${new Date(c.notBeforeMs).toISOString()}`);
  if (nowMs > c.notAfterMs) throw new CertificateError('ERR_IKE_CERT_EXPIRED', `certificate ${describe(c)} expired at ${new Date(c.notAfterMs).toISOString()}`);
}

function checkIssuer(issuer: CertInfo, below: number): void {
  if (!issuer.basicConstraints?.ca) throw new CertificateError('ERR_IKE_CERT_NOT_CA', `issuer ${describe(issuer)} is not a CA (basicConstraints)`);
  const pathLen = issuer.basicConstraints.pathLen;
  if (pathLen !== undefined && below > pathLen) throw new CertificateError('ERR_IKE_CERT_NOT_CA', `issuer ${describe(issuer)} allows ${pathLen} intermediate CA(s) below it, path has ${below}`);
  if (issuer.keyUsage && !issuer.keyUsage.has(KeyUsageBit.keyCertSign)) throw new CertificateError('ERR_IKE_CERT_KEY_USAGE', `issuer ${describe(issuer)} lacks keyUsage keyCertSign`);
}

/**
 * KeyPurposeIds that allow IKE: RFC 4945 §5.1.3.12 names id-kp-ipsecIKE and anyExtendedKeyUsage;
 * serverAuth and clientAuth too, as strongSwan accepts them and our own CA issues them (src/pki),
 * and iKEIntermediate (1.3.6.1.5.5.8.2.2), which Windows clients look for.
 */
const IKE_PURPOSES: ReadonlySet<string> = new Set(['2b06010505070311', '551d2500', '2b06010505070301', '2b06010505070302', '2b06010505080202']);

function checkExtKeyUsage(ee: CertInfo): void {
  if (!ee.extKeyUsage || [...ee.extKeyUsage].some((p) => IKE_PURPOSES.has(p))) return;
  throw new CertificateError('ERR_IKE_CERT_KEY_USAGE', `certificate ${describe(ee)} may not be used for IKE: its extendedKeyUsage names none of ipsecIKE, anyExtendedKeyUsage, serverAuth, clientAuth, iKEIntermediate (RFC 5280 §4.2.1.12)`);
}

/**
 * Certificate signature algorithms refused (node's X509Certificate.verify is OpenSSL's X509_verify,
 * which applies no security level): MD2/MD4/MD5 always (RFC 6151), SHA-1 unless allowSha1
 * (RFC 8247 §3, as for AUTH). Only signatures on the path count; a trust anchor's own does not.
 */
const WEAK_CERT_SIGNATURES: Readonly<Record<string, { readonly name: string; readonly sha1: boolean }>> = {
  '2a864886f70d010102': { name: 'md2WithRSAEncryption', sha1: false },
  '2a864886f70d010103': { name: 'md4WithRSAEncryption', sha1: false },
  '2a864886f70d010104': { name: 'md5WithRSAEncryption', sha1: false },
  '2a864886f70d010105': { name: 'sha1WithRSAEncryption', sha1: true },
  '2b0e03021d': { name: 'sha1WithRSASignature (OIW)', sha1: true },
  '2a8648ce3d0401': { name: 'ecdsa-with-SHA1', sha1: true },
  '2a8648ce380403': { name: 'dsa-with-sha1', sha1: true },
};

function checkSignatureAlgorithm(c: CertInfo, allowSha1: boolean): void {
  const weak = WEAK_CERT_SIGNATURES[c.signatureAlgorithm];
  if (weak && !(weak.sha1 && allowSha1))
    throw new CertificateError('ERR_IKE_CERT_WEAK_SIGNATURE', `certificate ${describe(c)} is signed with ${weak.name}, which is refused (${weak.sha1 ? 'RFC 8247 §3; allowWeak accepts it' : 'RFC 6151'})`);
}

/** RFC 5280 §4.2 / §6.1.4 (o): a critical extension we do not process rejects the certificate. */
function checkCritical(c: CertInfo): void {
  if (c.unprocessedCritical?.length)
    throw new CertificateError('ERR_IKE_CERT_UNSUPPORTED_CRITICAL', `certificate ${describe(c)} has critical extension ${c.unprocessedCritical.join(', ')}, which we do not process (RFC 5280 §4.2)`);
}

function issuedBy(child: CertInfo, parent: CertInfo): boolean {
  return sameName(child.issuerDer, parent.subjectDer);
}

function signatureOk(child: CertInfo, parent: CertInfo): boolean {
  return signedBy(child, parent);
}

/** Validate the peer's certificate path to a configured CA; see the module comment for the rules. */
export function validateCertificateChain(input: ChainInput): ValidatedChain {
  const maxLength = input.maxLength ?? 8;
  const sent = [input.endEntity, ...(input.intermediates ?? [])];
  const octets = sent.reduce((n, c) => n + c.length, 0);
  if (sent.length > MAX_CHAIN_CERTIFICATES)
    throw new CertificateError('ERR_IKE_CERT_CHAIN_TOO_BIG', `peer sent ${sent.length} certificates, at most ${MAX_CHAIN_CERTIFICATES} are accepted`);
  if (octets > MAX_CHAIN_BYTES)
    throw new CertificateError('ERR_IKE_CERT_CHAIN_TOO_BIG', `peer sent certificates of ${octets} octets, at most ${MAX_CHAIN_BYTES} are accepted`);
  // Parsed and issuer-checked once per certificate content (cert-cache.ts), not per handshake.
  const ee = parseCertificateCached(input.endEntity);
  const pool = (input.intermediates ?? []).map(parseCertificateCached);
  const anchors = input.trustAnchors.map(parseCertificateCached);
  if (ee.keyUsage && !ee.keyUsage.has(KeyUsageBit.digitalSignature) && !ee.keyUsage.has(KeyUsageBit.nonRepudiation))
    throw new CertificateError('ERR_IKE_CERT_KEY_USAGE', `certificate ${describe(ee)} may not sign (keyUsage lacks digitalSignature)`);
  checkExtKeyUsage(ee);
  checkCritical(ee);
  const allowSha1 = input.allowSha1 ?? false;
  checkSignatureAlgorithm(ee, allowSha1);
  const path: CertInfo[] = [ee];
  checkValidity(ee, input.nowMs);
  let current = ee;
  let badSignature = false;
  for (;;) {
    // An anchor that issued the current certificate ends the path (preferred over intermediates,
    // so a peer cannot lengthen the path by sending the CA itself as an intermediate).
    const anchorCands = anchors.filter((a) => issuedBy(current, a));
    const anchor = anchorCands.find((a) => signatureOk(current, a));
    if (anchor) {
      checkIssuer(anchor, path.length - 1);
      checkValidity(anchor, input.nowMs);
      path.push(anchor);
      return { endEntity: ee, publicKey: ee.publicKey, path };
    }
    if (anchorCands.length > 0) badSignature = true;
    if (path.length + 1 >= maxLength) throw new CertificateError('ERR_IKE_CERT_CHAIN_TOO_LONG', `no trusted CA within ${maxLength} certificates of ${describe(ee)}`);
    const cands = pool.filter((c) => !path.includes(c) && issuedBy(current, c));
    const next = cands.find((c) => signatureOk(current, c));
    if (!next) {
      if (badSignature || cands.length > 0)
        throw new CertificateError('ERR_IKE_CERT_BAD_SIGNATURE', `signature on ${describe(current)} does not verify with its issuer's key`);
      throw new CertificateError('ERR_IKE_CERT_UNTRUSTED', `no path from ${describe(ee)} to a configured CA (no issuer found for ${describe(current)})`);
    }
    checkIssuer(next, path.length - 1);
    checkCritical(next);
    checkSignatureAlgorithm(next, allowSha1);
    checkValidity(next, input.nowMs);
    path.push(next);
    current = next;
  }
}

function ipString(b: Uint8Array): string {
  if (b.length === 4) return Array.from(b).join('.');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((b[i]! << 8) | b[i + 1]!).toString(16));
  return groups.join(':');
}

/**
 * Check that the IKE identity (ID payload type and data, RFC 7296 §3.5) is bound to the
 * certificate (RFC 4945 §3.1). Throws ERR_IKE_CERT_ID_MISMATCH.
 */
export function matchIdentity(cert: CertInfo, idType: number, idData: Uint8Array): void {
  // dNSName and rfc822Name are IA5String (RFC 5280 §4.2.1.6), so a matching ID is printable ASCII.
  // Checked on the octets because OpenSSL ignores a trailing NUL ("node-1.example.com\0" matched),
  // TextDecoder drops a leading BOM, and node throws a TypeError on an embedded NUL.
  const text = (): string => {
    const bad = idData.findIndex((b) => b < 0x21 || b > 0x7e);
    if (bad >= 0) throw new CertificateError('ERR_IKE_CERT_ID_MISMATCH', `identity has octet 0x${idData[bad]!.toString(16).padStart(2, '0')} at ${bad}; a name in a certificate is printable ASCII`);
    return Buffer.from(idData).toString('latin1');
  };
  let ok: boolean;
  let shown: string;
  switch (idType) {
    case IdType.ID_IPV4_ADDR:
    case IdType.ID_IPV6_ADDR: {
      const want = idType === IdType.ID_IPV4_ADDR ? 4 : 16;
      if (idData.length !== want) throw new CertificateError('ERR_IKE_CERT_ID_MISMATCH', `ID_IP address is ${idData.length} octets, want ${want}`);
      shown = ipString(idData);
      ok = cert.cert.checkIP(shown) !== undefined;
      break;
    }
    case IdType.ID_FQDN:
      shown = text();
      ok = cert.cert.checkHost(shown, { subject: 'never', wildcards: false }) !== undefined;
      break;
    case IdType.ID_RFC822_ADDR:
      shown = text();
      ok = cert.cert.checkEmail(shown, { subject: 'never' }) !== undefined;
      break;
    case IdType.ID_DER_ASN1_DN:
      shown = 'the DN in the ID payload';
      ok = sameName(idData, cert.subjectDer);
      break;
    default:
      throw new CertificateError('ERR_IKE_CERT_ID_MISMATCH', `ID type ${idType} cannot be matched against a certificate`);
  }
  if (!ok) throw new CertificateError('ERR_IKE_CERT_ID_MISMATCH', `identity ${shown} is not in certificate ${describe(cert)}`);
}

const caHashCache = new WeakMap<readonly Uint8Array[], Uint8Array>();
const spkiSha1 = new WeakMap<CertInfo, Uint8Array>();

/**
 * The Certification Authority field of an X.509 CERTREQ (RFC 7296 §3.7): for each trust anchor
 * the SHA-1 hash of its SubjectPublicKeyInfo, concatenated. It tells the peer which CA to chain
 * to (a peer with several certificates picks by it; some send none for an empty field).
 * Anchors that do not parse are left out (configuration checks report them).
 * It goes into every IKE_SA_INIT response and IKE_AUTH request: cached per list, and each
 * anchor's hash per certificate content (cert-cache.ts), since peers' configs hold equal lists
 * in distinct arrays.
 */
export function caKeyHashes(trustAnchors: readonly Uint8Array[]): Uint8Array {
  const cached = caHashCache.get(trustAnchors);
  if (cached) return cached;
  const hashes: Uint8Array[] = [];
  for (const der of trustAnchors) {
    let ca: CertInfo;
    try { ca = parseCertificateCached(der); } catch { continue; }
    let h = spkiSha1.get(ca);
    if (h === undefined) {
      h = createHash('sha1').update(ca.publicKey.export({ type: 'spki', format: 'der' })).digest();
      spkiSha1.set(ca, h);
    }
    hashes.push(h);
  }
  const out = new Uint8Array(Buffer.concat(hashes));
  caHashCache.set(trustAnchors, out);
  return out;
}

/** Pins as the peer config holds them (sa/config.ts PeerPins): lower-case hex SHA-256 digests. */
export interface CertificatePins {
  readonly spkiSha256?: readonly string[];
  readonly certSha256?: readonly string[];
}

/** SHA-256 of the DER SubjectPublicKeyInfo and of the DER certificate, lower-case hex. */
export function certificateFingerprints(cert: CertInfo): { readonly spkiSha256: string; readonly certSha256: string } {
  const spki = cert.publicKey.export({ type: 'spki', format: 'der' });
  return { spkiSha256: createHash('sha256').update(spki).digest('hex'), certSha256: createHash('sha256').update(cert.der).digest('hex') };
}

const short = (hex: string): string => hex.slice(0, 16);

/**
 * The end-entity certificate matches one pin of either kind; throws ERR_IKE_CERT_PIN_MISMATCH
 * naming the pins expected and the fingerprints found (16 hex digits each, enough to tell them
 * apart in a log; the full values are in the config and `openssl x509 -pubkey | sha256sum`).
 */
export function checkPins(cert: CertInfo, pins: CertificatePins): void {
  const found = certificateFingerprints(cert);
  const spki = pins.spkiSha256 ?? []; const whole = pins.certSha256 ?? [];
  if (spki.includes(found.spkiSha256) || whole.includes(found.certSha256)) return;
  const expected = [...spki.map((p) => `SPKI ${short(p)}`), ...whole.map((p) => `certificate ${short(p)}`)].join(', ');
  throw new CertificateError('ERR_IKE_CERT_PIN_MISMATCH',
    `certificate ${describe(cert)} matches no pinned SHA-256: expected ${expected}; found SPKI ${short(found.spkiSha256)}, certificate ${short(found.certSha256)}`);
}
