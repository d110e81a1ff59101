// The agent's one writable object: its own IPsecNode. The spec (endpoint, pod CIDRs, traffic,
// identity) is written with server-side apply under the agent's field manager when it changes —
// and only after the key, the certificate and the node's block policies are in place, because
// peers act on it at once. The status is written on the /status subresource, coalesced: a change
// of state (a peer up or down, a new SPI, an error) goes out within `minIntervalMs`, counters and
// the heartbeat (lastUpdateTime) every `countersIntervalMs`, so the apiserver's load stays O(nodes)
// however busy the mesh, and the operator can tell a quiet node from one whose agent is gone.
import { errorMessage } from '../../common/errors.js';
import type { Clock, TimerHandle } from '../../common/time.js';
import { RESOURCES, resourcePath, type KubeClient } from '../../api/kube/client.js';
import { AGENT_FIELD_MANAGER, API_VERSION, KINDS } from '../../api/names.js';
import type { IPsecNodeSpec, IPsecNodeStatus } from '../../api/types.js';
import { stableJson } from '../../api/stable-json.js';
import type { Logger } from '../log.js';
import { significantPart } from './node-status.js';

export interface PublisherOptions {
  readonly kube: KubeClient;
  readonly node: string;
  readonly clock: Clock;
  readonly log: Logger;
  readonly minIntervalMs?: number;
  readonly countersIntervalMs?: number;
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

  constructor(o: PublisherOptions) { this.#o = o; }

  get path(): string { return resourcePath(RESOURCES.ipsecNodes, { name: this.#o.node }); }

  /** Apply the spec if it differs from what we last wrote (a failure throws: the caller retries). */
  async publishSpec(spec: IPsecNodeSpec): Promise<boolean> {
    const text = stableJson(spec);
    if (text === this.#spec) return false;
    await this.#o.kube.apply(this.path, { apiVersion: API_VERSION, kind: KINDS.IPsecNode.kind, metadata: { name: this.#o.node }, spec }, AGENT_FIELD_MANAGER);
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
    // A change of state goes out soon; anything else (counters, or nothing: lastUpdateTime is the
    // node's heartbeat, which the operator reads to tell a quiet node from a dead one) once a minute.
    if (!w || w.significant !== sig) dueMs = w ? Math.max(0, w.atMs + minMs - now) : 0;
    else dueMs = Math.max(0, w.atMs + countersMs - now);
    dueMs = Math.max(dueMs, this.#retryAtMs - now);
    // A timer already set for this moment or earlier stands; a later one (the heartbeat) gives way.
    if (this.#timer && this.#timerAtMs <= now + dueMs) return;
    this.#timer?.cancel();
    this.#timerAtMs = now + dueMs;
    this.#timer = this.#o.clock.setTimer(dueMs, () => { this.#timer = undefined; void this.#write(); });
  }

  async #write(): Promise<void> {
    const s = this.#status;
    if (!s || this.#stopped) return;
    this.#writing = true;
    try {
      await this.#o.kube.apply(`${this.path}/status`, { apiVersion: API_VERSION, kind: KINDS.IPsecNode.kind, metadata: { name: this.#o.node }, status: s }, AGENT_FIELD_MANAGER);
      this.#written = { significant: significantPart(s), full: stableJson({ ...s, lastUpdateTime: undefined }), atMs: this.#o.clock.now() };
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
    if (this.#status && (!this.#written || this.#written.full !== stableJson({ ...this.#status, lastUpdateTime: undefined }))) await this.#write();
  }

  stop(): void { this.#stopped = true; this.#timer?.cancel(); this.#timer = undefined; }
}
