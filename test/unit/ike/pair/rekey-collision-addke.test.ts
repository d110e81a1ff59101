// Simultaneous rekeys (RFC 7296 §2.8.1) of a Child SA whose proposal has an additional key
// exchange (RFC 9370 §2.2.2: CREATE_CHILD_SA, then IKE_FOLLOWUP_KE), with the requests crossing at
// each point of the two chains. As strongSwan does: both CREATE_CHILD_SA exchanges done, the four
// nonces decide before any IKE_FOLLOWUP_KE — the loser abandons its chain (nothing of it was
// installed on either side), the winner drops its run for the loser's and completes its own; a
// rekey request that meets an IKE_FOLLOWUP_KE of ours already under way is answered
// TEMPORARY_FAILURE, and the peer's chain then replaces the SA without a retry.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ExchangeType, NotifyError, NotifyStatus } from '../../../../src/ike/constants.js';
import type { IkeEvent } from '../../../../src/ike/ports.js';
import { REKEY_RETRY_MS } from '../../../../src/ike/sa/defaults.js';
import { inject, intercept, openFrom, reseal } from './forge.js';
import { ALICE, BOB, child, mirrored, Pair, watchLoss, type Packet, type Side } from './harness.js';

const PFS = 'aes256gcm16-x25519-ke1_mlkem768';
const HYBRID = 'aes256gcm16-prfsha384-x25519-ke1_mlkem768';
const C = ExchangeType.CREATE_CHILD_SA; const F = ExchangeType.IKE_FOLLOWUP_KE; const INFO = ExchangeType.INFORMATIONAL;
const SEEDS = [[1, 2], [3, 4], [5, 6], [7, 8], [9, 10], [11, 12]] as const;

function pair(seeds: readonly [number, number]): Pair {
  // No DPD: every INFORMATIONAL request below is a Delete.
  const dpd = { intervalMs: 0, action: 'restart' } as const;
  return new Pair({ seeds, ike: [HYBRID], alice: { dpd }, bob: { dpd }, aliceChildren: [child({ espProposals: [PFS] }, 'alice')], bobChildren: [child({ espProposals: [PFS] }, 'bob')] });
}

/** Who sent each request since `n`, as [exchange, sender]. */
function requests(p: Pair, n: number): Array<[number, string]> {
  const out: Array<[number, string]> = [];
  let last = '';
  for (const x of p.net.log.slice(n)) {
    const key = `${x.exchange}/${x.response}/${x.messageId}/${x.from.address}`;
    if (x.response || key === last) continue; // SKF fragments of one message count once
    last = key;
    out.push([x.exchange, x.from.address === ALICE ? 'alice' : 'bob']);
  }
  return out;
}

/** Records which side answered a CREATE_CHILD_SA with N(TEMPORARY_FAILURE). */
function watchTemporaryFailure(p: Pair): string[] {
  const seen: string[] = [];
  p.net.onSend = (x: Packet) => {
    if (x.exchange !== C || !x.response) return;
    const sender = x.from.address === ALICE ? p.alice : p.bob;
    if (openFrom(sender, x.datagram).has(NotifyError.TEMPORARY_FAILURE)) seen.push(sender.name);
  };
  return seen;
}

const bad = (events: readonly IkeEvent[]): IkeEvent[] => events.filter((e) => e.type === 'error' || e.type === 'child-down' || e.type === 'ike-down');

/** One Child SA pair at the end, mirrored, one rekey event a side, nothing lost, no error. */
function assertOnePair(p: Pair, at: string, lost: readonly string[]): void {
  for (const s of [p.alice, p.bob]) {
    assert.equal(s.kernel.installed.size, 1, `${at}: ${s.name} holds one Child SA`);
    assert.deepEqual(bad(s.events), [], `${at}: ${s.name}: no error, no child-down`);
    assert.equal(s.events.filter((e) => e.type === 'child-rekeyed').length, 1, `${at}: ${s.name}: one rekey`);
  }
  assert.ok(mirrored(p.alice.kernel, p.bob.kernel), `${at}: mirrored`);
  assert.deepEqual([...p.alice.kernel.removedPolicies, ...p.bob.kernel.removedPolicies], [], `${at}: no policy removed`);
  assert.deepEqual(lost, [], `${at}: neither side sent on a Child SA the other could not receive`);
}

/**
 * Both sides rekey at once and the CREATE_CHILD_SA requests cross: one IKE_FOLLOWUP_KE chain (the
 * winner's), no retry, the winner deletes the old SA, no TEMPORARY_FAILURE. Returns who won.
 */
async function crossRekeys(p: Pair, rekey: { readonly child: true } | { readonly ike: true }, at: string): Promise<{ winner: Side; loser: Side }> {
  const tf = watchTemporaryFailure(p);
  const n = p.net.log.length;
  p.alice.engine.rekey('to-bob', rekey);
  p.bob.engine.rekey('to-alice', rekey);
  await p.net.pump();
  await p.advance(60_000);
  /* CREATE_CHILD_SA each way (both answered with N(ADDITIONAL_KEY_EXCHANGE)), the winner's IKE_FOLLOWUP_KE, its INFORMATIONAL {D(old SA)} */
  const reqs = requests(p, n);
  const chain = reqs.filter(([x]) => x === F);
  assert.equal(chain.length, 1, `${at}: one IKE_FOLLOWUP_KE chain: ${JSON.stringify(reqs)}`);
  const winner = chain[0]![1] === 'alice' ? p.alice : p.bob;
  assert.deepEqual(reqs.map(([x]) => x), [C, C, F, INFO], `${at}: no retry`);
  assert.deepEqual(reqs.filter(([x]) => x === INFO).map(([, s]) => s), [winner.name], `${at}: the winner deletes the old SA`);
  assert.deepEqual(tf, [], `${at}: no TEMPORARY_FAILURE`);
  return { winner, loser: winner === p.alice ? p.bob : p.alice };
}

const installs = (s: Side): number => s.kernel.ops('install').length;

test('RFC 9370 §2.2.2, RFC 7296 §2.8.1: both sides rekey a Child SA with ke1_mlkem768 and the CREATE_CHILD_SA requests cross — the nonces of the two CREATE_CHILD_SA exchanges decide at once, the loser sends no IKE_FOLLOWUP_KE and installs nothing of its own, no TEMPORARY_FAILURE, one pair remains', async () => {
  const losers = new Set<string>();
  for (const seeds of SEEDS) {
    const p = pair(seeds);
    await p.connect();
    const lost = watchLoss(p);
    const before = [installs(p.alice), installs(p.bob)];
    const at = `seeds ${seeds.join(',')}`;
    const { winner, loser } = await crossRekeys(p, { child: true }, at);
    losers.add(loser.name);
    assert.deepEqual([installs(p.alice) - before[0]!, installs(p.bob) - before[1]!], [1, 1], `${at}: only the winner's SA is installed, on both sides`);
    // Each released one SPI: the loser its offer's, the winner the one it allocated to answer the loser.
    assert.equal(loser.kernel.ops('releaseSpi').length, 1, `${at}: the loser released its offer's SPI`);
    assert.equal(winner.kernel.ops('releaseSpi').length, 1, `${at}: the winner released the SPI of its answer to the loser`);
    assertOnePair(p, at, lost);
    // The next rekey still works.
    p.alice.engine.rekey('to-bob', { child: true });
    await p.net.pump();
    await p.advance(10_000);
    assert.ok(mirrored(p.alice.kernel, p.bob.kernel), `${at}: the next rekey is mirrored`);
    assert.equal(p.alice.kernel.installed.size, 1);
  }
  assert.deepEqual([...losers].sort(), ['alice', 'bob'], 'both branches of the nonce rule ran');
});

// The same for the IKE SA (RFC 7296 §2.8.2 applies §2.8.1's rule to IKE SAs): the loser's new IKE
// SA is never registered on either side; the winner's takes the Child SAs and deletes the old one.
function ikePair(seeds: readonly [number, number]): Pair {
  const dpd = { intervalMs: 0, action: 'restart' } as const;
  return new Pair({ seeds, ike: [HYBRID], alice: { dpd }, bob: { dpd } });
}

const ikeSpis = (s: Side): string | undefined => s.engine.status().peers[0]!.ike?.ikeSpis;

/** One IKE SA a side, the same, hybrid; one ike-rekeyed a side; Child SAs intact and mirrored. */
function assertOneIkeSa(p: Pair, at: string, before: string | undefined, lost: readonly string[]): void {
  for (const s of [p.alice, p.bob]) {
    assert.equal(s.engine.status().peers[0]!.ike!.state, 'established', `${at}: ${s.name}`);
    assert.notEqual(ikeSpis(s), before, `${at}: ${s.name} rekeyed`);
    assert.equal(s.engine.status().peers[0]!.ike!.suite, HYBRID, `${at}: ${s.name}: the new IKE SA is hybrid`);
    assert.equal(s.checkpoints.data.size, 1, `${at}: ${s.name} holds one IKE SA`);
    assert.deepEqual(bad(s.events), [], `${at}: ${s.name}: no error, no ike-down`);
    assert.equal(s.events.filter((e) => e.type === 'ike-rekeyed').length, 1, `${at}: ${s.name}: one rekey`);
    assert.equal(s.kernel.installed.size, 1, `${at}: ${s.name}: the Child SA is untouched`);
  }
  assert.equal(ikeSpis(p.alice), ikeSpis(p.bob), `${at}: the same IKE SA on both sides`);
  assert.ok(mirrored(p.alice.kernel, p.bob.kernel), `${at}: mirrored`);
  assert.deepEqual(lost, [], `${at}: nothing lost`);
}

test('RFC 9370 §2.2.2, RFC 7296 §2.8.2/§2.8.1: both sides rekey the hybrid IKE SA and the CREATE_CHILD_SA requests cross — the nonces of the two CREATE_CHILD_SA exchanges decide at once, only the winner runs IKE_FOLLOWUP_KE, no TEMPORARY_FAILURE, one new IKE SA on both sides', async () => {
  const losers = new Set<string>();
  for (const seeds of SEEDS) {
    const p = ikePair(seeds);
    await p.connect();
    const lost = watchLoss(p);
    const before = ikeSpis(p.alice);
    const at = `seeds ${seeds.join(',')}`;
    const { loser } = await crossRekeys(p, { ike: true }, at);
    losers.add(loser.name);
    assertOneIkeSa(p, at, before, lost);
    // The new IKE SA works: a Child SA rekey on it.
    p.bob.engine.rekey('to-alice', { child: true });
    await p.net.pump();
    await p.advance(10_000);
    assert.ok(mirrored(p.alice.kernel, p.bob.kernel), `${at}: a Child SA rekey on the new IKE SA`);
  }
  assert.deepEqual([...losers].sort(), ['alice', 'bob'], 'both branches of the nonce rule ran');
});

// The two scenarios below, for the Child SA and for the IKE SA alike.
interface Kind {
  readonly what: string;
  readonly rfc: string;
  make(seeds: readonly [number, number]): Pair;
  readonly rekey: { readonly child: true } | { readonly ike: true };
  /** One SA of this kind left on both sides, mirrored, nothing lost (`before`: the IKE SPIs before). */
  done(p: Pair, at: string, before: string | undefined, lost: readonly string[]): void;
}
const KINDS: readonly Kind[] = [
  { what: 'the Child SA', rfc: 'RFC 7296 §2.8.1', make: pair, rekey: { child: true }, done: (p, at, _before, lost) => assertOnePair(p, at, lost) },
  { what: 'the hybrid IKE SA', rfc: 'RFC 7296 §2.8.2/§2.8.1', make: ikePair, rekey: { ike: true }, done: assertOneIkeSa },
];

for (const k of KINDS) {
  for (const [first, second] of [['alice', 'bob'], ['bob', 'alice']] as const) {
    for (const order of ['TEMPORARY_FAILURE first', 'IKE_FOLLOWUP_KE first'] as const) {
      test(`RFC 9370 §2.2.2, RFC 7296 §2.25: ${second}'s rekey of ${k.what} reaches ${first} while ${first}'s IKE_FOLLOWUP_KE for it is out — ${first} answers TEMPORARY_FAILURE, ${second} (which answered ${first}'s CREATE_CHILD_SA) takes ${first}'s new SA as the successor (${order}), no retry, one SA remains`, async () => {
        const p = k.make([1, 2]);
        await p.connect();
        const lost = watchLoss(p);
        const tf = watchTemporaryFailure(p);
        const before = ikeSpis(p.alice);
        const n = p.net.log.length;
        const from = (s: string) => (x: Packet) => x.from.address === (s === 'alice' ? ALICE : BOB);
        // The second's CREATE_CHILD_SA request is held until the first's IKE_FOLLOWUP_KE is out.
        p.net.fate = (x) => (!x.response && ((x.exchange === C && from(second)(x)) || (x.exchange === F && from(first)(x))) ? 'hold' : 'deliver');
        p[first].engine.rekey(first === 'alice' ? 'to-bob' : 'to-alice', k.rekey);
        p[second].engine.rekey(second === 'alice' ? 'to-bob' : 'to-alice', k.rekey);
        await p.net.pump();
        const ccsa = p.net.held.filter((x) => x.exchange === C); const fke = p.net.held.filter((x) => x.exchange === F);
        assert.deepEqual([ccsa.length, fke.length > 0], [1, true], 'held: the second\'s CREATE_CHILD_SA, then the first\'s IKE_FOLLOWUP_KE (in fragments)');
        p.net.fate = () => 'deliver';
        if (order === 'TEMPORARY_FAILURE first') {
          // The refusal reaches the second before the first's chain ends there.
          p.net.held = ccsa;
          p.net.releaseHeld(false);
          await p.net.pump();
          assert.deepEqual(tf, [first], `${first} answered TEMPORARY_FAILURE`);
          p.net.held = fke;
        }
        p.net.releaseHeld(false);
        await p.net.pump();
        await p.advance(60_000);
        const reqs = requests(p, n);
        /* CREATE_CHILD_SA each way (the second's answered N(TEMPORARY_FAILURE)), the first's IKE_FOLLOWUP_KE, its Delete of the old SA; no retry */
        assert.deepEqual(reqs.map(([x]) => x).sort(), [C, C, F, INFO].sort(), JSON.stringify(reqs));
        assert.deepEqual(reqs.filter(([x]) => x === F || x === INFO).map(([, s]) => s), [first, first]);
        assert.deepEqual(tf, [first], `only ${first} answered TEMPORARY_FAILURE`);
        k.done(p, `${order}, ${first} first`, before, lost);
      });
    }
  }

  for (const held of ['alice', 'bob'] as const) {
    test(`RFC 9370 §2.2.2, ${k.rfc}: crossed rekeys of ${k.what} with ke1_mlkem768 where the answer to ${held}'s CREATE_CHILD_SA is delayed past the winner's IKE_FOLLOWUP_KE — the nonces decide the same on both sides, one SA remains, nothing lost`, async () => {
      for (const seeds of SEEDS) {
        const p = k.make(seeds);
        await p.connect();
        const lost = watchLoss(p);
        const tf = watchTemporaryFailure(p);
        const before = ikeSpis(p.alice);
        const n = p.net.log.length;
        const to = held === 'alice' ? ALICE : BOB;
        p.net.fate = (x) => (x.exchange === C && x.response && x.to.address === to ? 'hold' : 'deliver');
        p.alice.engine.rekey('to-bob', k.rekey);
        p.bob.engine.rekey('to-alice', k.rekey);
        await p.net.pump();
        assert.equal(p.net.held.length, 1, 'the answer is held');
        p.net.fate = () => 'deliver';
        p.net.releaseHeld();
        await p.net.pump();
        await p.advance(60_000);
        const at = `${held}'s answer held, seeds ${seeds.join(',')}`;
        const reqs = requests(p, n);
        assert.equal(reqs.filter(([x]) => x === F).length, 1, `${at}: one IKE_FOLLOWUP_KE chain: ${JSON.stringify(reqs)}`);
        assert.equal(reqs.filter(([x]) => x === C).length, 2, `${at}: no retry`);
        assert.deepEqual(tf, [], `${at}: no TEMPORARY_FAILURE`);
        k.done(p, at, before, lost);
      }
    });
  }
}

// Rekeys of different SAs at once: the IKE SA holds one IKE_FOLLOWUP_KE run, so a request that
// needs one while ours may start one is refused (RFC 7296 §2.25) instead of having its run dropped
// when our answer comes (which its IKE_FOLLOWUP_KE then met as STATE_NOT_FOUND).
const H = 3_600_000;
function twoChildPair(times: { aliceNet: number; aliceDns: number; bobNet: number; bobDns: number }): Pair {
  const dpd = { intervalMs: 0, action: 'restart' } as const;
  const dns = (side: 'alice' | 'bob', rekeyTimeMs: number) => child({ name: 'dns', localTs: [side === 'alice' ? '10.1.0.53/32' : '10.2.0.53/32'], remoteTs: [side === 'alice' ? '10.2.0.53/32' : '10.1.0.53/32'], espProposals: [PFS], rekeyTimeMs, lifeTimeMs: 4 * H }, side);
  const net = (side: 'alice' | 'bob', rekeyTimeMs: number) => child({ espProposals: [PFS], rekeyTimeMs, lifeTimeMs: 4 * H }, side);
  return new Pair({
    ike: [HYBRID], alice: { dpd }, bob: { dpd },
    aliceChildren: [net('alice', times.aliceNet), dns('alice', times.aliceDns)], bobChildren: [net('bob', times.bobNet), dns('bob', times.bobDns)],
  });
}

test('RFC 9370 §2.2.2, RFC 7296 §2.25: alice rekeys one Child SA and bob another, both with ke1_mlkem768, at the same instant — each answers the other TEMPORARY_FAILURE (one IKE_FOLLOWUP_KE run per IKE SA), the IKE SA\'s original initiator retries first, both SAs rekeyed, no STATE_NOT_FOUND', async () => {
  const p = twoChildPair({ aliceNet: H, aliceDns: 3 * H, bobNet: 3 * H, bobDns: H });
  await p.connect();
  const lost = watchLoss(p);
  const tf = watchTemporaryFailure(p);
  const n = p.net.log.length;
  await p.advance(H + 60_000);
  /* CREATE_CHILD_SA each way, both answered N(TEMPORARY_FAILURE); 10 s later alice's again, IKE_FOLLOWUP_KE, Delete; 20 s: bob's */
  assert.deepEqual(requests(p, n), [[C, 'alice'], [C, 'bob'], [C, 'alice'], [F, 'alice'], [INFO, 'alice'], [C, 'bob'], [F, 'bob'], [INFO, 'bob']]);
  assert.deepEqual(tf.sort(), ['alice', 'bob']);
  for (const s of [p.alice, p.bob]) {
    assert.deepEqual(bad(s.events), [], `${s.name}: no error (no STATE_NOT_FOUND)`);
    assert.equal(s.events.filter((e) => e.type === 'child-rekeyed').length, 2, `${s.name}: both Child SAs rekeyed`);
    assert.equal(s.kernel.installed.size, 2);
  }
  assert.ok(mirrored(p.alice.kernel, p.bob.kernel));
  assert.deepEqual(lost, []);
});

test('RFC 9370 §2.2.2, RFC 7296 §2.25: bob\'s Child SA rekey with ke1_mlkem768 meets alice\'s IKE SA rekey — refused with TEMPORARY_FAILURE both ways; bob\'s retry goes to the new IKE SA that holds the Child SA by then, so both rekeys happen', async () => {
  const p = twoChildPair({ aliceNet: 3 * H, aliceDns: 3 * H, bobNet: 3 * H, bobDns: 3 * H });
  await p.connect();
  const lost = watchLoss(p);
  const tf = watchTemporaryFailure(p);
  p.alice.engine.rekey('to-bob', { ike: true });
  p.bob.engine.rekey('to-alice', { child: true });
  await p.net.pump();
  await p.advance(120_000);
  assert.ok(tf.includes('alice') && tf.includes('bob'), `both refused: ${JSON.stringify(tf)}`);
  for (const s of [p.alice, p.bob]) {
    assert.deepEqual(bad(s.events), [], s.name);
    assert.equal(s.events.filter((e) => e.type === 'ike-rekeyed').length, 1, `${s.name}: the IKE SA rekeyed`);
    assert.equal(s.events.filter((e) => e.type === 'child-rekeyed').length, 2, `${s.name}: both Child SAs rekeyed, the retry on the new IKE SA`);
    assert.equal(s.kernel.installed.size, 2);
    assert.equal(s.checkpoints.data.size, 1);
  }
  assert.ok(mirrored(p.alice.kernel, p.bob.kernel));
  assert.deepEqual(lost, []);
});

// The loser of crossed rekeys with IKE_FOLLOWUP_KE abandons its chain at once (above); should the
// winner's chain then fail, nothing replaces the SA unless the loser rekeys again. ML-KEM-512, so
// the winner's KEi(1) fits one datagram and can be resealed with a link the loser did not give.
const SMALL_IKE = 'aes256gcm16-prfsha256-x25519-ke1_mlkem512';
const SMALL_ESP = 'aes256gcm16-x25519-ke1_mlkem512';
const LOSER_RETRIES: ReadonlyArray<{ readonly what: string; readonly rekey: { readonly child: true } | { readonly ike: true }; make(): Pair }> = [
  {
    what: 'the Child SA', rekey: { child: true },
    make: () => new Pair({ seeds: [1, 2], ike: [SMALL_IKE], alice: { dpd: { intervalMs: 0, action: 'restart' } }, bob: { dpd: { intervalMs: 0, action: 'restart' } }, aliceChildren: [child({ espProposals: [SMALL_ESP] }, 'alice')], bobChildren: [child({ espProposals: [SMALL_ESP] }, 'bob')] }),
  },
  { what: 'the IKE SA', rekey: { ike: true }, make: () => new Pair({ seeds: [1, 2], ike: [SMALL_IKE], alice: { dpd: { intervalMs: 0, action: 'restart' } }, bob: { dpd: { intervalMs: 0, action: 'restart' } } }) },
];

for (const k of LOSER_RETRIES) {
  test(`RFC 9370 §2.2.2, RFC 7296 §2.8.1: crossed rekeys of ${k.what} with ke1_mlkem512 whose winner's IKE_FOLLOWUP_KE fails (STATE_NOT_FOUND) — the loser, which abandoned its own chain, rekeys again REKEY_RETRY_MS later, and the SA is rekeyed once on both sides`, async () => {
    const p = k.make();
    await p.connect();
    const before = ikeSpis(p.alice);
    /* CREATE_CHILD_SA each way (crossing, both answered with N(ADDITIONAL_KEY_EXCHANGE)); the winner's IKE_FOLLOWUP_KE, held */
    const req = await intercept(p, (x) => x.exchange === F && !x.response, () => { p.alice.engine.rekey('to-bob', k.rekey); p.bob.engine.rekey('to-alice', k.rekey); });
    const winner = req.from.address === ALICE ? p.alice : p.bob;
    const loser = winner === p.alice ? p.bob : p.alice;
    /* IKE_FOLLOWUP_KE {KEi(1), N(ADDITIONAL_KEY_EXCHANGE)(not the loser's link)} --> <-- {N(STATE_NOT_FOUND)} */
    await inject(p, req, reseal(winner, req.datagram, (inner) => inner.map((x) => (x.kind === 'notify' && x.type === NotifyStatus.ADDITIONAL_KEY_EXCHANGE ? { ...x, data: Uint8Array.of(0xde, 0xad) } : x))));
    assert.equal(winner.events.filter((e) => e.type === 'error')[0]?.error.notify, 'STATE_NOT_FOUND', 'the winner\'s chain failed');
    const n = p.net.log.length;
    await p.advance(REKEY_RETRY_MS + 30_000);
    /* REKEY_RETRY_MS later: CREATE_CHILD_SA from the loser (and the winner's own retry) */
    assert.ok(requests(p, n).some(([x, s]) => x === C && s === loser.name), `the loser rekeys again: ${JSON.stringify(requests(p, n))}`);
    for (const s of [p.alice, p.bob]) {
      const rekeyed = s.events.filter((e) => e.type === ('ike' in k.rekey ? 'ike-rekeyed' : 'child-rekeyed'));
      assert.equal(rekeyed.length, 1, `${s.name}: one rekey in the end`);
      assert.equal(s.engine.status().peers[0]!.ike!.state, 'established');
      assert.equal(s.kernel.installed.size, 1, `${s.name}: one Child SA`);
    }
    assert.equal(ikeSpis(p.alice), ikeSpis(p.bob), 'the same IKE SA on both sides');
    if ('ike' in k.rekey) assert.notEqual(ikeSpis(p.alice), before);
    assert.ok(mirrored(p.alice.kernel, p.bob.kernel));
  });
}
