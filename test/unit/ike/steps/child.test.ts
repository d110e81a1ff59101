// CREATE_CHILD_SA for Child SAs as steps (src/ike/steps/child.ts, child-responder.ts), without
// engines: literal states in, effects asserted, each scenario narrated message by message and run
// with alice and with bob as the initiator. The pair tests (test/unit/ike/pair) drive the same
// steps through two whole engines.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DhId } from '../../../../src/ike/constants.js';
import type { KernelSa } from '../../../../src/ike/ports.js';
import { REKEY_RETRY_MS, REKEYED_SA_TIMEOUT_MS } from '../../../../src/ike/sa/defaults.js';
import type { ChildSa } from '../../../../src/ike/sa/ike-sa.js';
import { acceptChildRequest, consumeChildRequest } from '../../../../src/ike/steps/child-responder.js';
import { childDeleteAnswered, childInstalled, consumeChildResponse, peerDeletedChild, peerSwitchDue, requestChild, type ChildExchange } from '../../../../src/ike/steps/child.js';
import { effect, installedChild, kinds, notify, NotifyError, other, shape, side, wire, type Who } from './fixtures.js';

const ROLES: readonly Who[] = ['alice', 'bob'];

function expectTag<T extends ChildExchange['tag']>(s: ChildExchange, tag: T): Extract<ChildExchange, { tag: T }> {
  const is = (x: ChildExchange): x is Extract<ChildExchange, { tag: T }> => x.tag === tag;
  if (!is(s)) assert.fail(`state is ${s.tag}, want ${tag}`);
  return s;
}

const keyOf = (sa: KernelSa): Uint8Array => (sa.algorithms.kind === 'aead' ? sa.algorithms.key.expose() : sa.algorithms.encryption.key.expose());

for (const I of ROLES) for (const pfs of [false, true]) {
  const R = other(I);
  test(`RFC 7296 §1.3.1: a new Child SA${pfs ? ' with PFS' : ''}, ${I} initiating — both sides install the same keys on crossed SPIs and report child-up`, () => {
    const i = side(I, { pfs }); const r = side(R, { pfs });
    // The driver allocated the initiator's inbound SPI for the child's reqid before the step.
    const req = requestChild(i.env, { tag: 'create', runtime: i.runtime }, 0xc0000001);
    /* CREATE_CHILD_SA { SA, Ni, [KEi], TSi, TSr } --> */
    assert.deepEqual(kinds(req), ['send']);
    assert.deepEqual(shape(effect(req, 'send').payloads), pfs ? ['sa', 'nonce', 'ke', 'tsi', 'tsr'] : ['sa', 'nonce', 'tsi', 'tsr']);
    const sent = expectTag(req.next, 'create-sent');
    assert.equal(sent.offer.spi, 0xc0000001);

    const chosen = consumeChildRequest(r.env, r.ike, wire(effect(req, 'send').payloads, false));
    assert.deepEqual(chosen.effects, [], 'nothing happens before the responder has an SPI');
    const choice = expectTag(chosen.next, 'chosen');
    assert.equal(choice.choice.runtime, r.runtime);
    assert.equal(choice.rekey, null);
    const accepted = acceptChildRequest(r.env, r.ike, choice, 0xc0000002);
    const rInstall = effect(accepted, 'install');
    assert.equal(rInstall.peerCreated, true, 'a new SA the peer asked for: the driver may hold it while one of ours duplicates it');
    assert.deepEqual([rInstall.install.inbound.spi, rInstall.install.outbound.spi, rInstall.install.outboundActive], [0xc0000002, 0xc0000001, true]);
    const answered = childInstalled(expectTag(accepted.next, 'answer-installing'), true);
    /* <-- CREATE_CHILD_SA { SA, Nr, [KEr], TSi, TSr } */
    assert.deepEqual(kinds(answered), ['respond', 'emit:child-up']);
    assert.deepEqual(shape(effect(answered, 'respond').payloads), pfs ? ['sa', 'nonce', 'ke', 'tsi', 'tsr'] : ['sa', 'nonce', 'tsi', 'tsr']);

    const got = consumeChildResponse(i.env, i.ike, sent, wire(effect(answered, 'respond').payloads, true));
    const iInstall = effect(got, 'install');
    assert.deepEqual(kinds(got), ['install']);
    assert.deepEqual([iInstall.install.inbound.spi, iInstall.install.outbound.spi], [0xc0000001, 0xc0000002]);
    assert.deepEqual(keyOf(iInstall.install.outbound), keyOf(rInstall.install.inbound), 'initiator-to-responder keys agree (§2.17)');
    assert.deepEqual(keyOf(iInstall.install.inbound), keyOf(rInstall.install.outbound), 'responder-to-initiator keys agree (§2.17)');
    const up = childInstalled(expectTag(got.next, 'create-installing'), true);
    assert.deepEqual(kinds(up), ['emit:child-up']);
    assert.equal(up.next.tag, 'done');
  });

  test(`RFC 7296 §1.3.3, §2.8: a Child SA rekey${pfs ? ' with PFS' : ''}, ${I} initiating — make-before-break: the responder sends on the old SA until the initiator deletes it`, () => {
    const i = side(I, { pfs }); const r = side(R, { pfs });
    const iOld = installedChild(i, 0x1000, 0x2000); i.ike.children.set(0x1000, iOld);
    const rOld = installedChild(r, 0x2000, 0x1000); r.ike.children.set(0x2000, rOld);
    const req = requestChild(i.env, { tag: 'rekey', old: iOld }, 0x1001);
    /* CREATE_CHILD_SA { N(REKEY_SA), SA, Ni, [KEi], TSi, TSr } --> */
    assert.deepEqual(kinds(req), ['set-state', 'send']);
    assert.deepEqual(effect(req, 'set-state').state, { tag: 'rekeying' });
    const payloads = effect(req, 'send').payloads;
    assert.deepEqual(shape(payloads), pfs ? ['notify(REKEY_SA)', 'sa', 'nonce', 'ke', 'tsi', 'tsr'] : ['notify(REKEY_SA)', 'sa', 'nonce', 'tsi', 'tsr']);
    const rekeySa = payloads[0];
    assert.ok(rekeySa?.kind === 'notify' && new DataView(rekeySa.spi.buffer, rekeySa.spi.byteOffset).getUint32(0) === 0x1000, 'REKEY_SA names the SPI we receive on');
    iOld.state = effect(req, 'set-state').state; // as the driver does

    const chosen = expectTag(consumeChildRequest(r.env, r.ike, wire(payloads, false)).next, 'chosen');
    assert.deepEqual(chosen.rekey, { old: rOld, collision: false });
    const accepted = acceptChildRequest(r.env, r.ike, chosen, 0x2001);
    const rInstall = effect(accepted, 'install');
    assert.equal(rInstall.install.outboundActive, false, 'inbound only until the initiator deletes the old SA');
    assert.deepEqual(rInstall.child.outbound, { tag: 'pending', state: rInstall.install.outbound }, 'the record keeps the outbound state for a restart');
    const answered = childInstalled(expectTag(accepted.next, 'answer-installing'), true);
    /* <-- CREATE_CHILD_SA { SA, Nr, [KEr], TSi, TSr } */
    assert.deepEqual(kinds(answered), ['set-state', 'respond', 'emit:child-rekeyed', 'timer'], 'the old SA is marked replaced before the answer is checkpointed');
    assert.deepEqual(effect(answered, 'set-state'), { kind: 'set-state', child: rOld, state: { tag: 'rekeyed', successor: rInstall.child } });
    assert.deepEqual(effect(answered, 'timer'), { kind: 'timer', afterMs: REKEYED_SA_TIMEOUT_MS, fire: { kind: 'peer-switch', old: rOld, successor: rInstall.child } });

    const got = consumeChildResponse(i.env, i.ike, expectTag(req.next, 'rekey-sent'), wire(effect(answered, 'respond').payloads, true));
    const iInstall = effect(got, 'install');
    assert.equal(iInstall.install.outboundActive, true, 'the initiator sends on the new SA at once');
    assert.deepEqual(keyOf(iInstall.install.outbound), keyOf(rInstall.install.inbound));
    const fin = childInstalled(expectTag(got.next, 'rekey-installing'), true);
    /* INFORMATIONAL { D(old) } --> (queued) */
    assert.deepEqual(kinds(fin), ['set-state', 'emit:child-rekeyed', 'delete']);
    assert.deepEqual(effect(fin, 'delete'), { kind: 'delete', child: iOld, reason: 'rekeyed' });
  });
}

for (const I of ROLES) {
  const R = other(I);
  for (const ours of ['lowest', 'not lowest'] as const) {
    test(`RFC 7296 §2.8.1: ${I}'s rekey crossed ${R}'s and ${I}'s exchange ${ours === 'lowest' ? 'holds' : 'does not hold'} the lowest nonce — ${ours === 'lowest' ? 'its new SA is redundant: released and deleted, the peer\'s succeeds the old one' : 'its new SA is installed and succeeds the old one'}`, () => {
      const i = side(I); const r = side(R);
      const iOld = installedChild(i, 0x1000, 0x2000, { tag: 'rekeying' }); i.ike.children.set(0x1000, iOld);
      const rOld = installedChild(r, 0x2000, 0x1000, { tag: 'rekeying' }); r.ike.children.set(0x2000, rOld);
      const req = requestChild(i.env, { tag: 'rekey', old: iOld }, 0x1001);
      /* CREATE_CHILD_SA { N(REKEY_SA), SA, Ni, TSi, TSr } --> (crosses the peer's request, which we answered) */
      const chosen = expectTag(consumeChildRequest(r.env, r.ike, wire(effect(req, 'send').payloads, false)).next, 'chosen');
      assert.deepEqual(chosen.rekey, { old: rOld, collision: true }, 'the responder rekeys the same SA itself');
      const answered = childInstalled(expectTag(acceptChildRequest(r.env, r.ike, chosen, 0x2001).next, 'answer-installing'), true);
      assert.deepEqual(kinds(answered), ['collision', 'respond'], 'no switch-over yet: the initiator of each exchange settles its own SA');
      /* <-- CREATE_CHILD_SA { SA, Nr, TSi, TSr } */
      const peerSa = installedChild(i, 0x1002, 0x2002, { tag: 'installed' });
      const theirs = new Uint8Array(32).fill(ours === 'lowest' ? 0xff : 0x00);
      const sent = { ...expectTag(req.next, 'rekey-sent'), collision: { peerSa, nonces: [theirs, theirs] } };
      const got = consumeChildResponse(i.env, i.ike, sent, wire(effect(answered, 'respond').payloads, true));
      if (ours === 'lowest') {
        assert.deepEqual(kinds(got), ['release-spi', 'set-state', 'timer', 'emit:child-rekeyed', 'delete']);
        assert.deepEqual(effect(got, 'set-state').state, { tag: 'rekeyed', successor: peerSa });
        assert.equal(effect(got, 'delete').reason, 'redundant');
        assert.equal(effect(got, 'delete').child.ref.inboundSpi, 0x1001);
        assert.equal(got.next.tag, 'done');
      } else {
        assert.deepEqual(kinds(got), ['install']);
        assert.deepEqual(kinds(childInstalled(expectTag(got.next, 'rekey-installing'), true)), ['set-state', 'emit:child-rekeyed', 'delete']);
      }
    });
  }
}

test('RFC 7296 §1.3: INVALID_KE_PAYLOAD naming a group our proposals carry — the SPI is released and the request repeated at once with that group', () => {
  const i = side('alice', { esp: ['aes256gcm16-x25519-ecp256'] });
  const req = requestChild(i.env, { tag: 'create', runtime: i.runtime }, 0x1001);
  assert.equal(expectTag(req.next, 'create-sent').offer.share?.group, DhId.CURVE25519);
  /* <-- CREATE_CHILD_SA { N(INVALID_KE_PAYLOAD, ecp256) } */
  const got = consumeChildResponse(i.env, i.ike, expectTag(req.next, 'create-sent'), wire([notify(NotifyError.INVALID_KE_PAYLOAD, Uint8Array.of(0, DhId.ECP_256))], true));
  assert.deepEqual(kinds(got), ['release-spi', 'queue'], 'an error notify: the peer installed nothing, so nothing to delete there');
  assert.deepEqual(effect(got, 'queue'), { kind: 'queue', task: { kind: 'child-create', child: i.runtime, group: DhId.ECP_256 }, first: true });
  /* the repeat on a fresh SPI, refused the same way: no third try */
  const again = requestChild(i.env, { tag: 'create', runtime: i.runtime, group: DhId.ECP_256 }, 0x1002);
  const last = consumeChildResponse(i.env, i.ike, expectTag(again.next, 'create-sent'), wire([notify(NotifyError.INVALID_KE_PAYLOAD, Uint8Array.of(0, DhId.CURVE25519))], true));
  assert.deepEqual(kinds(last), ['release-spi', 'emit:error', 'note-failed']);
});

test('RFC 7296 §2.25: a rekey answered TEMPORARY_FAILURE — the old SA is installed again and the rekey retried later, without an error', () => {
  const i = side('bob');
  const old = installedChild(i, 0x1000, 0x2000, { tag: 'rekeying' });
  const req = requestChild(i.env, { tag: 'rekey', old }, 0x1001);
  /* <-- CREATE_CHILD_SA { N(TEMPORARY_FAILURE) } */
  const got = consumeChildResponse(i.env, i.ike, expectTag(req.next, 'rekey-sent'), wire([notify(NotifyError.TEMPORARY_FAILURE)], true));
  assert.deepEqual(kinds(got), ['release-spi', 'set-state', 'timer']);
  assert.deepEqual(effect(got, 'timer'), { kind: 'timer', afterMs: REKEY_RETRY_MS, fire: { kind: 'queue', task: { kind: 'child-rekey', old } } });
});

test('RFC 7296 §1.3: an answer we refuse although it carries no error notify — the peer has installed its side, so we delete it there with the SPI we offered', () => {
  const i = side('alice');
  const req = requestChild(i.env, { tag: 'create', runtime: i.runtime }, 0x1001);
  /* <-- CREATE_CHILD_SA { Nr, TSi, TSr }  (no SA) */
  const got = consumeChildResponse(i.env, i.ike, expectTag(req.next, 'create-sent'), wire([{ kind: 'nonce', data: new Uint8Array(32).fill(9) }, ...effect(req, 'send').payloads.filter((p) => p.kind === 'tsi' || p.kind === 'tsr')], true));
  assert.deepEqual(kinds(got), ['release-spi', 'delete', 'emit:error', 'note-failed']);
  assert.equal(effect(got, 'delete').child.ref.inboundSpi, 0x1001);
  const err = effect(got, 'emit').event;
  assert.ok(err.type === 'error' && err.failure.code === 'ERR_IKE_BAD_CHILD_REPLY');
});

test('RFC 7296 §2.25.1: the peer deleted the old SA while our rekey was in flight — the new SA is kept as a plain Child SA', () => {
  const i = side('alice'); const r = side('bob');
  const old = installedChild(i, 0x1000, 0x2000, { tag: 'rekeying' });
  r.ike.children.set(0x2000, installedChild(r, 0x2000, 0x1000));
  const req = requestChild(i.env, { tag: 'rekey', old }, 0x1001);
  const chosen = expectTag(consumeChildRequest(r.env, r.ike, wire(effect(req, 'send').payloads, false)).next, 'chosen');
  const answered = childInstalled(expectTag(acceptChildRequest(r.env, r.ike, chosen, 0x2001).next, 'answer-installing'), true);
  old.state = { tag: 'deleted' }; // INFORMATIONAL { D(old) } arrived first
  const got = consumeChildResponse(i.env, i.ike, expectTag(req.next, 'rekey-sent'), wire(effect(answered, 'respond').payloads, true));
  const installing = expectTag(got.next, 'create-installing');
  assert.deepEqual(installing.retry, { kind: 'child-create', child: i.runtime });
  assert.deepEqual(kinds(childInstalled(installing, true)), ['emit:child-up']);
});

test('RFC 7296 §1.3, §2.25: requests the responder refuses are answered with the notify and allocate nothing', () => {
  const i = side('alice', { pfs: true }); const r = side('bob', { pfs: true });
  const create = effect(requestChild(i.env, { tag: 'create', runtime: i.runtime }, 0x1001), 'send').payloads;
  const answer = (payloads: typeof create, ike = r.ike): string[] => {
    const step = consumeChildRequest(r.env, ike, wire(payloads, false));
    assert.equal(step.next.tag, 'done', 'no chosen state, so the driver allocates no SPI');
    return [...kinds(step), ...shape(effect(step, 'respond').payloads)];
  };
  /* CREATE_CHILD_SA { SA, Ni, KEi, TSi, TSr } --> on an IKE SA being rekeyed: <-- { N(TEMPORARY_FAILURE) } */
  assert.deepEqual(answer(create, { ...r.ike, state: { tag: 'rekeyed' } }), ['respond', 'notify(TEMPORARY_FAILURE)']);
  /* CREATE_CHILD_SA { SA, Ni, TSi, TSr } (no KEi for a PFS proposal) --> <-- { N(INVALID_KE_PAYLOAD) } */
  assert.deepEqual(answer(create.filter((p) => p.kind !== 'ke')), ['respond', 'notify(INVALID_KE_PAYLOAD)']);
  /* CREATE_CHILD_SA { N(REKEY_SA, an SPI we never had), ... } --> <-- { N(CHILD_SA_NOT_FOUND) } */
  const old = installedChild(i, 0x1000, 0xdead);
  const rekey = effect(requestChild(i.env, { tag: 'rekey', old }, 0x1002), 'send').payloads;
  assert.deepEqual(answer(rekey), ['respond', 'notify(CHILD_SA_NOT_FOUND)']);
  /* the same for an SA we are deleting: <-- { N(TEMPORARY_FAILURE) } */
  r.ike.children.set(0xdead, installedChild(r, 0xdead, 0x1000, { tag: 'deleting' }));
  assert.deepEqual(answer(rekey), ['respond', 'notify(TEMPORARY_FAILURE)']);
  /* selectors that match none of ours: <-- { N(TS_UNACCEPTABLE) }, and the error is reported */
  const far = side('alice', { pfs: true }).runtime;
  const wrongTs = effect(requestChild(i.env, { tag: 'create', runtime: { ...far, localTs: far.remoteTs } }, 0x1003), 'send').payloads;
  assert.deepEqual(answer(wrongTs), ['respond', 'emit:error', 'notify(TS_UNACCEPTABLE)']);
});

test('RFC 7296 §1.3: the kernel refused what we agreed to — the responder answers NO_ADDITIONAL_SAS, the initiator deletes it at the peer and retries later', () => {
  const i = side('alice'); const r = side('bob');
  const req = requestChild(i.env, { tag: 'create', runtime: i.runtime }, 0x1001);
  const accepted = acceptChildRequest(r.env, r.ike, expectTag(consumeChildRequest(r.env, r.ike, wire(effect(req, 'send').payloads, false)).next, 'chosen'), 0x2001);
  const refused = childInstalled(expectTag(accepted.next, 'answer-installing'), false);
  /* <-- CREATE_CHILD_SA { N(NO_ADDITIONAL_SAS) } */
  assert.deepEqual([...kinds(refused), ...shape(effect(refused, 'respond').payloads)], ['respond', 'notify(NO_ADDITIONAL_SAS)']);
  const ok = childInstalled(expectTag(accepted.next, 'answer-installing'), true);
  const got = consumeChildResponse(i.env, i.ike, expectTag(req.next, 'create-sent'), wire(effect(ok, 'respond').payloads, true));
  const abandoned = childInstalled(expectTag(got.next, 'create-installing'), false);
  assert.deepEqual(kinds(abandoned), ['note-failed', 'delete', 'timer']);
  assert.deepEqual(effect(abandoned, 'timer').fire, { kind: 'queue', task: { kind: 'child-create', child: i.runtime } });
  const old = installedChild(i, 0x1000, 0x2000, { tag: 'rekeying' });
  const rekeyed = childInstalled({ tag: 'rekey-installing', old, child: effect(got, 'install').child }, false);
  assert.deepEqual(kinds(rekeyed), ['set-state', 'note-failed', 'delete', 'timer'], 'the old SA carries traffic again until the retry');
  assert.deepEqual(effect(rekeyed, 'set-state').state, { tag: 'installed' });
});

test('RFC 7296 §2.8: the peer rekeyed our SA but never deleted the old one — after the wait we send on the new SA and remove the old one, unless the new one is gone', () => {
  const r = side('bob');
  const successor = installedChild(r, 0x2001, 0x1001);
  const old = installedChild(r, 0x2000, 0x1000, { tag: 'rekeyed', successor });
  /* CREATE_CHILD_SA { N(REKEY_SA), SA, Ni, TSi, TSr } -->  <-- { SA, Nr, TSi, TSr }, then no INFORMATIONAL { D(old) } */
  assert.deepEqual(peerSwitchDue(old, successor, true).effects, [{ kind: 'activate-outbound', child: successor }, { kind: 'remove', child: old, reason: 'rekeyed', lingerMs: 0 }]);
  /* INFORMATIONAL { D(successor) } --> came instead (the peer's redundant SA of a collision): the old SA carries on */
  const gone = { ...successor, state: { tag: 'deleted' } as const };
  assert.deepEqual(peerSwitchDue({ ...old, state: { tag: 'rekeyed', successor: gone } }, gone, true).effects.map((f) => f.kind === 'set-state' && f.state.tag), ['installed']);
  /* the old SA went another way meanwhile (deleted, or no longer on one of our IKE SAs): nothing to do */
  assert.deepEqual(peerSwitchDue({ ...old, state: { tag: 'deleted' } }, successor, true).effects, []);
  assert.deepEqual(peerSwitchDue(old, successor, false).effects, []);
});

test('RFC 7296 §1.4.1, §2.8: an INFORMATIONAL Delete from the peer of a Child SA — completing its rekey switches us to the new SA (the old inbound lingers), otherwise the SA is gone', () => {
  const r = side('bob');
  const LINGER_MS = 2_000;
  /* INFORMATIONAL { D(old) } --> after the peer's rekey of old, which we answered */
  const successor = installedChild(r, 0x2001, 0x1001);
  const old = installedChild(r, 0x2000, 0x1000, { tag: 'rekeyed', successor });
  assert.deepEqual(peerDeletedChild(old, [old, successor], LINGER_MS).effects, [{ kind: 'activate-outbound', child: successor }, { kind: 'remove', child: old, reason: 'rekeyed', lingerMs: LINGER_MS }]);
  /* INFORMATIONAL { D(old) } --> overtaking the answer to our own rekey of old, which crossed the peer's (§2.8.1): the peer won */
  const winner = installedChild(r, 0x2002, 0x1002);
  const crossed = installedChild(r, 0x2000, 0x1000, { tag: 'rekeying' });
  assert.deepEqual(kinds(peerDeletedChild(crossed, [crossed, winner], LINGER_MS, { peerSa: winner, nonces: [winner.ni, winner.nr] })), ['activate-outbound', 'emit:child-rekeyed', 'remove']);
  /* INFORMATIONAL { D(new) } --> the peer's SA we installed receive-only (a collision it lost, or an answer it refused): the old SA carries on */
  const pending: ChildSa = { ...successor, outbound: { tag: 'pending', state: null } };
  const before = installedChild(r, 0x2000, 0x1000, { tag: 'rekeyed', successor: pending });
  assert.deepEqual(peerDeletedChild(pending, [before, pending], LINGER_MS).effects, [{ kind: 'remove', child: pending, reason: 'rekeyed', lingerMs: 0 }, { kind: 'set-state', child: before, state: { tag: 'installed' } }]);
  /* INFORMATIONAL { D(child) } --> a plain delete, or the answer to our own delete crossing it */
  assert.deepEqual(peerDeletedChild(installedChild(r, 0x2000, 0x1000), [], LINGER_MS).effects.map((f) => f.kind === 'remove' && f.reason), ['peer-deleted']);
  assert.deepEqual(peerDeletedChild(installedChild(r, 0x2000, 0x1000, { tag: 'deleting' }), [], LINGER_MS).effects.map((f) => f.kind === 'remove' && f.reason), ['terminated']);
});

test('RFC 7296 §1.4.1, §2.8: the answer to our INFORMATIONAL Delete — after our rekey the old SA goes with its inbound state lingering, after terminate() at once', () => {
  const i = side('alice');
  const old = installedChild(i, 0x1000, 0x2000, { tag: 'rekeyed', successor: installedChild(i, 0x1001, 0x2001) });
  /* INFORMATIONAL { D(old) } -->  <-- INFORMATIONAL { D(old) } */
  assert.deepEqual(childDeleteAnswered(old, 'rekeyed', 2_000).effects, [{ kind: 'remove', child: old, reason: 'rekeyed', lingerMs: 2_000 }]);
  assert.deepEqual(childDeleteAnswered(old, 'terminated', 2_000).effects, [{ kind: 'remove', child: old, reason: 'terminated', lingerMs: 0 }]);
  /* a redundant SA of ours (never installed, or a collision's loser) and an expired one are out of the kernel already */
  assert.deepEqual(childDeleteAnswered(old, 'redundant', 2_000).effects, []);
  assert.deepEqual(childDeleteAnswered(old, 'hard-lifetime', 2_000).effects, []);
});
