// The built-in CA (DESIGN.md §4): kept in one Secret in the operator namespace, created on first
// start with a create (not an update), so when two operators or a restarted one race, exactly one
// CA exists and everybody loads it. Rotation keeps the previous CA in the trust bundle until every
// certificate it signed has expired (rotation time + the longest node-certificate lifetime).
import type { Clock } from '../common/time.js';
import { KipsecError } from '../common/errors.js';
import type { KubeClient } from '../api/kube/client.js';
import { RESOURCES, resourcePath } from '../api/kube/client.js';
import { isAlreadyExists, isNotFound } from '../api/kube/errors.js';
import { ANNOTATIONS, CA_SECRET, OPERATOR_FIELD_MANAGER, TRUST_BUNDLE_CONFIGMAP, TRUST_BUNDLE_KEY } from '../api/names.js';
import {
  certFingerprint, createCa, exportPrivateKeyPem, generateKeyPair, importPrivateKeyPem, parseBundle, parseCertificate, toPem,
  DEFAULT_CA_LIFETIME_MS, type CertificateAuthority, x509,
} from '../pki/index.js';
import type { ConfigMap, Secret } from './kinds.js';
import type { Logger } from './logger.js';

const KEY = { cert: 'tls.crt', key: 'tls.key', previous: 'previous.crt' } as const;
const PREVIOUS_UNTIL = 'kipsec.io/previous-ca-trusted-until';

export interface CaState {
  readonly signer: CertificateAuthority;
  /** Older CAs still trusted (overlap), with the time they may be dropped. */
  readonly previous: readonly x509.X509Certificate[];
  readonly previousUntilMs: number | undefined;
  readonly fingerprint: string;
  readonly resourceVersion: string;
}

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');
const unb64 = (s: string | undefined): string => (s ? Buffer.from(s, 'base64').toString('utf8') : '');

export class CaStore {
  readonly #kube: KubeClient;
  readonly #ns: string;
  readonly #clock: Clock;
  readonly #log: Logger;
  #state: CaState | undefined;
  /** How many CAs this process created (restart safety is tested on this). */
  created = 0;

  constructor(kube: KubeClient, namespace: string, clock: Clock, log: Logger) {
    this.#kube = kube; this.#ns = namespace; this.#clock = clock; this.#log = log;
  }

  get state(): CaState | undefined { return this.#state; }
  #path(): string { return resourcePath(RESOURCES.secrets, { namespace: this.#ns, name: CA_SECRET }); }

  async #load(s: Secret): Promise<CaState> {
    const cert = parseCertificate(unb64(s.data?.[KEY.cert]));
    const keys = await importPrivateKeyPem(unb64(s.data?.[KEY.key]));
    const previous = parseBundle(unb64(s.data?.[KEY.previous]));
    const until = s.metadata.annotations?.[PREVIOUS_UNTIL];
    return { signer: { cert, keys }, previous, previousUntilMs: until ? Date.parse(until) : undefined, fingerprint: await certFingerprint(cert), resourceVersion: s.metadata.resourceVersion ?? '' };
  }

  async #secretFor(ca: CertificateAuthority, previous: readonly x509.X509Certificate[], previousUntilMs: number | undefined, base?: Secret): Promise<Secret> {
    const data: Record<string, string> = { [KEY.cert]: b64(ca.cert.toString('pem')), [KEY.key]: b64(await exportPrivateKeyPem(ca.keys)) };
    if (previous.length > 0) data[KEY.previous] = b64(toPem(previous));
    const annotations: Record<string, string> = { ...(base?.metadata.annotations ?? {}) };
    delete annotations[ANNOTATIONS.caRotateRequested];
    if (previousUntilMs !== undefined && previous.length > 0) annotations[PREVIOUS_UNTIL] = new Date(previousUntilMs).toISOString(); else delete annotations[PREVIOUS_UNTIL];
    return {
      apiVersion: 'v1', kind: 'Secret', type: 'kubernetes.io/tls',
      metadata: { ...(base?.metadata ?? {}), name: CA_SECRET, namespace: this.#ns, labels: { 'app.kubernetes.io/part-of': 'kipsec', 'app.kubernetes.io/component': 'ca' }, annotations },
      data,
    };
  }

  /** Load the CA, creating it only if no Secret exists. Safe to call from any number of operators. */
  async ensure(): Promise<CaState> {
    let s: Secret | undefined;
    try { s = await this.#kube.get<Secret>(this.#path()); } catch (e) { if (!isNotFound(e)) throw e; }
    if (!s) {
      const ca = await createCa(await generateKeyPair(), `kipsec node CA ${new Date(this.#clock.now()).toISOString().slice(0, 10)}`, this.#clock.now());
      try {
        s = await this.#kube.create<Secret>(resourcePath(RESOURCES.secrets, { namespace: this.#ns }), await this.#secretFor(ca, [], undefined));
        this.created++;
        this.#log.info({ fingerprint: await certFingerprint(ca.cert) }, 'created the cluster CA');
      } catch (e) {
        if (!isAlreadyExists(e)) throw e;
        s = await this.#kube.get<Secret>(this.#path()); // another operator won the race: use its CA
      }
    }
    this.#state = await this.#load(s);
    return this.#state;
  }

  /** Re-read the Secret (after an informer saw it change). */
  async refresh(s: Secret): Promise<CaState> { this.#state = await this.#load(s); return this.#state; }

  /**
   * Rotate when asked (annotation on the Secret) or when the CA has less than `minRemainingMs` left;
   * drop the previous CA once its overlap ended. Returns true when the Secret changed.
   */
  async maintain(s: Secret, certLifetimeMs: number, minRemainingMs = 30 * 24 * 3_600_000): Promise<boolean> {
    const st = await this.#load(s);
    const now = this.#clock.now();
    const requested = s.metadata.annotations?.[ANNOTATIONS.caRotateRequested] === 'true';
    let next: Secret | undefined;
    if (requested || st.signer.cert.notAfter.getTime() - now < minRemainingMs) {
      const ca = await createCa(await generateKeyPair(), `kipsec node CA ${new Date(now).toISOString()}`, now, Math.max(DEFAULT_CA_LIFETIME_MS, 2 * minRemainingMs));
      // Old certificates live at most certLifetimeMs more; keep their CA trusted until then (+ skew).
      const until = now + certLifetimeMs + 10 * 60_000;
      next = await this.#secretFor(ca, [st.signer.cert, ...st.previous.filter((c) => c.notAfter.getTime() > now)], until, s);
      this.#log.info({ old: st.fingerprint, new: await certFingerprint(ca.cert), trustedUntil: new Date(until).toISOString() }, 'rotating the cluster CA');
    } else if (st.previous.length > 0 && st.previousUntilMs !== undefined && now >= st.previousUntilMs) {
      next = await this.#secretFor(st.signer, [], undefined, s);
      this.#log.info({ fingerprint: st.fingerprint }, 'CA rotation overlap ended; previous CA dropped from the bundle');
    }
    if (!next) { this.#state = st; return false; }
    const saved = await this.#kube.update<Secret>(this.#path(), next); // resourceVersion in metadata: optimistic
    this.#state = await this.#load(saved);
    return true;
  }

  /** PEM of every CA to trust now: the signer plus previous CAs within their overlap. */
  bundlePem(): string {
    const st = this.#state;
    if (!st) throw new KipsecError('ERR_CA_NOT_LOADED', 'CA not loaded');
    return toPem([st.signer.cert, ...st.previous]);
  }

  /** Publish the trust bundle ConfigMap (server-side apply: idempotent, no write if unchanged). */
  async publishBundle(current?: ConfigMap): Promise<boolean> {
    const pem = this.bundlePem();
    if (current?.data?.[TRUST_BUNDLE_KEY] === pem) return false;
    await this.#kube.apply(resourcePath(RESOURCES.configMaps, { namespace: this.#ns, name: TRUST_BUNDLE_CONFIGMAP }), {
      apiVersion: 'v1', kind: 'ConfigMap',
      metadata: { name: TRUST_BUNDLE_CONFIGMAP, namespace: this.#ns, labels: { 'app.kubernetes.io/part-of': 'kipsec' } },
      data: { [TRUST_BUNDLE_KEY]: pem },
    }, OPERATOR_FIELD_MANAGER);
    return true;
  }
}
