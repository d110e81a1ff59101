// INFORMATIONAL as steps (src/ike/steps/informational.ts), without engines: literal IKE SA and
// Child SA records in, effects asserted, each request narrated, Deletes run from both roles: the
// peer's requests, and ours (Delete of the IKE SA, liveness check) with their answers or none. The
// pair tests (test/unit/ike/pair/lifecycle.test.ts, reliability.test.ts, rekey*.test.ts,
// reauth*.test.ts) drive the same steps through two engines.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { IkeMessage } from '../../../../src/ike/codec/message.js';
import type { IkePayload } from '../../../../src/ike/codec/payload.js';
import type { DpdConfig } from '../../../../src/ike/sa/config.js';
import { DhId } from '../../../../src/ike/constants.js';
import { createKeyShare } from '../../../../src/ike/crypto/dh.js';
import type { IkeSa, UpKeyed } from '../../../../src/ike/sa/ike-sa.js';
import {
  consumeInformationalRequest, deleteChildPayloads, deleteIkePayloads, ikeDeleteAnswered, ikeDeleteUnanswered, livenessAnswered, livenessUnanswered,
  requestIkeDelete, requestLiveness, requestUnanswered, type IkeDeleteReason, type InformationalEffect, type InformationalStep, type RequestEffect, type RequestStep,
} from '../../../../src/ike/steps/informational.js';
import { installedChild, notify, NotifyError, other, side, wire, type Who } from './fixtures.js';
import { fixtureUp, ikeSide, outstanding, preAuthKeyedOf } from './ike-fixtures.js';

const ROLES: readonly Who[] = ['alice', 'bob'];
const kinds = (s: InformationalStep | RequestStep): string[] => s.effects.map((f: InformationalEffect | RequestEffect) => (f.kind === 'teardown' ? `teardown:${f.reason}` : f.kind));
const answer = (s: InformationalStep): readonly IkePayload[] => s.effects.flatMap((f: InformationalEffect) => (f.kind === 'respond' ? [f.payloads] : []))[0] ?? assert.fail('no respond effect');
const request = (payloads: readonly IkePayload[]): IkeMessage => wire(payloads, false);
const spisOf = (payloads: readonly IkePayload[]): number[] => payloads.flatMap((p) => (p.kind === 'delete' ? p.spis.map((b) => new DataView(b.buffer, b.byteOffset).getUint32(0)) : []));

/** Both ends of one Child SA pair on the IKE SA: `who` receives on 0x1000, its peer on 0x2000. */
function withChild(who: Who, state: Parameters<typeof installedChild>[3] = { tag: 'installed' }): { readonly ike: ReturnType<typeof ikeSide>; readonly mine: ReturnType<typeof installedChild>; readonly theirs: ReturnType<typeof installedChild> } {
  const ike = ikeSide(who);
  const mine = installedChild(side(who), 0x1000, 0x2000, state);
  ike.sa.children.set(0x1000, mine);
  return { ike, mine, theirs: installedChild(side(other(who)), 0x2000, 0x1000) };
}

for (const D of ROLES) {
  const R = other(D);
  test(`RFC 7296 §1.4.1: ${D} deletes a Child SA — ${R} hands it to the Child SA step and answers with a Delete of its own half`, () => {
    const { ike, mine, theirs } = withChild(R);
    /* INFORMATIONAL { D(ESP, 0x2000) } -->   (the SPI the deleter receives on) */
    const req = deleteChildPayloads([theirs]);
    assert.deepEqual(spisOf(req), [0x2000]);
    const s = consumeInformationalRequest(ike.sa, request(req));
    /* <-- INFORMATIONAL { D(ESP, 0x1000) } */
    assert.deepEqual(kinds(s), ['peer-deleted-child', 'respond']);
    assert.deepEqual(s.effects[0], { kind: 'peer-deleted-child', child: mine });
    assert.deepEqual(spisOf(answer(s)), [0x1000]);
  });

  test(`RFC 7296 §1.4.1: ${D} deletes the IKE SA — ${R} answers with an empty INFORMATIONAL and tears its IKE SA down`, () => {
    const ike = ikeSide(R);
    /* INFORMATIONAL { D(IKE) } -->   <-- INFORMATIONAL { } */
    const s = consumeInformationalRequest(ike.sa, request(deleteIkePayloads()));
    assert.deepEqual(kinds(s), ['respond', 'teardown:peer-deleted']);
    assert.deepEqual(answer(s), []);
  });
}

test('RFC 7296 §1.4.1: Deletes crossing — a Child SA we are deleting ourselves is handed over but not named in the answer (our own Delete is in flight); an SPI we do not know is ignored', () => {
  const { ike, mine } = withChild('alice', { tag: 'deleting' });
  /* INFORMATIONAL { D(ESP, 0x2000, 0x7777) } -->   <-- INFORMATIONAL { } */
  const s = consumeInformationalRequest(ike.sa, request([{ kind: 'delete', protocolId: 3, spis: [Uint8Array.of(0, 0, 0x20, 0), Uint8Array.of(0, 0, 0x77, 0x77)] }]));
  assert.deepEqual(s.effects, [{ kind: 'peer-deleted-child', child: mine }, { kind: 'respond', payloads: [] }]);
});

test('RFC 7296 §2.4: an empty INFORMATIONAL is a liveness check — answered empty, nothing else', () => {
  /* INFORMATIONAL { } -->   <-- INFORMATIONAL { } */
  assert.deepEqual(consumeInformationalRequest(ikeSide('bob').sa, request([])).effects, [{ kind: 'respond', payloads: [] }]);
});

test('RFC 7296 §2.21.2: N(AUTHENTICATION_FAILED) after IKE_AUTH — answered, the error reported, the IKE SA torn down', () => {
  /* INFORMATIONAL { N(AUTHENTICATION_FAILED) } -->   <-- INFORMATIONAL { } */
  const s = consumeInformationalRequest(ikeSide('alice').sa, request([notify(NotifyError.AUTHENTICATION_FAILED)]));
  assert.deepEqual(kinds(s), ['respond', 'error', 'teardown:negotiation-failed']);
  const f = s.effects[1];
  assert.equal(f?.kind === 'error' && f.failure.code, 'ERR_IKE_AUTH_FAILED');
});

test('RFC 7296 §1.3.2, §2.8.2: the Delete of an IKE SA already rekeyed retires it quietly; one that overtakes the answer to our colliding rekey first settles the rekey (the peer won), then retires it', () => {
  const rekeyed = ikeSide('bob');
  rekeyed.sa.state = { tag: 'rekeyed', successor: ikeSide('bob').sa, up: fixtureUp('bob'), keyed: rekeyed.sa.state.keyed };
  /* INFORMATIONAL { D(IKE) } on the old SA -->   <-- INFORMATIONAL { } */
  assert.deepEqual(kinds(consumeInformationalRequest(rekeyed.sa, request(deleteIkePayloads()))), ['respond', 'retire']);
  const crossed = ikeSide('alice');
  const peerSa = ikeSide('alice').sa;
  // The nonces are not compared on this path (the peer's Delete settles it).
  const offer = { spi: 0xa1n, ni: new Uint8Array(32).fill(3), share: createKeyShare(DhId.CURVE25519) };
  crossed.sa.outstanding = { ...outstanding({ kind: 'ike-rekey' }), scratch: { kind: 'ike-rekey', offer, collision: { peerSa, nonces: [new Uint8Array(32).fill(3), new Uint8Array(32).fill(4)] } } };
  assert.deepEqual(kinds(consumeInformationalRequest(crossed.sa, request(deleteIkePayloads()))), ['settle-ike-rekey', 'respond', 'retire']);
});

test('RFC 7296 §2.8.3: the peer deletes the IKE SA its reauthentication replaced — we send on the new Child SAs first, then the old IKE SA goes as reauthenticated', () => {
  const { ike, mine } = withChild('bob');
  const successor = installedChild(side('bob'), 0x1001, 0x2001);
  mine.state = { tag: 'rekeyed', successor };
  ike.sa.reauth = { tag: 'superseded', successor: ikeSide('bob').sa, ours: false };
  /* INFORMATIONAL { D(IKE) } on the old SA -->   <-- INFORMATIONAL { } */
  const s = consumeInformationalRequest(ike.sa, request(deleteIkePayloads()));
  assert.deepEqual(s.effects, [{ kind: 'respond', payloads: [] }, { kind: 'activate-outbound', child: successor }, { kind: 'teardown', reason: 'reauthenticated' }]);
});

// --- Our requests: D(IKE) and the liveness check, answered or not ---

/** Neither side holds a duplicate's survivor here (that is lifecycle.ts's to find). */
const NO_SURVIVOR = { heldBySurvivor: (): readonly never[] => [] };
const REASONS: readonly IkeDeleteReason[] = ['terminated', 'duplicate', 'reauthenticated', 'rekeyed', 'redundant'];
/** As the driver does: the request's state changes, its payloads are what the peer decodes. */
function sent(sa: IkeSa, s: RequestStep): readonly IkePayload[] {
  for (const f of s.effects) if (f.kind === 'set-state') sa.state = f.state;
  const f = s.effects.find((x) => x.kind === 'send');
  return f?.kind === 'send' ? f.payloads : assert.fail(`no send effect in [${kinds(s).join(', ')}]`);
}
function withDpd(sa: IkeSa, dpd: DpdConfig): void { sa.peer = { ...sa.peer, config: { ...sa.peer.config, dpd } }; }
/** What the driver knows of a request resent until it gave up: an empty INFORMATIONAL small enough to need no fragments. */
const GAVE_UP = { tries: 5, exchange: 'INFORMATIONAL', hint: '' } as const;

for (const D of ROLES) {
  const R = other(D);
  test(`RFC 7296 §1.4.1: ${D} terminates the IKE SA — D(IKE) answered empty by ${R}; ${D} was deleting meanwhile and tears down (terminated)`, () => {
    const d = ikeSide(D); const r = ikeSide(R);
    const s = requestIkeDelete(NO_SURVIVOR, d.sa, 'terminated');
    /* INFORMATIONAL { D(IKE) } --> */
    assert.deepEqual(sent(d.sa, s), [{ kind: 'delete', protocolId: 1, spis: [] }]);
    const keyed = d.sa.state.keyed;
    assert.deepEqual(d.sa.state, { tag: 'deleting', up: fixtureUp(D), keyed }, 'deleting, it keeps what it knew as an SA that was up, and its keys for the Delete');
    assert.deepEqual(s.next, { tag: 'delete-sent', reason: 'terminated' });
    const answered = consumeInformationalRequest(r.sa, request(sent(d.sa, s)));
    /* <-- INFORMATIONAL { } */
    assert.deepEqual(answer(answered), []);
    assert.deepEqual(kinds(answered), ['respond', 'teardown:peer-deleted']);
    assert.equal(s.next.tag, 'delete-sent');
    if (s.next.tag === 'delete-sent') assert.deepEqual(ikeDeleteAnswered(s.next).effects, [{ kind: 'teardown', reason: 'terminated' }]);
  });

  test(`RFC 7296 §2.4: ${D}'s liveness check — an empty INFORMATIONAL, answered empty by ${R}; nothing follows (the answer itself showed the peer alive)`, () => {
    const d = ikeSide(D); const r = ikeSide(R);
    const s = requestLiveness(d.sa);
    /* INFORMATIONAL { } --> */
    assert.deepEqual(sent(d.sa, s), []);
    assert.deepEqual(d.sa.state, { tag: 'established', up: fixtureUp(D), keyed: d.sa.state.keyed });
    /* <-- INFORMATIONAL { } */
    assert.deepEqual(consumeInformationalRequest(r.sa, request([])).effects, [{ kind: 'respond', payloads: [] }]);
    assert.deepEqual(s.next, { tag: 'liveness-sent' });
    if (s.next.tag === 'liveness-sent') assert.deepEqual(livenessAnswered(s.next).effects, []);
  });

  test(`RFC 7296 §1.4.1: Deletes crossing — ${D} and ${R} delete the IKE SA at once; each answers the other's D(IKE) empty and tears down, its own request's answer moot`, () => {
    const d = ikeSide(D); const r = ikeSide(R);
    /* INFORMATIONAL { D(IKE) } -->   <-- INFORMATIONAL { D(IKE) }   (crossing) */
    const fromD = sent(d.sa, requestIkeDelete(NO_SURVIVOR, d.sa, 'terminated'));
    const fromR = sent(r.sa, requestIkeDelete(NO_SURVIVOR, r.sa, 'terminated'));
    assert.equal(d.sa.state.tag, 'deleting');
    assert.equal(r.sa.state.tag, 'deleting');
    /* <-- INFORMATIONAL { }   INFORMATIONAL { } --> */
    const atR = consumeInformationalRequest(r.sa, request(fromD));
    const atD = consumeInformationalRequest(d.sa, request(fromR));
    assert.deepEqual(atR.effects, [{ kind: 'respond', payloads: [] }, { kind: 'teardown', reason: 'peer-deleted' }]);
    assert.deepEqual(atD.effects, atR.effects);
  });
}

test('RFC 7296 §1.4.1: how our D(IKE) ends the IKE SA, by reason — set deleting first (terminated, duplicate with the survivor\'s held Child SAs, reauthenticated), then teardown or, for one whose Child SAs live on, retire; the same without an answer except for terminated', () => {
  const held = installedChild(side('alice'), 0x1001, 0x2001);
  // Each SA keeps its keys while deleting: the Delete and its retransmissions go out under them.
  const expected: Record<IkeDeleteReason, { readonly state: (keyed: UpKeyed) => IkeSa['state']; readonly end: readonly RequestEffect[] }> = {
    terminated: { state: (keyed) => ({ tag: 'deleting', up: fixtureUp('alice'), keyed }), end: [{ kind: 'teardown', reason: 'terminated' }] },
    duplicate: { state: (keyed) => ({ tag: 'deleting', sendOn: [held], up: fixtureUp('alice'), keyed }), end: [{ kind: 'teardown', reason: 'replaced' }] },
    reauthenticated: { state: (keyed) => ({ tag: 'deleting', up: fixtureUp('alice'), keyed }), end: [{ kind: 'teardown', reason: 'reauthenticated' }] },
    rekeyed: { state: (keyed) => ({ tag: 'established', up: fixtureUp('alice'), keyed }), end: [{ kind: 'retire' }] },
    redundant: { state: (keyed) => ({ tag: 'established', up: fixtureUp('alice'), keyed }), end: [{ kind: 'retire' }] },
  };
  for (const reason of REASONS) {
    const a = ikeSide('alice');
    const keyed = a.sa.state.keyed;
    const s = requestIkeDelete({ heldBySurvivor: (sa) => (sa === a.sa ? [held] : []) }, a.sa, reason);
    /* INFORMATIONAL { D(IKE) } --> */
    assert.deepEqual(kinds(s).filter((k) => k === 'send'), ['send'], reason);
    sent(a.sa, s);
    assert.deepEqual(a.sa.state, expected[reason].state(keyed), reason);
    assert.equal(s.next.tag, 'delete-sent');
    if (s.next.tag !== 'delete-sent') continue;
    /* <-- INFORMATIONAL { } */
    assert.deepEqual(ikeDeleteAnswered(s.next).effects, expected[reason].end, reason);
    if (reason !== 'terminated') assert.deepEqual(ikeDeleteUnanswered(a.sa, s.next).effects, expected[reason].end, `${reason}, unanswered`);
  }
});

test('RFC 7296 §1.4.1, §2.4: our D(IKE) of a terminated IKE SA unanswered through every retransmission — torn down as terminated, with no error and no dpd.action (we were ending it); already rekeyed, it retires', () => {
  const a = ikeSide('alice');
  withDpd(a.sa, { intervalMs: 30_000, action: 'restart' });
  const s = requestIkeDelete(NO_SURVIVOR, a.sa, 'terminated');
  /* INFORMATIONAL { D(IKE) } -->   (resent, never answered) */
  sent(a.sa, s);
  assert.equal(s.next.tag, 'delete-sent');
  if (s.next.tag !== 'delete-sent') return;
  assert.deepEqual(ikeDeleteUnanswered(a.sa, s.next).effects, [{ kind: 'teardown', reason: 'terminated' }]);
  a.sa.state = { tag: 'rekeyed', successor: ikeSide('alice').sa, up: fixtureUp('alice'), keyed: a.sa.state.keyed };
  assert.deepEqual(ikeDeleteUnanswered(a.sa, s.next).effects, [{ kind: 'retire' }]);
});

test('RFC 7296 §1.4.1: no D(IKE) for an IKE SA still negotiating or gone — the step finds it moot and sends nothing', () => {
  const init = { request: new Uint8Array(0), response: new Uint8Array(0) };
  const keyed = preAuthKeyedOf(ikeSide('alice'));
  const states: readonly IkeSa['state'][] = [{ tag: 'idle' }, { tag: 'auth-sent', init, intermediate: null, keyed }, { tag: 'init-done', init, intermediate: null, keyed }, { tag: 'dead', up: null }, { tag: 'dead', up: fixtureUp('alice') }];
  for (const state of states) {
    const sa: IkeSa = ikeSide('alice').sa;
    sa.state = state;
    assert.deepEqual(requestIkeDelete(NO_SURVIVOR, sa, 'terminated'), { next: { tag: 'done' }, effects: [] }, state.tag);
    assert.deepEqual(requestLiveness(sa), { next: { tag: 'done' }, effects: [] }, state.tag);
  }
});

test('RFC 7296 §2.4: a liveness check unanswered within dpd.timeout — the error, the IKE SA down as dpd-timeout, then dpd.action: restart, hold (trap), or clear (nothing)', () => {
  const follow: Record<DpdConfig['action'], readonly string[]> = { restart: ['restart'], hold: ['install-traps'], clear: [] };
  for (const action of ['restart', 'hold', 'clear'] as const) {
    const a = ikeSide('alice');
    withDpd(a.sa, { intervalMs: 30_000, timeoutMs: 60_000, action });
    const s = requestLiveness(a.sa);
    /* INFORMATIONAL { } -->   (resent until dpd.timeout, never answered) */
    sent(a.sa, s);
    assert.equal(s.next.tag, 'liveness-sent');
    if (s.next.tag !== 'liveness-sent') return;
    const t = livenessUnanswered(a.sa, s.next, GAVE_UP);
    assert.deepEqual(kinds(t), ['error', 'teardown:dpd-timeout', ...follow[action]], action);
    const f = t.effects[0];
    assert.equal(f?.kind === 'error' && f.failure.code, 'ERR_IKE_TIMEOUT');
    assert.equal(f?.kind === 'error' && f.failure.message, 'no response after 5 retransmissions (dpd)');
    assert.equal(f?.kind === 'error' && f.failure.exchange, 'INFORMATIONAL');
  }
});

test('RFC 7296 §2.4: a dead peer\'s follow-up — none for a terminated peer; a rekeyed IKE SA retires instead; an initiation that never came up is retried; a request other than a liveness check ends it as retransmit-limit', () => {
  const terminated = ikeSide('alice');
  withDpd(terminated.sa, { intervalMs: 30_000, action: 'restart' });
  terminated.sa.peer.terminated = true;
  assert.deepEqual(kinds(livenessUnanswered(terminated.sa, { tag: 'liveness-sent' }, GAVE_UP)), ['error', 'teardown:dpd-timeout']);
  const rekeyed = ikeSide('alice');
  rekeyed.sa.state = { tag: 'rekeyed', successor: ikeSide('alice').sa, up: fixtureUp('alice'), keyed: rekeyed.sa.state.keyed };
  assert.deepEqual(livenessUnanswered(rekeyed.sa, { tag: 'liveness-sent' }, GAVE_UP).effects, [{ kind: 'retire' }]);
  /* IKE_AUTH { ... } -->   (never answered) */
  const starting: IkeSa = ikeSide('alice').sa;
  starting.state = { tag: 'auth-sent', init: { request: new Uint8Array(0), response: new Uint8Array(0) }, intermediate: null, keyed: preAuthKeyedOf(ikeSide('alice')) };
  const t = requestUnanswered(starting, { task: 'ike-auth', tries: 5, exchange: 'IKE_AUTH', hint: '' });
  assert.deepEqual(kinds(t), ['error', 'teardown:retransmit-limit', 'retry-initiation']);
  /* CREATE_CHILD_SA { ... } -->   (never answered, dpd.action hold) */
  const up = ikeSide('bob');
  withDpd(up.sa, { intervalMs: 30_000, action: 'hold' });
  assert.deepEqual(kinds(requestUnanswered(up.sa, { task: 'child-create', tries: 5, exchange: 'CREATE_CHILD_SA', hint: '' })), ['error', 'teardown:retransmit-limit', 'install-traps']);
});
