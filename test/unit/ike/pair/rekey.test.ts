// CREATE_CHILD_SA (RFC 7296 §1.3): additional Child SAs, Child rekey with and without PFS,
// make-before-break in the kernel (§2.8: new inbound first, outbound switch, old deleted after a
// delay), IKE SA rekey (§2.18), simultaneous rekeys (§2.8.1 nonce rule), rekey vs delete (§2.25),
// INFORMATIONAL delete on terminate (§1.4.1).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ExchangeType } from '../../../../src/ike/constants.js';
import { decodeMessage } from '../../../../src/ike/codec/message.js';
import type { KernelChildSa } from '../../../../src/ike/ports.js';
import { child, HOUR, mirrored, Pair, watchLoss, type FakeKernel } from './harness.js';

const ops = (k: FakeKernel): string[] => k.calls.filter((c) => c.op !== 'allocSpi' && c.op !== 'query').map((c) => c.op);
const spis = (k: FakeKernel): number[] => [...k.installed.keys()].sort();

test('a second child config is negotiated with CREATE_CHILD_SA after IKE_AUTH (RFC 7296 §1.3.1)', async () => {
  const extra = (side: 'alice' | 'bob') => child({ name: 'dns', localTs: [side === 'alice' ? '10.1.53.0/24' : '10.2.53.0/24'], remoteTs: [side === 'alice' ? '10.2.53.0/24' : '10.1.53.0/24'] }, side);
  const p = new Pair({ aliceChildren: [child(), extra('alice')], bobChildren: [child({}, 'bob'), extra('bob')] });
  await p.connect();
  assert.deepEqual(p.net.log.map((x) => x.exchange), [34, 34, 35, 35, 36, 36]);
  assert.equal(p.alice.kernel.installed.size, 2);
  assert.ok(mirrored(p.alice.kernel, p.bob.kernel), 'mirrored(p.alice.kernel, p.bob.kernel)');
  const ups = p.bob.events.filter((e) => e.type === 'child-up').map((e) => (e.type === 'child-up' ? e.child : ''));
  assert.deepEqual(ups, ['net', 'dns']);
});

for (const [label, esp, hasKe] of [['without PFS', 'aes256gcm16', false], ['with PFS (x25519)', 'aes256gcm16-x25519', true]] as const) {
  test(`child rekey ${label} at rekeyTime: new SAs mirrored, old deleted after the delay (RFC 7296 §1.3.3, §2.17)`, async () => {
    const p = new Pair({ aliceChildren: [child({ espProposals: [esp], rekeyTimeMs: HOUR })], bobChildren: [child({ espProposals: [esp], rekeyTimeMs: 2 * HOUR, lifeTimeMs: 3 * HOUR }, 'bob')] });
    await p.connect();
    const before = spis(p.alice.kernel);
    await p.advance(HOUR);
    const cc = p.net.log.filter((x) => x.exchange === ExchangeType.CREATE_CHILD_SA);
    assert.equal(cc.length, 2);
    assert.equal(cc[0]?.from.address, '192.0.2.1', 'alice (shorter rekeyTime) rekeys');
    void hasKe;
    assert.equal(p.alice.kernel.installed.size, 2, 'old inbound still installed during the delay');
    await p.advance(5_000);
    assert.equal(p.alice.kernel.installed.size, 1);
    assert.equal(p.bob.kernel.installed.size, 1);
    assert.notDeepEqual(spis(p.alice.kernel), before);
    assert.ok(mirrored(p.alice.kernel, p.bob.kernel), 'mirrored(p.alice.kernel, p.bob.kernel)');
    assert.equal(p.alice.events.filter((e) => e.type === 'child-rekeyed').length, 1);
    assert.equal(p.bob.events.filter((e) => e.type === 'child-rekeyed').length, 1);
    assert.equal(p.alice.events.filter((e) => e.type === 'child-down').length, 0, 'a rekey is not a child-down');
    const dels = p.alice.kernel.ops('delete') as Array<{ opts: { keepPolicies: boolean } }>;
    assert.deepEqual(dels.map((d) => d.opts.keepPolicies), [true], 'policies stay: the successor shares the reqid');
  });
}

test('PFS rekey carries KE payloads in CREATE_CHILD_SA and changes the keys (RFC 7296 §1.3.3)', async () => {
  const esp = 'aes256gcm16-x25519';
  const p = new Pair({ aliceChildren: [child({ espProposals: [esp] })], bobChildren: [child({ espProposals: [esp], rekeyTimeMs: 2 * HOUR, lifeTimeMs: 3 * HOUR }, 'bob')] });
  await p.connect();
  // IKE_AUTH must not offer the KE method (no KE payload there).
  await p.advance(HOUR);
  const cc = p.net.log.filter((x) => x.exchange === ExchangeType.CREATE_CHILD_SA);
  assert.equal(cc.length, 2);
  const install = p.alice.kernel.ops('install') as KernelChildSa[];
  assert.equal(install.length, 2);
  assert.equal(p.alice.events.find((e) => e.type === 'child-rekeyed')?.type, 'child-rekeyed');
  const rk = p.alice.events.find((e) => e.type === 'child-rekeyed');
  assert.equal(rk?.type === 'child-rekeyed' ? rk.suite : '', 'aes256gcm16-x25519');
});

test('make-before-break order in the kernel: rekey initiator installs, then deletes old after the delay; responder installs inbound-only, activates outbound on the Delete (RFC 7296 §2.8)', async () => {
  const p = new Pair({ bobChildren: [child({ rekeyTimeMs: 2 * HOUR, lifeTimeMs: 3 * HOUR }, 'bob')] });
  await p.connect();
  p.alice.kernel.calls.length = 0; p.bob.kernel.calls.length = 0;
  await p.advance(HOUR);
  const bobInstall = p.bob.kernel.ops('install') as KernelChildSa[];
  assert.equal(bobInstall[0]?.outboundActive, false, 'responder: new inbound now, keeps sending on the old SA');
  assert.equal((p.alice.kernel.ops('install') as KernelChildSa[])[0]?.outboundActive, true);
  assert.deepEqual(ops(p.alice.kernel), ['install']);
  assert.deepEqual(ops(p.bob.kernel), ['install', 'update'], 'outbound switched when the Delete of the old SA arrived');
  await p.advance(5_000);
  assert.deepEqual(ops(p.alice.kernel), ['install', 'delete'], 'old SA removed rekeyDeleteDelay after the Delete exchange');
  assert.deepEqual(ops(p.bob.kernel), ['install', 'update', 'delete']);
});

test('the responder of a child rekey can rekey next time too: rekeys from both roles (RFC 7296 §1.3.3)', async () => {
  const p = new Pair({ aliceChildren: [child({ rekeyTimeMs: 2 * HOUR, lifeTimeMs: 3 * HOUR })], bobChildren: [child({ rekeyTimeMs: HOUR }, 'bob')] });
  await p.connect();
  await p.advance(HOUR + 5_000);
  const cc = p.net.log.filter((x) => x.exchange === ExchangeType.CREATE_CHILD_SA && !x.response);
  assert.equal(cc[0]?.from.address, '192.0.2.2');
  assert.ok(mirrored(p.alice.kernel, p.bob.kernel), 'mirrored(p.alice.kernel, p.bob.kernel)');
  assert.equal(p.alice.kernel.installed.size, 1);
});

test('IKE SA rekey: new SPIs, children untouched in the kernel, old IKE SA deleted, traffic continues on the new SA (RFC 7296 §1.3.2, §2.18)', async () => {
  const p = new Pair({ alice: { ike: { proposals: ['aes256gcm16-prfsha256-x25519'], rekeyTimeMs: HOUR } }, aliceChildren: [child({ rekeyTimeMs: 3 * HOUR, lifeTimeMs: 4 * HOUR })], bobChildren: [child({ rekeyTimeMs: 3 * HOUR, lifeTimeMs: 4 * HOUR }, 'bob')] });
  await p.connect();
  const spisBefore = p.alice.engine.status().peers[0]?.ike?.ikeSpis;
  p.alice.kernel.calls.length = 0; p.bob.kernel.calls.length = 0;
  await p.advance(HOUR);
  const spisAfter = p.alice.engine.status().peers[0]?.ike?.ikeSpis;
  assert.notEqual(spisAfter, spisBefore);
  assert.equal(p.bob.engine.status().peers[0]?.ike?.ikeSpis, spisAfter);
  assert.deepEqual(ops(p.alice.kernel), [], 'no kernel change for an IKE rekey');
  assert.deepEqual(ops(p.bob.kernel), []);
  assert.equal(p.alice.events.filter((e) => e.type === 'ike-rekeyed').length, 1);
  assert.equal(p.bob.events.filter((e) => e.type === 'ike-rekeyed').length, 1);
  const rekeyAt = p.net.log.findIndex((x) => x.exchange === ExchangeType.CREATE_CHILD_SA && x.response);
  const del = p.net.log[rekeyAt + 1]!;
  assert.equal(del.exchange, ExchangeType.INFORMATIONAL, 'Delete of the old IKE SA right after the rekey');
  assert.equal(decodeMessage(del.datagram).header.initiatorSpi.toString(16).padStart(16, '0'), spisBefore?.slice(0, 16), 'sent on the old SA');
  // The new SA works: a later child rekey runs over it with message ID 1 (0 was... none yet).
  await p.advance(2 * HOUR);
  const cc = p.net.log.filter((x) => x.exchange === ExchangeType.CREATE_CHILD_SA && !x.response);
  assert.ok(cc.length >= 3, 'IKE rekey, a second IKE rekey and a child rekey');
  assert.ok(mirrored(p.alice.kernel, p.bob.kernel), 'mirrored(p.alice.kernel, p.bob.kernel)');
  assert.equal(p.alice.engine.status().peers[0]?.ike?.children.length, 1);
  assert.equal(p.alice.events.filter((e) => e.type === 'ike-down').length, 0);
});

test('IKE SA rekey initiated by the responder of the original SA works the same (both roles)', async () => {
  const long = { rekeyTimeMs: 3 * HOUR, lifeTimeMs: 4 * HOUR };
  const p = new Pair({ bob: { ike: { proposals: ['aes256gcm16-prfsha256-x25519'], rekeyTimeMs: HOUR } }, aliceChildren: [child(long)], bobChildren: [child(long, 'bob')] });
  await p.connect();
  await p.advance(HOUR);
  assert.equal(p.bob.events.filter((e) => e.type === 'ike-rekeyed').length, 1);
  assert.equal(p.alice.engine.status().peers[0]?.ike?.role, 'responder');
  assert.equal(p.bob.engine.status().peers[0]?.ike?.role, 'initiator', 'the rekey initiator is the new original initiator');
  await p.advance(30_000);
  assert.equal(p.alice.engine.status().peers[0]?.ike?.state, 'established');
});

test('simultaneous Child rekey: both create SAs, the one with the lowest nonce is deleted by its creator, one pair remains (RFC 7296 §2.8.1)', async () => {
  const p = new Pair({ bobChildren: [child({}, 'bob')] });
  await p.connect();
  // Both rekey at the same instant (same rekeyTime, jitter 0): requests cross on the wire.
  await p.advance(HOUR);
  await p.advance(5_000);
  assert.equal(p.alice.kernel.installed.size, 1);
  assert.equal(p.bob.kernel.installed.size, 1);
  assert.ok(mirrored(p.alice.kernel, p.bob.kernel), 'mirrored(p.alice.kernel, p.bob.kernel)');
  const creq = p.net.log.filter((x) => x.exchange === ExchangeType.CREATE_CHILD_SA && !x.response);
  assert.equal(creq.length, 2);
  assert.deepEqual(creq.map((x) => x.from.address).sort(), ['192.0.2.1', '192.0.2.2']);
  assert.equal(p.alice.events.filter((e) => e.type === 'child-rekeyed').length, 1);
  assert.equal(p.bob.events.filter((e) => e.type === 'child-rekeyed').length, 1);
  assert.equal(p.alice.events.filter((e) => e.type === 'child-down').length, 0);
  // The next rekey still works.
  await p.advance(HOUR + 5_000);
  assert.equal(p.alice.kernel.installed.size, 1);
  assert.ok(mirrored(p.alice.kernel, p.bob.kernel), 'mirrored(p.alice.kernel, p.bob.kernel)');
});

test('simultaneous IKE rekey: one new IKE SA survives on both sides, children move to it (RFC 7296 §2.8.1, §2.18)', async () => {
  const ike = { proposals: ['aes256gcm16-prfsha256-x25519'], rekeyTimeMs: HOUR };
  const long = { rekeyTimeMs: 3 * HOUR, lifeTimeMs: 4 * HOUR };
  const p = new Pair({ alice: { ike }, bob: { ike }, aliceChildren: [child(long)], bobChildren: [child(long, 'bob')] });
  await p.connect();
  await p.advance(HOUR);
  await p.advance(60_000);
  const a = p.alice.engine.status().peers[0]?.ike; const b = p.bob.engine.status().peers[0]?.ike;
  assert.equal(a?.state, 'established');
  assert.equal(a?.ikeSpis, b?.ikeSpis);
  assert.equal(a?.children.length, 1);
  assert.equal(b?.children.length, 1);
  assert.equal(p.alice.events.filter((e) => e.type === 'ike-down' || e.type === 'child-down').length, 0);
  assert.ok(mirrored(p.alice.kernel, p.bob.kernel), 'mirrored(p.alice.kernel, p.bob.kernel)');
  // Exactly one live IKE SA each: the redundant one and the old one were deleted.
  await p.advance(2 * HOUR);
  assert.ok(mirrored(p.alice.kernel, p.bob.kernel), 'mirrored(p.alice.kernel, p.bob.kernel)');
  assert.equal(p.alice.engine.status().peers[0]?.ike?.ikeSpis, p.bob.engine.status().peers[0]?.ike?.ikeSpis);
});

test('delete during rekey: a Child rekey crossing the peer\'s IKE delete gets TEMPORARY_FAILURE and everything is removed (RFC 7296 §2.25)', async () => {
  const p = new Pair({ bobChildren: [child({ rekeyTimeMs: 2 * HOUR, lifeTimeMs: 3 * HOUR }, 'bob')] });
  await p.connect();
  p.net.fate = (x) => (x.exchange === ExchangeType.CREATE_CHILD_SA && !x.response ? 'hold' : 'deliver');
  await p.advance(HOUR);
  const done = p.bob.engine.terminate('to-alice');
  await p.net.pump();
  p.net.fate = () => 'deliver';
  p.net.releaseHeld();
  await p.net.pump();
  await done;
  const reply = p.net.log.find((x) => x.exchange === ExchangeType.CREATE_CHILD_SA && x.response);
  assert.equal(reply, undefined, 'the rekey request reached a deleted SA and was dropped');
  assert.equal(p.alice.kernel.installed.size, 0);
  assert.equal(p.bob.kernel.installed.size, 0);
  assert.ok(p.alice.events.some((e) => e.type === 'ike-down' && e.reason === 'peer-deleted'), 'p.alice.events.some((e) => e.type === "ike-down" && e.reason === "peer-deleted")');
  assert.ok(p.bob.events.some((e) => e.type === 'ike-down' && e.reason === 'terminated'), 'p.bob.events.some((e) => e.type === "ike-down" && e.reason === "terminated")');
  assert.equal(p.alice.kernel.ops('releaseSpi').length, 1, 'the SPI reserved for the abandoned rekey is released');
});

test('delete during rekey: the rekey of a Child SA the peer is deleting gets TEMPORARY_FAILURE (RFC 7296 §2.25.1)', async () => {
  const p = new Pair({ bobChildren: [child({ rekeyTimeMs: 2 * HOUR, lifeTimeMs: 3 * HOUR }, 'bob')] });
  await p.connect();
  const bobChild = [...p.bob.kernel.installed.keys()][0]!;
  p.net.fate = (x) => (x.exchange === ExchangeType.CREATE_CHILD_SA && !x.response ? 'hold' : 'deliver');
  await p.advance(HOUR); // alice's rekey request is held
  p.net.fate = (x) => (x.exchange === ExchangeType.INFORMATIONAL && !x.response ? 'hold' : 'deliver');
  p.bob.engine.expired(bobChild, true); // bob's child hits its hard lifetime: Delete to alice
  await p.net.pump();
  p.net.fate = () => 'deliver';
  p.net.releaseHeld(false); // the rekey reaches bob first, then bob's Delete reaches alice
  await p.net.pump();
  await p.advance(15_000);
  const tf = p.net.log.find((x) => x.exchange === ExchangeType.CREATE_CHILD_SA && x.response && x.from.address === '192.0.2.2');
  assert.ok(tf, 'bob answered the rekey');
  assert.ok(p.bob.events.some((e) => e.type === 'child-down' && e.reason === 'hard-lifetime'), 'p.bob.events.some((e) => e.type === "child-down" && e.reason === "hard-lifetime")');
  assert.ok(p.alice.events.some((e) => e.type === 'child-down' && e.reason === 'peer-deleted'), 'p.alice.events.some((e) => e.type === "child-down" && e.reason === "peer-deleted")');
  // bob re-creates the child after a hard expiry; both end with one mirrored pair.
  assert.ok(mirrored(p.alice.kernel, p.bob.kernel), 'mirrored(p.alice.kernel, p.bob.kernel)');
  assert.equal(p.alice.kernel.installed.size, 1);
});

test('terminate() sends Delete for the IKE SA; both sides remove children and policies (RFC 7296 §1.4.1)', async () => {
  const p = new Pair();
  await p.connect();
  const done = p.alice.engine.terminate('to-bob');
  await p.net.pump();
  await done;
  const info = p.net.log.filter((x) => x.exchange === ExchangeType.INFORMATIONAL);
  assert.equal(info.length, 2);
  const del = decodeMessage(info[0]!.datagram);
  assert.equal(del.header.response, false);
  assert.equal(p.alice.kernel.installed.size, 0);
  assert.equal(p.bob.kernel.installed.size, 0);
  for (const k of [p.alice.kernel, p.bob.kernel]) {
    const d = k.ops('delete') as Array<{ opts: { keepPolicies: boolean } }>;
    assert.deepEqual(d.map((x) => x.opts.keepPolicies), [false]);
  }
  assert.ok(p.alice.events.some((e) => e.type === 'ike-down' && e.reason === 'terminated'), 'p.alice.events.some((e) => e.type === "ike-down" && e.reason === "terminated")');
  assert.ok(p.bob.events.some((e) => e.type === 'ike-down' && e.reason === 'peer-deleted'), 'p.bob.events.some((e) => e.type === "ike-down" && e.reason === "peer-deleted")');
  // terminated peers are not restarted by DPD.
  await p.advance(200_000);
  assert.equal(p.net.log.filter((x) => x.exchange === ExchangeType.IKE_SA_INIT).length, 2);
});

test('terminate() by the responder works the same (both roles)', async () => {
  const p = new Pair();
  await p.connect();
  const done = p.bob.engine.terminate('to-alice');
  await p.net.pump();
  await done;
  assert.equal(p.alice.kernel.installed.size + p.bob.kernel.installed.size, 0);
  assert.ok(p.alice.events.some((e) => e.type === 'ike-down' && e.reason === 'peer-deleted'), 'p.alice.events.some((e) => e.type === "ike-down" && e.reason === "peer-deleted")');
});

test('hard lifetime without a successful rekey deletes the Child SA and re-creates it (RFC 7296 §2.8)', async () => {
  const p = new Pair({ bobChildren: [child({ rekeyTimeMs: 2 * HOUR, lifeTimeMs: 3 * HOUR }, 'bob')] });
  await p.connect();
  p.net.fate = (x) => (x.exchange === ExchangeType.CREATE_CHILD_SA ? 'drop' : 'deliver');
  await p.advance(0.1 * HOUR);
  p.net.fate = (x) => (x.exchange === ExchangeType.CREATE_CHILD_SA && !x.response && x.from.address === '192.0.2.1' && x.messageId === 1 ? 'drop' : 'deliver');
  await p.advance(HOUR); // at 1.1 h the hard lifetime hits before the rekey got through
  assert.ok(p.alice.events.some((e) => e.type === 'child-down' && e.reason === 'hard-lifetime') || p.alice.events.some((e) => e.type === 'child-rekeyed'), 'p.alice.events.some((e) => e.type === "child-down" && e.reason === "hard-lifetime") || p.a');
  assert.ok(mirrored(p.alice.kernel, p.bob.kernel), 'mirrored(p.alice.kernel, p.bob.kernel)');
});

test('INVALID_KE_PAYLOAD in a PFS child rekey makes the initiator retry with the group the responder wants (RFC 7296 §1.3)', async () => {
  const p = new Pair({ aliceChildren: [child({ espProposals: ['aes256gcm16-x25519-ecp256'] })], bobChildren: [child({ espProposals: ['aes256gcm16-ecp256'], rekeyTimeMs: 2 * HOUR, lifeTimeMs: 3 * HOUR }, 'bob')] });
  await p.connect();
  await p.advance(HOUR + 5_000);
  const cc = p.net.log.filter((x) => x.exchange === ExchangeType.CREATE_CHILD_SA);
  assert.equal(cc.length, 4, 'request, INVALID_KE_PAYLOAD, retried request, response');
  assert.equal(p.alice.events.filter((e) => e.type === 'child-rekeyed').length, 1);
  assert.equal(p.alice.events.filter((e) => e.type === 'error').length, 0);
  assert.ok(mirrored(p.alice.kernel, p.bob.kernel), 'mirrored(p.alice.kernel, p.bob.kernel)');
  const rk = p.bob.events.find((e) => e.type === 'child-rekeyed');
  assert.equal(rk?.type === 'child-rekeyed' ? rk.suite : '', 'aes256gcm16-ecp256');
});

test('simultaneous Child rekey under many nonce orders: whichever side loses (RFC 7296 §2.8.1), both end with the same single pair', async () => {
  const losers = new Set<string>();
  for (const seeds of [[1, 2], [3, 4], [5, 6], [7, 8], [9, 10], [11, 12]] as const) {
    const p = new Pair({ seeds });
    await p.connect();
    await p.advance(HOUR + 5_000);
    assert.ok(mirrored(p.alice.kernel, p.bob.kernel), `mirrored with seeds ${seeds.join(',')}`);
    assert.equal(p.alice.kernel.installed.size, 1);
    // The loser released the SPI it had allocated for its own, redundant SA.
    if (p.alice.kernel.ops('releaseSpi').length > 0) losers.add('alice');
    if (p.bob.kernel.ops('releaseSpi').length > 0) losers.add('bob');
  }
  assert.deepEqual([...losers].sort(), ['alice', 'bob'], 'both branches of the nonce rule ran');
});

test('simultaneous IKE rekey under many nonce orders: one IKE SA, children intact, and each side loses under some order (RFC 7296 §2.8.1)', async () => {
  const ike = { proposals: ['aes256gcm16-prfsha256-x25519'], rekeyTimeMs: HOUR };
  const long = { rekeyTimeMs: 3 * HOUR, lifeTimeMs: 4 * HOUR };
  const losers: string[] = [];
  // Alice loses under the first four orders; [2, 1] and [22, 11] give bob the lowest nonce.
  for (const seeds of [[1, 2], [3, 4], [5, 6], [7, 8], [2, 1], [22, 11]] as const) {
    const p = new Pair({ seeds, alice: { ike }, bob: { ike }, aliceChildren: [child(long)], bobChildren: [child(long, 'bob')] });
    await p.connect();
    const rekeysFrom = p.net.log.length;
    await p.advance(HOUR + 60_000);
    const requests = p.net.log.slice(rekeysFrom).filter((x) => x.exchange === ExchangeType.CREATE_CHILD_SA && !x.response);
    assert.deepEqual([...new Set(requests.map((x) => x.from.address))].sort(), ['192.0.2.1', '192.0.2.2'], `seeds ${seeds.join(',')}: both sides started the rekey (a collision)`);
    const a = p.alice.engine.status().peers[0]?.ike; const b = p.bob.engine.status().peers[0]?.ike;
    assert.equal(a?.ikeSpis, b?.ikeSpis, `same IKE SA with seeds ${seeds.join(',')}`);
    assert.equal(a?.children.length, 1);
    assert.equal(b?.children.length, 1);
    assert.equal(p.alice.events.filter((e) => e.type === 'ike-down').length, 0);
    // The surviving IKE SA is the winner's rekey (§2.8.1): its initiator won, the other side lost.
    losers.push(a?.role === 'responder' ? 'alice' : 'bob');
    await p.advance(HOUR);
    assert.equal(p.alice.engine.status().peers[0]?.ike?.state, 'established');
  }
  assert.deepEqual([...new Set(losers)].sort(), ['alice', 'bob'], `both branches of the nonce rule ran (losers by seed: ${losers.join(', ')})`);
});

test('simultaneous IKE rekey: the peer\'s redundant IKE SA is retired quietly by its Delete, or after a timeout when the Delete never comes; no ike-down on either side (RFC 7296 §2.8.1)', async () => {
  // Found while preparing the collision test against charon (e2e/vm/agent-rekey-collision.test.ts),
  // by running this pair scenario first: the winner kept the loser's redundant SA as a
  // live, established IKE SA, so the loser's Delete of it surfaced as ike-down "peer-deleted"
  // (logged as "IKE SA down" by the agent), and without that Delete it stayed forever.
  const ike = { proposals: ['aes256gcm16-prfsha256-x25519'], rekeyTimeMs: HOUR };
  const long = { rekeyTimeMs: 3 * HOUR, lifeTimeMs: 4 * HOUR };
  const downs = (p: Pair) => [...p.alice.events, ...p.bob.events].filter((e) => e.type === 'ike-down' || e.type === 'child-down');
  for (const seeds of [[11, 22], [22, 11]] as const) {
    const p = new Pair({ seeds, alice: { ike }, bob: { ike }, aliceChildren: [child(long)], bobChildren: [child(long, 'bob')] });
    await p.connect();
    await p.advance(HOUR + 60_000);
    assert.deepEqual(downs(p), [], `seeds ${seeds.join(',')}: Deletes delivered`);
    assert.equal(p.alice.engine.status().peers[0]?.ike?.ikeSpis, p.bob.engine.status().peers[0]?.ike?.ikeSpis);

    // The same collision with every Delete held back past REKEYED_SA_TIMEOUT_MS and the Delete
    // requests' own retransmission limit, then delivered late (no DPD: its requests would be held too).
    const noDpd = { intervalMs: 0, action: 'restart' } as const;
    const q = new Pair({ seeds, alice: { ike, dpd: noDpd }, bob: { ike, dpd: noDpd }, aliceChildren: [child(long)], bobChildren: [child(long, 'bob')] });
    await q.connect();
    q.net.fate = (x) => (x.exchange === ExchangeType.INFORMATIONAL && !x.response ? 'hold' : 'deliver');
    await q.advance(HOUR + 300_000);
    assert.ok(q.net.held.length >= 2, 'the Deletes were sent (and held)');
    q.net.fate = () => 'deliver';
    const dropsBefore = (q.alice.engine.status().drops['unknown-spi'] ?? 0) + (q.bob.engine.status().drops['unknown-spi'] ?? 0);
    q.net.releaseHeld(false);
    await q.net.pump();
    assert.deepEqual(downs(q), [], `seeds ${seeds.join(',')}: Deletes that never came`);
    const dropsAfter = (q.alice.engine.status().drops['unknown-spi'] ?? 0) + (q.bob.engine.status().drops['unknown-spi'] ?? 0);
    assert.ok(dropsAfter - dropsBefore >= 2, `the late Deletes found the old and the redundant SA already gone (${dropsAfter - dropsBefore} dropped)`);
    assert.equal(q.alice.engine.status().peers[0]?.ike?.ikeSpis, q.bob.engine.status().peers[0]?.ike?.ikeSpis);
    assert.ok(mirrored(q.alice.kernel, q.bob.kernel), 'mirrored(q.alice.kernel, q.bob.kernel)');
    await q.advance(HOUR);
    assert.equal(q.alice.engine.status().peers[0]?.ike?.state, 'established');
  }
});

test('simultaneous Child rekey: the loser keeps sending on the old SA until the winner deletes it, or switches after a timeout (RFC 7296 §2.8.1, §2.8)', async () => {
  // The loser switched its outbound to the winner's new SA as soon as its own exchange ended, but
  // the winner installs that SA only when the loser's answer to the winner's request arrives, so
  // packets could reach the winner for an SA it did not have yet. strongSwan's loser installs
  // nothing outbound until the winner's Delete either. (Against charon in the VM lane one ping was
  // lost in a collision the agent lost, agent-rekey-collision.test.ts; two later runs without
  // this change lost none, so that loss is consistent with this window but not proven to be it.)
  const noDpd = { intervalMs: 0, action: 'restart' } as const;
  const losers = new Set<string>();
  for (const seeds of [[1, 2], [3, 4], [5, 6], [7, 8], [9, 10], [11, 12]] as const) {
    for (const deleteComes of [true, false]) {
      const p = new Pair({ seeds, alice: { dpd: noDpd }, bob: { dpd: noDpd } });
      await p.connect();
      const [oldA] = [...p.alice.kernel.installed.keys()];
      const [oldB] = [...p.bob.kernel.installed.keys()];
      p.net.fate = (x) => (x.exchange === ExchangeType.INFORMATIONAL && !x.response ? 'hold' : 'deliver');
      await p.advance(HOUR);
      const loser = p.alice.kernel.ops('releaseSpi').length > 0 ? p.alice : p.bob;
      const winner = loser === p.alice ? p.bob : p.alice;
      losers.add(loser.name);
      const old = loser === p.alice ? oldA! : oldB!;
      const successor = [...loser.kernel.installed.values()].find((s) => s.inbound.spi !== old);
      assert.ok(successor, 'the winner\'s SA is installed at the loser');
      assert.equal(successor.active, false, `${loser.name} lost (seeds ${seeds.join(',')}): no sending on the winner's SA before the winner deleted the old one`);
      assert.equal(loser.kernel.installed.get(old)?.active, true, 'still sending on the old SA');
      assert.ok([...winner.kernel.installed.values()].some((s) => s.inbound.spi === successor.outbound.spi && s.active), 'the winner has its SA in and out');
      if (deleteComes) {
        p.net.fate = () => 'deliver';
        p.net.releaseHeld(false);
        await p.net.pump();
        assert.equal(loser.kernel.installed.get(successor.inbound.spi)?.active, true, 'the Delete of the old SA switches the loser over');
      } else {
        await p.advance(30_000); // REKEYED_SA_TIMEOUT_MS: the Delete never came
        assert.equal(loser.kernel.installed.get(successor.inbound.spi)?.active, true, 'switched on its own after the timeout');
        assert.equal(loser.kernel.installed.has(old), false);
        p.net.fate = () => 'deliver';
        p.net.releaseHeld(false);
        await p.net.pump();
      }
      await p.advance(5_000);
      assert.ok(mirrored(p.alice.kernel, p.bob.kernel), `mirrored (seeds ${seeds.join(',')}, Delete ${deleteComes ? 'delivered' : 'lost'})`);
      assert.equal(p.alice.kernel.installed.size, 1);
      assert.deepEqual([...p.alice.events, ...p.bob.events].filter((e) => e.type === 'child-down' || e.type === 'ike-down'), []);
    }
  }
  assert.deepEqual([...losers].sort(), ['alice', 'bob'], 'both branches of the nonce rule ran');
});

test('simultaneous rekeys where the winner\'s Delete of the old SA overtakes the answer to the loser\'s request: one pair remains, no policy removed (RFC 7296 §2.8.1)', async () => {
  // Found by the restart matrix (restart-rekey.test.ts): the same state as a loser killed after the
  // Delete, without any crash. Seeds as in the many-nonce-orders tests; the loser is the side whose
  // answer is held.
  const ikeConfig = { proposals: ['aes256gcm16-prfsha256-x25519'], rekeyTimeMs: HOUR };
  const long = { rekeyTimeMs: 3 * HOUR, lifeTimeMs: 4 * HOUR };
  const dpd = { intervalMs: 0, action: 'restart' } as const;
  const cases = [['child', [3, 4], '192.0.2.1'], ['child', [1, 2], '192.0.2.2'], ['ike', [1, 2], '192.0.2.1'], ['ike', [2, 1], '192.0.2.2']] as const;
  for (const [kind, seeds, loser] of cases) {
    const p = kind === 'child'
      ? new Pair({ seeds, alice: { dpd }, bob: { dpd } })
      : new Pair({ seeds, alice: { dpd, ike: ikeConfig }, bob: { dpd, ike: ikeConfig }, aliceChildren: [child(long)], bobChildren: [child(long, 'bob')] });
    await p.connect();
    const lost = watchLoss(p);
    p.net.fate = (x) => (x.exchange === ExchangeType.CREATE_CHILD_SA && x.response && x.to.address === loser ? 'hold' : 'deliver');
    await p.advance(HOUR);
    assert.equal(p.net.held.length, 1, `${kind} ${seeds.join(',')}: the answer to the loser is held`);
    p.net.fate = () => 'deliver';
    p.net.releaseHeld();
    await p.advance(300_000);
    const at = `${kind} collision, seeds ${seeds.join(',')}`;
    assert.equal(p.alice.kernel.installed.size, 1, `${at}: alice holds one Child SA`);
    assert.ok(mirrored(p.alice.kernel, p.bob.kernel), `${at}: mirrored`);
    assert.deepEqual([...p.alice.kernel.removedPolicies, ...p.bob.kernel.removedPolicies], [], `${at}: no policy removed`);
    assert.deepEqual([p.alice.checkpoints.data.size, p.bob.checkpoints.data.size], [1, 1], `${at}: one IKE SA on each side`);
    assert.deepEqual(lost, [], `${at}: neither side sent on a Child SA the other could not receive`);
  }
});
