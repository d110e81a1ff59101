// An informer: list, then watch from the list's resourceVersion, keep an in-memory cache and call
// handlers on changes. A 410 Gone (HTTP status or ERROR event) means our resourceVersion was
// compacted away: relist, diff against the cache (emitting deletes for what vanished meanwhile)
// and watch again. Other failures retry with backoff. We do not use client-node 1.3's makeInformer:
// it stops for good on any non-410 error and has no backoff (checked in its dist/cache.js).
import type { Clock } from '../../common/time.js';
import { errorMessage } from '../../common/errors.js';
import { METADATA_ACCEPT, METADATA_LIST_ACCEPT, type KubeClient, type WatchEvent } from './client.js';
import { isGone } from './errors.js';
import { backoffDelayMs } from './backoff.js';

export interface KubeObject { metadata: { name: string; namespace?: string; resourceVersion?: string } }

export interface ListPage<T> { items: T[]; metadata: { resourceVersion?: string; continue?: string } }

/** What an informer needs from the apiserver; tests pass a fake. */
export interface ListWatcher<T> {
  list(continueToken: string | undefined): Promise<ListPage<T>>;
  watch(resourceVersion: string, onEvent: (e: WatchEvent<T | WatchStatus>) => void, signal: AbortSignal): Promise<void>;
}
export interface WatchStatus { kind?: 'Status'; code?: number; message?: string; metadata?: { resourceVersion?: string } }

/** `metadataOnly`: names, labels and annotations only (PartialObjectMetadata), for label-based selection. */
export function kubeListWatcher<T>(kube: KubeClient, path: string, selectors: { labelSelector?: string; fieldSelector?: string } = {}, pageSize = 500, o: { metadataOnly?: boolean } = {}): ListWatcher<T> {
  return {
    list: (cont) => kube.get<ListPage<T>>(path, { limit: pageSize, continue: cont, ...selectors }, o.metadataOnly ? METADATA_LIST_ACCEPT : undefined),
    watch: (rv, onEvent, signal) => kube.watch<T | WatchStatus>(path, {
      resourceVersion: rv, allowWatchBookmarks: true, timeoutSeconds: 300 + Math.floor(Math.random() * 300), ...selectors,
    }, onEvent, signal, o.metadataOnly ? METADATA_ACCEPT : undefined),
  };
}

export interface InformerHandlers<T> {
  onAdd?(obj: T): void;
  onUpdate?(old: T, obj: T): void;
  onDelete?(obj: T): void;
}

export const keyOf = (o: KubeObject): string => (o.metadata.namespace ? `${o.metadata.namespace}/${o.metadata.name}` : o.metadata.name);

class GoneError extends Error {}

export interface InformerOptions<T> {
  /**
   * Applied to every listed or watched object before it is cached or handed to a handler
   * (client-go's SetTransform): keep only what the readers use. At thousands of Nodes the cache
   * otherwise holds every image list, condition and managedFields entry the kubelets write.
   * It must keep metadata.name, namespace and resourceVersion.
   */
  readonly transform?: (o: T) => T;
}

export class Informer<T extends KubeObject> {
  readonly #lw: ListWatcher<T>;
  readonly #clock: Clock;
  readonly #handlers: InformerHandlers<T>[] = [];
  readonly #cache = new Map<string, T>();
  readonly #onError: (e: unknown) => void;
  readonly #transform: ((o: T) => T) | undefined;
  #rv = '';
  #synced = false;
  #syncWaiters: (() => void)[] = [];
  #abort = new AbortController();
  #stopped = false;
  /** Counters for tests and metrics. */
  readonly stats = { lists: 0, watches: 0, relistsOnGone: 0, errors: 0 };

  constructor(lw: ListWatcher<T>, clock: Clock, onError: (e: unknown) => void = () => undefined, o: InformerOptions<T> = {}) {
    this.#lw = lw; this.#clock = clock; this.#onError = onError; this.#transform = o.transform;
  }

  addHandlers(h: InformerHandlers<T>): void { this.#handlers.push(h); }
  get(key: string): T | undefined { return this.#cache.get(key); }
  list(): T[] { return [...this.#cache.values()]; }
  get size(): number { return this.#cache.size; }
  get hasSynced(): boolean { return this.#synced; }
  get resourceVersion(): string { return this.#rv; }

  waitForSync(): Promise<void> {
    if (this.#synced) return Promise.resolve();
    return new Promise((r) => this.#syncWaiters.push(r));
  }

  stop(): void { this.#stopped = true; this.#abort.abort(); }

  /** Runs until stop(). */
  async run(): Promise<void> {
    let failures = 0;
    while (!this.#stopped) {
      try {
        if (this.#rv === '') await this.#relist();
        this.stats.watches++;
        await this.#lw.watch(this.#rv, (e) => this.#onEvent(e), this.#abort.signal);
        failures = 0;
      } catch (e) {
        if (this.#stopped) return;
        if (e instanceof GoneError || isGone(e)) { this.#rv = ''; this.stats.relistsOnGone++; continue; }
        this.stats.errors++;
        failures++;
        this.#onError(e);
        if (failures >= 5) this.#rv = ''; // persistent watch failure: start over from a fresh list
        await this.#sleep(backoffDelayMs(failures, { baseMs: 200, maxMs: 30_000 }));
      }
    }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const signal = this.#abort.signal;
      // The listener goes with the timer: a long outage sleeps thousands of times on one signal.
      const onAbort = (): void => { t.cancel(); resolve(); };
      const t = this.#clock.setTimer(ms, () => { signal.removeEventListener('abort', onAbort); resolve(); });
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  async #relist(): Promise<void> {
    this.stats.lists++;
    const items: T[] = [];
    let cont: string | undefined;
    let rv = '';
    do {
      const page = await this.#lw.list(cont);
      const t = this.#transform;
      for (const x of page.items) items.push(t ? t(x) : x);
      rv = page.metadata.resourceVersion ?? rv;
      cont = page.metadata.continue || undefined;
    } while (cont);
    const fresh = new Map(items.map((o) => [keyOf(o), o]));
    for (const [k, old] of this.#cache) if (!fresh.has(k)) { this.#cache.delete(k); this.#emit('delete', old, old); }
    for (const [k, o] of fresh) this.#upsert(k, o);
    this.#rv = rv;
    if (!this.#synced) { this.#synced = true; for (const w of this.#syncWaiters.splice(0)) w(); }
  }

  #upsert(k: string, o: T): void {
    const old = this.#cache.get(k);
    this.#cache.set(k, o);
    if (!old) this.#emit('add', o, o);
    else if (old.metadata.resourceVersion !== o.metadata.resourceVersion) this.#emit('update', old, o);
  }

  #onEvent(e: WatchEvent<T | WatchStatus>): void {
    if (e.type === 'ERROR') {
      const s = e.object as WatchStatus;
      if (s.code === 410) throw new GoneError(s.message ?? 'resourceVersion too old');
      throw new Error(`watch error ${s.code ?? '?'}: ${s.message ?? ''}`);
    }
    const raw = e.object as T;
    if (raw.metadata?.resourceVersion) this.#rv = raw.metadata.resourceVersion;
    if (e.type === 'BOOKMARK') return;
    const o = this.#transform ? this.#transform(raw) : raw;
    const k = keyOf(o);
    if (e.type === 'DELETED') {
      const old = this.#cache.get(k) ?? o;
      this.#cache.delete(k);
      this.#emit('delete', old, o);
    } else {
      this.#upsert(k, o);
    }
  }

  #emit(kind: 'add' | 'update' | 'delete', old: T, o: T): void {
    for (const h of this.#handlers) {
      try {
        if (kind === 'add') h.onAdd?.(o);
        else if (kind === 'update') h.onUpdate?.(old, o);
        else h.onDelete?.(old);
      } catch (e) { this.#onError(new Error(`informer handler: ${errorMessage(e)}`)); }
    }
  }
}
