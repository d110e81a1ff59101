// CREATE_CHILD_SA rekeying the IKE SA as steps (src/ike/steps/ike-rekey.ts,
// ike-rekey-responder.ts), without engines: literal IKE SA records in, effects asserted, each
// scenario narrated message by message and run with alice and with bob as the rekey initiator.
// The pair tests (test/unit/ike/pair/rekey*.test.ts, rekey-collision-addke.test.ts) drive the same
// steps through two whole engines.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DhId } from '../../../../src/ike/constants.js';
import type { IkeMessage } from '../../../../src/ike/codec/message.js';
import { ikeFailure } from '../../../../src/ike/sa/context.js';
import { REKEY_RETRY_MS } from '../../../../src/ike/sa/defaults.js';
import { upKeyedOf, upOf, type IkeSa } from '../../../../src/ike/sa/ike-sa.js';
import { consumeFollowupResponse, rekeyedIkeKeys, requestFollowup, respondFollowup, type FollowupKe } from '../../../../src/ike/steps/followup-ke.js';
import { acceptIkeRekeyRequest, consumeIkeRekeyRequest, peerFollowupDone } from '../../../../src/ike/steps/ike-rekey-responder.js';
import { consumeIkeRekeyResponse, ikeFollowupSettled, peerDeletedRekeyingIke, requestIkeRekey, type IkeRekeyExchange, type IkeRekeyStep } from '../../../../src/ike/steps/ike-rekey.js';
import { notify, NotifyError, other, shape, side, wire, type Who } from './fixtures.js';
import { effect, fixtureUp, freshOf, HYBRID, ikeSide, kinds, outstanding, type IkeSide } from './ike-fixtures.js';

const ROLES: readonly Who[] = ['alice', 'bob'];
const SPI_I = 0xa1a2a3a4a5a6a7a8n;
const SPI_R = 0xb1b2b3b4b5b6b7b8n;

function expectTag<T extends IkeRekeyExchange['tag']>(s: IkeRekeyExchange, tag: T): Extract<IkeRekeyExchange, { tag: T }> {
  const is = (x: IkeRekeyExchange): x is Extract<IkeRekeyExchange, { tag: T }> => x.tag === tag;
  if (!is(s)) assert.fail(`state is ${s.tag}, want ${tag}`);
  return s;
}
function expectRun<T extends FollowupKe['tag']>(s: FollowupKe, tag: T): Extract<FollowupKe, { tag: T }> {
  const is = (x: FollowupKe): x is Extract<FollowupKe, { tag: T }> => x.tag === tag;
  if (!is(s)) assert.fail(`run is ${s.tag}, want ${tag}`);
  return s;
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
/** The lowest nonce, compared as unsigned octet strings (§2.8.1). */
const lowest = (ns: readonly Uint8Array[]): Buffer => ns.map((n) => Buffer.from(n)).sort(Buffer.compare)[0]!;
/** §2.8.1: `loser`'s exchange holds the lowest of the four nonces. */
function assertLowest(nonces: Record<Who, Uint8Array[]>, loser: Who, at: string): void {
  assert.ok(Buffer.compare(lowest(nonces[loser]), lowest(nonces[other(loser)])) < 0, `${at}: ${loser} lost, so its exchange holds the lowest nonce`);
}
/** The request a send effect carries, as the peer decodes it. */
const request = (s: IkeRekeyStep): IkeMessage => wire(effect(s, 'send').payloads, false);
const answer = (s: IkeRekeyStep): IkeMessage => wire(effect(s, 'respond').payloads, true);

/** The responder's two steps with `spiR` allocated between them, as sa/ike-rekey-tasks.ts runs them. */
function respond(r: IkeSide, m: IkeMessage, spiR = SPI_R): IkeRekeyStep {
  const chosen = consumeIkeRekeyRequest(r.env, r.sa, m);
  assert.deepEqual(chosen.effects, [], 'nothing happens before the responder has an SPI');
  return acceptIkeRekeyRequest(r.env, r.sa, expectTag(chosen.next, 'chosen'), spiR);
}

/** Both ends hold the same seven keys for the new SA, each in its own role. */
function assertSameKeys(a: IkeSa, b: IkeSa): void {
  const ka = upKeyedOf(a)?.keys; const kb = upKeyedOf(b)?.keys;
  assert.ok(ka && kb, 'both new SAs are keyed');
  for (const k of ['skAi', 'skAr', 'skEi', 'skEr'] as const) assert.equal(hex(ka.sk[k].expose()), hex(kb.sk[k].expose()), k);
  assert.equal(hex(ka.skD.expose()), hex(kb.skD.expose()), 'SK_d');
  // RFC 7296 §2.15: SK_pi/SK_pr only enter IKE_AUTH's AUTH, which a rekeyed SA never computes.
  assert.deepEqual(['skPi' in ka, 'skPr' in ka, 'skPi' in kb, 'skPr' in kb], [false, false, false, false], 'an up SA holds no SK_pi/SK_pr');
}

/** The responder's Nr of the CREATE_CHILD_SA exchange it answered (its collision record, or its IKE_FOLLOWUP_KE run's key inputs). */
function answeredNr(step: IkeRekeyStep): Uint8Array {
  const c = step.effects.find((f) => f.kind === 'collision');
  if (c?.kind === 'collision' && c.nonces[1]) return c.nonces[1];
  return effect(step, 'followup').keys.nr;
}

for (const I of ROLES) {
  const R = other(I);
  test(`RFC 7296 §1.3.2, §2.18: ${I} rekeys the IKE SA — both sides key the new SA alike from the old SK_d; ${I} is its original initiator, the Child SAs move before the answer leaves, and ${I} deletes the old SA`, () => {
    const i = ikeSide(I); const r = ikeSide(R);
    // The driver allocated the new SA's SPI before the step.
    const req = requestIkeRekey(i.env, i.sa, SPI_I);
    /* CREATE_CHILD_SA { SA(IKE, SPIi'), Ni, KEi } --> */
    assert.deepEqual(shape(effect(req, 'send').payloads), ['sa', 'nonce', 'ke']);
    const sent = expectTag(req.next, 'sent');
    assert.deepEqual([sent.offer.spi, sent.offer.share.group, sent.retried, sent.collision], [SPI_I, DhId.CURVE25519, false, null]);
    i.sa.outstanding = { ...outstanding({ kind: 'ike-rekey' }), scratch: { kind: 'ike-rekey', offer: sent.offer, collision: null } };

    const resp = respond(r, request(req));
    /* <-- CREATE_CHILD_SA { SA(IKE, SPIr'), Nr, KEr } */
    assert.deepEqual(kinds(resp), ['register', 'adopt', 'await-delete', 'respond']);
    assert.deepEqual(shape(effect(resp, 'respond').payloads), ['sa', 'nonce', 'ke']);
    const rFresh = freshOf(resp);
    assert.deepEqual([rFresh.role, rFresh.spiI, rFresh.spiR, rFresh.state.tag], ['responder', SPI_I, SPI_R, 'established']);
    assert.deepEqual(effect(resp, 'adopt'), { kind: 'adopt', old: r.sa, successor: rFresh });
    assert.equal(effect(resp, 'await-delete').sa, r.sa, 'the old SA waits for the initiator\'s Delete');

    const got = consumeIkeRekeyResponse(i.env, i.sa, sent, answer(resp));
    /* INFORMATIONAL { D(IKE) } on the old SA --> (queued) */
    assert.deepEqual(kinds(got), ['register', 'adopt', 'delete']);
    const iFresh = freshOf(got);
    assert.deepEqual([iFresh.role, iFresh.spiI, iFresh.spiR], ['initiator', SPI_I, SPI_R], 'the rekey initiator is the new SA\'s original initiator');
    assert.deepEqual(effect(got, 'delete'), { kind: 'delete', sa: i.sa, reason: 'rekeyed' });
    assertSameKeys(iFresh, rFresh);
    assert.notEqual(hex(upKeyedOf(iFresh)?.keys.skD.expose() ?? new Uint8Array(0)), hex(i.sa.state.keyed.keys.skD.expose()), 'new keys, not the old ones');
  });

  test(`RFC 9370 §2.2.2, §2.2.4: ${I} rekeys the IKE SA with ${HYBRID} — the CREATE_CHILD_SA answer starts IKE_FOLLOWUP_KE and no new SA is registered on either side until its last exchange; then the same keys from prf(SK_d, SK(0) | Ni | Nr | SK(1))`, () => {
    const i = ikeSide(I, { proposals: [HYBRID] }); const r = ikeSide(R, { proposals: [HYBRID] });
    const req = requestIkeRekey(i.env, i.sa, SPI_I);
    /* CREATE_CHILD_SA { SA(IKE, .., ADDKE1 mlkem768), Ni, KEi(x25519) } --> */
    i.sa.outstanding = { ...outstanding({ kind: 'ike-rekey' }), scratch: { kind: 'ike-rekey', offer: expectTag(req.next, 'sent').offer, collision: null } };
    const resp = respond(r, request(req));
    /* <-- CREATE_CHILD_SA { SA, Nr, KEr(x25519), N(ADDITIONAL_KEY_EXCHANGE)(link1) } */
    assert.deepEqual(kinds(resp), ['followup', 'respond'], 'no register, no adopt: the new SA has no keys yet');
    assert.deepEqual(shape(effect(resp, 'respond').payloads), ['sa', 'nonce', 'ke', 'notify(ADDITIONAL_KEY_EXCHANGE)']);
    const rRun = effect(resp, 'followup');
    assert.equal(rRun.fresh.state.tag, 'keying', 'no keys until IKE_FOLLOWUP_KE is done');
    const got = consumeIkeRekeyResponse(i.env, i.sa, expectTag(req.next, 'sent'), answer(resp));
    assert.deepEqual(kinds(got), ['followup'], 'the driver queues our first IKE_FOLLOWUP_KE');
    const iRun = effect(got, 'followup');
    assert.deepEqual([iRun.fresh.role, iRun.fresh.state.tag], ['initiator', 'keying']);

    /* IKE_FOLLOWUP_KE { KEi(1) mlkem768, N(ADDITIONAL_KEY_EXCHANGE)(link1) } --> */
    const fReq = requestFollowup({ random: i.env.random, allowWeak: false }, expectRun(iRun.state, 'to-send'));
    const fSent = fReq.effects.flatMap((f) => (f.kind === 'send' ? f.payloads : []));
    /* <-- IKE_FOLLOWUP_KE { KEr(1) } */
    const fResp = respondFollowup({ random: r.env.random, allowWeak: false }, expectRun(rRun.state, 'awaiting'), wire(fSent, false));
    const rSecrets = fResp.effects.flatMap((f) => (f.kind === 'complete' ? [f.secrets] : []))[0]!;
    const fGot = consumeFollowupResponse({ random: i.env.random, allowWeak: false, for: { kind: 'ike' } }, expectRun(fReq.next, 'ke-sent'), wire(fResp.effects.flatMap((f) => (f.kind === 'respond' ? f.payloads : [])), true));
    const iSecrets = fGot.effects.flatMap((f) => (f.kind === 'complete' ? [f.secrets] : []))[0]!;
    const iKeys = rekeyedIkeKeys(iRun.keys, iSecrets); const rKeys = rekeyedIkeKeys(rRun.keys, rSecrets);
    assert.equal(hex(iKeys.skEi.expose()), hex(rKeys.skEi.expose()));
    assert.equal(hex(iKeys.skD.expose()), hex(rKeys.skD.expose()));

    // The driver keys the new SA (sa/followup.ts), then the steps hand over.
    const rDone = peerFollowupDone(r.sa, rRun.fresh);
    assert.deepEqual(kinds(rDone), ['register', 'adopt', 'await-delete'], 'the responder moves the Child SAs before its last answer leaves');
    const iDone = ikeFollowupSettled(i.sa, { fresh: iRun.fresh });
    /* INFORMATIONAL { D(IKE) } on the old SA --> (queued) */
    assert.deepEqual(kinds(iDone), ['register', 'adopt', 'delete']);
    assert.deepEqual(effect(iDone, 'delete'), { kind: 'delete', sa: i.sa, reason: 'rekeyed' });
  });
}

/**
 * Both sides rekey the IKE SA at once (seeds make the nonces): each request reaches the other
 * while its own is out, so each responder records a collision (or, with IKE_FOLLOWUP_KE to come,
 * keeps the peer's run); then each initiator consumes the answer to its own request.
 */
function crossedRekeys(proposals: readonly string[], seed: number, beforeAnswers?: (answered: Record<Who, IkeRekeyStep>) => void): { readonly alice: IkeRekeyStep; readonly bob: IkeRekeyStep; readonly sides: Record<Who, IkeSide>; readonly answered: Record<Who, IkeRekeyStep>; readonly nonces: Record<Who, Uint8Array[]> } {
  const sides = { alice: ikeSide('alice', { proposals, seed }), bob: ikeSide('bob', { proposals, seed: seed + 1000 }) };
  const spi = { alice: { i: 0xa000000000000001n, r: 0xa000000000000002n }, bob: { i: 0xb000000000000001n, r: 0xb000000000000002n } };
  const reqs = {} as Record<Who, IkeRekeyStep>;
  for (const w of ROLES) {
    reqs[w] = requestIkeRekey(sides[w].env, sides[w].sa, spi[w].i);
    sides[w].sa.outstanding = { ...outstanding({ kind: 'ike-rekey' }), scratch: { kind: 'ike-rekey', offer: expectTag(reqs[w].next, 'sent').offer, collision: null } };
  }
  /* CREATE_CHILD_SA { SA, Ni, KEi } -->  <-- CREATE_CHILD_SA { SA, Ni, KEi }  (crossing) */
  const answered = {} as Record<Who, IkeRekeyStep>;
  for (const w of ROLES) answered[w] = respond(sides[w], request(reqs[other(w)]), spi[w].r);
  beforeAnswers?.(answered);
  /* <-- CREATE_CHILD_SA { SA, Nr, KEr, .. }  CREATE_CHILD_SA { SA, Nr, KEr, .. } --> */
  const out = {} as Record<Who, IkeRekeyStep>;
  for (const w of ROLES) {
    const mine = answered[w];
    // As the driver keeps it: a collision recorded by the 'collision' effect, or the peer's run.
    const c = mine.effects.find((f) => f.kind === 'collision');
    const run = mine.effects.find((f) => f.kind === 'followup');
    const sent = { ...expectTag(reqs[w].next, 'sent'), collision: c?.kind === 'collision' ? { peerSa: c.peerSa, nonces: c.nonces } : null };
    const peerRun = run?.kind === 'followup' ? { nonces: [run.keys.ni, run.keys.nr] } : null;
    out[w] = consumeIkeRekeyResponse(sides[w].env, sides[w].sa, sent, answer(answered[other(w)]), peerRun);
  }
  // The Ni and Nr of the exchange each side initiated.
  const nonces = {} as Record<Who, Uint8Array[]>;
  for (const w of ROLES) nonces[w] = [expectTag(reqs[w].next, 'sent').offer.ni, answeredNr(answered[other(w)])];
  return { alice: out.alice, bob: out.bob, sides, answered, nonces };
}

test('RFC 7296 §2.8.1: crossed IKE SA rekeys where the peer\'s new SA we answered is gone (torn down) before the answer to ours — superseded all the same, it keeps what it knew as an SA that was up (found by the state fuzz)', () => {
  for (let seed = 1; seed <= 4; seed++) {
    const x = crossedRekeys(['aes256gcm16-prfsha256-x25519'], seed, (answered) => {
      for (const w of ROLES) { const peerSa = effect(answered[w], 'collision').peerSa; peerSa.state = { tag: 'dead', up: upOf(peerSa) }; }
    });
    const winner: Who = effect(x.alice, 'delete').reason === 'redundant' ? 'bob' : 'alice';
    const theirs = effect(x.answered[winner], 'collision').peerSa;
    const up = upOf(theirs);
    assert.notEqual(up, null, 'a rekey\'s new SA is up from the start');
    // Torn down, it has no keys left: nothing is sent on it any more.
    assert.deepEqual(effect(x[winner], 'set-state'), { kind: 'set-state', sa: theirs, state: { tag: 'rekeyed', successor: freshOf(x[winner]), up, keyed: null } }, `seed ${seed}`);
  }
});

test('RFC 7296 §2.8.2 with §2.8.1: crossed IKE SA rekeys — each side answers the other\'s and records the collision; the exchange holding the lowest of the four nonces made the redundant SA, which its initiator deletes, and both sides keep the other new SA', () => {
  const losers = new Set<Who>();
  for (let seed = 1; seed <= 12 && losers.size < 2; seed++) {
    const x = crossedRekeys(['aes256gcm16-prfsha256-x25519'], seed);
    for (const w of ROLES) assert.deepEqual(kinds(x.answered[w]), ['register', 'collision', 'respond'], `${w} answers without handing over: the answer to its own request settles it`);
    const loser: Who = kinds(x.alice).includes('set-state') && effect(x.alice, 'delete').reason === 'redundant' ? 'alice' : 'bob';
    const winner = other(loser);
    losers.add(loser);
    const lost = x[loser]; const won = x[winner];
    assert.deepEqual(kinds(lost), ['register', 'adopt', 'await-delete', 'set-state', 'delete'], `seed ${seed}: ${loser} lost`);
    assertLowest(x.nonces, loser, `seed ${seed}`);
    const peerSa = effect(x.answered[loser], 'collision').peerSa;
    assert.deepEqual(effect(lost, 'adopt'), { kind: 'adopt', old: x.sides[loser].sa, successor: peerSa }, 'the loser hands over to the winner\'s SA');
    assert.deepEqual(effect(lost, 'set-state').state, { tag: 'rekeyed', successor: peerSa, up: upOf(freshOf(lost)), keyed: upKeyedOf(freshOf(lost)) }, 'superseded, it keeps what it knew as an SA that was up, and its keys for its Delete');
    assert.deepEqual(effect(lost, 'delete'), { kind: 'delete', sa: freshOf(lost), reason: 'redundant' });
    assert.deepEqual(kinds(won), ['register', 'adopt', 'set-state', 'await-delete', 'delete'], `seed ${seed}: ${winner} won`);
    const theirs = effect(x.answered[winner], 'collision').peerSa;
    assert.deepEqual(effect(won, 'set-state'), { kind: 'set-state', sa: theirs, state: { tag: 'rekeyed', successor: freshOf(won), up: upOf(theirs), keyed: upKeyedOf(theirs) } }, 'the loser\'s SA is superseded here, not live');
    assert.deepEqual(effect(won, 'delete'), { kind: 'delete', sa: x.sides[winner].sa, reason: 'rekeyed' }, 'the winner deletes the old SA');
    // The surviving SA is the same one on both sides.
    assert.deepEqual([freshOf(won).spiI, freshOf(won).spiR], [peerSa.spiI, peerSa.spiR]);
    assertSameKeys(freshOf(won), peerSa);
  }
  assert.deepEqual([...losers].sort(), ['alice', 'bob'], 'both branches of the nonce rule ran');
});

test(`RFC 9370 §2.2.2, RFC 7296 §2.8.2: crossed IKE SA rekeys with ${HYBRID} — the nonces of the two CREATE_CHILD_SA exchanges decide before any IKE_FOLLOWUP_KE: the loser abandons its chain and only arms a later rekey (should the winner's chain fail), the winner drops the peer's run and starts its own`, () => {
  const losers = new Set<Who>();
  for (let seed = 1; seed <= 12 && losers.size < 2; seed++) {
    const x = crossedRekeys([HYBRID], seed);
    for (const w of ROLES) assert.deepEqual(kinds(x.answered[w]), ['followup', 'respond'], `${w} answers with N(ADDITIONAL_KEY_EXCHANGE)`);
    const loser: Who = kinds(x.alice).includes('retry-later') ? 'alice' : 'bob';
    losers.add(loser);
    assert.deepEqual(x[loser].effects, [{ kind: 'retry-later', afterMs: REKEY_RETRY_MS }], `seed ${seed}: ${loser} sends no IKE_FOLLOWUP_KE and registers nothing`);
    assertLowest(x.nonces, loser, `seed ${seed}`);
    const won = x[other(loser)];
    assert.deepEqual(kinds(won), ['drop-peer-run', 'followup'], `seed ${seed}: ${other(loser)} won`);
    assert.equal(effect(won, 'followup').fresh.role, 'initiator');
    // The winner's new SA is the one the loser keeps its run for.
    const loserRun = effect(x.answered[loser], 'followup').fresh;
    assert.deepEqual([loserRun.spiI, loserRun.spiR], [effect(won, 'followup').fresh.spiI, effect(won, 'followup').fresh.spiR]);
  }
  assert.deepEqual([...losers].sort(), ['alice', 'bob'], 'both branches of the nonce rule ran');
});

test('RFC 7296 §2.8.2: our rekey refused while we answered the peer\'s — the peer\'s new SA takes over and the peer deletes the old one', () => {
  const i = ikeSide('alice');
  const req = requestIkeRekey(i.env, i.sa, SPI_I);
  const peerReq = requestIkeRekey(ikeSide('bob').env, ikeSide('bob').sa, SPI_I);
  const peerSa = freshOf(respond(ikeSide('alice'), request(peerReq)));
  // The nonces are not compared on this path (ours was refused).
  const sent = { ...expectTag(req.next, 'sent'), collision: { peerSa, nonces: [expectTag(peerReq.next, 'sent').offer.ni] } };
  /* <-- CREATE_CHILD_SA { N(TEMPORARY_FAILURE) } */
  const got = consumeIkeRekeyResponse(i.env, i.sa, sent, wire([notify(NotifyError.TEMPORARY_FAILURE)], true));
  assert.deepEqual(got.effects, [{ kind: 'adopt', old: i.sa, successor: peerSa }, { kind: 'await-delete', sa: i.sa }]);
});

test('RFC 7296 §1.3.2: INVALID_KE_PAYLOAD naming a group our proposals carry — the rekey is repeated at once with it; asked again, the rekey fails with a reason and is retried later from the SA\'s own group', () => {
  const i = ikeSide('bob', { proposals: ['aes256gcm16-prfsha256-x25519-ecp256'] });
  const req = requestIkeRekey(i.env, i.sa, SPI_I);
  /* <-- CREATE_CHILD_SA { N(INVALID_KE_PAYLOAD, ecp256) } */
  const got = consumeIkeRekeyResponse(i.env, i.sa, expectTag(req.next, 'sent'), wire([notify(NotifyError.INVALID_KE_PAYLOAD, Uint8Array.of(0, DhId.ECP_256))], true));
  assert.deepEqual(got.effects, [{ kind: 'retry-now', group: DhId.ECP_256 }]);
  /* CREATE_CHILD_SA { SA, Ni, KEi(ecp256) } -->  <-- { N(INVALID_KE_PAYLOAD, x25519) } */
  const again = requestIkeRekey(i.env, i.sa, SPI_I, DhId.ECP_256);
  assert.equal(expectTag(again.next, 'sent').offer.share.group, DhId.ECP_256);
  assert.equal(expectTag(again.next, 'sent').retried, true);
  const last = consumeIkeRekeyResponse(i.env, i.sa, expectTag(again.next, 'sent'), wire([notify(NotifyError.INVALID_KE_PAYLOAD, Uint8Array.of(0, DhId.CURVE25519))], true));
  assert.deepEqual(kinds(last), ['error', 'retry-later']);
  assert.match(effect(last, 'error').failure.message, /after we already retried/);
});

test('RFC 7296 §2.25: TEMPORARY_FAILURE — no error, the rekey is retried later; an answer without KE fails with an error (the IKE SA still works and rekeys later)', () => {
  const i = ikeSide('alice');
  const sent = expectTag(requestIkeRekey(i.env, i.sa, SPI_I).next, 'sent');
  /* <-- CREATE_CHILD_SA { N(TEMPORARY_FAILURE) } */
  assert.deepEqual(consumeIkeRekeyResponse(i.env, i.sa, sent, wire([notify(NotifyError.TEMPORARY_FAILURE)], true)).effects, [{ kind: 'retry-later', afterMs: REKEY_RETRY_MS }]);
  /* <-- CREATE_CHILD_SA { SA, Nr }  (no KEr) */
  const full = effect(respond(ikeSide('bob'), request(requestIkeRekey(i.env, i.sa, SPI_I))), 'respond').payloads;
  const bad = consumeIkeRekeyResponse(i.env, i.sa, sent, wire(full.filter((p) => p.kind !== 'ke'), true));
  assert.deepEqual(kinds(bad), ['error', 'retry-later']);
  assert.equal(effect(bad, 'error').failure.code, 'ERR_IKE_BAD_REKEY_REPLY');
});

test('RFC 7296 §2.25, §1.3.2: rekey requests the responder refuses are answered with a notify and allocate no SPI', () => {
  const req = request(requestIkeRekey(ikeSide('alice').env, ikeSide('alice').sa, SPI_I));
  const refused = (r: IkeSide, m = req): string[] => {
    const s = consumeIkeRekeyRequest(r.env, r.sa, m);
    assert.equal(s.next.tag, 'done', 'no chosen state, so the driver allocates no SPI');
    return [...kinds(s), ...shape(effect(s, 'respond').payloads)];
  };
  /* on an IKE SA being deleted: <-- { N(TEMPORARY_FAILURE) } (§2.25.2) */
  const deleting = ikeSide('bob'); deleting.sa.state = { tag: 'deleting', up: fixtureUp('bob'), keyed: deleting.sa.state.keyed };
  assert.deepEqual(refused(deleting), ['respond', 'notify(TEMPORARY_FAILURE)']);
  /* while a Child SA exchange of ours is open: <-- { N(TEMPORARY_FAILURE) } (§2.25) */
  const busy = ikeSide('bob'); busy.sa.outstanding = outstanding({ kind: 'child-create', child: side('bob').runtime });
  assert.deepEqual(refused(busy), ['respond', 'notify(TEMPORARY_FAILURE)']);
  /* a liveness check of ours in flight is no reason to refuse */
  const dpd = ikeSide('bob'); dpd.sa.outstanding = outstanding({ kind: 'dpd' });
  assert.equal(consumeIkeRekeyRequest(dpd.env, dpd.sa, req).next.tag, 'chosen');
  /* no proposal in common: <-- { N(NO_PROPOSAL_CHOSEN) }, and the error is reported */
  const elsewhere = ikeSide('bob', { proposals: ['aes128gcm16-prfsha256-ecp384'] });
  assert.deepEqual(refused(elsewhere), ['respond', 'error', 'notify(NO_PROPOSAL_CHOSEN)']);
  /* KEi of another group than the one we choose: <-- { N(INVALID_KE_PAYLOAD, ecp256) } */
  const ecp = ikeSide('bob', { proposals: ['aes256gcm16-prfsha256-ecp256'] });
  const both = ikeSide('alice', { proposals: ['aes256gcm16-prfsha256-x25519', 'aes256gcm16-prfsha256-ecp256'] });
  const wide = request(requestIkeRekey(both.env, both.sa, SPI_I));
  assert.deepEqual(refused(ecp, wide), ['respond', 'notify(INVALID_KE_PAYLOAD)']);
  /* missing Ni: <-- { N(INVALID_SYNTAX) } */
  assert.deepEqual(refused(ikeSide('bob'), wire(withoutNonce(req), false)), ['respond', 'notify(INVALID_SYNTAX)']);
});

const withoutNonce = (m: IkeMessage): IkeMessage['payloads'] => m.payloads.filter((p) => p.kind !== 'nonce');

test('RFC 7296 §2.8.2: the peer\'s Delete of the old IKE SA overtakes the answer to our colliding rekey — the peer won, its new SA takes over now; without a collision the Delete hands nothing over', () => {
  const i = ikeSide('alice');
  assert.deepEqual(peerDeletedRekeyingIke(i.sa).effects, [], 'no rekey of ours in flight');
  const ours = expectTag(requestIkeRekey(i.env, i.sa, SPI_I).next, 'sent').offer;
  const rekeyInFlight = { ...outstanding({ kind: 'ike-rekey' }), scratch: { kind: 'ike-rekey' as const, offer: ours, collision: null } };
  i.sa.outstanding = rekeyInFlight;
  assert.deepEqual(peerDeletedRekeyingIke(i.sa).effects, [], 'no collision');
  const peerReq = requestIkeRekey(ikeSide('bob').env, ikeSide('bob').sa, SPI_I);
  const peerSa = freshOf(respond(ikeSide('alice'), request(peerReq)));
  // The nonces are not compared on this path (the peer's Delete settles it).
  i.sa.outstanding = { ...rekeyInFlight, scratch: { ...rekeyInFlight.scratch, collision: { peerSa, nonces: [expectTag(peerReq.next, 'sent').offer.ni] } } };
  /* <-- INFORMATIONAL { D(IKE) } */
  assert.deepEqual(peerDeletedRekeyingIke(i.sa).effects, [{ kind: 'forget-collision', sa: i.sa }, { kind: 'adopt', old: i.sa, successor: peerSa }]);
});

test('RFC 9370 §2.2.2: our IKE_FOLLOWUP_KE run failed — the error is reported and the IKE SA, which still works, rekeys again later', () => {
  const i = ikeSide('bob');
  const failure = ikeFailure({ code: 'ERR_IKE_FOLLOWUP_KE', message: 'x', exchange: 'IKE_FOLLOWUP_KE' });
  assert.deepEqual(ikeFollowupSettled(i.sa, { failure }).effects, [{ kind: 'error', failure }, { kind: 'retry-later', afterMs: REKEY_RETRY_MS }]);
  i.sa.state = { tag: 'deleting', up: fixtureUp('bob'), keyed: i.sa.state.keyed };
  assert.deepEqual(ikeFollowupSettled(i.sa, { failure }).effects, [{ kind: 'error', failure }], 'an SA on its way out is not rekeyed');
});

test('RFC 9370 §2.2.2, RFC 7296 §2.25: two hybrid rekeys that refuse each other with TEMPORARY_FAILURE — the IKE SA\'s responder waits twice as long as its original initiator before retrying, so the retries do not meet again', () => {
  for (const who of ROLES) {
    const i = ikeSide(who, { proposals: [HYBRID] });
    // The old SA was negotiated with an additional key exchange (as a hybrid rekey's answer chooses it).
    const hybrid = effect(respond(ikeSide(other(who), { proposals: [HYBRID] }), request(requestIkeRekey(i.env, i.sa, SPI_I))), 'followup').selected;
    i.sa.state = { ...i.sa.state, keyed: { ...i.sa.state.keyed, selected: hybrid } };
    const sent = expectTag(requestIkeRekey(i.env, i.sa, SPI_I).next, 'sent');
    /* <-- CREATE_CHILD_SA { N(TEMPORARY_FAILURE) } */
    const got = consumeIkeRekeyResponse(i.env, i.sa, sent, wire([notify(NotifyError.TEMPORARY_FAILURE)], true));
    assert.deepEqual(got.effects, [{ kind: 'retry-later', afterMs: who === 'alice' ? REKEY_RETRY_MS : 2 * REKEY_RETRY_MS }], `${who} is the SA's ${i.sa.role}`);
  }
});

test('RFC 9370 §2.2.2: the answer to our hybrid rekey comes after the peer\'s chain already replaced the IKE SA here — nothing more happens (no register, no run, no retry)', () => {
  const i = ikeSide('bob', { proposals: [HYBRID] });
  const req = requestIkeRekey(i.env, i.sa, SPI_I);
  const resp = respond(ikeSide('alice', { proposals: [HYBRID] }), request(req));
  i.sa.state = { tag: 'rekeyed', successor: ikeSide('bob').sa, up: fixtureUp('bob'), keyed: i.sa.state.keyed };
  /* <-- CREATE_CHILD_SA { SA, Nr, KEr, N(ADDITIONAL_KEY_EXCHANGE) }  (late) */
  assert.deepEqual(consumeIkeRekeyResponse(i.env, i.sa, expectTag(req.next, 'sent'), answer(resp)).effects, []);
});
