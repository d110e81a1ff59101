// Certificate path validation and identity matching (RFC 7296 §3.6-3.7, RFC 4945, RFC 5280)
// with an injected clock; every rejection is a CertificateError with its own code.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { fromHex } from '../../../../src/common/bytes.js';
import { ManualClock } from '../../../../src/common/time.js';
import { IdType } from '../../../../src/ike/constants.js';
import { caKeyHashes, matchIdentity, validateCertificateChain } from '../../../../src/ike/crypto/certs.js';
import { sha1 } from '@noble/hashes/legacy.js';
import { CertificateError, type CertificateErrorCode } from '../../../../src/ike/crypto/errors.js';
import { parseCertificate } from '../../../../src/ike/crypto/x509.js';
import { signAuth, verifySignatureAuth } from '../../../../src/ike/crypto/auth.js';
import { schemeByName } from '../../../../src/ike/crypto/signature-schemes.js';
import { buildCert, dn } from './cert-builder.js';

const DAY = 86_400_000;
const clock = new ManualClock(Date.UTC(2026, 10, 27));
const now = clock.now();
const ec = () => generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const caKeys = ec(); const interKeys = ec(); const eeKeys = ec(); const otherCaKeys = ec();
const CA = dn('kipsec root CA'); const INTER = dn('kipsec node CA'); const EE = dn('node-1');
const base = { notBeforeMs: now - DAY, notAfterMs: now + 365 * DAY };

const caDer = buildCert({ ...base, subject: CA, issuer: CA, publicKey: caKeys.publicKey, signingKey: caKeys.privateKey, ca: true, keyUsage: [5, 6] });
const interDer = buildCert({ ...base, subject: INTER, issuer: CA, publicKey: interKeys.publicKey, signingKey: caKeys.privateKey, ca: true, pathLen: 0, keyUsage: [5] });
const eeSpec = { ...base, subject: EE, issuer: INTER, publicKey: eeKeys.publicKey, signingKey: interKeys.privateKey, keyUsage: [0], dns: ['node-1.example.com'], ip: [fromHex('c0000201'), fromHex('20010db8000000000000000000000001')], email: ['ops@example.com'] };
const eeDer = buildCert(eeSpec);

const code = (c: CertificateErrorCode) => (e: unknown): boolean => e instanceof CertificateError && e.code === c && e.notify === 'AUTHENTICATION_FAILED';

test('valid path end entity -> intermediate -> configured CA, and the returned key verifies AUTH', () => {
  const v = validateCertificateChain({ endEntity: eeDer, intermediates: [interDer], trustAnchors: [caDer], nowMs: now });
  assert.equal(v.path.length, 3);
  const octets = new Uint8Array(20).fill(1);
  const auth = signAuth(schemeByName('ecdsa-with-sha256')!, eeKeys.privateKey, octets);
  assert.equal(verifySignatureAuth(auth.authMethod, auth.authData, v.publicKey, octets).name, 'ecdsa-with-sha256');
});

test('end entity issued directly by the CA needs no intermediates; extra unrelated CERT payloads are ignored', () => {
  const direct = buildCert({ ...eeSpec, issuer: CA, signingKey: caKeys.privateKey });
  const junk = buildCert({ ...base, subject: dn('junk'), issuer: dn('junk'), publicKey: otherCaKeys.publicKey, signingKey: otherCaKeys.privateKey, ca: true });
  assert.equal(validateCertificateChain({ endEntity: direct, intermediates: [junk], trustAnchors: [caDer], nowMs: now }).path.length, 2);
});

test('validity periods use the injected clock for every certificate on the path (RFC 5280 §4.1.2.5)', () => {
  const input = { endEntity: eeDer, intermediates: [interDer], trustAnchors: [caDer] };
  assert.throws(() => validateCertificateChain({ ...input, nowMs: now + 400 * DAY }), code('ERR_IKE_CERT_EXPIRED'));
  assert.throws(() => validateCertificateChain({ ...input, nowMs: now - 2 * DAY }), code('ERR_IKE_CERT_NOT_YET_VALID'));
  const oldInter = buildCert({ ...base, notAfterMs: now - 1000, subject: INTER, issuer: CA, publicKey: interKeys.publicKey, signingKey: caKeys.privateKey, ca: true });
  assert.throws(() => validateCertificateChain({ ...input, intermediates: [oldInter], nowMs: now }), code('ERR_IKE_CERT_EXPIRED'));
  const eeAt2050 = buildCert({ ...eeSpec, notAfterMs: Date.UTC(2051, 0, 1) }); // GeneralizedTime after 2049
  assert.equal(parseCertificate(eeAt2050).notAfterMs, Date.UTC(2051, 0, 1));
});

test('untrusted: unknown CA, missing intermediate', () => {
  const otherCa = buildCert({ ...base, subject: dn('other CA'), issuer: dn('other CA'), publicKey: otherCaKeys.publicKey, signingKey: otherCaKeys.privateKey, ca: true });
  assert.throws(() => validateCertificateChain({ endEntity: eeDer, intermediates: [interDer], trustAnchors: [otherCa], nowMs: now }), code('ERR_IKE_CERT_UNTRUSTED'));
  assert.throws(() => validateCertificateChain({ endEntity: eeDer, trustAnchors: [caDer], nowMs: now }), code('ERR_IKE_CERT_UNTRUSTED'));
});

test('bad signature: an intermediate with the right name but signed by another key', () => {
  const forgedInter = buildCert({ ...base, subject: INTER, issuer: CA, publicKey: interKeys.publicKey, signingKey: otherCaKeys.privateKey, ca: true });
  assert.throws(() => validateCertificateChain({ endEntity: eeDer, intermediates: [forgedInter], trustAnchors: [caDer], nowMs: now }), code('ERR_IKE_CERT_BAD_SIGNATURE'));
  const forgedEe = buildCert({ ...eeSpec, signingKey: otherCaKeys.privateKey });
  assert.throws(() => validateCertificateChain({ endEntity: forgedEe, intermediates: [interDer], trustAnchors: [caDer], nowMs: now }), code('ERR_IKE_CERT_BAD_SIGNATURE'));
});

test('issuers must be CAs: no basicConstraints, cA false, pathLen exceeded, keyUsage without keyCertSign', () => {
  const mk = (extra: object) => buildCert({ ...base, subject: INTER, issuer: CA, publicKey: interKeys.publicKey, signingKey: caKeys.privateKey, ...extra });
  const run = (inter: Uint8Array, anchor = caDer) => validateCertificateChain({ endEntity: eeDer, intermediates: [inter], trustAnchors: [anchor], nowMs: now });
  assert.throws(() => run(mk({})), code('ERR_IKE_CERT_NOT_CA'));
  assert.throws(() => run(mk({ ca: false })), code('ERR_IKE_CERT_NOT_CA'));
  assert.throws(() => run(mk({ ca: true, keyUsage: [0] })), code('ERR_IKE_CERT_KEY_USAGE'));
  const caPath0 = buildCert({ ...base, subject: CA, issuer: CA, publicKey: caKeys.publicKey, signingKey: caKeys.privateKey, ca: true, pathLen: 0 });
  assert.throws(() => run(interDer, caPath0), code('ERR_IKE_CERT_NOT_CA'));
});

test('end-entity keyUsage without digitalSignature cannot authenticate (RFC 4945 §5.1.3.2)', () => {
  const encOnly = buildCert({ ...eeSpec, keyUsage: [2] });
  assert.throws(() => validateCertificateChain({ endEntity: encOnly, intermediates: [interDer], trustAnchors: [caDer], nowMs: now }), code('ERR_IKE_CERT_KEY_USAGE'));
});

test('malformed DER and over-long paths are rejected with their own codes', () => {
  assert.throws(() => validateCertificateChain({ endEntity: new Uint8Array([0x30, 0x03, 1, 2, 3]), trustAnchors: [caDer], nowMs: now }), code('ERR_IKE_CERT_MALFORMED'));
  assert.throws(() => validateCertificateChain({ endEntity: eeDer, intermediates: [interDer], trustAnchors: [caDer], nowMs: now, maxLength: 2 }), code('ERR_IKE_CERT_CHAIN_TOO_LONG'));
});

test('IKE identity matches IP, DNS and email SANs and the subject DN (RFC 4945 §3.1)', () => {
  const c = parseCertificate(eeDer);
  matchIdentity(c, IdType.ID_IPV4_ADDR, fromHex('c0000201'));
  matchIdentity(c, IdType.ID_IPV6_ADDR, fromHex('20010db8000000000000000000000001'));
  matchIdentity(c, IdType.ID_FQDN, new TextEncoder().encode('NODE-1.example.com'));
  matchIdentity(c, IdType.ID_RFC822_ADDR, new TextEncoder().encode('ops@example.com'));
  matchIdentity(c, IdType.ID_DER_ASN1_DN, EE);
  const mismatch = code('ERR_IKE_CERT_ID_MISMATCH');
  assert.throws(() => matchIdentity(c, IdType.ID_IPV4_ADDR, fromHex('c0000202')), mismatch);
  assert.throws(() => matchIdentity(c, IdType.ID_IPV4_ADDR, fromHex('c00002')), mismatch);
  assert.throws(() => matchIdentity(c, IdType.ID_FQDN, new TextEncoder().encode('node-2.example.com')), mismatch);
  assert.throws(() => matchIdentity(c, IdType.ID_FQDN, new TextEncoder().encode('node-1')), mismatch); // CN is not consulted
  assert.throws(() => matchIdentity(c, IdType.ID_RFC822_ADDR, new TextEncoder().encode('root@example.com')), mismatch);
  assert.throws(() => matchIdentity(c, IdType.ID_DER_ASN1_DN, dn('node-2')), mismatch);
  assert.throws(() => matchIdentity(c, IdType.ID_KEY_ID, new Uint8Array(8)), mismatch);
});

test('Ed25519 and RSA certificates parse and validate too', () => {
  const ed = generateKeyPairSync('ed25519'); const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const edCa = buildCert({ ...base, subject: CA, issuer: CA, publicKey: ed.publicKey, signingKey: ed.privateKey, ca: true });
  const rsaEe = buildCert({ ...base, subject: EE, issuer: CA, publicKey: rsa.publicKey, signingKey: ed.privateKey, dns: ['rsa.example.com'] });
  const v = validateCertificateChain({ endEntity: rsaEe, trustAnchors: [edCa], nowMs: now });
  assert.equal(v.publicKey.asymmetricKeyType, 'rsa');
});

test('CERTREQ Certification Authority = SHA-1 of each trust anchor\'s SubjectPublicKeyInfo, concatenated (RFC 7296 §3.7)', () => {
  // Why: an empty field asks for "any CA"; naming ours lets a peer with several certificates pick.
  const spki = (k: typeof caKeys) => new Uint8Array(k.publicKey.export({ type: 'spki', format: 'der' }));
  const otherCa = buildCert({ ...base, subject: dn('other CA'), issuer: dn('other CA'), publicKey: otherCaKeys.publicKey, signingKey: otherCaKeys.privateKey, ca: true });
  const out = caKeyHashes([caDer, otherCa]);
  assert.equal(out.length, 40);
  assert.deepEqual(out, new Uint8Array([...sha1(spki(caKeys)), ...sha1(spki(otherCaKeys))]));
  assert.equal(caKeyHashes([new Uint8Array([1, 2, 3])]).length, 0, 'an anchor that does not parse is left out');
});
