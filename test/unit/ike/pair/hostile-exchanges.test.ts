// Hostile exchanges at engine level (issue 14, hardening), each from both roles: the message
// arrives at the IKE SA's original initiator (alice) and at its original responder (bob). A
// hostile peer here holds the real keys (forge.ts takes them from the sender's checkpoint): it
// opens a genuine request or response on the wire, changes its inner payloads and seals it again
// under the same message ID, so the exchange after it shows whether the SA survived.
//
//   CREATE_CHILD_SA { N(REKEY_SA), SA, Ni, [KEi], TSi, TSr }  -- made hostile -->
//                                      <-- { N(TS_UNACCEPTABLE | INVALID_SYNTAX | INVALID_KE_PAYLOAD | CHILD_SA_NOT_FOUND) }
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DhId, ExchangeType, NotifyError, NotifyStatus, PayloadType, ProtocolId, notifyName } from '../../../../src/ike/constants.js';
import type { IkePayload } from '../../../../src/ike/codec/payload.js';
import type { KePayload } from '../../../../src/ike/codec/payloads/ke.js';
import type { TrafficSelector } from '../../../../src/ike/codec/payloads/ts.js';
import type { IkeEvent } from '../../../../src/ike/ports.js';
import { child, mirrored, Pair, type Packet, type Side } from './harness.js';
import { inject, intercept, openFrom, reseal, sentSince, tampered, type BodyPatch } from './forge.js';

type Who = 'alice' | 'bob';
const ROLES: readonly Who[] = ['alice', 'bob'];
const other = (w: Who): Who => (w === 'alice' ? 'bob' : 'alice');
const peerOf = (w: Who): string => (w === 'alice' ? 'to-bob' : 'to-alice');
/** alice starts the IKE SA in every Pair: she is its original initiator. */
const roleOf = (w: Who): string => (w === 'alice' ? 'IKE initiator' : 'IKE responder');
const ike = (s: Side) => s.engine.status().peers[0]?.ike;
const drops = (s: Side, reason: string): number => s.engine.status().drops[reason] ?? 0;
const count = (s: Side, type: IkeEvent['type']): number => s.events.filter((e) => e.type === type).length;
const errorCodes = (s: Side): string[] => s.events.flatMap((e) => (e.type === 'error' ? [e.error.code] : []));
const addressOf = (p: Pair, s: Side): string => (s === p.alice ? '192.0.2.1' : '192.0.2.2');
const request = (p: Pair, from: Side, exchange: number) => (x: Packet): boolean => x.from.address === addressOf(p, from) && x.exchange === exchange && !x.response;
const response = (p: Pair, from: Side, exchange: number) => (x: Packet): boolean => x.from.address === addressOf(p, from) && x.exchange === exchange && x.response;

const REKEY_RETRY_MS = 10_000; // src/ike/sa/defaults.ts: a refused rekey is tried again after this
const PFS = 'aes256gcm16-x25519';
const pfsPair = (): Pair => new Pair({ aliceChildren: [child({ espProposals: [PFS] })], bobChildren: [child({ espProposals: [PFS] }, 'bob')] });

/** The one answer `to` sent since `mark`, decrypted. */
function answerOf(p: Pair, to: Side, mark: number, exchange: number) {
  const answers = sentSince(p, to, mark).filter((x) => x.response && x.exchange === exchange);
  assert.equal(answers.length, 1, `${to.name} answered once`);
  return openFrom(to, answers[0]!.datagram);
}

/** Both sides hold one Child SA pair, the same keys, and the same live IKE SA. */
function healthy(p: Pair): void {
  assert.equal(ike(p.alice)?.state, 'established');
  assert.equal(ike(p.alice)?.ikeSpis, ike(p.bob)?.ikeSpis);
  assert.equal(p.alice.kernel.installed.size, 1);
  assert.ok(mirrored(p.alice.kernel, p.bob.kernel), 'Child SAs mirrored');
  assert.equal(count(p.alice, 'ike-down') + count(p.bob, 'ike-down') + count(p.alice, 'child-down') + count(p.bob, 'child-down'), 0, 'nothing went down');
}

// ───────────── tampered SK on a fresh message ID ─────────────

for (const from of ROLES) {
  const to = other(from);
  test(`RFC 7296 §2.21.1, §3.14: a request with a broken ICV on the next message ID is dropped silently at the ${roleOf(to)}, which then answers the genuine one`, async () => {
    // Why: only the ICV says who sent it; a forgery must neither be answered nor use up the message ID.
    const p = new Pair();
    await p.connect();
    const req = await intercept(p, request(p, p[from], ExchangeType.CREATE_CHILD_SA), () => p[from].engine.rekey(peerOf(from)));
    const mark = p.net.log.length; const before = drops(p[to], 'integrity');
    await inject(p, req, tampered(req.datagram));
    assert.deepEqual(sentSince(p, p[to], mark), [], 'no answer to the forgery');
    assert.equal(drops(p[to], 'integrity') - before, 1);
    assert.equal(ike(p[to])?.state, 'established');
    await inject(p, req, req.datagram);
    assert.equal(answerOf(p, p[to], mark, ExchangeType.CREATE_CHILD_SA).errorNotifies().length, 0, 'the genuine request is answered');
    await p.advance(5_000);
    assert.equal(count(p.alice, 'child-rekeyed') + count(p.bob, 'child-rekeyed'), 2);
    healthy(p);
  });

  test(`RFC 7296 §2.21.1, §3.14: a response with a broken ICV is dropped silently at the ${roleOf(from)}; the request stays outstanding and the genuine response completes it`, async () => {
    const p = new Pair();
    await p.connect();
    const resp = await intercept(p, response(p, p[to], ExchangeType.CREATE_CHILD_SA), () => p[from].engine.rekey(peerOf(from)));
    const before = drops(p[from], 'integrity');
    await inject(p, resp, tampered(resp.datagram));
    assert.equal(drops(p[from], 'integrity') - before, 1);
    assert.equal(count(p[from], 'child-rekeyed'), 0, 'the forged answer completed nothing');
    await inject(p, resp, resp.datagram);
    await p.advance(5_000);
    assert.equal(count(p.alice, 'child-rekeyed') + count(p.bob, 'child-rekeyed'), 2);
    assert.deepEqual(errorCodes(p[from]), []);
    healthy(p);
  });
}

// ───────────── malformed TS, KE and REKEY_SA in CREATE_CHILD_SA ─────────────

type Edit = (inner: IkePayload[]) => IkePayload[];
const editTs = (kind: 'tsi' | 'tsr', f: (s: TrafficSelector) => TrafficSelector): Edit => (inner) =>
  inner.map((x) => (x.kind === kind ? { ...x, selectors: x.selectors.map(f) } : x));
const editKe = (f: (ke: KePayload) => KePayload | null): Edit => (inner) =>
  inner.flatMap((x): IkePayload[] => { const y = x.kind === 'ke' ? f(x) : x; return y === null ? [] : [y]; });
const editRekeySa = (protocolId: number, spi?: Uint8Array): Edit => (inner) =>
  inner.map((x) => (x.kind === 'notify' && x.type === NotifyStatus.REKEY_SA ? { ...x, protocolId, spi: spi ?? x.spi } : x));
const invertedAddresses = (s: TrafficSelector): TrafficSelector => ({ ...s, start: s.end, end: s.start });
const invertedPorts = (s: TrafficSelector): TrafficSelector => ({ ...s, startPort: 0xffff, endPort: 0 });
const same: Edit = (inner) => inner;
/** The first selector's Selector Length (after Number of TSs, RESERVED, TS Type, IP Protocol) says 24, not 16. */
const tsLength24: BodyPatch = { type: PayloadType.TSi, patch: (b) => { b[6] = 0; b[7] = 24; } };
/** The KE payload's DH Group Num says ECP-256 (64-octet data) over x25519's 32 octets. */
const keSaysEcp256: BodyPatch = { type: PayloadType.KE, patch: (b) => { b[0] = 0; b[1] = DhId.ECP_256; } };
const UNKNOWN_GROUP = 1000;
const X25519 = [0, DhId.CURVE25519];

interface HostileRequest {
  readonly rfc: string;
  readonly what: string;
  /** Rekey the IKE SA (RFC 7296 §1.3.2) instead of the Child SA (§1.3.3). */
  readonly ike?: boolean;
  /** Children with PFS (aes256gcm16-x25519): the Child rekey carries KEi. */
  readonly pfs?: boolean;
  readonly edit: Edit;
  /** Made to the encoded payload after `edit` (what the codec would not encode). */
  readonly patch?: BodyPatch;
  /** The only payload of the answer: this error notify, with this data. */
  readonly answer: readonly [type: number, data: readonly number[]];
  /** The request did not decode: counted as this drop before it was answered. */
  readonly drop?: string;
}

const REQUESTS: readonly HostileRequest[] = [
  { rfc: 'RFC 7296 §2.9, §3.13.1', what: 'a TSi whose start address is above its end address', edit: editTs('tsi', invertedAddresses), answer: [NotifyError.TS_UNACCEPTABLE, []] },
  { rfc: 'RFC 7296 §2.9, §3.13.1', what: 'a TSr whose start port is above its end port', edit: editTs('tsr', invertedPorts), answer: [NotifyError.TS_UNACCEPTABLE, []] },
  { rfc: 'RFC 7296 §3.13.1, §3.10.1', what: 'a traffic selector whose Selector Length does not fit its TS type', edit: same, patch: tsLength24, answer: [NotifyError.INVALID_SYNTAX, []], drop: 'malformed' },
  { rfc: 'RFC 7296 §3.4, §3.10.1', what: 'a KEi for ECP-256 with x25519\'s 32 octets', pfs: true, edit: same, patch: keSaysEcp256, answer: [NotifyError.INVALID_SYNTAX, []], drop: 'malformed' },
  { rfc: 'RFC 7296 §1.3, §3.10.1', what: 'a KEi of an unknown group', pfs: true, edit: editKe((k) => ({ ...k, group: UNKNOWN_GROUP })), answer: [NotifyError.INVALID_KE_PAYLOAD, X25519] },
  { rfc: 'RFC 7296 §1.3.3, §1.3', what: 'no KEi although the only proposal has a KE method (PFS)', pfs: true, edit: editKe(() => null), answer: [NotifyError.INVALID_KE_PAYLOAD, X25519] },
  { rfc: 'RFC 7296 §3.4, §3.10.1', what: 'a KEi for ECP-256 with x25519\'s 32 octets', ike: true, edit: same, patch: keSaysEcp256, answer: [NotifyError.INVALID_SYNTAX, []], drop: 'malformed' },
  { rfc: 'RFC 7296 §1.3.2, §1.3', what: 'a KEi of an unknown group', ike: true, edit: editKe((k) => ({ ...k, group: UNKNOWN_GROUP })), answer: [NotifyError.INVALID_KE_PAYLOAD, X25519] },
  { rfc: 'RFC 7296 §1.3.2', what: 'no KEi', ike: true, edit: editKe(() => null), answer: [NotifyError.INVALID_SYNTAX, []] },
  { rfc: 'RFC 7296 §3.10.1 (REKEY_SA)', what: 'REKEY_SA with protocol IKE', edit: editRekeySa(ProtocolId.IKE), answer: [NotifyError.INVALID_SYNTAX, []] },
  { rfc: 'RFC 7296 §3.10.1 (REKEY_SA), §2.25', what: 'REKEY_SA with protocol AH naming the ESP SA\'s SPI', edit: editRekeySa(ProtocolId.AH), answer: [NotifyError.CHILD_SA_NOT_FOUND, []] },
  { rfc: 'RFC 7296 §2.25', what: 'REKEY_SA naming an SPI we never allocated', edit: editRekeySa(ProtocolId.ESP, new Uint8Array([0xde, 0xad, 0xbe, 0xef])), answer: [NotifyError.CHILD_SA_NOT_FOUND, []] },
];

const notifies = (inner: readonly IkePayload[]): unknown[] => inner.map((x) => (x.kind === 'notify' ? [x.type, [...x.data]] : x.kind));

for (const c of REQUESTS) for (const from of ROLES) {
  const to = other(from);
  const kind = c.ike ? 'IKE SA' : 'Child SA';
  test(`${c.rfc}: ${c.what} in a ${kind} rekey, at the ${roleOf(to)}: answered ${notifyName(c.answer[0])}, nothing changes there, the next rekey works`, async () => {
    const p = c.pfs ? pfsPair() : new Pair();
    await p.connect();
    const installs = p[to].kernel.ops('install').length; const spis = p[to].kernel.ops('allocSpi').length; const ikeSpis = ike(p[to])?.ikeSpis;
    const req = await intercept(p, request(p, p[from], ExchangeType.CREATE_CHILD_SA), () => p[from].engine.rekey(peerOf(from), { ike: c.ike === true }));
    const mark = p.net.log.length; const dropsBefore = drops(p[to], c.drop ?? '');
    await inject(p, req, reseal(p[from], req.datagram, c.edit, c.patch));
    assert.deepEqual(notifies(answerOf(p, p[to], mark, ExchangeType.CREATE_CHILD_SA).payloads), [[c.answer[0], [...c.answer[1]]]]);
    if (c.drop !== undefined) assert.equal(drops(p[to], c.drop) - dropsBefore, 1, c.drop);
    // No state at the side that refused: no SPI, no kernel state, no second IKE SA.
    assert.equal(p[to].kernel.ops('install').length, installs, 'nothing installed');
    assert.equal(p[to].kernel.ops('allocSpi').length, spis, 'no SPI allocated');
    assert.equal(ike(p[to])?.ikeSpis, ikeSpis);
    assert.equal(ike(p[to])?.children.length, 1);
    // The rekeying side tries again later, and the genuine rekey goes through.
    await p.advance(REKEY_RETRY_MS + 5_000);
    const done = c.ike ? 'ike-rekeyed' : 'child-rekeyed';
    assert.deepEqual([count(p.alice, done), count(p.bob, done)], [1, 1], done);
    healthy(p);
  });
}

interface HostileResponse {
  readonly rfc: string;
  readonly what: string;
  readonly ike?: boolean;
  readonly pfs?: boolean;
  readonly edit: Edit;
  readonly patch?: BodyPatch;
  /** A response that does not decode is dropped (the retransmitted request gets the cached one); one that does is refused. */
  readonly outcome: { readonly drop: string } | { readonly failure: string };
}

const RESPONSES: readonly HostileResponse[] = [
  { rfc: 'RFC 7296 §2.9', what: 'a TSr whose start address is above its end address', edit: editTs('tsr', invertedAddresses), outcome: { failure: 'ERR_IKE_TS_UNACCEPTABLE' } },
  { rfc: 'RFC 7296 §3.13.1', what: 'a traffic selector whose Selector Length does not fit its TS type', edit: same, patch: tsLength24, outcome: { drop: 'malformed' } },
  { rfc: 'RFC 7296 §3.4', what: 'a KEr for ECP-256 with x25519\'s 32 octets', pfs: true, edit: same, patch: keSaysEcp256, outcome: { drop: 'malformed' } },
  { rfc: 'RFC 7296 §1.3.3', what: 'a KEr of another group than the one offered', pfs: true, edit: editKe((k) => ({ ...k, group: UNKNOWN_GROUP })), outcome: { failure: 'ERR_IKE_BAD_CHILD_REPLY' } },
  { rfc: 'RFC 7296 §1.3.3', what: 'no KEr for a proposal with a KE method (PFS)', pfs: true, edit: editKe(() => null), outcome: { failure: 'ERR_IKE_BAD_CHILD_REPLY' } },
  { rfc: 'RFC 7296 §1.3.2', what: 'a KEr of another group than the one offered', ike: true, edit: editKe((k) => ({ ...k, group: UNKNOWN_GROUP })), outcome: { failure: 'ERR_IKE_BAD_REKEY_REPLY' } },
  { rfc: 'RFC 7296 §1.3.2', what: 'no KEr', ike: true, edit: editKe(() => null), outcome: { failure: 'ERR_IKE_BAD_REKEY_REPLY' } },
];

for (const c of RESPONSES) for (const from of ROLES) {
  const to = other(from);
  const kind = c.ike ? 'IKE SA' : 'Child SA';
  const verdict = 'drop' in c.outcome ? `dropped (${c.outcome.drop}) until the genuine retransmission` : `refused with ${c.outcome.failure}`;
  test(`${c.rfc}: a ${kind} rekey response with ${c.what}, at the ${roleOf(from)}: ${verdict}; its IKE SA stays up`, async () => {
    const p = c.pfs ? pfsPair() : new Pair();
    await p.connect();
    const installs = p[from].kernel.ops('install').length; const ikeSpis = ike(p[from])?.ikeSpis;
    const resp = await intercept(p, response(p, p[to], ExchangeType.CREATE_CHILD_SA), () => p[from].engine.rekey(peerOf(from), { ike: c.ike === true }));
    const released = p[from].kernel.ops('releaseSpi').length;
    if ('drop' in c.outcome) {
      const before = drops(p[from], c.outcome.drop);
      await inject(p, resp, reseal(p[to], resp.datagram, c.edit, c.patch));
      assert.equal(drops(p[from], c.outcome.drop) - before, 1);
      assert.deepEqual(errorCodes(p[from]), []);
      // The request is still outstanding: its retransmission gets the peer's cached (genuine) response.
      await p.advance(4_000 + 5_000);
      const done = c.ike ? 'ike-rekeyed' : 'child-rekeyed';
      assert.deepEqual([count(p.alice, done), count(p.bob, done)], [1, 1], done);
      healthy(p);
      return;
    }
    await inject(p, resp, reseal(p[to], resp.datagram, c.edit, c.patch));
    assert.deepEqual(errorCodes(p[from]), [c.outcome.failure]);
    // Nothing of the refused answer is kept: no kernel state, our offered SPI released, the old SAs in place.
    assert.equal(p[from].kernel.ops('install').length, installs, 'nothing installed');
    if (!c.ike) assert.equal(p[from].kernel.ops('releaseSpi').length - released, 1, 'the SPI we offered is released');
    assert.equal(ike(p[from])?.state, 'established');
    assert.equal(ike(p[from])?.ikeSpis, ikeSpis);
    assert.equal(ike(p[from])?.children.length, 1);
    assert.equal(count(p[from], 'ike-down') + count(p[from], 'child-down'), 0);
    if (c.ike) return;
    // The peer had installed its side of the refused SA: it is deleted there too (strongSwan does),
    // so it does not move its traffic onto an SA we do not have (REKEYED_SA_TIMEOUT_MS, 30 s).
    await p.advance(60_000);
    assert.equal(p[to].kernel.installed.size, 1, `${p[to].name}: no orphan Child SA: ${[...p[to].kernel.installed.keys()].map((x) => x.toString(16)).join(', ')}`);
    healthy(p);
  });
}

// ───────────── Delete of SPIs that are not the peer's ─────────────

const spi4 = (n: number): Uint8Array => { const b = new Uint8Array(4); new DataView(b.buffer).setUint32(0, n); return b; };

for (const from of ROLES) {
  const to = other(from);
  test(`RFC 7296 §1.4.1, §3.11: a Delete of unknown SPIs, of our own inbound SPI and of the ESP SA's SPI as AH, at the ${roleOf(to)}: an empty answer, nothing deleted`, async () => {
    // Why: a Delete names the SPIs its sender receives on; anything else must not take down a Child SA.
    const p = new Pair();
    await p.connect();
    const theirInbound = [...p[from].kernel.installed.keys()][0]!; const ourInbound = [...p[to].kernel.installed.keys()][0]!;
    // An idle IKE SA sends a liveness check after dpd.intervalMs: that request carries the Deletes.
    const req = await intercept(p, request(p, p[from], ExchangeType.INFORMATIONAL), () => p.advance(30_000));
    const mark = p.net.log.length;
    await inject(p, req, reseal(p[from], req.datagram, () => [
      { kind: 'delete', protocolId: ProtocolId.ESP, spis: [spi4(0xdeadbeef), spi4(ourInbound)] },
      { kind: 'delete', protocolId: ProtocolId.AH, spis: [spi4(theirInbound)] },
    ]));
    assert.deepEqual(answerOf(p, p[to], mark, ExchangeType.INFORMATIONAL).payloads, [], 'an empty INFORMATIONAL response');
    assert.deepEqual([p.alice.kernel.ops('delete'), p.bob.kernel.ops('delete')], [[], []], 'no Child SA deleted');
    p[from].engine.rekey(peerOf(from));
    await p.net.pump();
    await p.advance(5_000);
    assert.deepEqual([count(p.alice, 'child-rekeyed'), count(p.bob, 'child-rekeyed')], [1, 1]);
    healthy(p);
  });
}

// ───────────── collisions ─────────────

for (const narrow of ROLES) {
  const wide = other(narrow);
  test(`RFC 7296 §2.8.1, §1.3.3: INVALID_KE_PAYLOAD answering the ${roleOf(wide)}'s half of a Child rekey collision: the ${roleOf(narrow)}'s rekey stands, no retry, one pair`, async () => {
    // Why: the collision already has a winner; retrying with the group asked for would make a third SA.
    const esp = (side: Who): string[] => [side === narrow ? 'aes256gcm16-ecp256' : 'aes256gcm16-x25519-ecp256'];
    const p = new Pair({ aliceChildren: [child({ espProposals: esp('alice') })], bobChildren: [child({ espProposals: esp('bob') }, 'bob')] });
    await p.connect();
    const mark = p.net.log.length;
    /* both: CREATE_CHILD_SA { N(REKEY_SA), SA, Ni, KEi } --> ; narrow <-- { N(INVALID_KE_PAYLOAD(ecp256)) } to wide's x25519 offer */
    p.alice.engine.rekey('to-bob'); p.bob.engine.rekey('to-alice');
    await p.net.pump();
    const refusal = answerOf(p, p[narrow], mark, ExchangeType.CREATE_CHILD_SA);
    assert.deepEqual(notifies(refusal.payloads), [[NotifyError.INVALID_KE_PAYLOAD, [0, DhId.ECP_256]]]);
    await p.advance(5_000);
    assert.equal(p.net.log.slice(mark).filter((x) => x.exchange === ExchangeType.CREATE_CHILD_SA && !x.response).length, 2, 'no retry');
    assert.deepEqual([errorCodes(p.alice), errorCodes(p.bob)], [[], []]);
    assert.deepEqual([count(p.alice, 'child-rekeyed'), count(p.bob, 'child-rekeyed')], [1, 1]);
    assert.equal(ike(p.alice)?.children[0]?.suite, 'aes256gcm16-ecp256');
    healthy(p);
  });
}

for (const narrow of ROLES) {
  const wide = other(narrow);
  test(`RFC 7296 §2.8.1, §1.3.2: crossing IKE rekeys both answered INVALID_KE_PAYLOAD after the ${roleOf(narrow)} dropped x25519: each retries once with ECP-256, the collision leaves one IKE SA`, async () => {
    const p = new Pair({ ike: ['aes256gcm16-prfsha256-x25519-ecp256'] });
    await p.connect();
    // From its next rekey on, `narrow` takes ECP-256 only; both rekeys still start from the SA's x25519.
    p[narrow].engine.addPeer({ ...p[narrow].config, ike: { ...p[narrow].config.ike, proposals: ['aes256gcm16-prfsha256-ecp256'] } });
    const mark = p.net.log.length;
    // Each answer read as it leaves, while its IKE SA's keys are still in the checkpoint store.
    const refusals: unknown[] = [];
    p.net.onSend = (x) => {
      if (x.exchange !== ExchangeType.CREATE_CHILD_SA || !x.response) return;
      const m = openFrom(x.from.address === addressOf(p, p.alice) ? p.alice : p.bob, x.datagram);
      if (m.errorNotifies().length > 0) refusals.push([x.from.address, notifies(m.payloads)]);
    };
    p.alice.engine.rekey('to-bob', { ike: true }); p.bob.engine.rekey('to-alice', { ike: true });
    await p.net.pump();
    await p.advance(60_000);
    const invalidKe = [[NotifyError.INVALID_KE_PAYLOAD, [0, DhId.ECP_256]]];
    assert.deepEqual(refusals, [[addressOf(p, p.bob), invalidKe], [addressOf(p, p.alice), invalidKe]], 'both first requests refused, nothing else');
    const requests = p.net.log.slice(mark).filter((x) => x.exchange === ExchangeType.CREATE_CHILD_SA && !x.response);
    assert.deepEqual([requests.filter((x) => x.from.address === addressOf(p, p[narrow])).length, requests.filter((x) => x.from.address === addressOf(p, p[wide])).length], [2, 2], 'one retry each');
    assert.deepEqual([errorCodes(p.alice), errorCodes(p.bob)], [[], []]);
    assert.equal(ike(p.alice)?.suite, 'aes256gcm16-prfsha256-ecp256');
    healthy(p);
  });
}

for (const ikeSide of ROLES) {
  const childSide = other(ikeSide);
  test(`RFC 7296 §2.25: an IKE rekey crossing a Child rekey gets TEMPORARY_FAILURE from the ${roleOf(childSide)}, is retried after the delay and goes through`, async () => {
    const p = new Pair();
    await p.connect();
    const mark = p.net.log.length;
    /* childSide: CREATE_CHILD_SA { N(REKEY_SA), SA, Ni, TSi, TSr } -->  <-- ikeSide: CREATE_CHILD_SA { SA(IKE), Ni, KEi } */
    p[childSide].engine.rekey(peerOf(childSide)); p[ikeSide].engine.rekey(peerOf(ikeSide), { ike: true });
    await p.net.pump();
    const answers = sentSince(p, p[childSide], mark).filter((x) => x.response && x.exchange === ExchangeType.CREATE_CHILD_SA).map((x) => openFrom(p[childSide], x.datagram));
    assert.deepEqual(answers.map((m) => notifies(m.payloads)), [[[NotifyError.TEMPORARY_FAILURE, []]]]);
    assert.deepEqual([count(p.alice, 'child-rekeyed'), count(p.bob, 'child-rekeyed')], [1, 1], 'the Child rekey went through');
    assert.deepEqual([count(p.alice, 'ike-rekeyed'), count(p.bob, 'ike-rekeyed')], [0, 0]);
    await p.advance(REKEY_RETRY_MS + 5_000);
    assert.deepEqual([count(p.alice, 'ike-rekeyed'), count(p.bob, 'ike-rekeyed')], [1, 1], 'the IKE rekey, retried, went through');
    assert.deepEqual([errorCodes(p.alice), errorCodes(p.bob)], [[], []], 'TEMPORARY_FAILURE is not an error');
    assert.equal(ike(p[ikeSide])?.role, 'initiator', 'the rekey initiator is the new SA\'s original initiator');
    healthy(p);
  });
}
