// IKE fragmentation (RFC 7383): negotiated with IKEV2_FRAGMENTATION_SUPPORTED in IKE_SA_INIT,
// used for encrypted messages larger than the MTU (certificate IKE_AUTH), every fragment within
// the MTU, loss of a fragment repaired by retransmitting all of them, and bounded reassembly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ExchangeType, PayloadType } from '../../../../src/ike/constants.js';
import { child, mirrored, Pair } from './harness.js';

const MTU = 576;

test('certificate IKE_AUTH larger than the MTU is sent as SKF fragments, each within the MTU, and reassembled (RFC 7383 §2.5)', async () => {
  const p = new Pair({ auth: 'cert', alice: { fragmentMtu: MTU }, bob: { fragmentMtu: MTU } });
  await p.connect();
  const auth = p.net.log.filter((x) => x.exchange === ExchangeType.IKE_AUTH);
  const req = auth.filter((x) => !x.response); const resp = auth.filter((x) => x.response);
  assert.ok(req.length >= 2, `request in ${req.length} fragments`);
  assert.ok(resp.length >= 2, `response in ${resp.length} fragments`);
  for (const x of auth) {
    assert.equal(x.firstPayload, PayloadType.SKF);
    assert.ok(x.datagram.length + 28 <= MTU, `fragment of ${x.datagram.length} bytes fits ${MTU}`);
  }
  assert.deepEqual(p.alice.events.map((e) => e.type), ['ike-up', 'child-up']);
  assert.deepEqual(p.bob.events.map((e) => e.type), ['ike-up', 'child-up']);
  assert.ok(mirrored(p.alice.kernel, p.bob.kernel), 'mirrored(p.alice.kernel, p.bob.kernel)');
});

test('without IKEV2_FRAGMENTATION_SUPPORTED from the peer, messages are not fragmented (RFC 7383 §2.3)', async () => {
  const p = new Pair({ auth: 'cert', alice: { fragmentMtu: MTU }, bob: { fragmentMtu: 0 } });
  await p.connect();
  const auth = p.net.log.filter((x) => x.exchange === ExchangeType.IKE_AUTH);
  assert.equal(auth.length, 2);
  assert.ok(auth.every((x) => x.firstPayload === PayloadType.SK), 'auth.every((x) => x.firstPayload === PayloadType.SK)');
  assert.equal(p.alice.events[0]?.type, 'ike-up');
});

test('a lost fragment is repaired by retransmitting every fragment; the responder answers once (RFC 7383 §2.6)', async () => {
  const p = new Pair({ auth: 'cert', alice: { fragmentMtu: MTU }, bob: { fragmentMtu: MTU } });
  let dropped = false;
  p.net.fate = (x) => {
    if (!dropped && x.exchange === ExchangeType.IKE_AUTH && !x.response && x.firstPayload === PayloadType.SKF) {
      const n = new DataView(x.datagram.buffer, x.datagram.byteOffset).getUint16(32);
      if (n === 2) { dropped = true; return 'drop'; }
    }
    return 'deliver';
  };
  await p.connect();
  assert.equal(p.bob.events.length, 0, 'incomplete message: nothing processed');
  await p.advance(4_000);
  assert.deepEqual(p.bob.events.map((e) => e.type), ['ike-up', 'child-up']);
  assert.deepEqual(p.alice.events.map((e) => e.type), ['ike-up', 'child-up']);
  assert.equal(p.bob.kernel.ops('install').length, 1);
});

test('a lost response fragment: the retransmitted request fragment 1 triggers a resend of all cached response fragments (RFC 7383 §2.6.1)', async () => {
  const p = new Pair({ auth: 'cert', alice: { fragmentMtu: MTU }, bob: { fragmentMtu: MTU } });
  let dropped = false;
  p.net.fate = (x) => (!dropped && x.exchange === ExchangeType.IKE_AUTH && x.response ? ((dropped = true), 'drop') : 'deliver');
  await p.connect();
  await p.advance(4_000);
  assert.deepEqual(p.alice.events.map((e) => e.type), ['ike-up', 'child-up']);
  assert.equal(p.bob.kernel.ops('install').length, 1);
  const resp = p.net.log.filter((x) => x.exchange === ExchangeType.IKE_AUTH && x.response);
  const perCopy = resp.length / 2;
  assert.ok(Number.isInteger(perCopy) && perCopy >= 2, 'every response fragment sent exactly twice');
  assert.ok((p.bob.engine.status().drops['retransmitted-request'] ?? 0) >= 1, '(p.bob.engine.status().drops["retransmitted-request"] ?? 0) >= 1');
});

test('reassembly is bounded: a message announcing more fragments than allowed is dropped and counted (RFC 7383 §2.6.1)', async () => {
  const p = new Pair({ auth: 'cert', alice: { fragmentMtu: 300 }, bob: { fragmentMtu: 300 }, bobOptions: { maxFragments: 2 } });
  await p.connect();
  assert.ok((p.bob.engine.status().drops['too-many-fragments'] ?? 0) >= 1, '(p.bob.engine.status().drops["too-many-fragments"] ?? 0) >= 1');
  assert.equal(p.bob.events.length, 0);
});

test('fragmentation from the other role: bob initiates with certificates over a small MTU (RFC 7383, both roles)', async () => {
  const p = new Pair({ auth: 'cert', alice: { fragmentMtu: MTU }, bob: { fragmentMtu: MTU } });
  p.bob.engine.initiate('to-alice');
  await p.net.pump();
  const auth = p.net.log.filter((x) => x.exchange === ExchangeType.IKE_AUTH);
  assert.ok(auth.length >= 4 && auth.every((x) => x.firstPayload === PayloadType.SKF), 'both directions fragmented');
  assert.deepEqual(p.alice.events.map((e) => e.type), ['ike-up', 'child-up']);
  assert.ok(mirrored(p.alice.kernel, p.bob.kernel), 'mirrored');
});

// A path that drops IP fragments (some firewalls, some cloud paths): every datagram that would
// leave as more than one IPv4 packet of `mtu` bytes is lost.
function dropIpFragments(p: Pair, mtu: number): void {
  p.net.fate = (x) => (x.datagram.length + 28 > mtu ? 'drop' : 'deliver');
}

function timeoutMessages(p: Pair): string[] {
  return p.alice.events.flatMap((e) => (e.type === 'error' && e.error.code === 'ERR_IKE_TIMEOUT' ? [e.error.message] : []));
}

test('an unfragmented IKE_AUTH lost on a fragment-dropping path times out naming the cause: no IKE fragmentation from the peer (RFC 7383 §2.3, RFC 7296 §2.4)', async () => {
  // Why: on-call sees only "no response"; the datagram size and the missing notify are the clue.
  const p = new Pair({ auth: 'cert', alice: { fragmentMtu: MTU }, bob: { fragmentMtu: 0 } });
  dropIpFragments(p, MTU);
  await p.connect();
  await p.advance(200_000);
  const [msg] = timeoutMessages(p);
  assert.ok(msg, `alice reports a timeout: ${JSON.stringify(p.alice.events)}`);
  assert.match(msg, /^no response after 5 retransmissions \(ike-auth\); it was one \d+-byte IP packet \(over 576\) because the peer did not announce IKE fragmentation \(RFC 7383\)/);
});

test('the same loss with IKE fragmentation disabled on our side says so; the hint uses charon\'s 1280-byte default (RFC 7383 §2.3)', async () => {
  // Enough traffic selectors to push IKE_AUTH above 1280 bytes with an ECDSA certificate.
  const many = Array.from({ length: 48 }, (_, i) => `10.9.${i}.0/24`);
  const p = new Pair({ auth: 'cert', alice: { fragmentMtu: 0 }, bob: { fragmentMtu: MTU }, aliceChildren: [child({ localTs: many })] });
  dropIpFragments(p, 1280);
  await p.connect();
  await p.advance(200_000);
  const [msg] = timeoutMessages(p);
  assert.match(msg ?? '', /one \d+-byte IP packet \(over 1280\) because IKE fragmentation is disabled in our config/);
});

test('a timeout of a request that fit the MTU carries no fragmentation hint (PSK IKE_AUTH, peer silent)', async () => {
  const p = new Pair({ alice: { fragmentMtu: MTU }, bob: { fragmentMtu: 0 } });
  p.net.fate = (x) => (x.exchange === ExchangeType.IKE_AUTH ? 'drop' : 'deliver');
  await p.connect();
  await p.advance(200_000);
  assert.deepEqual(timeoutMessages(p), ['no response after 5 retransmissions (ike-auth)']);
});
