// Following a CA rotation (operator/ca-rotation.ts) from the node's side. The agent publishes
// which CAs its engine trusts and which CA issued the certificate it presents (IPsecNode
// spec.identity.trustedCAs / issuerFingerprint: caView), and renews its certificate once the
// operator signs with a CA other than its certificate's issuer — but only when that CA is in the
// bundle it holds, so it never presents a certificate it could not itself verify. Renewals wait a
// random few seconds so that a whole cluster does not send its CSRs in the same second.
import { createHash, X509Certificate } from 'node:crypto';
import { errorMessage } from '../../common/errors.js';
import type { Clock, TimerHandle } from '../../common/time.js';
import type { Logger } from '../log.js';
import { pemBlocks } from '../peers.js';

export interface CaView {
  /** SHA-256 of each CA certificate (DER), in bundle order. */
  readonly trusted: readonly string[];
  /** SHA-256 of the bundle CA whose signature the certificate carries; undefined if none does. */
  readonly issuer: string | undefined;
}

const sha256 = (der: Uint8Array): string => createHash('sha256').update(der).digest('hex');

/** SHA-256 of each certificate of a PEM bundle, in order (as trustedCAs and the signing-ca annotation name CAs). */
export function bundleFingerprints(pem: string): string[] { return pemBlocks(pem).map(sha256); }

/** Which bundle CAs there are and which one signed `certificate` (all DER). Unparsable CAs are skipped. */
export function caView(certificate: Uint8Array, cas: readonly Uint8Array[]): CaView {
  const trusted = cas.map(sha256);
  let issuer: string | undefined;
  let cert: X509Certificate | undefined;
  try { cert = new X509Certificate(certificate); } catch { return { trusted, issuer: undefined }; }
  cas.forEach((der, i) => {
    if (issuer !== undefined) return;
    try {
      const ca = new X509Certificate(der);
      if (cert.checkIssued(ca) && cert.verify(ca.publicKey)) issuer = trusted[i];
    } catch { /* not a certificate: not an issuer */ }
  });
  return { trusted, issuer };
}

type FollowState =
  | { readonly tag: 'idle' }
  | { readonly tag: 'waiting'; readonly signing: string; readonly timer: TimerHandle }
  | { readonly tag: 'renewing'; readonly signing: string }
  | { readonly tag: 'backoff'; readonly signing: string; readonly untilMs: number };

export interface CaFollowerOptions {
  readonly renew: () => Promise<unknown>;
  /** Look again later (after a failed renewal): the caller calls check() from its recompute. */
  readonly recheck: () => void;
  readonly clock: Clock;
  readonly log: Logger;
  /** Renewals start within [0, jitterMs); default 5 s. */
  readonly jitterMs?: number;
  /** After a failed renewal; default 30 s. */
  readonly retryMs?: number;
  readonly random?: () => number;
}

export class CaFollower {
  readonly #o: CaFollowerOptions;
  #state: FollowState = { tag: 'idle' };

  constructor(o: CaFollowerOptions) { this.#o = o; }

  get state(): FollowState['tag'] { return this.#state.tag; }

  /** After each recompute: `signing` from the bundle ConfigMap, `view` of what we hold now. */
  check(signing: string | undefined, view: CaView | undefined): void {
    const s = this.#state;
    const wanted = signing !== undefined && view !== undefined && view.issuer !== signing && view.trusted.includes(signing);
    if (!wanted) {
      if (s.tag === 'waiting') s.timer.cancel();
      if (s.tag !== 'renewing') this.#state = { tag: 'idle' };
      return;
    }
    if ((s.tag === 'waiting' || s.tag === 'renewing') && s.signing === signing) return;
    if (s.tag === 'backoff' && s.signing === signing && this.#o.clock.now() < s.untilMs) return;
    if (s.tag === 'renewing') return; // a renewal for an older signer is running; look again after it
    if (s.tag === 'waiting') s.timer.cancel();
    const delay = Math.floor((this.#o.random ?? Math.random)() * (this.#o.jitterMs ?? 5_000));
    this.#o.log.info({ signing, issuer: view.issuer ?? null, inMs: delay }, 'the cluster CA signing certificates changed: renewing the node certificate');
    const timer = this.#o.clock.setTimer(delay, () => { void this.#renew(signing); });
    this.#state = { tag: 'waiting', signing, timer };
  }

  async #renew(signing: string): Promise<void> {
    this.#state = { tag: 'renewing', signing };
    try {
      await this.#o.renew();
      this.#state = { tag: 'idle' };
    } catch (e) {
      const retryMs = this.#o.retryMs ?? 30_000;
      this.#o.log.warn({ err: errorMessage(e), retryMs }, 'renewing the node certificate for the new CA failed; will retry');
      this.#state = { tag: 'backoff', signing, untilMs: this.#o.clock.now() + retryMs };
      this.#o.clock.setTimer(retryMs, () => this.#o.recheck());
      return;
    }
    this.#o.recheck();
  }

  stop(): void { if (this.#state.tag === 'waiting') this.#state.timer.cancel(); this.#state = { tag: 'idle' }; }
}
