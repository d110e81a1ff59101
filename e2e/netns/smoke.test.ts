// Netns lane smoke test: hosts as network namespaces on the host kernel, joined by veth or a
// bridge; cleanup leaves nothing behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { lan, pair, reapStale, Netns } from '../lib/netns.js';

test('two namespaces joined by a veth ping each other', async (t) => {
  const [a] = await pair(t, { a: '192.0.2.1/24', b: '192.0.2.2/24' });
  const r = await a.run('ping', ['-c', '2', '-i', '0.2', '-W', '2', '192.0.2.2']);
  assert.match(r.stdout, /2 received/);
});

test('three hosts on a bridge reach each other, and nothing else', async (t) => {
  const [h0, , h2] = await lan(t, ['10.9.0.1/24', '10.9.0.2/24', '10.9.0.3/24']);
  assert.match((await h0!.run('ping', ['-c', '1', '-W', '2', '10.9.0.3'])).stdout, /1 received/);
  assert.match((await h2!.run('ping', ['-c', '1', '-W', '2', '10.9.0.2'])).stdout, /1 received/);
  // No route out: a namespace host cannot reach an address outside its LAN.
  const out = await h0!.run('ping', ['-c', '1', '-W', '1', '198.51.100.7'], { check: false });
  assert.notEqual(out.code, 0);
});

test('destroy removes the namespace and kills processes started in it', async () => {
  const ns = await Netns.create(null, 'tmp');
  const child = ns.spawn('sleep', ['60']);
  await new Promise((r) => child.once('spawn', r));
  await ns.destroy();
  assert.equal(existsSync(`/run/netns/${ns.name}`), false);
  await new Promise((r) => setTimeout(r, 100));
  assert.notEqual(child.exitCode ?? child.signalCode, null);
});

test('reapStale removes namespaces of a creator that died', async () => {
  const { execFileSync } = await import('node:child_process');
  const name = 'kt-999999-stale-0';
  execFileSync('ip', ['netns', 'add', name]);
  const gone = reapStale();
  assert.ok(gone.includes(name), `reaped ${gone.join(',')}`);
  assert.equal(existsSync(`/run/netns/${name}`), false);
});
