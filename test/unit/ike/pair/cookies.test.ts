// Half-open IKE SAs and stateless cookies (RFC 7296 §2.6, RFC 8019 §4.6/§7.1): under load the
// responder answers IKE_SA_INIT with N(COOKIE) and keeps no state, a legitimate initiator repeats
// the request with the cookie and completes; half-open SAs are bounded and time out.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ExchangeType, NotifyStatus } from '../../../../src/ike/constants.js';
import { decodeMessage } from '../../../../src/ike/codec/message.js';
import { mirrored, Pair, type Packet } from './harness.js';

/** IKE_SA_INIT requests that look like they come from different initiators (fresh SPIs). */
function floodFrom(first: Packet, n: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < n; i++) {
    const d = new Uint8Array(first.datagram);
    new DataView(d.buffer).setUint32(0, 0x10000000 + i);
    out.push(d);
  }
  return out;
}

test('cookie challenge: a responder demanding cookies answers N(COOKIE) statelessly and the initiator retries with it (RFC 7296 §2.6)', async () => {
  const p = new Pair({ bobOptions: { cookieThreshold: 0 } });
  await p.connect();
  const init = p.net.log.filter((x) => x.exchange === ExchangeType.IKE_SA_INIT);
  assert.equal(init.length, 4);
  const challenge = decodeMessage(init[1]!.datagram);
  assert.ok(challenge.has(NotifyStatus.COOKIE), 'challenge.has(NotifyStatus.COOKIE)');
  assert.equal(challenge.header.responderSpi, 0n, 'no responder state, no SPI');
  const retry = decodeMessage(init[2]!.datagram);
  assert.equal(retry.payloads[0]?.kind, 'notify', 'COOKIE comes first in the retried request');
  assert.equal(retry.header.initiatorSpi, challenge.header.initiatorSpi);
  assert.deepEqual(p.alice.events.map((e) => e.type), ['ike-up', 'child-up']);
  assert.ok(mirrored(p.alice.kernel, p.bob.kernel), 'mirrored(p.alice.kernel, p.bob.kernel)');
});

test('cookie challenge from the other role: alice demands cookies from bob (RFC 7296 §2.6, both roles)', async () => {
  const p = new Pair({ aliceOptions: { cookieThreshold: 0 } });
  p.bob.engine.initiate('to-alice');
  await p.net.pump();
  assert.equal(p.net.log.filter((x) => x.exchange === ExchangeType.IKE_SA_INIT).length, 4);
  assert.deepEqual(p.bob.events.map((e) => e.type), ['ike-up', 'child-up']);
});

test('cookies switch on when half-open SAs reach the threshold and off again when they time out (RFC 8019 §4.6)', async () => {
  const p = new Pair({ bobOptions: { cookieThreshold: 5, halfOpenTimeoutMs: 30_000 } });
  p.net.fate = (x) => (x.exchange === ExchangeType.IKE_SA_INIT && !x.response ? 'drop' : 'deliver');
  p.alice.engine.initiate('to-bob');
  await p.net.pump();
  const first = p.net.log[0]!;
  p.net.fate = (x) => (x.from.address === '192.0.2.2' ? 'drop' : 'deliver');
  for (const d of floodFrom(first, 5)) await p.bob.engine.receive(d, first.from, first.to);
  assert.equal(p.bob.engine.status().halfOpen, 5);
  assert.equal(p.bob.engine.status().cookiesActive, true);
  // The sixth initiator gets a cookie and creates no state.
  for (const d of floodFrom(first, 6).slice(5)) await p.bob.engine.receive(d, first.from, first.to);
  assert.equal(p.bob.engine.status().halfOpen, 5);
  assert.equal(p.bob.engine.status().drops['cookie-sent'], 1);
  // Half-open SAs expire; cookies go off; the real initiator then completes without one.
  await p.advance(30_000);
  assert.equal(p.bob.engine.status().halfOpen, 0);
  assert.equal(p.bob.engine.status().cookiesActive, false);
  assert.equal(p.bob.engine.status().drops['half-open-timeout'], 5);
  p.net.fate = () => 'deliver';
  await p.advance(30_000);
  assert.equal(p.alice.engine.status().peers[0]?.ike?.state, 'established');
});

test('half-open SAs are bounded: beyond halfOpenLimit IKE_SA_INIT is dropped without an answer (RFC 8019 §4.6)', async () => {
  const p = new Pair({ bobOptions: { cookieThreshold: 1_000, halfOpenLimit: 3 } });
  p.net.fate = () => 'drop';
  p.alice.engine.initiate('to-bob');
  await p.net.pump();
  const first = p.net.log[0]!;
  const sentBefore = p.net.log.length;
  for (const d of floodFrom(first, 10)) await p.bob.engine.receive(d, first.from, first.to);
  assert.equal(p.bob.engine.status().halfOpen, 3);
  assert.equal(p.bob.engine.status().drops['half-open-limit'], 7);
  assert.equal(p.net.log.length - sentBefore, 3, 'only the admitted three were answered');
});

test('an IKE_SA_INIT without the demanded cookie gets a challenge and creates no state (RFC 7296 §2.6)', async () => {
  const p = new Pair({ bobOptions: { cookieThreshold: 0 } });
  p.net.fate = () => 'drop';
  p.alice.engine.initiate('to-bob');
  await p.net.pump();
  const first = p.net.log[0]!;
  await p.bob.engine.receive(first.datagram, first.from, first.to);
  const challenge = p.net.queue.at(-1) ?? p.net.log.at(-1)!;
  assert.ok(decodeMessage(challenge.datagram).has(NotifyStatus.COOKIE), 'decodeMessage(challenge.datagram).has(NotifyStatus.COOKIE)');
  assert.equal(p.bob.engine.status().halfOpen, 0);
});
