// The agent's heartbeat: its node's Lease (src/api/node-lease.ts), renewed every third of its
// duration, and the peers' Leases read one by one when the reconnect check needs them.
//
// Renewal as the kubelet's node lease controller does it: the Lease from the last write is
// updated in place (one PUT a period); a 409 (someone else wrote it) or a 404 (deleted, or its
// IPsecNode owner was collected) drops that copy, and the next attempt reads it again or creates
// it. The Lease is owned by the IPsecNode (ownerReference, as kube-node-lease's by the Node), so the
// garbage collector removes it with the node. A SIGTERM leaves it alone: a restarting agent keeps
// its SAs in the kernel and its node is not down.
import type { Clock, TimerHandle } from '../../common/time.js';
import { errorMessage } from '../../common/errors.js';
import { RESOURCES, resourcePath, type KubeClient } from '../../api/kube/client.js';
import { isAlreadyExists, isConflict, isNotFound } from '../../api/kube/errors.js';
import { API_VERSION, KINDS } from '../../api/names.js';
import { NODE_LEASE_DURATION_MS, NODE_LEASE_LABEL, microTime, nodeLeaseName, type NodeLease, type NodeLeaseSpec } from '../../api/node-lease.js';
import type { Logger } from '../log.js';

export interface NodeLeaseOptions {
  readonly kube: KubeClient;
  readonly namespace: string;
  readonly node: string;
  readonly clock: Clock;
  readonly log: Logger;
  /** leaseDurationSeconds (whole seconds, at least one); renewed every third of it. */
  readonly durationMs?: number;
}

/** How soon a failed renewal is tried again (within the period). */
const RETRY_MS = 5_000;

export class NodeLeaseRenewer {
  readonly #o: NodeLeaseOptions;
  readonly #durationSec: number;
  #lease: NodeLease | undefined;
  #owner: { readonly uid: string } | undefined;
  #timer: TimerHandle | undefined;
  #running = false;
  #stopped = false;
  #held = false;
  /** A renewal is under way (it sets the next timer itself). */
  #renewing = false;
  #failuresInRow = 0;
  readonly stats = { renewals: 0, creates: 0, failures: 0 };

  constructor(o: NodeLeaseOptions) {
    this.#o = o;
    this.#durationSec = Math.max(1, Math.round((o.durationMs ?? NODE_LEASE_DURATION_MS) / 1000));
  }

  get path(): string { return resourcePath(RESOURCES.leases, { namespace: this.#o.namespace, name: nodeLeaseName(this.#o.node) }); }
  get periodMs(): number { return Math.max(1, Math.floor((this.#durationSec * 1000) / 3)); }

  /** The IPsecNode's uid, for the ownerReference of a Lease created from now on. */
  owner(uid: string | undefined): void { if (uid) this.#owner = { uid }; }

  /** Renew now and every period until stop(); calling it again changes nothing. */
  start(): void {
    if (this.#running || this.#stopped) return;
    this.#running = true;
    void this.#tick();
  }

  stop(): void { this.#stopped = true; this.#timer?.cancel(); this.#timer = undefined; }

  /**
   * Held: no renewals while our Node object is gone. The Lease is owned by the IPsecNode, which
   * the operator deletes with the Node, and the garbage collector then deletes the Lease; renewing
   * would create it again every period until this pod goes. Released: renewed at once.
   */
  hold(held: boolean): void {
    if (held === this.#held) return;
    this.#held = held;
    if (held || !this.#running || this.#stopped || this.#renewing) return;
    this.#timer?.cancel();
    this.#timer = undefined;
    void this.#tick();
  }

  async #tick(): Promise<void> {
    if (this.#stopped) return;
    let next = this.periodMs;
    if (this.#held) {
      this.#timer = this.#o.clock.setTimer(next, () => { this.#timer = undefined; void this.#tick(); });
      return;
    }
    this.#renewing = true;
    try {
      await this.renew();
      this.#failuresInRow = 0;
    } catch (e) {
      this.stats.failures++;
      this.#failuresInRow++;
      next = Math.min(next, RETRY_MS);
      if (this.#failuresInRow === 1 || this.#failuresInRow % 20 === 0) this.#o.log.warn({ err: errorMessage(e), failures: this.#failuresInRow }, 'node Lease renewal failed; will retry');
    }
    this.#renewing = false;
    if (!this.#stopped) this.#timer = this.#o.clock.setTimer(next, () => { this.#timer = undefined; void this.#tick(); });
  }

  #spec(now: number, prev: NodeLeaseSpec | undefined): NodeLeaseSpec {
    return { holderIdentity: this.#o.node, leaseDurationSeconds: this.#durationSec, acquireTime: prev?.acquireTime ?? microTime(now), renewTime: microTime(now), leaseTransitions: prev?.leaseTransitions ?? 0 };
  }

  /** One renewal: a PUT of the copy we hold, else a read and a PUT, else a create. Throws on failure. */
  async renew(): Promise<void> {
    const now = this.#o.clock.now();
    const have = this.#lease;
    if (have) {
      try {
        this.#lease = await this.#o.kube.update<NodeLease>(this.path, { ...have, spec: this.#spec(now, have.spec) });
        this.stats.renewals++;
        return;
      } catch (e) {
        this.#lease = undefined;
        if (!isConflict(e) && !isNotFound(e)) throw e;
      }
    }
    let cur: NodeLease | undefined;
    try { cur = await this.#o.kube.get<NodeLease>(this.path); } catch (e) { if (!isNotFound(e)) throw e; }
    if (cur) {
      const labels = { ...cur.metadata.labels, [NODE_LEASE_LABEL]: 'true' };
      this.#lease = await this.#o.kube.update<NodeLease>(this.path, { ...cur, metadata: { ...cur.metadata, labels }, spec: this.#spec(now, cur.spec) });
      this.stats.renewals++;
      return;
    }
    const ownerReferences = this.#owner ? [{ apiVersion: API_VERSION, kind: KINDS.IPsecNode.kind, name: this.#o.node, uid: this.#owner.uid }] : undefined;
    const body: NodeLease = {
      apiVersion: 'coordination.k8s.io/v1', kind: 'Lease',
      metadata: { name: nodeLeaseName(this.#o.node), namespace: this.#o.namespace, labels: { [NODE_LEASE_LABEL]: 'true' }, ...(ownerReferences ? { ownerReferences } : {}) },
      spec: this.#spec(now, undefined),
    };
    try {
      this.#lease = await this.#o.kube.create<NodeLease>(resourcePath(RESOURCES.leases, { namespace: this.#o.namespace }), body);
      this.stats.creates++;
    } catch (e) {
      if (isAlreadyExists(e)) return; // created meanwhile (our previous process's last write): updated next time
      throw e;
    }
  }
}

/**
 * Peers' Leases, read by name when the reconnect check needs one (reconnect.ts): no agent watches
 * Leases. Each read is kept for `minAgeMs` (an older renewTime can only make a peer look staler,
 * never fresher), and at most `maxReads` run per call; the rest wait for the next call.
 */
export class PeerLeases {
  readonly #kube: KubeClient;
  readonly #namespace: string;
  readonly #clock: Clock;
  readonly #minAgeMs: number;
  readonly #maxReads: number;
  readonly #read = new Map<string, { readonly atMs: number; readonly lease: NodeLease | undefined }>();
  readonly stats = { reads: 0, failures: 0 };

  constructor(o: { kube: KubeClient; namespace: string; clock: Clock; minAgeMs?: number; maxReads?: number }) {
    this.#kube = o.kube; this.#namespace = o.namespace; this.#clock = o.clock;
    this.#minAgeMs = o.minAgeMs ?? 10_000; this.#maxReads = o.maxReads ?? 20;
  }

  /** The Lease as last read (undefined: none, or not read). */
  get(node: string): NodeLease | undefined { return this.#read.get(node)?.lease; }

  /** Read the Leases of these nodes not read within minAgeMs (a bounded number per call). */
  async refresh(nodes: readonly string[]): Promise<void> {
    const now = this.#clock.now();
    const want = nodes.filter((n) => { const r = this.#read.get(n); return !r || now - r.atMs >= this.#minAgeMs; }).slice(0, this.#maxReads);
    await Promise.all(want.map(async (node) => {
      try {
        const lease = await this.#kube.get<NodeLease>(resourcePath(RESOURCES.leases, { namespace: this.#namespace, name: nodeLeaseName(node) }));
        this.#read.set(node, { atMs: now, lease });
      } catch (e) {
        if (isNotFound(e)) this.#read.set(node, { atMs: now, lease: undefined });
        else this.stats.failures++;
      }
      this.stats.reads++;
    }));
  }

  /** Forget nodes no longer asked about (bounded memory). */
  keepOnly(nodes: ReadonlySet<string>): void { for (const k of [...this.#read.keys()]) if (!nodes.has(k)) this.#read.delete(k); }
}
