// Per-key exponential backoff (client-go's ItemExponentialFailureRateLimiter): the n-th consecutive
// failure of a key waits base·2^n, capped; success forgets the key.

export interface BackoffPolicy { readonly baseMs: number; readonly maxMs: number }
export const DEFAULT_BACKOFF: BackoffPolicy = { baseMs: 100, maxMs: 300_000 };

export function backoffDelayMs(failures: number, p: BackoffPolicy = DEFAULT_BACKOFF): number {
  if (failures <= 0) return 0;
  const exp = Math.min(failures - 1, 40);
  return Math.min(p.maxMs, p.baseMs * 2 ** exp);
}

export class ItemBackoff<K> {
  readonly #failures = new Map<K, number>();
  readonly #policy: BackoffPolicy;
  constructor(policy: BackoffPolicy = DEFAULT_BACKOFF) { this.#policy = policy; }
  /** Record one more failure and return how long to wait before retrying. */
  next(key: K): number {
    const n = (this.#failures.get(key) ?? 0) + 1;
    this.#failures.set(key, n);
    return backoffDelayMs(n, this.#policy);
  }
  failures(key: K): number { return this.#failures.get(key) ?? 0; }
  forget(key: K): void { this.#failures.delete(key); }
}
