// Restart without losing traffic (DESIGN.md §9, issue 5): an engine that stops mid-air and a new
// one over the same kernel and checkpoint store resumes the IKE SA (src/ike/sa/checkpoint.ts,
// restore.ts) — same SPIs, keys and message IDs, Child SAs left in the kernel — and everything
// after works: liveness, child and IKE rekeys from both sides, a request that was in flight, a
// request the peer sent while we were down. Without a checkpoint it re-establishes and keeps the
// adopted SAs, without INITIAL_CONTACT (RFC 7296 §2.4).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ExchangeType } from '../../../../src/ike/constants.js';
import { decodeHeader } from '../../../../src/ike/codec/header.js';
import { Reader } from '../../../../src/common/bytes.js';
import { decodeCheckpoint, encodeCheckpoint } from '../../../../src/ike/sa/checkpoint.js';
import { spiHex } from '../../../../src/ike/sa/ike-sa.js';
import { child, HOUR, mirrored, Pair, type Side } from './harness.js';

const ike = (s: Side) => s.engine.status().peers[0]!.ike;
const childSpis = (s: Side): number[] => [...s.kernel.installed.keys()].sort();
const opsSince = (s: Side, n: number): string[] => s.kernel.calls.slice(n).map((c) => c.op).filter((op) => op !== 'query');

test('a restarted initiator resumes its IKE SA from the checkpoint: same SPIs, Child SA left in the kernel, only a liveness check on the wire', async () => {
  const p = new Pair();
  await p.connect();
  const spisBefore = ike(p.alice)!.ikeSpis;
  const kernelBefore = childSpis(p.alice);
  assert.equal(p.alice.checkpoints.data.size, 1, 'one checkpoint per IKE SA');
  const logStart = p.net.log.length;
  const results = await p.restart('alice');
  const callsAfterRestore = p.alice.kernel.calls.length;
  await p.net.pump();
  const r = results[0];
  assert.equal(r?.outcome, 'resumed', JSON.stringify(results));
  assert.deepEqual(r.outcome === 'resumed' ? r.children.map((c) => c.inboundSpi) : [], kernelBefore);
  const wire = p.net.log.slice(logStart).map((x) => `${x.from.address === '192.0.2.1' ? 'alice' : 'bob'} ${x.exchange}${x.response ? 'r' : ''}`);
  assert.deepEqual(wire, ['alice 37', 'bob 37r'], 'an INFORMATIONAL liveness check and its answer, nothing negotiated again');
  const now = ike(p.alice)!;
  assert.equal(now.ikeSpis, spisBefore);
  assert.equal(now.state, 'established');
  assert.notEqual(now.resumedAtMs, null);
  assert.equal(now.children.length, 1);
  assert.deepEqual(opsSince(p.alice, callsAfterRestore), [], 'nothing installed or deleted after the resume');
  assert.deepEqual(childSpis(p.alice), kernelBefore);
  assert.ok(mirrored(p.alice.kernel, p.bob.kernel));
  assert.equal(p.bob.events.filter((e) => e.type === 'ike-down' || e.type === 'child-down').length, 0, 'the peer saw nothing go down');
});

for (const who of ['alice', 'bob'] as const) {
  test(`after ${who} resumes, child rekeys from both sides and an IKE rekey work (RFC 7296 §1.3.2, §1.3.3)`, async () => {
    // alice rekeys the child at 1 h, bob at 1.5 h (after alice's rekey reset alice's timer to 2 h), IKE SA at 4 h.
    const p = new Pair({
      aliceChildren: [child({ rekeyTimeMs: HOUR, lifeTimeMs: 3 * HOUR })],
      bobChildren: [child({ rekeyTimeMs: 1.5 * HOUR, lifeTimeMs: 3 * HOUR }, 'bob')],
      bob: { ike: { proposals: ['aes256gcm16-prfsha256-x25519'], rekeyTimeMs: 8 * HOUR } },
    });
    await p.connect();
    const spis0 = ike(p.alice)!.ikeSpis;
    await p.advance(10 * 60_000);
    const results = await p.restart(who);
    assert.equal(results[0]?.outcome, 'resumed');
    await p.advance(HOUR - 10 * 60_000 + 10_000);
    assert.equal(p.alice.events.filter((e) => e.type === 'child-rekeyed').length, 1, 'alice rekeyed the child');
    await p.advance(HOUR);
    assert.equal(p.bob.events.filter((e) => e.type === 'child-rekeyed').length, 2, 'bob saw alice rekey, then rekeyed itself');
    assert.ok(mirrored(p.alice.kernel, p.bob.kernel), 'children mirrored after both rekeys');
    await p.advance(2 * HOUR);
    assert.notEqual(ike(p.alice)!.ikeSpis, spis0, 'IKE SA rekeyed');
    assert.equal(ike(p.alice)!.ikeSpis, ike(p.bob)!.ikeSpis);
    assert.equal(p.alice.checkpoints.data.size, 1, 'the old IKE SA’s checkpoint is gone, the new one saved');
    const [id] = [...p.alice.checkpoints.data.keys()];
    assert.ok(ike(p.alice)!.ikeSpis.includes(id!), `checkpoint ${id} is the live SA ${ike(p.alice)!.ikeSpis}`);
    assert.ok(mirrored(p.alice.kernel, p.bob.kernel));
    assert.equal([...p.alice.events, ...p.bob.events].filter((e) => e.type === 'ike-down' && e.reason !== 'rekeyed').length, 0);
  });
}

test('a child rekey with PFS in flight at the crash completes after the resume: same message ID, answered from the peer’s response cache (RFC 7296 §2.1)', async () => {
  const esp = 'aes256gcm16-x25519';
  const p = new Pair({ aliceChildren: [child({ espProposals: [esp] })], bobChildren: [child({ espProposals: [esp], rekeyTimeMs: 2 * HOUR, lifeTimeMs: 3 * HOUR }, 'bob')] });
  await p.connect();
  p.net.fate = (x) => (x.exchange === ExchangeType.CREATE_CHILD_SA && x.response ? 'drop' : 'deliver');
  await p.advance(HOUR);
  const requests = p.net.log.filter((x) => x.exchange === ExchangeType.CREATE_CHILD_SA && !x.response);
  assert.equal(requests.length, 1, 'alice sent its rekey request; the answer was lost');
  assert.equal(ike(p.alice)!.children[0]?.state, 'rekeying');
  p.net.fate = () => 'deliver';
  const logStart = p.net.log.length;
  await p.restart('alice');
  await p.net.pump();
  const again = p.net.log.slice(logStart).filter((x) => x.exchange === ExchangeType.CREATE_CHILD_SA);
  assert.equal(again[0]?.messageId, requests[0]!.messageId, 'the same request, same message ID');
  assert.ok(Buffer.from(again[0]!.datagram).equals(Buffer.from(requests[0]!.datagram)), 'byte for byte');
  assert.equal(p.alice.events.filter((e) => e.type === 'child-rekeyed').length, 1, 'the resumed engine finished the rekey (DH private value, nonce, SPI restored)');
  await p.advance(5_000);
  assert.ok(mirrored(p.alice.kernel, p.bob.kernel), 'new Child SA keys agree on both sides');
  assert.equal(p.alice.kernel.installed.size, 1);
});

test('a rekey the peer started while we were down is answered after the resume (its retransmission, RFC 7296 §2.1)', async () => {
  const p = new Pair({ aliceChildren: [child({ rekeyTimeMs: 2 * HOUR, lifeTimeMs: 3 * HOUR })], bobChildren: [child({ rekeyTimeMs: HOUR, lifeTimeMs: 3 * HOUR }, 'bob')] });
  await p.connect();
  await p.advance(HOUR - 1_000);
  await p.crash('alice');
  await p.advance(2_000); // bob's CREATE_CHILD_SA reaches nobody
  assert.equal(p.bob.events.filter((e) => e.type === 'child-rekeyed').length, 0);
  await p.revive('alice');
  await p.advance(10_000); // bob retransmits after 4 s
  assert.equal(p.bob.events.filter((e) => e.type === 'child-rekeyed').length, 1);
  assert.equal(p.alice.events.filter((e) => e.type === 'child-rekeyed').length, 1);
  assert.ok(mirrored(p.alice.kernel, p.bob.kernel));
});

test('what the store holds is never behind the wire: every request and response leaves after a checkpoint with its message ID counted', async () => {
  const p = new Pair({
    aliceChildren: [child({ rekeyTimeMs: HOUR, lifeTimeMs: 3 * HOUR, espProposals: ['aes256gcm16-x25519'] })],
    bobChildren: [child({ rekeyTimeMs: 1.5 * HOUR, lifeTimeMs: 3 * HOUR, espProposals: ['aes256gcm16-x25519'] }, 'bob')],
  });
  let checked = 0;
  p.net.onSend = (x) => {
    if (x.exchange === ExchangeType.IKE_SA_INIT || x.exchange === ExchangeType.IKE_AUTH) return;
    const side = x.from.address === '192.0.2.1' ? p.alice : p.bob;
    const h = decodeHeader(new Reader(x.datagram));
    const stored = side.checkpoints.data.get(spiHex(h.initiatorSpi)) ?? side.checkpoints.data.get(spiHex(h.responderSpi));
    assert.ok(stored, `no checkpoint for ${spiHex(h.initiatorSpi)} when ${x.response ? 'answering' : 'sending'} exchange ${x.exchange} #${x.messageId}`);
    const cp = decodeCheckpoint(stored);
    if (x.response) assert.ok(cp.expectedRequestId > x.messageId, `response #${x.messageId} sent with expectedRequestId ${cp.expectedRequestId} stored`);
    else assert.ok(cp.nextRequestId > x.messageId, `request #${x.messageId} sent with nextRequestId ${cp.nextRequestId} stored`);
    checked++;
  };
  await p.connect();
  await p.advance(4 * HOUR + 60_000); // child rekeys both ways, DPD, IKE rekey, deletes
  assert.ok(checked >= 12, `only ${checked} datagrams checked`);
});

test('a Child SA the kernel lost while the daemon was down is deleted at the peer and negotiated again', async () => {
  const p = new Pair();
  await p.connect();
  await p.crash('alice');
  const [lost] = [...p.alice.kernel.installed.keys()];
  p.alice.kernel.installed.delete(lost!); // e.g. its hard lifetime ran out meanwhile
  const results = await p.revive('alice');
  assert.deepEqual(results[0]?.outcome === 'resumed' ? results[0].lost.map((c) => c.inboundSpi) : null, [lost]);
  await p.net.pump();
  assert.equal(p.alice.kernel.installed.size, 1);
  assert.ok(!p.alice.kernel.installed.has(lost!));
  assert.ok(mirrored(p.alice.kernel, p.bob.kernel), 'the peer dropped its side of the lost SA and installed the new one');
  assert.equal(ike(p.alice)!.state, 'established');
});

test('checkpoints that cannot be used are refused with the reason and removed: corrupt, unknown tunnel, changed address, wrong id', async () => {
  const p = new Pair();
  await p.connect();
  const [id, good] = [...p.alice.checkpoints.data][0]!;
  const cp = decodeCheckpoint(good!);
  await p.crash('alice');
  p.alice.checkpoints.data.clear();
  const bad = (o: object): Uint8Array => { const j = JSON.parse(Buffer.from(good!).toString()) as Record<string, unknown>; return new Uint8Array(Buffer.from(JSON.stringify({ ...j, ...o }))); };
  p.alice.checkpoints.data.set('0000000000000001', new Uint8Array(Buffer.from('{not json')));
  p.alice.checkpoints.data.set('0000000000000002', bad({ keys: { skD: 'AAAA', skAi: '', skAr: '', skEi: '!!', skEr: 'AAAA' } }));
  p.alice.checkpoints.data.set('0000000000000003', bad({ v: 99 }));
  p.alice.checkpoints.data.set(id!, encodeCheckpoint({ ...cp, peer: 'to-nobody' }));
  p.alice.checkpoints.data.set('0000000000000005', encodeCheckpoint({ ...cp }));
  const results = await p.revive('alice');
  const reasons = Object.fromEntries(results.map((r) => [r.id, r.outcome === 'refused' ? r.reason : 'resumed']));
  assert.match(reasons['0000000000000001']!, /not JSON/);
  assert.match(reasons['0000000000000002']!, /keys\.skEi: expected base64/);
  assert.match(reasons['0000000000000003']!, /version 99/);
  assert.match(reasons[id!]!, /no tunnel named "to-nobody"/);
  assert.match(reasons['0000000000000005']!, /holds IKE SA/);
  assert.equal(p.alice.checkpoints.data.size === 0 || [...p.alice.checkpoints.data.keys()].every((k) => !k.startsWith('00000000000000')), true, 'refused checkpoints are removed');
  for (const r of results) assert.ok(r.outcome === 'refused' && !/AAAA|[A-Za-z0-9+/]{40}/.test(r.reason), 'no key material in a reason');
});

test('without a checkpoint the restarted initiator negotiates again, omits INITIAL_CONTACT while adopted SAs carry traffic, and replaces them (RFC 7296 §2.4)', async () => {
  const p = new Pair();
  await p.connect();
  const old = childSpis(p.alice);
  p.alice.checkpoints.data.clear();
  await p.restart('alice', { restore: false });
  await p.net.pump();
  assert.equal(ike(p.alice)!.state, 'established');
  assert.equal(ike(p.alice)!.resumedAtMs, null);
  assert.equal(p.bob.events.filter((e) => e.type === 'ike-down' && e.reason === 'replaced').length, 0, 'no INITIAL_CONTACT: bob keeps the old IKE SA and its Child SA for now');
  assert.equal(p.bob.kernel.installed.size, 2, 'bob holds the old and the new Child SA');
  assert.equal(p.alice.kernel.installed.size, 2, 'alice installed the new Child SA; the adopted one lingers while bob may still send on it');
  await p.advance(10_000);
  assert.equal(p.alice.kernel.installed.size, 1, 'alice replaced the adopted Child SA');
  assert.notDeepEqual(childSpis(p.alice), old);
});

test('a fresh start (nothing adopted) still sends INITIAL_CONTACT: the peer drops IKE SAs of our previous life (RFC 7296 §2.4)', async () => {
  const p = new Pair();
  await p.connect();
  p.alice.checkpoints.data.clear();
  p.alice.kernel.installed.clear(); // e.g. a reboot: nothing survived
  await p.restart('alice', { restore: false });
  await p.net.pump();
  assert.equal(p.bob.events.filter((e) => e.type === 'ike-down' && e.reason === 'replaced').length, 1);
  assert.equal(p.bob.kernel.installed.size, 1);
});

test('terminate removes the checkpoint: a deliberate stop is not resumed', async () => {
  const p = new Pair();
  await p.connect();
  assert.equal(p.alice.checkpoints.data.size, 1);
  await p.alice.engine.terminate('to-bob');
  await p.net.pump();
  assert.equal(p.alice.checkpoints.data.size, 0);
  assert.equal(p.bob.checkpoints.data.size, 0, 'the peer’s SA went too');
});

test('INITIAL_CONTACT replaces the old IKE SA even while our liveness check on it is outstanding (RFC 7296 §2.4; seen against Libreswan restarted with SIGKILL)', async () => {
  const p = new Pair({ bob: { dpd: { intervalMs: 10_000, timeoutMs: 150_000, action: 'restart' } } });
  await p.connect();
  await p.crash('alice');
  p.alice.checkpoints.data.clear();
  p.alice.kernel.installed.clear(); // a reboot: nothing of alice's previous life survived
  await p.advance(12_000); // bob's DPD request goes out and is lost
  const bobIke = p.bob.engine.status().peers[0]!.ike!;
  assert.equal(bobIke.state, 'established');
  assert.ok(p.net.log.some((x) => x.from.address !== p.alice.config.local.address && x.exchange === ExchangeType.INFORMATIONAL && !x.response), 'bob has a DPD request outstanding');
  await p.revive('alice', { restore: false });
  await p.net.pump();
  assert.equal(p.bob.events.filter((e) => e.type === 'ike-down' && e.reason === 'replaced').length, 1, JSON.stringify(p.bob.events.filter((e) => e.type === 'ike-down')));
  assert.notEqual(p.bob.engine.status().peers[0]!.ike!.ikeSpis, bobIke.ikeSpis);
  assert.equal(p.bob.kernel.installed.size, 1);
  assert.ok(mirrored(p.alice.kernel, p.bob.kernel));
});
