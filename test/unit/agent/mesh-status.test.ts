// The agent's IPsecNode status (pure), its coalesced writes (a change of state goes out within
// seconds, counters alone at a slow cadence, failures back off), and the state directory's boot
// check (checkpoints of an earlier boot describe SAs the kernel no longer has).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PEERS_LISTED_ALL_MAX, PEERS_NOT_UP_MAX, computeNodeStatus, significantPart, type NodeStatusInput } from '../../../src/agent/mesh/node-status.js';
import { NodePublisher } from '../../../src/agent/mesh/publisher.js';
import { prepareStateDir } from '../../../src/agent/mesh/state-dir.js';
import type { TunnelStatus } from '../../../src/agent/status.js';
import type { KubeClient } from '../../../src/api/kube/client.js';
import type { IPsecNodeStatus } from '../../../src/api/types.js';
import { logSink } from './fakes.js';

const NOW = Date.parse('2026-12-06T10:00:00Z');

function peer(node: string, state: TunnelStatus['ikeState'], o: Partial<TunnelStatus> = {}, bytes = 1000): TunnelStatus {
  const up = state === 'established' || state === 'rekeying';
  return {
    name: `mesh/${node}`, node, local: '192.0.2.11', remote: `192.0.2.${node === 'node-b' ? 12 : 13}`, startAction: 'initiate', ikeState: state,
    ...(up ? { ikeSuite: 'aes256gcm16-prfsha384-x25519', ikeSpis: { initiator: '0102030405060708', responder: '1112131415161718' }, role: 'initiator' as const, establishedAt: '2026-12-06T09:59:00.123Z' } : {}),
    children: up ? [{ name: 'pods', state: 'installed', suite: 'aes256gcm16', mode: 'tunnel', spiIn: 'c0000001', spiOut: 'c0000002', localTs: [], remoteTs: [], bytesIn: bytes, bytesOut: bytes, packetsIn: 10, packetsOut: 10, encap: false }] : [],
    ...o,
  };
}

const input = (o: Partial<NodeStatusInput> = {}): NodeStatusInput => ({
  nowMs: NOW, datapath: 'kernel', inactive: undefined, peers: [peer('node-b', 'established'), peer('node-c', 'established')], skipped: [],
  traffic: { traffic: { mode: 'routed' }, source: 'default', message: 'no VXLAN or Geneve device on this node: routed' },
  strict: true, certNotAfterMs: NOW + 86_400_000, identityValid: true, policiesIn: true, mtu: 1500, xfrmErrors: { XfrmInNoStates: 0 }, existing: undefined, ...o,
});

test('all peers up: Ready True PeersEstablished, per-peer suites, SPIs and counters, the inner MTU the suite leaves', () => {
  const s = computeNodeStatus(input());
  assert.equal(s.peersUp, 2); assert.equal(s.peersExpected, 2);
  const ready = s.conditions?.find((c) => c.type === 'Ready');
  assert.deepEqual([ready?.status, ready?.reason, ready?.message], ['True', 'PeersEstablished', '2/2 peers established']);
  const b = s.peers!.find((p) => p.node === 'node-b')!;
  assert.deepEqual({ state: b.state, ikeSuite: b.ikeSuite, espSuite: b.espSuite, ikeSpis: b.ikeSpis, children: b.children, established: b.establishedTime, bytesIn: b.bytesIn },
    { state: 'established', ikeSuite: 'aes256gcm16-prfsha384-x25519', espSuite: 'aes256gcm16', ikeSpis: '0102030405060708_i 1112131415161718_r', children: [{ name: 'pods', mode: 'tunnel', spiIn: 'c0000001', spiOut: 'c0000002' }], established: '2026-12-06T09:59:00Z', bytesIn: 1000 });
  assert.deepEqual([s.maxInnerPacketBytes, s.espOverheadBytes], [1446, 54]);
  assert.equal(s.certificateNotAfter, '2026-12-07T10:00:00Z');
  assert.deepEqual(s.traffic, { mode: 'routed', source: 'default', message: 'no VXLAN or Geneve device on this node: routed' });
});

test('a failed and a skipped peer show in Ready\'s message with the IKE notify; an IKE SA without Child SA is not up', () => {
  const s = computeNodeStatus(input({
    peers: [peer('node-b', 'failed', { lastError: { notify: 'AUTHENTICATION_FAILED', message: 'certificate matches no pinned SHA-256', time: '2026-12-06T09:59:59.000Z' } }), peer('node-c', 'established', { children: [] })],
    skipped: [{ node: 'node-d', reason: 'it has not published its identity yet' }],
  }));
  assert.equal(s.peersUp, 0); assert.equal(s.peersExpected, 3);
  const ready = (s.conditions ?? []).find((c) => c.type === 'Ready')!;
  assert.equal(ready.reason, 'PeersNotEstablished');
  assert.match(ready.message, /0\/3 peers established; node-b: AUTHENTICATION_FAILED: certificate matches no pinned SHA-256; node-c: established; node-d: it has not published its identity yet/);
  assert.deepEqual(s.peers!.map((p) => [p.node, p.state]), [['node-b', 'failed'], ['node-c', 'connecting'], ['node-d', 'none']]);
  assert.equal(s.peers![0]!.lastError?.notify, 'AUTHENTICATION_FAILED');
});

test('a peer is up only when every Child SA its config asks for is installed (an overlay pair needs both directions)', () => {
  const half = peer('node-b', 'established', { expectedChildren: ['overlay-out', 'overlay-in'] });
  const s = computeNodeStatus(input({ peers: [{ ...half, children: half.children.map((c) => ({ ...c, name: 'overlay-out', mode: 'transport' as const })) }] }));
  assert.deepEqual([s.peersUp, s.peers![0]!.state], [0, 'connecting']);
  const both = { ...half, children: ['overlay-out', 'overlay-in'].map((name) => ({ ...half.children[0]!, name, mode: 'transport' as const })) };
  assert.deepEqual([computeNodeStatus(input({ peers: [both] })).peersUp], [1]);
});

test('not in the mesh, or no valid identity: Ready False with the reason; lastTransitionTime kept while the status stays', () => {
  const off = computeNodeStatus(input({ inactive: { reason: 'NotInMesh', message: 'IPsecMesh default\'s nodeSelector does not select this node' }, peers: [] }));
  assert.deepEqual([off.conditions![0]!.status, off.conditions![0]!.reason], ['False', 'NotInMesh']);
  const noId = computeNodeStatus(input({ identityValid: false }));
  assert.deepEqual([noId.conditions![0]!.status, noId.conditions![0]!.reason], ['False', 'IdentityNotReady']);
  const later = computeNodeStatus(input({ nowMs: NOW + 60_000, existing: computeNodeStatus(input()).conditions }));
  assert.equal(later.conditions![0]!.lastTransitionTime, '2026-12-06T10:00:00Z');
});

test('counters and the update time are not significant; a state or SPI change is', () => {
  const a = computeNodeStatus(input());
  assert.equal(significantPart(computeNodeStatus(input({ nowMs: NOW + 5_000, existing: a.conditions, peers: [peer('node-b', 'established', {}, 9999), peer('node-c', 'established')] }))), significantPart(a));
  assert.notEqual(significantPart(computeNodeStatus(input({ peers: [peer('node-b', 'rekeying'), peer('node-c', 'established')] }))), significantPart(a));
  // A gateway's tunnel report (status.tunnels, src/agent/gateway/report.ts): its counters move with traffic too.
  const gw = (bytesIn: number, childSaState = 'established') => ({ ...a, tunnels: [{ name: 'to-vpc', node: 'node-a', role: 'active', childSaState, bytesIn, packetsIn: bytesIn / 100 }] });
  assert.equal(significantPart(gw(100)), significantPart(gw(990_000)), 'tunnel counters alone do not make a write urgent');
  assert.notEqual(significantPart(gw(100)), significantPart(gw(100, 'rekeying')), 'a tunnel state change does');
});

class ManualClock {
  t = 0;
  timers: { at: number; fn: () => void; done: boolean }[] = [];
  now(): number { return this.t; }
  setTimer(ms: number, fn: () => void) { const t = { at: this.t + ms, fn, done: false }; this.timers.push(t); return { cancel: () => { t.done = true; } }; }
  async advance(ms: number) {
    this.t += ms;
    for (;;) {
      const due = this.timers.filter((t) => !t.done && t.at <= this.t).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      due.done = true; due.fn();
      await new Promise((r) => setImmediate(r));
    }
  }
}

function fakeKube(fail: () => boolean): { kube: KubeClient; writes: { path: string; body: { status?: IPsecNodeStatus } }[] } {
  const writes: { path: string; body: { status?: IPsecNodeStatus } }[] = [];
  const kube = { apply: async (path: string, body: { status?: IPsecNodeStatus }) => { if (fail()) throw new Error('503 apiserver unavailable'); writes.push({ path, body }); return {}; } } as unknown as KubeClient;
  return { kube, writes };
}

test('status writes are coalesced: the first goes out at once, a change within 2 s waits for it, counters alone wait a minute', async () => {
  const clock = new ManualClock();
  const { kube, writes } = fakeKube(() => false);
  const p = new NodePublisher({ kube, node: 'node-a', clock, log: logSink().log });
  p.offer(computeNodeStatus(input()));
  await clock.advance(0);
  assert.equal(writes.length, 1);
  assert.equal(writes[0]!.path, '/apis/kipsec.io/v1alpha1/ipsecnodes/node-a/status');
  p.offer(computeNodeStatus(input({ peers: [peer('node-b', 'rekeying'), peer('node-c', 'established')] })));
  await clock.advance(1_000);
  assert.equal(writes.length, 1, 'not yet: 2 s since the last write');
  await clock.advance(1_000);
  assert.equal(writes.length, 2);
  const conds = computeNodeStatus(input()).conditions;
  for (let i = 0; i < 10; i++) { p.offer(computeNodeStatus(input({ nowMs: NOW + i * 5_000, existing: conds, peers: [peer('node-b', 'rekeying', {}, 1000 + i), peer('node-c', 'established')] }))); await clock.advance(5_000); }
  assert.equal(writes.length, 2, 'counters alone: no write within a minute');
  await clock.advance(15_000);
  assert.equal(writes.length, 3, 'counters written after a minute');
});

test('a failing apiserver is retried with backoff, not in a loop', async () => {
  const clock = new ManualClock();
  let failing = true;
  const { kube, writes } = fakeKube(() => failing);
  const sink = logSink();
  const p = new NodePublisher({ kube, node: 'node-a', clock, log: sink.log });
  p.offer(computeNodeStatus(input()));
  await clock.advance(0);
  for (let i = 0; i < 5; i++) { p.offer(computeNodeStatus(input())); await clock.advance(500); }
  assert.ok(p.stats.failures <= 3, `${p.stats.failures} attempts in 2.5 s`);
  assert.equal(sink.lines.filter((l) => l.includes('status write failed')).length, 1, 'logged once, not per attempt');
  failing = false;
  await clock.advance(60_000);
  assert.equal(writes.length, 1);
});

test('state directory: checkpoints and reqids of an earlier boot are discarded, the identity kept; the same boot keeps everything', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kipsec-state-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const first = prepareStateDir(dir, 'boot-1');
  writeFileSync(join(first.sa, '0123456789abcdef.ikesa'), '{}', { mode: 0o600 });
  writeFileSync(join(first.sa, 'reqids.json'), '{}', { mode: 0o600 });
  writeFileSync(join(first.identity, 'node.key'), 'key', { mode: 0o600 });
  assert.equal(prepareStateDir(dir, 'boot-1').discarded, 0);
  assert.equal(readdirSync(first.sa).length, 3);
  const after = prepareStateDir(dir, 'boot-2');
  assert.equal(after.discarded, 2);
  assert.deepEqual(readdirSync(after.sa), ['boot-id']);
  assert.deepEqual(readdirSync(after.identity), ['node.key']);
});

test('a mesh of more than PEERS_LISTED_ALL_MAX peers lists only those not up (peersListed notUp), failed ones first when even those are too many (someNotUp): the object stays far below etcd\'s 1.5 MiB request limit (~3,300 full entries)', () => {
  const many = (n: number, down: number): TunnelStatus[] => Array.from({ length: n }, (_, i) => peer(`node-${String(i).padStart(4, '0')}`, i < down ? 'connecting' : 'established'));
  const small = computeNodeStatus(input({ peers: many(PEERS_LISTED_ALL_MAX, 1) }));
  assert.deepEqual([small.peers?.length, small.peersListed], [PEERS_LISTED_ALL_MAX, undefined], 'up to the limit every peer has an entry');
  const large = computeNodeStatus(input({ peers: many(5000, 3), skipped: [{ node: 'node-zzzz', reason: 'no identity yet' }] }));
  assert.deepEqual([large.peersListed, large.peersExpected, large.peersUp], ['notUp', 5001, 4997]);
  assert.deepEqual(large.peers?.map((p) => [p.node, p.state]), [['node-0000', 'connecting'], ['node-0001', 'connecting'], ['node-0002', 'connecting'], ['node-zzzz', 'none']]);
  assert.ok(JSON.stringify(large).length < 8_000, `${JSON.stringify(large).length} bytes`);
  const failed = peer('node-4999', 'failed', { lastError: { notify: 'AUTHENTICATION_FAILED', message: 'x', time: '2026-12-06T09:59:59.000Z' } });
  const worst = computeNodeStatus(input({ peers: [...many(4999, PEERS_NOT_UP_MAX + 50), failed] }));
  assert.equal(worst.peersListed, 'someNotUp');
  assert.equal(worst.peers?.length, PEERS_NOT_UP_MAX);
  assert.ok(worst.peers?.some((p) => p.node === 'node-4999'), 'the failed peer is listed although it sorts last');
});
