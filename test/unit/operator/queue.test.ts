// Work queue semantics (client-go workqueue): de-duplication, re-processing of keys added while
// held, delayed adds on the injected clock, rate-limited exponential backoff.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../../src/common/time.js';
import { backoffDelayMs, ItemBackoff } from '../../../src/api/kube/backoff.js';
import { WorkQueue, runWorkers } from '../../../src/operator/queue.js';

test('a key added many times is queued once', async () => {
  const q = new WorkQueue<string>(new ManualClock());
  q.add('a'); q.add('a'); q.add('b'); q.add('a');
  assert.equal(q.length, 2);
  assert.equal(q.deduplicated, 2);
  assert.equal(await q.get(), 'a');
  assert.equal(await q.get(), 'b');
});

test('a key added while being processed is processed again after done, never concurrently', async () => {
  const q = new WorkQueue<string>(new ManualClock());
  q.add('a');
  const k = await q.get();
  q.add('a');
  assert.equal(q.length, 0, 'not handed to a second worker while held');
  q.done(k!);
  assert.equal(q.length, 1);
  assert.equal(await q.get(), 'a');
});

test('addFront keys are handed out before add keys, in their order; a queued key keeps its place; one re-added at the front while held goes to the front after done', async () => {
  const q = new WorkQueue<string>(new ManualClock());
  q.add('a'); q.add('b'); q.addFront('x'); q.addFront('y'); q.addFront('b');
  assert.equal(q.length, 4);
  assert.equal(await q.get(), 'x');
  const y = await q.get();
  assert.equal(y, 'y');
  q.add('c'); q.addFront('y');
  q.done(y!);
  assert.deepEqual([await q.get(), await q.get(), await q.get(), await q.get()], ['y', 'a', 'b', 'c']);
});

test('addAfter fires on the clock; the earlier of two delays wins', async () => {
  const c = new ManualClock();
  const q = new WorkQueue<string>(c);
  q.addAfter('a', 1000); q.addAfter('a', 500); q.addAfter('a', 2000);
  c.advance(499); assert.equal(q.length, 0);
  c.advance(1); assert.equal(q.length, 1);
  c.advance(5000); assert.equal(q.length, 1);
});

test('backoff doubles per failure up to the cap and resets on forget', () => {
  assert.deepEqual([1, 2, 3, 4].map((n) => backoffDelayMs(n, { baseMs: 100, maxMs: 500 })), [100, 200, 400, 500]);
  const b = new ItemBackoff<string>({ baseMs: 10, maxMs: 1000 });
  assert.deepEqual([b.next('x'), b.next('x'), b.next('y')], [10, 20, 10]);
  b.forget('x');
  assert.equal(b.next('x'), 10);
});

test('runWorkers retries a failing key with backoff and stops on shutdown', async () => {
  const c = new ManualClock();
  const q = new WorkQueue<string>(c, { baseMs: 100, maxMs: 10_000 });
  let calls = 0; const delays: number[] = [];
  const done = runWorkers(q, 2, async () => { calls++; if (calls < 3) throw new Error('boom'); return undefined; }, (_k, _e, ms) => delays.push(ms));
  q.add('k');
  await new Promise((r) => setImmediate(r));
  c.advance(100); await new Promise((r) => setImmediate(r));
  c.advance(200); await new Promise((r) => setImmediate(r));
  assert.equal(calls, 3);
  assert.deepEqual(delays, [100, 200]);
  assert.equal(q.failures('k'), 0, 'success forgets the key');
  q.shutdown();
  await done;
});
