// Hostile IKE fragments (RFC 7383) at engine level (issue 14, hardening), from both roles: the
// fragments arrive at the IKE SA's original initiator (alice) and at its original responder (bob).
// forge.ts re-encodes a genuine request or response as SKF fragments with the SA's real keys and
// the same message ID, so what the engine does with duplicated, forged, unsolicited or
// re-fragmented pieces is checked against one real exchange that must still complete once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ExchangeType } from '../../../../src/ike/constants.js';
import type { IkeEvent } from '../../../../src/ike/ports.js';
import { mirrored, Pair, type Packet, type PairOptions, type Side } from './harness.js';
import { intercept, refragment, sentSince, tampered } from './forge.js';

type Who = 'alice' | 'bob';
const ROLES: readonly Who[] = ['alice', 'bob'];
const other = (w: Who): Who => (w === 'alice' ? 'bob' : 'alice');
const peerOf = (w: Who): string => (w === 'alice' ? 'to-bob' : 'to-alice');
const roleOf = (w: Who): string => (w === 'alice' ? 'IKE initiator' : 'IKE responder');
const drops = (s: Side, reason: string): number => s.engine.status().drops[reason] ?? 0;
const count = (s: Side, type: IkeEvent['type']): number => s.events.filter((e) => e.type === type).length;
const addressOf = (p: Pair, s: Side): string => (s === p.alice ? '192.0.2.1' : '192.0.2.2');
const ccsa = (p: Pair, from: Side, response: boolean) => (x: Packet): boolean =>
  x.from.address === addressOf(p, from) && x.exchange === ExchangeType.CREATE_CHILD_SA && x.response === response;
/** Small pieces: a Child rekey request (~200 octets) becomes several fragments. */
const PIECE = 64;

/** Deliver each datagram in turn in place of `original`, with everything it causes. */
async function deliverAll(p: Pair, original: Packet, datagrams: readonly Uint8Array[]): Promise<void> {
  for (const d of datagrams) { p.net.queue.push({ ...original, datagram: d }); await p.net.pump(); }
}

const answers = (p: Pair, s: Side, mark: number): Packet[] => sentSince(p, s, mark).filter((x) => x.response && x.exchange === ExchangeType.CREATE_CHILD_SA);

/** A Child rekey by `from` whose request `to` has not seen yet (held back), on a fresh pair. */
async function heldRekey(from: Who, o: PairOptions = {}): Promise<{ p: Pair; req: Packet }> {
  const p = new Pair(o);
  await p.connect();
  const req = await intercept(p, ccsa(p, p[from], false), () => p[from].engine.rekey(peerOf(from)));
  return { p, req };
}

/** The rekey completed on both sides, once, and the IKE SA is as it was. */
async function rekeyedOnce(p: Pair): Promise<void> {
  await p.advance(5_000);
  assert.deepEqual([count(p.alice, 'child-rekeyed'), count(p.bob, 'child-rekeyed')], [1, 1]);
  assert.equal(p.alice.engine.status().peers[0]?.ike?.state, 'established');
  assert.equal(p.alice.kernel.installed.size, 1);
  assert.ok(mirrored(p.alice.kernel, p.bob.kernel), 'Child SAs mirrored');
  assert.equal(count(p.alice, 'error') + count(p.bob, 'error') + count(p.alice, 'ike-down') + count(p.bob, 'ike-down'), 0);
}

for (const from of ROLES) {
  const to = other(from);

  test(`RFC 7383 §2.6.1: every request fragment twice, at the ${roleOf(to)}: reassembled and answered once`, async () => {
    const { p, req } = await heldRekey(from);
    const frags = refragment(p[from], req.datagram, PIECE);
    assert.ok(frags.length >= 3, `${frags.length} fragments`);
    const mark = p.net.log.length;
    await deliverAll(p, req, frags.flatMap((f) => [f, f]));
    assert.equal(answers(p, p[to], mark).length, 1, 'one answer');
    await rekeyedOnce(p);
  });

  test(`RFC 7383 §2.6, RFC 7296 §2.21.1: a request fragment with a broken ICV, at the ${roleOf(to)}: dropped (integrity), it takes no slot, the genuine fragments complete the message`, async () => {
    // Why: a forged fragment kept in the buffer would block (or poison) the genuine one with its number.
    const { p, req } = await heldRekey(from);
    const frags = refragment(p[from], req.datagram, PIECE);
    const mark = p.net.log.length; const before = drops(p[to], 'integrity');
    await deliverAll(p, req, [tampered(frags[0]!), tampered(frags[1]!), ...frags]);
    assert.equal(drops(p[to], 'integrity') - before, 2);
    assert.equal(answers(p, p[to], mark).length, 1, 'one answer');
    await rekeyedOnce(p);
  });

  test(`RFC 7383 §2.6: fragments with a greater Total Fragments, at the ${roleOf(to)}: the partial message is discarded and the new set completes it`, async () => {
    // Why: a sender that re-fragments smaller sends more fragments; mixing the two sets would be garbage.
    const { p, req } = await heldRekey(from);
    const coarse = refragment(p[from], req.datagram, PIECE);
    const fine = refragment(p[from], req.datagram, PIECE / 2);
    assert.ok(fine.length > coarse.length, `${fine.length} > ${coarse.length}`);
    const mark = p.net.log.length;
    await deliverAll(p, req, [...coarse.slice(0, -1), ...fine]);
    const [answer] = answers(p, p[to], mark);
    assert.ok(answer, 'answered');
    assert.equal(answers(p, p[to], mark).length, 1, 'one answer');
    await rekeyedOnce(p);
  });

  test(`RFC 7383 §2.3, §2.6: unsolicited fragments at the ${roleOf(to)}: ahead of the message ID window (window) and, without fragmentation negotiated, at all (fragment-not-negotiated); none answered`, async () => {
    const ahead = await heldRekey(from);
    let mark = ahead.p.net.log.length;
    const future = refragment(ahead.p[from], ahead.req.datagram, PIECE, { messageId: ahead.req.messageId + 1 });
    const before = drops(ahead.p[to], 'window');
    await deliverAll(ahead.p, ahead.req, future);
    assert.equal(drops(ahead.p[to], 'window') - before, future.length);
    assert.deepEqual(sentSince(ahead.p, ahead.p[to], mark), []);
    await deliverAll(ahead.p, ahead.req, [ahead.req.datagram]);
    await rekeyedOnce(ahead.p);

    // fragmentMtu 0 on one side: IKEV2_FRAGMENTATION_SUPPORTED is not exchanged.
    const off = await heldRekey(from, { bob: { fragmentMtu: 0 } });
    mark = off.p.net.log.length;
    const frags = refragment(off.p[from], off.req.datagram, PIECE);
    await deliverAll(off.p, off.req, frags);
    assert.equal(drops(off.p[to], 'fragment-not-negotiated'), frags.length);
    assert.deepEqual(sentSince(off.p, off.p[to], mark), []);
    await deliverAll(off.p, off.req, [off.req.datagram]);
    await rekeyedOnce(off.p);
  });

  test(`RFC 7383 §2.6.1, RFC 7296 §2.21.1: response fragments at the ${roleOf(from)}: forged ones dropped, duplicates ignored, unsolicited ones (no request outstanding) dropped; the rekey completes once`, async () => {
    const p = new Pair();
    await p.connect();
    const resp = await intercept(p, ccsa(p, p[to], true), () => p[from].engine.rekey(peerOf(from)));
    const frags = refragment(p[to], resp.datagram, PIECE);
    const integrity = drops(p[from], 'integrity');
    await deliverAll(p, resp, [tampered(frags[0]!), ...frags.flatMap((f) => [f, f])]);
    assert.equal(drops(p[from], 'integrity') - integrity, 1);
    assert.equal(count(p[from], 'child-rekeyed'), 1, 'processed once');
    // The same answer again, now for a message ID with nothing outstanding.
    const unexpected = drops(p[from], 'unexpected-response');
    const stray = refragment(p[to], resp.datagram, PIECE, { messageId: resp.messageId + 7 });
    await deliverAll(p, resp, stray);
    assert.equal(drops(p[from], 'unexpected-response') - unexpected, stray.length);
    await rekeyedOnce(p);
  });
}
