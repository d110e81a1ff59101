// CSRs, the self-signed CA, node certificates and their verification (DESIGN.md §4): ECDSA P-256,
// SHA-256 signatures, SAN = node name as DNS (+ node IP), short lifetimes (default 24 h).
import { randomBytes } from 'node:crypto';
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
  readonly csr: x509.Pkcs10CertificateRequest;
}

/** Parse and check the CSR's self-signature (proof the requester holds the key). */
export async function parseCsr(pem: string): Promise<ParsedCsr> {
  let csr: x509.Pkcs10CertificateRequest;
  try { csr = new x509.Pkcs10CertificateRequest(pem); } catch (e) { throw new PkiError(PKI_CODES.badCsr, `not a PKCS#10 request: ${(e as Error).message}`); }
  if (!(await csr.verify())) throw new PkiError(PKI_CODES.badCsr, 'CSR signature does not verify');
  const alg = csr.publicKey.algorithm as { name: string; namedCurve?: string };
  if (alg.name !== 'ECDSA' || alg.namedCurve !== 'P-256') throw new PkiError(PKI_CODES.badCsr, `key must be ECDSA P-256, got ${alg.name} ${alg.namedCurve ?? ''}`);
  const san = csr.extensions.find((e): e is x509.SubjectAlternativeNameExtension => e instanceof x509.SubjectAlternativeNameExtension);
  const items = san?.names.items ?? [];
  const cn = csr.subjectName.getField('CN')[0];
  return {
    commonName: cn,
    dnsNames: items.filter((n) => n.type === 'dns').map((n) => n.value),
    ipAddresses: items.filter((n) => n.type === 'ip').map((n) => n.value),
    otherSans: items.filter((n) => n.type !== 'dns' && n.type !== 'ip').length,
    publicKeyFingerprint: await spkiFingerprint(csr.publicKey.rawData),
    csr,
  };
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

/** Issue a node certificate for an already-approved CSR; SANs are the ones the caller approved. */
export async function signNodeCertificate(ca: CertificateAuthority, csr: ParsedCsr, o: SignOptions): Promise<x509.X509Certificate> {
  const lifetime = o.lifetimeMs ?? DEFAULT_NODE_CERT_LIFETIME_MS;
  const notAfter = Math.min(o.nowMs + lifetime, ca.cert.notAfter.getTime());
  const names: x509.JsonGeneralName[] = [...o.dnsNames.map((v) => ({ type: 'dns' as const, value: v })), ...(o.ipAddresses ?? []).map((v) => ({ type: 'ip' as const, value: v }))];
  return x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${o.dnsNames[0] ?? 'node'}`,
    issuer: ca.cert.subject,
    notBefore: new Date(o.nowMs - CLOCK_SKEW_MS),
    notAfter: new Date(notAfter),
    publicKey: csr.csr.publicKey,
    signingKey: ca.keys.privateKey,
    signingAlgorithm: SIGN_ALG,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
      new x509.SubjectAlternativeNameExtension(names),
      await x509.AuthorityKeyIdentifierExtension.create(ca.cert),
    ],
  });
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
