// A keyed, de-duplicating work queue with the semantics of client-go's workqueue: a key is queued
// at most once; a key re-added while a worker holds it is processed again after done(); delayed
// adds (requeue-after, rate-limited retries) go through the injected clock.
import type { Clock, TimerHandle } from '../common/time.js';
import { ItemBackoff, type BackoffPolicy } from '../api/kube/backoff.js';

export class WorkQueue<K> {
  readonly #clock: Clock;
  readonly #queue: K[] = [];
  /** Keys added with addFront: handed out before every key of #queue. */
  readonly #front: K[] = [];
  /** Keys re-added with addFront while a worker held them: they go to the front after done(). */
  readonly #urgent = new Set<K>();
  readonly #dirty = new Set<K>();
  readonly #processing = new Set<K>();
  readonly #waiting = new Map<K, { at: number; timer: TimerHandle }>();
  readonly #backoff: ItemBackoff<K>;
  readonly #waiters: ((k: K | undefined) => void)[] = [];
  #shutdown = false;
  /** Total adds that were absorbed because the key was already queued (a metric). */
  deduplicated = 0;

  constructor(clock: Clock, backoff?: BackoffPolicy) {
    this.#clock = clock;
    this.#backoff = new ItemBackoff<K>(backoff);
  }

  get length(): number { return this.#queue.length + this.#front.length; }
  get inFlight(): number { return this.#processing.size; }
  get delayed(): number { return this.#waiting.size; }
  get shuttingDown(): boolean { return this.#shutdown; }

  add(key: K): void {
    if (this.#shutdown) return;
    if (this.#dirty.has(key)) { this.deduplicated++; return; }
    this.#dirty.add(key);
    if (this.#processing.has(key)) return;
    const w = this.#waiters.shift();
    if (w) { this.#dirty.delete(key); this.#processing.add(key); w(key); return; }
    this.#queue.push(key);
  }

  /**
   * Like add, but ahead of every key queued with add: a follow-up that should not wait behind a
   * backlog (the signer's second step after its approval, in a join of thousands). A key already
   * queued keeps its place.
   */
  addFront(key: K): void {
    if (this.#shutdown) return;
    if (this.#dirty.has(key)) { this.deduplicated++; if (this.#processing.has(key)) this.#urgent.add(key); return; }
    this.#dirty.add(key);
    if (this.#processing.has(key)) { this.#urgent.add(key); return; }
    const w = this.#waiters.shift();
    if (w) { this.#dirty.delete(key); this.#processing.add(key); w(key); return; }
    this.#front.push(key);
  }

  /** Add after ms; an earlier pending delayed add for the key wins. */
  addAfter(key: K, ms: number): void {
    if (this.#shutdown) return;
    if (ms <= 0) { this.add(key); return; }
    const at = this.#clock.now() + ms;
    const prev = this.#waiting.get(key);
    if (prev && prev.at <= at) return;
    prev?.timer.cancel();
    const timer = this.#clock.setTimer(ms, () => { this.#waiting.delete(key); this.add(key); });
    this.#waiting.set(key, { at, timer });
  }

  /** Retry after this key's backoff; returns the delay chosen. */
  addRateLimited(key: K): number {
    const ms = this.#backoff.next(key);
    this.addAfter(key, ms);
    return ms;
  }

  /** Stop backing off a key (after a success). */
  forget(key: K): void { this.#backoff.forget(key); }
  failures(key: K): number { return this.#backoff.failures(key); }

  /** Next key to process, or undefined once shut down and drained. */
  get(): Promise<K | undefined> {
    const k = this.#front.length > 0 ? this.#front.shift() : this.#queue.shift();
    if (k !== undefined) {
      this.#dirty.delete(k);
      this.#processing.add(k);
      return Promise.resolve(k);
    }
    if (this.#shutdown) return Promise.resolve(undefined);
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  done(key: K): void {
    this.#processing.delete(key);
    const urgent = this.#urgent.delete(key);
    if (this.#dirty.has(key)) {
      this.#dirty.delete(key);
      if (urgent) this.addFront(key); else this.add(key);
    }
  }

  shutdown(): void {
    this.#shutdown = true;
    for (const w of this.#waiting.values()) w.timer.cancel();
    this.#waiting.clear();
    for (const w of this.#waiters.splice(0)) w(undefined);
  }
}

/**
 * Run `workers` loops taking keys from the queue. The handler returns a requeue delay (ms) or
 * undefined; anything it throws (synchronously or not, an Error or any other value) requeues the
 * key with backoff and is reported through onError. Nothing a handler or the reporter does ends
 * a loop: only shutdown does (client-go's processNextWorkItem: HandleError, AddRateLimited, Done).
 */
export async function runWorkers<K>(q: WorkQueue<K>, workers: number, handle: (key: K) => Promise<number | undefined>, onError: (key: K, e: unknown, retryMs: number) => void): Promise<void> {
  const loop = async (): Promise<void> => {
    for (;;) {
      const key = await q.get();
      if (key === undefined) return;
      try {
        const after = await handle(key);
        q.forget(key);
        if (after !== undefined) q.addAfter(key, after);
      } catch (e) {
        const retryMs = q.addRateLimited(key);
        // A reporter that throws (a value that cannot be printed, a broken log stream) must not
        // end the loop: with one worker that would stop the controller for good.
        try { onError(key, e, retryMs); } catch { /* the retry is already scheduled */ }
      } finally {
        q.done(key);
      }
    }
  };
  await Promise.all(Array.from({ length: workers }, loop));
}
