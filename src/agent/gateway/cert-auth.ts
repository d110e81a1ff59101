// Certificate authentication of an IPsecTunnel on a gateway node. Our side is the node's identity
// from the operator (mesh/identity.ts: the key made on this node, the certificate the signer
// issued for it, renewed with the same key); the remote's certificate must chain to the CA bundle
// in spec.auth.certificate.caSecretRef. Both reach the standalone compiler (config.ts) as the
// in-memory files CERT_FILES, so a tunnel is checked exactly as the standalone agent checks its
// certFile/keyFile/caFile.
//
// Our IKE identity is the certificate's DNS SAN, the node name: the one name the operator's signer
// vouches for (it approves a CSR only when its single DNS SAN names a real Node), the identity the
// mesh uses too, and one that does not change with the node's address (a NAT in front of the
// gateway, a standby gateway with another address). spec.local.id may name another identity the
// certificate carries (an IP or email SAN, or its subject DN); one it does not carry is refused,
// since the remote would refuse our AUTH for it anyway (RFC 7296 §3.5, RFC 4945 §3.1).
import { X509Certificate, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';

export interface GatewayIdentity {
  /** The node certificate (DER), then its intermediates. */
  readonly certificate: Uint8Array;
  readonly chain: readonly Uint8Array[];
  readonly privateKey: KeyObject;
}

export const CERT_FILES = { certFile: '/kipsec-gateway/node.crt', keyFile: '/kipsec-gateway/node.key', caFile: '/kipsec-gateway/ca.crt' } as const;

export interface SecretRefText { readonly name: string; readonly namespace?: string | undefined; readonly key?: string | undefined }

export const CA_SECRET_KEY = 'ca.crt';

/** "ns/name" key "ca.crt": how messages name the CA Secret. */
export function caSecretText(ref: SecretRefText): string { return `${ref.namespace ? `${ref.namespace}/` : ''}${ref.name} (key "${ref.key ?? CA_SECRET_KEY}")`; }

function pem(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der).toString('base64').replace(/.{1,64}/g, '$&\n');
  return `-----BEGIN ${label}-----\n${b64}-----END ${label}-----\n`;
}

/** The CA bundle must hold at least one PEM certificate, each of which parses; a string says what is wrong. */
export function checkCaBundle(bundle: Uint8Array): string | undefined {
  const text = Buffer.from(bundle).toString('utf8');
  const blocks = [...text.matchAll(/-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g)];
  if (blocks.length === 0) return 'holds no PEM certificate (-----BEGIN CERTIFICATE-----)';
  for (const [i, m] of blocks.entries()) {
    try { new X509Certificate(Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64')); } catch { return `certificate ${i + 1} of ${blocks.length} does not parse`; }
  }
  return undefined;
}

export type CertificateFiles =
  | { readonly ok: true; readonly text: ReadonlyMap<string, string>; readonly says: (message: string) => string }
  | { readonly ok: false; readonly message: string };

/** The in-memory files the standalone compiler reads; `says` puts the Secret's name where a message names a file. */
export function certificateFiles(id: GatewayIdentity, caBundle: Uint8Array, ref: SecretRefText): CertificateFiles {
  const secret = `the CA Secret ${caSecretText(ref)}`;
  const bad = checkCaBundle(caBundle);
  if (bad) return { ok: false, message: `${secret} ${bad}` };
  const text = new Map<string, string>([
    [CERT_FILES.certFile, [id.certificate, ...id.chain].map((d) => pem('CERTIFICATE', d)).join('')],
    [CERT_FILES.keyFile, id.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString()],
    [CERT_FILES.caFile, Buffer.from(caBundle).toString('utf8')],
  ]);
  const says = (m: string): string => m
    .replace(/spec\.auth\.certificate\.(certFile|keyFile)/, 'the node certificate').replace('spec.auth.certificate.caFile', secret)
    .replaceAll(CERT_FILES.caFile, secret).replaceAll(CERT_FILES.certFile, 'the node certificate').replaceAll(CERT_FILES.keyFile, 'the node key');
  return { ok: true, text, says };
}

/** Identities the certificate carries, as strongSwan writes them (DNS, IP, email SANs, then the subject DN). */
export function certificateIdentities(der: Uint8Array): { readonly dns: string[]; readonly ip: string[]; readonly email: string[]; readonly subject: string } {
  const x = new X509Certificate(der);
  const sans = (x.subjectAltName ?? '').split(/,\s*/).filter((s) => s !== '');
  const of = (prefix: string): string[] => sans.filter((s) => s.startsWith(prefix)).map((s) => s.slice(prefix.length));
  return { dns: of('DNS:'), ip: of('IP Address:'), email: of('email:'), subject: x.subject.split('\n').join(', ') };
}

const dnParts = (dn: string): string[] => dn.split(/\s*[,/\n]\s*/).map((p) => p.trim().replace(/\s*=\s*/, '=').toLowerCase()).filter((p) => p !== '').sort();

/** Our IKE ID with the node certificate: spec.local.id if the certificate carries it, else its DNS SAN. */
export function certificateLocalId(der: Uint8Array, wanted: string | undefined): { readonly ok: true; readonly id: string } | { readonly ok: false; readonly message: string } {
  let ids;
  try { ids = certificateIdentities(der); } catch { return { ok: false, message: 'the node certificate does not parse' }; }
  const carried = [...ids.dns.map((d) => `DNS:${d}`), ...ids.ip.map((i) => `IP:${i}`), ...ids.email.map((e) => `email:${e}`), `subject "${ids.subject}"`].join(', ');
  if (wanted === undefined) {
    const dns = ids.dns[0];
    return dns ? { ok: true, id: dns } : { ok: false, message: `the node certificate has no DNS name to use as IKE identity (it carries ${carried}); set spec.local.id to one of those` };
  }
  const w = wanted.trim();
  const carries = isIP(w) !== 0 ? ids.ip.includes(w)
    : w.includes('=') ? dnParts(w).join(',') === dnParts(ids.subject).join(',')
      : w.includes('@') ? ids.email.some((e) => e.toLowerCase() === w.toLowerCase())
        : ids.dns.some((d) => d.toLowerCase() === w.toLowerCase());
  return carries ? { ok: true, id: w }
    : { ok: false, message: `spec.local.id "${w}" is not an identity of this node's certificate (it carries ${carried}); leave local.id unset to use the node name, or set it to one of those` };
}
