// Which peers a node connects to although the address rule makes it the responder: those that
// still hold an IKE SA with it while it holds none (it lost its state). src/agent/mesh/reconnect.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { peersUseOurSpec, Reconnector, staleAtPeer, type ReconnectLook } from '../../../src/agent/mesh/reconnect.js';
import type { IPsecNode, IPsecNodeSpec } from '../../../src/api/types.js';
import type { SaStateName } from '../../../src/agent/status.js';

const NOW = Date.parse('2026-12-06T10:00:00Z');
const iso = (ms: number): string => new Date(ms).toISOString();

function peerNode(name: string, aboutSelf: SaStateName | undefined, updatedMs = NOW - 10_000): Pick<IPsecNode, 'metadata' | 'status'> {
  return { metadata: { name }, status: { lastUpdateTime: iso(updatedMs), peers: aboutSelf ? [{ node: 'node-c', state: aboutSelf }] : [] } };
}
function ours(node: string, ikeState: SaStateName, startAction = 'respond'): ReconnectLook['ours'][number] {
  return { name: `mesh/${node}`, node, ikeState, startAction };
}
const look = (o: Partial<ReconnectLook>): ReconnectLook => ({ self: 'node-c', ours: [], peerNodes: [], meshSize: 3, nowMs: NOW, ...o });

test('a peer that reports an established IKE SA with us while we hold none is a candidate (node rebooted, RFC 7296 §2.4 INITIAL_CONTACT replaces its SA)', () => {
  assert.deepEqual(staleAtPeer(look({ ours: [ours('node-a', 'none'), ours('node-b', 'failed')], peerNodes: [peerNode('node-a', 'established'), peerNode('node-b', 'rekeying')] }), 180_000), ['mesh/node-a', 'mesh/node-b']);
});

test('no candidate while we hold or negotiate an SA, or initiate anyway, or the peer does not report one', () => {
  assert.deepEqual(staleAtPeer(look({ ours: [ours('node-a', 'established'), ours('node-b', 'connecting')], peerNodes: [peerNode('node-a', 'established'), peerNode('node-b', 'established')] }), 180_000), []);
  assert.deepEqual(staleAtPeer(look({ ours: [ours('node-a', 'none', 'initiate')], peerNodes: [peerNode('node-a', 'established')] }), 180_000), [], 'the initiating side connects through startInitiating');
  assert.deepEqual(staleAtPeer(look({ ours: [ours('node-a', 'none')], peerNodes: [peerNode('node-a', 'connecting'), peerNode('node-b', 'established')] }), 180_000), [], 'node-a is connecting, node-b is not our peer');
  assert.deepEqual(staleAtPeer(look({ ours: [ours('node-a', 'none')], peerNodes: [peerNode('node-a', undefined)] }), 180_000), []);
});

test('a large mesh\'s peer that lists only the peers not up (status.peersListed notUp) and expects every other node holds an SA with us when it does not list us; one behind a join (peersExpected short) does not count', () => {
  const large = (expected: number, listed: 'notUp' | 'someNotUp' = 'notUp'): Pick<IPsecNode, 'metadata' | 'status'> => ({ metadata: { name: 'node-a' }, status: { lastUpdateTime: iso(NOW - 10_000), peersListed: listed, peersExpected: expected, peers: [{ node: 'node-x', state: 'failed' }] } });
  assert.deepEqual(staleAtPeer(look({ ours: [ours('node-a', 'none')], peerNodes: [large(200)], meshSize: 201 }), 180_000), ['mesh/node-a']);
  assert.deepEqual(staleAtPeer(look({ ours: [ours('node-a', 'none')], peerNodes: [large(199)], meshSize: 201 }), 180_000), [], 'node-a has not seen every node yet');
  assert.deepEqual(staleAtPeer(look({ ours: [ours('node-a', 'none')], peerNodes: [large(200, 'someNotUp')], meshSize: 201 }), 180_000), [], 'a truncated list says nothing of the unlisted');
  assert.deepEqual(staleAtPeer(look({ ours: [ours('node-a', 'none')], peerNodes: [peerNode('node-a', undefined)], meshSize: 2 }), 180_000), [], 'a full list without us: no SA');
});

test('a stale or missing status is not believed (the peer\'s agent may be gone)', () => {
  assert.deepEqual(staleAtPeer(look({ ours: [ours('node-a', 'none')], peerNodes: [peerNode('node-a', 'established', NOW - 181_000)] }), 180_000), []);
  assert.deepEqual(staleAtPeer(look({ ours: [ours('node-a', 'none')], peerNodes: [{ metadata: { name: 'node-a' }, status: { peers: [{ node: 'node-c', state: 'established' }] } }] }), 180_000), []);
  assert.deepEqual(staleAtPeer(look({ ours: [ours('node-a', 'none')] }), 180_000), []);
});

test('Reconnector acts only when two looks confirmMs apart agree, then at most once per retryMs', () => {
  const r = new Reconnector({ confirmMs: 4_000, retryMs: 20_000, staleMs: 180_000 });
  const base = { ours: [ours('node-a', 'none')], peerNodes: [peerNode('node-a', 'established')] };
  assert.deepEqual(r.look(look({ ...base, nowMs: NOW })), [], 'first look only remembers');
  assert.deepEqual(r.look(look({ ...base, nowMs: NOW + 2_000 })), [], 'not confirmed yet');
  assert.deepEqual(r.look(look({ ...base, nowMs: NOW + 4_000 })), ['mesh/node-a']);
  assert.deepEqual(r.look(look({ ...base, nowMs: NOW + 10_000 })), [], 'tried 6 s ago');
  assert.deepEqual(r.look(look({ ...base, nowMs: NOW + 24_000 })), ['mesh/node-a'], 'the first try failed: again after retryMs');
});

test('Reconnector forgets a candidate as soon as one look disagrees (the pair came back by itself)', () => {
  const r = new Reconnector({ confirmMs: 4_000, retryMs: 20_000, staleMs: 180_000 });
  const stale = { ours: [ours('node-a', 'none')], peerNodes: [peerNode('node-a', 'established')] };
  assert.deepEqual(r.look(look({ ...stale, nowMs: NOW })), []);
  assert.deepEqual(r.look(look({ ours: [ours('node-a', 'established')], peerNodes: stale.peerNodes, nowMs: NOW + 5_000 })), []);
  assert.deepEqual(r.look(look({ ...stale, nowMs: NOW + 10_000 })), [], 'a new first look');
  assert.deepEqual(r.look(look({ ...stale, nowMs: NOW + 15_000 })), ['mesh/node-a']);
});

const TIMES = { confirmMs: 4_000, retryMs: 20_000, staleMs: 180_000 };

test('the first look after a new process\'s engine started acts on first sight: the SA the peer reports is with our previous process (an agent killed with kill -9 and restarted, where the peer initiates)', () => {
  const r = new Reconnector(TIMES);
  r.freshStart(NOW - 20);
  const stale = { ours: [ours('node-a', 'none'), ours('node-b', 'none')], peerNodes: [peerNode('node-a', 'established'), peerNode('node-b', 'established')] };
  assert.deepEqual(r.look(look({ ...stale, nowMs: NOW })), ['mesh/node-a', 'mesh/node-b']);
  assert.deepEqual(r.look(look({ ...stale, nowMs: NOW + 5_000 })), [], 'tried 5 s ago: retryMs still holds');
  assert.deepEqual(r.look(look({ ...stale, nowMs: NOW + 20_000 })), ['mesh/node-a', 'mesh/node-b'], 'then again after retryMs');
});

test('the fresh start counts for one look only, and only within confirmMs of the engine start: later candidates (a delete before the peer re-initiates) still need two looks', () => {
  const stale = { ours: [ours('node-a', 'none')], peerNodes: [peerNode('node-a', 'established')] };
  const late = new Reconnector(TIMES);
  late.freshStart(NOW - 4_000);
  assert.deepEqual(late.look(look({ ...stale, nowMs: NOW })), [], 'the engine has run confirmMs already: first look only remembers');
  assert.deepEqual(late.look(look({ ...stale, nowMs: NOW + 4_000 })), ['mesh/node-a']);

  const once = new Reconnector(TIMES);
  once.freshStart(NOW);
  assert.deepEqual(once.look(look({ ours: [ours('node-a', 'established')], peerNodes: stale.peerNodes, nowMs: NOW })), [], 'nothing stale at the first look');
  assert.deepEqual(once.look(look({ ...stale, nowMs: NOW + 1_000 })), [], 'a candidate at the second look is remembered, not acted on');
  assert.deepEqual(once.look(look({ ...stale, nowMs: NOW + 5_000 })), ['mesh/node-a']);

  const never = new Reconnector(TIMES);
  assert.deepEqual(never.look(look({ ...stale, nowMs: NOW })), [], 'no fresh start announced: two looks, as before');
});

test('the fresh start does not make a candidate of a peer that is not one: we hold or negotiate an SA with it, or its status is stale', () => {
  const r = new Reconnector(TIMES);
  r.freshStart(NOW);
  assert.deepEqual(r.look(look({ ours: [ours('node-a', 'connecting'), ours('node-b', 'none')], peerNodes: [peerNode('node-a', 'established'), peerNode('node-b', 'established', NOW - 181_000)], nowMs: NOW })), []);
});

function spec(o: { fingerprint?: string; address?: string } = {}): IPsecNodeSpec {
  return {
    endpoint: { address: o.address ?? '192.0.2.13', ikePort: 500, nattPort: 4500 },
    podCIDRs: ['10.244.3.0/24'],
    traffic: { mode: 'routed' },
    identity: { certFingerprint: o.fingerprint ?? 'aa', publicKeyFingerprint: 'bb', san: 'node-c', notAfter: '2027-01-01T00:00:00Z' },
  };
}

test('peersUseOurSpec: only the spec already in the cluster, field for field (a new certificate or address would race the peers\' update of their config for us)', () => {
  const reordered = JSON.parse(JSON.stringify({ traffic: spec().traffic, identity: spec().identity, podCIDRs: spec().podCIDRs, endpoint: spec().endpoint })) as IPsecNodeSpec;
  assert.equal(peersUseOurSpec(reordered, spec()), true, 'key order does not matter');
  assert.equal(peersUseOurSpec(spec({ fingerprint: 'old' }), spec()), false, 'a new certificate (state dir wiped)');
  assert.equal(peersUseOurSpec(spec({ address: '192.0.2.99' }), spec()), false, 'a new address');
  assert.equal(peersUseOurSpec(undefined, spec()), false, 'no IPsecNode yet (a new node)');
  assert.equal(peersUseOurSpec(spec(), undefined), false);
});
