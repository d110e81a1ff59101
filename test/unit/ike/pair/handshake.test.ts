// IKE_SA_INIT + IKE_AUTH between two in-process engines (RFC 7296 §1.2), from both roles, with
// PSK and ECDSA certificates, and the negotiation failures users must see explained:
// NO_PROPOSAL_CHOSEN with both lists, AUTHENTICATION_FAILED, TS_UNACCEPTABLE, INVALID_KE_PAYLOAD.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ExchangeType, NotifyError } from '../../../../src/ike/constants.js';
import { decodeMessage } from '../../../../src/ike/codec/message.js';
import type { IkeEvent, IkeFailure } from '../../../../src/ike/ports.js';
import { ALICE, BOB, child, mirrored, Pair, pki } from './harness.js';
import { X509Certificate } from 'node:crypto';
import { sha1 } from '@noble/hashes/legacy.js';

function errors(events: readonly IkeEvent[]): IkeFailure[] {
  return events.flatMap((e) => (e.type === 'error' ? [e.error] : []));
}

test('PSK + X25519: IKE_SA_INIT and IKE_AUTH bring up the IKE SA and the first Child SA on both sides (RFC 7296 §1.2)', async () => {
  const p = new Pair();
  await p.connect();
  for (const s of [p.alice, p.bob]) {
    assert.deepEqual(s.events.map((e) => e.type), ['ike-up', 'child-up']);
    const st = s.engine.status().peers[0]!;
    assert.equal(st.ike?.state, 'established');
    assert.equal(st.ike?.suite, 'aes256gcm16-prfsha256-x25519');
    assert.equal(st.ike?.children.length, 1);
    assert.equal(st.ike?.children[0]?.suite, 'aes256gcm16');
  }
  assert.equal(p.alice.engine.status().peers[0]?.ike?.role, 'initiator');
  assert.equal(p.bob.engine.status().peers[0]?.ike?.remoteId, 'alice.example');
  assert.ok(mirrored(p.alice.kernel, p.bob.kernel), 'inbound SPI/key of one side is the outbound of the other');
  const sa = [...p.alice.kernel.installed.values()][0]!;
  assert.equal(sa.inbound.algorithms.kind, 'aead');
  assert.equal(sa.inbound.algorithms.kind === 'aead' && sa.inbound.algorithms.name, 'rfc4106(gcm(aes))');
  assert.equal(sa.inbound.algorithms.kind === 'aead' && sa.inbound.algorithms.key.length, 36, 'AES-256 key + 4-byte salt (RFC 4106 §8.1)');
  assert.equal(sa.mode, 'tunnel');
  assert.deepEqual(sa.policies.map((x) => x.direction), ['out', 'in', 'fwd']);
  assert.equal(sa.policies[0]?.source.startAddress, '10.1.0.0');
  assert.equal(sa.policies[0]?.source.prefixLength, 16);
  assert.equal(sa.inbound.encap, null, 'no NAT between the two');
  // Exactly four messages: IKE_SA_INIT and IKE_AUTH request/response.
  assert.deepEqual(p.net.log.map((x) => [x.exchange, x.response]), [[34, false], [34, true], [35, false], [35, true]]);
});

test('the responder role works the same when bob initiates (every scenario from both roles)', async () => {
  const p = new Pair();
  p.bob.engine.initiate('to-alice');
  await p.net.pump();
  assert.deepEqual(p.alice.events.map((e) => e.type), ['ike-up', 'child-up']);
  assert.deepEqual(p.bob.events.map((e) => e.type), ['ike-up', 'child-up']);
  assert.equal(p.alice.engine.status().peers[0]?.ike?.role, 'responder');
  assert.ok(mirrored(p.alice.kernel, p.bob.kernel), 'mirrored(p.alice.kernel, p.bob.kernel)');
});

test('ECDSA P-256 certificates with RFC 7427 signatures authenticate both sides (RFC 7296 §2.15, RFC 7427 §3)', async () => {
  const p = new Pair({ auth: 'cert' });
  await p.connect();
  assert.deepEqual(p.alice.events.map((e) => e.type), ['ike-up', 'child-up']);
  assert.deepEqual(p.bob.events.map((e) => e.type), ['ike-up', 'child-up']);
  const auth = p.net.log.filter((x) => x.exchange === ExchangeType.IKE_AUTH);
  assert.equal(auth.length, 2);
  assert.ok(mirrored(p.alice.kernel, p.bob.kernel), 'mirrored(p.alice.kernel, p.bob.kernel)');
});

test('a certificate responder\'s IKE_SA_INIT response carries CERTREQ with its trust anchor\'s SHA-1 SPKI hash, not an empty field (RFC 7296 §3.7)', async () => {
  const p = new Pair({ auth: 'cert' });
  await p.connect();
  const resp = p.net.log.find((x) => x.exchange === ExchangeType.IKE_SA_INIT && x.response);
  const certreq = resp && decodeMessage(resp.datagram).first('certreq');
  assert.ok(certreq, 'IKE_SA_INIT response has a CERTREQ');
  const spki = new X509Certificate(pki(p.clock.now()).ca).publicKey.export({ type: 'spki', format: 'der' });
  assert.deepEqual(certreq.authorities, sha1(new Uint8Array(spki)));
  // A PSK responder asks for no certificate.
  const q = new Pair();
  await q.connect();
  const psk = q.net.log.find((x) => x.exchange === ExchangeType.IKE_SA_INIT && x.response);
  assert.equal(psk && decodeMessage(psk.datagram).first('certreq'), undefined);
});

test('a certificate from an untrusted CA fails with AUTHENTICATION_FAILED on the responder, reported on both sides (RFC 7296 §2.21.2)', async () => {
  const p = new Pair({ auth: 'cert' });
  // Bob trusts only itself (its own cert as "CA" is not a CA): alice's chain does not validate.
  const bobCfg = p.bob.engine.status();
  assert.ok(bobCfg, 'bobCfg');
  const { pki } = await import('./harness.js');
  const k = pki(p.clock.now());
  p.bob.engine.addPeer({
    name: 'to-alice', local: { address: BOB, id: { type: 'fqdn', value: 'bob.example' } }, remote: { address: ALICE, id: { type: 'fqdn', value: 'alice.example' } },
    auth: { method: 'certificate', certificate: k.bob.cert, privateKey: k.bob.key, cas: [k.bob.cert] },
    ike: { proposals: ['aes256gcm16-prfsha256-x25519'], rekeyTimeMs: 4 * 3_600_000 }, children: [child({}, 'bob')],
    dpd: { intervalMs: 30_000, action: 'restart' }, startAction: 'respond',
  });
  await p.connect();
  const bobErr = errors(p.bob.events)[0];
  assert.equal(bobErr?.notify, 'AUTHENTICATION_FAILED');
  assert.equal(bobErr?.origin, 'local');
  const aliceErr = errors(p.alice.events)[0];
  assert.equal(aliceErr?.notify, 'AUTHENTICATION_FAILED');
  assert.equal(aliceErr?.origin, 'remote');
  assert.equal(p.alice.kernel.installed.size + p.bob.kernel.installed.size, 0);
});

test('a wrong PSK fails with AUTHENTICATION_FAILED; nothing is installed and the status keeps the error (RFC 7296 §2.15)', async () => {
  const p = new Pair({ bobPsk: 'not the same secret' });
  await p.connect();
  const bobErr = errors(p.bob.events)[0]!;
  assert.equal(bobErr.code, 'ERR_IKE_AUTHENTICATION_FAILED');
  assert.equal(bobErr.notify, 'AUTHENTICATION_FAILED');
  const aliceErr = errors(p.alice.events)[0]!;
  assert.equal(aliceErr.code, 'ERR_IKE_AUTH_FAILED');
  assert.equal(aliceErr.notify, 'AUTHENTICATION_FAILED');
  // A bare AUTHENTICATION_FAILED may also mean the peer has no config for our identities: named.
  assert.match(aliceErr.message, /wrong pre-shared key, a certificate it does not trust, or no config on the peer for the identities we sent \(IDi [^,]+, IDr [^)]+\)/);
  assert.ok(p.alice.events.some((e) => e.type === 'ike-down' && e.reason === 'negotiation-failed'), 'p.alice.events.some((e) => e.type === "ike-down" && e.reason === "negotiation-failed")');
  assert.equal(p.alice.kernel.ops('install').length, 0);
  assert.equal(p.bob.kernel.ops('install').length, 0);
  assert.equal(p.alice.engine.status().peers[0]?.lastError?.notify, 'AUTHENTICATION_FAILED');
  assert.equal(p.alice.engine.status().peers[0]?.ike, null);
  // Secrets never reach status or events.
  assert.ok(!JSON.stringify([p.alice.engine.status(), p.alice.events]).includes('correct horse'), '!JSON.stringify([p.alice.engine.status(), p.alice.events]).includes("correct horse")');
});

test('NO_PROPOSAL_CHOSEN for IKE carries both proposal lists on the responder and ours on the initiator (RFC 7296 §2.7)', async () => {
  const p = new Pair({ ike: ['aes256gcm16-prfsha256-x25519'], bobIke: ['aes128-sha256-modp2048'] });
  await p.connect();
  const b = errors(p.bob.events)[0]!;
  assert.equal(b.notify, 'NO_PROPOSAL_CHOSEN');
  assert.equal(b.exchange, 'IKE_SA_INIT');
  assert.deepEqual(b.proposals?.local, ['aes128-sha256-prfsha256-modp2048']);
  assert.equal(b.proposals?.remote?.length, 1);
  assert.deepEqual(b.proposals?.remote, ['IKE:aes256gcm16-prfsha256-x25519']);
  const a = errors(p.alice.events)[0]!;
  assert.equal(a.notify, 'NO_PROPOSAL_CHOSEN');
  assert.equal(a.origin, 'remote');
  assert.deepEqual(a.proposals?.local, ['aes256gcm16-prfsha256-x25519']);
  assert.equal(p.bob.engine.status().halfOpen, 0, 'no state kept for a refused IKE_SA_INIT');
});

test('NO_PROPOSAL_CHOSEN for ESP in IKE_AUTH keeps the IKE SA up without a child and reports both ESP lists (RFC 7296 §1.2, §2.7)', async () => {
  const p = new Pair({ bobChildren: [child({ espProposals: ['aes128-sha256'] }, 'bob')] });
  await p.connect();
  assert.deepEqual(p.alice.events.map((e) => e.type), ['ike-up', 'error']);
  const b = errors(p.bob.events)[0]!;
  assert.equal(b.notify, 'NO_PROPOSAL_CHOSEN');
  assert.equal(b.exchange, 'IKE_AUTH');
  assert.deepEqual(b.proposals?.local, ['aes128-sha256']);
  assert.equal(b.proposals?.remote?.length, 1);
  assert.equal(p.alice.kernel.installed.size, 0);
  assert.equal(p.alice.kernel.ops('releaseSpi').length, 1, 'the SPI allocated for the refused child is released');
});

test('the responder narrows traffic selectors to the intersection and the initiator installs the narrowed ones (RFC 7296 §2.9)', async () => {
  const p = new Pair({
    aliceChildren: [child({ localTs: ['10.1.0.0/16'], remoteTs: ['10.2.0.0/16'] })],
    bobChildren: [child({ localTs: ['10.2.3.0/24'], remoteTs: ['10.1.0.0/20'] }, 'bob')],
  });
  await p.connect();
  const up = p.alice.events.find((e) => e.type === 'child-up');
  assert.ok(up && up.type === 'child-up', 'up && up.type === "child-up"');
  assert.deepEqual(up.localTs, ['10.1.0.0/20']);
  assert.deepEqual(up.remoteTs, ['10.2.3.0/24']);
  const sa = [...p.alice.kernel.installed.values()][0]!;
  assert.equal(sa.policies[0]?.destination.startAddress, '10.2.3.0');
  assert.equal(sa.policies[0]?.destination.prefixLength, 24);
});

test('disjoint traffic selectors get TS_UNACCEPTABLE with both sides\' selectors in the error (RFC 7296 §2.9)', async () => {
  const p = new Pair({ bobChildren: [child({ localTs: ['172.16.0.0/12'], remoteTs: ['10.1.0.0/16'] }, 'bob')] });
  await p.connect();
  const b = errors(p.bob.events)[0]!;
  assert.equal(b.notify, 'TS_UNACCEPTABLE');
  assert.deepEqual(b.trafficSelectors, { local: ['172.16.0.0/12'], remote: ['10.1.0.0/16'] });
  const a = errors(p.alice.events)[0]!;
  assert.equal(a.notify, 'TS_UNACCEPTABLE');
  assert.deepEqual(a.trafficSelectors, { local: ['10.1.0.0/16'], remote: ['10.2.0.0/16'] });
  assert.equal(p.alice.engine.status().peers[0]?.ike?.state, 'established');
});

test('USE_TRANSPORT_MODE negotiates transport mode on both sides (RFC 7296 §1.3.1)', async () => {
  const t = { mode: 'transport' as const, localTs: [ALICE], remoteTs: [BOB] };
  const p = new Pair({ aliceChildren: [child(t)], bobChildren: [child({ ...t, localTs: [BOB], remoteTs: [ALICE] }, 'bob')] });
  await p.connect();
  for (const k of [p.alice.kernel, p.bob.kernel]) {
    const sa = [...k.installed.values()][0]!;
    assert.equal(sa.mode, 'transport');
    assert.deepEqual(sa.policies.map((x) => x.direction), ['out', 'in'], 'no fwd policy in transport mode');
  }
});

test('transport mode asked of a tunnel-mode responder falls back to tunnel, which the initiator refuses (RFC 7296 §1.3.1)', async () => {
  const p = new Pair({ aliceChildren: [child({ mode: 'transport' })] });
  await p.connect();
  const a = errors(p.alice.events)[0]!;
  assert.equal(a.code, 'ERR_IKE_MODE_MISMATCH');
  assert.equal(p.alice.kernel.installed.size, 0);
});

test('INVALID_KE_PAYLOAD makes the initiator retry IKE_SA_INIT with the group the responder wants (RFC 7296 §1.3)', async () => {
  const p = new Pair({ ike: ['aes256gcm16-prfsha256-x25519-ecp256'], bobIke: ['aes256gcm16-prfsha256-ecp256'] });
  await p.connect();
  const init = p.net.log.filter((x) => x.exchange === ExchangeType.IKE_SA_INIT);
  assert.equal(init.length, 4, 'request, INVALID_KE_PAYLOAD, retried request, response');
  const refusal = decodeMessage(init[1]!.datagram);
  assert.ok(refusal.has(NotifyError.INVALID_KE_PAYLOAD), 'refusal.has(NotifyError.INVALID_KE_PAYLOAD)');
  assert.equal(decodeMessage(init[2]!.datagram).first('ke')?.group, 19);
  assert.equal(p.alice.engine.status().peers[0]?.ike?.suite, 'aes256gcm16-prfsha256-ecp256');
  assert.ok(mirrored(p.alice.kernel, p.bob.kernel), 'mirrored(p.alice.kernel, p.bob.kernel)');
  assert.equal(p.bob.engine.status().drops['invalid-ke'], 1);
});

test('INVALID_KE_PAYLOAD retry works with bob as initiator too (RFC 7296 §1.3, both roles)', async () => {
  const p = new Pair({ ike: ['aes256gcm16-prfsha256-ecp256'], bobIke: ['aes256gcm16-prfsha256-x25519-ecp256'] });
  p.bob.engine.initiate('to-alice');
  await p.net.pump();
  const init = p.net.log.filter((x) => x.exchange === ExchangeType.IKE_SA_INIT);
  assert.equal(init.length, 4);
  assert.equal(p.alice.engine.status().drops['invalid-ke'], 1);
  assert.equal(p.bob.engine.status().peers[0]?.ike?.suite, 'aes256gcm16-prfsha256-ecp256');
  assert.ok(mirrored(p.alice.kernel, p.bob.kernel), 'mirrored(p.alice.kernel, p.bob.kernel)');
});

test('NAT-T forced (natTraversal: always) moves IKE to port 4500 and installs UDP-encapsulated SAs (RFC 7296 §2.23, RFC 3948)', async () => {
  const p = new Pair({ alice: { natTraversal: 'always' } });
  await p.connect();
  const auth = p.net.log.filter((x) => x.exchange === ExchangeType.IKE_AUTH);
  assert.ok(auth.every((x) => x.from.port === 4500 && x.to.port === 4500), 'auth.every((x) => x.from.port === 4500 && x.to.port === 4500)');
  for (const k of [p.alice.kernel, p.bob.kernel]) {
    const sa = [...k.installed.values()][0]!;
    assert.deepEqual(sa.outbound.encap, { sourcePort: 4500, destinationPort: 4500 });
  }
  assert.equal(p.bob.engine.status().peers[0]?.ike?.natDetected.remote, true);
  assert.equal(p.alice.engine.status().peers[0]?.ike?.natDetected.local, true);
});

test('INITIAL_CONTACT from a restarted peer replaces the responder\'s old IKE SA and children (RFC 7296 §2.4)', async () => {
  const p = new Pair();
  await p.connect();
  const before = [...p.bob.kernel.installed.keys()];
  // Alice "restarts": a new engine with the same config and no memory.
  const fresh = new Pair();
  void fresh;
  const { IkeEngine } = await import('../../../../src/ike/engine.js');
  const { SeededRandom } = await import('../../../../src/common/time.js');
  const { FakeKernel } = await import('./harness.js');
  const kernel = new FakeKernel(0xa1000001);
  const restarted = new IkeEngine({ transport: p.net.transportFor(), kernel, clock: p.clock, random: new SeededRandom(99), events: { emit: () => undefined } },
    [{ name: 'to-bob', local: { address: ALICE, id: { type: 'fqdn', value: 'alice.example' } }, remote: { address: BOB, id: { type: 'fqdn', value: 'bob.example' } },
      auth: { method: 'psk', secret: (await import('../../../../src/ike/crypto/auth.js')).pskFrom('correct horse battery staple') },
      ike: { proposals: ['aes256gcm16-prfsha256-x25519'], rekeyTimeMs: 4 * 3_600_000 }, children: [child()], dpd: { intervalMs: 30_000, action: 'restart' }, startAction: 'initiate' }], { rekeyJitterMs: 0 });
  p.net.engines.set(ALICE, restarted);
  restarted.initiate('to-bob');
  await p.net.pump();
  assert.ok(p.bob.events.some((e) => e.type === 'ike-down' && e.reason === 'replaced'), 'old IKE SA replaced');
  const after = [...p.bob.kernel.installed.keys()];
  assert.equal(after.length, 1);
  assert.notDeepEqual(after, before);
  const del = p.bob.kernel.ops('delete') as Array<{ opts: { keepPolicies: boolean } }>;
  assert.equal(del.length, 1);
});

test('status() reports SPIs, suite, times and ids but no key material', async () => {
  const p = new Pair();
  await p.connect();
  const s = p.alice.engine.status();
  const ike = s.peers[0]!.ike!;
  assert.match(ike.ikeSpis, /^[0-9a-f]{16}_i [0-9a-f]{16}_r$/);
  assert.equal(ike.establishedAtMs, p.clock.now());
  assert.equal(ike.rekeyAtMs, p.clock.now() + 4 * 3_600_000);
  assert.equal(ike.children[0]?.rekeyAtMs, p.clock.now() + 3_600_000);
  assert.ok(!/"key"|expose/.test(JSON.stringify(s)), '!/"key"|expose/.test(JSON.stringify(s))');
});

test('behind a NAPT: NAT_DETECTION_* notifies detect it, IKE floats to 4500 and the SAs get UDP encapsulation to the mapped port (RFC 7296 §2.23, RFC 3948)', async () => {
  const p = new Pair({ bob: { remote: { address: '%any', id: { type: 'fqdn', value: 'alice.example' } } } });
  p.net.nat = { inside: ALICE, outside: '203.0.113.5', ports: new Map() };
  await p.connect();
  assert.deepEqual(p.alice.events.map((e) => e.type), ['ike-up', 'child-up']);
  const a = p.alice.engine.status().peers[0]!.ike!; const b = p.bob.engine.status().peers[0]!.ike!;
  assert.deepEqual(a.natDetected, { local: true, remote: false });
  assert.deepEqual(b.natDetected, { local: false, remote: true });
  assert.deepEqual(b.remote, { address: '203.0.113.5', port: 40_001 }, 'the NAT mapping of alice:4500');
  const bobSa = [...p.bob.kernel.installed.values()][0]!;
  assert.deepEqual(bobSa.outbound.encap, { sourcePort: 4500, destinationPort: 40_001 });
  assert.equal(bobSa.outbound.destination, '203.0.113.5');
  const aliceSa = [...p.alice.kernel.installed.values()][0]!;
  assert.deepEqual(aliceSa.outbound.encap, { sourcePort: 4500, destinationPort: 4500 });
  assert.ok(mirrored(p.alice.kernel, p.bob.kernel), 'mirrored(p.alice.kernel, p.bob.kernel)');
  // DPD and rekeys keep flowing through the mapping.
  await p.advance(3_600_000 + 5_000);
  assert.ok(mirrored(p.alice.kernel, p.bob.kernel), 'mirrored(p.alice.kernel, p.bob.kernel)');
});

test('simultaneous start: both peers initiate at once, one IKE SA and one Child SA pair survive on both sides', async () => {
  const p = new Pair({ bob: { startAction: 'initiate' } });
  p.alice.engine.initiate('to-bob');
  p.bob.engine.initiate('to-alice');
  await p.net.pump();
  await p.advance(10_000);
  const a = p.alice.engine.status().peers[0]!.ike!; const b = p.bob.engine.status().peers[0]!.ike!;
  assert.equal(a.state, 'established');
  assert.equal(a.ikeSpis, b.ikeSpis, 'both kept the same IKE SA');
  assert.equal(a.role, 'initiator', 'the SA initiated by the lower address (alice) stays');
  assert.equal(p.alice.kernel.installed.size, 1);
  assert.equal(p.bob.kernel.installed.size, 1);
  assert.ok(mirrored(p.alice.kernel, p.bob.kernel), 'mirrored(p.alice.kernel, p.bob.kernel)');
  for (const k of [p.alice.kernel, p.bob.kernel]) {
    const d = k.ops('delete') as Array<{ opts: { keepPolicies: boolean } }>;
    assert.deepEqual(d.map((x) => x.opts.keepPolicies), [true], 'the duplicate child goes, its policies stay for the survivor');
  }
  // It stays that way through DPD and a rekey.
  await p.advance(3_600_000 + 10_000);
  assert.ok(mirrored(p.alice.kernel, p.bob.kernel), 'mirrored(p.alice.kernel, p.bob.kernel)');
  assert.equal(p.alice.kernel.installed.size, 1);
});

test('TS narrowing from the other role: alice as responder narrows bob\'s wide selectors (RFC 7296 §2.9, both roles)', async () => {
  const p = new Pair({
    aliceChildren: [child({ localTs: ['10.1.2.0/24'], remoteTs: ['10.2.0.0/16'] })],
    bobChildren: [child({ localTs: ['10.2.0.0/16'], remoteTs: ['10.0.0.0/8'] }, 'bob')],
  });
  p.bob.engine.initiate('to-alice');
  await p.net.pump();
  const up = p.bob.events.find((e) => e.type === 'child-up');
  assert.deepEqual(up?.type === 'child-up' ? [up.localTs, up.remoteTs] : [], [['10.2.0.0/16'], ['10.1.2.0/24']]);
  assert.ok(mirrored(p.alice.kernel, p.bob.kernel), 'mirrored');
});

test('TS_UNACCEPTABLE from the other role: bob proposes selectors alice does not allow (RFC 7296 §2.9, both roles)', async () => {
  const p = new Pair({ aliceChildren: [child({ localTs: ['172.16.0.0/12'], remoteTs: ['10.2.0.0/16'] })] });
  p.bob.engine.initiate('to-alice');
  await p.net.pump();
  const a = errors(p.alice.events)[0];
  const b = errors(p.bob.events)[0];
  assert.equal(a?.notify, 'TS_UNACCEPTABLE');
  assert.equal(b?.notify, 'TS_UNACCEPTABLE');
  assert.equal(b?.origin, 'remote');
});

test('a NAT mapping change is followed: the next request from the new port updates the SAs\' encapsulation (RFC 7296 §2.23)', async () => {
  const p = new Pair({ bob: { remote: { address: '%any', id: { type: 'fqdn', value: 'alice.example' } }, dpd: { intervalMs: 0, action: 'clear' } } });
  p.net.nat = { inside: ALICE, outside: '203.0.113.5', ports: new Map() };
  await p.connect();
  // The NAT reboots and hands out a new mapping; alice's next DPD comes from it.
  p.net.nat = { inside: ALICE, outside: '203.0.113.5', ports: new Map([[500, 40_100], [4500, 40_101]]) };
  await p.advance(30_000);
  const upd = p.bob.kernel.ops('update') as Array<{ update: { encap?: { destinationPort: number } } }>;
  assert.equal(upd.length, 1);
  assert.equal(upd[0]?.update.encap?.destinationPort, 40_101);
  assert.deepEqual(p.bob.engine.status().peers[0]?.ike?.remote, { address: '203.0.113.5', port: 40_101 });
  assert.equal(p.bob.engine.status().peers[0]?.ike?.children[0]?.ref.remote, '203.0.113.5');
});

// The kernel reports an authenticated ESP-in-UDP packet from a new port (XFRM_MSG_MAPPING); a
// peer behind a NAT that runs no DPD (strongSwan's default) sends no IKE message for an hour, so
// waiting for one would leave our outbound ESP going to a dead mapping all that time.
test('a NAT mapping change the kernel reports (validated ESP from a new port) is followed at once, without an IKE message (RFC 7296 §2.23)', async () => {
  const p = new Pair({ bob: { remote: { address: '%any', id: { type: 'fqdn', value: 'alice.example' } }, dpd: { intervalMs: 0, action: 'clear' } } });
  p.net.nat = { inside: ALICE, outside: '203.0.113.5', ports: new Map() };
  await p.connect();
  const sent = p.net.log.length;
  const saves = p.bob.checkpoints.saves;
  p.net.nat = { inside: ALICE, outside: '203.0.113.5', ports: new Map([[500, 40_100], [4500, 40_101]]) };
  const spi = [...p.bob.kernel.installed.keys()][0]!;
  p.bob.engine.natMapping(spi, { address: '203.0.113.5', port: 40_101 });
  p.bob.engine.natMapping(spi, { address: '203.0.113.5', port: 40_101 }); // the kernel reports every packet until the SA moves
  await p.bob.engine.idle();
  const upd = p.bob.kernel.ops('update') as Array<{ update: { encap?: { sourcePort: number; destinationPort: number }; remote?: string } }>;
  assert.deepEqual(upd.map((u) => [u.update.encap, u.update.remote]), [[{ sourcePort: 4500, destinationPort: 40_101 }, '203.0.113.5']], 'one kernel update, to the new port');
  assert.deepEqual(p.bob.engine.status().peers[0]?.ike?.remote, { address: '203.0.113.5', port: 40_101 });
  assert.equal(p.net.log.length, sent, 'nothing sent: the ESP packet was the proof');
  assert.ok(p.bob.checkpoints.saves > saves, 'the new endpoint is checkpointed for a restart');
  p.bob.engine.natMapping(spi, { address: '203.0.113.5', port: 40_101 });
  await p.bob.engine.idle();
  assert.equal(p.bob.kernel.ops('update').length, 1, 'a report of where the SA already points changes nothing');
  // Our next IKE request reaches alice through the new mapping: a child rekey from bob works.
  p.bob.engine.rekey('to-alice', { child: true });
  await p.net.pump();
  assert.ok(p.bob.events.some((e) => e.type === 'child-rekeyed'), 'bob\'s rekey went through the new mapping');
  assert.ok(mirrored(p.alice.kernel, p.bob.kernel), 'mirrored(p.alice.kernel, p.bob.kernel)');
});

test('a kernel mapping report is ignored when the peer is not behind a NAT, or for an SPI of no Child SA (RFC 7296 §2.23: only the side facing the NAT follows)', async () => {
  const p = new Pair({ bob: { remote: { address: '%any', id: { type: 'fqdn', value: 'alice.example' } } } });
  p.net.nat = { inside: ALICE, outside: '203.0.113.5', ports: new Map() };
  await p.connect();
  assert.deepEqual(p.alice.engine.status().peers[0]?.ike?.natDetected, { local: true, remote: false });
  // alice is the one behind the NAT; bob (not behind one) keeps his fixed port 4500 in her view.
  const spi = [...p.alice.kernel.installed.keys()][0]!;
  p.alice.engine.natMapping(spi, { address: BOB, port: 31_337 });
  p.alice.engine.natMapping(0x0bad, { address: BOB, port: 31_337 });
  await p.alice.engine.idle();
  assert.deepEqual(p.alice.kernel.ops('update'), []);
  assert.deepEqual(p.alice.engine.status().peers[0]?.ike?.remote, { address: BOB, port: 4500 });
  assert.equal(p.alice.engine.status().drops['mapping-ignored'], 1);
  assert.equal(p.alice.engine.status().drops['mapping-unknown-spi'], 1);
});
