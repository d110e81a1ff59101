// IKE fragmentation (RFC 7383): negotiated with IKEV2_FRAGMENTATION_SUPPORTED in IKE_SA_INIT,
// used for encrypted messages larger than the MTU (certificate IKE_AUTH), every fragment within
// the MTU, loss of a fragment repaired by retransmitting all of them, and bounded reassembly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ExchangeType, PayloadType } from '../../../../src/ike/constants.js';
import { mirrored, Pair } from './harness.js';

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
