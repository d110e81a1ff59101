// A controller survives whatever its reconcile throws (client-go workqueue semantics: a failed key
// is reported, re-added with per-key exponential backoff, and marked done, so the worker goes on to
// the next key), and its writes are fenced by the leader lease at the moment they are sent.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import pino from 'pino';
import { ManualClock } from '../../../src/common/time.js';
import { KubeApiError } from '../../../src/api/kube/errors.js';
import { runController } from '../../../src/operator/controller.js';
import { NotLeaderError, fencedKube, isNotLeader, type OperatorKube } from '../../../src/operator/fence.js';
import { OperatorMetrics } from '../../../src/operator/metrics.js';
import { WorkQueue, runWorkers } from '../../../src/operator/queue.js';

interface Line { level: number; msg: string; key?: string; err?: string; retryMs?: number }

function capture(): { log: pino.Logger; lines: Line[] } {
  const lines: Line[] = [];
  const sink = new Writable({ write(chunk: Buffer, _enc, cb) { lines.push(JSON.parse(chunk.toString('utf8')) as Line); cb(); } });
  return { log: pino({ level: 'debug' }, sink), lines };
}

/** Let promise chains and stream writes settle. */
const settle = async (): Promise<void> => { for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r)); };

async function results(m: OperatorMetrics, result: string): Promise<number> {
  return (await m.reconciles.get()).values.find((v) => v.labels['result'] === result)?.value ?? 0;
}

test('client-go workqueue semantics: a reconcile that throws (synchronously, asynchronously, or a value that is not an Error) is logged with its key, requeued with backoff, and the one worker goes on with the other keys', async () => {
  const clock = new ManualClock();
  const q = new WorkQueue<string>(clock, { baseMs: 100, maxMs: 10_000 });
  const { log, lines } = capture();
  const metrics = new OperatorMetrics();
  const calls: string[] = [];
  const throwers: Record<string, () => unknown> = {
    sync: () => { throw new Error('sync boom'); },
    string: () => { throw 'a string'; },
    'null-proto': () => { throw Object.create(null); }, // String() of it throws: the reporter must survive it
    undef: () => { throw undefined; },
  };
  // Not an async function: the sync cases throw before any promise exists.
  const reconcile = (k: string): Promise<number | undefined> => {
    calls.push(k);
    const t = throwers[k];
    if (t) t();
    if (k === 'async') return Promise.reject(new Error('async boom'));
    return Promise.resolve(undefined);
  };
  const running = runController('test', q, 1, reconcile, { log, metrics, isLeader: () => true });
  for (const k of ['sync', 'ok-1', 'async', 'string', 'null-proto', 'undef', 'ok-2']) q.add(k);
  await settle();
  assert.deepEqual(calls, ['sync', 'ok-1', 'async', 'string', 'null-proto', 'undef', 'ok-2'], 'every key processed once, failures or not');
  const warned = lines.filter((l) => l.msg === 'reconcile failed; will retry');
  assert.deepEqual(warned.map((l) => [l.key, l.retryMs]), [['sync', 100], ['async', 100], ['string', 100], ['null-proto', 100], ['undef', 100]]);
  assert.deepEqual(warned.map((l) => l.err), ['sync boom', 'async boom', 'a string', 'non-Error value [object Object]', 'undefined']);
  assert.equal(await results(metrics, 'error'), 5);
  assert.equal(q.delayed, 5, 'each failed key waits for its retry');

  calls.length = 0;
  clock.advance(100); await settle();
  assert.deepEqual(calls.sort(), ['async', 'null-proto', 'string', 'sync', 'undef'], 'retried after the first backoff step');
  assert.deepEqual(lines.filter((l) => l.msg === 'reconcile failed; will retry').slice(5).map((l) => l.retryMs), [200, 200, 200, 200, 200], 'the backoff doubles per failure');

  calls.length = 0;
  q.add('later'); await settle();
  assert.deepEqual(calls, ['later'], 'the controller is still running');
  q.shutdown();
  await running;
});

test('client-go workqueue semantics: a reporter that throws does not end the worker; the retry is still scheduled', async () => {
  const clock = new ManualClock();
  const q = new WorkQueue<string>(clock, { baseMs: 50, maxMs: 1000 });
  const seen: string[] = [];
  const running = runWorkers(q, 1, (k) => { seen.push(k); return k === 'bad' ? Promise.reject(new Error('x')) : Promise.resolve(undefined); }, () => { throw new Error('reporter broke'); });
  q.add('bad'); q.add('good');
  await settle();
  assert.deepEqual(seen, ['bad', 'good']);
  clock.advance(50); await settle();
  assert.deepEqual(seen, ['bad', 'good', 'bad']);
  q.shutdown();
  await running;
});

test('Kubernetes API conventions, optimistic concurrency: a 409 Conflict is retried with backoff and reported quietly as a conflict, not as a failure; success forgets the backoff', async () => {
  const clock = new ManualClock();
  const q = new WorkQueue<string>(clock, { baseMs: 100, maxMs: 10_000 });
  const { log, lines } = capture();
  const metrics = new OperatorMetrics();
  let n = 0;
  const running = runController('tunnel', q, 2, () => (++n === 1 ? Promise.reject(new KubeApiError(409, 'Conflict', 'the object has been modified')) : Promise.resolve(undefined)), { log, metrics, isLeader: () => true });
  q.add('t'); await settle();
  assert.equal(n, 1);
  assert.deepEqual(lines.map((l) => [l.level, l.msg]), [[20, 'write conflicted with a newer version of the object; will retry']], 'debug, not warn');
  clock.advance(100); await settle();
  assert.equal(n, 2);
  assert.equal(q.failures('t'), 0);
  assert.deepEqual([await results(metrics, 'conflict'), await results(metrics, 'ok'), await results(metrics, 'error')], [1, 1, 0]);
  q.shutdown();
  await running;
});

/** An API client that records what reaches it. */
function recordingKube(): { kube: OperatorKube; sent: string[] } {
  const sent: string[] = [];
  const ok = <T>(what: string): Promise<T> => { sent.push(what); return Promise.resolve({} as T); };
  return {
    sent,
    kube: {
      get: <T>(path: string) => ok<T>(`GET ${path}`),
      create: <T>(path: string) => ok<T>(`POST ${path}`),
      update: <T>(path: string) => ok<T>(`PUT ${path}`),
      delete: <T>(path: string) => ok<T>(`DELETE ${path}`),
      mergePatch: <T>(path: string) => ok<T>(`PATCH ${path}`),
      apply: <T>(path: string) => ok<T>(`APPLY ${path}`),
      request: <T>(method: string, path: string) => ok<T>(`${method} ${path}`),
    },
  };
}

test('leader fence: with the lease lost, every write is refused before it is sent (a rejected promise, NotLeaderError) and reads still go; the check is made at each call', async () => {
  const { kube, sent } = recordingKube();
  let leader = false;
  const k = fencedKube(kube, () => leader);
  const writes: (() => Promise<unknown>)[] = [
    () => k.create('/c', {}), () => k.update('/u', {}), () => k.delete('/d'), () => k.mergePatch('/m', {}), () => k.apply('/a', {}, 'fm'), () => k.request('DELETE', '/r'),
  ];
  for (const w of writes) await assert.rejects(w(), (e: unknown) => isNotLeader(e) && e instanceof NotLeaderError && /not the leader: refused to send /.test(e.message));
  await k.get('/g'); await k.request('GET', '/rg');
  assert.deepEqual(sent, ['GET /g', 'GET /rg'], 'no write reached the apiserver');
  leader = true;
  for (const w of writes) await w();
  assert.deepEqual(sent.slice(2), ['POST /c', 'PUT /u', 'DELETE /d', 'PATCH /m', 'APPLY /a', 'DELETE /r']);
});

test('leader fence: a lease lost during a reconcile (after its start-of-reconcile check) stops its write; the key is kept and done once the lease is renewed', async () => {
  const clock = new ManualClock();
  const q = new WorkQueue<string>(clock, { baseMs: 100, maxMs: 1000 });
  const { kube, sent } = recordingKube();
  let leader = true;
  const k = fencedKube(kube, () => leader);
  const { log, lines } = capture();
  const metrics = new OperatorMetrics();
  let runs = 0;
  const reconcile = async (key: string): Promise<undefined> => {
    await k.get(`/read/${key}`);
    if (runs++ === 0) leader = false; // a renewal misses renewDeadline while the first reconcile works
    await k.apply(`/write/${key}`, {}, 'fm');
    return undefined;
  };
  const running = runController('mesh', q, 1, reconcile, { log, metrics, isLeader: () => leader });
  q.add('m'); await settle();
  assert.deepEqual(sent, ['GET /read/m'], 'the write was not sent');
  assert.equal(lines.at(-1)?.msg, 'not the leader at write time; will retry while this term lasts');
  clock.advance(100); await settle();
  assert.equal(await results(metrics, 'not-leader'), 2, 'the retry found the lease still lost: refused before reconciling');
  leader = true; // the late renewal came through: the term goes on
  clock.advance(200); await settle();
  assert.equal(await results(metrics, 'ok'), 1, 'the key was not dropped');
  assert.deepEqual(sent, ['GET /read/m', 'GET /read/m', 'APPLY /write/m'], 'written once, with the lease');
  q.shutdown();
  await running;
});
