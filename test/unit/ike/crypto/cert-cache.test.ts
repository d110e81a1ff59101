// The certificate cache behind validateCertificateChain (src/ike/crypto/cert-cache.ts): keyed by
// the certificate's octets, so a renewed CA or peer certificate is parsed and verified anew; bounded
// (least recently used first); only successful issuer checks remembered; validity still checked
// against the clock on every use.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { certCacheStats, clearCertCache, MAX_ENTRY_BYTES, MAX_PARSED, MAX_PARSED_BYTES, parseCertificateCached, signedBy } from '../../../../src/ike/crypto/cert-cache.js';
import { caKeyHashes, validateCertificateChain } from '../../../../src/ike/crypto/certs.js';
import { CertificateError } from '../../../../src/ike/crypto/errors.js';
import { buildCert, dn, ext } from './cert-builder.js';

const DAY = 86_400_000;
const now = Date.UTC(2026, 11, 7);
const ec = () => generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const base = { notBeforeMs: now - DAY, notAfterMs: now + 365 * DAY };
const CA = dn('cache test CA');
const caOld = ec(); const caNew = ec(); const eeKeys = ec();
const ca = (k: ReturnType<typeof ec>, serial: number): Uint8Array => buildCert({ ...base, serial, subject: CA, issuer: CA, publicKey: k.publicKey, signingKey: k.privateKey, ca: true, keyUsage: [5] });
const ee = (signer: ReturnType<typeof ec>, serial: number): Uint8Array => buildCert({ ...base, serial, subject: dn('peer'), issuer: CA, publicKey: eeKeys.publicKey, signingKey: signer.privateKey, keyUsage: [0], dns: ['peer.example'] });
const code = (c: string) => (e: unknown): boolean => e instanceof CertificateError && e.code === c;

test('the same octets parse once: the second lookup returns the same entry, which holds its own copy of them', () => {
  clearCertCache();
  const der = ca(caOld, 1);
  const framed = new Uint8Array(der.length + 10);
  framed.set(der, 5);
  const a = parseCertificateCached(framed.subarray(5, 5 + der.length));
  const b = parseCertificateCached(der);
  assert.equal(a, b);
  assert.deepEqual(certCacheStats(), { size: 1, bytes: der.length, hits: 1, misses: 1 });
  assert.notEqual(a.der.buffer, framed.buffer, 'not a view into the caller\'s (datagram) buffer');
  framed.fill(0);
  assert.deepEqual(a.der, der);
});

test('a renewed CA (same name, new key) does not inherit the old CA\'s verified signatures', () => {
  clearCertCache();
  const oldCa = ca(caOld, 1); const newCa = ca(caNew, 2);
  const eeOld = ee(caOld, 10); const eeNew = ee(caNew, 11);
  assert.equal(validateCertificateChain({ endEntity: eeOld, trustAnchors: [oldCa], nowMs: now }).path.length, 2);
  assert.equal(validateCertificateChain({ endEntity: eeOld, trustAnchors: [oldCa], nowMs: now }).path.length, 2, 'again, from the cache');
  assert.throws(() => validateCertificateChain({ endEntity: eeOld, trustAnchors: [newCa], nowMs: now }), code('ERR_IKE_CERT_BAD_SIGNATURE'));
  assert.equal(validateCertificateChain({ endEntity: eeNew, trustAnchors: [newCa], nowMs: now }).path.length, 2);
  assert.throws(() => validateCertificateChain({ endEntity: eeNew, trustAnchors: [oldCa], nowMs: now }), code('ERR_IKE_CERT_BAD_SIGNATURE'));
});

test('a failed signature check is not remembered, a good one is', () => {
  clearCertCache();
  const child = parseCertificateCached(ee(caOld, 20));
  const wrong = parseCertificateCached(ca(caNew, 21));
  const right = parseCertificateCached(ca(caOld, 22));
  for (let i = 0; i < 2; i++) assert.equal(signedBy(child, wrong), false);
  for (let i = 0; i < 2; i++) assert.equal(signedBy(child, right), true);
});

test('a cached certificate is still checked against the clock on every use', () => {
  clearCertCache();
  const input = { endEntity: ee(caOld, 30), trustAnchors: [ca(caOld, 31)] };
  assert.equal(validateCertificateChain({ ...input, nowMs: now }).path.length, 2);
  assert.throws(() => validateCertificateChain({ ...input, nowMs: now + 400 * DAY }), code('ERR_IKE_CERT_EXPIRED'));
  assert.throws(() => validateCertificateChain({ ...input, nowMs: now - 2 * DAY }), code('ERR_IKE_CERT_NOT_YET_VALID'));
});

test(`the cache holds at most ${MAX_PARSED} certificates, dropping the least recently used`, () => {
  clearCertCache();
  const first = ee(caOld, 1000); const kept = ee(caOld, 1001);
  parseCertificateCached(first); parseCertificateCached(kept);
  for (let i = 0; i < MAX_PARSED - 1; i++) {
    if (i % 64 === 0) parseCertificateCached(kept); // recently used: survives
    parseCertificateCached(ee(caOld, 2000 + i));
  }
  assert.equal(certCacheStats().size, MAX_PARSED);
  const misses = certCacheStats().misses;
  parseCertificateCached(kept);
  assert.equal(certCacheStats().misses, misses, 'the recently used entry is still there');
  parseCertificateCached(first);
  assert.equal(certCacheStats().misses, misses + 1, 'the least recently used one was dropped');
  assert.equal(certCacheStats().size, MAX_PARSED);
});

test('CERTREQ authorities: equal CA lists in distinct arrays (one per peer config) parse the CA once; a renewed CA key gives another hash', () => {
  clearCertCache();
  const der = ca(caOld, 40);
  const first = caKeyHashes([der]);
  const misses = certCacheStats().misses;
  for (let i = 0; i < 5; i++) assert.deepEqual(caKeyHashes([new Uint8Array(der)]), first);
  assert.equal(certCacheStats().misses, misses);
  assert.notDeepEqual(caKeyHashes([ca(caNew, 41)]), first);
});

test(`the cache keeps at most ${MAX_PARSED_BYTES} octets of DER, and no certificate over ${MAX_ENTRY_BYTES} octets (peers send CERT payloads before they are authenticated)`, () => {
  clearCertCache();
  // A non-critical extension of unknown type makes a certificate as large as wanted.
  const big = (serial: number, octets: number): Uint8Array => buildCert({ ...base, serial, subject: dn('peer'), issuer: CA, publicKey: eeKeys.publicKey, signingKey: caOld.privateKey, keyUsage: [0], extraExtensions: [ext('2a030405', false, new Uint8Array(octets))] });
  const huge = big(50, MAX_ENTRY_BYTES);
  assert.ok(huge.length > MAX_ENTRY_BYTES);
  parseCertificateCached(huge);
  assert.equal(certCacheStats().size, 0, 'too large: parsed, not kept');
  const each = big(51, 8_000).length;
  const fit = Math.floor(MAX_PARSED_BYTES / each);
  for (let i = 0; i < fit + 10; i++) parseCertificateCached(big(100 + i, 8_000));
  assert.equal(certCacheStats().size, fit);
  assert.ok(certCacheStats().bytes <= MAX_PARSED_BYTES);
});
