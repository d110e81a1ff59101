// The agent's clock: Date.now, and every timer the IKE engine sets (rekeys, lifetimes, DPD,
// retransmissions) as one entry in a heap with one Node timer (userspace/deadlines.ts) instead of a
// setTimeout each. A Timeout, its handle and closure, and a timer list of Node's for each distinct
// delay (rekey times are jittered, so nearly every SA has its own) cost several hundred bytes per
// timer; an entry is one small object. Timers fire in deadline order; one set while timers fire
// waits for the next turn, as with setTimeout; none keeps the process alive (systemClock unrefs too).
import type { Clock, TimerHandle } from '../common/time.js';
import { Deadlines } from './userspace/deadlines.js';

export function deadlineClock(now: () => number = Date.now): Clock {
  const timers = new Deadlines<() => void>((fn) => fn(), now);
  // NaN and negative delays are 0 (setTimeout makes them 1 ms).
  return { now, setTimer: (ms: number, fn: () => void): TimerHandle => timers.add(now() + (ms > 0 ? ms : 0), fn) };
}
