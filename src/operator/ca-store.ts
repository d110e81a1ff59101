// The built-in CA (DESIGN.md §4): kept in one Secret in the operator namespace, created on first
// start with a create (not an update), so when two operators or a restarted one race, exactly one
// CA exists and everybody loads it. Rotation goes in phases (ca-rotation.ts): the next CA is
// trusted everywhere before it signs, and the old one is trusted until no node presents it.
// The Secret holds the phase: next.crt/next.key while Trusting, previous.crt while Reissuing.
import type { Clock } from '../common/time.js';
import { KipsecError } from '../common/errors.js';
import type { OperatorKube } from './fence.js';
import { RESOURCES, resourcePath } from '../api/kube/client.js';
import { isAlreadyExists, isNotFound } from '../api/kube/errors.js';
import { ANNOTATIONS, CA_SECRET, OPERATOR_FIELD_MANAGER, TRUST_BUNDLE_CONFIGMAP, TRUST_BUNDLE_KEY } from '../api/names.js';
import {
  certFingerprint, createCa, exportPrivateKeyPem, generateKeyPair, importPrivateKeyPem, parseBundle, parseCertificate, toPem,
  DEFAULT_CA_LIFETIME_MS, type CertificateAuthority, x509,
} from '../pki/index.js';
import type { ConfigMap, Secret } from './kinds.js';
import type { Logger } from './logger.js';
import { rotationProgress, type NodeCaView, type RotationProgress } from './ca-rotation.js';

const KEY = { cert: 'tls.crt', key: 'tls.key', nextCert: 'next.crt', nextKey: 'next.key', previous: 'previous.crt' } as const;
/** Written by operators before phased rotation; removed on the next write. */
const LEGACY_PREVIOUS_UNTIL = 'kipsec.io/previous-ca-trusted-until';

export type CaRotationState =
  | { readonly phase: 'Idle' }
  /** The next CA is in the bundle; the current signer still signs. */
  | { readonly phase: 'Trusting'; readonly next: CertificateAuthority; readonly nextFingerprint: string; readonly startedMs: number | undefined }
  /** The (new) signer signs; the previous CAs stay in the bundle. */
  | { readonly phase: 'Reissuing'; readonly previous: readonly x509.X509Certificate[]; readonly startedMs: number | undefined };

export interface CaState {
  readonly signer: CertificateAuthority;
  readonly fingerprint: string;
  readonly rotation: CaRotationState;
  readonly resourceVersion: string;
}

/** What maintain() did: nothing, or one step of a rotation. */
export type CaTransition = 'none' | 'started' | 'reissuing' | 'finished' | 'request-ignored';

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');
const unb64 = (s: string | undefined): string => (s ? Buffer.from(s, 'base64').toString('utf8') : '');

export class CaStore {
  readonly #kube: OperatorKube;
  readonly #ns: string;
  readonly #clock: Clock;
  readonly #log: Logger;
  #state: CaState | undefined;
  /** How many CAs this process created (restart safety is tested on this). */
  created = 0;

  constructor(kube: OperatorKube, namespace: string, clock: Clock, log: Logger) {
    this.#kube = kube; this.#ns = namespace; this.#clock = clock; this.#log = log;
  }

  get state(): CaState | undefined { return this.#state; }
  #path(): string { return resourcePath(RESOURCES.secrets, { namespace: this.#ns, name: CA_SECRET }); }

  async #load(s: Secret): Promise<CaState> {
    const cert = parseCertificate(unb64(s.data?.[KEY.cert]));
    const keys = await importPrivateKeyPem(unb64(s.data?.[KEY.key]));
    const started = s.metadata.annotations?.[ANNOTATIONS.caRotationStarted];
    const startedMs = started ? Date.parse(started) : undefined;
    let rotation: CaRotationState = { phase: 'Idle' };
    const nextPem = unb64(s.data?.[KEY.nextCert]);
    const previous = parseBundle(unb64(s.data?.[KEY.previous]));
    if (nextPem) {
      const next = { cert: parseCertificate(nextPem), keys: await importPrivateKeyPem(unb64(s.data?.[KEY.nextKey])) };
      rotation = { phase: 'Trusting', next, nextFingerprint: await certFingerprint(next.cert), startedMs };
    } else if (previous.length > 0) rotation = { phase: 'Reissuing', previous, startedMs };
    return { signer: { cert, keys }, fingerprint: await certFingerprint(cert), rotation, resourceVersion: s.metadata.resourceVersion ?? '' };
  }

  async #secretFor(ca: CertificateAuthority, rotation: CaRotationState, base?: Secret): Promise<Secret> {
    const data: Record<string, string> = { [KEY.cert]: b64(ca.cert.toString('pem')), [KEY.key]: b64(await exportPrivateKeyPem(ca.keys)) };
    if (rotation.phase === 'Trusting') {
      data[KEY.nextCert] = b64(rotation.next.cert.toString('pem'));
      data[KEY.nextKey] = b64(await exportPrivateKeyPem(rotation.next.keys));
    }
    if (rotation.phase === 'Reissuing') data[KEY.previous] = b64(toPem(rotation.previous));
    const annotations: Record<string, string> = { ...(base?.metadata.annotations ?? {}) };
    delete annotations[ANNOTATIONS.caRotateRequested];
    delete annotations[LEGACY_PREVIOUS_UNTIL];
    if (rotation.phase !== 'Idle' && rotation.startedMs !== undefined) annotations[ANNOTATIONS.caRotationStarted] = new Date(rotation.startedMs).toISOString();
    else delete annotations[ANNOTATIONS.caRotationStarted];
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
        s = await this.#kube.create<Secret>(resourcePath(RESOURCES.secrets, { namespace: this.#ns }), await this.#secretFor(ca, { phase: 'Idle' }));
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

  /** The running phase's progress over `nodes`; undefined when no rotation runs. */
  progress(nodes: readonly NodeCaView[]): RotationProgress | undefined {
    const st = this.#state;
    if (!st || st.rotation.phase === 'Idle') return undefined;
    return st.rotation.phase === 'Trusting' ? rotationProgress('Trusting', st.rotation.nextFingerprint, nodes) : rotationProgress('Reissuing', st.fingerprint, nodes);
  }

  /**
   * One step of the CA's life: start a rotation when asked (annotation on the Secret) or when the
   * CA has less than `minRemainingMs` left; move Trusting → Reissuing once every node trusts the
   * next CA, and Reissuing → Idle once every node presents a certificate from it.
   */
  async maintain(s: Secret, nodes: readonly NodeCaView[], minRemainingMs = 30 * 24 * 3_600_000): Promise<CaTransition> {
    const st = await this.#load(s);
    const now = this.#clock.now();
    const requested = s.metadata.annotations?.[ANNOTATIONS.caRotateRequested] === 'true';
    const r = st.rotation;
    let next: Secret | undefined;
    let transition: CaTransition = 'none';
    if (r.phase === 'Idle') {
      if (requested || st.signer.cert.notAfter.getTime() - now < minRemainingMs) {
        const ca = await createCa(await generateKeyPair(), `kipsec node CA ${new Date(now).toISOString()}`, now, Math.max(DEFAULT_CA_LIFETIME_MS, 2 * minRemainingMs));
        const nextFingerprint = await certFingerprint(ca.cert);
        next = await this.#secretFor(st.signer, { phase: 'Trusting', next: ca, nextFingerprint, startedMs: now }, s);
        transition = 'started';
        this.#log.info({ current: st.fingerprint, next: nextFingerprint, reason: requested ? 'requested' : 'CA near expiry' }, 'CA rotation started: the next CA is trusted before it signs');
      }
    } else if (r.phase === 'Trusting' && rotationProgress('Trusting', r.nextFingerprint, nodes).complete) {
      next = await this.#secretFor(r.next, { phase: 'Reissuing', previous: [st.signer.cert], startedMs: r.startedMs }, s);
      transition = 'reissuing';
      this.#log.info({ old: st.fingerprint, new: r.nextFingerprint, nodes: nodes.length }, 'every node trusts the new CA: it signs from now on; nodes renew');
    } else if (r.phase === 'Reissuing' && rotationProgress('Reissuing', st.fingerprint, nodes).complete) {
      next = await this.#secretFor(st.signer, { phase: 'Idle' }, s);
      transition = 'finished';
      this.#log.info({ fingerprint: st.fingerprint, nodes: nodes.length }, 'every node presents a certificate from the new CA: the old CA leaves the trust bundle');
    }
    if (!next && requested && r.phase !== 'Idle') {
      // A request during a rotation is the same request: consume it rather than start another later.
      next = await this.#secretFor(st.signer, r, s);
      transition = 'request-ignored';
    }
    // Our state moves only with what the apiserver holds: a write refused as stale (409) leaves it.
    if (!next) { this.#state = st; return 'none'; }
    const saved = await this.#kube.update<Secret>(this.#path(), next); // resourceVersion in metadata: optimistic
    this.#state = await this.#load(saved);
    return transition;
  }

  /** PEM of every CA to trust now: the signer, and the next or the previous CA during a rotation. */
  bundlePem(): string {
    const st = this.#state;
    if (!st) throw new KipsecError('ERR_CA_NOT_LOADED', 'CA not loaded');
    const r = st.rotation;
    return toPem([st.signer.cert, ...(r.phase === 'Trusting' ? [r.next.cert] : r.phase === 'Reissuing' ? r.previous : [])]);
  }

  /** Publish the trust bundle ConfigMap (server-side apply: idempotent, no write if unchanged). */
  async publishBundle(current?: ConfigMap): Promise<boolean> {
    const pem = this.bundlePem();
    const st = this.#state!;
    // Agents renew when the signing CA differs from their certificate's issuer (agent/mesh/ca-follow.ts).
    const annotations: Record<string, string> = { [ANNOTATIONS.signingCa]: st.fingerprint };
    if (st.rotation.phase !== 'Idle') annotations[ANNOTATIONS.caRotationPhase] = st.rotation.phase;
    const have = current?.metadata.annotations ?? {};
    if (current?.data?.[TRUST_BUNDLE_KEY] === pem && have[ANNOTATIONS.signingCa] === annotations[ANNOTATIONS.signingCa] && have[ANNOTATIONS.caRotationPhase] === annotations[ANNOTATIONS.caRotationPhase]) return false;
    await this.#kube.apply(resourcePath(RESOURCES.configMaps, { namespace: this.#ns, name: TRUST_BUNDLE_CONFIGMAP }), {
      apiVersion: 'v1', kind: 'ConfigMap',
      metadata: { name: TRUST_BUNDLE_CONFIGMAP, namespace: this.#ns, labels: { 'app.kubernetes.io/part-of': 'kipsec' }, annotations },
      data: { [TRUST_BUNDLE_KEY]: pem },
    }, OPERATOR_FIELD_MANAGER);
    return true;
  }
}
