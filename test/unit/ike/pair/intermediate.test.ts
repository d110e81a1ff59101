// RFC 9370 multiple key exchanges in RFC 9242 IKE_INTERMEDIATE between two in-process engines,
// and in IKE_FOLLOWUP_KE when the hybrid IKE SA is rekeyed (§2.2.2),
// from both roles: x25519 in IKE_SA_INIT, ML-KEM in one IKE_INTERMEDIATE per ADDKE method, keys
// updated after each, IKE_AUTH covering the IntAuth chain; and what a peer without
// INTERMEDIATE_EXCHANGE_SUPPORTED gets (the proposal without ADDKE, or NO_PROPOSAL_CHOSEN saying why).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ExchangeType, NotifyStatus } from '../../../../src/ike/constants.js';
import { inject, intercept, reseal } from './forge.js';
import { decodeMessage, encodeMessage } from '../../../../src/ike/codec/message.js';
import type { IkeEvent, IkeFailure } from '../../../../src/ike/ports.js';
import { child, mirrored, Pair, type Packet } from './harness.js';

const HYBRID = 'aes256gcm16-prfsha384-x25519-ke1_mlkem768';

function errors(events: readonly IkeEvent[]): IkeFailure[] {
  return events.flatMap((e) => (e.type === 'error' ? [e.error] : []));
}

/** [exchange, response, message ID] per IKE message (SKF fragments of one message counted once). */
function exchanges(log: readonly Packet[]): Array<[number, boolean, number]> {
  const out: Array<[number, boolean, number]> = [];
  for (const p of log) {
    const last = out[out.length - 1];
    if (last && last[0] === p.exchange && last[1] === p.response && last[2] === p.messageId) continue;
    out.push([p.exchange, p.response, p.messageId]);
  }
  return out;
}

const I = ExchangeType.IKE_SA_INIT; const M = ExchangeType.IKE_INTERMEDIATE; const A = ExchangeType.IKE_AUTH;

for (const initiator of ['alice', 'bob'] as const) {
  test(`RFC 9370 §2.2.1: x25519 + ke1_mlkem768, ${initiator} initiating — one IKE_INTERMEDIATE (MID 1) before IKE_AUTH (MID 2), both sides up with mirrored Child SAs`, async () => {
    const p = new Pair({ ike: [HYBRID] });
    p[initiator].engine.initiate(initiator === 'alice' ? 'to-bob' : 'to-alice');
    await p.net.pump();
    for (const s of [p.alice, p.bob]) {
      assert.deepEqual(s.events.map((e) => e.type), ['ike-up', 'child-up'], `${s.name}: ${JSON.stringify(errors(s.events))}`);
      assert.equal(s.engine.status().peers[0]?.ike?.suite, HYBRID);
    }
    /* IKE_SA_INIT {SA, KE(x25519), Ni, N(IES)} <-> {SA, KE, Nr, N(IES)}; IKE_INTERMEDIATE {KEi(1)} <-> {KEr(1)}; IKE_AUTH */
    assert.deepEqual(exchanges(p.net.log), [[I, false, 0], [I, true, 0], [M, false, 1], [M, true, 1], [A, false, 2], [A, true, 2]]);
    const init = p.net.log.filter((x) => x.exchange === I).map((x) => decodeMessage(x.datagram));
    for (const m of init) assert.ok(m.has(NotifyStatus.INTERMEDIATE_EXCHANGE_SUPPORTED), 'both IKE_SA_INIT messages announce IKE_INTERMEDIATE (RFC 9242 §3)');
    assert.ok(mirrored(p.alice.kernel, p.bob.kernel), 'Child SA keys agree, so SK_d after the key update agrees');
  });
}

test('RFC 9370 §2.2.1: two additional key exchanges (ke1_mlkem768, ke2_mlkem1024) run as two IKE_INTERMEDIATE exchanges in type order; the IntAuth chain spans both', async () => {
  const p = new Pair({ ike: ['aes256gcm16-prfsha256-x25519-ke1_mlkem768-ke2_mlkem1024'] });
  await p.connect();
  for (const s of [p.alice, p.bob]) assert.deepEqual(s.events.map((e) => e.type), ['ike-up', 'child-up'], JSON.stringify(errors(s.events)));
  assert.deepEqual(exchanges(p.net.log), [[I, false, 0], [I, true, 0], [M, false, 1], [M, true, 1], [M, false, 2], [M, true, 2], [A, false, 3], [A, true, 3]]);
  // ML-KEM-1024's 1568-byte key is over the 1280-byte fragment MTU: IntAuth is computed over the
  // message as if unfragmented (RFC 9242 §3.3.2), which AUTH verifying on both sides shows.
  assert.ok(p.net.log.some((x) => x.exchange === M && x.messageId === 2 && x.firstPayload === 53), 'the ML-KEM-1024 request went as SKF fragments');
  assert.ok(mirrored(p.alice.kernel, p.bob.kernel));
});

test('RFC 9370 §2.2.1: ke1_none lets a responder choose no additional exchange; a peer without ADDKE then needs no IKE_INTERMEDIATE', async () => {
  const p = new Pair({ ike: ['aes256gcm16-prfsha256-x25519'], bobIke: ['aes256gcm16-prfsha256-x25519-ke1_mlkem768-ke1_none'] });
  await p.connect();
  for (const s of [p.alice, p.bob]) assert.deepEqual(s.events.map((e) => e.type), ['ike-up', 'child-up'], JSON.stringify(errors(s.events)));
  assert.deepEqual(exchanges(p.net.log), [[I, false, 0], [I, true, 0], [A, false, 1], [A, true, 1]]);
  assert.equal(decodeMessage(p.net.log[0]!.datagram).has(NotifyStatus.INTERMEDIATE_EXCHANGE_SUPPORTED), false, 'no ADDKE offered, no IKE_INTERMEDIATE announced');
});

/** The initiator's IKE_SA_INIT request loses its INTERMEDIATE_EXCHANGE_SUPPORTED on the way (a peer without RFC 9242). */
function stripIntermediateNotify(p: Pair): void {
  p.net.fate = (x) => {
    if (x.exchange !== I || x.response) return 'deliver';
    const m = decodeMessage(x.datagram);
    if (!m.has(NotifyStatus.INTERMEDIATE_EXCHANGE_SUPPORTED)) return 'deliver';
    const payloads = m.payloads.filter((y) => !(y.kind === 'notify' && y.type === NotifyStatus.INTERMEDIATE_EXCHANGE_SUPPORTED));
    p.net.queue.unshift({ ...x, datagram: encodeMessage(m.header, payloads) });
    return 'drop';
  };
}

test('RFC 9242 §3: an initiator that did not announce IKE_INTERMEDIATE gets the proposal without ADDKE when ours allows NONE', async () => {
  const p = new Pair({ ike: ['aes256gcm16-prfsha256-x25519-ke1_mlkem768-ke1_none'] });
  stripIntermediateNotify(p);
  await p.connect();
  /* IKE_SA_INIT {SA(.., ke1_mlkem768, ke1_none), KE, Ni} (no N(IES)) --> <-- {SA(.., ke1_none), KE, Nr} (no N(IES)) */
  const reply = decodeMessage(p.net.log[1]!.datagram);
  assert.deepEqual(reply.first('sa')?.proposals[0]?.transforms.filter((t) => t.type === 6).map((t) => t.id), [0], 'ADDKE1 answered NONE (RFC 9370 §2.2.1)');
  assert.equal(reply.has(NotifyStatus.INTERMEDIATE_EXCHANGE_SUPPORTED), false, 'the responder does not announce it to a peer that did not');
  // No IKE_INTERMEDIATE follows. IKE_AUTH then fails on purpose: the test altered the IKE_SA_INIT
  // request that the initiator's AUTH signs (RFC 7296 §2.15), and the responder notices.
  assert.deepEqual(exchanges(p.net.log), [[I, false, 0], [I, true, 0], [A, false, 1], [A, true, 1]]);
  assert.equal(errors(p.bob.events)[0]?.notify, 'AUTHENTICATION_FAILED');
});

test('RFC 9242 §3: an initiator that did not announce IKE_INTERMEDIATE gets NO_PROPOSAL_CHOSEN naming why when ours requires ML-KEM', async () => {
  const p = new Pair({ ike: [HYBRID] });
  stripIntermediateNotify(p);
  await p.connect();
  const b = errors(p.bob.events)[0]!;
  assert.equal(b.notify, 'NO_PROPOSAL_CHOSEN');
  assert.match(b.message, /INTERMEDIATE_EXCHANGE_SUPPORTED/);
  assert.match(b.message, /ke1_mlkem768/);
  const a = errors(p.alice.events)[0]!;
  assert.equal(a.notify, 'NO_PROPOSAL_CHOSEN');
  assert.equal(p.bob.engine.status().halfOpen, 0);
});

test('RFC 9370 §2.2.1: a responder that chose ADDKE without announcing IKE_INTERMEDIATE is refused by the initiator', async () => {
  const p = new Pair({ ike: [HYBRID] });
  p.net.fate = (x) => {
    if (x.exchange !== I || !x.response) return 'deliver';
    const m = decodeMessage(x.datagram);
    if (!m.has(NotifyStatus.INTERMEDIATE_EXCHANGE_SUPPORTED)) return 'deliver';
    p.net.queue.unshift({ ...x, datagram: encodeMessage(m.header, m.payloads.filter((y) => !(y.kind === 'notify' && y.type === NotifyStatus.INTERMEDIATE_EXCHANGE_SUPPORTED))) });
    return 'drop';
  };
  await p.connect();
  const a = errors(p.alice.events)[0]!;
  assert.equal(a.code, 'ERR_IKE_BAD_PROPOSAL_REPLY');
  assert.match(a.message, /INTERMEDIATE_EXCHANGE_SUPPORTED/);
  assert.equal(p.alice.events.some((e) => e.type === 'ike-up'), false);
});

const C = ExchangeType.CREATE_CHILD_SA; const F = ExchangeType.IKE_FOLLOWUP_KE; const INFO = ExchangeType.INFORMATIONAL;

for (const [rekeyer, peer] of [['alice', 'to-bob'], ['bob', 'to-alice']] as const) {
  test(`RFC 9370 §2.2.2: ${rekeyer} rekeys the hybrid IKE SA — CREATE_CHILD_SA {SA, Ni, KE(x25519)} then IKE_FOLLOWUP_KE {KE(ML-KEM-768), N(ADDITIONAL_KEY_EXCHANGE)}; Child SAs move, the new SA is hybrid and usable`, async () => {
    const p = new Pair({ ike: [HYBRID] });
    await p.connect();
    const before = p.alice.engine.status().peers[0]!.ike!.ikeSpis;
    const n = p.net.log.length;
    p[rekeyer].engine.rekey(peer, { ike: true });
    await p.net.pump();
    /* on the old IKE SA: CREATE_CHILD_SA <->, IKE_FOLLOWUP_KE <->, INFORMATIONAL {D} <-> */
    const seen = exchanges(p.net.log.slice(n)).map(([x, r]) => [x, r]);
    assert.deepEqual(seen, [[C, false], [C, true], [F, false], [F, true], [INFO, false], [INFO, true]]);
    const ccsa = p.net.log.slice(n).filter((x) => x.exchange === C);
    const fke = p.net.log.slice(n).filter((x) => x.exchange === F);
    assert.equal(fke[0]!.messageId, ccsa[0]!.messageId + 1, 'IKE_FOLLOWUP_KE is the next request on the old IKE SA');
    for (const s of [p.alice, p.bob]) {
      const st = s.engine.status().peers[0]!.ike!;
      assert.equal(st.state, 'established');
      assert.notEqual(st.ikeSpis, before);
      assert.equal(st.suite, HYBRID);
      assert.deepEqual(errors(s.events), []);
      assert.ok(s.events.some((e) => e.type === 'ike-rekeyed'), `${s.name} saw ike-rekeyed`);
      assert.equal(s.events.some((e) => e.type === 'ike-down'), false, `${s.name}: no ike-down`);
    }
    assert.ok(mirrored(p.alice.kernel, p.bob.kernel));
    // The new IKE SA works: both sides derived the same keys over SK(0) | Ni | Nr | SK(1), so a
    // Child SA rekey on it (CREATE_CHILD_SA under the new keys) succeeds.
    const m = p.net.log.length;
    p[rekeyer === 'alice' ? 'bob' : 'alice'].engine.rekey(rekeyer === 'alice' ? 'to-alice' : 'to-bob', { ike: false });
    await p.net.pump();
    assert.deepEqual(exchanges(p.net.log.slice(m)).map(([x, r]) => [x, r]).slice(0, 2), [[C, false], [C, true]]);
    for (const s of [p.alice, p.bob]) assert.deepEqual(errors(s.events), [], s.name);
    assert.ok(mirrored(p.alice.kernel, p.bob.kernel));
  });
}

test('RFC 9370 §2.2.2: two additional methods take two IKE_FOLLOWUP_KE exchanges, linked by the responder\'s notify', async () => {
  const p = new Pair({ ike: ['aes256gcm16-prfsha256-x25519-ke1_mlkem768-ke2_mlkem1024'] });
  await p.connect();
  const n = p.net.log.length;
  p.alice.engine.rekey('to-bob', { ike: true });
  await p.net.pump();
  const seen = exchanges(p.net.log.slice(n)).map(([x, r]) => [x, r]);
  assert.deepEqual(seen, [[C, false], [C, true], [F, false], [F, true], [F, false], [F, true], [INFO, false], [INFO, true]]);
  for (const s of [p.alice, p.bob]) {
    assert.deepEqual(errors(s.events), [], s.name);
    assert.equal(s.engine.status().peers[0]!.ike!.suite, 'aes256gcm16-prfsha256-x25519-ke1_mlkem768-ke2_mlkem1024');
  }
  assert.ok(mirrored(p.alice.kernel, p.bob.kernel));
});

// Both sides rekeying the hybrid IKE SA at once: rekey-collision-addke.test.ts.

const PFS = 'aes256gcm16-x25519-ke1_mlkem768';

for (const [rekeyer, peer] of [['alice', 'to-bob'], ['bob', 'to-alice']] as const) {
  test(`RFC 9370 §2.2.2: ${rekeyer} rekeys a Child SA with PFS ${PFS} — CREATE_CHILD_SA {N(REKEY_SA), SA, Ni, KE(x25519), TS} then IKE_FOLLOWUP_KE {KE(ML-KEM-768)}; both sides install the same keys`, async () => {
    const p = new Pair({ ike: [HYBRID], aliceChildren: [child({ espProposals: [PFS] }, 'alice')], bobChildren: [child({ espProposals: [PFS] }, 'bob')] });
    await p.connect();
    for (const s of [p.alice, p.bob]) assert.deepEqual(s.events.map((e) => e.type), ['ike-up', 'child-up'], `${s.name}: IKE_AUTH's Child SA has no KE, so no ADDKE (RFC 9370 §2.2.3): ${JSON.stringify(errors(s.events))}`);
    const n = p.net.log.length;
    p[rekeyer].engine.rekey(peer, { child: true });
    await p.net.pump();
    /* CREATE_CHILD_SA <->, IKE_FOLLOWUP_KE <-> (keys, install), INFORMATIONAL {D(old)} <-> */
    assert.deepEqual(exchanges(p.net.log.slice(n)).map(([x, r]) => [x, r]), [[C, false], [C, true], [F, false], [F, true], [INFO, false], [INFO, true]]);
    for (const s of [p.alice, p.bob]) {
      assert.deepEqual(errors(s.events), [], s.name);
      const rk = s.events.filter((e) => e.type === 'child-rekeyed');
      assert.equal(rk.length, 1, s.name);
      assert.equal(rk[0]!.type === 'child-rekeyed' && rk[0]!.suite, PFS, `${s.name}: the new Child SA's suite names the ADDKE`);
    }
    assert.ok(mirrored(p.alice.kernel, p.bob.kernel), 'KEYMAT = prf+(SK_d, SK(0) | Ni | Nr | SK(1)) agrees on both sides');
  });
}

test('RFC 9370 §2.2.2: a second Child SA created with PFS and two additional key exchanges takes two IKE_FOLLOWUP_KE; a Child SA without them stays plain', async () => {
  const two = 'aes256gcm16-x25519-ke1_mlkem768-ke2_mlkem512';
  const dns = (side: 'alice' | 'bob') => child({ name: 'dns', localTs: [side === 'alice' ? '10.1.0.53/32' : '10.2.0.53/32'], remoteTs: [side === 'alice' ? '10.2.0.53/32' : '10.1.0.53/32'], espProposals: [two] }, side);
  const p = new Pair({ ike: [HYBRID], aliceChildren: [child({}, 'alice'), dns('alice')], bobChildren: [child({}, 'bob'), dns('bob')] });
  await p.connect();
  /* IKE_AUTH (child net), then CREATE_CHILD_SA (child dns) <->, IKE_FOLLOWUP_KE x2 */
  const seen = exchanges(p.net.log).map(([x, r]) => [x, r]).filter(([x]) => x === C || x === F);
  assert.deepEqual(seen, [[C, false], [C, true], [F, false], [F, true], [F, false], [F, true]]);
  for (const s of [p.alice, p.bob]) {
    assert.deepEqual(s.events.map((e) => e.type), ['ike-up', 'child-up', 'child-up'], `${s.name}: ${JSON.stringify(errors(s.events))}`);
    const ups = s.events.flatMap((e) => (e.type === 'child-up' ? [e.suite] : []));
    assert.deepEqual(ups, ['aes256gcm16', two]);
  }
  assert.ok(mirrored(p.alice.kernel, p.bob.kernel));
});

// Both sides rekeying a Child SA with additional key exchanges at once: rekey-collision-addke.test.ts.

test('RFC 9370 §2.2.2: an IKE_FOLLOWUP_KE whose link the responder did not give is answered STATE_NOT_FOUND; the rekey fails, the old IKE SA goes on, and the retry later succeeds', async () => {
  const small = 'aes256gcm16-prfsha256-x25519-ke1_mlkem512'; // KEi(1) fits one datagram, so it can be resealed whole
  const p = new Pair({ ike: [small] });
  await p.connect();
  const before = p.alice.engine.status().peers[0]!.ike!.ikeSpis;
  const req = await intercept(p, (x) => x.exchange === F && !x.response, () => p.alice.engine.rekey('to-bob', { ike: true }));
  /* IKE_FOLLOWUP_KE {KEi(1), N(ADDITIONAL_KEY_EXCHANGE)(not bob's link)} --> <-- {N(STATE_NOT_FOUND)} */
  await inject(p, req, reseal(p.alice, req.datagram, (inner) => inner.map((x) => (x.kind === 'notify' && x.type === NotifyStatus.ADDITIONAL_KEY_EXCHANGE ? { ...x, data: Uint8Array.of(0xde, 0xad) } : x))));
  assert.equal(errors(p.alice.events)[0]?.notify, 'STATE_NOT_FOUND');
  assert.deepEqual([errors(p.alice.events)[0]?.code, errors(p.alice.events)[0]?.message], ['ERR_IKE_REKEY_REFUSED', 'peer refused additional key exchange 1 (mlkem512) of the IKE SA rekey with STATE_NOT_FOUND']);
  assert.match(errors(p.bob.events)[0]?.message ?? '', /link we did not give/);
  for (const s of [p.alice, p.bob]) {
    assert.equal(s.engine.status().peers[0]!.ike!.ikeSpis, before, `${s.name}: still the old IKE SA`);
    assert.equal(s.engine.status().peers[0]!.ike!.state, 'established');
  }
  await p.advance(15_000);
  for (const s of [p.alice, p.bob]) {
    assert.notEqual(s.engine.status().peers[0]!.ike!.ikeSpis, before, `${s.name}: rekeyed on the retry`);
    assert.equal(s.events.filter((e) => e.type === 'ike-rekeyed').length, 1);
  }
  assert.ok(mirrored(p.alice.kernel, p.bob.kernel));
});

test('RFC 9370 §2.2.2: the IKE_FOLLOWUP_KE of a Child SA rekey answered STATE_NOT_FOUND — the failure names the Child SA, not an IKE SA rekey; the old Child SA goes on', async () => {
  const small = 'aes256gcm16-x25519-ke1_mlkem512'; // KEi(1) fits one datagram, so it can be resealed whole
  const p = new Pair({ ike: [HYBRID], aliceChildren: [child({ espProposals: [small] }, 'alice')], bobChildren: [child({ espProposals: [small] }, 'bob')] });
  await p.connect();
  const req = await intercept(p, (x) => x.exchange === F && !x.response, () => p.alice.engine.rekey('to-bob', { child: true }));
  /* IKE_FOLLOWUP_KE {KEi(1), N(ADDITIONAL_KEY_EXCHANGE)(not bob's link)} --> <-- {N(STATE_NOT_FOUND)} */
  await inject(p, req, reseal(p.alice, req.datagram, (inner) => inner.map((x) => (x.kind === 'notify' && x.type === NotifyStatus.ADDITIONAL_KEY_EXCHANGE ? { ...x, data: Uint8Array.of(0xde, 0xad) } : x))));
  const err = errors(p.alice.events)[0];
  assert.deepEqual([err?.code, err?.notify, err?.message], ['ERR_IKE_CHILD_REFUSED', 'STATE_NOT_FOUND', 'peer refused additional key exchange 1 (mlkem512) of Child SA net with STATE_NOT_FOUND']);
  for (const s of [p.alice, p.bob]) assert.equal(s.kernel.installed.size, 1, `${s.name}: the old Child SA only`);
  assert.ok(mirrored(p.alice.kernel, p.bob.kernel));
});

test('RFC 9370 §2.2.2: alice restarts while her IKE_FOLLOWUP_KE for a Child SA rekey is lost — neither the run nor its request is resumed (its Message ID is reused), bob drops the run on her next CREATE_CHILD_SA, and that rekey succeeds', async () => {
  const p = new Pair({ ike: [HYBRID], aliceChildren: [child({ espProposals: [PFS] }, 'alice')], bobChildren: [child({ espProposals: [PFS] }, 'bob')] });
  await p.connect();
  const before = [...p.alice.kernel.installed.keys()];
  /* CREATE_CHILD_SA <->, IKE_FOLLOWUP_KE --> (lost; alice crashes) */
  p.net.fate = (x) => (x.exchange === F && !x.response ? 'hold' : 'deliver');
  p.alice.engine.rekey('to-bob', { child: true });
  await p.net.pump();
  assert.ok(p.net.held.length > 0, 'the IKE_FOLLOWUP_KE request is on its way');
  p.net.held = [];
  p.net.fate = () => 'deliver';
  const results = await p.restart('alice');
  assert.deepEqual(results.map((r) => r.outcome), ['resumed']);
  await p.advance(10_000);
  assert.equal(exchanges(p.net.log).filter(([x, r]) => x === F && !r).length, 1, 'the lost request is not sent again');
  assert.deepEqual([...p.alice.kernel.installed.keys()], before, 'the old Child SA carries on');
  assert.deepEqual(p.alice.engine.status().peers[0]!.ike!.children.map((c) => c.state), ['installed'], 'no longer rekeying');
  /* CREATE_CHILD_SA {N(REKEY_SA), ..} with the Message ID of the lost request <->, IKE_FOLLOWUP_KE <->, INFORMATIONAL {D} <-> */
  const mark = p.net.log.length;
  p.alice.engine.rekey('to-bob', { child: true });
  await p.net.pump();
  assert.deepEqual(exchanges(p.net.log.slice(mark)).map(([x, r]) => [x, r]), [[C, false], [C, true], [F, false], [F, true], [INFO, false], [INFO, true]]);
  for (const s of [p.alice, p.bob]) assert.deepEqual(errors(s.events), [], s.name);
  assert.equal(p.bob.events.filter((e) => e.type === 'child-rekeyed').length, 1, 'bob saw one rekey: the abandoned run never completed');
  assert.equal(p.alice.events.filter((e) => e.type === 'child-rekeyed').length, 1, 'alice rekeyed the Child SA');
  assert.notDeepEqual([...p.alice.kernel.installed.keys()].filter((k) => !before.includes(k)), []);
  assert.ok(mirrored(p.alice.kernel, p.bob.kernel));
});

test('ports.keyLog: each side reports the final keys of every RFC 9370 IKE SA — after IKE_INTERMEDIATE and after an IKE_FOLLOWUP_KE rekey — and both sides report the same keys for the same SPIs (what the strongSwan 6 interop compares with charon\'s)', async () => {
  const p = new Pair({ ike: [HYBRID] });
  await p.connect();
  assert.equal(p.alice.ikeKeys.length, 1, 'one hybrid IKE SA, logged once (its last key update, not the IKE_SA_INIT keys)');
  p.bob.engine.rekey('to-alice', { ike: true });
  await p.net.pump();
  assert.equal(p.alice.ikeKeys.length, 2, 'the rekeyed IKE SA, logged when its IKE_FOLLOWUP_KE completed');
  assert.deepEqual(p.alice.ikeKeys, p.bob.ikeKeys, 'initiator and responder derived the same keys');
  const [first, second] = p.alice.ikeKeys;
  assert.notEqual(first!['spis'], second!['spis']);
  assert.notEqual(first!['skD'], second!['skD'], 'the rekey made new keys');
  assert.equal(first!['skEi']!.length, 2 * 36, 'AES-GCM-256: SK_ei is the key and its 4-byte salt');
  const st = p.alice.engine.status().peers[0]!.ike!.ikeSpis;
  assert.match(st, new RegExp(`^0*${second!['spis']!.split('_')[0]}_i 0*${second!['spis']!.split('_')[1]}_r$`), 'the last logged SA is the live one');
});
