// Both ends reauthenticate one IKE SA at once (src/ike/sa/reauth.ts settleReauthCollision): a CA
// rotation renews every node's certificate within seconds, so two make-before-break
// reauthentications of the same IKE SA cross on the wire. RFC 7296 has no rule for this (§2.8.1
// and §2.8.2 settle simultaneous *rekeys* by nonces); both ends apply the rule they already share
// for a simultaneous start (lifecycle.ts resolveDuplicates): the IKE SA initiated by the side with
// the lower address stays. So exactly one new IKE SA survives, the old one is deleted once, and
// neither side ever sends on a Child SA whose inbound state the other side has not installed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ExchangeType } from '../../../../src/ike/constants.js';
import type { IkeEvent } from '../../../../src/ike/ports.js';
import { ALICE, BOB, child, HOUR, mirrored, Pair, watchLoss, type Side } from './harness.js';

const LONG = { rekeyTimeMs: 3 * HOUR, lifeTimeMs: 4 * HOUR };
type Who = 'alice' | 'bob';

function pair(childCount: 1 | 2): Pair {
  const two = (who: Who) => {
    const dns = who === 'alice' ? { localTs: ['10.1.53.0/24'], remoteTs: ['10.2.53.0/24'] } : { localTs: ['10.2.53.0/24'], remoteTs: ['10.1.53.0/24'] };
    const list = [child(LONG, who), child({ ...LONG, name: 'dns', ...dns }, who)];
    return list.slice(0, childCount);
  };
  return new Pair({ auth: 'cert', aliceChildren: two('alice'), bobChildren: two('bob') });
}


const of = <T extends IkeEvent['type']>(s: Side, type: T): Extract<IkeEvent, { type: T }>[] => s.events.filter((e): e is Extract<IkeEvent, { type: T }> => e.type === type);
const peerOf = (s: Side): string => (s.name === 'alice' ? 'to-bob' : 'to-alice');

test('the loss probe sees a side sending on a Child SA the other cannot receive (it can fail)', async () => {
  const p = pair(1);
  await p.connect();
  const lost = watchLoss(p);
  const [sa] = [...p.bob.kernel.installed.values()];
  await p.bob.kernel.deleteChildSa({ peer: 'to-alice', child: sa!.child, reqid: sa!.reqid, inboundSpi: sa!.inbound.spi, outboundSpi: sa!.outbound.spi, local: sa!.inbound.destination, remote: sa!.inbound.source }, { keepPolicies: true });
  assert.equal(lost.length, 1, 'alice still sends on the SA bob just removed');
});

/** Which IKE_AUTH request of the crossed reauthentications arrives only after everything else. */
type Late = 'none' | Who;
const LATE: readonly Late[] = ['none', 'alice', 'bob'];

for (const childCount of [1, 2] as const) {
  for (const first of ['alice', 'bob'] as const) for (const late of LATE) {
    const lateText = late === 'none' ? '' : `, ${late}'s IKE_AUTH arrives after the other reauthentication finished`;
    test(`both ends reauthenticate at once (${childCount} child config${childCount === 2 ? 's' : ''}, ${first} initiated the IKE SA${lateText}): one new IKE SA survives on both sides, the lower address's, no Child SA duplicated, no packet sent that the peer cannot receive (RFC 7296 §2.8.3, §2.8.1 by analogy)`, async () => {
      const p = pair(childCount);
      p[first].engine.initiate(first === 'alice' ? 'to-bob' : 'to-alice');
      await p.net.pump();
      // From here on (a first handshake carries no traffic yet: its responder sends before the
      // initiator has installed, as in every IKE implementation).
      const lost = watchLoss(p);
      assert.ok(mirrored(p.alice.kernel, p.bob.kernel), 'mirrored before');
      const oldSpis = p.alice.engine.status().peers[0]!.ike!.ikeSpis;
      const started = p.alice.kernel.calls.length;

      // Both start before either IKE_SA_INIT arrives: the requests cross.
      p.alice.engine.rekey('to-bob', { reauth: true });
      p.bob.engine.rekey('to-alice', { reauth: true });
      if (late !== 'none') {
        const from = late === 'alice' ? ALICE : BOB;
        let held = false;
        p.net.fate = (x) => (!held && x.exchange === ExchangeType.IKE_AUTH && !x.response && x.from.address === from ? ((held = true), 'hold') : 'deliver');
        await p.net.pump();
        assert.ok(held, 'the IKE_AUTH request was held back');
        p.net.fate = () => 'deliver';
        p.net.releaseHeld();
      }
      await p.net.pump();
      await p.advance(60_000); // every hold, linger and REKEYED_SA_TIMEOUT_MS fallback has run

      for (const s of [p.alice, p.bob]) {
        const st = s.engine.status().peers[0]!.ike!;
        assert.equal(s.checkpoints.data.size, 1, `${s.name}: one IKE SA left`);
        assert.notEqual(st.ikeSpis, oldSpis, `${s.name}: the old IKE SA is gone`);
        assert.equal(st.role, s.name === 'alice' ? 'initiator' : 'responder', `${s.name}: the survivor is alice's (192.0.2.1 < 192.0.2.2)`);
        assert.equal(s.kernel.installed.size, childCount, `${s.name}: one Child SA per child config`);
        assert.deepEqual(s.kernel.removedPolicies, [], `${s.name}: no policy ever left`);
        const down = of(s, 'ike-down');
        assert.equal(down.filter((d) => d.ikeSpis === oldSpis).length, 1, `${s.name}: the old IKE SA went down once`);
        assert.equal(down.length, 2, `${s.name}: the old IKE SA and bob's redundant new one went down: ${JSON.stringify(down.map((d) => d.reason))}`);
        assert.ok(s.engine.status().peers.every((x) => x.adoptedChildren.length === 0), `${s.name}: nothing adopted`);
      }
      assert.ok(mirrored(p.alice.kernel, p.bob.kernel), 'mirrored after');
      assert.ok(p.alice.kernel.calls.length > started);
      assert.deepEqual(lost, [], 'never sent on a state the peer lacks');
      // It stays that way: the survivor rekeys as usual.
      p.alice.engine.rekey(peerOf(p.alice), { child: true });
      await p.net.pump();
      await p.advance(10_000);
      assert.ok(mirrored(p.alice.kernel, p.bob.kernel), 'mirrored after a Child SA rekey');
      assert.deepEqual(lost, []);
    });
  }
}

// Bob deletes his new IKE SA, the redundant one, while alice's survives; he holds its Child SA
// receive-only (it replaces one he already has). The Delete's answer does not say alice has her
// side: she handles each IKE SA's messages in its own queue and may answer the Delete while still
// installing. So bob sends on it once ESP arrives on it or REAUTH_OUTBOUND_HOLD_MS (5 s) has passed;
// until then his traffic leaves on his deleted SA's Child SA, which lingers on both sides.
for (const evidence of ['ESP arrives on it', 'the 5 s hold ends'] as const) {
  test(`crossed reauthentications: the side deleting its redundant IKE SA sends on the survivor's held Child SA only when ${evidence}, not on the Delete's answer (RFC 7296 §2.8.3)`, async () => {
    const p = pair(1);
    p.alice.engine.initiate('to-bob');
    await p.net.pump();
    p.alice.engine.rekey('to-bob', { reauth: true });
    p.bob.engine.rekey('to-alice', { reauth: true });
    let held = false;
    p.net.fate = (x) => (!held && x.exchange === ExchangeType.IKE_AUTH && !x.response && x.from.address === ALICE ? ((held = true), 'hold') : 'deliver');
    await p.net.pump();
    p.net.fate = () => 'deliver';
    p.net.releaseHeld();
    await p.net.pump();
    const survivor = new Set(p.bob.engine.status().peers[0]!.ike!.children.map((c) => c.ref.inboundSpi));
    const kept = [...p.bob.kernel.installed.values()].filter((sa) => survivor.has(sa.inbound.spi));
    assert.equal(kept.length, 1);
    assert.equal(kept[0]!.active, false, 'bob has the Delete\'s answer and still only receives on the survivor\'s Child SA');
    const out = [...p.bob.kernel.installed.values()].filter((sa) => sa.active && sa.outbound.spi !== kept[0]!.outbound.spi);
    assert.ok(out.length > 0 && out.every((sa) => p.alice.kernel.installed.has(sa.outbound.spi)), 'meanwhile bob sends on Child SAs alice still has');
    await p.advance(500);
    assert.equal(kept[0]!.active, false, 'no evidence yet: still held');
    if (evidence === 'ESP arrives on it') {
      p.bob.kernel.counters = { ...p.bob.kernel.counters, inboundPackets: 1n, inboundBytes: 120n };
      await p.advance(100);
    } else {
      await p.advance(4_000);
      assert.equal(kept[0]!.active, false, 'still held 4.5 s on');
      await p.advance(600);
    }
    assert.equal(kept[0]!.active, true, 'bob sends on the survivor\'s Child SA now');
    await p.advance(60_000);
    assert.equal(p.bob.kernel.installed.size, 1, 'the lingering Child SAs are gone');
    assert.ok(mirrored(p.alice.kernel, p.bob.kernel), 'mirrored after');
  });
}
