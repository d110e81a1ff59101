// IKE_SA_INIT messages whose payloads decode but whose notify data does not (found by the state
// fuzz, test/unit/ike/fuzz): a NAT_DETECTION hash that is not 20 octets (RFC 7296 §2.23), a
// SIGNATURE_HASH_ALGORITHMS list of odd length (RFC 7427 §4), an empty COOKIE (§2.6), an
// INVALID_KE_PAYLOAD without its 2-octet group (§1.3). Such a request is malformed, not an internal
// error; such a response is unauthenticated and may be forged, so the initiator must keep waiting
// for the real one (§2.4: a forged packet must not be able to end an exchange).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NotifyError, NotifyStatus } from '../../../../src/ike/constants.js';
import { decodeMessage, encodeMessage } from '../../../../src/ike/codec/message.js';
import type { IkePayload } from '../../../../src/ike/codec/payload.js';
import { notify } from '../../../../src/ike/codec/payloads/notify.js';
import { ExchangeType } from '../../../../src/ike/constants.js';
import { Pair, type Packet } from './harness.js';

/** `d` re-encoded with each payload passed through `edit` (header kept, Length recomputed). */
function rewrite(d: Uint8Array, edit: (p: IkePayload) => IkePayload[]): Uint8Array {
  const m = decodeMessage(d);
  return encodeMessage(m.header, m.payloads.flatMap(edit));
}

const shortNatHash = (p: IkePayload): IkePayload[] =>
  p.kind === 'notify' && p.type === NotifyStatus.NAT_DETECTION_SOURCE_IP ? [notify(p.type, new Uint8Array(12))] : [p];
const oddHashList = (p: IkePayload): IkePayload[] =>
  p.kind === 'notify' && p.type === NotifyStatus.SIGNATURE_HASH_ALGORITHMS ? [notify(p.type, new Uint8Array([0, 2, 0]))] : [p];

async function heldInit(): Promise<{ p: Pair; req: Packet }> {
  const p = new Pair();
  p.net.fate = () => 'drop';
  p.alice.engine.initiate('to-bob');
  await p.net.pump();
  p.net.fate = () => 'deliver';
  return { p, req: p.net.log[0]! };
}

for (const [what, edit] of [['a 12-octet NAT_DETECTION_SOURCE_IP hash', shortNatHash], ['a 3-octet SIGNATURE_HASH_ALGORITHMS list', oddHashList]] as const) {
  test(`an IKE_SA_INIT request with ${what} is answered INVALID_SYNTAX statelessly, not counted an internal error (RFC 7296 §2.21.1, §2.23; RFC 7427 §4)`, async () => {
    const { p, req } = await heldInit();
    p.net.queue.length = 0;
    await p.bob.engine.receive(rewrite(req.datagram, edit), req.from, req.to);
    const reply = p.net.queue.shift();
    assert.ok(reply !== undefined, 'bob answered');
    const m = decodeMessage(reply.datagram);
    assert.ok(m.notify(NotifyError.INVALID_SYNTAX) !== undefined, 'INVALID_SYNTAX');
    assert.equal(m.header.responderSpi, 0n);
    const s = p.bob.engine.status();
    assert.equal(s.halfOpen, 0);
    assert.equal(s.drops['internal-error'], undefined, JSON.stringify(s.drops));
    assert.equal(s.drops['malformed-init-request'], 1, JSON.stringify(s.drops));
  });
}

const forgedResponses: readonly (readonly [string, (genuine: Uint8Array) => Uint8Array])[] = [
  ['a 12-octet NAT_DETECTION_SOURCE_IP hash', (d) => rewrite(d, shortNatHash)],
  ['a 3-octet SIGNATURE_HASH_ALGORITHMS list', (d) => rewrite(d, oddHashList)],
  ['an empty COOKIE', (d) => { const m = decodeMessage(d); return encodeMessage({ ...m.header, responderSpi: 0n }, [notify(NotifyStatus.COOKIE, new Uint8Array(0))]); }],
  ['an INVALID_KE_PAYLOAD with 3 octets of data', (d) => { const m = decodeMessage(d); return encodeMessage({ ...m.header, responderSpi: 0n }, [notify(NotifyError.INVALID_KE_PAYLOAD, new Uint8Array(3))]); }],
];

for (const [what, forge] of forgedResponses) {
  test(`a forged IKE_SA_INIT response with ${what} is dropped; the initiator keeps waiting and the genuine response completes the handshake (RFC 7296 §2.4)`, async () => {
    // Why: the response is unauthenticated; before the fix the exception left the SA with no
    // outstanding request and no timer, "connecting" for ever (initiate() then did nothing).
    const p = new Pair();
    p.net.fate = (x) => (x.exchange === ExchangeType.IKE_SA_INIT && x.response ? 'hold' : 'deliver');
    p.alice.engine.initiate('to-bob');
    await p.net.pump();
    const genuine = p.net.held[0]!;
    await p.alice.engine.receive(forge(genuine.datagram), genuine.from, genuine.to);
    await p.alice.engine.idle();
    const s = p.alice.engine.status();
    assert.equal(s.drops['internal-error'], undefined, JSON.stringify(s.drops));
    assert.equal(s.drops['malformed-init-response'], 1, JSON.stringify(s.drops));
    p.net.fate = () => 'deliver';
    p.net.releaseHeld();
    await p.net.pump();
    assert.equal(p.alice.engine.status().peers[0]?.ike?.state, 'established');
  });
}

test('a forged IKE_SA_INIT response with a malformed notify does not stop retransmission: the request is resent and the handshake completes (RFC 7296 §2.1, §2.4)', async () => {
  const p = new Pair();
  p.net.fate = (x) => (x.exchange === ExchangeType.IKE_SA_INIT && x.response ? 'drop' : 'deliver');
  p.alice.engine.initiate('to-bob');
  await p.net.pump();
  const genuine = p.net.log.find((x) => x.exchange === ExchangeType.IKE_SA_INIT && x.response)!;
  await p.alice.engine.receive(rewrite(genuine.datagram, shortNatHash), genuine.from, genuine.to);
  p.net.fate = () => 'deliver';
  await p.advance(10_000);
  assert.equal(p.alice.engine.status().peers[0]?.ike?.state, 'established');
});
