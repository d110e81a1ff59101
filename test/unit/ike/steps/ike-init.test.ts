// IKE_SA_INIT as steps (src/ike/steps/ike-init.ts, ike-init-responder.ts), without engines: the
// initiator's request and the responder's answer go through the codec as datagrams, the
// responder's Diffie-Hellman runs where its driver would run it (here on this thread), and every
// scenario is narrated message by message and run with alice and with bob as the initiator. The
// pair tests (test/unit/ike/pair/handshake.test.ts, cookies.test.ts, hostile.test.ts, ...) drive
// the same steps through two whole engines.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SeededRandom } from '../../../../src/common/time.js';
import { DhId } from '../../../../src/ike/constants.js';
import { decodeMessage, encodeMessage, type IkeMessage } from '../../../../src/ike/codec/message.js';
import { runCryptoJob, type DhJobResult } from '../../../../src/ike/crypto/jobs.js';
import { CryptoQueueFullError, CryptoWorkerError } from '../../../../src/ike/crypto/pool.js';
import { CookieJar } from '../../../../src/ike/exchanges/cookie.js';
import { MAX_INIT_RETRIES } from '../../../../src/ike/sa/defaults.js';
import type { PeerRuntime } from '../../../../src/ike/sa/ike-sa.js';
import { acceptInitRequest, consumeInitRequest, initDhFailed, type InitResponse } from '../../../../src/ike/steps/ike-init-responder.js';
import { consumeInitResponse, initHeader, requestInit, type InitEffect, type InitEnds, type InitResult, type InitSent, type InitStep } from '../../../../src/ike/steps/ike-init.js';
import { ADDRESS, peerOf, SPI_I, SPI_R } from './auth-fixtures.js';
import { other, shape, type Who } from './fixtures.js';

const ROLES: readonly Who[] = ['alice', 'bob'];
const PLAIN = 'aes256gcm16-prfsha256-x25519';
const HYBRID = 'aes256gcm16-prfsha384-x25519-ke1_mlkem768';

interface InitSide { readonly ends: InitEnds; readonly random: SeededRandom; readonly cookies: CookieJar }
function initSide(who: Who, role: 'initiator' | 'responder', proposals: readonly string[] = [PLAIN], tweak: (p: PeerRuntime) => PeerRuntime = (p) => p): InitSide {
  const random = new SeededRandom(who === 'alice' ? 11 : 23);
  const ends = { peer: tweak(peerOf(who, { proposals })), role, spiI: SPI_I, local: { address: ADDRESS[who], port: 500 }, remote: { address: ADDRESS[other(who)], port: 500 } };
  return { ends, random, cookies: new CookieJar(new SeededRandom(99)) };
}

function effect<K extends InitEffect['kind']>(step: InitStep<unknown>, kind: K): Extract<InitEffect, { kind: K }> {
  const f = step.effects.find((x): x is Extract<InitEffect, { kind: K }> => x.kind === kind);
  if (f === undefined) throw new Error(`no ${kind} effect in [${step.effects.map((x) => x.kind).join(', ')}]`);
  return f;
}
const kinds = (step: InitStep<unknown>): string[] => step.effects.map((f) => (f.kind === 'drop' ? `drop:${f.reason}` : f.kind === 'next' ? `next:${f.task}` : f.kind));
const sentInit = (s: InitStep<InitSent>): InitSent => { assert.equal(s.next.tag, 'init-sent'); return s.next; };
const decoded = (d: Uint8Array): IkeMessage => decodeMessage(d);

/** The responder's steps with the DH job and SPI_R between them, as sa/ike-init-tasks.ts runs them. */
function respond(r: InitSide, request: Uint8Array, cookiesRequired = false): InitStep<InitResponse> {
  const first = consumeInitRequest({ random: r.random, cookies: r.cookies, cookiesRequired }, { tag: 'received', ends: r.ends, request }, decoded(request));
  if (first.next.tag !== 'chosen') return first;
  assert.deepEqual(first.effects, [], 'nothing happens before the Diffie-Hellman');
  const s = first.next;
  const dh = runCryptoJob({ op: 'dh', group: s.group, privateValue: s.privateValue, peerPublicValue: s.peerPublicValue, allowWeak: false }) as DhJobResult;
  return acceptInitRequest(r.random, s, dh, SPI_R);
}
const answer = (s: InitStep<InitResponse>): Uint8Array => effect(s, 'respond').datagram;
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** Both ends hold the same SPIs, nonces, messages and §2.14 keys, each in its role. */
function assertSameSa(i: InitResult, r: InitResult): void {
  assert.deepEqual([i.spiR, hex(i.ni), hex(i.nr), hex(i.request), hex(i.response)], [r.spiR, hex(r.ni), hex(r.nr), hex(r.request), hex(r.response)]);
  for (const k of ['skAi', 'skAr', 'skEi', 'skEr'] as const) assert.equal(hex(i.keys.sk[k].expose()), hex(r.keys.sk[k].expose()), k);
  assert.equal(hex(i.keys.skD.expose()), hex(r.keys.skD.expose()), 'SK_d');
}

for (const I of ROLES) {
  const R = other(I);
  test(`RFC 7296 §1.2, §2.14: ${I} and ${R} run IKE_SA_INIT — both derive the same keys from the same two messages, and ${I} goes on to IKE_AUTH`, () => {
    const i = initSide(I, 'initiator'); const r = initSide(R, 'responder');
    const req = requestInit(i.random, i.ends, { group: DhId.CURVE25519, cookie: null, retries: 0 });
    /* IKE_SA_INIT { SA, KEi, Ni, N(NAT_DETECTION_SOURCE_IP), N(NAT_DETECTION_DESTINATION_IP), N(FRAG_SUPPORTED), N(SIGNATURE_HASH_ALGORITHMS) } --> */
    assert.deepEqual(shape(decoded(effect(req, 'send').datagram).payloads), ['sa', 'ke', 'nonce', 'notify(NAT_DETECTION_SOURCE_IP)', 'notify(NAT_DETECTION_DESTINATION_IP)', 'notify(IKEV2_FRAGMENTATION_SUPPORTED)', 'notify(SIGNATURE_HASH_ALGORITHMS)']);
    const resp = respond(r, effect(req, 'send').datagram);
    /* <-- IKE_SA_INIT { SA, KEr, Nr, N(NAT_D)x2, N(FRAG_SUPPORTED), N(SIGNATURE_HASH_ALGORITHMS) } */
    assert.deepEqual(kinds(resp), ['keyed', 'respond']);
    assert.equal(resp.next.tag, 'half-open');
    assert.deepEqual(shape(decoded(answer(resp)).payloads), ['sa', 'ke', 'nonce', 'notify(NAT_DETECTION_SOURCE_IP)', 'notify(NAT_DETECTION_DESTINATION_IP)', 'notify(IKEV2_FRAGMENTATION_SUPPORTED)', 'notify(SIGNATURE_HASH_ALGORITHMS)']);
    const rKeyed = effect(resp, 'keyed').result;
    assert.deepEqual([rKeyed.natLocal, rKeyed.natRemote, rKeyed.fragmentation, rKeyed.intermediate], [false, false, true, null]);
    const got = consumeInitResponse(i.random, i.ends, sentInit(req), decoded(answer(resp)), answer(resp));
    assert.deepEqual(kinds(got), ['keyed', 'next:ike-auth'], 'no NAT: no float to 4500');
    assertSameSa(effect(got, 'keyed').result, rKeyed);
    assert.equal(effect(got, 'keyed').result.keys.suiteText, PLAIN);
  });

  test(`RFC 7296 §2.6: ${R} is under load and demands a cookie — it keeps no state; ${I} repeats the request with the cookie first, the same Ni and group, and ${R} then answers`, () => {
    const i = initSide(I, 'initiator'); const r = initSide(R, 'responder');
    const req = requestInit(i.random, i.ends, { group: DhId.CURVE25519, cookie: null, retries: 0 });
    const refused = respond(r, effect(req, 'send').datagram, true);
    /* <-- IKE_SA_INIT { N(COOKIE) } */
    assert.deepEqual(kinds(refused), ['respond', 'drop:cookie-sent']);
    assert.equal(refused.next.tag, 'done', 'no half-open SA for a request without a cookie');
    const again = consumeInitResponse(i.random, i.ends, sentInit(req), decoded(answer(refused)), answer(refused));
    /* IKE_SA_INIT { N(COOKIE), SA, KEi, Ni, ... } --> */
    const s = sentInit(again as InitStep<InitSent>);
    assert.deepEqual(kinds(again), ['send']);
    assert.equal(shape(decoded(effect(again, 'send').datagram).payloads)[0], 'notify(COOKIE)');
    assert.deepEqual([hex(s.ni), s.share.group, s.retries, s.cookie !== null], [hex(sentInit(req).ni), DhId.CURVE25519, 1, true]);
    const resp = respond(r, effect(again, 'send').datagram, true);
    assert.deepEqual(kinds(resp), ['keyed', 'respond']);
    assert.deepEqual(kinds(consumeInitResponse(i.random, i.ends, s, decoded(answer(resp)), answer(resp))), ['keyed', 'next:ike-auth']);
  });

  test(`RFC 7296 §1.3: ${I} guesses x25519, ${R} takes only ecp256 — ${R} answers INVALID_KE_PAYLOAD statelessly, ${I} repeats in group 19 with the same Ni`, () => {
    const i = initSide(I, 'initiator', ['aes256gcm16-prfsha256-x25519-ecp256']); const r = initSide(R, 'responder', ['aes256gcm16-prfsha256-ecp256']);
    const req = requestInit(i.random, i.ends, { group: DhId.CURVE25519, cookie: null, retries: 0 });
    const refused = respond(r, effect(req, 'send').datagram);
    /* <-- IKE_SA_INIT { N(INVALID_KE_PAYLOAD(19)) } */
    assert.deepEqual(kinds(refused), ['respond', 'drop:invalid-ke']);
    const again = consumeInitResponse(i.random, i.ends, sentInit(req), decoded(answer(refused)), answer(refused));
    const s = sentInit(again as InitStep<InitSent>);
    assert.deepEqual([s.share.group, hex(s.ni), s.retries], [DhId.ECP_256, hex(sentInit(req).ni), 1]);
    const resp = respond(r, effect(again, 'send').datagram);
    const got = consumeInitResponse(i.random, i.ends, s, decoded(answer(resp)), answer(resp));
    assert.deepEqual(kinds(got), ['keyed', 'next:ike-auth']);
    assert.equal(effect(got, 'keyed').result.keys.dhGroup, DhId.ECP_256);
  });

  test(`RFC 7296 §2.7: ${R} shares no IKE proposal with ${I} — NO_PROPOSAL_CHOSEN without state at ${R}; ${I} reports its proposals and gives up until its retry`, () => {
    const i = initSide(I, 'initiator'); const r = initSide(R, 'responder', ['aes128-sha256-modp2048']);
    const req = requestInit(i.random, i.ends, { group: DhId.CURVE25519, cookie: null, retries: 0 });
    const refused = respond(r, effect(req, 'send').datagram);
    /* <-- IKE_SA_INIT { N(NO_PROPOSAL_CHOSEN) } */
    assert.deepEqual(kinds(refused), ['respond', 'drop:no-proposal-chosen', 'error']);
    assert.equal(effect(refused, 'error').failure.code, 'ERR_IKE_NO_PROPOSAL_CHOSEN');
    const got = consumeInitResponse(i.random, i.ends, sentInit(req), decoded(answer(refused)), answer(refused));
    assert.deepEqual(kinds(got), ['error', 'teardown']);
    const f = effect(got, 'error').failure;
    assert.deepEqual([f.code, f.origin, f.proposals?.local.length], ['ERR_IKE_NO_PROPOSAL_CHOSEN', 'remote', 1]);
    assert.match(f.message, /^peer accepted none of our IKE proposals: /);
  });

  test(`RFC 9370 §2.2.1, RFC 9242 §3: ${I} and ${R} choose ${HYBRID} — both announce IKE_INTERMEDIATE, and IKE_AUTH waits for the additional key exchange`, () => {
    const i = initSide(I, 'initiator', [HYBRID]); const r = initSide(R, 'responder', [HYBRID]);
    const req = requestInit(i.random, i.ends, { group: DhId.CURVE25519, cookie: null, retries: 0 });
    assert.ok(shape(decoded(effect(req, 'send').datagram).payloads).includes('notify(INTERMEDIATE_EXCHANGE_SUPPORTED)'));
    const resp = respond(r, effect(req, 'send').datagram);
    assert.ok(shape(decoded(answer(resp)).payloads).includes('notify(INTERMEDIATE_EXCHANGE_SUPPORTED)'));
    assert.equal(effect(resp, 'keyed').result.intermediate?.tag, 'awaiting', `${R} waits for the first IKE_INTERMEDIATE`);
    const got = consumeInitResponse(i.random, i.ends, sentInit(req), decoded(answer(resp)), answer(resp));
    assert.deepEqual(kinds(got), ['keyed', 'next:ike-intermediate']);
    assert.equal(effect(got, 'keyed').result.intermediate?.tag, 'to-send');
  });

  test(`RFC 7296 §2.23: ${I} forces NAT traversal — ${R} sees a NAT in front of ${I}, and ${I} floats to port 4500 for what follows`, () => {
    const i = initSide(I, 'initiator', [PLAIN], (p) => ({ ...p, config: { ...p.config, natTraversal: 'always' } }));
    const r = initSide(R, 'responder');
    const req = requestInit(i.random, i.ends, { group: DhId.CURVE25519, cookie: null, retries: 0 });
    const resp = respond(r, effect(req, 'send').datagram);
    assert.deepEqual([effect(resp, 'keyed').result.natLocal, effect(resp, 'keyed').result.natRemote], [false, true]);
    const got = consumeInitResponse(i.random, i.ends, sentInit(req), decoded(answer(resp)), answer(resp));
    assert.deepEqual(kinds(got), ['keyed', 'float', 'next:ike-auth']);
  });
}

test(`RFC 7296 §2.6: a responder that keeps demanding cookies ends the attempt after ${MAX_INIT_RETRIES} repeats`, () => {
  const i = initSide('alice', 'initiator'); const r = initSide('bob', 'responder');
  const req = requestInit(i.random, i.ends, { group: DhId.CURVE25519, cookie: null, retries: MAX_INIT_RETRIES });
  const refused = respond(r, effect(req, 'send').datagram, true);
  const got = consumeInitResponse(i.random, i.ends, sentInit(req), decoded(answer(refused)), answer(refused));
  assert.deepEqual(kinds(got), ['error', 'teardown']);
  assert.equal(effect(got, 'error').failure.code, 'ERR_IKE_COOKIE_LOOP');
});

test('RFC 7296 §2.4: an answer without SA, KE or Nr may be forged — dropped, the request stays outstanding in the same state', () => {
  const i = initSide('alice', 'initiator'); const r = initSide('bob', 'responder');
  const req = requestInit(i.random, i.ends, { group: DhId.CURVE25519, cookie: null, retries: 0 });
  const resp = respond(r, effect(req, 'send').datagram);
  /* <-- IKE_SA_INIT { SA, Nr, N(NAT_D)x2, ... } (no KEr) */
  const forged = encodeMessage(initHeader(SPI_I, SPI_R, true), decoded(answer(resp)).payloads.filter((p) => p.kind !== 'ke'));
  const got = consumeInitResponse(i.random, i.ends, sentInit(req), decoded(forged), forged);
  assert.deepEqual(kinds(got), ['drop:init-response-incomplete']);
  assert.equal(got.next, sentInit(req));
});

test('the responder\'s Diffie-Hellman fails: a full crypto queue drops the request for a retransmission; an invalid KE value is answered INVALID_SYNTAX', () => {
  const i = initSide('alice', 'initiator'); const r = initSide('bob', 'responder');
  const req = effect(requestInit(i.random, i.ends, { group: DhId.CURVE25519, cookie: null, retries: 0 }), 'send').datagram;
  const first = consumeInitRequest({ random: r.random, cookies: r.cookies, cookiesRequired: false }, { tag: 'received', ends: r.ends, request: req }, decoded(req));
  assert.equal(first.next.tag, 'chosen');
  if (first.next.tag !== 'chosen') return;
  assert.deepEqual(kinds(initDhFailed(first.next, new CryptoQueueFullError(2_048))), ['drop:crypto-queue-full']);
  assert.deepEqual(kinds(initDhFailed(first.next, new CryptoWorkerError('worker exited'))), ['drop:crypto-worker-failed']);
  const invalid = initDhFailed(first.next, new Error('peer public value is not on the curve'));
  /* <-- IKE_SA_INIT { N(INVALID_SYNTAX) } */
  assert.deepEqual(kinds(invalid), ['respond', 'drop:invalid-ke-value']);
  assert.deepEqual(shape(decoded(answer(invalid)).payloads), ['notify(INVALID_SYNTAX)']);
});
