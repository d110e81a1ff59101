// After a certificate change the agent re-authenticates every established mesh IKE SA, one peer at
// a time (src/agent/mesh/reauth.ts; RFC 7296 §2.8.3 make-before-break in the engine).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { reauthenticateAll } from '../../../src/agent/mesh/reauth.js';
import type { TunnelStatus } from '../../../src/agent/status.js';
import { KipsecError } from '../../../src/common/errors.js';
import type { Clock } from '../../../src/common/time.js';
import { logSink } from './fakes.js';

// systemClock's timers do not hold the event loop; the test's must.
const clock: Clock = { now: () => Date.now(), setTimer: (ms, fn) => { const t = setTimeout(fn, ms); return { cancel: () => clearTimeout(t) }; } };

function peer(name: string, ikeState: TunnelStatus['ikeState'], mesh = true): TunnelStatus {
  return { name: mesh ? `mesh/${name}` : name, ...(mesh ? { node: name } : {}), local: '192.0.2.11', remote: '192.0.2.12', startAction: 'initiate', ikeState, children: [] };
}

test('every established mesh peer gets a re-authentication; peers not established, standalone tunnels and engine refusals are skipped with the reason', async () => {
  const calls: string[] = [];
  const agent = {
    peerStatuses: () => Promise.resolve([peer('node-b', 'established'), peer('node-c', 'connecting'), peer('t1', 'established', false), peer('node-d', 'established'), peer('node-e', 'rekeying')]),
    rekey: (name: string, what: { ike: boolean; child: boolean; reauth?: boolean }) => {
      calls.push(`${name} ${JSON.stringify(what)}`);
      if (name === 'mesh/node-d') throw new KipsecError('ERR_IKE_REKEY_IN_PROGRESS', 'another IKE SA with mesh/node-d is being negotiated');
      return { tunnel: name, ikeSpis: '', ike: true, reauth: true, children: [] };
    },
  };
  const { log, lines } = logSink();
  const r = await reauthenticateAll(agent, { clock, log, spacingMs: 1, stopped: () => false, self: 'node-a', sinceMs: 0 });
  assert.deepEqual(calls, ['mesh/node-b {"ike":false,"child":false,"reauth":true}', 'mesh/node-d {"ike":false,"child":false,"reauth":true}']);
  assert.deepEqual(r.started, ['mesh/node-b']);
  assert.deepEqual(r.skipped.map((s) => s.peer), ['mesh/node-c', 'mesh/node-d', 'mesh/node-e']);
  assert.match(r.skipped[1]!.why, /being negotiated/);
  assert.ok(lines.some((l) => l.includes('re-authenticated with the new certificate')));
});

test('a stopping agent starts no further re-authentication', async () => {
  const calls: string[] = [];
  let stopped = false;
  const agent = {
    peerStatuses: () => Promise.resolve([peer('node-b', 'established'), peer('node-c', 'established')]),
    rekey: (name: string) => { calls.push(name); stopped = true; return { tunnel: name, ikeSpis: '', ike: true, children: [] }; },
  };
  await reauthenticateAll(agent, { clock, log: logSink().log, spacingMs: 1, stopped: () => stopped, self: 'node-a', sinceMs: 0 });
  assert.deepEqual(calls, ['mesh/node-b']);
});

test('of each pair the end whose name sorts first goes at once; the other waits its turn and skips a pair whose IKE SA came up after its certificate changed (both ends at once leave two IKE SAs)', async () => {
  const since = Date.now();
  const calls: Array<{ name: string; at: number }> = [];
  const t0 = Date.now();
  let round = 0;
  const agent = {
    // node-a re-authenticated a–c (as it goes first) by the time node-c looks again; a–b it did not.
    peerStatuses: () => Promise.resolve(round++ === 0
      ? [peer('node-a', 'established'), peer('node-b', 'established'), peer('node-d', 'established')]
      : [{ ...peer('node-a', 'established'), establishedAt: new Date(since + 5).toISOString() }, { ...peer('node-b', 'established'), establishedAt: new Date(since - 60_000).toISOString() }, peer('node-d', 'established')]),
    rekey: (name: string) => { calls.push({ name, at: Date.now() - t0 }); return { tunnel: name, ikeSpis: '', ike: true, reauth: true, children: [] }; },
  };
  const r = await reauthenticateAll(agent, { clock, log: logSink().log, spacingMs: 5, stopped: () => false, self: 'node-c', sinceMs: since, marginMs: 50 });
  assert.deepEqual(calls.map((c) => c.name), ['mesh/node-d', 'mesh/node-b'], 'node-d at once (node-c sorts first), node-b after the wait, node-a not at all');
  assert.ok(calls[1]!.at >= 3 * 5 + 50, `the second end waited: ${calls[1]!.at} ms`);
  assert.deepEqual(r.started, ['mesh/node-d', 'mesh/node-b']);
  assert.deepEqual(r.skipped, [{ peer: 'mesh/node-a', why: 'the peer re-authenticated it after our certificate changed' }]);
});
