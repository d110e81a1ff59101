// IKE_FOLLOWUP_KE steps (src/ike/steps/followup-ke.ts) without engines: literal states and keys
// in, effects asserted, each exchange narrated message by message. The CREATE_CHILD_SA before
// them is stood in for by its results (SK(0), nonces, the new SPIs, the responder's first link).
// The pair test (test/unit/ike/pair/intermediate.test.ts) drives the same steps through two
// engines, and e2e/interop/strongswan6-mlkem.test.ts against strongSwan 6.1.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SecretBytes } from '../../../../src/common/secret.js';
import { SeededRandom } from '../../../../src/common/time.js';
import { DhId, EncrId, ExchangeType, NotifyError, NotifyStatus, PrfId } from '../../../../src/ike/constants.js';
import type { IkeHeader } from '../../../../src/ike/codec/header.js';
import { IkeMessage } from '../../../../src/ike/codec/message.js';
import type { IkePayload } from '../../../../src/ike/codec/payload.js';
import { notify } from '../../../../src/ike/codec/payloads/notify.js';
import { expandIkeSaKeys, type IkeSaKeys } from '../../../../src/ike/crypto/keys.js';
import { createPrf } from '../../../../src/ike/crypto/prf.js';
import type { NonEmpty } from '../../../../src/ike/non-empty.js';
import {
  consumeFollowupResponse, followupMethods, initiatorStart, linkNotify, rekeyedIkeKeys, requestFollowup, respondFollowup,
  type FollowupEffect, type FollowupKe, type FollowupRunView, type FollowupStep, type RekeyedIkeInputs,
} from '../../../../src/ike/steps/followup-ke.js';

const SUITE = { encrId: EncrId.ENCR_AES_GCM_16, encrKeyBits: 256, prfId: PrfId.PRF_HMAC_SHA2_256 };
const PRF = createPrf(SUITE.prfId);
/** The old IKE SA's SK_d. */
const SK_D = new SecretBytes(new Uint8Array(32).fill(0x0d));
/** The CREATE_CHILD_SA's nonces and the new IKE SA's SPIs. */
const NI = Uint8Array.from({ length: 32 }, (_, i) => i);
const NR = Uint8Array.from({ length: 32 }, (_, i) => 0x80 + i);
const SPI_I = Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8);
const SPI_R = Uint8Array.of(9, 10, 11, 12, 13, 14, 15, 16);
const LINK1 = Uint8Array.of(0xa1, 0xa2, 0xa3, 0xa4);
/** SK(0), the CREATE_CHILD_SA KE's shared secret (a fresh copy each time: the steps wipe what they finish with). */
const sk0 = (): SecretBytes => new SecretBytes(new Uint8Array(32).fill(0x50));

function view(seed: number): FollowupRunView {
  return { random: new SeededRandom(seed), allowWeak: false, for: { kind: 'ike' } };
}

/** The new IKE SA's key inputs (RFC 9370 §2.2.4): the old SA's PRF and SK_d, the CREATE_CHILD_SA's nonces, the new SPIs. */
const INPUTS: RekeyedIkeInputs = { prf: PRF, skD: SK_D, suite: SUITE, ni: NI, nr: NR, spiI: SPI_I, spiR: SPI_R };
/** The new IKE SA's keys from a step's complete effect. */
const keysOf = (s: FollowupStep): IkeSaKeys => rekeyedIkeKeys(INPUTS, effect(s, 'complete').secrets);

function header(messageId: number, response: boolean): IkeHeader {
  return { initiatorSpi: 0x1111111111111111n, responderSpi: 0x2222222222222222n, exchangeType: ExchangeType.IKE_FOLLOWUP_KE, initiator: !response, response, higherVersion: false, minorVersion: 0, messageId };
}

function effect<K extends FollowupEffect['kind']>(s: FollowupStep, kind: K): Extract<FollowupEffect, { kind: K }> {
  const e = s.effects.find((x) => x.kind === kind);
  if (!e) assert.fail(`no ${kind} effect in ${JSON.stringify(s.effects.map((x) => x.kind))}`);
  return e as Extract<FollowupEffect, { kind: K }>;
}

function expectTag<T extends FollowupKe['tag']>(s: FollowupKe, tag: T): Extract<FollowupKe, { tag: T }> {
  if (s.tag !== tag) assert.fail(`state is ${s.tag}, want ${tag}`);
  return s as Extract<FollowupKe, { tag: T }>;
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const keysHex = (k: IkeSaKeys): string[] => [k.skD, k.skAi, k.skAr, k.skEi, k.skEr, k.skPi, k.skPr].map((x) => hex(x.expose()));
const linkIn = (ps: readonly IkePayload[]): string | null => {
  const n = ps.find((p) => p.kind === 'notify' && p.type === NotifyStatus.ADDITIONAL_KEY_EXCHANGE);
  return n && n.kind === 'notify' ? hex(n.data) : null;
};
const awaiting = (methods: NonEmpty<number>, link = LINK1): FollowupKe => ({ tag: 'awaiting', n: 1, methods, link, secrets: [sk0()] });

test('RFC 9370 §2.2.2: the ADDKE methods other than NONE of the chosen IKE proposal run in transform type order', () => {
  assert.deepEqual(followupMethods([{ type: 7, id: DhId.ML_KEM_1024 }, { type: 4, id: DhId.CURVE25519 }, { type: 6, id: DhId.ML_KEM_768 }, { type: 8, id: 0 }]), [DhId.ML_KEM_768, DhId.ML_KEM_1024]);
});

test('RFC 9370 §2.2.2, §2.2.4: one IKE_FOLLOWUP_KE with ML-KEM-768 — the link goes back, the last answer has none, both sides key the new IKE SA with prf(SK_d, SK(0) | Ni | Nr | SK(1))', () => {
  const iv = view(1); const rv = view(2);
  /* <-- CREATE_CHILD_SA response {SA(.., ADDKE1 mlkem768), Nr, KEr, N(ADDITIONAL_KEY_EXCHANGE)(a1a2a3a4)}: SK(0) known to both */
  const i0 = initiatorStart([DhId.ML_KEM_768], sk0(), LINK1);
  /* IKE_FOLLOWUP_KE request {KEi(1), N(ADDITIONAL_KEY_EXCHANGE)(a1a2a3a4)} --> */
  const req = requestFollowup(iv, i0);
  const sent = effect(req, 'send').payloads;
  assert.equal(sent[0]!.kind === 'ke' && sent[0]!.group, DhId.ML_KEM_768);
  assert.equal(linkIn(sent), hex(LINK1), 'the request carries the link the responder gave');
  /* <-- IKE_FOLLOWUP_KE response {KEr(1)}: no link, this was the last exchange */
  const resp = respondFollowup(rv, expectTag(awaiting([DhId.ML_KEM_768]), 'awaiting'), new IkeMessage(header(5, false), sent));
  assert.deepEqual(resp.effects.map((e) => e.kind), ['respond', 'complete']);
  const answer = effect(resp, 'respond').payloads;
  assert.equal(linkIn(answer), null);
  assert.equal(expectTag(resp.next, 'done').count, 1);
  const got = consumeFollowupResponse(iv, expectTag(req.next, 'ke-sent'), new IkeMessage(header(5, true), answer));
  assert.deepEqual(got.effects.map((e) => e.kind), ['complete']);
  assert.equal(expectTag(got.next, 'done').count, 1);
  assert.deepEqual(keysHex(keysOf(got)), keysHex(keysOf(resp)), 'same seven keys on both sides');
  // The formula by hand: SK(1) as the initiator's share computes it.
  const ke = answer[0]!;
  const sk1 = expectTag(req.next, 'ke-sent').share.computeSharedSecret(ke.kind === 'ke' ? ke.data : new Uint8Array(0));
  const skeyseed = new SecretBytes(PRF.compute(SK_D, sk0().expose(), NI, NR, sk1.expose()));
  assert.deepEqual(keysHex(keysOf(got)), keysHex(expandIkeSaKeys(SUITE, skeyseed, NI, NR, SPI_I, SPI_R)));
  // Not the RFC 7296 §2.18 keys from SK(0) alone, nor the secrets in another order.
  const plain = new SecretBytes(PRF.compute(SK_D, sk0().expose(), NI, NR));
  assert.notDeepEqual(keysHex(keysOf(got)), keysHex(expandIkeSaKeys(SUITE, plain, NI, NR, SPI_I, SPI_R)));
  const swapped = new SecretBytes(PRF.compute(SK_D, sk1.expose(), NI, NR, sk0().expose()));
  assert.notDeepEqual(keysHex(keysOf(got)), keysHex(expandIkeSaKeys(SUITE, swapped, NI, NR, SPI_I, SPI_R)));
});

test('RFC 9370 §2.2.2: two methods — response 1 hands out a new link, request 2 must carry it; keys only after exchange 2', () => {
  const methods: NonEmpty<number> = [DhId.ML_KEM_768, DhId.CURVE25519];
  const iv = view(3); const rv = view(4);
  let i: FollowupKe = initiatorStart(methods, sk0(), LINK1);
  let r: FollowupKe = awaiting(methods);
  /* IKE_FOLLOWUP_KE request 1 {KEi(1), N(AKE)(link1)} --> <-- {KEr(1), N(AKE)(link2)} */
  const req1 = requestFollowup(iv, expectTag(i, 'to-send'));
  const resp1 = respondFollowup(rv, expectTag(r, 'awaiting'), new IkeMessage(header(5, false), effect(req1, 'send').payloads));
  assert.deepEqual(resp1.effects.map((e) => e.kind), ['respond'], 'no keys yet');
  const link2 = linkIn(effect(resp1, 'respond').payloads);
  assert.ok(link2 !== null && link2 !== hex(LINK1), 'a new link for exchange 2');
  const got1 = consumeFollowupResponse(iv, expectTag(req1.next, 'ke-sent'), new IkeMessage(header(5, true), effect(resp1, 'respond').payloads));
  assert.deepEqual(got1.effects, []);
  i = got1.next; r = resp1.next;
  assert.equal(expectTag(i, 'to-send').n, 2);
  assert.equal(expectTag(r, 'awaiting').n, 2);
  /* IKE_FOLLOWUP_KE request 2 {KEi(2), N(AKE)(link2)} --> <-- {KEr(2)} */
  const req2 = requestFollowup(iv, expectTag(i, 'to-send'));
  assert.equal(linkIn(effect(req2, 'send').payloads), link2);
  const sent2 = effect(req2, 'send').payloads[0]!;
  assert.equal(sent2.kind === 'ke' && sent2.group, DhId.CURVE25519);
  // The old link no longer opens exchange 2.
  const stale = respondFollowup(rv, expectTag(r, 'awaiting'), new IkeMessage(header(6, false), [sent2, linkNotify(LINK1)]));
  assert.equal(effect(stale, 'respond').payloads[0]!.kind === 'notify' && (effect(stale, 'respond').payloads[0] as { type: number }).type, NotifyError.STATE_NOT_FOUND);
  const resp2 = respondFollowup(rv, expectTag(r, 'awaiting'), new IkeMessage(header(6, false), effect(req2, 'send').payloads));
  const got2 = consumeFollowupResponse(iv, expectTag(req2.next, 'ke-sent'), new IkeMessage(header(6, true), effect(resp2, 'respond').payloads));
  assert.equal(expectTag(got2.next, 'done').count, 2);
  assert.deepEqual(keysHex(keysOf(got2)), keysHex(keysOf(resp2)));
});

test('RFC 9370 §2.2.2: a request with no link or a link we did not give is STATE_NOT_FOUND; a wrong KE is INVALID_SYNTAX; the state does not move', () => {
  const r0 = expectTag(awaiting([DhId.ML_KEM_768]), 'awaiting');
  const ke = requestFollowup(view(5), initiatorStart([DhId.ML_KEM_768], sk0(), LINK1));
  const kei = effect(ke, 'send').payloads[0]!;
  const cases: Array<[readonly IkePayload[], number]> = [
    [[kei], NotifyError.STATE_NOT_FOUND],
    [[kei, linkNotify(Uint8Array.of(1, 2, 3, 4))], NotifyError.STATE_NOT_FOUND],
    [[{ kind: 'ke', group: DhId.CURVE25519, data: new Uint8Array(32) }, linkNotify(LINK1)], NotifyError.INVALID_SYNTAX],
    [[{ kind: 'ke', group: DhId.ML_KEM_768, data: new Uint8Array(100) }, linkNotify(LINK1)], NotifyError.INVALID_SYNTAX],
  ];
  for (const [payloads, want] of cases) {
    /* IKE_FOLLOWUP_KE request {(bad)} --> <-- {N(error)} */
    const s = respondFollowup(view(6), r0, new IkeMessage(header(5, false), payloads));
    assert.deepEqual(s.effects.map((e) => e.kind), ['respond', 'failed']);
    const reply = effect(s, 'respond').payloads[0]!;
    assert.equal(reply.kind === 'notify' && reply.type, want);
    assert.equal(effect(s, 'failed').failure.exchange, 'IKE_FOLLOWUP_KE');
    assert.equal(s.next, r0);
  }
});

test('RFC 9370 §2.2.2: the initiator fails the rekey on a refusal, a KE of another method, or a missing link when more exchanges remain', () => {
  const sent = expectTag(requestFollowup(view(7), initiatorStart([DhId.ML_KEM_768, DhId.ML_KEM_1024], sk0(), LINK1)).next, 'ke-sent');
  /* <-- IKE_FOLLOWUP_KE response {N(STATE_NOT_FOUND)} */
  const refused = consumeFollowupResponse(view(7), sent, new IkeMessage(header(5, true), [notify(NotifyError.STATE_NOT_FOUND)]));
  assert.equal(effect(refused, 'failed').failure.notify, 'STATE_NOT_FOUND');
  /* <-- IKE_FOLLOWUP_KE response {KE(x25519)} */
  const wrong = consumeFollowupResponse(view(7), sent, new IkeMessage(header(5, true), [{ kind: 'ke', group: DhId.CURVE25519, data: new Uint8Array(32) }]));
  assert.match(effect(wrong, 'failed').failure.message, /want mlkem768/);
  /* <-- IKE_FOLLOWUP_KE response {KEr(1)} without N(ADDITIONAL_KEY_EXCHANGE), though exchange 2 is due */
  const r = respondFollowup(view(8), expectTag(awaiting([DhId.ML_KEM_768, DhId.ML_KEM_1024]), 'awaiting'), new IkeMessage(header(5, false), effect(requestFollowup(view(7), initiatorStart([DhId.ML_KEM_768, DhId.ML_KEM_1024], sk0(), LINK1)), 'send').payloads));
  const kerOnly = effect(r, 'respond').payloads.filter((p) => p.kind === 'ke');
  const nolink = consumeFollowupResponse(view(7), sent, new IkeMessage(header(5, true), kerOnly));
  assert.match(effect(nolink, 'failed').failure.message, /no ADDITIONAL_KEY_EXCHANGE/);
  for (const s of [refused, wrong, nolink]) assert.equal(s.next, sent);
});
