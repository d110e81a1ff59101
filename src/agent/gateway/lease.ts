// One gateway node's candidacy for one tunnel's coordination.k8s.io/v1 Lease: the holder is the
// active gateway, every other selected node stands by. client-go's leaderelection rules, cut to
// what a gateway needs: a candidate takes the Lease only when the record it last saw has not
// changed for leaseDuration by its own clock (clock skew between nodes does not matter); a holder
// that cannot renew within renewDeadline (< leaseDuration) counts itself standby before anyone
// else may take over. Writes are PUTs carrying the resourceVersion read: of two racing candidates
// exactly one wins.
//
// Except when the apiserver cannot answer at all (unreachable, 5xx, 429) while we hold the Lease:
// then nobody can take it over through the apiserver either, and a control-plane outage must not
// take the site-to-site tunnels down (the mesh's SAs live on through one too). The holder keeps
// the tunnel (fail-static) until the apiserver answers again; then it renews, or steps down at once
// if another gateway took the Lease meanwhile. The price: a gateway cut off from the apiserver but
// not from the remote peer stays active beside the one that took over, until it can read the Lease.
//
// Timing (GATEWAY_LEASE_TIMING): a dead active gateway is replaced leaseDuration (4 s) plus up to one
// retry (1 s) after its last renewal, plus the IKE handshake; a node that is deselected, or an
// agent stopped with SIGTERM, releases the Lease and the standby takes it at its next retry.
import type { Clock } from '../../common/time.js';
import { errorMessage } from '../../common/errors.js';
import { RESOURCES, resourcePath, type KubeClient } from '../../api/kube/client.js';
import { isAlreadyExists, isConflict, isNotFound, KubeApiError } from '../../api/kube/errors.js';

export interface LeaseTiming { readonly leaseDurationMs: number; readonly renewDeadlineMs: number; readonly retryMs: number }
export const GATEWAY_LEASE_TIMING: LeaseTiming = { leaseDurationMs: 4_000, renewDeadlineMs: 3_000, retryMs: 1_000 };

export interface LeaseSpec { holderIdentity?: string; leaseDurationSeconds?: number; acquireTime?: string; renewTime?: string; leaseTransitions?: number }
export interface Lease { apiVersion?: string; kind?: string; metadata: { name: string; namespace: string; resourceVersion?: string }; spec?: LeaseSpec }

interface Observed { readonly holder: string; readonly renewTime: string; readonly atMs: number }

export type LeaseDecision = 'create' | 'renew' | 'acquire' | 'wait';

/** What a candidate does with the Lease it just read (pure). */
export function decideLease(lease: Lease | undefined, me: string, observed: Observed | undefined, nowMs: number, leaseDurationMs: number): LeaseDecision {
  if (!lease) return 'create';
  const holder = lease.spec?.holderIdentity ?? '';
  if (holder === me) return 'renew';
  if (holder === '') return 'acquire';
  const durationMs = (lease.spec?.leaseDurationSeconds ?? leaseDurationMs / 1000) * 1000;
  return observed && observed.holder === holder && observed.renewTime === (lease.spec?.renewTime ?? '') && nowMs - observed.atMs >= durationMs ? 'acquire' : 'wait';
}

/** The apiserver gave no answer about the Lease: not reached, or 5xx / 429 (it cannot read etcd, or sheds load). */
export function apiserverUnavailable(e: unknown): boolean {
  return !(e instanceof KubeApiError) || e.status >= 500 || e.status === 429;
}

/** Kubernetes MicroTime: RFC 3339 with six fractional digits. */
function microTime(ms: number): string { return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z'); }

export class TunnelLease {
  readonly #kube: KubeClient;
  readonly #path: string;
  readonly #ns: string;
  readonly #name: string;
  readonly #me: string;
  readonly #clock: Clock;
  readonly #timing: LeaseTiming;
  #observed: Observed | undefined;
  #lastRenewMs: number | undefined;
  /** We held the Lease when the apiserver stopped answering, and it has not answered since. */
  #outageSinceMs: number | undefined;
  /**
   * A read failed since the last one that worked: the holder could not renew meanwhile either, so
   * its record's age starts again at the next read (otherwise every standby would take over the
   * moment an apiserver outage ends, before the holder's first renewal).
   */
  #blind = false;
  /** Who holds it, as last read (for status and logs). */
  holder = '';
  lastError: string | undefined;

  constructor(o: { kube: KubeClient; namespace: string; name: string; identity: string; clock: Clock; timing?: LeaseTiming }) {
    this.#kube = o.kube; this.#ns = o.namespace; this.#name = o.name; this.#me = o.identity; this.#clock = o.clock;
    this.#timing = o.timing ?? GATEWAY_LEASE_TIMING;
    this.#path = resourcePath(RESOURCES.leases, { namespace: o.namespace, name: o.name });
  }

  get name(): string { return this.#name; }

  /** Active: we renewed within renewDeadline (by our clock), or held it when the apiserver stopped answering. */
  get held(): boolean { return this.#lastRenewMs !== undefined && (this.#outageSinceMs !== undefined || this.#renewedInTime()); }

  /** Since when we keep the tunnel without the apiserver answering (fail-static), if we do. */
  get outageSinceMs(): number | undefined { return this.#outageSinceMs; }

  #renewedInTime(): boolean { return this.#lastRenewMs !== undefined && this.#clock.now() - this.#lastRenewMs < this.#timing.renewDeadlineMs; }

  /** One read and (maybe) one write. Returns whether we hold the Lease afterwards; never throws. */
  async tick(): Promise<boolean> {
    try {
      const ok = await this.#try();
      this.lastError = undefined;
      this.#outageSinceMs = undefined;
      if (ok) { this.#lastRenewMs = this.#clock.now(); this.holder = this.#me; }
    } catch (e) {
      this.lastError = errorMessage(e);
      if (apiserverUnavailable(e)) this.#blind = true;
      if (!apiserverUnavailable(e)) this.#outageSinceMs = undefined;
      else if (this.#outageSinceMs === undefined && this.#renewedInTime()) this.#outageSinceMs = this.#clock.now();
    }
    return this.held;
  }

  async #try(): Promise<boolean> {
    const now = this.#clock.now();
    let lease: Lease | undefined;
    try { lease = await this.#kube.get<Lease>(this.#path); } catch (e) { if (!isNotFound(e)) throw e; }
    if (lease) {
      const holder = lease.spec?.holderIdentity ?? ''; const renewTime = lease.spec?.renewTime ?? '';
      this.holder = holder;
      if (!this.#observed || this.#observed.holder !== holder || this.#observed.renewTime !== renewTime || this.#blind) this.#observed = { holder, renewTime, atMs: now };
    }
    this.#blind = false;
    const d = decideLease(lease, this.#me, this.#observed, now, this.#timing.leaseDurationMs);
    if (d === 'wait') { this.#lastRenewMs = undefined; return false; }
    const spec: LeaseSpec = {
      holderIdentity: this.#me, leaseDurationSeconds: Math.ceil(this.#timing.leaseDurationMs / 1000), renewTime: microTime(now),
      acquireTime: d === 'renew' ? (lease?.spec?.acquireTime ?? microTime(now)) : microTime(now),
      leaseTransitions: (lease?.spec?.leaseTransitions ?? 0) + (d === 'acquire' ? 1 : 0),
    };
    try {
      if (d === 'create') await this.#kube.create(resourcePath(RESOURCES.leases, { namespace: this.#ns }), { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: this.#name, namespace: this.#ns }, spec });
      else {
        const saved = await this.#kube.update<Lease>(this.#path, { ...lease!, spec });
        this.#observed = { holder: this.#me, renewTime: saved.spec?.renewTime ?? '', atMs: now };
      }
    } catch (e) {
      if (isConflict(e) || isAlreadyExists(e)) return false; // another candidate wrote first
      throw e;
    }
    return true;
  }

  /** Step down: hand the Lease back (holder empty) so a standby takes it at its next retry. */
  async release(): Promise<void> {
    const was = this.#lastRenewMs !== undefined;
    this.#lastRenewMs = undefined;
    this.#outageSinceMs = undefined;
    if (!was) return;
    try {
      const lease = await this.#kube.get<Lease>(this.#path);
      if (lease.spec?.holderIdentity === this.#me) await this.#kube.update(this.#path, { ...lease, spec: { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1, renewTime: microTime(this.#clock.now()) } });
    } catch (e) { this.lastError = `could not release the Lease (a standby takes over when it expires): ${errorMessage(e)}`; }
  }
}
