// Many deadlines on one Node timer: a binary min-heap whose earliest entry is the only armed
// timeout. EspXfrm's SA time limits (soft and hard add-expires of every SA) used one Timeout each,
// with its closure and, for every distinct delay, a timer list of Node's: about 1 KiB per Child SA
// at thousands of SAs; an entry here is one small object.

/** A scheduled deadline; pass it to remove() to cancel. */
export interface Deadline<T> { readonly atMs: number; readonly item: T; index: number }

/** setTimeout's largest delay (2^31 - 1 ms); a longer one would fire at once, so it is re-armed. */
const MAX_DELAY_MS = 0x7fffffff;

export class Deadlines<T> {
  readonly #heap: Deadline<T>[] = [];
  readonly #fire: (item: T) => void;
  readonly #now: () => number;
  #timer: NodeJS.Timeout | undefined;
  #armedAt = Infinity;

  constructor(fire: (item: T) => void, now: () => number = Date.now) { this.#fire = fire; this.#now = now; }

  get size(): number { return this.#heap.length; }

  add(atMs: number, item: T): Deadline<T> {
    const d: Deadline<T> = { atMs, item, index: this.#heap.length };
    this.#heap.push(d);
    this.#up(d.index);
    if (atMs < this.#armedAt) this.#arm(this.#now());
    return d;
  }

  remove(d: Deadline<T>): void {
    const h = this.#heap;
    if (h[d.index] !== d) return;
    const last = h.pop()!;
    if (last !== d) { h[d.index] = last; last.index = d.index; this.#down(last.index); this.#up(last.index); }
    d.index = -1;
    if (h.length === 0) this.clear();
  }

  clear(): void {
    for (const d of this.#heap) d.index = -1;
    this.#heap.length = 0;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#armedAt = Infinity;
  }

  #arm(nowMs: number): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    const first = this.#heap[0];
    if (!first) { this.#armedAt = Infinity; return; }
    const delay = Math.min(MAX_DELAY_MS, Math.max(0, first.atMs - nowMs));
    this.#armedAt = nowMs + delay;
    this.#timer = setTimeout(() => this.#run(), delay);
    this.#timer.unref();
  }

  /** The armed deadline has come (the clock read may lag a timer that fired on time): fire what is due. */
  #run(): void {
    const now = Math.max(this.#now(), this.#armedAt);
    this.#timer = undefined;
    this.#armedAt = Infinity;
    for (let d = this.#heap[0]; d && d.atMs <= now; d = this.#heap[0]) {
      this.remove(d);
      this.#fire(d.item);
    }
    this.#arm(now);
  }

  #up(i: number): void {
    const h = this.#heap;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (h[p]!.atMs <= h[i]!.atMs) break;
      this.#swap(i, p); i = p;
    }
  }

  #down(i: number): void {
    const h = this.#heap;
    for (;;) {
      const l = 2 * i + 1; const r = l + 1;
      let m = i;
      if (l < h.length && h[l]!.atMs < h[m]!.atMs) m = l;
      if (r < h.length && h[r]!.atMs < h[m]!.atMs) m = r;
      if (m === i) return;
      this.#swap(i, m); i = m;
    }
  }

  #swap(a: number, b: number): void {
    const h = this.#heap;
    const x = h[a]!; const y = h[b]!;
    h[a] = y; y.index = a; h[b] = x; x.index = b;
  }
}
