// Informer against a fake list/watch: list then watch from the list's resourceVersion, and on
// 410 Gone relist and emit deletes for objects that vanished while the watch was broken
// (the behaviour client-go's reflector and client-node's cache.ts document).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../../src/common/time.js';
import { Informer, type ListWatcher, type WatchStatus } from '../../../src/api/kube/informer.js';
import type { WatchEvent } from '../../../src/api/kube/client.js';

interface Obj { metadata: { name: string; resourceVersion?: string } }
const o = (name: string, rv: string): Obj => ({ metadata: { name, resourceVersion: rv } });

test('lists, watches from the list resourceVersion, relists on 410 and emits the deletes it missed', async () => {
  const lists: Obj[][] = [[o('a', '1'), o('b', '2')], [o('a', '5')]];
  const watchRvs: string[] = [];
  let watchNo = 0;
  let release: () => void = () => undefined;
  const lw: ListWatcher<Obj> = {
    list: async () => { const items = lists.shift() ?? []; return { items, metadata: { resourceVersion: items.length === 2 ? '2' : '5' } }; },
    watch: async (rv, onEvent: (e: WatchEvent<Obj | WatchStatus>) => void, signal) => {
      watchRvs.push(rv);
      watchNo++;
      if (watchNo === 1) {
        onEvent({ type: 'ADDED', object: o('c', '3') });
        onEvent({ type: 'ERROR', object: { kind: 'Status', code: 410, message: 'too old resource version' } });
      }
      await new Promise<void>((r) => { release = r; signal.addEventListener('abort', () => r()); });
    },
  };
  const inf = new Informer(lw, new ManualClock());
  const seen: string[] = [];
  inf.addHandlers({ onAdd: (x) => seen.push(`add ${x.metadata.name}`), onUpdate: (_a, x) => seen.push(`update ${x.metadata.name}`), onDelete: (x) => seen.push(`delete ${x.metadata.name}`) });
  const run = inf.run();
  await inf.waitForSync();
  for (let i = 0; i < 20 && watchRvs.length < 2; i++) await new Promise((r) => setImmediate(r));
  assert.deepEqual(watchRvs, ['2', '5']);
  assert.deepEqual(seen, ['add a', 'add b', 'add c', 'delete b', 'delete c', 'update a']);
  assert.deepEqual(inf.list().map((x) => x.metadata.name), ['a']);
  assert.equal(inf.stats.relistsOnGone, 1);
  inf.stop(); release();
  await run;
});

test('an HTTP 410 on watch start also relists; other errors back off on the clock and retry', async () => {
  const c = new ManualClock();
  let n = 0;
  const { KubeApiError } = await import('../../../src/api/kube/errors.js');
  const lw: ListWatcher<Obj> = {
    list: async () => ({ items: [o('a', String(++n))], metadata: { resourceVersion: String(n) } }),
    watch: async (rv, _on, signal) => {
      if (rv === '1') throw new KubeApiError(410, 'Expired', 'gone');
      if (rv === '2' && n === 2) { n = 10; throw new Error('connection reset'); }
      await new Promise<void>((r) => signal.addEventListener('abort', () => r()));
    },
  };
  const errors: string[] = [];
  const inf = new Informer(lw, c, (e) => errors.push(String(e)));
  const run = inf.run();
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
  assert.equal(inf.stats.lists, 2);
  assert.equal(errors.length, 1);
  c.advance(200);
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
  assert.equal(inf.stats.watches, 3);
  inf.stop();
  await run;
});

test('a long outage leaves no abort listener behind per retry: the backoff sleep removes its own (else a slow leak, and Node\'s MaxListenersExceededWarning after 10)', async () => {
  const { EventEmitter } = await import('node:events');
  const getEventListeners = (t: EventTarget, name: string): unknown[] => EventEmitter.getEventListeners(t, name);
  const c = new ManualClock();
  const listeners: number[] = [];
  const lw: ListWatcher<Obj> = {
    list: async () => ({ items: [], metadata: { resourceVersion: '1' } }),
    // Every watch fails at once, as while the apiserver is unreachable.
    watch: async (_rv, _on, signal) => { listeners.push(getEventListeners(signal, 'abort').length); throw new Error('connect ECONNREFUSED'); },
  };
  const inf = new Informer(lw, c, () => undefined);
  const run = inf.run();
  for (let i = 0; i < 30; i++) {
    for (let k = 0; k < 5; k++) await new Promise((r) => setImmediate(r));
    c.advance(60_000);
  }
  inf.stop();
  await run;
  assert.ok(listeners.length >= 25, `retried ${listeners.length} times`);
  assert.deepEqual([...new Set(listeners)], [0], `abort listeners at each retry: ${listeners.join(',')}`);
});
