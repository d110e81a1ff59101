// Make-before-break reauthentication (RFC 7296 §2.8.3; strongSwan's `make_before_break = yes`),
// started by IkeEngine.rekey(name, { reauth: true }) (src/ike/sa/reauth.ts):
//
//   new IKE SA:  IKE_SA_INIT; IKE_AUTH {IDi, CERT, AUTH, SA, TSi, TSr} (no INITIAL_CONTACT) -->
//                CREATE_CHILD_SA {SA, Ni, TSi, TSr} for the second child config            -->
//   old IKE SA:  INFORMATIONAL {D(IKE)}                                                     -->
//
// Every scenario from each role of the original IKE SA, and with either side reauthenticating:
// the old SAs carry traffic until the new ones are installed, the kernel policies never leave
// (the new Child SAs share the reqids), the old inbound SAs linger for the delete delay, and the
// responder keeps both IKE SAs until the Delete (§2.4: only INITIAL_CONTACT drops the others; the
// duplicate rule of a simultaneous start must not take a reauthentication for one).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createPublicKey } from 'node:crypto';
import type { KipsecError } from '../../../../src/common/errors.js';
import { ExchangeType } from '../../../../src/ike/constants.js';
import { decodeMessage } from '../../../../src/ike/codec/message.js';
import type { ChildConfig, PeerConfig, PeerPins } from '../../../../src/ike/engine.js';
import type { IkeEvent, KernelChildSa } from '../../../../src/ike/ports.js';
import { identityFromString } from '../../../../src/ike/sa/identity.js';
import { buildCert, dn } from '../crypto/cert-builder.js';
import { ALICE, BOB, child, HOUR, mirrored, Pair, pki, type Side } from './harness.js';

type Who = 'alice' | 'bob';
const other = (w: Who): Who => (w === 'alice' ? 'bob' : 'alice');
const peerOf = (w: Who): string => `to-${other(w)}`;
const START = Date.UTC(2026, 10, 27, 12); // the Pair clock's start

const LONG = { rekeyTimeMs: 3 * HOUR, lifeTimeMs: 4 * HOUR };
/** Two child configs: the first comes with IKE_AUTH, the second by CREATE_CHILD_SA. */
function children(who: Who): ChildConfig[] {
  const dns = who === 'alice' ? { localTs: ['10.1.53.0/24'], remoteTs: ['10.2.53.0/24'] } : { localTs: ['10.2.53.0/24'], remoteTs: ['10.1.53.0/24'] };
  return [child(LONG, who), child({ ...LONG, name: 'dns', ...dns }, who)];
}

/** `who`'s certificate issued again: new serial and validity, the same key pair (a renewal). */
function renewedCert(who: Who): Uint8Array {
  const k = pki(START);
  return buildCert({
    subject: dn(`${who}.example`), issuer: dn('kipsec pair CA'), publicKey: createPublicKey(k[who].key), signingKey: k.caKey,
    notBeforeMs: START - HOUR, notAfterMs: START + 90 * 86_400_000, serial: who === 'alice' ? 71 : 72, keyUsage: [0], dns: [`${who}.example`],
  });
}
const certPin = (der: Uint8Array): string => createHash('sha256').update(der).digest('hex');

/** The full config the harness would build for `who`, with certificate auth (and pins on the peer). */
function config(who: Who, o: { cert?: Uint8Array; pins?: PeerPins; startAction?: PeerConfig['startAction'] } = {}): PeerConfig {
  const k = pki(START);
  return {
    name: peerOf(who),
    local: { address: who === 'alice' ? ALICE : BOB, id: identityFromString(`${who}.example`) },
    remote: { address: who === 'alice' ? BOB : ALICE, id: identityFromString(`${other(who)}.example`) },
    auth: { method: 'certificate', certificate: o.cert ?? k[who].cert, privateKey: k[who].key, cas: [k.ca], ...(o.pins ? { peerPins: o.pins } : {}) },
    ike: { proposals: ['aes256gcm16-prfsha256-x25519'], rekeyTimeMs: 4 * HOUR },
    children: children(who),
    dpd: { intervalMs: 30_000, action: 'restart' },
    startAction: o.startAction ?? (who === 'alice' ? 'initiate' : 'respond'),
  };
}

/**
 * A certificate pair where `verifier` accepts only the certificate of the other side it pins:
 * first the original one; pinRenewed() then switches the pin to the renewed certificate, so a
 * new IKE SA comes up only if the other side presents its renewed certificate.
 */
function certPair(): Pair {
  const k = pki(START);
  return new Pair({ auth: 'cert', alice: config('alice', { pins: { certSha256: [certPin(k.bob.cert)] } }), bob: config('bob', { pins: { certSha256: [certPin(k.alice.cert)] } }) });
}
/** `who` renews its certificate, and its peer pins the renewed one only. Both keep their SAs up. */
function renew(p: Pair, who: Who): void {
  const renewed = renewedCert(who);
  p[who].engine.addPeer(config(who, { cert: renewed, pins: { certSha256: [certPin(pki(START)[other(who)].cert)] } }));
  p[other(who)].engine.addPeer(config(other(who), { pins: { certSha256: [certPin(renewed)] } }));
}

const of = <T extends IkeEvent['type']>(s: Side, type: T): Extract<IkeEvent, { type: T }>[] => s.events.filter((e): e is Extract<IkeEvent, { type: T }> => e.type === type);
const ike = (s: Side) => s.engine.status().peers[0]?.ike;
const hexSpi = (d: Uint8Array): string => decodeMessage(d).header.initiatorSpi.toString(16).padStart(16, '0');
const code = (c: string) => (e: unknown): boolean => (e as KipsecError).code === c;
/** Kernel operations after `from` (allocSpi and counters left out). */
const ops = (s: Side, from = 0): string[] => s.kernel.calls.slice(from).filter((c) => c.op === 'install' || c.op === 'delete' || c.op === 'update').map((c) => c.op);

async function connect(p: Pair, initiator: Who): Promise<void> {
  p[initiator].engine.initiate(peerOf(initiator));
  await p.net.pump();
  assert.equal(p.alice.kernel.installed.size, 2, 'both child configs up');
  assert.ok(mirrored(p.alice.kernel, p.bob.kernel), 'mirrored before the reauthentication');
}

for (const initiator of ['alice', 'bob'] as const) {
  for (const reauther of ['alice', 'bob'] as const) {
    const roleText = initiator === reauther ? 'original initiator' : 'original responder';
    test(`RFC 7296 §2.8.3 make-before-break reauthentication by the ${roleText} (${initiator} initiated, ${reauther} reauthenticates): new IKE SA with the renewed certificate, new Child SAs installed before the old ones go, no policy ever removed, old IKE SA deleted`, async () => {
      const p = certPair();
      await connect(p, initiator);
      const me = p[reauther]; const them = p[other(reauther)];
      const oldSpis = ike(me)!.ikeSpis;
      const oldChildren = new Set(me.kernel.installed.keys());
      const theirOld = new Set(them.kernel.installed.keys());
      renew(p, reauther);
      const mark = { me: me.kernel.calls.length, them: them.kernel.calls.length, log: p.net.log.length, meEv: me.events.length, themEv: them.events.length };

      const started = me.engine.rekey(peerOf(reauther), { reauth: true });
      assert.deepEqual({ ike: started.ike, reauth: started.reauth, ikeSpis: started.ikeSpis }, { ike: true, reauth: true, ikeSpis: oldSpis });
      assert.deepEqual(started.children.map((c) => c.inboundSpi).sort(), [...oldChildren].sort());
      assert.throws(() => me.engine.rekey(peerOf(reauther), { reauth: true }), code('ERR_IKE_REKEY_IN_PROGRESS'), 'one reauthentication at a time');
      await p.net.pump();

      // The wire: a whole new IKE SA from the reauthenticating side, then the Delete on the old one.
      const wire = p.net.log.slice(mark.log).filter((x) => !x.response);
      assert.deepEqual(wire.map((x) => [x.exchange, x.from.address]), [
        [ExchangeType.IKE_SA_INIT, me === p.alice ? ALICE : BOB], [ExchangeType.IKE_AUTH, me === p.alice ? ALICE : BOB],
        [ExchangeType.CREATE_CHILD_SA, me === p.alice ? ALICE : BOB], [ExchangeType.INFORMATIONAL, me === p.alice ? ALICE : BOB],
      ]);
      assert.equal(hexSpi(wire[3]!.datagram), oldSpis.slice(0, 16), 'the Delete goes on the old IKE SA');
      assert.notEqual(hexSpi(wire[0]!.datagram), oldSpis.slice(0, 16));

      // One IKE SA on both sides now, the new one, authenticated with the renewed certificate
      // (the peer pins only that one).
      const fresh = ike(me)!;
      assert.notEqual(fresh.ikeSpis, oldSpis);
      assert.equal(fresh.role, 'initiator');
      assert.equal(ike(them)!.ikeSpis, fresh.ikeSpis);
      assert.equal(ike(them)!.role, 'responder');
      assert.deepEqual(fresh.children.map((c) => [c.name, c.state]).sort(), [['dns', 'installed'], ['net', 'installed']]);

      for (const [s, from, before] of [[me, mark.me, oldChildren], [them, mark.them, theirOld]] as const) {
        // Kernel: both new Child SAs installed before the first old one is deleted; the deletes
        // keep the policies (the new SAs use them) and come after the delete delay.
        // The responder installs them receive-only and sends on them from the old IKE SA's Delete:
        // before the initiator has processed the answer it has no inbound state for them.
        const responder = s === them;
        assert.deepEqual(ops(s, from), responder ? ['install', 'install', 'update', 'update'] : ['install', 'install'], `${s.name}: new Child SAs in, the old ones still there`);
        assert.equal(s.kernel.installed.size, 4, `${s.name}: old inbound SAs linger`);
        assert.deepEqual(s.kernel.removedPolicies, [], `${s.name}: no policy removed`);
        const installs = s.kernel.calls.slice(from).filter((c) => c.op === 'install').map((c) => c.arg as KernelChildSa);
        assert.deepEqual(installs.map((i) => i.outboundActive), responder ? [false, false] : [true, true]);
        if (responder) assert.deepEqual(s.kernel.calls.slice(from).filter((c) => c.op === 'update').map((c) => (c.arg as { update: { activateOutbound?: boolean } }).update.activateOutbound), [true, true], `${s.name}: outbound switched on at the Delete`);
        assert.deepEqual(new Set(installs.map((i) => i.reqid)), new Set([...s.kernel.installed.values()].filter((x) => before.has(x.inbound.spi)).map((x) => x.reqid)), `${s.name}: the same reqids as the old Child SAs`);
      }
      await p.advance(5_000);
      for (const [s, from, before] of [[me, mark.me, oldChildren], [them, mark.them, theirOld]] as const) {
        assert.deepEqual(ops(s, from), s === them ? ['install', 'install', 'update', 'update', 'delete', 'delete'] : ['install', 'install', 'delete', 'delete'], `${s.name}: the old Child SAs went after the delay`);
        const dels = s.kernel.calls.slice(from).filter((c) => c.op === 'delete').map((c) => c.arg as { ref: { inboundSpi: number }; opts: { keepPolicies: boolean } });
        assert.deepEqual(dels.map((d) => d.opts.keepPolicies), [true, true], `${s.name}: policies kept`);
        assert.deepEqual(new Set(dels.map((d) => d.ref.inboundSpi)), before);
        assert.equal(s.kernel.installed.size, 2);
        assert.deepEqual(s.kernel.removedPolicies, []);
      }
      assert.ok(mirrored(p.alice.kernel, p.bob.kernel), 'mirrored after');

      // Events: ike-up and child-ups for the new SAs; child-downs and ike-down `reauthenticated` for the old.
      for (const [s, n] of [[me, mark.meEv], [them, mark.themEv]] as const) {
        const ev = s.events.slice(n);
        assert.deepEqual(ev.filter((e) => e.type === 'ike-up').map((e) => e.type === 'ike-up' && e.ikeSpis), [fresh.ikeSpis], `${s.name}: ike-up for the new SA`);
        assert.equal(ev.filter((e) => e.type === 'child-up').length, 2);
        assert.deepEqual(ev.filter((e) => e.type === 'child-down').map((e) => e.type === 'child-down' && e.reason), ['reauthenticated', 'reauthenticated']);
        assert.deepEqual(ev.filter((e) => e.type === 'ike-down').map((e) => e.type === 'ike-down' && [e.ikeSpis, e.reason]), [[oldSpis, 'reauthenticated']], `${s.name}: the old SA went as reauthenticated`);
        assert.deepEqual(ev.filter((e) => e.type === 'error'), []);
        // The ike-down of the old SA follows every child-up of the new ones (make before break).
        const lastUp = ev.map((e) => e.type).lastIndexOf('child-up');
        assert.ok(lastUp < ev.findIndex((e) => e.type === 'ike-down'), `${s.name}: new Child SAs up before the old IKE SA went`);
        assert.equal(s.checkpoints.data.size, 1, `${s.name}: one checkpoint again, the new SA's`);
      }

      // The new SA lives on: rekeys and DPD run on it, nothing else goes down.
      await p.advance(LONG.rekeyTimeMs + 60_000);
      assert.ok(mirrored(p.alice.kernel, p.bob.kernel), 'mirrored after the next rekeys');
      assert.equal(p.alice.kernel.installed.size, 2);
      for (const s of [me, them]) assert.equal(of(s, 'ike-down').length, 1, `${s.name}: only the old SA went down`);
    });
  }
}

test('RFC 7296 §2.8.3: during the overlap both IKE SAs are up and checkpointed on both sides; the responder keeps the old one (no INITIAL_CONTACT, §2.4), its old Child SAs still carry traffic', async () => {
  const p = certPair();
  await connect(p, 'alice');
  const oldSpis = ike(p.alice)!.ikeSpis;
  const old = new Set(p.bob.kernel.installed.keys());
  // Hold the second child's CREATE_CHILD_SA: the reauthentication stops half-way.
  p.net.fate = (x) => (x.exchange === ExchangeType.CREATE_CHILD_SA ? 'hold' : 'deliver');
  p.alice.engine.rekey('to-bob', { reauth: true });
  await p.net.pump();
  for (const s of [p.alice, p.bob]) {
    assert.equal(s.checkpoints.data.size, 2, `${s.name}: both IKE SAs checkpointed`);
    assert.equal(s.kernel.installed.size, 3, `${s.name}: both old Child SAs and the new first one`);
    assert.ok([...old].every((spi) => p.bob.kernel.installed.has(spi)), 'old Child SAs untouched');
    assert.deepEqual(of(s, 'ike-down'), [], `${s.name}: nothing went down`);
    assert.notEqual(ike(s)!.ikeSpis, oldSpis, `${s.name}: status shows the new SA`);
  }
  // The responder installed the new Child SA receive-only; with no Delete and no ESP on it yet it
  // starts sending on it after REAUTH_OUTBOUND_HOLD_MS (5 s), by when the initiator has long
  // installed its side.
  const activations = (): unknown[] => p.bob.kernel.calls.filter((c) => c.op === 'update' && (c.arg as { update: { activateOutbound?: boolean } }).update.activateOutbound === true);
  assert.deepEqual(activations(), [], 'bob does not send on the new Child SA yet');
  await p.advance(4_500);
  assert.deepEqual(activations(), [], 'not before 5 s');
  // Nothing else moves until the held request arrives: the responder waits for the initiator's Delete.
  await p.advance(15_500);
  assert.equal(activations().length, 1, 'bob sends on the new Child SA after 5 s without a Delete');
  assert.equal(p.bob.checkpoints.data.size, 2);
  p.net.fate = () => 'deliver';
  p.net.releaseHeld();
  await p.net.pump();
  await p.advance(5_000);
  for (const s of [p.alice, p.bob]) {
    assert.equal(s.kernel.installed.size, 2);
    assert.deepEqual(s.kernel.removedPolicies, []);
    assert.equal(s.checkpoints.data.size, 1);
    assert.deepEqual(of(s, 'ike-down').map((e) => [e.ikeSpis, e.reason]), [[oldSpis, 'reauthenticated']]);
  }
  assert.ok(mirrored(p.alice.kernel, p.bob.kernel));
});

/**
 * Alice reauthenticates and her second child's CREATE_CHILD_SA is held, so no Delete of the old IKE
 * SA comes to end bob's hold of the new first Child SA; `activations` are bob's outbound switches.
 */
async function heldReauth(): Promise<{ p: Pair; activations: () => unknown[] }> {
  const p = certPair();
  await connect(p, 'alice');
  p.net.fate = (x) => (x.exchange === ExchangeType.CREATE_CHILD_SA ? 'hold' : 'deliver');
  p.alice.engine.rekey('to-bob', { reauth: true });
  await p.net.pump();
  const activations = (): unknown[] => p.bob.kernel.calls.filter((c) => c.op === 'update' && (c.arg as { update: { activateOutbound?: boolean } }).update.activateOutbound === true);
  return { p, activations };
}

test('a responder restarted while it holds the new Child SA receive-only starts sending on it after REAUTH_OUTBOUND_HOLD_MS all the same: the hold is re-armed from the checkpoint (RFC 7296 §2.8.3)', async () => {
  const { p, activations } = await heldReauth();
  assert.deepEqual(activations(), [], 'bob holds the new Child SA receive-only');
  const results = await p.restart('bob');
  assert.deepEqual(results.map((r) => r.outcome), ['resumed', 'resumed']);
  await p.advance(4_500);
  assert.deepEqual(activations(), [], 'not before the hold');
  await p.advance(1_000);
  assert.equal(activations().length, 1, 'the restarted responder sends on the new Child SA');
  p.net.fate = () => 'deliver';
  p.net.releaseHeld();
  await p.net.pump();
  await p.advance(5_000);
  for (const s of [p.alice, p.bob]) assert.equal(s.kernel.installed.size, 2, `${s.name}: the new Child SAs only`);
  assert.ok(mirrored(p.alice.kernel, p.bob.kernel));
});

test('the responder of a reauthentication sends on the new Child SA as soon as ESP arrives on it, without waiting for the Delete or the hold: the initiator has installed it (RFC 7296 §2.8.3)', async () => {
  const { p, activations } = await heldReauth();
  await p.advance(1_000);
  assert.deepEqual(activations(), [], 'held: no Delete, no ESP on it yet');
  p.bob.kernel.counters = { ...p.bob.kernel.counters, inboundPackets: 3n, inboundBytes: 360n };
  await p.advance(200);
  assert.equal(activations().length, 1, 'alice sends on it, so she has it: bob sends on it too');
});

test('a restart in the overlap resumes both IKE SAs from their checkpoints and the reauthentication completes (checkpoint.ts reauth link)', async () => {
  const p = certPair();
  await connect(p, 'alice');
  const oldSpis = ike(p.alice)!.ikeSpis;
  p.net.fate = (x) => (x.exchange === ExchangeType.CREATE_CHILD_SA ? 'drop' : 'deliver');
  p.alice.engine.rekey('to-bob', { reauth: true });
  await p.net.pump();
  const results = await p.restart('alice');
  assert.deepEqual(results.map((r) => r.outcome), ['resumed', 'resumed']);
  p.net.fate = () => 'deliver';
  await p.advance(60_000); // the CREATE_CHILD_SA is retransmitted by the resumed SA
  await p.advance(5_000);
  for (const s of [p.alice, p.bob]) {
    assert.equal(s.kernel.installed.size, 2, `${s.name}: the new Child SAs only`);
    assert.deepEqual(s.kernel.removedPolicies, []);
    assert.equal(s.checkpoints.data.size, 1);
  }
  assert.deepEqual(of(p.bob, 'ike-down').map((e) => [e.ikeSpis, e.reason]), [[oldSpis, 'reauthenticated']]);
  assert.notEqual(ike(p.alice)!.ikeSpis, oldSpis);
  assert.equal(ike(p.bob)!.ikeSpis, ike(p.alice)!.ikeSpis);
  assert.ok(mirrored(p.alice.kernel, p.bob.kernel));
});

for (const reauther of ['alice', 'bob'] as const) {
  test(`a reauthentication whose new IKE SA fails (the peer pins the renewed certificate, ${reauther} still presents the old one) leaves the old IKE SA and its Child SAs as they were, with an error event (RFC 7296 §2.21.2)`, async () => {
    const p = certPair();
    await connect(p, 'alice');
    const me = p[reauther]; const them = p[other(reauther)];
    const oldSpis = ike(me)!.ikeSpis;
    // The peer now wants the renewed certificate; ours is not renewed.
    them.engine.addPeer(config(other(reauther), { pins: { certSha256: [certPin(renewedCert(reauther))] } }));
    const mark = { me: me.kernel.calls.length, them: them.kernel.calls.length };
    const installed = [...me.kernel.installed.keys()];
    me.engine.rekey(peerOf(reauther), { reauth: true });
    await p.net.pump();
    await p.advance(60_000);
    assert.equal(of(me, 'error').at(-1)?.error.code, 'ERR_IKE_AUTH_FAILED', 'the failure is reported');
    assert.equal(of(them, 'error').at(-1)?.error.code, 'ERR_IKE_CERT_PIN_MISMATCH');
    for (const s of [me, them]) {
      assert.equal(ike(s)!.ikeSpis, oldSpis, `${s.name}: the old IKE SA is the one up`);
      assert.deepEqual(ike(s)!.children.map((c) => c.state), ['installed', 'installed'], `${s.name}: its children carry on`);
      assert.deepEqual(ops(s, s === me ? mark.me : mark.them), [], `${s.name}: no kernel change`);
      assert.deepEqual(of(s, 'child-down'), []);
      assert.equal(s.checkpoints.data.size, 1);
    }
    assert.deepEqual(of(me, 'ike-down').map((e) => e.reason), ['negotiation-failed'], 'only the new SA went down');
    assert.deepEqual([...me.kernel.installed.keys()], installed);
    // The old SA still works: a Child SA rekey on it, and another reauthentication may start.
    me.engine.rekey(peerOf(reauther));
    await p.net.pump();
    await p.advance(5_000);
    assert.ok(mirrored(p.alice.kernel, p.bob.kernel));
    assert.equal(of(me, 'child-rekeyed').length, 2);
    assert.doesNotThrow(() => me.engine.rekey(peerOf(reauther), { reauth: true }));
  });
}

test('a new IKE SA that dies after IKE_AUTH (its CREATE_CHILD_SA is never answered) hands the old SA\'s superseded Child SA back on both sides: the old SA stays and its Child SAs rekey at their time', async () => {
  const p = certPair();
  await connect(p, 'alice');
  const oldSpis = ike(p.alice)!.ikeSpis;
  // Every CREATE_CHILD_SA request alice sends on another IKE SA than the old one is lost.
  p.net.fate = (x) => (x.exchange === ExchangeType.CREATE_CHILD_SA && !x.response && x.from.address === ALICE && hexSpi(x.datagram) !== oldSpis.slice(0, 16) ? 'drop' : 'deliver');
  p.alice.engine.rekey('to-bob', { reauth: true });
  await p.net.pump();
  const newSpis = ike(p.alice)!.ikeSpis.slice(0, 16);
  assert.notEqual(newSpis, oldSpis.slice(0, 16));
  assert.deepEqual(ike(p.alice)!.children.map((c) => c.name), ['net'], 'the first child came with IKE_AUTH, the second is not answered');
  await p.advance(200_000); // past the retransmission limit (≈165 s)
  assert.ok(of(p.alice, 'ike-down').some((e) => e.ikeSpis.startsWith(newSpis) && e.reason === 'retransmit-limit'), 'the new SA went down');
  assert.equal(ike(p.alice)!.ikeSpis, oldSpis, 'alice: the old SA is up');
  // Bob learns it from DPD on the new SA, which alice no longer has.
  await p.advance(400_000);
  assert.ok(of(p.bob, 'ike-down').some((e) => e.ikeSpis.startsWith(newSpis) && e.reason === 'dpd-timeout'), 'bob: the new SA went down');
  for (const s of [p.alice, p.bob]) {
    assert.equal(ike(s)!.ikeSpis, oldSpis, `${s.name}: the old SA is up`);
    assert.deepEqual(ike(s)!.children.map((c) => c.state), ['installed', 'installed'], `${s.name}: its Child SAs are installed again, not superseded`);
    assert.deepEqual(s.kernel.removedPolicies, [], `${s.name}: the new SA's Child SA went without taking the policies`);
  }
  assert.ok(mirrored(p.alice.kernel, p.bob.kernel), 'only the old Child SAs are left, on both sides');
  p.net.fate = () => 'deliver';
  await p.advance(LONG.rekeyTimeMs);
  assert.ok(of(p.alice, 'child-rekeyed').length >= 2, 'the old SA\'s Child SAs were rekeyed');
  assert.ok(mirrored(p.alice.kernel, p.bob.kernel));
});
