// Many deadlines on one Node timer: a binary min-heap whose earliest entry is the only armed
// timeout. EspXfrm's SA time limits (soft and hard add-expires of every SA) used one Timeout each,
// with its closure and, for every distinct delay, a timer list of Node's: about 1 KiB per Child SA
// at thousands of SAs; an entry here is one small object. The agent's clock (deadline-clock.ts)
// puts the IKE engine's timers here too.

/** A scheduled deadline; pass it to remove(), or call its cancel(), to cancel. */
export interface Deadline<T> { readonly atMs: number; readonly item: T; index: number; cancel(): void }

/** A heap entry; `seq` orders equal deadlines by insertion and tells which came in while firing. */
class Entry<T> implements Deadline<T> {
  readonly atMs: number;
  readonly item: T;
  index: number;
  readonly seq: number;
  readonly owner: Deadlines<T>;
  constructor(atMs: number, item: T, index: number, seq: number, owner: Deadlines<T>) { this.atMs = atMs; this.item = item; this.index = index; this.seq = seq; this.owner = owner; }
  cancel(): void { this.owner.remove(this); }
}

const before = (a: { readonly atMs: number; readonly seq: number }, b: { readonly atMs: number; readonly seq: number }): boolean => a.atMs < b.atMs || (a.atMs === b.atMs && a.seq < b.seq);

/** setTimeout's largest delay (2^31 - 1 ms); a longer one would fire at once, so it is re-armed. */
const MAX_DELAY_MS = 0x7fffffff;

export class Deadlines<T> {
  readonly #heap: Entry<T>[] = [];
  readonly #fire: (item: T) => void;
  readonly #now: () => number;
  #timer: NodeJS.Timeout | undefined;
  #armedAt = Infinity;
  #seq = 0;

  constructor(fire: (item: T) => void, now: () => number = Date.now) { this.#fire = fire; this.#now = now; }

  get size(): number { return this.#heap.length; }

  add(atMs: number, item: T): Deadline<T> {
    const d = new Entry(atMs, item, this.#heap.length, this.#seq++, this);
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

  /**
   * The armed deadline has come (the clock read may lag a timer that fired on time): fire what is
   * due, not what the callbacks add meanwhile (as setTimeout, that waits for the next turn). A
   * callback that throws leaves the rest for the next turn, the timer armed.
   */
  #run(): void {
    const now = Math.max(this.#now(), this.#armedAt);
    const added = this.#seq;
    this.#timer = undefined;
    this.#armedAt = Infinity;
    try {
      for (let d = this.#heap[0]; d && d.atMs <= now && d.seq < added; d = this.#heap[0]) {
        this.remove(d);
        this.#fire(d.item);
      }
    } finally { this.#arm(now); }
  }

  #up(i: number): void {
    const h = this.#heap;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(h[i]!, h[p]!)) break;
      this.#swap(i, p); i = p;
    }
  }

  #down(i: number): void {
    const h = this.#heap;
    for (;;) {
      const l = 2 * i + 1; const r = l + 1;
      let m = i;
      if (l < h.length && before(h[l]!, h[m]!)) m = l;
      if (r < h.length && before(h[r]!, h[m]!)) m = r;
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
