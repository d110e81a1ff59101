// SK payload protection: raw ciphers against RFC 3602 / GCM spec / RFC 8439 / RFC 7634 vectors,
// AEAD differential checks against @noble/ciphers, the RFC 7634 Appendix B IKEv2 message through
// the SK API, round trips for every suite, and every failure as a typed error.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { gcm } from '@noble/ciphers/aes.js';
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { fromHex, toHex, concatBytes } from '../../../../src/common/bytes.js';
import { SecretBytes } from '../../../../src/common/secret.js';
import { SeededRandom } from '../../../../src/common/time.js';
import { EncrId, IntegId, PrfId } from '../../../../src/ike/constants.js';
import { encrAlg } from '../../../../src/ike/crypto/algorithms.js';
import { aeadOpen, aeadSeal, cbcDecrypt, cbcEncrypt, integIcv } from '../../../../src/ike/crypto/ciphers.js';
import { createSkCipher, createSkPair } from '../../../../src/ike/crypto/sk.js';
import { deriveIkeSaKeys, type IkeSuite } from '../../../../src/ike/crypto/keys.js';
import { IntegrityError, SkMalformedError } from '../../../../src/ike/crypto/errors.js';
import { loadVectors } from './vectors.js';

const cbcV = loadVectors<{ vectors: { name: string; key: string; iv: string; plain: string; cipher: string }[] }>('aes-cbc-rfc3602.json');
for (const v of cbcV.vectors) {
  test(`AES-128-CBC matches RFC 3602 §4 ${v.name}`, () => {
    const alg = encrAlg(EncrId.ENCR_AES_CBC, 128);
    assert.equal(toHex(cbcEncrypt(alg, fromHex(v.key), fromHex(v.iv), fromHex(v.plain))), v.cipher);
    assert.equal(toHex(cbcDecrypt(alg, fromHex(v.key), fromHex(v.iv), fromHex(v.cipher))), v.plain);
  });
}

const gcmV = loadVectors<{ vectors: { name: string; keyBits: number; keySalt: string; iv: string; aad: string; plain: string; sealed: string }[] }>('aes-gcm.json');
for (const v of gcmV.vectors) {
  test(`AES-GCM-16 matches ${v.name} (salt | IV nonce, RFC 5282 §4)`, () => {
    const alg = encrAlg(EncrId.ENCR_AES_GCM_16, v.keyBits);
    assert.equal(toHex(aeadSeal(alg, fromHex(v.keySalt), fromHex(v.iv), fromHex(v.aad), fromHex(v.plain))), v.sealed);
    assert.equal(toHex(aeadOpen(alg, fromHex(v.keySalt), fromHex(v.iv), fromHex(v.aad), fromHex(v.sealed))), v.plain);
  });
}

interface ChachaV { name: string; keySalt: string; iv: string; aad: string; plain: string; sealed: string; ikeInnerPayloads?: string; ikeFirstInnerPayload?: number }
const chachaV = loadVectors<{ vectors: ChachaV[] }>('chacha20poly1305.json');
for (const v of chachaV.vectors) {
  test(`ChaCha20-Poly1305 matches ${v.name}`, () => {
    const alg = encrAlg(EncrId.ENCR_CHACHA20_POLY1305);
    assert.equal(toHex(aeadSeal(alg, fromHex(v.keySalt), fromHex(v.iv), fromHex(v.aad), fromHex(v.plain))), v.sealed);
    assert.equal(toHex(aeadOpen(alg, fromHex(v.keySalt), fromHex(v.iv), fromHex(v.aad), fromHex(v.sealed))), v.plain);
  });
}

test('SK payload of the RFC 7634 Appendix B IKEv2 example decrypts and re-encrypts byte-identically', () => {
  const v = chachaV.vectors.find((x) => x.ikeInnerPayloads)!;
  const sk = createSkCipher({ suite: { encrId: EncrId.ENCR_CHACHA20_POLY1305, prfId: PrfId.PRF_HMAC_SHA2_256 }, encKey: new SecretBytes(fromHex(v.keySalt)), integKey: new SecretBytes(new Uint8Array(0)) });
  const aad = fromHex(v.aad);
  const body = concatBytes(fromHex(v.iv), fromHex(v.sealed));
  const inner = sk.decrypt(body, aad);
  assert.equal(toHex(inner), v.ikeInnerPayloads);
  assert.equal(aad[aad.length - 4], v.ikeFirstInnerPayload); // SK header's Next Payload names the first inner payload
  assert.equal(sk.encryptedLength(inner.length), body.length);
  assert.equal(toHex(sk.encrypt(inner, aad, { iv: fromHex(v.iv) })), toHex(body));
  // The total length in the IKE header (octets 24..27) is the whole message: aad + body.
  assert.equal(new DataView(aad.buffer).getUint32(24), aad.length + body.length);
});

test('AES-GCM agrees with @noble/ciphers for random keys, nonces, AAD and plaintexts', () => {
  fc.assert(fc.property(fc.constantFrom(128, 256), fc.uint8Array({ minLength: 36, maxLength: 36 }), fc.uint8Array({ minLength: 8, maxLength: 8 }), fc.uint8Array({ maxLength: 64 }), fc.uint8Array({ maxLength: 300 }),
    (bits, ks, iv, aad, pt) => {
      const alg = encrAlg(EncrId.ENCR_AES_GCM_16, bits);
      const keySalt = ks.subarray(0, alg.keyLength + 4);
      const ours = aeadSeal(alg, keySalt, iv, aad, pt);
      const theirs = gcm(keySalt.slice(0, alg.keyLength), concatBytes(keySalt.subarray(alg.keyLength), iv), aad).encrypt(pt);
      assert.equal(toHex(ours), toHex(theirs));
    }), { numRuns: 100 });
});

test('ChaCha20-Poly1305 agrees with @noble/ciphers for random inputs (RFC 7634 nonce = salt | IV)', () => {
  fc.assert(fc.property(fc.uint8Array({ minLength: 36, maxLength: 36 }), fc.uint8Array({ minLength: 8, maxLength: 8 }), fc.uint8Array({ maxLength: 64 }), fc.uint8Array({ maxLength: 300 }),
    (keySalt, iv, aad, pt) => {
      const alg = encrAlg(EncrId.ENCR_CHACHA20_POLY1305);
      const theirs = chacha20poly1305(keySalt.slice(0, 32), concatBytes(keySalt.subarray(32), iv), aad).encrypt(pt);
      assert.equal(toHex(aeadSeal(alg, keySalt, iv, aad, pt)), toHex(theirs));
      assert.equal(toHex(aeadOpen(alg, keySalt, iv, aad, theirs)), toHex(pt));
    }), { numRuns: 100 });
});

const SUITES: readonly [string, IkeSuite][] = [
  ['AES-CBC-128 + HMAC-SHA2-256-128', { encrId: EncrId.ENCR_AES_CBC, encrKeyBits: 128, prfId: PrfId.PRF_HMAC_SHA2_256, integId: IntegId.AUTH_HMAC_SHA2_256_128 }],
  ['AES-CBC-256 + HMAC-SHA2-384-192', { encrId: EncrId.ENCR_AES_CBC, encrKeyBits: 256, prfId: PrfId.PRF_HMAC_SHA2_384, integId: IntegId.AUTH_HMAC_SHA2_384_192 }],
  ['AES-CBC-256 + HMAC-SHA2-512-256', { encrId: EncrId.ENCR_AES_CBC, encrKeyBits: 256, prfId: PrfId.PRF_HMAC_SHA2_512, integId: IntegId.AUTH_HMAC_SHA2_512_256 }],
  ['AES-CBC-128 + HMAC-SHA1-96', { encrId: EncrId.ENCR_AES_CBC, encrKeyBits: 128, prfId: PrfId.PRF_HMAC_SHA1, integId: IntegId.AUTH_HMAC_SHA1_96 }],
  ['AES-GCM-16-128', { encrId: EncrId.ENCR_AES_GCM_16, encrKeyBits: 128, prfId: PrfId.PRF_HMAC_SHA2_256 }],
  ['AES-GCM-16-256', { encrId: EncrId.ENCR_AES_GCM_16, encrKeyBits: 256, prfId: PrfId.PRF_HMAC_SHA2_384 }],
  ['ChaCha20-Poly1305', { encrId: EncrId.ENCR_CHACHA20_POLY1305, prfId: PrfId.PRF_HMAC_SHA2_256 }],
];

function pairFor(suite: IkeSuite, seed = 1) {
  const keys = deriveIkeSaKeys({ suite, sharedSecret: new SecretBytes(new SeededRandom(seed).bytes(32)), ni: new Uint8Array(32).fill(1), nr: new Uint8Array(32).fill(2), spiI: new Uint8Array(8).fill(3), spiR: new Uint8Array(8).fill(4) });
  return { i: createSkPair(suite, keys, 'initiator', new SeededRandom(seed)), r: createSkPair(suite, keys, 'responder', new SeededRandom(seed + 1)) };
}

/** A plausible IKE header + SK generic header with the right lengths, as the codec will build it. */
function aadFor(bodyLength: number, firstInner = 35): Uint8Array {
  const aad = new Uint8Array(32);
  const dv = new DataView(aad.buffer);
  aad.fill(0xab, 0, 16);
  aad[16] = 46; aad[17] = 0x20; aad[18] = 35; aad[19] = 0x08;
  dv.setUint32(24, 32 + bodyLength);
  aad[28] = firstInner;
  dv.setUint16(30, 4 + bodyLength);
  return aad;
}

for (const [name, suite] of SUITES) {
  test(`SK round trip initiator->responder and back, ${name}, with §3.14 padding`, () => {
    const { i, r } = pairFor(suite);
    fc.assert(fc.property(fc.uint8Array({ maxLength: 1500 }), (inner) => {
      const len = i.outbound.encryptedLength(inner.length);
      const aad = aadFor(len);
      const body = i.outbound.encrypt(inner, aad);
      assert.equal(body.length, len);
      if (!suite.integId) assert.equal((len - i.outbound.overhead) , inner.length + 1); // AEAD: no padding, only the pad length octet
      else assert.equal((len - i.outbound.overhead) % 16, 0);
      assert.equal(toHex(r.inbound.decrypt(body, aad)), toHex(inner));
      const back = r.outbound.encrypt(inner, aad);
      assert.equal(toHex(i.inbound.decrypt(back, aad)), toHex(inner));
    }), { numRuns: 40 });
  });

  test(`SK integrity failures are IntegrityError, never a bare Error, ${name}`, () => {
    const { i, r } = pairFor(suite);
    const inner = new TextEncoder().encode('IDi AUTH SA TSi TSr');
    const aad = aadFor(i.outbound.encryptedLength(inner.length));
    const body = i.outbound.encrypt(inner, aad);
    const isIntegrity = (e: unknown): boolean => e instanceof IntegrityError && e.code === 'ERR_IKE_INTEGRITY';
    for (let at = 0; at < body.length; at += 7) {
      const bad = new Uint8Array(body); bad[at] = bad[at]! ^ 0x01;
      assert.throws(() => r.inbound.decrypt(bad, aad), isIntegrity, `flip at ${at}`);
    }
    const badAad = new Uint8Array(aad); badAad[3] = badAad[3]! ^ 0x80; // tampered SPI in the header
    assert.throws(() => r.inbound.decrypt(body, badAad), isIntegrity);
    assert.throws(() => i.inbound.decrypt(body, aad), isIntegrity); // our own message: wrong direction's key
    const other = pairFor(suite, 99);
    assert.throws(() => other.r.inbound.decrypt(body, aad), isIntegrity); // wrong key
  });

  test(`SK truncated bodies are SkMalformedError, ${name}`, () => {
    const { r } = pairFor(suite);
    for (const n of [0, 1, r.inbound.overhead])
      assert.throws(() => r.inbound.decrypt(new Uint8Array(n), aadFor(n)), (e: unknown) => e instanceof SkMalformedError);
  });
}

test('SK decrypt rejects a pad length larger than the plaintext (authentic but malformed), RFC 7296 §3.14', () => {
  for (const [, suite] of [SUITES[0]!, SUITES[4]!]) {
    const keys = { encKey: new SecretBytes(new Uint8Array(suite.integId ? 16 : 20).fill(9)), integKey: new SecretBytes(new Uint8Array(suite.integId ? 32 : 0).fill(8)) };
    const sk = createSkCipher({ suite, ...keys, random: new SeededRandom(3) });
    const alg = sk.encr;
    // A correctly protected body whose last plaintext octet (the pad length) claims 255 octets of padding.
    const plain = concatBytes(new Uint8Array(15).fill(0xee), new Uint8Array([0xff]));
    const iv = new Uint8Array(alg.ivLength).fill(1);
    const aad = aadFor(alg.ivLength + plain.length + (alg.aead ? alg.icvLength : sk.integ!.icvLength));
    let body: Uint8Array;
    if (alg.aead) body = concatBytes(iv, aeadSeal(alg, keys.encKey.expose(), iv, aad, plain));
    else {
      const ct = cbcEncrypt(alg, keys.encKey.expose(), iv, plain);
      body = concatBytes(iv, ct, integIcv(sk.integ!, keys.integKey.expose(), aad, iv, ct));
    }
    assert.throws(() => sk.decrypt(body, aad), (e: unknown) => e instanceof SkMalformedError && /pad length 255/.test(e.message));
  }
});

test('AEAD IVs never repeat within one SK direction (counter), CBC IVs come from the Random port', () => {
  const { i } = pairFor(SUITES[4]![1]);
  const seen = new Set<string>();
  for (let n = 0; n < 1000; n++) {
    const body = i.outbound.encrypt(new Uint8Array(4), aadFor(i.outbound.encryptedLength(4)));
    const iv = toHex(body.subarray(0, 8));
    assert.ok(!seen.has(iv)); seen.add(iv);
  }
  const a = pairFor(SUITES[0]![1], 5).i.outbound.encrypt(new Uint8Array(4), aadFor(48));
  const b = pairFor(SUITES[0]![1], 5).i.outbound.encrypt(new Uint8Array(4), aadFor(48));
  assert.equal(toHex(a.subarray(0, 16)), toHex(b.subarray(0, 16)));
});

test('SK cipher refuses keys of the wrong length', () => {
  assert.throws(() => createSkCipher({ suite: SUITES[4]![1], encKey: new SecretBytes(new Uint8Array(16)), integKey: new SecretBytes(new Uint8Array(0)) }), SkMalformedError);
});

test('SK decrypt of arbitrary bytes only ever fails with IntegrityError or SkMalformedError', () => {
  for (const [, suite] of SUITES) {
    const { r } = pairFor(suite);
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), fc.uint8Array({ maxLength: 40 }), (body, aad) => {
      try { r.inbound.decrypt(body, aad); assert.fail('random bytes authenticated'); } catch (e) {
        assert.ok(e instanceof IntegrityError || e instanceof SkMalformedError, String(e));
      }
    }), { numRuns: 200 });
  }
});

test('weak suite (3DES-CBC + HMAC-MD5-96, PRF_HMAC_MD5) works when a profile configured it; 8-octet blocks and IV', () => {
  const suite: IkeSuite = { encrId: EncrId.ENCR_3DES, prfId: PrfId.PRF_HMAC_MD5, integId: IntegId.AUTH_HMAC_MD5_96 };
  const { i, r } = pairFor(suite);
  const inner = new Uint8Array(13).fill(1);
  const len = i.outbound.encryptedLength(inner.length);
  assert.equal(len, 8 + 16 + 12);
  const aad = aadFor(len);
  assert.equal(toHex(r.inbound.decrypt(i.outbound.encrypt(inner, aad), aad)), toHex(inner));
});
