// Network input never throws out of engine.receive (DESIGN.md §9): recorded messages of a real
// handshake, mutated (bit flips, truncation, splices, header field changes) and replayed at both
// engines in every state, only ever yield counted drops or notifies; the SAs keep working.
// Then the hardening cases of issue 14: forged headers and datagrams that must get nothing (no
// half-open SA, no cached response resent), requests on an unauthenticated SA, and peers that
// answer a CREATE_CHILD_SA with INVALID_KE_PAYLOAD (retried once with their group, then a clear error).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SeededRandom } from '../../../../src/common/time.js';
import { DhId, ExchangeType, NotifyError, PayloadType, ProtocolId } from '../../../../src/ike/constants.js';
import { encodeEncryptedMessage } from '../../../../src/ike/codec/envelope.js';
import type { IkeHeader } from '../../../../src/ike/codec/header.js';
import { decodeMessage, encodeMessage } from '../../../../src/ike/codec/message.js';
import type { IkePayload } from '../../../../src/ike/codec/payload.js';
import { createKeyShare } from '../../../../src/ike/crypto/dh.js';
import { deriveIkeSaKeys } from '../../../../src/ike/crypto/keys.js';
import { createSkPair } from '../../../../src/ike/crypto/sk.js';
import { spiBytes } from '../../../../src/ike/sa/ike-sa.js';
import { keRetry } from '../../../../src/ike/exchanges/invalid-ke.js';
import type { Endpoint, IkeEvent } from '../../../../src/ike/ports.js';
import { fromSaProposal, ikeSuiteOf, toSaProposals } from '../../../../src/ike/policy/convert.js';
import { parseProposals } from '../../../../src/ike/policy/proposal.js';
import { checkProposalReply } from '../../../../src/ike/policy/select.js';
import { ALICE, BOB, child, mirrored, Pair, type Packet, type Side } from './harness.js';

function mutate(r: SeededRandom, d: Uint8Array): Uint8Array {
  const b = r.bytes(4);
  const kind = b[0]! % 5;
  const at = ((b[1]! << 8) | b[2]!) % Math.max(1, d.length);
  const out = new Uint8Array(d);
  switch (kind) {
    case 0: out[at] = out[at]! ^ (1 << (b[3]! % 8)); return out;
    case 1: return out.subarray(0, at);
    case 2: { const v = new DataView(out.buffer); if (out.length >= 28) v.setUint32(20, b[3]!); return out; } // message ID
    case 3: if (out.length > 19) { out[19] = b[3]!; } return out; // flags
    default: { const extra = r.bytes(b[3]! % 64); const o = new Uint8Array(out.length + extra.length); o.set(out); o.set(extra, out.length); return o; }
  }
}

test('5,000 mutated datagrams at both engines: no exception escapes, drops are counted, the SAs keep working', async () => {
  const p = new Pair();
  await p.connect();
  const recorded = [...p.net.log];
  const r = new SeededRandom(2026);
  let rejected = 0;
  for (let i = 0; i < 5_000; i++) {
    const src = recorded[i % recorded.length]!;
    const target = i % 2 === 0 ? p.bob.engine : p.alice.engine;
    try { await target.receive(mutate(r, src.datagram), src.from, src.to); } catch { rejected++; }
    p.net.queue.length = 0; // answers to garbage go nowhere
  }
  assert.equal(rejected, 0);
  const drops = { ...p.alice.engine.status().drops };
  for (const [k, v] of Object.entries(p.bob.engine.status().drops)) drops[k] = (drops[k] ?? 0) + v;
  const total = Object.values(drops).reduce((a, b) => a + b, 0);
  assert.ok(total >= 4_000, `most inputs are counted as drops (${total})`);
  assert.equal(drops['internal-error'] ?? 0, 0, JSON.stringify(drops));
  // Still alive: a liveness check round trip and a child rekey work.
  await p.advance(3_600_000 + 10_000);
  assert.equal(p.alice.engine.status().peers[0]?.ike?.state, 'established');
  assert.ok(p.net.log.some((x) => x.exchange === ExchangeType.CREATE_CHILD_SA), 'p.net.log.some((x) => x.exchange === ExchangeType.CREATE_CHILD_SA)');
  assert.ok(mirrored(p.alice.kernel, p.bob.kernel), 'mirrored(p.alice.kernel, p.bob.kernel)');
});

test('an IKE_SA_INIT with an unknown critical payload is answered with UNSUPPORTED_CRITICAL_PAYLOAD naming its type, statelessly (RFC 7296 §2.5)', async () => {
  const p = new Pair();
  p.net.fate = () => 'drop';
  p.alice.engine.initiate('to-bob');
  await p.net.pump();
  const req = p.net.log[0]!;
  // Walk the chain to the last payload, point it at type 200 and append an empty critical payload.
  const d = req.datagram;
  const v = new DataView(d.buffer, d.byteOffset, d.byteLength);
  let at = 28;
  while (v.getUint8(at) !== 0) at += v.getUint16(at + 2);
  const forged = new Uint8Array(d.length + 4);
  forged.set(d);
  forged[at] = 200;
  forged.set([0, 0x80, 0, 4], d.length);
  new DataView(forged.buffer).setUint32(24, forged.length);
  p.net.fate = () => 'deliver';
  await p.bob.engine.receive(forged, req.from, req.to);
  const reply = p.net.queue.at(-1);
  assert.ok(reply !== undefined, 'bob answered');
  const m = decodeMessage(reply.datagram);
  const n = m.notify(NotifyError.UNSUPPORTED_CRITICAL_PAYLOAD);
  assert.deepEqual(n ? [...n.data] : [], [200]);
  assert.equal(m.header.responderSpi, 0n);
  assert.equal(p.bob.engine.status().halfOpen, 0);
});

// ───────────── IKE_SA_INIT header checks (issue 14 #3) ─────────────

function withHeader(d: Uint8Array, at: { spiI?: bigint; spiR?: bigint; messageId?: number }): Uint8Array {
  const out = new Uint8Array(d);
  const v = new DataView(out.buffer);
  if (at.spiI !== undefined) v.setBigUint64(0, at.spiI);
  if (at.spiR !== undefined) v.setBigUint64(8, at.spiR);
  if (at.messageId !== undefined) v.setUint32(20, at.messageId);
  return out;
}

test('IKE_SA_INIT requests with SPIi 0, a non-zero SPIr or a non-zero message ID are dropped unanswered, no half-open SA (RFC 7296 §2.6, §3.1)', async () => {
  // Why: such a request is not a first message; answering it creates state (and traffic) for garbage.
  const p = new Pair();
  p.net.fate = () => 'drop';
  p.alice.engine.initiate('to-bob');
  await p.net.pump();
  const req = p.net.log[0]!;
  p.net.queue.length = 0;
  const forged = [withHeader(req.datagram, { spiI: 0n }), withHeader(req.datagram, { spiR: 0x0102030405060708n }), withHeader(req.datagram, { messageId: 1 })];
  for (const d of forged) await p.bob.engine.receive(d, req.from, req.to);
  assert.equal(p.net.queue.length, 0, `no answer to a malformed IKE_SA_INIT header (${p.net.queue.length} sent)`);
  assert.equal(p.bob.engine.status().halfOpen, 0);
  assert.equal(p.bob.engine.status().drops['bad-init-header'], 3, JSON.stringify(p.bob.engine.status().drops));
  await p.bob.engine.receive(req.datagram, req.from, req.to);
  assert.equal(p.net.queue.length, 1, 'the genuine request is answered');
  assert.equal(p.bob.engine.status().halfOpen, 1);
});

/**
 * A bare initiator built from the codec and crypto modules, no engine: IKE_SA_INIT with bob from
 * alice's address, then `seal` protects any request on that half-open (unauthenticated) IKE SA.
 */
async function bareInitiator(p: Pair): Promise<{ readonly from: Endpoint; readonly to: Endpoint; seal(exchangeType: number, messageId: number, inner: readonly IkePayload[]): Uint8Array }> {
  const from = { address: ALICE, port: 500 }; const to = { address: BOB, port: 500 };
  const proposals = parseProposals(['aes256gcm16-prfsha256-x25519'], 'ike');
  const random = new SeededRandom(77);
  const share = createKeyShare(DhId.CURVE25519, { random });
  const ni = random.bytes(32);
  const spiI = 0x1122334455667788n;
  const header = (exchangeType: number, spiR: bigint, messageId: number): IkeHeader => ({ initiatorSpi: spiI, responderSpi: spiR, exchangeType, initiator: true, response: false, higherVersion: false, minorVersion: 0, messageId });
  const init = encodeMessage(header(ExchangeType.IKE_SA_INIT, 0n, 0), [
    { kind: 'sa', proposals: toSaProposals(proposals) }, { kind: 'ke', group: DhId.CURVE25519, data: share.publicValue }, { kind: 'nonce', data: ni },
  ]);
  await p.bob.engine.receive(init, from, to);
  const answer = p.net.queue.shift();
  assert.ok(answer !== undefined, 'bob answered IKE_SA_INIT');
  const m = decodeMessage(answer.datagram);
  const sa = m.first('sa'); const ke = m.first('ke'); const nr = m.first('nonce');
  assert.ok(sa && ke && nr, 'a full IKE_SA_INIT response');
  const check = checkProposalReply(proposals, sa.proposals.map(fromSaProposal));
  assert.ok(check.ok, 'bob chose our proposal');
  const spiR = m.header.responderSpi;
  const suite = ikeSuiteOf(check.proposal);
  const raw = deriveIkeSaKeys({ suite, sharedSecret: share.computeSharedSecret(ke.data), ni, nr: nr.data, spiI: spiBytes(spiI), spiR: spiBytes(spiR) });
  const out = createSkPair(suite, raw, 'initiator', random).outbound;
  return { from, to, seal: (t, id, inner) => encodeEncryptedMessage(header(t, spiR, id), inner, out) };
}

test('an INFORMATIONAL on a half-open IKE SA is dropped: no answer, no Delete acted on, before IKE_AUTH (RFC 7296 §1.4)', async () => {
  // Why: IKE_SA_INIT keys authenticate nobody; whoever ran it must not delete or probe the SA.
  const p = new Pair();
  const ini = await bareInitiator(p);
  assert.equal(p.bob.engine.status().halfOpen, 1);
  const deleteIke: IkePayload = { kind: 'delete', protocolId: ProtocolId.IKE, spis: [] };
  await p.bob.engine.receive(ini.seal(ExchangeType.INFORMATIONAL, 1, [deleteIke]), ini.from, ini.to);
  await p.bob.engine.receive(ini.seal(ExchangeType.INFORMATIONAL, 1, []), ini.from, ini.to);
  assert.equal(p.net.queue.length, 0, `no answer on a half-open SA (${p.net.queue.length} sent)`);
  assert.equal(p.bob.engine.status().halfOpen, 1, 'the half-open SA is still there');
  assert.equal(p.bob.engine.status().drops['unauthenticated-informational'], 2, JSON.stringify(p.bob.engine.status().drops));
});

// ───────────── the response cache (issue 14 #7) ─────────────

test('a forged request with the message ID of a cached response gets nothing; the genuine retransmission gets the cached response (RFC 7296 §2.1)', async () => {
  // Why: the header (SPIs, message ID) is visible on the wire; resending on it alone lets anyone
  // make the responder send its (larger) cached response anywhere, as often as they like.
  const p = new Pair();
  await p.connect();
  const req = p.net.log.find((x) => x.exchange === ExchangeType.IKE_AUTH && !x.response)!;
  const resp = p.net.log.find((x) => x.exchange === ExchangeType.IKE_AUTH && x.response)!;
  const flipped = new Uint8Array(req.datagram); flipped[flipped.length - 1]! ^= 1;
  const garbage = new Uint8Array(req.datagram); garbage.set(new SeededRandom(5).bytes(garbage.length - 32), 32);
  const before = p.bob.engine.status().drops['integrity'] ?? 0;
  for (const d of [flipped, garbage]) await p.bob.engine.receive(d, req.from, req.to);
  assert.equal(p.net.queue.length, 0, `forged copies get no response (${p.net.queue.length} sent)`);
  assert.equal((p.bob.engine.status().drops['integrity'] ?? 0) - before, 2, JSON.stringify(p.bob.engine.status().drops));
  await p.bob.engine.receive(req.datagram, req.from, req.to);
  assert.equal(p.net.queue.length, 1, 'the retransmitted request gets the cached response');
  assert.deepEqual(p.net.queue[0]!.datagram, resp.datagram);
});

test('a genuine request replayed many times, from any source address, gets the cached response at most once a second (RFC 7296 §2.1: bounded reflection)', async () => {
  // A captured IKE_AUTH request verifies however often it is replayed; each copy from a forged
  // source would make the responder send its larger response there.
  const p = new Pair();
  await p.connect();
  const req = p.net.log.find((x) => x.exchange === ExchangeType.IKE_AUTH && !x.response)!;
  const victim = { address: '203.0.113.99', port: 500 };
  for (let i = 0; i < 50; i++) await p.bob.engine.receive(req.datagram, victim, req.to);
  assert.equal(p.net.queue.length, 1, `${p.net.queue.length} responses for 50 replays within one second`);
  assert.equal(p.bob.engine.status().drops['resend-rate'], 49);
  p.net.queue = [];
  p.clock.advance(1_000);
  await p.bob.engine.receive(req.datagram, req.from, req.to);
  assert.equal(p.net.queue.length, 1, 'a second later the retransmission is answered again');
});

const fragmentNumber = (x: Packet): number => new DataView(x.datagram.buffer, x.datagram.byteOffset).getUint16(32);

test('a retransmitted fragmented request gets every cached response fragment on fragment 1 only; a forged fragment 1 gets nothing (RFC 7383 §2.6.1)', async () => {
  const p = new Pair({ auth: 'cert', alice: { fragmentMtu: 576 }, bob: { fragmentMtu: 576 } });
  await p.connect();
  const auth = p.net.log.filter((x) => x.exchange === ExchangeType.IKE_AUTH);
  const req = auth.filter((x) => !x.response); const resp = auth.filter((x) => x.response);
  assert.ok(req.length >= 2 && req.every((x) => x.firstPayload === PayloadType.SKF), `request in ${req.length} fragments`);
  const first = req.find((x) => fragmentNumber(x) === 1)!; const second = req.find((x) => fragmentNumber(x) === 2)!;
  const forged = new Uint8Array(first.datagram); forged[forged.length - 1]! ^= 1;
  await p.bob.engine.receive(forged, first.from, first.to);
  await p.bob.engine.receive(second.datagram, second.from, second.to);
  assert.equal(p.net.queue.length, 0, `a forged fragment 1 and a genuine fragment 2 get nothing (${p.net.queue.length} sent)`);
  await p.bob.engine.receive(first.datagram, first.from, first.to);
  assert.deepEqual(p.net.queue.map((x) => x.datagram), resp.map((x) => x.datagram));
});

// ───────────── INVALID_KE_PAYLOAD in CREATE_CHILD_SA (issue 14 #1) ─────────────

const ccsa = (p: Pair, from: string): Packet[] => p.net.log.filter((x) => x.exchange === ExchangeType.CREATE_CHILD_SA && !x.response && x.from.address === from);
const errors = (s: Side): Extract<IkeEvent, { type: 'error' }>[] => s.events.filter((e): e is Extract<IkeEvent, { type: 'error' }> => e.type === 'error');
const ikeOnly = (s: Side, proposals: string[]): void => s.engine.addPeer({ ...s.config, ike: { ...s.config.ike, proposals } });

test('an IKE SA rekey answered with INVALID_KE_PAYLOAD is retried once with the group the peer asked for (RFC 7296 §1.3.2, §2.7)', async () => {
  const p = new Pair({ ike: ['aes256gcm16-prfsha256-x25519-ecp256'] });
  await p.connect();
  assert.equal(p.alice.engine.status().peers[0]?.ike?.suite, 'aes256gcm16-prfsha256-x25519');
  ikeOnly(p.bob, ['aes256gcm16-prfsha256-ecp256']); // bob's new config: only ECP-256 from the next rekey on
  /* CREATE_CHILD_SA { SA, Ni, KEi(x25519) } --> <-- { N(INVALID_KE_PAYLOAD(ecp256)) }; { SA, Ni, KEi(ecp256) } --> <-- { SA, Nr, KEr } */
  p.alice.engine.rekey('to-bob', { ike: true });
  await p.net.pump();
  assert.equal(ccsa(p, ALICE).length, 2, 'the request, then one retry');
  const rekeyed = p.alice.events.find((e) => e.type === 'ike-rekeyed');
  assert.equal(rekeyed?.type === 'ike-rekeyed' ? rekeyed.suite : '', 'aes256gcm16-prfsha256-ecp256');
  assert.deepEqual(errors(p.alice), []);
  await p.advance(60_000);
  assert.equal(ccsa(p, ALICE).length, 2, 'nothing more');
  assert.ok(mirrored(p.alice.kernel, p.bob.kernel), 'mirrored(p.alice.kernel, p.bob.kernel)');
});

/**
 * Alice rekeys her IKE SA offering x25519 first; bob takes only ECP-256, so alice retries with it,
 * and that retry is held on the wire (the test decides what bob answers it with).
 */
async function rekeyWithHeldRetry(): Promise<Pair> {
  const p = new Pair({ ike: ['aes256gcm16-prfsha256-x25519-ecp256-ecp384'] });
  await p.connect();
  ikeOnly(p.bob, ['aes256gcm16-prfsha256-ecp256']);
  p.net.fate = (x) => (x.exchange === ExchangeType.CREATE_CHILD_SA && !x.response && ccsa(p, ALICE).length === 2 ? 'hold' : 'deliver');
  p.alice.engine.rekey('to-bob', { ike: true });
  await p.net.pump();
  return p;
}

test('a peer asking for yet another group after our retry gets no third try: one ERR_IKE_INVALID_KE, the next attempt only after the rekey retry delay (RFC 7296 §1.3.2)', async () => {
  // Alice's retry is held until bob's config moves on to ECP-384: its answer is INVALID_KE_PAYLOAD again.
  const p = await rekeyWithHeldRetry();
  ikeOnly(p.bob, ['aes256gcm16-prfsha256-ecp384']);
  p.net.fate = () => 'deliver';
  p.net.releaseHeld();
  await p.net.pump();
  assert.equal(ccsa(p, ALICE).length, 2);
  const errs = errors(p.alice);
  assert.deepEqual(errs.map((e) => [e.error.code, e.error.notify, e.error.exchange]), [['ERR_IKE_INVALID_KE', 'INVALID_KE_PAYLOAD', 'CREATE_CHILD_SA']]);
  assert.match(errs[0]!.error.message, /ecp384/);
  await p.advance(9_000);
  assert.equal(ccsa(p, ALICE).length, 2, 'no request inside the retry delay');
  await p.advance(2_000);
  // A fresh attempt starts from the SA's group again and follows the peer's answer once.
  assert.equal(ccsa(p, ALICE).length, 4);
  const rekeyed = p.alice.events.find((e) => e.type === 'ike-rekeyed');
  assert.equal(rekeyed?.type === 'ike-rekeyed' ? rekeyed.suite : '', 'aes256gcm16-prfsha256-ecp384');
});

test('a restarted initiator resumes a retried IKE SA rekey as retried: INVALID_KE_PAYLOAD again gets no third try (RFC 7296 §1.3.2)', async () => {
  // Why: the checkpoint keeps the group a pending or outstanding rekey retries with; without it the
  // resumed request would count as a first attempt and be retried again.
  const p = await rekeyWithHeldRetry();
  const results = await p.restart('alice');
  assert.deepEqual(results.map((r) => r.outcome), ['resumed']);
  ikeOnly(p.bob, ['aes256gcm16-prfsha256-ecp384']);
  p.net.fate = () => 'deliver';
  p.net.releaseHeld();
  await p.net.pump();
  // The resumed engine resends its outstanding request (same message ID): two requests, no third.
  assert.deepEqual([...new Set(ccsa(p, ALICE).map((x) => x.messageId))].length, 2);
  assert.deepEqual(errors(p.alice).map((e) => e.error.code), ['ERR_IKE_INVALID_KE']);
});

const pfsChild = (side: 'alice' | 'bob', espProposals: string[]) =>
  child({ name: 'pfs', localTs: [side === 'alice' ? '10.1.1.0/24' : '10.2.1.0/24'], remoteTs: [side === 'alice' ? '10.2.1.0/24' : '10.1.1.0/24'], espProposals }, side);

test('a new Child SA answered with INVALID_KE_PAYLOAD is retried once with the group the peer asked for (RFC 7296 §1.3.1, §2.7)', async () => {
  const p = new Pair({ aliceChildren: [child(), pfsChild('alice', ['aes256gcm16-x25519-ecp256'])], bobChildren: [child({}, 'bob'), pfsChild('bob', ['aes256gcm16-ecp256'])] });
  await p.connect();
  assert.equal(ccsa(p, ALICE).length, 2, 'the request, then one retry');
  const up = p.alice.events.find((e) => e.type === 'child-up' && e.child === 'pfs');
  assert.equal(up?.type === 'child-up' ? up.suite : '', 'aes256gcm16-ecp256');
  assert.deepEqual(errors(p.alice), []);
});

test('a new Child SA whose retry is answered with INVALID_KE_PAYLOAD again fails with ERR_IKE_INVALID_KE, no third try (RFC 7296 §1.3.1)', async () => {
  const p = new Pair({ aliceChildren: [child(), pfsChild('alice', ['aes256gcm16-x25519-ecp256-ecp384'])], bobChildren: [child({}, 'bob'), pfsChild('bob', ['aes256gcm16-ecp256'])] });
  p.net.fate = (x) => (x.exchange === ExchangeType.CREATE_CHILD_SA && !x.response && ccsa(p, ALICE).length === 2 ? 'hold' : 'deliver');
  await p.connect();
  p.bob.engine.addPeer({ ...p.bob.config, children: [child({}, 'bob'), pfsChild('bob', ['aes256gcm16-ecp384'])] });
  p.net.fate = () => 'deliver';
  p.net.releaseHeld();
  await p.net.pump();
  await p.advance(60_000);
  assert.equal(ccsa(p, ALICE).length, 2);
  assert.deepEqual(errors(p.alice).map((e) => [e.error.code, e.error.notify]), [['ERR_IKE_INVALID_KE', 'INVALID_KE_PAYLOAD']]);
  assert.match(errors(p.alice)[0]!.error.message, /pfs/);
});

test('INVALID_KE_PAYLOAD naming a group we do not propose, or the one we sent, fails at once, the message naming the group (RFC 7296 §1.3, §2.7)', () => {
  // Why: a real responder picks from our proposals, so only a broken or hostile one asks for these;
  // the pair cannot produce them, the decision is checked here.
  const proposals = parseProposals(['aes256gcm16-x25519-ecp256'], 'esp');
  const ask = (sent: number | null, retried: boolean, wanted: number) => keRetry({ proposals, sent, retried, wanted, what: 'Child SA net' });
  assert.deepEqual(ask(DhId.CURVE25519, false, DhId.ECP_256), { kind: 'retry', group: DhId.ECP_256 });
  const cases: [number | null, boolean, number, RegExp][] = [
    [DhId.CURVE25519, false, DhId.ECP_384, /ecp384 for Child SA net, which our proposals do not offer/],
    [DhId.CURVE25519, false, DhId.CURVE25519, /x25519 for Child SA net, the group we sent/],
    [DhId.ECP_256, true, DhId.CURVE25519, /x25519 for Child SA net, after we already retried with ecp256/],
    [null, false, DhId.ECP_384, /which our proposals do not offer/],
  ];
  for (const [sent, retried, wanted, message] of cases) {
    const r = ask(sent, retried, wanted);
    assert.equal(r.kind, 'failed', `${sent} → ${wanted}`);
    if (r.kind === 'failed') {
      assert.deepEqual([r.failure.code, r.failure.notify, r.failure.origin, r.failure.exchange], ['ERR_IKE_INVALID_KE', 'INVALID_KE_PAYLOAD', 'remote', 'CREATE_CHILD_SA']);
      assert.match(r.failure.message, message);
    }
  }
});
