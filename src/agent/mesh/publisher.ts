// The agent's writes about its own node: its IPsecNode and its Lease. The spec (endpoint, pod
// CIDRs, traffic, identity) is written with server-side apply under the agent's field manager when
// it changes — and only after the key, the certificate and the node's block policies are in place,
// because peers act on it at once. The status is written on the /status subresource only when it
// changed, coalesced: a change of state (a peer up or down, a new SPI, an error) goes out within
// `minIntervalMs`, a change of counters alone within `countersIntervalMs`, nothing when nothing
// changed. Every agent watches every IPsecNode, so each status write is sent to every node: the
// heartbeat that tells the operator a quiet node from one whose agent is gone is the node's Lease
// (node-lease.ts), renewed from the first status on, which only the operator watches.
import { errorMessage } from '../../common/errors.js';
import type { Clock, TimerHandle } from '../../common/time.js';
import { RESOURCES, resourcePath, type KubeClient } from '../../api/kube/client.js';
import { AGENT_FIELD_MANAGER, API_VERSION, KINDS } from '../../api/names.js';
import type { IPsecNodeSpec, IPsecNodeStatus } from '../../api/types.js';
import { stableJson } from '../../api/stable-json.js';
import type { Logger } from '../log.js';
import { significantPart } from './node-status.js';
import { NodeLeaseRenewer, PeerLeases } from './node-lease.js';

export interface PublisherOptions {
  readonly kube: KubeClient;
  readonly node: string;
  readonly clock: Clock;
  readonly log: Logger;
  readonly minIntervalMs?: number;
  readonly countersIntervalMs?: number;
  /** The kipsec namespace, where the node's Lease lives; absent: no Lease (tests of the status alone). */
  readonly namespace?: string;
  /** The node Lease's duration (NODE_LEASE_DURATION_MS by default); renewed every third of it. */
  readonly leaseDurationMs?: number;
}

export class NodePublisher {
  readonly #o: PublisherOptions;
  #spec: string | undefined;
  #status: IPsecNodeStatus | undefined;
  #written: { significant: string; full: string; atMs: number } | undefined;
  #timer: TimerHandle | undefined;
  #timerAtMs = 0;
  #writing = false;
  #stopped = false;
  /** After a failed write: not before this (backoff up to a minute while the apiserver is away). */
  #retryAtMs = 0;
  #failuresInRow = 0;
  /** Count of writes, for tests and metrics. */
  readonly stats = { specWrites: 0, statusWrites: 0, failures: 0 };

  /** The node's heartbeat; started with the first status offered (the agent runs). */
  readonly lease: NodeLeaseRenewer | undefined;
  /** Peers' Leases read on demand (the reconnect check). */
  readonly peerLeases: PeerLeases | undefined;

  constructor(o: PublisherOptions) {
    this.#o = o;
    if (o.namespace !== undefined) {
      this.lease = new NodeLeaseRenewer({ kube: o.kube, namespace: o.namespace, node: o.node, clock: o.clock, log: o.log, ...(o.leaseDurationMs !== undefined ? { durationMs: o.leaseDurationMs } : {}) });
      this.peerLeases = new PeerLeases({ kube: o.kube, namespace: o.namespace, clock: o.clock });
    }
  }

  get path(): string { return resourcePath(RESOURCES.ipsecNodes, { name: this.#o.node }); }

  /** Apply the spec if it differs from what we last wrote (a failure throws: the caller retries). */
  async publishSpec(spec: IPsecNodeSpec): Promise<boolean> {
    const text = stableJson(spec);
    if (text === this.#spec) return false;
    const saved = await this.#o.kube.apply<{ metadata?: { uid?: string } } | undefined>(this.path, { apiVersion: API_VERSION, kind: KINDS.IPsecNode.kind, metadata: { name: this.#o.node }, spec }, AGENT_FIELD_MANAGER);
    this.lease?.owner(saved?.metadata?.uid);
    this.#spec = text;
    this.stats.specWrites++;
    this.#o.log.info({ node: this.#o.node, address: spec.endpoint.address, podCIDRs: spec.podCIDRs, traffic: spec.traffic?.mode, fingerprint: spec.identity?.publicKeyFingerprint }, 'IPsecNode published');
    return true;
  }

  /** Forget what we wrote (after the object was deleted under us: write it again). */
  forget(): void { this.#spec = undefined; this.#written = undefined; }

  /** Offer a new status; it is written when it differs enough and the pacing allows. */
  offer(s: IPsecNodeStatus): void {
    this.#status = s;
    this.lease?.start();
    this.#schedule();
  }

  #schedule(): void {
    if (this.#stopped || this.#writing || !this.#status) return;
    const now = this.#o.clock.now();
    const sig = significantPart(this.#status);
    const w = this.#written;
    const minMs = this.#o.minIntervalMs ?? 2_000;
    const countersMs = this.#o.countersIntervalMs ?? 60_000;
    let dueMs: number;
    // A change of state goes out soon, counters alone at a slow cadence, nothing unchanged at all
    // (lastUpdateTime is the time of the content written, not a heartbeat: the Lease is one).
    if (!w || w.significant !== sig) dueMs = w ? Math.max(0, w.atMs + minMs - now) : 0;
    else if (w.full !== fullPart(this.#status)) dueMs = Math.max(0, w.atMs + countersMs - now);
    else return;
    dueMs = Math.max(dueMs, this.#retryAtMs - now);
    // A timer already set for this moment or earlier stands; a later one (the heartbeat) gives way.
    if (this.#timer && this.#timerAtMs <= now + dueMs) return;
    this.#timer?.cancel();
    this.#timerAtMs = now + dueMs;
    this.#timer = this.#o.clock.setTimer(dueMs, () => { this.#timer = undefined; void this.#write(); });
  }

  async #write(): Promise<void> {
    const s = this.#status;
    if (!s || this.#stopped || this.#written?.full === fullPart(s)) return;
    this.#writing = true;
    try {
      await this.#o.kube.apply(`${this.path}/status`, { apiVersion: API_VERSION, kind: KINDS.IPsecNode.kind, metadata: { name: this.#o.node }, status: s }, AGENT_FIELD_MANAGER);
      this.#written = { significant: significantPart(s), full: fullPart(s), atMs: this.#o.clock.now() };
      this.stats.statusWrites++;
      this.#failuresInRow = 0; this.#retryAtMs = 0;
    } catch (e) {
      this.stats.failures++;
      this.#failuresInRow++;
      this.#retryAtMs = this.#o.clock.now() + Math.min(60_000, 1_000 * 2 ** Math.min(this.#failuresInRow - 1, 6));
      if (this.#failuresInRow === 1 || this.#failuresInRow % 20 === 0) this.#o.log.warn({ err: errorMessage(e), failures: this.#failuresInRow }, 'IPsecNode status write failed; will retry');
    } finally {
      this.#writing = false;
    }
    this.#schedule();
  }

  /** Write the pending status now (shutdown), bounded by the caller. */
  async flush(): Promise<void> {
    this.#timer?.cancel(); this.#timer = undefined;
    if (this.#status && (!this.#written || this.#written.full !== fullPart(this.#status))) await this.#write();
  }

  stop(): void { this.#stopped = true; this.#timer?.cancel(); this.#timer = undefined; this.lease?.stop(); }
}

/** Everything but the time it was computed: equal means there is nothing to write. */
function fullPart(s: IPsecNodeStatus): string { return stableJson({ ...s, lastUpdateTime: undefined }); }
