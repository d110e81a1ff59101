// Clock and Random ports. Engines and controllers take these so tests can run a manual clock
// and fixed randomness; production code uses systemClock / cryptoRandom.
import { randomBytes } from 'node:crypto';

export interface TimerHandle { cancel(): void }

export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Run fn after ms; the handle cancels it. */
  setTimer(ms: number, fn: () => void): TimerHandle;
}

export interface Random {
  bytes(n: number): Uint8Array;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer(ms, fn) {
    const t = setTimeout(fn, ms);
    t.unref?.();
    return { cancel: () => clearTimeout(t) };
  },
};

export const cryptoRandom: Random = { bytes: (n) => new Uint8Array(randomBytes(n)) };

/** A clock that moves only when told to; timers fire in due order inside advance(). */
export class ManualClock implements Clock {
  private t: number;
  private seq = 0;
  private timers = new Map<number, { at: number; fn: () => void }>();
  constructor(start = 1_700_000_000_000) { this.t = start; }
  now(): number { return this.t; }
  setTimer(ms: number, fn: () => void): TimerHandle {
    const id = this.seq++;
    this.timers.set(id, { at: this.t + Math.max(0, ms), fn });
    return { cancel: () => { this.timers.delete(id); } };
  }
  /** Move time forward by ms, firing each due timer at its own time (bounded to avoid loops). */
  advance(ms: number): void {
    const target = this.t + ms;
    for (let guard = 0; guard < 1_000_000; guard++) {
      let nextId = -1; let nextAt = Infinity;
      for (const [id, tm] of this.timers) if (tm.at <= target && tm.at < nextAt) { nextAt = tm.at; nextId = id; }
      if (nextId < 0) break;
      const tm = this.timers.get(nextId)!;
      this.timers.delete(nextId);
      this.t = tm.at;
      tm.fn();
    }
    this.t = target;
  }
  get pending(): number { return this.timers.size; }
}

/** Deterministic bytes from a seed (xorshift), for tests only. */
export class SeededRandom implements Random {
  private s: number;
  constructor(seed = 1) { this.s = seed >>> 0 || 1; }
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      this.s ^= this.s << 13; this.s >>>= 0;
      this.s ^= this.s >>> 17;
      this.s ^= this.s << 5; this.s >>>= 0;
      out[i] = this.s & 0xff;
    }
    return out;
  }
}
