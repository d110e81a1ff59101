// IKE_AUTH with the first Child SA as steps (src/ike/steps/ike-auth.ts, ike-auth-responder.ts),
// without engines: literal post-IKE_SA_INIT states in, effects asserted, each scenario narrated
// message by message and run with alice and with bob as the initiator. The pair tests
// (test/unit/ike/pair/handshake.test.ts, pinning.test.ts, ...) drive the same steps through two
// whole engines. IKE fragmentation (RFC 7383) is below these steps (sa/wire.ts seals the payloads
// they return), so it is not here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { IkeMessage } from '../../../../src/ike/codec/message.js';
import type { IkePayload } from '../../../../src/ike/codec/payload.js';
import type { PeerRuntime } from '../../../../src/ike/sa/ike-sa.js';
import { acceptAuthRequest, answerInstalled, authTooEarly, consumeAuthRequest } from '../../../../src/ike/steps/ike-auth-responder.js';
import { consumeAuthResponse, firstChildInstalled, requestAuth, type AuthStep, type IkeAuthExchange } from '../../../../src/ike/steps/ike-auth.js';
import { authSide, authWire, effect, kinds, peerOf, type AuthSide, type AuthSideOptions } from './auth-fixtures.js';
import { other, shape, type Who } from './fixtures.js';

const ROLES: readonly Who[] = ['alice', 'bob'];
const I_SPI = 0xc0000001; // the initiator's inbound SPI for the first child, which its driver allocated
const R_SPI = 0xc0000002;

function expectTag<T extends IkeAuthExchange['tag']>(s: IkeAuthExchange, tag: T): Extract<IkeAuthExchange, { tag: T }> {
  const is = (x: IkeAuthExchange): x is Extract<IkeAuthExchange, { tag: T }> => x.tag === tag;
  if (!is(s)) assert.fail(`state is ${s.tag}, want ${tag}`);
  return s;
}
const sent = (s: AuthStep): IkeMessage => authWire(effect(s, 'send').payloads, false);
const answered = (s: AuthStep): IkeMessage => authWire(effect(s, 'respond').payloads, true);

/** The initiator's request, from the state its driver builds after IKE_SA_INIT. */
async function request(i: AuthSide, o: { readonly initialContact?: boolean; readonly spi?: number | null } = {}): Promise<AuthStep<Extract<IkeAuthExchange, { tag: 'sent' }>>> {
  return requestAuth(i.env, { tag: 'ready', peer: i.peer, basis: i.basis }, { spi: o.spi === undefined ? I_SPI : o.spi, initialContact: o.initialContact ?? true, messageId: 1 });
}

/** The responder's steps, with R_SPI allocated after the first and the kernel's answer `installs` after the second. */
async function respond(r: AuthSide, m: IkeMessage, o: { readonly candidates?: readonly PeerRuntime[]; readonly installs?: boolean } = {}): Promise<{ readonly first: AuthStep; readonly steps: readonly AuthStep[]; readonly last: AuthStep }> {
  const first = await consumeAuthRequest(r.env, r.ike, { tag: 'awaiting', peer: r.peer, basis: r.basis }, m, o.candidates ?? [r.peer]);
  if (first.next.tag !== 'chosen') return { first, steps: [first], last: first };
  const accepted = acceptAuthRequest(r.env, r.ike, first.next, R_SPI);
  const last = answerInstalled(accepted.next, o.installs ?? true);
  return { first, steps: [first, accepted, last], last };
}
const allKinds = (steps: readonly AuthStep[]): string[] => steps.flatMap(kinds);

function pair(I: Who, o: { readonly i?: AuthSideOptions; readonly r?: AuthSideOptions } = {}): { i: AuthSide; r: AuthSide } {
  return { i: authSide(I, 'initiator', o.i), r: authSide(other(I), 'responder', o.r) };
}

for (const I of ROLES) {
  const R = other(I);
  for (const auth of ['psk', 'cert'] as const) {
    test(`RFC 7296 §1.2, §2.15${auth === 'cert' ? ', RFC 7427' : ''}: ${I} authenticates to ${R} with ${auth === 'psk' ? 'a pre-shared key' : 'an ECDSA certificate'} — both accept the other's AUTH, both are up, and the first Child SA's SPIs and keys cross`, async () => {
      const { i, r } = pair(I, { i: { auth }, r: { auth } });
      const req = await request(i);
      /* IKE_AUTH { IDi, [CERT], N(INITIAL_CONTACT), [CERTREQ], IDr, AUTH, SA, TSi, TSr } --> */
      assert.deepEqual(shape(effect(req, 'send').payloads), auth === 'psk'
        ? ['idi', 'notify(INITIAL_CONTACT)', 'idr', 'auth', 'sa', 'tsi', 'tsr']
        : ['idi', 'cert', 'notify(INITIAL_CONTACT)', 'certreq', 'idr', 'auth', 'sa', 'tsi', 'tsr']);
      assert.equal(expectTag(req.next, 'sent').offer?.spi, I_SPI);

      const resp = await respond(r, sent(req));
      /* <-- IKE_AUTH { IDr, [CERT], AUTH, SA, TSi, TSr } */
      assert.deepEqual(allKinds(resp.steps), ['use-peer', 'establish', 'install', 'replace-older', 'respond', 'child-up']);
      assert.deepEqual(effect(resp.steps[1]!, 'establish'), { kind: 'establish', remoteId: `${I}.example`, initialContact: true });
      assert.equal(effect(resp.steps[1]!, 'install').replaces, false, 'INITIAL_CONTACT: no older SA of the peer to hold the new one for');
      assert.deepEqual(shape(effect(resp.last, 'respond').payloads), auth === 'psk' ? ['idr', 'auth', 'sa', 'tsi', 'tsr'] : ['idr', 'cert', 'auth', 'sa', 'tsi', 'tsr']);
      const rInstall = effect(resp.steps[1]!, 'install').install;

      const got = await consumeAuthResponse(i.env, i.ike, expectTag(req.next, 'sent'), answered(resp.last));
      assert.deepEqual(kinds(got), ['establish', 'install']);
      assert.deepEqual(effect(got, 'establish'), { kind: 'establish', remoteId: `${R}.example`, initialContact: null });
      const iInstall = effect(got, 'install').install;
      assert.deepEqual([iInstall.inbound.spi, iInstall.outbound.spi, rInstall.inbound.spi, rInstall.outbound.spi], [I_SPI, R_SPI, R_SPI, I_SPI]);
      assert.deepEqual(iInstall.inbound.algorithms, rInstall.outbound.algorithms, 'what one side receives with, the other sends with (§2.17 KEYMAT)');
      assert.deepEqual(iInstall.outbound.algorithms, rInstall.inbound.algorithms);
      assert.deepEqual(kinds(firstChildInstalled(expectTag(got.next, 'installing'), true)), ['child-up']);
    });
  }

  test(`RFC 7296 §2.15, §2.21.2: ${R} holds another pre-shared key than ${I} — ${R} answers AUTHENTICATION_FAILED and drops the half-open SA without a retry; ${I} reports the three causes, frees its SPI and retries later`, async () => {
    const { i, r } = pair(I, { r: { psk: 'another secret entirely' } });
    const req = await request(i);
    /* IKE_AUTH { IDi, N(INITIAL_CONTACT), IDr, AUTH, SA, TSi, TSr } --> */
    const resp = await respond(r, sent(req));
    /* <-- IKE_AUTH { N(AUTHENTICATION_FAILED) } */
    assert.deepEqual(kinds(resp.last), ['use-peer', 'respond', 'error', 'teardown']);
    assert.deepEqual(shape(effect(resp.last, 'respond').payloads), ['notify(AUTHENTICATION_FAILED)']);
    assert.equal(effect(resp.last, 'error').failure.code, 'ERR_IKE_AUTHENTICATION_FAILED');
    assert.deepEqual(effect(resp.last, 'teardown'), { kind: 'teardown', retry: false });
    const got = await consumeAuthResponse(i.env, i.ike, expectTag(req.next, 'sent'), answered(resp.last));
    assert.deepEqual(kinds(got), ['error', 'release-spi', 'teardown'], 'no INFORMATIONAL back: the responder has no IKE SA left');
    const f = effect(got, 'error').failure;
    assert.deepEqual([f.code, f.notify, f.origin], ['ERR_IKE_AUTH_FAILED', 'AUTHENTICATION_FAILED', 'remote']);
    assert.match(f.message, /a wrong pre-shared key, a certificate it does not trust, or no config on the peer for the identities we sent \(IDi .*\.example, IDr .*\.example\)/);
    assert.deepEqual(effect(got, 'release-spi'), { kind: 'release-spi', spi: I_SPI });
    assert.deepEqual(effect(got, 'teardown'), { kind: 'teardown', retry: true });
  });

  test(`RFC 7296 §2.15, §2.21.2: ${I} cannot verify ${R}'s AUTH (one octet changed) — ${I} tells ${R} AUTHENTICATION_FAILED in an INFORMATIONAL and ends the IKE SA without installing anything`, async () => {
    const { i, r } = pair(I);
    const req = await request(i);
    const resp = await respond(r, sent(req));
    const tampered = effect(resp.last, 'respond').payloads.map((p): IkePayload => (p.kind === 'auth' ? { ...p, data: p.data.map((b, n) => (n === 0 ? b ^ 1 : b)) } : p));
    /* <-- IKE_AUTH { IDr, AUTH', SA, TSi, TSr } */
    const got = await consumeAuthResponse(i.env, i.ike, expectTag(req.next, 'sent'), authWire(tampered, true));
    /* INFORMATIONAL { N(AUTHENTICATION_FAILED) } --> (not awaited) */
    assert.deepEqual(kinds(got), ['error', 'release-spi', 'inform', 'teardown']);
    assert.deepEqual(shape(effect(got, 'inform').payloads), ['notify(AUTHENTICATION_FAILED)']);
    assert.equal(effect(got, 'error').failure.notify, 'AUTHENTICATION_FAILED');
  });

  test(`RFC 7296 §2.15: ${R} expects another identity than ${I} sends — AUTHENTICATION_FAILED before any AUTH check, naming the identity`, async () => {
    const { i, r } = pair(I, { r: { remoteId: 'mallory.example' } });
    const resp = await respond(r, sent(await request(i)));
    assert.deepEqual(kinds(resp.last), ['use-peer', 'respond', 'error', 'teardown']);
    assert.equal(effect(resp.last, 'error').failure.message, `peer identity ${I}.example is not the configured remote id`);
  });

  test(`RFC 7296 §2.15: ${I} expects another responder identity than ${R} proves — ${I} refuses ${R}'s answer and says so`, async () => {
    // IDr names the identity I wants; a responder with one config answers with its own.
    const { i, r } = pair(I, { i: { remoteId: 'mallory.example' } });
    const req = await request(i);
    const resp = await respond(r, sent(req));
    assert.equal(effect(resp.first, 'use-peer').peer, r.peer, 'no config of R has mallory.example as its own id: the first config stays');
    const got = await consumeAuthResponse(i.env, i.ike, expectTag(req.next, 'sent'), answered(resp.last));
    assert.deepEqual(kinds(got), ['error', 'release-spi', 'inform', 'teardown']);
    assert.equal(effect(got, 'error').failure.message, `peer identity ${R}.example is not the configured remote id`);
  });

  test(`strongSwan's peer config switch: ${R} has two configs at ${I}'s address — IDi picks the one whose remote id it is, and that one's PSK checks the AUTH`, async () => {
    const { i, r } = pair(I, { i: { psk: 'the right one' } });
    const wrongFirst = peerOf(R, { name: 'stranger', remoteId: 'stranger.example', psk: 'not this one' });
    const right = peerOf(R, { name: `to-${I}`, psk: 'the right one' });
    const resp = await respond({ ...r, peer: wrongFirst }, sent(await request(i)), { candidates: [wrongFirst, right] });
    assert.equal(effect(resp.first, 'use-peer').peer, right);
    assert.deepEqual(allKinds(resp.steps), ['use-peer', 'establish', 'install', 'replace-older', 'respond', 'child-up']);
  });

  for (const [what, rChild, notifyName, code] of [
    ['selectors that match none of its own', { localTs: ['10.9.0.0/16'] }, 'TS_UNACCEPTABLE', 'ERR_IKE_TS_UNACCEPTABLE'],
    ['no ESP proposal in common', { espProposals: ['aes128-sha256'] }, 'NO_PROPOSAL_CHOSEN', 'ERR_IKE_NO_PROPOSAL_CHOSEN'],
  ] as const) {
    test(`RFC 7296 §1.2, §2.9: ${I}'s first Child SA has ${what} at ${R} — the IKE SA comes up on both sides without it, ${R}'s answer says ${notifyName}, ${I} frees its SPI and counts the child as tried`, async () => {
      const { i, r } = pair(I, { r: { child: rChild } });
      const req = await request(i);
      const resp = await respond(r, sent(req));
      /* <-- IKE_AUTH { IDr, AUTH, N(TS_UNACCEPTABLE | NO_PROPOSAL_CHOSEN) } */
      assert.deepEqual(kinds(resp.last), ['use-peer', 'establish', 'replace-older', 'respond', 'error']);
      assert.deepEqual(shape(effect(resp.last, 'respond').payloads), ['idr', 'auth', `notify(${notifyName})`]);
      assert.equal(effect(resp.last, 'error').failure.code, code);
      const got = await consumeAuthResponse(i.env, i.ike, expectTag(req.next, 'sent'), answered(resp.last));
      assert.deepEqual(kinds(got), ['establish', 'error', 'release-spi', 'note-failed']);
      assert.deepEqual([effect(got, 'error').failure.code, effect(got, 'error').failure.notify], [code, notifyName]);
      assert.deepEqual(effect(got, 'note-failed'), { kind: 'note-failed', name: 'net' });
    });
  }

  test(`RFC 7296 §1.2: ${R}'s kernel refuses the first Child SA — ${R} answers without SA/TS and with NO_ADDITIONAL_SAS; refused at ${I}, ${I} abandons it (to delete at the peer and retry)`, async () => {
    const { i, r } = pair(I);
    const req = await request(i);
    const resp = await respond(r, sent(req), { installs: false });
    /* <-- IKE_AUTH { IDr, AUTH, N(NO_ADDITIONAL_SAS) } */
    assert.deepEqual(kinds(resp.last), ['replace-older', 'respond']);
    assert.deepEqual(shape(effect(resp.last, 'respond').payloads), ['idr', 'auth', 'notify(NO_ADDITIONAL_SAS)']);
    const full = await respond(r, sent(req));
    const got = await consumeAuthResponse(i.env, i.ike, expectTag(req.next, 'sent'), answered(full.last));
    const child = effect(got, 'install').child;
    assert.deepEqual(firstChildInstalled(expectTag(got.next, 'installing'), false).effects, [{ kind: 'abandon', child }]);
  });

  test(`RFC 7296 §2.4: without INITIAL_CONTACT (${I} holds other state with ${R}) ${R} keeps its older IKE SAs and installs the child held for a reauthentication`, async () => {
    const { i, r } = pair(I);
    const resp = await respond(r, sent(await request(i, { initialContact: false })));
    assert.deepEqual(allKinds(resp.steps), ['use-peer', 'establish', 'install', 'respond', 'child-up']);
    assert.deepEqual(effect(resp.steps[1]!, 'establish'), { kind: 'establish', remoteId: `${I}.example`, initialContact: false });
    assert.equal(effect(resp.steps[1]!, 'install').replaces, true);
  });

  test(`RFC 7296 §1.2: ${I} has no child config — IKE_AUTH carries no SA/TS, both sides are up with nothing to install`, async () => {
    const { i, r } = pair(I, { i: { child: null } });
    const req = await request(i, { spi: null });
    assert.deepEqual(shape(effect(req, 'send').payloads), ['idi', 'notify(INITIAL_CONTACT)', 'idr', 'auth']);
    const resp = await respond(r, sent(req));
    assert.deepEqual(kinds(resp.last), ['use-peer', 'establish', 'replace-older', 'respond']);
    const got = await consumeAuthResponse(i.env, i.ike, expectTag(req.next, 'sent'), answered(resp.last));
    assert.deepEqual(kinds(got), ['establish']);
    assert.equal(got.next.tag, 'done');
  });

  test(`RFC 9242 §3.3.2: after IKE_INTERMEDIATE both AUTHs cover the IntAuth chain — equal chains verify, a chain that differs at ${R} fails ${I}'s AUTH`, async () => {
    const chain = { i: new Uint8Array(32).fill(0x0a), r: new Uint8Array(32).fill(0x0b) };
    const { i, r } = pair(I, { i: { intAuth: chain }, r: { intAuth: chain } });
    const req = await request(i);
    assert.equal((await respond(r, sent(req))).last.effects.at(-1)?.kind, 'child-up');
    const skewed = authSide(R, 'responder', { intAuth: { i: chain.i, r: new Uint8Array(32).fill(0x0c) } });
    assert.deepEqual(kinds((await respond(skewed, sent(req))).last), ['use-peer', 'respond', 'error', 'teardown']);
  });
}

test('RFC 9370 §2.2.1: IKE_AUTH before every additional key exchange was done is answered INVALID_SYNTAX and ends the half-open SA', () => {
  const s = authTooEarly();
  assert.deepEqual(kinds(s), ['respond', 'error', 'teardown']);
  assert.deepEqual(shape(effect(s, 'respond').payloads), ['notify(INVALID_SYNTAX)']);
  assert.equal(effect(s, 'error').failure.code, 'ERR_IKE_INTERMEDIATE_SKIPPED');
});

test('RFC 7296 §2.15: IKE_AUTH without AUTH (EAP, which we do not do) is refused AUTHENTICATION_FAILED before any peer config is chosen', async () => {
  const r = authSide('bob', 'responder');
  const m = authWire([{ kind: 'idi', idType: 2, data: new TextEncoder().encode('alice.example') }], false);
  const s = await consumeAuthRequest(r.env, r.ike, { tag: 'awaiting', peer: r.peer, basis: r.basis }, m, [r.peer]);
  assert.deepEqual(kinds(s), ['respond', 'error', 'teardown']);
  assert.match(effect(s, 'error').failure.message, /EAP is not supported/);
});
