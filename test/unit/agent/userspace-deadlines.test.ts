// src/agent/userspace/deadlines.ts: many deadlines on one timer fire in time order (equal ones in
// insertion order), removed ones never, one added while they fire on a later turn, and a delay past
// setTimeout's 2^31 - 1 ms limit waits instead of firing at once; the agent's clock on it
// (deadline-clock.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Deadlines } from '../../../src/agent/userspace/deadlines.js';

/** A clock the mocked setTimeout and the Deadlines agree on, advanced a second at a time. */
function clock(t: { mock: { timers: { enable(o: { apis: ['setTimeout'] }): void; tick(ms: number): void } } }): { now: () => number; advance(ms: number): void } {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  let now = 0;
  return { now: () => now, advance: (ms) => { for (let left = ms; left > 0; left -= 1000) { const step = Math.min(1000, left); now += step; t.mock.timers.tick(step); } } };
}

test('Deadlines: entries fire in deadline order, each when its time comes, whatever the insertion order', (t) => {
  const c = clock(t);
  const fired: number[] = [];
  const d = new Deadlines<number>((x) => fired.push(x), c.now);
  for (const s of [50, 10, 40, 20, 30, 10]) d.add(s * 1000, s);
  c.advance(10_000);
  assert.deepEqual(fired, [10, 10]);
  c.advance(25_000);
  assert.deepEqual(fired, [10, 10, 20, 30]);
  c.advance(15_000);
  assert.deepEqual(fired, [10, 10, 20, 30, 40, 50]);
  assert.equal(d.size, 0);
});

test('Deadlines: a removed entry never fires, the others still do (the head, the middle and the last)', (t) => {
  const c = clock(t);
  const fired: string[] = [];
  const d = new Deadlines<string>((x) => fired.push(x), c.now);
  const e = Object.fromEntries(['a', 'b', 'c', 'd', 'e'].map((k, i) => [k, d.add((i + 1) * 1000, k)]));
  d.remove(e['a']!); d.remove(e['c']!); d.remove(e['e']!);
  d.remove(e['c']!); // twice: no effect
  c.advance(10_000);
  assert.deepEqual(fired, ['b', 'd']);
});

test('Deadlines: 1,000 random deadlines with half removed fire sorted, exactly the kept ones', (t) => {
  const c = clock(t);
  const fired: number[] = [];
  const d = new Deadlines<number>((x) => fired.push(x), c.now);
  let seed = 7;
  const rnd = (): number => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed; };
  const all = Array.from({ length: 1000 }, () => { const at = (rnd() % 100) * 1000; return { at, h: d.add(at, at) }; });
  const kept = all.filter((_, i) => i % 2 === 0).map((x) => x.at).sort((a, b) => a - b);
  all.forEach((x, i) => { if (i % 2 === 1) d.remove(x.h); });
  c.advance(100_000);
  assert.deepEqual(fired, kept);
});

test('Deadlines: a deadline 30 days out does not fire at once (setTimeout would, past 2^31 - 1 ms)', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  let now = 0;
  const fired: string[] = [];
  const d = new Deadlines<string>((x) => fired.push(x), () => now);
  d.add(30 * 86_400_000, 'late');
  t.mock.timers.tick(1000);
  assert.deepEqual(fired, []);
  now = 0x7fffffff; t.mock.timers.tick(0x7fffffff);
  assert.deepEqual(fired, [], 'after 24.8 days: re-armed for the rest');
  now = 30 * 86_400_000; t.mock.timers.tick(30 * 86_400_000 - 0x7fffffff);
  assert.deepEqual(fired, ['late']);
});

test('Deadlines: equal deadlines fire in the order they were added (as setTimeout with one delay)', (t) => {
  const c = clock(t);
  const fired: number[] = [];
  const d = new Deadlines<number>((x) => fired.push(x), c.now);
  for (let i = 0; i < 20; i++) d.add(5000, i);
  c.advance(5000);
  assert.deepEqual(fired, Array.from({ length: 20 }, (_, i) => i));
});

test('Deadlines: one added while deadlines fire, even due at once, fires on a later turn, not in the same run (a callback re-adding itself cannot spin)', async () => {
  // Real timers: microtasks run between two timer turns, not inside one.
  const order: string[] = [];
  let left = 3;
  let d: Deadlines<string> | undefined = undefined;
  const done = new Promise<void>((resolve) => {
    d = new Deadlines<string>(() => {
      order.push('fire');
      queueMicrotask(() => order.push('turn over'));
      if (--left > 0) d!.add(Date.now(), 'again'); else setTimeout(resolve, 5);
    });
  });
  d!.add(Date.now(), 'first');
  const keep = setTimeout(() => undefined, 1_000); // the Deadlines timer is unref'd
  await done;
  clearTimeout(keep);
  assert.deepEqual(order, ['fire', 'turn over', 'fire', 'turn over', 'fire', 'turn over']);
});

test('deadlineClock (the agent clock): timers fire after their delay in deadline order, a cancelled one never, NaN and negative delays as 0', async () => {
  const { deadlineClock } = await import('../../../src/agent/deadline-clock.js');
  let now = 1_000;
  const fired: string[] = [];
  const clk = deadlineClock(() => now);
  const done = new Promise<void>((resolve) => { clk.setTimer(30, () => { fired.push('30'); resolve(); }); });
  clk.setTimer(20, () => fired.push('20'));
  const x = clk.setTimer(10, () => fired.push('cancelled'));
  clk.setTimer(Number.NaN, () => fired.push('nan'));
  clk.setTimer(-5, () => fired.push('negative'));
  x.cancel();
  now += 40;
  // the unref'd Node timer: keep the loop alive meanwhile
  const keep = setTimeout(() => undefined, 1_000);
  await done;
  clearTimeout(keep);
  assert.deepEqual(fired, ['nan', 'negative', '20', '30']);
});
