// Which signatures the AUTH verifier refuses before (or instead of) checking them: SHA-1 in any
// form (RFC 8247 §3), and RSASSA-PSS parameters outside hash ∈ SHA-2, MGF1 with the same hash,
// hLen ≤ salt ≤ emLen - hLen - 2, trailerField 1 (RFC 4055 §3.1, RFC 7427 Appendix A.4, RFC 8017
// §9.1.1). Each refusal is an AuthenticationError (AUTHENTICATION_FAILED) whose message names it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { constants, generateKeyPairSync, sign } from 'node:crypto';
import { concatBytes } from '../../../../src/common/bytes.js';
import { AuthMethod } from '../../../../src/ike/constants.js';
import { signAuth, verifySignatureAuth } from '../../../../src/ike/crypto/auth.js';
import { schemeByName } from '../../../../src/ike/crypto/signature-schemes.js';
import { AuthenticationError } from '../../../../src/ike/crypto/errors.js';
import { NULL_DER, oid, SEQUENCE, smallInt, tlv } from '../../../../src/ike/crypto/der.js';

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ec = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const octets = new Uint8Array(64).fill(7);

/** AuthenticationError (AUTHENTICATION_FAILED) whose message matches `re`. */
const refused = (re: RegExp) => (e: unknown): boolean => {
  assert.ok(e instanceof AuthenticationError, `want AuthenticationError, got ${String(e)}`);
  assert.equal(e.notify, 'AUTHENTICATION_FAILED');
  assert.match(e.message, re);
  return true;
};

const SHA256 = '608648016503040201'; const SHA384 = '608648016503040202';
const hashAlg = (h: string): Uint8Array => tlv(SEQUENCE, oid(h), NULL_DER);
const bigInt = (n: number): Uint8Array => tlv(0x02, new Uint8Array([n >> 8, n & 0xff]));

/** RSASSA-PSS AlgorithmIdentifier with the given fields (undefined = field absent). */
function pssAlgId(f: { hash?: string; mgfHash?: string; salt?: number; trailer?: number }): Uint8Array {
  const fields: Uint8Array[] = [];
  if (f.hash) fields.push(tlv(0xa0, hashAlg(f.hash)));
  if (f.mgfHash) fields.push(tlv(0xa1, tlv(SEQUENCE, oid('2a864886f70d010108'), hashAlg(f.mgfHash))));
  if (f.salt !== undefined) fields.push(tlv(0xa2, f.salt < 128 ? smallInt(f.salt) : bigInt(f.salt)));
  if (f.trailer !== undefined) fields.push(tlv(0xa3, smallInt(f.trailer)));
  return tlv(SEQUENCE, oid('2a864886f70d01010a'), tlv(SEQUENCE, ...fields));
}

/** DIGITAL_SIGNATURE AUTH data: a real PSS signature with `saltLength`, under `algId`. */
function pssAuth(algId: Uint8Array, saltLength: number, hash = 'sha256'): Uint8Array {
  const sig = sign(hash, octets, { key: rsa.privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength });
  return concatBytes(new Uint8Array([algId.length]), algId, sig);
}

const verifyDs = (authData: Uint8Array) => verifySignatureAuth(AuthMethod.DIGITAL_SIGNATURE, authData, rsa.publicKey, octets);

test('RFC 8247 §3: RSA_DIGITAL_SIGNATURE (1, PKCS#1 v1.5 over SHA-1) is refused by default and accepted only when allowed', () => {
  // Why: the classic RSA method is SHA-1 only; a default that accepts it lets a forged SHA-1 collision authenticate.
  const a = signAuth(schemeByName('rsa-pkcs1-sha1')!, rsa.privateKey, octets);
  assert.throws(() => verifySignatureAuth(a.authMethod, a.authData, rsa.publicKey, octets), refused(/RSA_DIGITAL_SIGNATURE \(1\).*SHA-1.*refused/));
  assert.equal(verifySignatureAuth(a.authMethod, a.authData, rsa.publicKey, octets, { allowSha1Rsa: true }).name, 'rsa-pkcs1-sha1');
});

test('RFC 8247 §3: RFC 7427 AlgorithmIdentifiers with SHA-1 are refused by name, not as "unsupported"', () => {
  // Why: the operator reading lastError must see that SHA-1 was the reason, not a missing feature.
  const pkcs1 = tlv(SEQUENCE, oid('2a864886f70d010105'), NULL_DER);
  const sig = sign('sha1', octets, rsa.privateKey);
  assert.throws(() => verifyDs(concatBytes(new Uint8Array([pkcs1.length]), pkcs1, sig)), refused(/sha1WithRSAEncryption.*SHA-1/));
  const ecdsaSha1 = tlv(SEQUENCE, oid('2a8648ce3d0401'));
  const esig = sign('sha1', octets, ec.privateKey);
  assert.throws(() => verifySignatureAuth(AuthMethod.DIGITAL_SIGNATURE, concatBytes(new Uint8Array([ecdsaSha1.length]), ecdsaSha1, esig), ec.publicKey, octets), refused(/ecdsa-with-SHA1.*SHA-1/));
});

test('RFC 4055 §3.1 / RFC 8247 §3: RSASSA-PSS with the default (SHA-1) hash or MGF1 hash is refused, naming SHA-1', () => {
  assert.throws(() => verifyDs(pssAuth(pssAlgId({ salt: 20 }), 20, 'sha1')), refused(/RSASSA-PSS refused: hash absent, i\.e\. SHA-1/));
  assert.throws(() => verifyDs(pssAuth(pssAlgId({ hash: '2b0e03021a', mgfHash: '2b0e03021a', salt: 20 }), 20, 'sha1')), refused(/hash is SHA-1/));
  assert.throws(() => verifyDs(pssAuth(pssAlgId({ hash: SHA256, salt: 32 }), 32)), refused(/MGF1 hash absent/));
});

test('RFC 7427 Appendix A.4: RSASSA-PSS whose MGF1 hash differs from the signature hash is refused', () => {
  assert.throws(() => verifyDs(pssAuth(pssAlgId({ hash: SHA256, mgfHash: SHA384, salt: 32 }), 32)), refused(/MGF1 uses sha384 but the signature sha256/));
});

test('RFC 4055 §3.1: an RSASSA-PSS salt shorter than the hash output is refused, though the signature is valid', () => {
  // Why: a zero-length salt makes PSS deterministic; short salts are what RFC 4055 and NIST advise against.
  for (const salt of [0, 20, 31]) {
    assert.throws(() => verifyDs(pssAuth(pssAlgId({ hash: SHA256, mgfHash: SHA256, salt }), salt)), refused(new RegExp(`salt length ${salt} is below the sha256 output length 32`)), `salt ${salt}`);
  }
});

test('RFC 8017 §9.1.1: an RSASSA-PSS salt above emLen - hLen - 2 is refused before any RSA work, naming the bound', () => {
  // 2048-bit key, SHA-256: emLen 256, max salt 256 - 32 - 2 = 222.
  const algId = pssAlgId({ hash: SHA256, mgfHash: SHA256, salt: 223 });
  const authData = concatBytes(new Uint8Array([algId.length]), algId, new Uint8Array(256).fill(1));
  assert.throws(() => verifyDs(authData), refused(/salt length 223 exceeds 222/));
});

test('RFC 4055 §3.1: RSASSA-PSS with a trailerField other than 1 is refused', () => {
  assert.throws(() => verifyDs(pssAuth(pssAlgId({ hash: SHA256, mgfHash: SHA256, salt: 32, trailer: 2 }), 32)), refused(/trailerField is not 1/));
});

test('RFC 7427 Appendix A.4: RSASSA-PSS salts from the hash length up to emLen - hLen - 2 still verify', () => {
  // Why: the bounds must not cut off what strongSwan (salt = hLen) or OpenSSL's "max" salt send.
  for (const salt of [32, 64, 222]) assert.equal(verifyDs(pssAuth(pssAlgId({ hash: SHA256, mgfHash: SHA256, salt }), salt)).name, 'rsassa-pss-sha256', `salt ${salt}`);
  const h384 = pssAlgId({ hash: SHA384, mgfHash: SHA384, salt: 48 });
  assert.equal(verifyDs(pssAuth(h384, 48, 'sha384')).name, 'rsassa-pss-sha384');
});
