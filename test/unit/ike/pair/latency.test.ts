// Handshake latency in the `ike-up` event (ports.ts IkeEvent handshakeMs), which the agent feeds
// into a Prometheus histogram. Initiator: from its first IKE_SA_INIT to the IKE_AUTH response
// (RFC 7296 §1.2), retransmissions (§2.1) and IKE_SA_INIT retries (§1.3 INVALID_KE_PAYLOAD, §2.6
// COOKIE) included; responder: from the IKE_SA_INIT that created its SA to the IKE_AUTH request.
// The pair's manual clock makes every figure exact: nothing but retransmission timers moves it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ExchangeType } from '../../../../src/ike/constants.js';
import type { IkeEvent } from '../../../../src/ike/ports.js';
import { mirrored, Pair, type Packet } from './harness.js';

const isInit = (p: Packet): boolean => p.exchange === ExchangeType.IKE_SA_INIT;
const isAuth = (p: Packet): boolean => p.exchange === ExchangeType.IKE_AUTH;

function dropFirst(...matches: Array<(p: Packet) => boolean>): (p: Packet) => 'deliver' | 'drop' {
  const pending = [...matches];
  return (p) => {
    const i = pending.findIndex((m) => m(p));
    if (i < 0) return 'deliver';
    pending.splice(i, 1);
    return 'drop';
  };
}

function ups(events: readonly IkeEvent[]): Array<Extract<IkeEvent, { type: 'ike-up' }>> {
  return events.flatMap((e) => (e.type === 'ike-up' ? [e] : []));
}

test('ike-up carries handshakeMs: 0 on both sides when no message is lost and no time passes (RFC 7296 §1.2)', async () => {
  const p = new Pair();
  await p.connect();
  assert.deepEqual(ups(p.alice.events).map((e) => e.handshakeMs), [0]);
  assert.deepEqual(ups(p.bob.events).map((e) => e.handshakeMs), [0]);
});

// 0 s: IKE_SA_INIT lost; 4 s: retransmitted, answered; IKE_AUTH lost; 8 s (4 s after the IKE_AUTH
// request, its own first retransmission): answered. The responder saw IKE_SA_INIT at 4 s.
test('handshakeMs counts the initiator\'s retransmissions from its first IKE_SA_INIT, the responder\'s time from the IKE_SA_INIT it received (RFC 7296 §2.1)', async () => {
  for (const initiator of ['alice', 'bob'] as const) {
    const responder = initiator === 'alice' ? 'bob' : 'alice';
    const p = new Pair();
    p.net.fate = dropFirst((x) => isInit(x) && !x.response, (x) => isAuth(x) && !x.response);
    p[initiator].engine.initiate(initiator === 'alice' ? 'to-bob' : 'to-alice');
    await p.net.pump();
    await p.advance(10_000);
    assert.deepEqual(ups(p[initiator].events).map((e) => e.handshakeMs), [8_000], `${initiator} (initiator)`);
    assert.deepEqual(ups(p[responder].events).map((e) => e.handshakeMs), [4_000], `${responder} (responder)`);
    assert.ok(mirrored(p.alice.kernel, p.bob.kernel), 'mirrored');
  }
});

test('handshakeMs includes an INVALID_KE_PAYLOAD retry of IKE_SA_INIT and a lost IKE_AUTH response (RFC 7296 §1.3, §2.1)', async () => {
  const p = new Pair({ ike: ['aes256gcm16-prfsha256-x25519-ecp256'], bobIke: ['aes256gcm16-prfsha256-ecp256'] });
  p.net.fate = dropFirst((x) => isAuth(x) && x.response);
  await p.connect();
  await p.advance(5_000);
  assert.equal(p.net.log.filter((x) => isInit(x)).length, 4, 'request, INVALID_KE_PAYLOAD, retried request, response');
  assert.deepEqual(ups(p.alice.events).map((e) => e.handshakeMs), [4_000], 'the retry is part of the handshake; the lost response cost one retransmission');
  assert.deepEqual(ups(p.bob.events).map((e) => e.handshakeMs), [0], 'bob was established when he answered, before the loss');
});

// The responder keeps no state for a request without its cookie (RFC 7296 §2.6), so its clock
// starts at the request that carries it: here the retransmission 4 s after the lost one.
test('with a COOKIE challenge, the initiator counts from its first IKE_SA_INIT and the responder from the one carrying the cookie (RFC 7296 §2.6)', async () => {
  const p = new Pair({ bobOptions: { cookieThreshold: 0 } });
  p.net.fate = dropFirst((x) => isInit(x) && !x.response && x.firstPayload === 41 /* N(COOKIE) first */);
  await p.connect();
  await p.advance(5_000);
  assert.equal(p.net.log.filter((x) => isInit(x) && !x.response).length, 3, 'request, retry with the cookie (lost), its retransmission');
  assert.deepEqual(ups(p.alice.events).map((e) => e.handshakeMs), [4_000]);
  assert.deepEqual(ups(p.bob.events).map((e) => e.handshakeMs), [0]);
});

test('a new attempt after a failed one (startAction initiate retry) counts from its own first IKE_SA_INIT', async () => {
  const p = new Pair();
  p.net.fate = () => 'drop';
  p.alice.engine.initiate('to-bob');
  await p.net.pump();
  await p.advance(166_000);
  assert.ok(p.alice.events.some((e) => e.type === 'ike-down' && e.reason === 'retransmit-limit'), 'first attempt given up');
  p.net.fate = dropFirst((x) => isInit(x) && !x.response); // the retry's first IKE_SA_INIT is lost too
  await p.advance(40_000);
  assert.deepEqual(ups(p.alice.events).map((e) => e.handshakeMs), [4_000]);
});

// Only negotiations are measured: a restart that resumes the SA from its checkpoint negotiates
// nothing (restore(), sa/restore.ts) and an IKE rekey reports `ike-rekeyed`.
test('no ike-up for an IKE SA resumed from a checkpoint, nor for the successor of an IKE rekey (RFC 7296 §1.3.2)', async () => {
  const p = new Pair();
  await p.connect();
  const results = await p.restart('alice');
  await p.net.pump();
  assert.equal(results[0]?.outcome, 'resumed');
  assert.equal(p.alice.engine.status().peers[0]?.ike?.state, 'established');
  assert.deepEqual(p.alice.events.map((e) => e.type), [], 'the resumed SA announces nothing');
  p.alice.engine.rekey('to-bob', { ike: true });
  await p.net.pump();
  assert.deepEqual(p.alice.events.map((e) => e.type), ['ike-rekeyed']);
  assert.deepEqual(ups(p.bob.events).length, 1, 'bob: only the first negotiation');
});
