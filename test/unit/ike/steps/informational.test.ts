// INFORMATIONAL as steps (src/ike/steps/informational.ts), without engines: literal IKE SA and
// Child SA records in, effects asserted, each request narrated, Deletes run from both roles. The
// pair tests (test/unit/ike/pair/lifecycle.test.ts, rekey*.test.ts, reauth*.test.ts) drive the
// same steps through two engines.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { IkeMessage } from '../../../../src/ike/codec/message.js';
import type { IkePayload } from '../../../../src/ike/codec/payload.js';
import { consumeInformationalRequest, deleteChildPayloads, deleteIkePayloads, type InformationalEffect, type InformationalStep } from '../../../../src/ike/steps/informational.js';
import { installedChild, notify, NotifyError, other, side, wire, type Who } from './fixtures.js';
import { ikeSide, outstanding } from './ike-fixtures.js';

const ROLES: readonly Who[] = ['alice', 'bob'];
const kinds = (s: InformationalStep): string[] => s.effects.map((f) => (f.kind === 'teardown' ? `teardown:${f.reason}` : f.kind));
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
  rekeyed.sa.state = { tag: 'rekeyed', successor: ikeSide('bob').sa };
  /* INFORMATIONAL { D(IKE) } on the old SA -->   <-- INFORMATIONAL { } */
  assert.deepEqual(kinds(consumeInformationalRequest(rekeyed.sa, request(deleteIkePayloads()))), ['respond', 'retire']);
  const crossed = ikeSide('alice');
  const peerSa = ikeSide('alice').sa;
  crossed.sa.ikeCollision = { peerSa, nonces: [peerSa.ni, peerSa.nr] };
  crossed.sa.outstanding = outstanding({ kind: 'ike-rekey' });
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
