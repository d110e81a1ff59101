// Certificate pinning on top of CA validation (PeerAuth.peerPins; src/ike/crypto/certs.ts
// checkPins): after the peer's chain validated and its identity matched (RFC 7296 §2.15,
// RFC 4945 §3.1), its end-entity certificate must match a pinned SHA-256 of its
// SubjectPublicKeyInfo or of the whole certificate (the pin forms of RFC 7469 §2.4), else
// AUTHENTICATION_FAILED (RFC 7296 §2.21.2). Every scenario from both roles.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createPublicKey, X509Certificate } from 'node:crypto';
import { ConfigError } from '../../../../src/common/errors.js';
import type { PeerConfig, PeerPins } from '../../../../src/ike/engine.js';
import type { IkeEvent, IkeFailure } from '../../../../src/ike/ports.js';
import { buildCert, dn } from '../crypto/cert-builder.js';
import { mirrored, Pair, pki } from './harness.js';

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const spkiOf = (der: Uint8Array): string => sha256(new X509Certificate(der).publicKey.export({ type: 'spki', format: 'der' }));
const certOf = (der: Uint8Array): string => sha256(der);
const WRONG = 'ab'.repeat(32);

function errors(events: readonly IkeEvent[]): IkeFailure[] {
  return events.flatMap((e) => (e.type === 'error' ? [e.error] : []));
}

/** The harness's certificate auth for `who`, with pins on the peer and optionally another certificate of ours. */
function certAuth(p: Pair, who: 'alice' | 'bob', peerPins?: PeerPins, certificate?: Uint8Array): Pick<PeerConfig, 'auth'> {
  const k = pki(p.clock.now());
  return { auth: { method: 'certificate', certificate: certificate ?? k[who].cert, privateKey: k[who].key, cas: [k.ca], ...(peerPins ? { peerPins } : {}) } };
}

function pinnedPair(pins: { alice?: PeerPins; bob?: PeerPins; bobCert?: Uint8Array }): Pair {
  const base = new Pair({ auth: 'cert' }); // only for its clock and PKI
  return new Pair({ auth: 'cert', alice: certAuth(base, 'alice', pins.alice), bob: certAuth(base, 'bob', pins.bob, pins.bobCert) });
}

/** Bob's certificate issued again: new serial and validity, the same key pair. */
function renewedBobCert(p: Pair): Uint8Array {
  const k = pki(p.clock.now());
  return buildCert({
    subject: dn('bob.example'), issuer: dn('kipsec pair CA'), publicKey: createPublicKey(k.bob.key), signingKey: k.caKey,
    notBeforeMs: p.clock.now() - 3_600_000, notAfterMs: p.clock.now() + 90 * 86_400_000, serial: 77, keyUsage: [0], dns: ['bob.example'],
  });
}

for (const initiator of ['alice', 'bob'] as const) {
  const responder = initiator === 'alice' ? 'bob' : 'alice';
  const start = async (p: Pair): Promise<void> => { p[initiator].engine.initiate(initiator === 'alice' ? 'to-bob' : 'to-alice'); await p.net.pump(); };

  test(`a peer certificate whose key matches the SPKI pin is accepted on both sides (${initiator} initiates; RFC 7296 §2.15)`, async () => {
    const k = pki(Date.UTC(2026, 10, 27, 12));
    const p = pinnedPair({ alice: { spkiSha256: [WRONG, spkiOf(k.bob.cert)] }, bob: { spkiSha256: [spkiOf(k.alice.cert)] } });
    await start(p);
    assert.deepEqual(p.alice.events.map((e) => e.type), ['ike-up', 'child-up']);
    assert.deepEqual(p.bob.events.map((e) => e.type), ['ike-up', 'child-up']);
    assert.ok(mirrored(p.alice.kernel, p.bob.kernel), 'mirrored');
  });

  test(`a certificate pin (SHA-256 of the DER certificate) is accepted as well (${initiator} initiates)`, async () => {
    const k = pki(Date.UTC(2026, 10, 27, 12));
    const p = pinnedPair({ alice: { certSha256: [certOf(k.bob.cert)] }, bob: { spkiSha256: [WRONG], certSha256: [certOf(k.alice.cert)] } });
    await start(p);
    assert.equal(p.alice.engine.status().peers[0]?.ike?.state, 'established');
    assert.equal(p.bob.engine.status().peers[0]?.ike?.state, 'established');
  });

  // The refusing side is the responder here: it checks IDi/CERT/AUTH of message 3 (§1.2).
  test(`a wrong SPKI pin on the responder (${responder}) refuses the initiator with AUTHENTICATION_FAILED naming expected and found fingerprints (RFC 7296 §2.21.2)`, async () => {
    const k = pki(Date.UTC(2026, 10, 27, 12));
    const p = pinnedPair({ [responder]: { spkiSha256: [WRONG] } });
    await start(p);
    const refused = errors(p[responder].events)[0]!;
    assert.equal(refused.code, 'ERR_IKE_CERT_PIN_MISMATCH');
    assert.equal(refused.notify, 'AUTHENTICATION_FAILED');
    assert.equal(refused.origin, 'local');
    const found = k[initiator].cert;
    assert.match(refused.message, new RegExp(`expected SPKI ${WRONG.slice(0, 16)};`));
    assert.match(refused.message, new RegExp(`found SPKI ${spkiOf(found).slice(0, 16)}, certificate ${certOf(found).slice(0, 16)}$`));
    assert.ok(!refused.message.includes(spkiOf(found).slice(0, 17)), 'fingerprints shortened to 16 hex digits');
    const told = errors(p[initiator].events)[0]!;
    assert.equal(told.notify, 'AUTHENTICATION_FAILED');
    assert.equal(told.origin, 'remote');
    assert.equal(p.alice.kernel.installed.size + p.bob.kernel.installed.size, 0);
    assert.equal(p[responder].engine.status().peers[0]?.lastError?.code, 'ERR_IKE_CERT_PIN_MISMATCH');
  });

  // The refusing side is the initiator: it checks IDr/CERT/AUTH of message 4 and tells the
  // responder, which has already installed the first Child SA and must take it out again.
  test(`a wrong SPKI pin on the initiator (${initiator}) refuses the responder's certificate, tells it, and both end with nothing installed (RFC 7296 §2.21.2)`, async () => {
    const p = pinnedPair({ [initiator]: { spkiSha256: [WRONG] } });
    await start(p);
    const refused = errors(p[initiator].events)[0]!;
    assert.equal(refused.code, 'ERR_IKE_CERT_PIN_MISMATCH');
    assert.equal(refused.origin, 'local');
    assert.match(refused.message, /matches no pinned SHA-256: expected SPKI abababababababab; found SPKI [0-9a-f]{16}, certificate [0-9a-f]{16}$/);
    assert.ok(errors(p[responder].events).some((e) => e.notify === 'AUTHENTICATION_FAILED' && e.origin === 'remote'), 'the responder was told');
    assert.equal(p.alice.kernel.installed.size + p.bob.kernel.installed.size, 0);
    assert.equal(p[initiator].engine.status().peers[0]?.ike, null);
    assert.equal(p[responder].engine.status().peers[0]?.ike, null);
  });
}

// What SPKI pinning is for: a node's certificate is renewed (short-lived certificates from
// cert-manager) with the same key, and the pin still holds; a certificate pin does not.
test('a peer certificate renewed with the same key is still accepted by the SPKI pin, and refused by a pin of the old certificate', async () => {
  const now = Date.UTC(2026, 10, 27, 12);
  const k = pki(now);
  const base = new Pair({ auth: 'cert' });
  const renewed = renewedBobCert(base);
  assert.notEqual(certOf(renewed), certOf(k.bob.cert));
  assert.equal(spkiOf(renewed), spkiOf(k.bob.cert));

  for (const initiator of ['alice', 'bob'] as const) {
    const bySpki = pinnedPair({ alice: { spkiSha256: [spkiOf(k.bob.cert)] }, bobCert: renewed });
    bySpki[initiator].engine.initiate(initiator === 'alice' ? 'to-bob' : 'to-alice');
    await bySpki.net.pump();
    assert.equal(bySpki.alice.engine.status().peers[0]?.ike?.state, 'established', `${initiator} initiates`);
    assert.equal(bySpki.alice.engine.status().peers[0]?.ike?.role, initiator === 'alice' ? 'initiator' : 'responder');
    assert.ok(mirrored(bySpki.alice.kernel, bySpki.bob.kernel), 'mirrored');
  }

  const byCert = pinnedPair({ alice: { certSha256: [certOf(k.bob.cert)] }, bobCert: renewed });
  await byCert.connect();
  const refused = errors(byCert.alice.events)[0]!;
  assert.equal(refused.code, 'ERR_IKE_CERT_PIN_MISMATCH');
  assert.match(refused.message, new RegExp(`expected certificate ${certOf(k.bob.cert).slice(0, 16)}; found SPKI ${spkiOf(renewed).slice(0, 16)}, certificate ${certOf(renewed).slice(0, 16)}`));
});

test('pins are checked after the chain and the identity: a certificate for another identity fails as such, not as unpinned (RFC 4945 §3.1)', async () => {
  const k = pki(Date.UTC(2026, 10, 27, 12));
  // Bob presents alice's certificate: it chains to the CA but does not name bob.example.
  const p = pinnedPair({ alice: { spkiSha256: [spkiOf(k.bob.cert)] }, bobCert: k.alice.cert });
  await p.connect();
  assert.equal(errors(p.alice.events)[0]?.code, 'ERR_IKE_CERT_ID_MISMATCH');
});

test('peerPins are validated at addPeer: lower-case hex SHA-256 only, and at least one pin (ConfigError naming the field)', () => {
  const p = new Pair({ auth: 'cert' });
  const k = pki(p.clock.now());
  const peer = (peerPins: PeerPins): PeerConfig => ({
    name: 'x', local: { address: '192.0.2.1', id: { type: 'fqdn', value: 'alice.example' } }, remote: { address: '192.0.2.9' },
    auth: { method: 'certificate', certificate: k.alice.cert, privateKey: k.alice.key, cas: [k.ca], peerPins },
    ike: { proposals: ['aes256gcm16-prfsha256-x25519'], rekeyTimeMs: 3_600_000 }, children: [], dpd: { intervalMs: 0, action: 'clear' }, startAction: 'respond',
  });
  const cases: Array<[PeerPins, string, RegExp]> = [
    [{ spkiSha256: ['AB'.repeat(32)] }, 'peers[x].auth.peerPins.spkiSha256[0]', /lower-case hex/],
    [{ spkiSha256: [WRONG], certSha256: [WRONG, 'ab'.repeat(20)] }, 'peers[x].auth.peerPins.certSha256[1]', /"(ab){20}" is not a SHA-256 digest/],
    [{ certSha256: [`${WRONG.slice(0, 62)}:f`] }, 'peers[x].auth.peerPins.certSha256[0]', /64 digits/],
    [{}, 'peers[x].auth.peerPins', /no pins/],
    [{ spkiSha256: [], certSha256: [] }, 'peers[x].auth.peerPins', /leave peerPins out/],
  ];
  for (const [pins, path, message] of cases) {
    assert.throws(() => p.alice.engine.addPeer(peer(pins)), (e: unknown) => e instanceof ConfigError && e.path === path && message.test(e.message), JSON.stringify(pins));
  }
  p.alice.engine.addPeer(peer({ spkiSha256: [WRONG] }));
});
