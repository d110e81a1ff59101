// Which identities exist per node, derived from the CSR cache: certificates we issued (or relayed)
// and approved requests not yet signed. The approval policy asks it for "live identities"; the
// IPsecNode controller asks it whether a published fingerprint is one we issued.
import type { ParsedCsr } from '../pki/index.js';
import type { LiveIdentity } from './csr-policy.js';
import { isApproved, isFailed } from './csr-policy.js';
import type { Csr } from './kinds.js';
import type { IssuedIdentity } from './status.js';
import { certFacts } from './cert-facts.js';

interface Entry { node: string; live: LiveIdentity; issued?: IssuedIdentity }

export class IdentityIndex {
  readonly #byCsr = new Map<string, Entry>();
  readonly #byNode = new Map<string, Set<string>>();
  /** Approvals made by this process but not yet visible in the cache, by CSR and by node: a
   * signing burst holds thousands, and live() runs once per decision. */
  readonly #reserved = new Map<string, Entry>();
  readonly #reservedByNode = new Map<string, Set<string>>();
  readonly #lifetimeMs: () => number;
  readonly #parse: (c: Csr) => Promise<ParsedCsr | Error>;

  constructor(lifetimeMs: () => number, parse: (c: Csr) => Promise<ParsedCsr | Error>) { this.#lifetimeMs = lifetimeMs; this.#parse = parse; }

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
      this.#indexCertificate(name, Buffer.from(c.status.certificate, 'base64').toString('utf8'));
      return;
    }
    if (isApproved(c) && !isFailed(c)) {
      if (this.#byCsr.has(name)) return; // the request is immutable: indexed once
      // Parsed (and cached) by the signer anyway; index when ready unless something newer landed.
      void this.#parse(c).then((p) => {
        if (p instanceof Error || p.dnsNames.length !== 1 || this.#byCsr.has(name)) return;
        this.#index(name, { node: p.dnsNames[0]!, live: { publicKeyFingerprint: p.publicKeyFingerprint, notAfterMs: nowMs + this.#lifetimeMs(), source: `approved CSR ${name}`, csrName: name } });
      });
      return;
    }
    this.#index(name, undefined);
  }

  /**
   * A certificate this process just wrote to CSR `csrName`, before the informer shows it: an agent
   * may publish its fingerprint, and the IPsecNode event reach us, before the CSR event does — an
   * IdentityVerified=False write and another one to set it True, for nothing.
   */
  issuedNow(csrName: string, pem: string): void { this.#indexCertificate(csrName, pem); }

  #indexCertificate(name: string, pem: string): void {
    // A DER walk (cert-facts.ts): this runs for every signed CSR the informer sees.
    try {
      const cert = certFacts(pem);
      const dns = cert.dnsName;
      if (dns) {
        const { notAfterMs } = cert;
        this.#index(name, { node: dns, live: { publicKeyFingerprint: cert.publicKeyFingerprint, notAfterMs, source: `CSR ${name}`, csrName: name }, issued: { certFingerprint: cert.certFingerprint, notAfterMs } });
        this.#unreserve(name);
        return;
      }
    } catch { /* not ours or garbage: no identity */ }
    this.#index(name, undefined);
  }

  forget(name: string): void { this.#index(name, undefined); this.#unreserve(name); }

  /** Record an approval before the informer reflects it, so two CSRs decided back to back see each other. */
  reserve(csrName: string, node: string, publicKeyFingerprint: string, nowMs: number): void {
    this.#unreserve(csrName);
    this.#reserved.set(csrName, { node, live: { publicKeyFingerprint, notAfterMs: nowMs + this.#lifetimeMs(), source: `approved CSR ${csrName}`, csrName } });
    let s = this.#reservedByNode.get(node);
    if (!s) { s = new Set(); this.#reservedByNode.set(node, s); }
    s.add(csrName);
  }

  #unreserve(csrName: string): void {
    const e = this.#reserved.get(csrName);
    if (!e) return;
    this.#reserved.delete(csrName);
    const s = this.#reservedByNode.get(e.node);
    s?.delete(csrName);
    if (s?.size === 0) this.#reservedByNode.delete(e.node);
  }

  live(node: string, exceptCsr?: string): LiveIdentity[] {
    const out: LiveIdentity[] = [];
    for (const n of this.#byNode.get(node) ?? []) if (n !== exceptCsr) out.push(this.#byCsr.get(n)!.live);
    for (const n of this.#reservedByNode.get(node) ?? []) if (n !== exceptCsr) out.push(this.#reserved.get(n)!.live);
    return out;
  }

  /** An approval for `node` without its certificate yet (ours in flight, or approved in the cache). */
  pending(node: string): boolean {
    if ((this.#reservedByNode.get(node)?.size ?? 0) > 0) return true;
    for (const n of this.#byNode.get(node) ?? []) if (!this.#byCsr.get(n)!.issued) return true;
    return false;
  }

  issued(node: string): IssuedIdentity[] {
    const out: IssuedIdentity[] = [];
    for (const n of this.#byNode.get(node) ?? []) { const i = this.#byCsr.get(n)!.issued; if (i) out.push(i); }
    return out;
  }
}
