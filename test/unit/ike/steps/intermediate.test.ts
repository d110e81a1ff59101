// IKE_INTERMEDIATE steps (src/ike/steps/intermediate.ts) without engines: literal states and keys
// in, effects asserted, each exchange narrated message by message. The pair test
// (test/unit/ike/pair/intermediate.test.ts) drives the same steps through two engines, and
// e2e/interop/strongswan6-mlkem.test.ts against strongSwan 6.1.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SecretBytes } from '../../../../src/common/secret.js';
import { SeededRandom } from '../../../../src/common/time.js';
import { DhId, EncrId, ExchangeType, NotifyError, PayloadType, PrfId } from '../../../../src/ike/constants.js';
import type { IkeHeader } from '../../../../src/ike/codec/header.js';
import { Writer } from '../../../../src/common/bytes.js';
import { encodeEncryptedFragments, joinFragmentsMessage, openEncryptedMessage, type Opener, type Sealer } from '../../../../src/ike/codec/envelope.js';
import { encodeHeader } from '../../../../src/ike/codec/header.js';
import { decodeMessage, IkeMessage } from '../../../../src/ike/codec/message.js';
import type { IkePayload } from '../../../../src/ike/codec/payload.js';
import { notify } from '../../../../src/ike/codec/payloads/notify.js';
import { computeRekeyedSkeyseed, expandIkeSaKeys, type IkeSaKeys } from '../../../../src/ike/crypto/keys.js';
import { createPrf } from '../../../../src/ike/crypto/prf.js';
import type { NonEmpty } from '../../../../src/ike/non-empty.js';
import {
  additionalMethods, consumeIntermediateResponse, EMPTY_CHAIN, intAuthData, intAuthOctets, receivedIntAuthData, requestIntermediate, respondIntermediate,
  type Intermediate, type IntermediateEffect, type IntermediateStep, type IntermediateView,
} from '../../../../src/ike/steps/intermediate.js';

const SUITE = { encrId: EncrId.ENCR_AES_GCM_16, encrKeyBits: 256, prfId: PrfId.PRF_HMAC_SHA2_256 };
const PRF = createPrf(SUITE.prfId);
const NI = Uint8Array.from({ length: 32 }, (_, i) => i);
const NR = Uint8Array.from({ length: 32 }, (_, i) => 0x80 + i);
const SPI_I = Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8);
const SPI_R = Uint8Array.of(9, 10, 11, 12, 13, 14, 15, 16);
/** The keys after IKE_SA_INIT (any fixed SKEYSEED will do: both sides start from the same). */
const INIT_KEYS = expandIkeSaKeys(SUITE, new SecretBytes(new Uint8Array(32).fill(7)), NI, NR, SPI_I, SPI_R);

function view(keys: IkeSaKeys, seed: number): IntermediateView {
  return { suite: SUITE, prf: PRF, skD: keys.skD, skPi: keys.skPi, skPr: keys.skPr, ni: NI, nr: NR, spiI: SPI_I, spiR: SPI_R, random: new SeededRandom(seed), allowWeak: false };
}

function header(messageId: number, response: boolean): IkeHeader {
  return { initiatorSpi: 0x0102030405060708n, responderSpi: 0x090a0b0c0d0e0f10n, exchangeType: ExchangeType.IKE_INTERMEDIATE, initiator: !response, response, higherVersion: false, minorVersion: 0, messageId };
}

function effect<K extends IntermediateEffect['kind']>(s: IntermediateStep, kind: K): Extract<IntermediateEffect, { kind: K }> {
  const e = s.effects.find((x) => x.kind === kind);
  if (!e) assert.fail(`no ${kind} effect in ${JSON.stringify(s.effects.map((x) => x.kind))}`);
  return e as Extract<IntermediateEffect, { kind: K }>;
}

function expectTag<T extends Intermediate['tag']>(s: Intermediate, tag: T): Extract<Intermediate, { tag: T }> {
  if (s.tag !== tag) assert.fail(`state is ${s.tag}, want ${tag}`);
  return s as Extract<Intermediate, { tag: T }>;
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const keysHex = (k: IkeSaKeys): string[] => [k.skD, k.skAi, k.skAr, k.skEi, k.skEr, k.skPi, k.skPr].map((x) => hex(x.expose()));

test('RFC 9370 §2.2.1: ADDKE methods other than NONE run in transform type order, whatever order the proposal lists them in', () => {
  assert.deepEqual(additionalMethods([{ type: 7, id: DhId.ML_KEM_1024 }, { type: 4, id: DhId.CURVE25519 }, { type: 6, id: DhId.ML_KEM_768 }, { type: 8, id: DhId.NONE }]), [DhId.ML_KEM_768, DhId.ML_KEM_1024]);
});

test('RFC 9242 §3.3.2: IntAuth_A | IntAuth_P is the IKE header and SK header with Length fields counting only those and the cleartext inner payloads', () => {
  const inner: IkePayload[] = [notify(NotifyError.INVALID_SYNTAX)];
  const d = intAuthData(header(1, false), inner);
  const innerBytes = d.subarray(32);
  assert.equal(innerBytes.length, 8, 'one notify: 4-byte generic header + protocol, SPI size, type');
  const v = new DataView(d.buffer, d.byteOffset);
  assert.equal(d[16], PayloadType.SK, 'header Next Payload: Encrypted');
  assert.equal(d[18], ExchangeType.IKE_INTERMEDIATE);
  assert.equal(d[19], 0x08, 'flags as sent: Initiator');
  assert.equal(v.getUint32(20), 1, 'the message ID as sent');
  assert.equal(v.getUint32(24), 28 + 4 + 8, 'IKE Length: header + SK header + cleartext, no IV, padding or ICV');
  assert.equal(d[28], PayloadType.NOTIFY, 'SK Next Payload: the first inner payload');
  assert.equal(v.getUint16(30), 4 + 8, 'SK Payload Length: generic header + cleartext');
});

for (const method of [DhId.ML_KEM_768, DhId.CURVE25519]) {
  test(`RFC 9370 §2.2.1: one IKE_INTERMEDIATE with ${method === DhId.ML_KEM_768 ? 'ML-KEM-768' : 'x25519 (a DH method as ADDKE)'} — both sides derive the same SKEYSEED(1) keys and IntAuth chain`, () => {
    const i0: Intermediate = { tag: 'to-send', n: 1, methods: [method], chain: EMPTY_CHAIN };
    const r0: Intermediate = { tag: 'awaiting', n: 1, methods: [method], chain: EMPTY_CHAIN };
    const iv = view(INIT_KEYS, 1); const rv = view(INIT_KEYS, 2);
    /* IKE_INTERMEDIATE request 1 { KEi(1) } --> */
    const req = requestIntermediate(iv, i0, header(1, false));
    assert.deepEqual(req.effects.map((e) => e.kind), ['send']);
    const sent = effect(req, 'send').payloads;
    assert.equal(sent.length, 1);
    assert.equal(sent[0]!.kind === 'ke' && sent[0]!.group, method);
    const iSent = expectTag(req.next, 'ke-sent');
    /* <-- IKE_INTERMEDIATE response 1 { KEr(1) }, then the responder's keys change */
    const resp = respondIntermediate(rv, r0, new IkeMessage(header(1, false), sent), header(1, true));
    assert.deepEqual(resp.effects.map((e) => e.kind), ['respond', 'update-keys'], 'the answer leaves under the old keys, then the keys change');
    const rDone = expectTag(resp.next, 'done');
    const got = consumeIntermediateResponse(iv, iSent, new IkeMessage(header(1, true), effect(resp, 'respond').payloads));
    assert.deepEqual(got.effects.map((e) => e.kind), ['update-keys']);
    const iDone = expectTag(got.next, 'done');
    assert.equal(iDone.count, 1);
    const iKeys = effect(got, 'update-keys').raw; const rKeys = effect(resp, 'update-keys').raw;
    assert.deepEqual(keysHex(iKeys), keysHex(rKeys), 'same seven keys on both sides');
    assert.notDeepEqual(keysHex(iKeys), keysHex(INIT_KEYS), 'and not the IKE_SA_INIT keys');
    assert.deepEqual([hex(iDone.chain.i), hex(iDone.chain.r)], [hex(rDone.chain.i), hex(rDone.chain.r)], 'same IntAuth_i1 and IntAuth_r1');
    // IntAuth_i1 = prf(SK_pi(0), IntAuth_A | IntAuth_P) (the empty IntAuth_i0 adds nothing).
    assert.equal(hex(iDone.chain.i), hex(PRF.compute(INIT_KEYS.skPi, intAuthData(header(1, false), sent))));
    assert.equal(hex(iDone.chain.r), hex(PRF.compute(INIT_KEYS.skPr, intAuthData(header(1, true), effect(resp, 'respond').payloads))));
    assert.equal(hex(intAuthOctets(iDone.chain, 2)), hex(iDone.chain.i) + hex(iDone.chain.r) + '00000002', 'IntAuth = IntAuth_i | IntAuth_r | IKE_AUTH_MID');
  });
}

test('RFC 9370 §2.2.1: SKEYSEED(n) = prf(SK_d(n-1), SK(n) | Ni | Nr), the seven keys from prf+(SKEYSEED(n), Ni | Nr | SPIi | SPIr)', () => {
  const iv = view(INIT_KEYS, 3);
  const req = requestIntermediate(iv, { tag: 'to-send', n: 1, methods: [DhId.CURVE25519], chain: EMPTY_CHAIN }, header(1, false));
  const sent = effect(req, 'send').payloads;
  const resp = respondIntermediate(view(INIT_KEYS, 4), { tag: 'awaiting', n: 1, methods: [DhId.CURVE25519], chain: EMPTY_CHAIN }, new IkeMessage(header(1, false), sent), header(1, true));
  const kr = effect(resp, 'respond').payloads[0]!;
  // The shared secret, as the initiator's share computes it, into the formula by hand.
  const share = expectTag(req.next, 'ke-sent').share;
  const secret = share.computeSharedSecret(kr.kind === 'ke' ? kr.data : new Uint8Array(0));
  const want = expandIkeSaKeys(SUITE, computeRekeyedSkeyseed(PRF, INIT_KEYS.skD, secret, NI, NR), NI, NR, SPI_I, SPI_R);
  assert.deepEqual(keysHex(effect(resp, 'update-keys').raw), keysHex(want));
});

test('RFC 9370 §2.2.1: two exchanges chain IntAuth (IntAuth_i2 = prf(SK_pi(1), IntAuth_i1 | A | P)) and use the keys of exchange 1 for exchange 2', () => {
  const methods: NonEmpty<number> = [DhId.ML_KEM_768, DhId.ML_KEM_1024];
  let iKeys = INIT_KEYS; let rKeys = INIT_KEYS;
  let i: Intermediate = { tag: 'to-send', n: 1, methods, chain: EMPTY_CHAIN };
  let r: Intermediate = { tag: 'awaiting', n: 1, methods, chain: EMPTY_CHAIN };
  let chain1 = EMPTY_CHAIN; let sent2: readonly IkePayload[] = []; let keys1 = INIT_KEYS;
  for (const n of [1, 2]) {
    /* IKE_INTERMEDIATE request n { KEi(n) } --> <-- { KEr(n) } */
    const req = requestIntermediate(view(iKeys, 10 + n), expectTag(i, 'to-send'), header(n, false));
    const resp = respondIntermediate(view(rKeys, 20 + n), expectTag(r, 'awaiting'), new IkeMessage(header(n, false), effect(req, 'send').payloads), header(n, true));
    const got = consumeIntermediateResponse(view(iKeys, 10 + n), expectTag(req.next, 'ke-sent'), new IkeMessage(header(n, true), effect(resp, 'respond').payloads));
    if (n === 1) {
      assert.equal(expectTag(got.next, 'to-send').n, 2);
      assert.equal(expectTag(resp.next, 'awaiting').n, 2);
      chain1 = expectTag(got.next, 'to-send').chain;
    } else {
      // Exchange 2's request was protected with the keys of exchange 1: its IntAuth uses SK_pi(1).
      sent2 = effect(req, 'send').payloads;
      keys1 = iKeys;
    }
    iKeys = effect(got, 'update-keys').raw; rKeys = effect(resp, 'update-keys').raw;
    i = got.next; r = resp.next;
  }
  assert.deepEqual(keysHex(iKeys), keysHex(rKeys));
  const iDone = expectTag(i, 'done'); const rDone = expectTag(r, 'done');
  assert.equal(iDone.count, 2);
  assert.deepEqual([hex(iDone.chain.i), hex(iDone.chain.r)], [hex(rDone.chain.i), hex(rDone.chain.r)]);
  assert.equal(hex(iDone.chain.i), hex(PRF.compute(keys1.skPi, chain1.i, intAuthData(header(2, false), sent2))), 'IntAuth_i2 = prf(SK_pi(1), IntAuth_i1 | A | P)');
  assert.notEqual(hex(keys1.skPi.expose()), hex(INIT_KEYS.skPi.expose()));
});

test('RFC 9370 §2.2.1: a request with the wrong method or no KE is answered INVALID_SYNTAX and ends the setup; the state does not move', () => {
  const r0: Intermediate = { tag: 'awaiting', n: 1, methods: [DhId.ML_KEM_768], chain: EMPTY_CHAIN };
  for (const payloads of [[], [{ kind: 'ke' as const, group: DhId.CURVE25519, data: new Uint8Array(32) }], [{ kind: 'ke' as const, group: DhId.ML_KEM_768, data: new Uint8Array(100) }]]) {
    /* IKE_INTERMEDIATE request 1 { (bad) } --> <-- { N(INVALID_SYNTAX) } */
    const s = respondIntermediate(view(INIT_KEYS, 5), r0, new IkeMessage(header(1, false), payloads), header(1, true));
    assert.deepEqual(s.effects.map((e) => e.kind), ['respond', 'failed']);
    const reply = effect(s, 'respond').payloads[0]!;
    assert.equal(reply.kind === 'notify' && reply.type, NotifyError.INVALID_SYNTAX);
    assert.match(effect(s, 'failed').failure.message, /KE|bytes/);
    assert.equal(s.next, r0);
  }
});

test('RFC 9242 §3: the responder refusing the exchange (an error notify) or answering with another method fails the setup with the reason', () => {
  const i0 = requestIntermediate(view(INIT_KEYS, 6), { tag: 'to-send', n: 1, methods: [DhId.ML_KEM_768], chain: EMPTY_CHAIN }, header(1, false));
  const sent = expectTag(i0.next, 'ke-sent');
  /* <-- IKE_INTERMEDIATE response 1 { N(NO_PROPOSAL_CHOSEN) } */
  const refused = consumeIntermediateResponse(view(INIT_KEYS, 6), sent, new IkeMessage(header(1, true), [notify(NotifyError.NO_PROPOSAL_CHOSEN)]));
  assert.equal(effect(refused, 'failed').failure.notify, 'NO_PROPOSAL_CHOSEN');
  /* <-- IKE_INTERMEDIATE response 1 { KE(x25519) } */
  const wrong = consumeIntermediateResponse(view(INIT_KEYS, 6), sent, new IkeMessage(header(1, true), [{ kind: 'ke', group: DhId.CURVE25519, data: new Uint8Array(32) }]));
  assert.match(effect(wrong, 'failed').failure.message, /want mlkem768/);
  assert.equal(effect(wrong, 'failed').failure.exchange, 'IKE_INTERMEDIATE');
});

/** A cipher that is no cipher: the body is the plaintext, so the datagram shows exactly what IntAuth covers. */
const CLEAR: Sealer & Opener = { encryptedLength: (n) => n, encrypt: (p) => p, decrypt: (b) => b };

test('RFC 9242 §3.1: IntAuth of a received IKE_INTERMEDIATE covers the octets as received (RESERVED bits set), not our re-encoding of them', () => {
  // A peer may set bits RFC 7296 §3.2/§3.4 tell receivers to ignore; its IntAuth covers them, so
  // ours must too, or AUTH fails against a conforming peer (re-encoding writes zeros there).
  const method = DhId.CURVE25519;
  const iv = view(INIT_KEYS, 1);
  const req = requestIntermediate(iv, { tag: 'to-send', n: 1, methods: [method], chain: EMPTY_CHAIN }, header(1, false));
  const sentKe = effect(req, 'send').payloads[0] as Extract<IkePayload, { kind: 'ke' }>;
  const answer = respondIntermediate(view(INIT_KEYS, 2), { tag: 'awaiting', n: 1, methods: [method], chain: EMPTY_CHAIN },
    new IkeMessage(header(1, false), [sentKe]), header(1, true));
  const ke = effect(answer, 'respond').payloads[0] as Extract<IkePayload, { kind: 'ke' }>;
  /* <-- IKE_INTERMEDIATE response 1 SK { KEr(1) }, built by hand: SK and KE generic headers with RESERVED bits, KE RESERVED 0xbeef */
  const inner = new Writer(64).u8(PayloadType.NONE).u8(0x01).u16(8 + ke.data.length).u16(ke.group).u16(0xbeef).bytes(ke.data).finish();
  const w = new Writer(128);
  encodeHeader(w, header(1, true), PayloadType.SK);
  const datagram = w.u8(PayloadType.KE).u8(0x7f).u16(4 + inner.length).bytes(inner).finish();
  new DataView(datagram.buffer).setUint32(24, datagram.length);
  const m = openEncryptedMessage(decodeMessage(datagram), datagram, CLEAR);
  assert.deepEqual(m.first('ke')?.data, ke.data, 'the peer\'s KE decodes as sent');
  const reencoded = intAuthData(m.header, m.payloads);
  assert.notDeepEqual(reencoded, datagram, 'the re-encoding differs from what was sent (else this test shows nothing)');
  assert.deepEqual(receivedIntAuthData(m), datagram, 'IntAuth_r1_A | IntAuth_r1_P: with a no-op cipher, exactly the datagram');
  const done = expectTag(consumeIntermediateResponse(iv, expectTag(req.next, 'ke-sent'), m).next, 'done');
  assert.equal(hex(done.chain.r), hex(PRF.compute(INIT_KEYS.skPr, new Uint8Array(0), datagram)), 'IntAuth_r1 = prf(SK_pr, IntAuth_r1_A | IntAuth_r1_P) over the received octets');
});

test('RFC 9242 §3.1 with RFC 7383: a reassembled IKE_INTERMEDIATE counts as the unfragmented message (SK, one generic header, the plaintexts joined)', () => {
  const payloads: IkePayload[] = [{ kind: 'ke', group: DhId.ML_KEM_768, data: Uint8Array.from({ length: 1184 }, (_, i) => i & 0xff) }];
  const frags = encodeEncryptedFragments(header(1, false), payloads, CLEAR, 500);
  assert.equal(frags.length, 3);
  const pieces = frags.map((d) => {
    const env = decodeMessage(d).encrypted();
    if (env?.kind !== 'skf') assert.fail('not an SKF fragment');
    return { envelope: env, plaintext: env.body };
  });
  // Any fragment may complete the set: the last one to arrive is handed in.
  const last = frags[1]!;
  const joined = joinFragmentsMessage(decodeMessage(last), last, [pieces[2]!, pieces[0]!, pieces[1]!]);
  assert.deepEqual(joined.payloads, payloads);
  assert.deepEqual(receivedIntAuthData(joined), intAuthData(header(1, false), payloads));
});
