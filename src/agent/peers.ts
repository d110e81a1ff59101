// TunnelConfig → the engine's PeerConfig (src/ike/sa/config.ts). One tunnel is one peer with one
// Child SA named after the tunnel, so the kernel's reqid, the status table and the engine's
// events all use the same name.
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';
import { ConfigError } from '../common/errors.js';
import type { IkeIdentity, PeerConfig, PeerAuth } from '../ike/engine.js';
import { parseCertificate } from '../ike/crypto/x509.js';
import type { TunnelConfig } from './tunnel.js';

/** PEM blocks of one kind, in file order, as DER. */
export function pemBlocks(text: string, label = 'CERTIFICATE'): Uint8Array[] {
  const re = new RegExp(`-----BEGIN ${label}-----([\\s\\S]*?)-----END ${label}-----`, 'g');
  return [...text.matchAll(re)].map((m) => new Uint8Array(Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64')));
}

/**
 * strongSwan-style identity text: an IP literal, `user@domain` (RFC822), something with `=`
 * (a DN — only our own, taken from our certificate's subject), else an FQDN.
 */
export function identityOf(text: string, path: string, ownCertDer?: Uint8Array): IkeIdentity {
  if (isIPv4(text)) return { type: 'ipv4', value: text };
  if (isIPv6(text)) return { type: 'ipv6', value: text };
  if (text.includes('=')) {
    if (!ownCertDer) throw new ConfigError(path, `distinguished-name identities are supported only for the local side with a certificate; use the peer's FQDN, IP or email SAN`);
    const subject = parseCertificate(ownCertDer).subjectDer;
    return { type: 'dn', der: subject, text };
  }
  if (text.includes('@')) return { type: 'email', value: text };
  return { type: 'fqdn', value: text };
}

function authOf(t: TunnelConfig): PeerAuth {
  if (t.auth.kind === 'psk') return { method: 'psk', secret: t.auth.psk };
  const chain = pemBlocks(t.auth.certPem);
  const [cert, ...intermediates] = chain;
  if (!cert) throw new ConfigError('spec.auth.certificate.certFile', 'no certificate in the file');
  const cas = pemBlocks(t.auth.caPem);
  if (cas.length === 0) throw new ConfigError('spec.auth.certificate.caFile', 'no CA certificate in the file');
  const privateKey = createPrivateKey(Buffer.from(t.auth.keyPem.expose()));
  return { method: 'certificate', certificate: cert, ...(intermediates.length ? { chain: intermediates } : {}), privateKey, cas };
}

export function peerConfigOf(t: TunnelConfig): PeerConfig {
  const auth = authOf(t);
  const ownCert = auth.method === 'certificate' ? auth.certificate : undefined;
  // With a certificate and no explicit local id, identify as the certificate's subject, which
  // is what strongSwan does and what a peer's `remote.id` usually names.
  const localId = auth.method === 'certificate' && t.localId === t.localAddress && ownCert
    ? firstSanOrSubject(ownCert, t.localAddress)
    : identityOf(t.localId, 'spec.local.id', ownCert);
  const remoteId = t.remoteId !== undefined ? identityOf(t.remoteId, 'spec.remote.id')
    : auth.method === 'psk' && (isIPv4(t.remoteAddress) || isIPv6(t.remoteAddress)) ? identityOf(t.remoteAddress, 'spec.remote.address') : undefined;
  return {
    name: t.name,
    local: { address: t.localAddress, id: localId },
    remote: { address: t.remoteAddress, ...(remoteId ? { id: remoteId } : {}) },
    auth,
    ike: { proposals: t.ikeProposalText, rekeyTimeMs: t.ikeRekeyMs, ...(t.allowWeak ? { allowWeak: true } : {}) },
    children: [{
      name: t.name, localTs: t.localTs, remoteTs: t.remoteTs, espProposals: t.espProposalText, mode: 'tunnel',
      rekeyTimeMs: t.espRekeyMs, lifeTimeMs: t.espLifeMs,
      ...(t.espLifePackets !== undefined ? { lifePackets: t.espLifePackets } : {}), ...(t.espLifeBytes !== undefined ? { lifeBytes: t.espLifeBytes } : {}),
      ...(t.mode === 'route' && t.xfrmIfId !== undefined ? { ifId: t.xfrmIfId } : {}),
    }],
    dpd: { intervalMs: t.dpdIntervalMs, timeoutMs: t.dpdTimeoutMs, action: t.dpdAction },
    startAction: t.startAction,
  };
}

/** Our identity from our certificate: the address if it is a SAN, else the first DNS SAN, else the subject DN. */
function firstSanOrSubject(der: Uint8Array, address: string): IkeIdentity {
  const x = new X509Certificate(der);
  const sans = (x.subjectAltName ?? '').split(/,\s*/);
  if (sans.includes(`IP Address:${address}`)) return identityOf(address, 'spec.local.address');
  const dns = sans.find((s) => s.startsWith('DNS:'));
  if (dns) return { type: 'fqdn', value: dns.slice(4) };
  const email = sans.find((s) => s.startsWith('email:'));
  if (email) return { type: 'email', value: email.slice(6) };
  return { type: 'dn', der: parseCertificate(der).subjectDer, text: x.subject.replace(/\n/g, ', ') };
}
