// The agent side of node identity (DESIGN.md §4): keep a private key on the node (0600, never
// sent anywhere), ask the operator's signer for a certificate with a CertificateSigningRequest,
// wait for it, renew at 2/3 of its lifetime with the same key, and keep serving the current
// certificate while the apiserver is unreachable (retrying with backoff until it expires).
// Crypto comes in as a port (IdentityCrypto) because src/api may not import src/pki; the agent
// passes `identityCrypto` from src/pki/identity-crypto.ts.
import { join } from 'node:path';
import { access } from 'node:fs/promises';
import type { Clock, TimerHandle } from '../common/time.js';
import { KipsecError, errorMessage } from '../common/errors.js';
import { type KubeClient, RESOURCES, resourcePath, type WatchEvent } from './kube/client.js';
import { LABELS, SIGNER_NAME, TRUST_BUNDLE_CONFIGMAP, TRUST_BUNDLE_KEY } from './names.js';

export interface CertInfo { readonly pem: string; readonly notBeforeMs: number; readonly notAfterMs: number; readonly renewAtMs: number; readonly fingerprint: string; readonly publicKeyFingerprint: string }

/** What the client needs from the PKI; src/pki's `identityCrypto` implements it. K = key type. */
export interface IdentityCrypto<K> {
  generateKey(): Promise<K>;
  readKey(path: string): Promise<K>;
  writeKey(path: string, k: K): Promise<void>;
  createCsr(k: K, node: string, ips: readonly string[]): Promise<string>;
  certInfo(pem: string): Promise<CertInfo>;
  writePublic(path: string, text: string): Promise<void>;
  readText(path: string): Promise<string>;
}

export interface IdentityLogger { info(o: object, msg: string): void; warn(o: object, msg: string): void }

export interface IdentityClientOptions<K> {
  readonly kube: KubeClient;
  readonly crypto: IdentityCrypto<K>;
  readonly nodeName: string;
  readonly nodeIps?: readonly string[];
  /** Directory for node.key (0600), node.crt and ca.crt. */
  readonly dir: string;
  readonly clock: Clock;
  readonly log: IdentityLogger;
  /** Namespace of the trust bundle ConfigMap (the operator's). */
  readonly namespace: string;
  /** Extra labels on the CSR (e.g. for signer sharding). */
  readonly labels?: Readonly<Record<string, string>>;
  /** How long to wait for one CSR to be issued before trying again. */
  readonly issueTimeoutMs?: number;
  readonly expirationSeconds?: number;
  readonly onCertificate?: (c: CertInfo) => void;
}

/** The signer refused the request (Denied or Failed); `reason` is its condition reason. */
export class IdentityDeniedError extends KipsecError {
  readonly reason: string;
  constructor(reason: string, message: string) { super('ERR_IDENTITY_DENIED', `${reason}: ${message}`); this.reason = reason; }
}
export class IdentityTimeoutError extends KipsecError {}

interface CsrObj { metadata: { name: string; resourceVersion?: string }; status?: { certificate?: string; conditions?: { type: string; status: string; reason?: string; message?: string }[] } }

export class IdentityClient<K> {
  readonly #o: IdentityClientOptions<K>;
  #key: K | undefined;
  #cert: CertInfo | undefined;
  #bundle = '';
  #timer: TimerHandle | undefined;
  #failures = 0;
  #stopped = false;
  #abort = new AbortController();

  constructor(o: IdentityClientOptions<K>) { this.#o = o; }

  get keyPath(): string { return join(this.#o.dir, 'node.key'); }
  get certPath(): string { return join(this.#o.dir, 'node.crt'); }
  get bundlePath(): string { return join(this.#o.dir, 'ca.crt'); }
  /** The certificate in use (possibly from disk, possibly being renewed). */
  get certificate(): CertInfo | undefined { return this.#cert; }
  get key(): K | undefined { return this.#key; }
  get trustBundle(): string { return this.#bundle; }

  /** Load or create the key; load a still-valid certificate from disk, else obtain one. */
  async start(): Promise<CertInfo> {
    const { crypto } = this.#o;
    const exists = await access(this.keyPath).then(() => true, () => false);
    if (exists) this.#key = await crypto.readKey(this.keyPath);
    else { this.#key = await crypto.generateKey(); await crypto.writeKey(this.keyPath, this.#key); this.#o.log.info({ node: this.#o.nodeName }, 'generated node key'); }
    try {
      const c = await crypto.certInfo(await crypto.readText(this.certPath));
      if (c.notAfterMs > this.#o.clock.now()) this.#cert = c;
    } catch { /* no certificate yet */ }
    try { this.#bundle = await crypto.readText(this.bundlePath); } catch { /* none yet */ }
    if (!this.#cert || this.#cert.renewAtMs <= this.#o.clock.now()) {
      try { await this.renew(); } catch (e) {
        if (!this.#cert) throw e;
        this.#o.log.warn({ err: errorMessage(e) }, 'renewal failed; keeping the current certificate');
        this.#scheduleRetry();
      }
    } else this.#schedule(this.#cert.renewAtMs - this.#o.clock.now());
    return this.#cert!;
  }

  stop(): void { this.#stopped = true; this.#timer?.cancel(); this.#abort.abort(); }

  #schedule(ms: number): void {
    if (this.#stopped) return;
    this.#timer?.cancel();
    this.#timer = this.#o.clock.setTimer(Math.max(0, ms), () => {
      this.renew().catch((e: unknown) => { this.#o.log.warn({ err: errorMessage(e), validUntil: this.#cert ? new Date(this.#cert.notAfterMs).toISOString() : null }, 'certificate renewal failed; will retry'); this.#scheduleRetry(); });
    });
  }

  #scheduleRetry(): void {
    this.#failures++;
    const ms = Math.min(300_000, 1000 * 2 ** Math.min(this.#failures - 1, 10));
    this.#schedule(ms);
  }

  /** Request a certificate for the current key now; on success it is written and scheduled for renewal. */
  async renew(): Promise<CertInfo> {
    const { kube, crypto, nodeName } = this.#o;
    const csrPem = await crypto.createCsr(this.#key!, nodeName, this.#o.nodeIps ?? []);
    const created = await kube.create<CsrObj>(resourcePath(RESOURCES.csrs), {
      apiVersion: 'certificates.k8s.io/v1', kind: 'CertificateSigningRequest',
      metadata: { generateName: `kipsec-${nodeName}-`.slice(0, 200), labels: { [LABELS.node]: nodeName, ...(this.#o.labels ?? {}) } },
      spec: { request: Buffer.from(csrPem).toString('base64'), signerName: SIGNER_NAME, usages: ['digital signature', 'server auth', 'client auth'], ...(this.#o.expirationSeconds ? { expirationSeconds: this.#o.expirationSeconds } : {}) },
    });
    const pem = await this.#waitIssued(created);
    const c = await crypto.certInfo(pem);
    await crypto.writePublic(this.certPath, pem);
    await this.refreshBundle().catch((e: unknown) => this.#o.log.warn({ err: errorMessage(e) }, 'could not read the trust bundle; keeping the last one'));
    this.#cert = c;
    this.#failures = 0;
    this.#o.log.info({ node: nodeName, csr: created.metadata.name, notAfter: new Date(c.notAfterMs).toISOString(), fingerprint: c.fingerprint }, 'node certificate issued');
    this.#o.onCertificate?.(c);
    this.#schedule(c.renewAtMs - this.#o.clock.now());
    return c;
  }

  /** Fetch the trust bundle ConfigMap and write it next to the certificate. */
  async refreshBundle(): Promise<string> {
    const cm = await this.#o.kube.get<{ data?: Record<string, string> }>(resourcePath(RESOURCES.configMaps, { namespace: this.#o.namespace, name: TRUST_BUNDLE_CONFIGMAP }));
    const pem = cm.data?.[TRUST_BUNDLE_KEY] ?? '';
    if (pem && pem !== this.#bundle) { await this.#o.crypto.writePublic(this.bundlePath, pem); this.#bundle = pem; }
    return this.#bundle;
  }

  async #waitIssued(csr: CsrObj): Promise<string> {
    const path = resourcePath(RESOURCES.csrs, { name: csr.metadata.name });
    const verdict = (c: CsrObj): string | IdentityDeniedError | undefined => {
      const bad = c.status?.conditions?.find((x) => (x.type === 'Denied' || x.type === 'Failed') && x.status === 'True');
      if (bad) return new IdentityDeniedError(bad.reason ?? bad.type, bad.message ?? '');
      return c.status?.certificate ? Buffer.from(c.status.certificate, 'base64').toString('utf8') : undefined;
    };
    const timeoutMs = this.#o.issueTimeoutMs ?? 60_000;
    const ac = new AbortController();
    const onStop = (): void => ac.abort();
    this.#abort.signal.addEventListener('abort', onStop, { once: true });
    const timer = this.#o.clock.setTimer(timeoutMs, () => ac.abort());
    try {
      let rv = csr.metadata.resourceVersion ?? '';
      let current: CsrObj = csr;
      while (!ac.signal.aborted) {
        const v = verdict(current);
        if (v instanceof IdentityDeniedError) throw v;
        if (v !== undefined) return v;
        let found: CsrObj | undefined;
        try {
          await this.#o.kube.watch<CsrObj>(resourcePath(RESOURCES.csrs), { fieldSelector: `metadata.name=${csr.metadata.name}`, resourceVersion: rv, timeoutSeconds: 30 }, (e: WatchEvent<CsrObj>) => {
            if (e.type === 'ADDED' || e.type === 'MODIFIED') { rv = e.object.metadata.resourceVersion ?? rv; if (verdict(e.object) !== undefined) { found = e.object; throw new Error('done'); } }
          }, ac.signal);
        } catch { if (!found && !ac.signal.aborted) current = await this.#o.kube.get<CsrObj>(path); }
        if (found) current = found;
        else if (!ac.signal.aborted) { current = await this.#o.kube.get<CsrObj>(path); rv = current.metadata.resourceVersion ?? rv; }
      }
      throw new IdentityTimeoutError('ERR_IDENTITY_TIMEOUT', `CSR ${csr.metadata.name} not issued within ${timeoutMs} ms`);
    } finally {
      timer.cancel();
      this.#abort.signal.removeEventListener('abort', onStop);
    }
  }
}
