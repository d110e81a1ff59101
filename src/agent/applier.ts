// Carries out a PeerPlan (source.ts) on the running agent: the one place that adds, changes and
// removes peers. It owns the reqid table (reqids.ts) — every Child SA configuration gets its
// reqid here before the engine or the kernel sees it — and the strict-mode block policies
// (strict.ts), which go in before the engine knows a peer and come out after its SAs are gone.
//
// Order inside one plan: removals first (their reqids and selectors may be reused), then the
// snapshot's peers in its order. Plans never overlap: apply() queues behind the one running.
import { errorMessage } from '../common/errors.js';
import type { EngineLike } from './engine-like.js';
import { carriedSelectors, type CarriedSelectors } from './gateway/moved-selectors.js';
import type { Logger } from './log.js';
import type { RoutePort } from './kernel.js';
import { reqidKey, type ReqidTable } from './reqids.js';
import { planPeers, type DesiredPeer, type PeerSnapshot } from './source.js';
import type { StrictPolicies } from './strict.js';

export interface ApplyResult {
  readonly added: string[];
  readonly removed: string[];
  readonly changed: string[];
  readonly unchanged: string[];
  /** Peers the engine refused (bad config from the source): name → reason. They are not running. */
  readonly refused: ReadonlyMap<string, string>;
}

export interface ApplierOptions {
  readonly log: Logger;
  readonly reqids: ReqidTable;
  readonly strict: StrictPolicies;
  readonly routes?: RoutePort;
  /** Make sure IKE sockets listen on these local addresses (and on no others). */
  readonly bind: (addresses: readonly string[]) => Promise<void>;
  /** Remove every kernel SA and policy of these reqids (a removed peer's leftovers); returns how many. */
  readonly removeKernelState: (reqids: ReadonlySet<number>) => Promise<number>;
  /**
   * A renegotiated or removed peer's Delete is sent: the policies of its old Child SAs that the new
   * config no longer carries go now (gateway/moved-selectors.ts), not when the Delete is answered.
   * A removed peer carries nothing (an empty map): all of them go, but for those another reqid took over.
   */
  readonly releaseMoved?: (peer: string, carried: CarriedSelectors) => Promise<void>;
  /**
   * How long a removed peer's SAs may stay for the engine's Delete exchange before they are removed
   * directly (a peer that does not answer would keep them for the whole retransmission schedule).
   */
  readonly removalGraceMs?: number;
}

export function childKeys(p: Pick<DesiredPeer, 'name' | 'config'>): string[] {
  return p.config.children.map((c) => reqidKey(p.name, c.name));
}

export class PeerApplier {
  readonly #o: ApplierOptions;
  readonly #running = new Map<string, DesiredPeer>();
  #engine: EngineLike | undefined;
  #initiating = false;
  #queue: Promise<unknown> = Promise.resolve();
  /** Sockets stay bound once opened: a removed peer's Delete exchange still needs them. */
  readonly #bound = new Set<string>();
  /** Child keys of removed peers whose kernel state may linger until the deadline (ms). */
  readonly #retiring = new Map<string, number>();
  #sweep: NodeJS.Timeout | undefined;

  constructor(o: ApplierOptions) { this.#o = o; }

  get peers(): ReadonlyMap<string, DesiredPeer> { return this.#running; }

  /** reqid of a running (or just removed) peer's child; the kernel port asks on every install. */
  reqidOf(peer: string, child: string): number {
    const r = this.#o.reqids.get(reqidKey(peer, child));
    if (r === undefined) throw new Error(`no reqid for ${peer}/${child}: the peer was never applied`);
    return r;
  }

  /**
   * The first snapshot, before the engine exists: reqids for every child, every peer's block
   * policies in the kernel (adopting those a previous run left), sockets bound. Returns the peer
   * configs the engine is constructed with.
   */
  async prepare(s: PeerSnapshot): Promise<DesiredPeer[]> {
    this.#o.reqids.allocateAll(s.peers.flatMap(childKeys));
    const r = await this.#o.strict.reconcile(new Map(s.peers.map((p) => [p.name, p.blocks])));
    if (r.added + r.removed > 0) this.#o.log.info({ added: r.added, removed: r.removed }, 'strict mode: block policies reconciled');
    await this.#bindMore(s.peers.map((p) => p.config.local.address));
    for (const p of s.peers) this.#running.set(p.name, p);
    return [...s.peers];
  }

  /** The engine exists (built with prepare()'s peers); later plans go to it. */
  attach(engine: EngineLike): void { this.#engine = engine; }

  /** Initiation has begun (engine.start()): added peers with startAction initiate start at once. */
  startInitiating(): void { this.#initiating = true; }

  /** After start-up cleaned the kernel: reqids of keys no running peer has are free again. */
  releaseUnused(): void {
    const wanted = new Set([...[...this.#running.values()].flatMap(childKeys), ...this.#retiring.keys()]);
    this.#o.reqids.release(this.#o.reqids.entries().map(([k]) => k).filter((k) => !wanted.has(k)));
  }

  /** Every SA of ours is gone (shutdown): the whole table goes. */
  releaseAll(): void { this.#o.reqids.clear(); }

  /** Apply a snapshot; resolves once every change is made (removals: once the peer's SAs are gone). */
  apply(s: PeerSnapshot): Promise<ApplyResult> {
    const run = this.#queue.then(() => this.#apply(s));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async #apply(s: PeerSnapshot): Promise<ApplyResult> {
    const engine = this.#engine;
    if (!engine) throw new Error('applier: no engine attached');
    const plan = planPeers(this.#running, s);
    const log = this.#o.log;
    const failed = new Map<string, string>();
    for (const name of plan.remove) {
      await this.#removePeer(engine, name);
      log.info({ peer: name }, 'peer removed');
    }
    await this.#bindMore(s.peers.map((p) => p.config.local.address));
    const renegotiate = new Set(plan.renegotiate.map((p) => p.name));
    const update = new Set(plan.update.map((p) => p.name));
    const add = new Set(plan.add.map((p) => p.name));
    for (const p of s.peers) {
      if (!renegotiate.has(p.name) && !update.has(p.name) && !add.has(p.name)) continue;
      try {
        if (renegotiate.has(p.name)) {
          // New selectors/addresses: their blocks go in before the old SAs go out.
          await this.#o.strict.set(p.name, p.blocks);
          // The peer may have renegotiated first: its new IKE SA, answered under the old config,
          // completes under the new one instead of being dropped (its IKE_AUTH would then find no
          // SA and be retransmitted until it gives up, ~165 s).
          await engine.removePeer(p.name, { keepHalfOpen: true });
          await this.#o.releaseMoved?.(p.name, carriedSelectors(p.config)).catch((e: unknown) => { log.warn({ peer: p.name, err: errorMessage(e) }, 'removing the policies the renegotiated peer no longer carries failed; they go with its old Child SAs'); });
          this.#releaseStale(p);
        } else {
          await this.#o.strict.set(p.name, p.blocks);
        }
        for (const k of childKeys(p)) this.#retiring.delete(k); // back before its old state was swept: it is its own again
        this.#o.reqids.allocateAll(childKeys(p));
        engine.addPeer(p.config);
        this.#running.set(p.name, p);
        if (this.#initiating && p.config.startAction === 'initiate') engine.initiate(p.name);
        log.info({ peer: p.name, change: add.has(p.name) ? 'added' : renegotiate.has(p.name) ? 'renegotiated' : 'updated' }, 'peer applied');
      } catch (e) {
        // The source handed us something the engine refuses: keep what ran before (if anything).
        failed.set(p.name, errorMessage(e));
        log.warn({ peer: p.name, err: errorMessage(e) }, 'peer not applied');
        if (!this.#running.has(p.name)) await this.#o.strict.remove(p.name).catch(() => undefined);
      }
    }
    return {
      added: plan.add.map((p) => p.name).filter((n) => !failed.has(n)),
      removed: [...plan.remove],
      changed: [...plan.renegotiate, ...plan.update].map((p) => p.name).filter((n) => !failed.has(n)),
      unchanged: [...plan.unchanged],
      refused: failed,
    };
  }

  async #removePeer(engine: EngineLike, name: string): Promise<void> {
    const p = this.#running.get(name);
    await engine.removePeer(name);
    // The Delete is sent, maybe never answered (the remote dead): the Child SAs' policies go now,
    // not with the SAs (stale equal-priority policies win over newer ones, moved-selectors.ts); the
    // SAs stay until the Delete is answered or the sweep, so inbound ESP in flight is still taken.
    // The policies go before the blocks: in between, the peer's traffic is dropped, never clear.
    await this.#o.releaseMoved?.(name, new Map()).catch((e: unknown) => { this.#o.log.warn({ peer: name, err: errorMessage(e) }, 'removing the removed peer\'s policies failed; they go with its Child SAs'); });
    await this.#o.strict.remove(name);
    if (p?.installRoutes) await this.#o.routes?.remove(name).catch((e: unknown) => { this.#o.log.warn({ peer: name, err: errorMessage(e) }, 'route removal failed'); });
    this.#running.delete(name);
    if (p) this.#retire(childKeys(p));
  }

  async #bindMore(addresses: readonly string[]): Promise<void> {
    const before = this.#bound.size;
    for (const a of addresses) this.#bound.add(a);
    if (this.#bound.size !== before) await this.#o.bind([...this.#bound]);
  }

  /**
   * The engine has sent the Deletes; the SAs go when the peer answers. Past the grace period,
   * whatever is left of these keys in the kernel is removed directly, and only then are their
   * reqids free for others.
   */
  #retire(keys: readonly string[]): void {
    const until = Date.now() + (this.#o.removalGraceMs ?? 15_000);
    for (const k of keys) this.#retiring.set(k, until);
    if (!this.#sweep) {
      this.#sweep = setTimeout(() => { this.#sweep = undefined; void this.#sweepRetired(); }, (this.#o.removalGraceMs ?? 15_000) + 100);
      this.#sweep.unref();
    }
  }

  async #sweepRetired(): Promise<void> {
    const now = Date.now();
    const due = [...this.#retiring].filter(([, until]) => until <= now).map(([k]) => k);
    const reqids = new Set(due.map((k) => this.#o.reqids.get(k)).filter((r): r is number => r !== undefined));
    try {
      const n = reqids.size > 0 ? await this.#o.removeKernelState(reqids) : 0;
      if (n > 0) this.#o.log.info({ removed: n }, 'removed the kernel state removed peers left behind (their Delete went unanswered)');
      for (const k of due) this.#retiring.delete(k);
      this.#o.reqids.release(due);
    } catch (e) {
      this.#o.log.warn({ err: errorMessage(e) }, 'removing a removed peer\'s kernel state failed; will retry');
    }
    if (this.#retiring.size > 0) {
      const next = Math.max(100, Math.min(...this.#retiring.values()) - Date.now() + 100);
      this.#sweep = setTimeout(() => { this.#sweep = undefined; void this.#sweepRetired(); }, next);
      this.#sweep.unref();
    }
  }

  /** Stop the sweeps (shutdown and abandon: the kernel state stays as it is, or goes all at once). */
  close(): void { if (this.#sweep) clearTimeout(this.#sweep); this.#sweep = undefined; }

  /** A renegotiated peer's children that are gone from its new config retire like a removed peer's. */
  #releaseStale(next: DesiredPeer): void {
    const old = this.#running.get(next.name);
    if (!old) return;
    const keep = new Set(childKeys(next));
    this.#retire(childKeys(old).filter((k) => !keep.has(k)));
  }
}
