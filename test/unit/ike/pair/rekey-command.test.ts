// IkeEngine.rekey: the operator's `kipsec rekey NAME [--ike] [--child]` (strongSwan's
// `swanctl --rekey`). It must queue exactly what the rekey timers queue, from either role of the
// original IKE SA: a Child SA rekey with or without PFS (RFC 7296 §1.3.3, §2.8 make-before-break),
// an IKE SA rekey whose Child SAs move to the new IKE SA (§1.3.2, §2.18), both at once, and refuse
// with a fixed error code when there is nothing it could rekey.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KipsecError } from '../../../../src/common/errors.js';
import { ExchangeType } from '../../../../src/ike/constants.js';
import { decodeMessage } from '../../../../src/ike/codec/message.js';
import type { IkeEvent } from '../../../../src/ike/ports.js';
import { child, HOUR, mirrored, Pair, type Side } from './harness.js';

// Timers far away: every rekey in these tests comes from the command.
const LONG = { rekeyTimeMs: 3 * HOUR, lifeTimeMs: 4 * HOUR };
const IKE_LONG = { proposals: ['aes256gcm16-prfsha256-x25519'], rekeyTimeMs: 4 * HOUR };

function pair(esp = 'aes256gcm16'): Pair {
  return new Pair({ alice: { ike: IKE_LONG }, bob: { ike: IKE_LONG }, aliceChildren: [child({ ...LONG, espProposals: [esp] })], bobChildren: [child({ ...LONG, espProposals: [esp] }, 'bob')] });
}
const peerOf = (s: Side): string => (s.name === 'alice' ? 'to-bob' : 'to-alice');
const ike = (s: Side) => s.engine.status().peers[0]?.ike;
const spis = (s: Side): number[] => [...s.kernel.installed.keys()].sort();
const of = <T extends IkeEvent['type']>(s: Side, type: T): Extract<IkeEvent, { type: T }>[] => s.events.filter((e): e is Extract<IkeEvent, { type: T }> => e.type === type);
const requests = (p: Pair, exchange: number) => p.net.log.filter((x) => x.exchange === exchange && !x.response);
const hexSpi = (d: Uint8Array): string => decodeMessage(d).header.initiatorSpi.toString(16).padStart(16, '0');
const code = (c: string) => (e: unknown): boolean => (e as KipsecError).code === c;

for (const role of ['alice', 'bob'] as const) {
  const label = role === 'alice' ? 'original initiator' : 'original responder';
  for (const [pfs, esp] of [['without PFS', 'aes256gcm16'], ['with PFS (x25519)', 'aes256gcm16-x25519']] as const) {
    test(`rekey(name) from the ${label} ${pfs}: one CREATE_CHILD_SA from that side, new SPIs mirrored, old SA gone after the delete delay (RFC 7296 §1.3.3, §2.8)`, async () => {
      const p = pair(esp);
      await p.connect();
      const me = p[role]; const them = role === 'alice' ? p.bob : p.alice;
      const before = spis(me);
      const started = me.engine.rekey(peerOf(me));
      assert.equal(started.ike, false);
      assert.deepEqual(started.children.map((r) => r.inboundSpi), before, 'the installed Child SA is queued');
      assert.equal(started.ikeSpis, ike(me)?.ikeSpis);
      await p.net.pump();
      const cc = requests(p, ExchangeType.CREATE_CHILD_SA);
      assert.equal(cc.length, 1);
      assert.equal(cc[0]!.from.address, role === 'alice' ? '192.0.2.1' : '192.0.2.2', 'the commanded side initiates');
      assert.equal(me.kernel.installed.size, 2, 'make-before-break: the old inbound SA stays for the delete delay');
      await p.advance(5_000);
      assert.equal(me.kernel.installed.size, 1);
      assert.equal(them.kernel.installed.size, 1);
      assert.notDeepEqual(spis(me), before);
      assert.ok(mirrored(me.kernel, them.kernel), 'mirrored(me.kernel, them.kernel)');
      for (const s of [me, them]) {
        const rk = of(s, 'child-rekeyed');
        assert.equal(rk.length, 1, `${s.name}: one child-rekeyed`);
        assert.equal(rk[0]!.suite, esp, `${s.name}: the suite names the KE method exactly when PFS was negotiated`);
        assert.equal(of(s, 'child-down').length, 0);
        assert.equal(ike(s)?.children[0]?.suite, esp);
      }
      if (esp !== 'aes256gcm16') {
        // The KE payloads themselves (encrypted on the wire): the same exchange without PFS is
        // 48 bytes shorter each way, a KE payload (8 + 32 for x25519) plus the DH transform (8).
        const base = pair();
        await base.connect();
        base[role].engine.rekey(peerOf(base[role]));
        await base.net.pump();
        const len = (q: Pair) => q.net.log.filter((x) => x.exchange === ExchangeType.CREATE_CHILD_SA).map((x) => x.datagram.length);
        assert.deepEqual(len(p).map((n, i) => n - (len(base)[i] ?? 0)), [48, 48], 'KEi in the request, KEr in the response (RFC 7296 §1.3.3)');
      }
    });
  }

  test(`rekey(name, {ike}) from the ${label}: new IKE SPIs on both sides, the commander is the new original initiator, children move without a kernel change (RFC 7296 §1.3.2, §2.18)`, async () => {
    const p = pair();
    await p.connect();
    const me = p[role]; const them = role === 'alice' ? p.bob : p.alice;
    const old = ike(me)!.ikeSpis;
    p.alice.kernel.calls.length = 0; p.bob.kernel.calls.length = 0;
    const started = me.engine.rekey(peerOf(me), { ike: true });
    assert.deepEqual({ ike: started.ike, children: started.children.length, ikeSpis: started.ikeSpis }, { ike: true, children: 0, ikeSpis: old });
    await p.net.pump();
    const now = ike(me)!;
    assert.notEqual(now.ikeSpis, old);
    assert.equal(ike(them)?.ikeSpis, now.ikeSpis);
    assert.equal(now.role, 'initiator');
    assert.equal(ike(them)?.role, 'responder');
    assert.equal(now.children.length, 1, 'the Child SA moved to the new IKE SA');
    assert.equal(ike(them)?.children.length, 1);
    assert.deepEqual(p.alice.kernel.calls.filter((c) => c.op !== 'query'), [], 'an IKE rekey changes nothing in the kernel');
    assert.deepEqual(p.bob.kernel.calls.filter((c) => c.op !== 'query'), []);
    const rq = requests(p, ExchangeType.CREATE_CHILD_SA);
    assert.equal(rq.length, 1);
    assert.equal(hexSpi(rq[0]!.datagram), old.slice(0, 16), 'the rekey request travels on the old IKE SA');
    const del = requests(p, ExchangeType.INFORMATIONAL);
    assert.equal(del.length, 1, 'the commander deletes the old IKE SA');
    assert.equal(del[0]!.from.address, rq[0]!.from.address);
    assert.equal(hexSpi(del[0]!.datagram), old.slice(0, 16));
    for (const s of [me, them]) {
      assert.deepEqual(of(s, 'ike-rekeyed').map((e) => [e.oldIkeSpis, e.ikeSpis]), [[old, now.ikeSpis]]);
      assert.equal(of(s, 'ike-down').length + of(s, 'child-down').length, 0);
    }
    // The children work on the new IKE SA: a commanded child rekey runs over it.
    const childBefore = spis(me);
    me.engine.rekey(peerOf(me), { child: true });
    await p.net.pump();
    await p.advance(5_000);
    const cc = requests(p, ExchangeType.CREATE_CHILD_SA);
    assert.equal(cc.length, 2);
    assert.equal(hexSpi(cc[1]!.datagram), now.ikeSpis.slice(0, 16), 'the child rekey runs on the new IKE SA');
    assert.notDeepEqual(spis(me), childBefore);
    assert.equal(me.kernel.installed.size, 1);
    assert.ok(mirrored(me.kernel, them.kernel), 'mirrored(me.kernel, them.kernel)');
    assert.equal(ike(me)?.state, 'established');
  });
}

test('rekey(name, {ike, child}) rekeys the IKE SA first, then the Child SA on the new IKE SA (RFC 7296 §2.18)', async () => {
  const p = pair('aes256gcm16-x25519');
  await p.connect();
  const old = ike(p.alice)!.ikeSpis;
  const before = spis(p.alice);
  const started = p.alice.engine.rekey('to-bob', { ike: true, child: true });
  assert.equal(started.ike, true);
  assert.equal(started.children.length, 1);
  await p.net.pump();
  await p.advance(5_000);
  const now = ike(p.alice)!.ikeSpis;
  assert.notEqual(now, old);
  assert.equal(ike(p.bob)?.ikeSpis, now);
  const cc = requests(p, ExchangeType.CREATE_CHILD_SA);
  assert.deepEqual(cc.map((x) => hexSpi(x.datagram)), [old.slice(0, 16), now.slice(0, 16)], 'IKE rekey on the old SA, then the child rekey on the new one');
  assert.notDeepEqual(spis(p.alice), before);
  assert.ok(mirrored(p.alice.kernel, p.bob.kernel), 'mirrored(p.alice.kernel, p.bob.kernel)');
  assert.equal(of(p.bob, 'child-rekeyed')[0]?.suite, 'aes256gcm16-x25519');
});

test('rekey refuses an unknown peer and a peer without an established IKE SA, with fixed codes', async () => {
  const p = pair();
  assert.throws(() => p.alice.engine.rekey('nope'), code('ERR_CONFIG'));
  assert.throws(() => p.alice.engine.rekey('to-bob'), (e: unknown) => code('ERR_IKE_NOT_ESTABLISHED')(e) && /is down/.test((e as Error).message));
  p.alice.engine.initiate('to-bob');
  assert.throws(() => p.alice.engine.rekey('to-bob', { ike: true }), (e: unknown) => code('ERR_IKE_NOT_ESTABLISHED')(e) && /still connecting/.test((e as Error).message));
  await p.net.pump();
  p.alice.engine.rekey('to-bob');
  await p.net.pump();
  await p.alice.engine.terminate('to-bob');
  await p.net.pump();
  assert.throws(() => p.alice.engine.rekey('to-bob'), code('ERR_IKE_NOT_ESTABLISHED'));
  assert.throws(() => p.bob.engine.rekey('to-alice', { ike: true }), code('ERR_IKE_NOT_ESTABLISHED'), 'the peer that was told to delete has nothing either');
});

test('rekey of Child SAs refuses an IKE SA without one, and a rekey already in flight (RFC 7296 §2.8)', async () => {
  // Bob's selectors do not cover alice's: the IKE SA comes up without a Child SA (TS_UNACCEPTABLE).
  const p = new Pair({ alice: { ike: IKE_LONG }, aliceChildren: [child(LONG)], bobChildren: [child({ ...LONG, localTs: ['10.9.0.0/16'] }, 'bob')] });
  await p.connect();
  assert.equal(ike(p.alice)?.state, 'established');
  assert.equal(ike(p.alice)?.children.length, 0);
  assert.throws(() => p.alice.engine.rekey('to-bob'), code('ERR_IKE_NO_CHILD_SA'));
  assert.equal(p.alice.engine.rekey('to-bob', { ike: true }).ike, true, 'the IKE SA alone can still be rekeyed');
  await p.net.pump();

  const q = pair();
  await q.connect();
  q.net.fate = (x) => (x.exchange === ExchangeType.CREATE_CHILD_SA && !x.response ? 'hold' : 'deliver');
  q.alice.engine.rekey('to-bob');
  await q.net.pump();
  assert.throws(() => q.alice.engine.rekey('to-bob'), code('ERR_IKE_REKEY_IN_PROGRESS'));
  q.net.fate = () => 'deliver';
  q.net.releaseHeld();
  await q.net.pump();
  await q.advance(5_000);
  assert.equal(of(q.alice, 'child-rekeyed').length, 1);
  assert.ok(mirrored(q.alice.kernel, q.bob.kernel), 'mirrored(q.alice.kernel, q.bob.kernel)');
});

for (const role of ['alice', 'bob'] as const) {
  test(`a peer config replaced while its SAs run (IkeEngine.addPeer) takes effect at the next Child SA rekey from the ${role === 'alice' ? 'original initiator' : 'original responder'}: the new SAs carry the new lifetimes`, async () => {
    const p = pair();
    await p.connect();
    const me = p[role];
    const shorter = { rekeyTimeMs: 60_000, lifeTimeMs: 80_000 };
    for (const s of [p.alice, p.bob]) s.engine.addPeer({ ...s.config, children: s.config.children.map((c) => ({ ...c, ...shorter })) });
    const before = new Set(spis(me));
    me.engine.rekey(peerOf(me));
    await p.net.pump();
    await p.advance(5_000);
    for (const s of [p.alice, p.bob]) {
      const now = [...s.kernel.installed.values()].filter((x) => !before.has(x.inbound.spi));
      assert.equal(now.length, 1, `${s.name}: one new Child SA`);
      assert.deepEqual([now[0]!.inbound.lifetimes.hardSec, now[0]!.outbound.lifetimes.hardSec], [80, 80], `${s.name}: the new SA's hard lifetime is the new config's`);
    }
  });
}
