// A `kill -9` in every waiting state of a rekey, from both roles (issue 14, item 2): each exchange
// of a Child SA rekey (RFC 7296 §1.3.3, §2.8) and of an IKE SA rekey (§1.3.2, §2.18) is frozen at
// one datagram — the CREATE_CHILD_SA request, its response, the Delete of the old SA, the Delete's
// response — or caught while the old Child SA lingers after it, and the initiator (alice) or the
// responder (bob) is killed there; then the same for simultaneous rekeys (§2.8.1). The restarted
// engine must resume from its checkpoints (DESIGN.md §9): no IKE_SA_INIT, nothing lost or
// adopted, one mirrored Child SA pair sending both ways at the end, and no policy removed at any
// moment (a removed policy lets traffic leave in clear).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ExchangeType } from '../../../../src/ike/constants.js';
import type { IkeEvent } from '../../../../src/ike/ports.js';
import { ALICE, child, HOUR, mirrored, Pair, type Packet, type Side } from './harness.js';

type Kind = 'child' | 'ike';
type Who = 'alice' | 'bob';

/** The datagram an exchange is frozen at; everything before it was delivered. */
const PHASES = {
  /** Initiator: request sent, response not received. Responder: has not seen it. */
  'request in flight': (x: Packet) => x.exchange === ExchangeType.CREATE_CHILD_SA && !x.response,
  /** Initiator: response not received. Responder: new SA installed receive-only, waiting for the Delete. */
  'response in flight': (x: Packet) => x.exchange === ExchangeType.CREATE_CHILD_SA && x.response,
  /** Initiator: Delete of the old SA sent, not answered. Responder: still waiting for the Delete. */
  'Delete in flight': (x: Packet) => x.exchange === ExchangeType.INFORMATIONAL && !x.response,
  /** Initiator: Delete not answered. Responder: switched over, the old inbound state lingers. */
  'Delete response in flight': (x: Packet) => x.exchange === ExchangeType.INFORMATIONAL && x.response,
  /** Both: the exchange is over; the old Child SA's inbound state lingers (rekeyDeleteDelayMs). */
  'old SA lingering after the rekey': () => false,
} as const;
type Phase = keyof typeof PHASES;

/**
 * Alice's rekey timer fires first (at 1 h), so alice initiates and bob responds. DPD is off so
 * that the only INFORMATIONAL exchange before the crash is the rekey's Delete.
 */
function pairFor(kind: Kind): Pair {
  const dpd = { intervalMs: 0, action: 'restart' } as const;
  if (kind === 'child') {
    return new Pair({
      alice: { dpd }, bob: { dpd },
      aliceChildren: [child({ rekeyTimeMs: HOUR, lifeTimeMs: 3 * HOUR })],
      bobChildren: [child({ rekeyTimeMs: 2 * HOUR, lifeTimeMs: 3 * HOUR }, 'bob')],
    });
  }
  const ike = (rekeyTimeMs: number) => ({ proposals: ['aes256gcm16-prfsha256-x25519'], rekeyTimeMs });
  return new Pair({
    alice: { dpd, ike: ike(HOUR) }, bob: { dpd, ike: ike(8 * HOUR) },
    aliceChildren: [child({ rekeyTimeMs: 10 * HOUR, lifeTimeMs: 11 * HOUR })],
    bobChildren: [child({ rekeyTimeMs: 10 * HOUR, lifeTimeMs: 11 * HOUR }, 'bob')],
  });
}

const ike = (s: Side) => s.engine.status().peers[0]!.ike;

for (const kind of ['child', 'ike'] as const) {
  for (const phase of Object.keys(PHASES) as Phase[]) {
    for (const who of ['alice', 'bob'] as const) {
      const role = who === 'alice' ? 'initiator' : 'responder';
      test(`${kind === 'child' ? 'Child SA' : 'IKE SA'} rekey, ${role} killed with the ${phase}: resumes, one mirrored Child SA pair, no policy removed (RFC 7296 ${kind === 'child' ? '§2.8' : '§2.18'}, DESIGN.md §9)`, async () => {
        await crashDuringRekey(kind, phase, who);
      });
    }
  }
}

async function crashDuringRekey(kind: Kind, phase: Phase, who: Who): Promise<void> {
  const p = pairFor(kind);
  await p.connect();
  const childSpisBefore = [...p.alice.kernel.installed.keys()];
  const ikeSpisBefore = ike(p.alice)!.ikeSpis;
  const events: IkeEvent[] = [];
  const keep = (s: Side): void => { events.push(...s.events); };

  const frozen = PHASES[phase];
  p.net.fate = (x) => (frozen(x) ? 'hold' : 'deliver');
  await p.advance(HOUR);
  assert.equal(p.net.held.length, phase === 'old SA lingering after the rekey' ? 0 : 1, `datagrams frozen (${phase}): ${p.net.held.length}`);
  assert.equal(p.net.log.filter((x) => x.exchange === ExchangeType.CREATE_CHILD_SA && !x.response)[0]?.from.address, ALICE, 'alice initiates the rekey');

  // Killed: datagrams to it are lost; the one it had sent is still on its way.
  keep(p[who]);
  const victim = who === 'alice' ? ALICE : p.bob.config.local.address;
  const inFlight = p.net.held.filter((x) => x.to.address !== victim);
  p.net.held = [];
  p.net.fate = () => 'deliver';
  const logStart = p.net.log.length;
  await p.crash(who);
  p.net.queue.push(...inFlight);
  await p.net.pump();
  const results = await p.revive(who);
  for (const r of results) {
    assert.equal(r.outcome, 'resumed', JSON.stringify(r));
    if (r.outcome === 'resumed') assert.deepEqual(r.lost, [], `checkpoint ${r.id}: no Child SA lost`);
  }
  assert.ok(results.length > 0, 'something to resume');
  assert.deepEqual(p[who].engine.status().peers[0]!.adoptedChildren, [], 'every Child SA in the kernel was taken over, none adopted');

  // Retransmissions (4 s), the lingering inbound state (5 s), a missing Delete (30 s), and the
  // retransmission limit (≈165 s) of a Delete the peer processed while we were down: it answers
  // nothing on an IKE SA it has deleted, and ours goes when the retransmissions give up.
  await p.advance(200_000);
  keep(p.alice); keep(p.bob);

  assert.equal(p.net.log.slice(logStart).filter((x) => x.exchange === ExchangeType.IKE_SA_INIT).length, 0, 'resumed, not negotiated again');
  for (const s of [p.alice, p.bob]) {
    assert.equal(s.kernel.installed.size, 1, `${s.name}: one Child SA in the kernel, got SPIs ${[...s.kernel.installed.keys()].map((x) => x.toString(16)).join(', ')}`);
    assert.ok([...s.kernel.installed.values()].every((c) => c.active), `${s.name}: the Child SA sends`);
    assert.deepEqual(s.kernel.removedPolicies, [], `${s.name}: no policy removed`);
    assert.equal(s.checkpoints.data.size, 1, `${s.name}: one checkpoint, the live IKE SA's`);
  }
  assert.ok(mirrored(p.alice.kernel, p.bob.kernel), 'the Child SAs mirror each other');
  if (kind === 'child') assert.ok(!childSpisBefore.some((spi) => p.alice.kernel.installed.has(spi)), 'the rekey completed: the new Child SA is the one left');
  else {
    assert.notEqual(ike(p.alice)!.ikeSpis, ikeSpisBefore, 'the IKE rekey completed');
    assert.equal(ike(p.alice)!.ikeSpis, ike(p.bob)!.ikeSpis);
  }
  const downs = events.filter((e) => (e.type === 'ike-down' && e.reason !== 'rekeyed') || e.type === 'child-down');
  assert.deepEqual(downs, [], 'nothing went down');
}

test('a resumed rekey responder whose Delete never comes switches over on its own after REKEYED_SA_TIMEOUT_MS, as before the crash (RFC 7296 §2.8, child-tasks.ts awaitPeerSwitch)', async () => {
  // The switch timer dies with the process; restore.ts arms it again for a rekey still waiting.
  const p = pairFor('child');
  await p.connect();
  p.net.fate = (x) => (x.exchange === ExchangeType.CREATE_CHILD_SA && x.response ? 'hold' : 'deliver');
  await p.advance(HOUR);
  p.net.held = [];
  await p.crash('bob');
  // Alice never gets the answer: her Delete never comes, and bob must not wait for it forever.
  p.net.fate = (x) => (x.exchange === ExchangeType.CREATE_CHILD_SA && x.response ? 'drop' : 'deliver');
  await p.revive('bob');
  const [, fresh] = [...p.bob.kernel.installed.values()];
  assert.equal(fresh?.active, false, 'the new Child SA is resumed receive-only');
  await p.advance(29_000);
  assert.equal(fresh.active, false, 'still waiting for the Delete');
  await p.advance(2_000);
  assert.equal(fresh.active, true, 'sends on the new Child SA after 30 s');
  assert.deepEqual(p.bob.kernel.removedPolicies, []);
});

for (const kind of ['child', 'ike'] as const) {
  test(`simultaneous ${kind === 'child' ? 'Child SA' : 'IKE SA'} rekeys, either side killed before the answer to its own request and the peer's Delete: the resumed side still applies the nonce rule (RFC 7296 §2.8.1)`, async () => {
    // Each side answered the peer's request while its own was in flight; what it learnt then (the
    // peer's new SA and its nonces) decides, when its own answer comes, whose SA is redundant. It
    // is in the checkpoint (ChildCheckpoint.collision, IkeSaCheckpoint.ikeCollision): without it
    // the resumed loser kept its redundant SA as well (Child SA) or took its own new IKE SA for
    // the winner (IKE SA). The seeds make each side lose under some order.
    const losers = new Set<Who>();
    for (const seeds of [[1, 2], [3, 4], [2, 1], [22, 11]] as const) {
      for (const who of ['alice', 'bob'] as const) {
        const at = `seeds ${seeds.join(',')}, ${who} killed`;
        const dpd = { intervalMs: 0, action: 'restart' } as const;
        const ikeConfig = { proposals: ['aes256gcm16-prfsha256-x25519'], rekeyTimeMs: HOUR };
        const long = { rekeyTimeMs: 3 * HOUR, lifeTimeMs: 4 * HOUR };
        const p = kind === 'child'
          ? new Pair({ seeds, alice: { dpd }, bob: { dpd } })
          : new Pair({ seeds, alice: { dpd, ike: ikeConfig }, bob: { dpd, ike: ikeConfig }, aliceChildren: [child(long)], bobChildren: [child(long, 'bob')] });
        await p.connect();
        const victim = p[who].config.local.address;
        p.net.fate = (x) => (x.to.address === victim && ((x.exchange === ExchangeType.CREATE_CHILD_SA && x.response) || (x.exchange === ExchangeType.INFORMATIONAL && !x.response)) ? 'hold' : 'deliver');
        await p.advance(HOUR);
        assert.equal(p.net.held.length, 2, `${at}: the answer to its request and the peer's Delete are frozen`);
        p.net.held = []; // lost with the process
        p.net.fate = () => 'deliver';
        const logStart = p.net.log.length;
        const results = await p.restart(who);
        assert.ok(results.every((r) => r.outcome === 'resumed' && r.lost.length === 0), `${at}: ${JSON.stringify(results)}`);
        await p.advance(300_000);
        assert.equal(p.net.log.slice(logStart).filter((x) => x.exchange === ExchangeType.IKE_SA_INIT).length, 0, `${at}: resumed, not negotiated again`);
        for (const s of [p.alice, p.bob]) {
          assert.equal(s.kernel.installed.size, 1, `${at}: ${s.name} holds one Child SA`);
          assert.ok([...s.kernel.installed.values()].every((c) => c.active), `${at}: ${s.name} sends on it`);
          assert.deepEqual(s.kernel.removedPolicies, [], `${at}: ${s.name} removed no policy`);
          assert.equal(s.checkpoints.data.size, 1, `${at}: ${s.name} has one checkpoint`);
        }
        assert.ok(mirrored(p.alice.kernel, p.bob.kernel), `${at}: mirrored`);
        assert.equal(ike(p.alice)?.ikeSpis, ike(p.bob)?.ikeSpis, `${at}: one IKE SA`);
        // The loser released the SPI of its redundant Child SA / is the responder of the surviving IKE SA.
        if (kind === 'child') { for (const s of [p.alice, p.bob]) if (s.kernel.ops('releaseSpi').length > 0) losers.add(s.name as Who); }
        else losers.add(ike(p.alice)?.role === 'responder' ? 'alice' : 'bob');
      }
    }
    assert.deepEqual([...losers].sort(), ['alice', 'bob'], 'each side lost under some nonce order');
  });
}
