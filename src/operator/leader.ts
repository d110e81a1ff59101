// Leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection does it:
// the holder renews every retryPeriod; a candidate takes the lease only when the record it last
// saw has not changed for leaseDuration *by its own clock* (so clock skew between operators does
// not matter); a leader that cannot renew within renewDeadline (< leaseDuration) steps down before
// anyone else may take over, which is what rules out two signers at once. Writes are PUTs with the
// resourceVersion read, so of two racing candidates exactly one wins.
//
// Stepping down must not depend on the apiserver answering: a renewal that hangs (a partition that
// drops packets) is abandoned at renewDeadline, and `isLeader` is false from the moment the last
// renewal is renewDeadline old, so work that runs first after a paused process resumes (timers
// and I/O callbacks queued during the pause) already sees that it may not write.
import type { Clock } from '../common/time.js';
import type { KubeClient } from '../api/kube/client.js';
import { RESOURCES, resourcePath } from '../api/kube/client.js';
import { isAlreadyExists, isConflict, isNotFound } from '../api/kube/errors.js';
import type { Logger } from './logger.js';

export interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}
export interface Lease { apiVersion?: string; kind?: string; metadata: { name: string; namespace: string; resourceVersion?: string }; spec?: LeaseSpec }

export interface LeaderConfig {
  readonly namespace: string;
  readonly name: string;
  readonly identity: string;
  readonly leaseDurationMs: number;
  readonly renewDeadlineMs: number;
  readonly retryPeriodMs: number;
}
export const DEFAULT_LEADER_TIMING = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 } as const;

/** Kubernetes MicroTime: RFC 3339 with exactly six fractional digits. */
export function microTime(ms: number): string { return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z'); }

export interface Observed { holder: string; renewTime: string; observedAtMs: number }

export type Decision =
  | { readonly action: 'create' }
  | { readonly action: 'renew' }
  | { readonly action: 'acquire' }
  | { readonly action: 'wait'; readonly holder: string };

/**
 * What a candidate should do given the lease it just read and what it observed before. Pure.
 * `observed` is updated by the caller when holder or renewTime changed.
 */
export function decide(lease: Lease | undefined, me: string, observed: Observed | undefined, nowMs: number, leaseDurationMs: number): Decision {
  if (!lease) return { action: 'create' };
  const holder = lease.spec?.holderIdentity ?? '';
  if (holder === me) return { action: 'renew' };
  if (holder === '') return { action: 'acquire' };
  const duration = (lease.spec?.leaseDurationSeconds ?? leaseDurationMs / 1000) * 1000;
  if (observed && observed.holder === holder && observed.renewTime === (lease.spec?.renewTime ?? '') && nowMs - observed.observedAtMs >= duration) return { action: 'acquire' };
  return { action: 'wait', holder };
}

export interface LeaderCallbacks {
  onStartedLeading(): void;
  onStoppedLeading(): void;
  onNewLeader?(identity: string): void;
}

export class LeaderElector {
  readonly #kube: KubeClient;
  readonly #cfg: LeaderConfig;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #cb: LeaderCallbacks;
  #observed: Observed | undefined;
  #leading = false;
  #lastRenewMs = 0;
  #stopped = false;
  #timer: { cancel(): void } | undefined;
  #wake: (() => void) | undefined;

  constructor(kube: KubeClient, cfg: LeaderConfig, clock: Clock, log: Logger, cb: LeaderCallbacks) {
    this.#kube = kube; this.#cfg = cfg; this.#clock = clock; this.#log = log; this.#cb = cb;
  }

  /** Leading, and the last renewal is younger than renewDeadline (by our clock). */
  get isLeader(): boolean { return this.#leading && this.#clock.now() - this.#lastRenewMs < this.#cfg.renewDeadlineMs; }

  #path(): string { return resourcePath(RESOURCES.leases, { namespace: this.#cfg.namespace, name: this.#cfg.name }); }

  async #tryOnce(): Promise<boolean> {
    const now = this.#clock.now();
    let lease: Lease | undefined;
    try { lease = await this.#kube.get<Lease>(this.#path()); } catch (e) { if (!isNotFound(e)) throw e; }
    if (lease) {
      const holder = lease.spec?.holderIdentity ?? ''; const renewTime = lease.spec?.renewTime ?? '';
      if (!this.#observed || this.#observed.holder !== holder || this.#observed.renewTime !== renewTime) {
        if (this.#observed?.holder !== holder && holder !== '' && holder !== this.#cfg.identity) this.#cb.onNewLeader?.(holder);
        this.#observed = { holder, renewTime, observedAtMs: now };
      }
    }
    const d = decide(lease, this.#cfg.identity, this.#observed, now, this.#cfg.leaseDurationMs);
    if (d.action === 'wait') return false;
    const spec: LeaseSpec = {
      holderIdentity: this.#cfg.identity,
      leaseDurationSeconds: Math.ceil(this.#cfg.leaseDurationMs / 1000),
      renewTime: microTime(now),
      acquireTime: d.action === 'renew' ? (lease?.spec?.acquireTime ?? microTime(now)) : microTime(now),
      leaseTransitions: (lease?.spec?.leaseTransitions ?? 0) + (d.action === 'acquire' ? 1 : 0),
    };
    try {
      if (d.action === 'create') {
        await this.#kube.create(resourcePath(RESOURCES.leases, { namespace: this.#cfg.namespace }), { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: this.#cfg.name, namespace: this.#cfg.namespace }, spec });
      } else {
        const updated = await this.#kube.update<Lease>(this.#path(), { ...lease!, spec });
        this.#observed = { holder: this.#cfg.identity, renewTime: updated.spec?.renewTime ?? '', observedAtMs: now };
      }
    } catch (e) {
      if (isConflict(e) || isAlreadyExists(e)) return false; // someone else wrote first
      throw e;
    }
    return true;
  }

  /**
   * One read-and-write, given up (false) when leading and renewDeadline since the last renewal
   * passes first; the request itself carries on and its outcome is ignored (a late PUT of ours
   * carries the old resourceVersion, so it cannot overwrite a new holder's record).
   */
  #attempt(): Promise<boolean> {
    const once = this.#tryOnce();
    if (!this.#leading) return once;
    let timer: { cancel(): void } | undefined;
    const left = Math.max(0, this.#lastRenewMs + this.#cfg.renewDeadlineMs - this.#clock.now());
    const deadline = new Promise<boolean>((r) => { timer = this.#clock.setTimer(left, () => r(false)); });
    once.catch(() => undefined);
    return Promise.race([once, deadline]).finally(() => timer?.cancel());
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((r) => { this.#wake = r; this.#timer = this.#clock.setTimer(ms, r); });
  }

  /** Campaign and lead until stop(); resolves after stepping down. */
  async run(): Promise<void> {
    while (!this.#stopped) {
      let ok = false;
      try { ok = await this.#attempt(); } catch (e) { this.#log.warn({ err: (e as Error).message }, 'leader election: lease read/write failed'); }
      const now = this.#clock.now();
      if (ok) {
        this.#lastRenewMs = now;
        if (!this.#leading) { this.#leading = true; this.#log.info({ identity: this.#cfg.identity }, 'became leader'); this.#cb.onStartedLeading(); }
      } else if (this.#leading && now - this.#lastRenewMs >= this.#cfg.renewDeadlineMs) {
        this.#leading = false;
        this.#log.error({ identity: this.#cfg.identity }, 'lost leadership: could not renew the lease within renewDeadline');
        this.#cb.onStoppedLeading();
      }
      if (this.#stopped) break;
      await this.#sleep(this.#cfg.retryPeriodMs);
    }
  }

  /** Stop campaigning without touching the lease (a crash, for tests): others wait for expiry. */
  abandon(): void { this.#stopped = true; this.#leading = false; this.#timer?.cancel(); this.#wake?.(); }

  /** Step down; when leading, release the lease so a standby takes over at once. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#timer?.cancel(); this.#wake?.();
    if (!this.#leading) return;
    this.#leading = false;
    this.#cb.onStoppedLeading();
    try {
      const lease = await this.#kube.get<Lease>(this.#path());
      if (lease.spec?.holderIdentity === this.#cfg.identity) {
        await this.#kube.update(this.#path(), { ...lease, spec: { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1, renewTime: microTime(this.#clock.now()) } });
      }
    } catch (e) { this.#log.warn({ err: (e as Error).message }, 'could not release the lease; a standby takes over after it expires'); }
  }
}
