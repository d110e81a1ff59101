// Which identities exist per node, derived from the CSR cache: certificates we issued (or relayed)
// and approved requests not yet signed. The approval policy asks it for "live identities"; the
// IPsecNode controller asks it whether a published fingerprint is one we issued.
import { createHash } from 'node:crypto';
import { x509 } from '../pki/index.js';
import type { LiveIdentity } from './csr-policy.js';
import { isApproved, isFailed } from './csr-policy.js';
import type { Csr } from './kinds.js';
import type { IssuedIdentity } from './status.js';

const sha256 = (b: ArrayBuffer): string => createHash('sha256').update(Buffer.from(b)).digest('hex');

interface Entry { node: string; live: LiveIdentity; issued?: IssuedIdentity }

export class IdentityIndex {
  readonly #byCsr = new Map<string, Entry>();
  readonly #byNode = new Map<string, Set<string>>();
  /** Approvals made by this process but not yet visible in the cache. */
  readonly #reserved = new Map<string, Entry>();
  readonly #lifetimeMs: () => number;

  constructor(lifetimeMs: () => number) { this.#lifetimeMs = lifetimeMs; }

  #index(name: string, e: Entry | undefined): void {
    const old = this.#byCsr.get(name);
    if (old) this.#byNode.get(old.node)?.delete(name);
    if (!e) { this.#byCsr.delete(name); return; }
    this.#byCsr.set(name, e);
    let s = this.#byNode.get(e.node);
    if (!s) { s = new Set(); this.#byNode.set(e.node, s); }
    s.add(name);
  }

  /** Update from a CSR as the informer sees it. */
  observe(c: Csr, nowMs: number): void {
    const name = c.metadata.name;
    if (c.status?.certificate) {
      try {
        const cert = new x509.X509Certificate(Buffer.from(c.status.certificate, 'base64').toString('utf8'));
        const dns = cert.getExtension(x509.SubjectAlternativeNameExtension)?.names.items.find((n) => n.type === 'dns')?.value;
        if (dns) {
          const notAfterMs = cert.notAfter.getTime();
          this.#index(name, { node: dns, live: { publicKeyFingerprint: sha256(cert.publicKey.rawData), notAfterMs, source: `CSR ${name}` }, issued: { certFingerprint: sha256(cert.rawData), notAfterMs } });
          this.#reserved.delete(name);
          return;
        }
      } catch { /* not ours or garbage: no identity */ }
      this.#index(name, undefined);
      return;
    }
    if (isApproved(c) && !isFailed(c)) {
      try {
        const req = new x509.Pkcs10CertificateRequest(Buffer.from(c.spec.request, 'base64').toString('utf8'));
        const dns = req.extensions.find((e): e is x509.SubjectAlternativeNameExtension => e instanceof x509.SubjectAlternativeNameExtension)?.names.items.find((n) => n.type === 'dns')?.value;
        if (dns) { this.#index(name, { node: dns, live: { publicKeyFingerprint: sha256(req.publicKey.rawData), notAfterMs: nowMs + this.#lifetimeMs(), source: `approved CSR ${name}` } }); return; }
      } catch { /* garbage request */ }
    }
    this.#index(name, undefined);
  }

  forget(name: string): void { this.#index(name, undefined); this.#reserved.delete(name); }

  /** Record an approval before the informer reflects it, so two CSRs decided back to back see each other. */
  reserve(csrName: string, node: string, publicKeyFingerprint: string, nowMs: number): void {
    this.#reserved.set(csrName, { node, live: { publicKeyFingerprint, notAfterMs: nowMs + this.#lifetimeMs(), source: `approved CSR ${csrName}` } });
  }

  live(node: string, exceptCsr?: string): LiveIdentity[] {
    const out: LiveIdentity[] = [];
    for (const n of this.#byNode.get(node) ?? []) if (n !== exceptCsr) out.push(this.#byCsr.get(n)!.live);
    for (const [n, e] of this.#reserved) if (e.node === node && n !== exceptCsr) out.push(e.live);
    return out;
  }

  issued(node: string): IssuedIdentity[] {
    const out: IssuedIdentity[] = [];
    for (const n of this.#byNode.get(node) ?? []) { const i = this.#byCsr.get(n)!.issued; if (i) out.push(i); }
    return out;
  }
}
