// AUTH: RFC 7296 §2.15 signed octets and PSK, RFC 4754 ECDSA vector for the classic methods,
// RFC 7427 AlgorithmIdentifiers, sign/verify for every scheme, @noble/curves as an independent
// ECDSA verifier, SIGNATURE_HASH_ALGORITHMS negotiation, and AuthenticationError on every failure.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256, sha512 } from '@noble/hashes/sha2.js';
import { p256, p384, p521 } from '@noble/curves/nist.js';
import { concatBytes, fromHex, toHex } from '../../../../src/common/bytes.js';
import { SecretBytes } from '../../../../src/common/secret.js';
import { AuthMethod, HashAlgorithm, PrfId } from '../../../../src/ike/constants.js';
import { createPrf } from '../../../../src/ike/crypto/prf.js';
import { chooseSignatureScheme, decodeSignatureHashAlgorithms, encodeSignatureHashAlgorithms, pskAuthData, pskFrom, signAuth, signedOctets, verifyPskAuth, verifySignatureAuth } from '../../../../src/ike/crypto/auth.js';
import { CLASSIC_SCHEMES, RFC7427_SCHEMES, schemeByName } from '../../../../src/ike/crypto/signature-schemes.js';
import { AuthenticationError } from '../../../../src/ike/crypto/errors.js';
import { oid, SEQUENCE, smallInt, tlv } from '../../../../src/ike/crypto/der.js';
import { loadVectors } from './vectors.js';

const isAuthFail = (e: unknown): boolean => e instanceof AuthenticationError && e.code === 'ERR_IKE_AUTHENTICATION_FAILED' && e.notify === 'AUTHENTICATION_FAILED';

test('signed octets are RealMessage | peer nonce | prf(SK_p, ID payload body), RFC 7296 §2.15', () => {
  const prf = createPrf(PrfId.PRF_HMAC_SHA2_256);
  const msg = fromHex('aa'.repeat(40)); const nonce = fromHex('bb'.repeat(32)); const skP = new SecretBytes(fromHex('cc'.repeat(32)));
  const idBody = concatBytes(new Uint8Array([2, 0, 0, 0]), new TextEncoder().encode('gw.example.com'));
  const octets = signedOctets({ realMessage: msg, peerNonce: nonce, prf, skP, idPayloadBody: idBody });
  assert.equal(toHex(octets), toHex(concatBytes(msg, nonce, hmac(sha256, skP.expose(), idBody))));
});

test('PSK AUTH = prf(prf(psk, "Key Pad for IKEv2"), octets), checked against @noble/hashes, RFC 7296 §2.15', () => {
  fc.assert(fc.property(fc.uint8Array({ minLength: 1, maxLength: 64 }), fc.uint8Array({ maxLength: 300 }), (psk, octets) => {
    const prf = createPrf(PrfId.PRF_HMAC_SHA2_256);
    const expected = hmac(sha256, hmac(sha256, psk, new TextEncoder().encode('Key Pad for IKEv2')), octets);
    const got = pskAuthData(prf, new SecretBytes(psk), octets);
    assert.equal(toHex(got), toHex(expected));
    verifyPskAuth(prf, new SecretBytes(psk), octets, got);
  }), { numRuns: 100 });
});

test('one PSK used for many AUTH values under two PRFs: each is prf(prf(psk, pad), octets) of its own PRF (the padded key is derived once per PSK and PRF)', () => {
  const psk = pskFrom('shared by many handshakes');
  const pad = new TextEncoder().encode('Key Pad for IKEv2');
  for (const [prf, hash] of [[createPrf(PrfId.PRF_HMAC_SHA2_256), sha256], [createPrf(PrfId.PRF_HMAC_SHA2_512), sha512], [createPrf(PrfId.PRF_HMAC_SHA2_256), sha256]] as const) {
    for (const fill of [1, 2]) {
      const octets = new Uint8Array(80).fill(fill);
      assert.equal(toHex(pskAuthData(prf, psk, octets)), toHex(hmac(hash, hmac(hash, psk.expose(), pad), octets)));
    }
  }
});

test('PSK AUTH with the wrong key, tampered octets or truncated value is AUTHENTICATION_FAILED', () => {
  const prf = createPrf(PrfId.PRF_HMAC_SHA2_384);
  const octets = new Uint8Array(100).fill(5);
  const good = pskAuthData(prf, pskFrom('correct horse'), octets);
  assert.throws(() => verifyPskAuth(prf, pskFrom('wrong horse'), octets, good), isAuthFail);
  assert.throws(() => verifyPskAuth(prf, pskFrom('correct horse'), concatBytes(octets, new Uint8Array(1)), good), isAuthFail);
  assert.throws(() => verifyPskAuth(prf, pskFrom('correct horse'), octets, good.subarray(0, 47)), isAuthFail);
});

const ecdsaV = loadVectors<{ vectors: { authMethod: number; w: string; gwx: string; gwy: string; message: string; r: string; s: string }[] }>('ecdsa-rfc4754.json');
for (const v of ecdsaV.vectors) {
  test(`ECDSA_SHA256_P256 (9) verifies the RFC 4754 §8.1 signature r | s and rejects a flipped bit`, () => {
    const b64u = (h: string): string => Buffer.from(fromHex(h)).toString('base64url');
    const pub = createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: b64u(v.gwx), y: b64u(v.gwy) }, format: 'jwk' });
    const sig = fromHex(v.r + v.s);
    const scheme = verifySignatureAuth(v.authMethod, sig, pub, fromHex(v.message));
    assert.equal(scheme.name, 'ecdsa-sha256-p256');
    const bad = new Uint8Array(sig); bad[63] = bad[63]! ^ 1;
    assert.throws(() => verifySignatureAuth(v.authMethod, bad, pub, fromHex(v.message)), isAuthFail);
    assert.throws(() => verifySignatureAuth(v.authMethod, sig, pub, fromHex('616264')), isAuthFail);
  });
}

const algIds = loadVectors<{ vectors: { scheme: string; der: string }[] }>('signature-algorithm-identifiers.json');
for (const v of algIds.vectors) {
  test(`RFC 7427 AlgorithmIdentifier for ${v.scheme} is the Appendix A DER encoding`, () => {
    const s = schemeByName(v.scheme);
    assert.ok(s?.algorithmIdentifier);
    assert.equal(toHex(s.algorithmIdentifier), v.der);
  });
}

interface KeyCase { name: string; priv: KeyObject; pub: KeyObject }
function keys(): KeyCase[] {
  const mk = (name: string, kp: { privateKey: KeyObject; publicKey: KeyObject }): KeyCase => ({ name, priv: kp.privateKey, pub: kp.publicKey });
  return [
    mk('ec P-256', generateKeyPairSync('ec', { namedCurve: 'prime256v1' })),
    mk('ec P-384', generateKeyPairSync('ec', { namedCurve: 'secp384r1' })),
    mk('ec P-521', generateKeyPairSync('ec', { namedCurve: 'secp521r1' })),
    mk('rsa 2048', generateKeyPairSync('rsa', { modulusLength: 2048 })),
    mk('ed25519', generateKeyPairSync('ed25519')),
  ];
}
const KEYS = keys();

for (const scheme of [...RFC7427_SCHEMES, ...CLASSIC_SCHEMES]) {
  for (const k of KEYS) {
    const kind = k.priv.asymmetricKeyType as string;
    if (!scheme.keyKinds.includes(kind as never)) continue;
    if (scheme.curve && k.priv.asymmetricKeyDetails?.namedCurve !== scheme.curve) continue;
    test(`${scheme.name} with ${k.name}: sign, verify, and refuse tampering`, () => {
      // rsa-pkcs1-sha1 is refused unless allowed (signature-policy.test.ts); here it is exercised.
      const opts = { allowSha1Rsa: true };
      const octets = new TextEncoder().encode(`signed octets for ${scheme.name}`);
      const auth = signAuth(scheme, k.priv, octets);
      assert.equal(auth.authMethod, scheme.authMethod);
      if (scheme.algorithmIdentifier) {
        assert.equal(auth.authData[0], scheme.algorithmIdentifier.length);
        assert.equal(toHex(auth.authData.subarray(1, 1 + scheme.algorithmIdentifier.length)), toHex(scheme.algorithmIdentifier));
      }
      assert.equal(verifySignatureAuth(auth.authMethod, auth.authData, k.pub, octets, opts).name, scheme.name);
      const bad = new Uint8Array(auth.authData); bad[bad.length - 1] = bad[bad.length - 1]! ^ 0x40;
      assert.throws(() => verifySignatureAuth(auth.authMethod, bad, k.pub, octets, opts), isAuthFail);
      assert.throws(() => verifySignatureAuth(auth.authMethod, auth.authData, k.pub, concatBytes(octets, new Uint8Array(1)), opts), isAuthFail);
      const other = KEYS.find((o) => o !== k && o.priv.asymmetricKeyType === k.priv.asymmetricKeyType && o.priv.asymmetricKeyDetails?.namedCurve === k.priv.asymmetricKeyDetails?.namedCurve);
      const wrongKey = other?.pub ?? generateKeyPairSync('ed25519').publicKey;
      assert.throws(() => verifySignatureAuth(auth.authMethod, auth.authData, wrongKey, octets, opts), isAuthFail);
    });
  }
}

test('verify refuses key/method mismatches: classic ECDSA on the wrong curve, ECDSA sig with an RSA key', () => {
  const p256k = KEYS[0]!; const p384k = KEYS[1]!; const rsa = KEYS[3]!;
  const octets = new Uint8Array(10);
  const auth = signAuth(schemeByName('ecdsa-sha256-p256')!, p256k.priv, octets);
  assert.throws(() => verifySignatureAuth(AuthMethod.ECDSA_SHA384_P384, auth.authData, p384k.pub, octets), isAuthFail);
  const a2 = signAuth(schemeByName('ecdsa-with-sha256')!, p256k.priv, octets);
  assert.throws(() => verifySignatureAuth(a2.authMethod, a2.authData, rsa.pub, octets), isAuthFail);
  assert.throws(() => signAuth(schemeByName('ecdsa-sha384-p384')!, p256k.priv, octets), isAuthFail);
});

test('verify refuses truncated or unknown RFC 7427 AUTH data and hashes we did not announce, RFC 7427 §3-4', () => {
  const k = KEYS[0]!; const octets = new Uint8Array(10);
  assert.throws(() => verifySignatureAuth(AuthMethod.DIGITAL_SIGNATURE, new Uint8Array(0), k.pub, octets), isAuthFail);
  assert.throws(() => verifySignatureAuth(AuthMethod.DIGITAL_SIGNATURE, new Uint8Array([40, 1, 2]), k.pub, octets), isAuthFail);
  assert.throws(() => verifySignatureAuth(AuthMethod.DIGITAL_SIGNATURE, fromHex('07300506032b65710000'), k.pub, octets), isAuthFail); // Ed448 OID
  const a = signAuth(schemeByName('ecdsa-with-sha512')!, k.priv, octets);
  assert.throws(() => verifySignatureAuth(a.authMethod, a.authData, k.pub, octets, { allowedHashes: [HashAlgorithm.SHA2_256] }), isAuthFail);
  assert.equal(verifySignatureAuth(a.authMethod, a.authData, k.pub, octets, { allowedHashes: [HashAlgorithm.SHA2_512] }).name, 'ecdsa-with-sha512');
  assert.throws(() => verifySignatureAuth(AuthMethod.SHARED_KEY_MESSAGE_INTEGRITY_CODE, a.authData, k.pub, octets), isAuthFail);
  const r = signAuth(schemeByName('rsa-pkcs1-sha1')!, KEYS[3]!.priv, octets);
  assert.throws(() => verifySignatureAuth(r.authMethod, r.authData, KEYS[3]!.pub, octets, { allowSha1Rsa: false }), isAuthFail);
});

test('RSASSA-PSS AlgorithmIdentifiers without NULL hash parameters and another salt length are accepted (RFC 4055 §3.1)', async () => {
  const { constants, sign } = await import('node:crypto');
  const rsa = KEYS[3]!; const octets = new Uint8Array(33).fill(3);
  // PSS, SHA-256, MGF1-SHA-256, hash AlgorithmIdentifiers without NULL, salt length 48 (not hLen).
  const hashAlg = tlv(SEQUENCE, oid('608648016503040201'));
  const algId = tlv(SEQUENCE, oid('2a864886f70d01010a'), tlv(SEQUENCE, tlv(0xa0, hashAlg), tlv(0xa1, tlv(SEQUENCE, oid('2a864886f70d010108'), hashAlg)), tlv(0xa2, smallInt(48))));
  const sig = sign('sha256', octets, { key: rsa.priv, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 48 });
  const authData = concatBytes(new Uint8Array([algId.length]), algId, sig);
  assert.equal(verifySignatureAuth(AuthMethod.DIGITAL_SIGNATURE, authData, rsa.pub, octets).name, 'rsassa-pss-sha256');
});

test('ECDSA signatures (RFC 4754 raw and RFC 7427 DER) verify with @noble/curves', () => {
  const curves = [[0, p256, 'ecdsa-sha256-p256', 'ecdsa-with-sha256'], [1, p384, 'ecdsa-sha384-p384', 'ecdsa-with-sha384'], [2, p521, 'ecdsa-sha512-p521', 'ecdsa-with-sha512']] as const;
  fc.assert(fc.property(fc.constantFrom(...curves), fc.uint8Array({ maxLength: 200 }), ([i, curve, classic, rfc7427], octets) => {
    const k = KEYS[i]!;
    const jwk = k.pub.export({ format: 'jwk' });
    const pubRaw = concatBytes(new Uint8Array([4]), Buffer.from(jwk.x!, 'base64url'), Buffer.from(jwk.y!, 'base64url'));
    const raw = signAuth(schemeByName(classic)!, k.priv, octets);
    assert.ok(curve.verify(raw.authData, octets, pubRaw, { format: 'compact', lowS: false }));
    const der = signAuth(schemeByName(rfc7427)!, k.priv, octets);
    const sig = der.authData.subarray(1 + der.authData[0]!);
    assert.ok(curve.verify(sig, octets, pubRaw, { format: 'der', lowS: false }));
  }), { numRuns: 30 });
});

test('SIGNATURE_HASH_ALGORITHMS encodes 2-octet IDs and rejects odd lengths, RFC 7427 §4', () => {
  const ids = [HashAlgorithm.SHA2_256, HashAlgorithm.SHA2_384, HashAlgorithm.SHA2_512, HashAlgorithm.IDENTITY];
  assert.equal(toHex(encodeSignatureHashAlgorithms(ids)), '0002000300040005');
  assert.deepEqual(decodeSignatureHashAlgorithms(fromHex('000200030004000500ff')), [...ids, 255]);
  assert.throws(() => decodeSignatureHashAlgorithms(fromHex('000200')), isAuthFail);
});

test('chooseSignatureScheme picks an announced RFC 7427 scheme per key, else the classic method', () => {
  const all = [HashAlgorithm.SHA2_256, HashAlgorithm.SHA2_384, HashAlgorithm.SHA2_512, HashAlgorithm.IDENTITY];
  assert.equal(chooseSignatureScheme(KEYS[0]!.priv, all).name, 'ecdsa-with-sha256');
  assert.equal(chooseSignatureScheme(KEYS[1]!.priv, all).name, 'ecdsa-with-sha384');
  assert.equal(chooseSignatureScheme(KEYS[2]!.priv, all).name, 'ecdsa-with-sha512');
  assert.equal(chooseSignatureScheme(KEYS[1]!.priv, [HashAlgorithm.SHA2_256]).name, 'ecdsa-with-sha256');
  assert.equal(chooseSignatureScheme(KEYS[3]!.priv, all).name, 'rsassa-pss-sha256');
  assert.equal(chooseSignatureScheme(KEYS[4]!.priv, all).name, 'ed25519');
  assert.equal(chooseSignatureScheme(KEYS[0]!.priv, null).name, 'ecdsa-sha256-p256');
  assert.equal(chooseSignatureScheme(KEYS[3]!.priv, null).name, 'rsa-pkcs1-sha1');
  assert.throws(() => chooseSignatureScheme(KEYS[4]!.priv, null), isAuthFail); // Ed25519 needs RFC 7427
  assert.throws(() => chooseSignatureScheme(KEYS[4]!.priv, [HashAlgorithm.SHA2_256]), isAuthFail);
});

test('signatures made by @noble/curves verify through our classic (r | s) and RFC 7427 (DER) paths', () => {
  const curves = [[p256, 'P-256', AuthMethod.ECDSA_SHA256_P256, 'ecdsa-with-sha256'], [p384, 'P-384', AuthMethod.ECDSA_SHA384_P384, 'ecdsa-with-sha384'], [p521, 'P-521', AuthMethod.ECDSA_SHA512_P521, 'ecdsa-with-sha512']] as const;
  fc.assert(fc.property(fc.constantFrom(...curves), fc.uint8Array({ maxLength: 200 }), ([curve, crv, method, rfc7427], octets) => {
    const sk = curve.utils.randomSecretKey();
    const pub = curve.getPublicKey(sk, false);
    const n = (pub.length - 1) / 2;
    const key = createPublicKey({ key: { kty: 'EC', crv, x: Buffer.from(pub.subarray(1, 1 + n)).toString('base64url'), y: Buffer.from(pub.subarray(1 + n)).toString('base64url') }, format: 'jwk' });
    const raw = curve.sign(octets, sk, { format: 'compact' });
    verifySignatureAuth(method, raw, key, octets);
    const der = curve.sign(octets, sk, { format: 'der' });
    const algId = schemeByName(rfc7427)!.algorithmIdentifier!;
    verifySignatureAuth(AuthMethod.DIGITAL_SIGNATURE, concatBytes(new Uint8Array([algId.length]), algId, der), key, octets);
  }), { numRuns: 15 });
});
