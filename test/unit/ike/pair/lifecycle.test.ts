// Engine lifecycle around the exchanges: adopting kernel Child SAs after a restart (make-before-
// break across restarts, DESIGN.md §5/§9), on-demand start through kernel acquires, kernel
// failures reported without half-installed state, config validation at addPeer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError } from '../../../../src/common/errors.js';
import { ExchangeType } from '../../../../src/ike/constants.js';
import type { KernelChildSaRef } from '../../../../src/ike/ports.js';
import { child, mirrored, Pair } from './harness.js';

test('adopted kernel Child SAs are kept until the new IKE SA installs their successor, then linger like a rekeyed Child SA and go keeping policies', async () => {
  const p = new Pair();
  const ref: KernelChildSaRef = { peer: 'to-bob', child: 'net', reqid: 1, inboundSpi: 0xc0000001, outboundSpi: 0xc0000002, local: '192.0.2.1', remote: '192.0.2.2' };
  p.alice.engine.adopt('to-bob', [{ ref, mode: 'tunnel', encap: null, algorithms: { kind: 'aead', suite: 'aes256gcm16' }, localTs: ['10.1.0.0/16'], remoteTs: ['10.2.0.0/16'], installedAtMs: p.clock.now() - 60_000 }]);
  assert.equal(p.alice.engine.status().peers[0]?.adoptedChildren.length, 1);
  assert.equal(p.alice.engine.status().peers[0]?.adoptedChildren[0]?.adopted, true);
  await p.connect();
  assert.equal(p.alice.engine.status().peers[0]?.adoptedChildren.length, 0);
  assert.equal(p.alice.kernel.ops('delete').length, 0, 'the peer may still send on its side of it: it lingers');
  await p.advance(10_000);
  const del = p.alice.kernel.ops('delete') as Array<{ ref: KernelChildSaRef; opts: { keepPolicies: boolean } }>;
  assert.equal(del.length, 1);
  assert.equal(del[0]?.ref.inboundSpi, 0xc0000001);
  assert.equal(del[0]?.opts.keepPolicies, true, 'the new SA uses the same reqid and policies');
  assert.ok(p.alice.events.some((e) => e.type === 'child-down' && e.reason === 'replaced'), 'p.alice.events.some((e) => e.type === "child-down" && e.reason === "replaced")');
  const order = p.alice.kernel.calls.map((c) => c.op).filter((o) => o === 'install' || o === 'delete');
  assert.deepEqual(order, ['install', 'delete'], 'make-before-break across the restart');
});

test('on-demand: start() installs trap policies and a kernel acquire starts the negotiation (DESIGN.md §3 startAction)', async () => {
  const p = new Pair({ alice: { startAction: 'on-demand' } });
  p.alice.engine.start();
  await p.net.pump();
  assert.equal(p.alice.kernel.traps.length, 1);
  assert.equal(p.alice.kernel.traps[0]?.policies[0]?.source.startAddress, '10.1.0.0');
  assert.equal(p.net.log.length, 0);
  p.alice.engine.acquire(p.alice.kernel.traps[0]!.reqid);
  await p.net.pump();
  assert.ok(mirrored(p.alice.kernel, p.bob.kernel), 'mirrored(p.alice.kernel, p.bob.kernel)');
  p.alice.engine.acquire(p.alice.kernel.traps[0]!.reqid);
  await p.net.pump();
  assert.equal(p.net.log.filter((x) => x.exchange === ExchangeType.IKE_SA_INIT).length, 2, 'a second acquire while up starts nothing');
});

test('a kernel that refuses the install is reported as an error and nothing is left behind', async () => {
  const p = new Pair();
  p.bob.kernel.failInstall = true;
  await p.connect();
  const err = p.bob.events.find((e) => e.type === 'error');
  assert.equal(err?.type === 'error' ? err.error.code : '', 'ERR_IKE_KERNEL_INSTALL');
  assert.equal(p.bob.kernel.installed.size, 0);
  assert.equal(p.bob.kernel.ops('releaseSpi').length, 1);
  assert.equal(p.alice.kernel.installed.size, 0, 'bob answered without the child, so alice installed nothing');
  assert.equal(p.alice.engine.status().peers[0]?.ike?.state, 'established');
});

test('the initiator’s kernel refusing the first Child SA: the peer’s copy is deleted (it would swallow traffic) and the child is negotiated again later', async () => {
  const p = new Pair();
  p.alice.kernel.failInstall = true;
  await p.connect();
  assert.equal(p.alice.engine.status().peers[0]?.ike?.state, 'established');
  assert.equal(p.alice.kernel.installed.size, 0);
  assert.equal(p.bob.kernel.installed.size, 0, 'alice deleted the Child SA bob had installed (INFORMATIONAL Delete)');
  assert.ok(p.net.log.some((x) => x.exchange === ExchangeType.INFORMATIONAL && x.from.address === '192.0.2.1'));
  p.alice.kernel.failInstall = false;
  await p.advance(10_000);
  assert.ok(mirrored(p.alice.kernel, p.bob.kernel), 'CREATE_CHILD_SA after the retry interval installed it on both sides');
});

test('terminate() also removes adopted Child SAs; removePeer() removes on-demand traps', async () => {
  const p = new Pair({ alice: { startAction: 'on-demand' } });
  const ref = { peer: 'to-bob', child: 'net', reqid: 1, inboundSpi: 0xc0000001, outboundSpi: 0xc0000002, local: '192.0.2.1', remote: '192.0.2.2' };
  p.alice.engine.adopt('to-bob', [{ ref, mode: 'tunnel', encap: null, algorithms: { kind: 'aead', suite: 'aes256gcm16' }, localTs: ['10.1.0.0/16'], remoteTs: ['10.2.0.0/16'], installedAtMs: 0 }]);
  p.alice.engine.start();
  await p.alice.engine.terminate('to-bob');
  const del = p.alice.kernel.ops('delete') as Array<{ opts: { keepPolicies: boolean } }>;
  assert.deepEqual(del.map((d) => d.opts.keepPolicies), [false]);
  assert.ok(p.alice.events.some((e) => e.type === 'child-down' && e.reason === 'terminated'), 'adopted child reported down');
  await p.alice.engine.removePeer('to-bob');
  assert.equal(p.alice.kernel.ops('untrap').length, 1);
  assert.equal(p.alice.engine.status().peers.length, 0);
});

test('addPeer refuses bad configs with a ConfigError naming the field', () => {
  const p = new Pair();
  const base = { name: 'x', local: { address: '192.0.2.1', id: { type: 'fqdn' as const, value: 'a' } }, remote: { address: '192.0.2.9', id: { type: 'fqdn' as const, value: 'b' } },
    auth: { method: 'psk' as const, secret: { length: 1, expose: () => new Uint8Array(1) } as never }, ike: { proposals: ['aes256gcm16-prfsha256-x25519'], rekeyTimeMs: 1 },
    children: [child()], dpd: { intervalMs: 0, action: 'clear' as const }, startAction: 'respond' as const };
  assert.throws(() => p.alice.engine.addPeer({ ...base, ike: { proposals: ['aes256gcm16-prfsha256-nope'], rekeyTimeMs: 1 } }), (e: unknown) => e instanceof ConfigError && e.path.startsWith('peers[x].ike.proposals'));
  assert.throws(() => p.alice.engine.addPeer({ ...base, local: { address: 'gw.example', id: base.local.id } }), (e: unknown) => e instanceof ConfigError && e.path === 'peers[x].local.address');
  assert.throws(() => p.alice.engine.addPeer({ ...base, children: [child({ localTs: ['10.0.0.0/40'] })] }), (e: unknown) => e instanceof ConfigError && e.path === 'peers[x].children[0].localTs[0]');
  assert.throws(() => p.alice.engine.addPeer({ ...base, children: [child({ lifeTimeMs: 10, rekeyTimeMs: 20 })] }), (e: unknown) => e instanceof ConfigError && e.path === 'peers[x].children[0].lifeTimeMs');
  assert.throws(() => p.alice.engine.initiate('nobody'), (e: unknown) => e instanceof ConfigError);
});

test('certificates from the other role: bob initiates with ECDSA certificates (RFC 7427, both roles)', async () => {
  const p = new Pair({ auth: 'cert' });
  p.bob.engine.initiate('to-alice');
  await p.net.pump();
  assert.deepEqual(p.alice.events.map((e) => e.type), ['ike-up', 'child-up']);
  assert.deepEqual(p.bob.events.map((e) => e.type), ['ike-up', 'child-up']);
});

test('a wrong PSK from the other role: alice rejects bob (RFC 7296 §2.15, both roles)', async () => {
  const p = new Pair({ alicePsk: 'something else' });
  p.bob.engine.initiate('to-alice');
  await p.net.pump();
  const a = p.alice.events.find((e) => e.type === 'error');
  const b = p.bob.events.find((e) => e.type === 'error');
  assert.equal(a?.type === 'error' ? a.error.notify : '', 'AUTHENTICATION_FAILED');
  assert.equal(b?.type === 'error' ? b.error.origin : '', 'remote');
});

test('NO_PROPOSAL_CHOSEN from the other role: bob proposes, alice refuses with both lists (RFC 7296 §2.7, both roles)', async () => {
  const p = new Pair({ ike: ['aes128-sha256-modp2048'], bobIke: ['aes256gcm16-prfsha256-x25519'] });
  p.bob.engine.initiate('to-alice');
  await p.net.pump();
  const a = p.alice.events.find((e) => e.type === 'error');
  assert.equal(a?.type === 'error' ? a.error.proposals?.local[0] : '', 'aes128-sha256-prfsha256-modp2048');
  assert.equal(a?.type === 'error' ? a.error.proposals?.remote?.length : 0, 1);
});

test('removePeer(keepHalfOpen) then addPeer under the same name, as a renegotiation replaces a config: an IKE SA the peer started and we answered completes under the new config instead of its IKE_AUTH finding no SA (RFC 7296 §2.21.4: it would be retransmitted until the initiator gives up)', async () => {
  for (const keepHalfOpen of [true, false]) {
    const p = new Pair();
    // alice's IKE_AUTH request waits while bob replaces its config for alice.
    p.net.fate = (x) => (x.exchange === ExchangeType.IKE_AUTH && !x.response ? 'hold' : 'deliver');
    p.alice.engine.initiate('to-bob');
    await p.net.pump();
    assert.equal(p.net.held.length, 1, 'IKE_SA_INIT answered, IKE_AUTH held');
    await p.bob.engine.removePeer('to-alice', { keepHalfOpen });
    p.bob.engine.addPeer({ ...p.bob.config, children: [child({ name: 'net2' }, 'bob')] });
    p.net.fate = () => 'deliver';
    p.net.releaseHeld();
    await p.net.pump();
    const up = (e: { type: string }): boolean => e.type === 'ike-up';
    if (keepHalfOpen) {
      assert.ok(p.alice.events.some(up) && p.bob.events.some(up), `both ends up: alice ${JSON.stringify(p.alice.events.map((e) => e.type))}, bob ${JSON.stringify(p.bob.events.map((e) => e.type))}`);
      assert.equal(p.bob.engine.status().peers.find((x) => x.name === 'to-alice')?.ike?.state, 'established');
    } else {
      assert.ok(!p.alice.events.some(up), 'without it the answered IKE SA is gone and IKE_AUTH finds none (the case the option exists for)');
    }
  }
});
