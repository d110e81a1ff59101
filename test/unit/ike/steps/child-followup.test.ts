// CREATE_CHILD_SA with RFC 9370 additional key exchanges as steps (src/ike/steps/child.ts,
// child-responder.ts, followup-ke.ts), without engines: literal states in, effects asserted, each
// message narrated, run with alice and with bob as the initiator. The pair tests
// (test/unit/ike/pair/intermediate.test.ts) drive the same steps through two engines, and
// e2e/interop/strongswan6-mlkem.test.ts against strongSwan 6.1.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { concatBytes } from '../../../../src/common/bytes.js';
import { ExchangeType, PrfId } from '../../../../src/ike/constants.js';
import { IkeMessage } from '../../../../src/ike/codec/message.js';
import { createPrf, prfPlus } from '../../../../src/ike/crypto/prf.js';
import type { KernelSa } from '../../../../src/ike/ports.js';
import type { ChildFollowupPending } from '../../../../src/ike/sa/ike-sa.js';
import { acceptChildAfterFollowup, acceptChildRequest, consumeChildRequest } from '../../../../src/ike/steps/child-responder.js';
import { childFollowupSettled, childInstalled, consumeChildResponse, requestChild, type ChildExchange } from '../../../../src/ike/steps/child.js';
import { consumeFollowupResponse, requestFollowup, respondFollowup, type FollowupKe } from '../../../../src/ike/steps/followup-ke.js';
import { effect, kinds, notify, NotifyError, other, shape, side, wire, type Who } from './fixtures.js';

const PFS = 'aes256gcm16-x25519-ke1_mlkem768';
const ROLES: readonly Who[] = ['alice', 'bob'];

function expectTag<T extends ChildExchange['tag']>(s: ChildExchange, tag: T): Extract<ChildExchange, { tag: T }> {
  if (s.tag !== tag) assert.fail(`state is ${s.tag}, want ${tag}`);
  return s as Extract<ChildExchange, { tag: T }>;
}
function expectRun<T extends FollowupKe['tag']>(s: FollowupKe, tag: T): Extract<FollowupKe, { tag: T }> {
  if (s.tag !== tag) assert.fail(`run is ${s.tag}, want ${tag}`);
  return s as Extract<FollowupKe, { tag: T }>;
}
const followupMsg = (payloads: Parameters<typeof wire>[0], response: boolean): IkeMessage =>
  new IkeMessage({ ...wire(payloads, response).header, exchangeType: ExchangeType.IKE_FOLLOWUP_KE, messageId: 4 }, payloads);
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const keyOf = (sa: KernelSa): string => hex(sa.algorithms.kind === 'aead' ? sa.algorithms.key.expose() : sa.algorithms.encryption.key.expose());

for (const I of ROLES) {
  const R = other(I);
  test(`RFC 9370 §2.2.2, §2.2.4: a new Child SA with ${PFS}, ${I} initiating — CREATE_CHILD_SA leaves the keys open, IKE_FOLLOWUP_KE closes them; KEYMAT = prf+(SK_d, SK(0) | Ni | Nr | SK(1)) on both sides`, () => {
    const i = side(I, { esp: [PFS] }); const r = side(R, { esp: [PFS] });
    /* CREATE_CHILD_SA { SA(.., ADDKE1 mlkem768), Ni, KEi(x25519), TSi, TSr } --> */
    const req = requestChild(i.env, { tag: 'create', runtime: i.runtime }, 0xc0000001);
    assert.deepEqual(shape(effect(req, 'send').payloads), ['sa', 'nonce', 'ke', 'tsi', 'tsr']);
    const chosen = consumeChildRequest(r.env, r.ike, wire(effect(req, 'send').payloads, false));
    /* <-- CREATE_CHILD_SA { SA, Nr, KEr(x25519), TSi, TSr, N(ADDITIONAL_KEY_EXCHANGE)(link1) }: no install yet */
    const acc = acceptChildRequest(r.env, r.ike, expectTag(chosen.next, 'chosen'), 0xd0000001);
    assert.deepEqual(kinds(acc), ['followup', 'respond']);
    assert.equal(acc.next.tag, 'done');
    const answer = effect(acc, 'respond').payloads;
    assert.deepEqual(shape(answer), ['sa', 'nonce', 'ke', 'tsi', 'tsr', 'notify(ADDITIONAL_KEY_EXCHANGE)']);
    const rPending = effect(acc, 'followup').pending as Extract<ChildFollowupPending, { role: 'responder' }>;
    const rRun = effect(acc, 'followup').state;
    const got = consumeChildResponse(i.env, i.ike, expectTag(req.next, 'create-sent'), wire(answer, true));
    assert.deepEqual(kinds(got), ['followup'], 'no install and no SPI released: the keys wait');
    const iPending = effect(got, 'followup').pending as Extract<ChildFollowupPending, { role: 'initiator' }>;
    const iRun = effect(got, 'followup').state;
    /* IKE_FOLLOWUP_KE { KEi(1) mlkem768, N(ADDITIONAL_KEY_EXCHANGE)(link1) } --> */
    const fReq = requestFollowup({ random: i.env.random, allowWeak: false }, expectRun(iRun, 'to-send'));
    /* <-- IKE_FOLLOWUP_KE { KEr(1) }: the responder keys and installs the Child SA, the answer leaves once the kernel has it */
    const fResp = respondFollowup({ random: r.env.random, allowWeak: false }, expectRun(rRun, 'awaiting'), followupMsg(fReq.effects.flatMap((e) => (e.kind === 'send' ? e.payloads : [])), false));
    assert.equal(fResp.next.tag, 'done');
    const rSecrets = fResp.effects.flatMap((e) => (e.kind === 'complete' ? [e.secrets] : []))[0]!;
    const rSecretsHex = rSecrets.map((x) => hex(x.expose()));
    const reply = fResp.effects.flatMap((e) => (e.kind === 'respond' ? e.payloads : []));
    const rAcc = acceptChildAfterFollowup(r.env, r.ike, rPending, rSecrets, reply);
    assert.deepEqual(kinds(rAcc), ['install']);
    const rInstalled = childInstalled(expectTag(rAcc.next, 'answer-installing'), true);
    assert.deepEqual(kinds(rInstalled), ['respond', 'emit:child-up']);
    assert.deepEqual(effect(rInstalled, 'respond').payloads, reply, 'the IKE_FOLLOWUP_KE answer, after the install');
    const iDone = consumeFollowupResponse({ random: i.env.random, allowWeak: false, for: { kind: 'child', name: 'net' } }, expectRun(fReq.next, 'ke-sent'), followupMsg(reply, true));
    const iSecrets = iDone.effects.flatMap((e) => (e.kind === 'complete' ? [e.secrets] : []))[0]!;
    assert.deepEqual(iSecrets.map((x) => hex(x.expose())), rSecretsHex, 'SK(0), SK(1) agree');
    const ni = iPending.sent.offer.ni; const nr = iPending.reply.nr;
    const settled = childFollowupSettled(i.env, i.ike, iPending, { secrets: iSecrets }, followupMsg(reply, true));
    assert.deepEqual(kinds(settled), ['install']);
    const iInstall = effect(settled, 'install').install; const rInstall = effect(rAcc, 'install').install;
    assert.equal(keyOf(iInstall.outbound), keyOf(rInstall.inbound), 'initiator-to-responder keys agree');
    assert.equal(keyOf(iInstall.inbound), keyOf(rInstall.outbound), 'responder-to-initiator keys agree');
    assert.equal(effect(settled, 'install').child.suiteText, PFS);
    // KEYMAT by hand: AES-GCM-256 takes 36 octets per direction, initiator-to-responder first.
    const seed = concatBytes(Buffer.from(rSecretsHex[0]!, 'hex'), ni, nr, Buffer.from(rSecretsHex[1]!, 'hex'));
    const km = prfPlus(createPrf(PrfId.PRF_HMAC_SHA2_256), i.ike.keys!.skD, seed, 72).expose();
    assert.equal(keyOf(iInstall.outbound), hex(km.subarray(0, 36)));
    assert.equal(keyOf(iInstall.inbound), hex(km.subarray(36, 72)));
    assert.equal(expectTag(settled.next, 'create-installing').child, effect(settled, 'install').child);
  });
}

test('RFC 9370 §2.2.2: a Child SA request with additional key exchanges while another IKE_FOLLOWUP_KE run is open on the IKE SA is answered TEMPORARY_FAILURE', () => {
  const i = side('alice', { esp: [PFS] });
  const r = side('bob', { esp: [PFS] });
  const req = requestChild(i.env, { tag: 'create', runtime: i.runtime }, 0xc0000002);
  /* CREATE_CHILD_SA { SA(.., ADDKE1), Ni, KEi, TSi, TSr } --> while bob runs IKE_FOLLOWUP_KE  <-- { N(TEMPORARY_FAILURE) } */
  const busy = consumeChildRequest(r.env, { ...r.ike, followup: { for: 'ike' } }, wire(effect(req, 'send').payloads, false));
  assert.deepEqual(kinds(busy), ['respond']);
  const n = effect(busy, 'respond').payloads[0]!;
  assert.equal(n.kind === 'notify' && n.type, NotifyError.TEMPORARY_FAILURE);
  // Without a run, the same request is chosen.
  assert.equal(consumeChildRequest(r.env, r.ike, wire(effect(req, 'send').payloads, false)).next.tag, 'chosen');
});

test('RFC 9370 §2.2.2: an IKE_FOLLOWUP_KE that fails after our CREATE_CHILD_SA — the SPI is released, the error reported, nothing installed', () => {
  const i = side('alice', { esp: [PFS] }); const r = side('bob', { esp: [PFS] });
  const req = requestChild(i.env, { tag: 'create', runtime: i.runtime }, 0xc0000003);
  const acc = acceptChildRequest(r.env, r.ike, expectTag(consumeChildRequest(r.env, r.ike, wire(effect(req, 'send').payloads, false)).next, 'chosen'), 0xd0000003);
  const got = consumeChildResponse(i.env, i.ike, expectTag(req.next, 'create-sent'), wire(effect(acc, 'respond').payloads, true));
  const pending = effect(got, 'followup').pending as Extract<ChildFollowupPending, { role: 'initiator' }>;
  /* <-- IKE_FOLLOWUP_KE { N(STATE_NOT_FOUND) } */
  const failure = { code: 'ERR_IKE_CHILD_REFUSED', message: 'peer refused', exchange: 'IKE_FOLLOWUP_KE' as const, notify: 'STATE_NOT_FOUND', origin: 'remote' as const, proposals: null, trafficSelectors: null };
  const s = childFollowupSettled(i.env, i.ike, pending, { failure }, followupMsg([{ kind: 'notify', protocolId: 0, spi: new Uint8Array(0), type: NotifyError.STATE_NOT_FOUND, data: new Uint8Array(0) }], true));
  assert.deepEqual(kinds(s), ['release-spi', 'emit:error', 'note-failed']);
  assert.equal(effect(s, 'release-spi').spi, 0xc0000003);
});

test('RFC 9370 §2.2.2: the peer refuses an IKE_FOLLOWUP_KE of a Child SA — the failure names the Child SA (ERR_IKE_CHILD_REFUSED), not an IKE SA rekey', () => {
  const i = side('alice', { esp: [PFS] }); const r = side('bob', { esp: [PFS] });
  const req = requestChild(i.env, { tag: 'create', runtime: i.runtime }, 0xc0000004);
  const acc = acceptChildRequest(r.env, r.ike, expectTag(consumeChildRequest(r.env, r.ike, wire(effect(req, 'send').payloads, false)).next, 'chosen'), 0xd0000004);
  const run = effect(consumeChildResponse(i.env, i.ike, expectTag(req.next, 'create-sent'), wire(effect(acc, 'respond').payloads, true)), 'followup').state;
  const fReq = requestFollowup({ random: i.env.random, allowWeak: false }, expectRun(run, 'to-send'));
  /* IKE_FOLLOWUP_KE { KEi(1), N(ADDITIONAL_KEY_EXCHANGE) } -->  <-- IKE_FOLLOWUP_KE { N(STATE_NOT_FOUND) } */
  const refused = followupMsg([notify(NotifyError.STATE_NOT_FOUND)], true);
  const child = consumeFollowupResponse({ random: i.env.random, allowWeak: false, for: { kind: 'child', name: 'net' } }, expectRun(fReq.next, 'ke-sent'), refused);
  const failed = child.effects.flatMap((e) => (e.kind === 'failed' ? [e.failure] : []))[0];
  assert.equal(failed?.code, 'ERR_IKE_CHILD_REFUSED');
  assert.equal(failed?.message, 'peer refused additional key exchange 1 (mlkem768) of Child SA net with STATE_NOT_FOUND');
  // The same refusal in an IKE SA rekey's run says so.
  const ike = consumeFollowupResponse({ random: i.env.random, allowWeak: false, for: { kind: 'ike' } }, expectRun(fReq.next, 'ke-sent'), refused);
  const ikeFailed = ike.effects.flatMap((e) => (e.kind === 'failed' ? [e.failure] : []))[0];
  assert.deepEqual([ikeFailed?.code, ikeFailed?.message], ['ERR_IKE_REKEY_REFUSED', 'peer refused additional key exchange 1 (mlkem768) of the IKE SA rekey with STATE_NOT_FOUND']);
});
