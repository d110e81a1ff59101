// Engine-wide limits of issue 14 (hardening): datagram size at intake (strongSwan charon.max_packet),
// RFC 7383 reassembly bounded in bytes across all IKE SAs and in time, and half-open IKE SAs per
// source address (RFC 8019 §4.6, strongSwan charon.block_threshold). Hostile initiators are built
// from the codec and crypto modules (no engine), like hostile.test.ts; bob is the engine under test.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SeededRandom } from '../../../../src/common/time.js';
import { DhId, ExchangeType, NotifyStatus } from '../../../../src/ike/constants.js';
import { encodeEncryptedFragments } from '../../../../src/ike/codec/envelope.js';
import type { IkeHeader } from '../../../../src/ike/codec/header.js';
import { decodeMessage, encodeMessage } from '../../../../src/ike/codec/message.js';
import type { IkePayload } from '../../../../src/ike/codec/payload.js';
import { notify } from '../../../../src/ike/codec/payloads/notify.js';
import { createKeyShare } from '../../../../src/ike/crypto/dh.js';
import { deriveIkeSaKeys } from '../../../../src/ike/crypto/keys.js';
import { createSkPair } from '../../../../src/ike/crypto/sk.js';
import { spiBytes } from '../../../../src/ike/sa/ike-sa.js';
import type { Endpoint } from '../../../../src/ike/ports.js';
import { fromSaProposal, ikeSuiteOf, toSaProposals } from '../../../../src/ike/policy/convert.js';
import { parseProposals } from '../../../../src/ike/policy/proposal.js';
import { checkProposalReply } from '../../../../src/ike/policy/select.js';
import { identityFromString } from '../../../../src/ike/sa/identity.js';
import { ALICE, BOB, Pair } from './harness.js';

const PROPOSALS = parseProposals(['aes256gcm16-prfsha256-x25519'], 'ike');
const TO: Endpoint = { address: BOB, port: 500 };
/** Bob answers IKE_SA_INIT from any address (the per-address tests need more than alice's). */
const ANY_REMOTE = { remote: { address: '%any', id: identityFromString('alice.example') } };

/** IKE_SA_INIT request of a bare initiator; `vendorBytes` pads it with a Vendor ID payload. */
function initRequest(spiI: bigint, seed: number, o: { cookie?: Uint8Array; vendorBytes?: number } = {}): { datagram: Uint8Array; ni: Uint8Array; share: ReturnType<typeof createKeyShare> } {
  const random = new SeededRandom(seed);
  const share = createKeyShare(DhId.CURVE25519, { random });
  const ni = random.bytes(32);
  const payloads: IkePayload[] = [
    ...(o.cookie ? [notify(NotifyStatus.COOKIE, o.cookie)] : []),
    { kind: 'sa', proposals: toSaProposals(PROPOSALS) }, { kind: 'ke', group: DhId.CURVE25519, data: share.publicValue }, { kind: 'nonce', data: ni },
    notify(NotifyStatus.IKEV2_FRAGMENTATION_SUPPORTED),
    ...(o.vendorBytes ? [{ kind: 'vendor' as const, data: new Uint8Array(o.vendorBytes).fill(0x5a) }] : []),
  ];
  return { datagram: encodeMessage(header(spiI, 0n, ExchangeType.IKE_SA_INIT, 0), payloads), ni, share };
}

function header(spiI: bigint, spiR: bigint, exchangeType: number, messageId: number): IkeHeader {
  return { initiatorSpi: spiI, responderSpi: spiR, exchangeType, initiator: true, response: false, higherVersion: false, minorVersion: 0, messageId };
}

/**
 * A half-open IKE SA with bob from `from`, opened by a bare initiator (answering a COOKIE demand
 * if bob makes one); `fragments` then protects an IKE_AUTH request as SKF fragments of `pieceBytes`.
 */
async function halfOpen(p: Pair, from: Endpoint, spiI: bigint): Promise<{ fragments(messageId: number, innerBytes: number, pieceBytes: number): Uint8Array[] } | null> {
  let req = initRequest(spiI, Number(spiI & 0xffffn));
  p.net.queue.length = 0;
  await p.bob.engine.receive(req.datagram, from, TO);
  let answer = p.net.queue.shift();
  const cookie = answer ? decodeMessage(answer.datagram).notify(NotifyStatus.COOKIE) : undefined;
  if (cookie) {
    req = initRequest(spiI, Number(spiI & 0xffffn), { cookie: cookie.data });
    await p.bob.engine.receive(req.datagram, from, TO);
    answer = p.net.queue.shift();
  }
  if (answer === undefined) return null;
  const m = decodeMessage(answer.datagram);
  const sa = m.first('sa'); const ke = m.first('ke'); const nr = m.first('nonce');
  assert.ok(sa && ke && nr, 'a full IKE_SA_INIT response');
  const check = checkProposalReply(PROPOSALS, sa.proposals.map(fromSaProposal));
  assert.ok(check.ok, 'bob chose our proposal');
  const spiR = m.header.responderSpi;
  const suite = ikeSuiteOf(check.proposal);
  const raw = deriveIkeSaKeys({ suite, sharedSecret: req.share.computeSharedSecret(ke.data), ni: req.ni, nr: nr.data, spiI: spiBytes(spiI), spiR: spiBytes(spiR) });
  const out = createSkPair(suite, raw, 'initiator', new SeededRandom(5)).outbound;
  return {
    fragments: (messageId, innerBytes, pieceBytes) => encodeEncryptedFragments(header(spiI, spiR, ExchangeType.IKE_AUTH, messageId), [{ kind: 'vendor', data: new Uint8Array(innerBytes).fill(7) }], out, pieceBytes),
  };
}

const drops = (p: Pair): Record<string, number> => p.bob.engine.status().drops;

// ───────────── datagram size (issue 14 #5) ─────────────

test('strongSwan charon.max_packet: a well-formed IKE_SA_INIT above 10,000 bytes is dropped at intake, unanswered, no half-open SA', async () => {
  // Why: every byte a peer sends costs decode time and memory; no legitimate IKE datagram is that large (RFC 7383 keeps them below the MTU).
  const p = new Pair();
  const from = { address: ALICE, port: 500 };
  const base = initRequest(0x1000n, 1).datagram.length;
  const atLimit = initRequest(0x1001n, 2, { vendorBytes: 10_000 - base - 4 }).datagram;
  const over = initRequest(0x1002n, 3, { vendorBytes: 10_000 - base - 3 }).datagram;
  assert.equal(atLimit.length, 10_000);
  await p.bob.engine.receive(over, from, TO);
  assert.equal(p.net.queue.length, 0, 'no answer to a 10,001-byte datagram');
  assert.equal(p.bob.engine.status().halfOpen, 0);
  assert.equal(drops(p)['datagram-too-large'], 1, JSON.stringify(drops(p)));
  await p.bob.engine.receive(atLimit, from, TO);
  assert.equal(p.net.queue.length, 1, 'a 10,000-byte IKE_SA_INIT is answered');
  assert.equal(p.bob.engine.status().halfOpen, 1);
});

test('maxDatagramBytes is an engine option: a lower cap drops what the default admits (strongSwan charon.max_packet)', async () => {
  const p = new Pair({ bobOptions: { maxDatagramBytes: 100 } });
  await p.bob.engine.receive(initRequest(0x2000n, 4).datagram, { address: ALICE, port: 500 }, TO);
  assert.equal(p.net.queue.length, 0);
  assert.equal(drops(p)['datagram-too-large'], 1, JSON.stringify(drops(p)));
});

// ───────────── reassembly across SAs and in time (issue 14 #5) ─────────────

test('RFC 7383 §2.6.1 bounded reassembly: bytes of partial messages are bounded across all IKE SAs, not only per SA', async () => {
  // Why: each half-open SA (keys from an anonymous IKE_SA_INIT) could otherwise hold MAX_INNER_BYTES of fragments.
  const p = new Pair({ bobOptions: { reassemblyBytesLimit: 3_500 } });
  const from = { address: ALICE, port: 500 };
  const a = await halfOpen(p, from, 0x3001n); const b = await halfOpen(p, from, 0x3002n);
  assert.ok(a && b, 'two half-open SAs');
  // Each message is 5 fragments of 1,000 plaintext bytes; only the first ones are sent.
  const fa = a.fragments(1, 4_996, 1_000); const fb = b.fragments(1, 4_996, 1_000);
  assert.equal(fa.length, 5);
  for (const d of fa.slice(0, 3)) await p.bob.engine.receive(d, from, TO);
  assert.equal(drops(p)['reassembly-engine-limit'], undefined, '3,000 bytes held: within the bound');
  await p.bob.engine.receive(fb[0]!, from, TO);
  assert.equal(drops(p)['reassembly-engine-limit'], 1, `the second SA's first fragment would pass 3,500 bytes: ${JSON.stringify(drops(p))}`);
});

test('RFC 7383 reassembly time limit: a partial message is discarded reassemblyTimeoutMs after its first fragment', async () => {
  // Why: without it, a peer that never sends the last fragment pins the buffer for the SA's life.
  const p = new Pair({ bobOptions: { halfOpenTimeoutMs: 600_000 } });
  const from = { address: ALICE, port: 500 };
  const a = await halfOpen(p, from, 0x4001n);
  assert.ok(a, 'a half-open SA');
  const frags = a.fragments(1, 2_996, 1_000);
  assert.equal(frags.length, 3);
  for (const d of frags.slice(0, 2)) await p.bob.engine.receive(d, from, TO);
  p.clock.advance(30_000);
  await p.bob.engine.receive(frags[2]!, from, TO);
  assert.equal(drops(p)['reassembly-timeout'], 1, JSON.stringify(drops(p)));
  assert.equal(p.net.queue.length, 0, 'the stale fragments were not joined with the late one: nothing answered');
  // The peer's retransmission of the other fragments completes the message as usual (answered, with an error: it is no real IKE_AUTH).
  for (const d of frags.slice(0, 2)) await p.bob.engine.receive(d, from, TO);
  assert.deepEqual(p.net.queue.map((x) => [x.exchange, x.response]), [[ExchangeType.IKE_AUTH, true]]);
});

// ───────────── half-open SAs per source address (issue 14 #6) ─────────────

test('RFC 8019 §4.6 / strongSwan block_threshold: one address holds at most 5 half-open IKE SAs; a 6th IKE_SA_INIT from it is dropped unanswered', async () => {
  const p = new Pair({ bob: ANY_REMOTE });
  const hostile = { address: '198.51.100.7', port: 500 };
  for (let i = 0; i < 5; i++) assert.ok(await halfOpen(p, hostile, 0x5000n + BigInt(i)), `half-open SA ${i + 1} admitted`);
  assert.equal(await halfOpen(p, hostile, 0x5005n), null, 'the 6th gets no answer');
  assert.equal(p.bob.engine.status().halfOpen, 5);
  assert.equal(drops(p)['half-open-per-address'], 1, JSON.stringify(drops(p)));
  // Another address is not affected.
  assert.ok(await halfOpen(p, { address: '198.51.100.8', port: 500 }, 0x5006n), 'another address gets through');
  assert.equal(p.bob.engine.status().halfOpen, 6);
});

test('RFC 8019 §4.6: an address that answers COOKIEs cannot take every half-open slot; alice still connects', async () => {
  // Why: cookies only prove return routability; an attacker at one real address passes them (issue 14 #6).
  const p = new Pair({ bob: ANY_REMOTE, bobOptions: { cookieThreshold: 0, halfOpenLimit: 6 } });
  const hostile = { address: '198.51.100.7', port: 500 };
  for (let i = 0; i < 7; i++) await halfOpen(p, hostile, 0x6000n + BigInt(i));
  assert.equal(p.bob.engine.status().halfOpen, 5, 'the cookie-answering address holds 5 of 6 slots');
  assert.equal(drops(p)['half-open-per-address'], 2, JSON.stringify(drops(p)));
  await p.connect();
  assert.equal(p.alice.engine.status().peers[0]?.ike?.state, 'established');
});

test('halfOpenPerAddress is an engine option; slots free again when a half-open SA times out (RFC 8019 §4.6)', async () => {
  const p = new Pair({ bob: ANY_REMOTE, bobOptions: { halfOpenPerAddress: 1, halfOpenTimeoutMs: 30_000 } });
  const hostile = { address: '198.51.100.7', port: 500 };
  assert.ok(await halfOpen(p, hostile, 0x7000n));
  assert.equal(await halfOpen(p, hostile, 0x7001n), null);
  await p.advance(30_000);
  assert.equal(p.bob.engine.status().halfOpen, 0);
  assert.ok(await halfOpen(p, hostile, 0x7002n), 'admitted again once the first timed out');
});

test('RFC 8019 §4.6: many addresses answering COOKIEs fill every half-open slot; a newcomer still gets in, taking the oldest slot of the address holding the most', async () => {
  // Why: with halfOpenLimit checked first, 200 cookie-answering addresses × 5 kept every new peer
  // out for as long as they refilled the slots every halfOpenTimeoutMs (e2e/netns/agent-flood.test.ts).
  const p = new Pair({ bob: ANY_REMOTE, bobOptions: { cookieThreshold: 0, halfOpenLimit: 6 } });
  const a = { address: '198.51.100.7', port: 500 }; const b = { address: '198.51.100.8', port: 500 };
  for (let i = 0; i < 4; i++) assert.ok(await halfOpen(p, a, 0x8000n + BigInt(i)));
  for (let i = 0; i < 2; i++) assert.ok(await halfOpen(p, b, 0x8100n + BigInt(i)));
  assert.equal(p.bob.engine.status().halfOpen, 6, 'every slot taken');
  // A slot is taken from the heaviest holder only while it holds at least two more than the asker.
  assert.ok(await halfOpen(p, b, 0x8102n), 'b (2) gets a slot from a (4)');
  assert.equal(await halfOpen(p, b, 0x8103n), null, 'b (3) is refused: a holds 3 too');
  assert.equal(drops(p)['half-open-limit'], 1, JSON.stringify(drops(p)));
  await p.connect();
  assert.equal(p.alice.engine.status().peers[0]?.ike?.state, 'established', 'alice, holding none, got a slot');
  assert.equal(drops(p)['half-open-evicted'], 2, JSON.stringify(drops(p)));
  await p.bob.engine.idle();
  assert.equal(p.bob.engine.status().halfOpen, 5, 'a holds 2, b 3; alice is established');
});
