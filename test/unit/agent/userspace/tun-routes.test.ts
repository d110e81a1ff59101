// TunRoutes (src/agent/userspace/datapath.ts): the routes into the TUN device that Child SAs of
// peers with installRoutes need, against a fake rtnetlink that records what reaches the kernel.
// Why: a route per Child SA added and deleted by device name cost four netlink round trips per
// handshake; sharing one route per destination must still route exactly what the peers name and
// delete a route only when no peer needs it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TunRoutes, type UserspaceDatapath } from '../../../../src/agent/userspace/datapath.js';
import type { RouteSpec, RtnlClient } from '../../../../src/xfrm/index.js';
import { logSink } from '../fakes.js';

function setup(): { routes: TunRoutes; calls: string[]; kernel: Map<string, RouteSpec>; dp: { isOpen: boolean; engine: object; tunName: string }; failNext: { add: boolean } } {
  const calls: string[] = [];
  const kernel = new Map<string, RouteSpec>();
  const failNext = { add: false };
  let index = 7;
  const rtnl = {
    linkIndex: async (name: string) => { calls.push(`link ${name}`); return index++; },
    addRoute: async (r: RouteSpec, replace: boolean) => {
      if (failNext.add) { failNext.add = false; throw new Error('EPERM'); }
      calls.push(`add ${r.dst} dev ${String(r.dev)}${r.src ? ` src ${r.src}` : ''}${replace ? ' replace' : ''}`); kernel.set(r.dst, r);
    },
    deleteRoute: async (r: RouteSpec) => { calls.push(`del ${r.dst} dev ${String(r.dev)}`); kernel.delete(r.dst); },
  } as unknown as RtnlClient;
  const dp = { isOpen: true, engine: {}, tunName: 'kipsec0' };
  return { routes: new TunRoutes(rtnl, dp as unknown as UserspaceDatapath, logSink().log), calls, kernel, dp, failNext };
}

test('TunRoutes: each remote subnet is routed into the TUN device by its index, looked up once per device; remove deletes them', async () => {
  const s = setup();
  await s.routes.ensure('a', ['10.2.0.0/24'], ['10.1.0.0/24']);
  await s.routes.ensure('b', ['10.3.0.1/32', '10.3.0.2/32'], ['10.1.0.0/24']);
  assert.deepEqual(s.calls, ['link kipsec0', 'add 10.2.0.0/24 dev 7 replace', 'add 10.3.0.1/32 dev 7 replace', 'add 10.3.0.2/32 dev 7 replace']);
  assert.deepEqual([...s.kernel.values()].map((r) => r.table), [254, 254, 254]);
  s.calls.length = 0;
  await s.routes.remove('b');
  assert.deepEqual(s.calls, ['del 10.3.0.1/32 dev 7', 'del 10.3.0.2/32 dev 7']);
  assert.deepEqual([...s.kernel.keys()], ['10.2.0.0/24']);
});

test('TunRoutes: a rekey (ensure again for the same peer and subnets) sends nothing; its one remove deletes the route', async () => {
  const s = setup();
  for (let i = 0; i < 3; i++) await s.routes.ensure('a', ['10.2.0.0/24'], []);
  assert.deepEqual(s.calls, ['link kipsec0', 'add 10.2.0.0/24 dev 7 replace']);
  await s.routes.remove('a');
  assert.deepEqual(s.kernel.size, 0);
  await s.routes.remove('a');
  assert.equal(s.calls.filter((c) => c.startsWith('del')).length, 1);
});

test('TunRoutes: peers naming the same subnet share its route; it goes with the last of them, not the first', async () => {
  const s = setup();
  await s.routes.ensure('a', ['10.9.0.0/16'], []);
  await s.routes.ensure('b', ['10.9.0.0/16'], []);
  assert.equal(s.calls.filter((c) => c.startsWith('add')).length, 1);
  await s.routes.remove('a');
  assert.deepEqual([...s.kernel.keys()], ['10.9.0.0/16']);
  await s.routes.remove('b');
  assert.equal(s.kernel.size, 0);
});

test('TunRoutes: one peer\'s children with different subnets: all its routes go on remove (the earlier child\'s is not forgotten)', async () => {
  const s = setup();
  await s.routes.ensure('a', ['10.2.0.0/24'], []);
  await s.routes.ensure('a', ['10.4.0.0/24'], []);
  await s.routes.remove('a');
  assert.equal(s.kernel.size, 0);
});

test('TunRoutes: a failed add is not counted, so the next ensure tries again', async () => {
  const s = setup();
  s.failNext.add = true;
  await assert.rejects(s.routes.ensure('a', ['10.2.0.0/24'], []), /EPERM/);
  await s.routes.ensure('a', ['10.2.0.0/24'], []);
  assert.deepEqual([...s.kernel.keys()], ['10.2.0.0/24']);
});

test('TunRoutes: a new TUN device (engine reopened; the old routes went with the old device) gets its routes again, by its new index', async () => {
  const s = setup();
  await s.routes.ensure('a', ['10.2.0.0/24'], []);
  s.dp.engine = {}; s.kernel.clear();
  await s.routes.ensure('a', ['10.2.0.0/24'], []);
  assert.deepEqual(s.calls, ['link kipsec0', 'add 10.2.0.0/24 dev 7 replace', 'link kipsec0', 'add 10.2.0.0/24 dev 8 replace']);
});
