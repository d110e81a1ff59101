// PRF, prf+ and the RFC 7296 §2.14/§2.17/§2.18 derivations. HMAC vectors from RFC 4231/4868;
// prf+ checked against an independent @noble/hashes implementation written from the RFC text;
// the whole KDF chain against libreswan's known answers (NIST SP 800-135 IKEv2 KDF test shape).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256, sha384, sha512 } from '@noble/hashes/sha2.js';
import { sha1 } from '@noble/hashes/legacy.js';
import { fromHex, toHex, concatBytes } from '../../../../src/common/bytes.js';
import { SecretBytes } from '../../../../src/common/secret.js';
import { KipsecError } from '../../../../src/common/errors.js';
import { EncrId, IntegId, PrfId } from '../../../../src/ike/constants.js';
import { createPrf, prfPlus } from '../../../../src/ike/crypto/prf.js';
import { integIcv } from '../../../../src/ike/crypto/ciphers.js';
import { integAlg } from '../../../../src/ike/crypto/algorithms.js';
import { computeRekeyedSkeyseed, computeSkeyseed, deriveChildSaKeys, deriveIkeSaKeys, deriveRekeyedIkeSaKeys } from '../../../../src/ike/crypto/keys.js';
import { loadVectors } from './vectors.js';

interface HmacFile { prf: { name: string; key: string; data: string; sha256: string; sha384: string; sha512: string }[]; integ: { name: string; alg: number; key: string; data: string; icv: string }[] }
const hv = loadVectors<HmacFile>('hmac-sha2.json');

for (const v of hv.prf) {
  for (const [id, field] of [[PrfId.PRF_HMAC_SHA2_256, 'sha256'], [PrfId.PRF_HMAC_SHA2_384, 'sha384'], [PrfId.PRF_HMAC_SHA2_512, 'sha512']] as const) {
    test(`PRF_HMAC_SHA2 matches ${v.name} (${field}), RFC 4231`, () => {
      assert.equal(toHex(createPrf(id).compute(fromHex(v.key), fromHex(v.data))), v[field]);
    });
  }
}

for (const v of hv.integ) {
  test(`integrity ICV matches ${v.name}, RFC 4868 §2.7.2`, () => {
    assert.equal(toHex(integIcv(integAlg(v.alg), fromHex(v.key), fromHex(v.data))), v.icv);
  });
}

/** prf+ written straight from RFC 7296 §2.13 on top of @noble/hashes (an independent oracle). */
function referencePrfPlus(hash: Parameters<typeof hmac>[0], key: Uint8Array, seed: Uint8Array, length: number): Uint8Array {
  const out: number[] = [];
  let t = new Uint8Array(0);
  for (let n = 1; out.length < length; n++) {
    t = hmac(hash, key, concatBytes(t, seed, new Uint8Array([n])));
    out.push(...t);
  }
  return new Uint8Array(out.slice(0, length));
}

test('prf+ equals an independent RFC 7296 §2.13 implementation for random keys, seeds and lengths', () => {
  const hashes = [[PrfId.PRF_HMAC_SHA1, sha1], [PrfId.PRF_HMAC_SHA2_256, sha256], [PrfId.PRF_HMAC_SHA2_384, sha384], [PrfId.PRF_HMAC_SHA2_512, sha512]] as const;
  fc.assert(fc.property(
    fc.constantFrom(...hashes), fc.uint8Array({ maxLength: 80 }), fc.uint8Array({ maxLength: 200 }), fc.integer({ min: 0, max: 600 }),
    ([id, h], key, seed, len) => {
      assert.equal(toHex(prfPlus(createPrf(id), key, seed, len).expose()), toHex(referencePrfPlus(h, key, seed, len)));
    }), { numRuns: 200 });
});

test('prf+ refuses to produce more than 255 blocks, RFC 7296 §2.13', () => {
  const prf = createPrf(PrfId.PRF_HMAC_SHA2_256);
  assert.equal(prfPlus(prf, new Uint8Array(32), new Uint8Array(0), 255 * 32).length, 255 * 32);
  assert.throws(() => prfPlus(prf, new Uint8Array(32), new Uint8Array(0), 255 * 32 + 1), (e: unknown) => e instanceof KipsecError && e.code === 'ERR_IKE_PRF_PLUS_LENGTH');
});

test('prf+ output is wrapped in SecretBytes and redacted in logs', () => {
  const k = prfPlus(createPrf(PrfId.PRF_HMAC_SHA2_256), new Uint8Array(32), new Uint8Array(4), 16);
  assert.ok(k instanceof SecretBytes);
  assert.equal(JSON.stringify({ k }), '{"k":"[redacted]"}');
});

// --- libreswan KAT (SHA-1 PRF) ----------------------------------------------------------

interface KdfFile { prf: number; gir: string; girNew: string; ni: string; nr: string; spiI: string; spiR: string; dkmLength: number; skeyseed: string; dkm: string; dkmChild: string; dkmChildDh: string; skeyseedRekey: string }
const kdf = loadVectors<KdfFile>('ikev2-kdf-libreswan.json');

test('SKEYSEED = prf(Ni | Nr, g^ir) matches the libreswan known answer, RFC 7296 §2.14', () => {
  const s = computeSkeyseed(createPrf(kdf.prf), fromHex(kdf.ni), fromHex(kdf.nr), new SecretBytes(fromHex(kdf.gir)));
  assert.equal(toHex(s.expose()), kdf.skeyseed);
});

test('DKM = prf+(SKEYSEED, Ni | Nr | SPIi | SPIr) matches the libreswan known answer, RFC 7296 §2.14', () => {
  const dkm = prfPlus(createPrf(kdf.prf), fromHex(kdf.skeyseed), concatBytes(fromHex(kdf.ni), fromHex(kdf.nr), fromHex(kdf.spiI), fromHex(kdf.spiR)), kdf.dkmLength);
  assert.equal(toHex(dkm.expose()), kdf.dkm);
});

test('deriveIkeSaKeys cuts the DKM in the §2.14 order SK_d|SK_ai|SK_ar|SK_ei|SK_er|SK_pi|SK_pr', () => {
  // SHA-1 PRF (20) + HMAC-SHA1-96 (20) + AES-CBC-128 (16): 3*20 + 2*20 + 2*16 = 132 = the vector's DKM length.
  const keys = deriveIkeSaKeys({
    suite: { encrId: EncrId.ENCR_AES_CBC, encrKeyBits: 128, prfId: PrfId.PRF_HMAC_SHA1, integId: IntegId.AUTH_HMAC_SHA1_96 },
    sharedSecret: new SecretBytes(fromHex(kdf.gir)), ni: fromHex(kdf.ni), nr: fromHex(kdf.nr), spiI: fromHex(kdf.spiI), spiR: fromHex(kdf.spiR),
  });
  const all = concatBytes(...[keys.skD, keys.skAi, keys.skAr, keys.skEi, keys.skEr, keys.skPi, keys.skPr].map((k) => k.expose()));
  assert.equal(toHex(all), kdf.dkm);
  assert.deepEqual([keys.skD, keys.skAi, keys.skEi, keys.skPi].map((k) => k.length), [20, 20, 16, 20]);
});

test('Child SA KEYMAT without PFS = prf+(SK_d, Ni | Nr) matches libreswan, RFC 7296 §2.17', () => {
  const skD = fromHex(kdf.dkm).slice(0, 20);
  // 2 * (AES-256 key 32 + HMAC-SHA2-256 key 32) = 128 octets, a prefix of the 132-octet known answer.
  const k = deriveChildSaKeys({ prfId: kdf.prf, skD: new SecretBytes(skD), suite: { encrId: EncrId.ENCR_AES_CBC, encrKeyBits: 256, integId: IntegId.AUTH_HMAC_SHA2_256_128 }, ni: fromHex(kdf.ni), nr: fromHex(kdf.nr) });
  const all = concatBytes(k.initiatorToResponder.encr.expose(), k.initiatorToResponder.integ.expose(), k.responderToInitiator.encr.expose(), k.responderToInitiator.integ.expose());
  assert.equal(toHex(all), kdf.dkmChild.slice(0, 256));
});

test('Child SA KEYMAT with PFS = prf+(SK_d, g^ir (new) | Ni | Nr) matches libreswan, RFC 7296 §2.17', () => {
  const skD = fromHex(kdf.dkm).slice(0, 20);
  // AES-GCM-16-256 for ESP: 32-octet key + 4-octet salt per direction, no integrity key.
  const k = deriveChildSaKeys({ prfId: kdf.prf, skD: new SecretBytes(skD), suite: { encrId: EncrId.ENCR_AES_GCM_16, encrKeyBits: 256 }, ni: fromHex(kdf.ni), nr: fromHex(kdf.nr), pfsSharedSecret: new SecretBytes(fromHex(kdf.girNew)) });
  assert.equal(k.initiatorToResponder.encr.length, 36);
  assert.equal(k.initiatorToResponder.integ.length, 0);
  assert.equal(toHex(concatBytes(k.initiatorToResponder.encr.expose(), k.responderToInitiator.encr.expose())), kdf.dkmChildDh.slice(0, 144));
});

test('rekeyed SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr) matches libreswan, RFC 7296 §2.18', () => {
  const skD = new SecretBytes(fromHex(kdf.dkm).slice(0, 20));
  const s = computeRekeyedSkeyseed(createPrf(kdf.prf), skD, new SecretBytes(fromHex(kdf.girNew)), fromHex(kdf.ni), fromHex(kdf.nr));
  assert.equal(toHex(s.expose()), kdf.skeyseedRekey);
});

test('rekeyed IKE SA keys use the old PRF for SKEYSEED and the new suite for prf+, RFC 7296 §2.18', () => {
  const skD = new SecretBytes(fromHex(kdf.dkm).slice(0, 20));
  const suite = { encrId: EncrId.ENCR_AES_GCM_16, encrKeyBits: 256, prfId: PrfId.PRF_HMAC_SHA2_256 };
  const keys = deriveRekeyedIkeSaKeys({ suite, oldPrfId: PrfId.PRF_HMAC_SHA1, oldSkD: skD, sharedSecret: new SecretBytes(fromHex(kdf.girNew)), ni: fromHex(kdf.ni), nr: fromHex(kdf.nr), spiI: fromHex('0102030405060708'), spiR: fromHex('1112131415161718') });
  const expected = prfPlus(createPrf(PrfId.PRF_HMAC_SHA2_256), fromHex(kdf.skeyseedRekey), fromHex(kdf.ni + kdf.nr + '0102030405060708' + '1112131415161718'), 32 * 3 + 36 * 2);
  assert.equal(toHex(concatBytes(keys.skD.expose(), keys.skAi.expose(), keys.skAr.expose(), keys.skEi.expose(), keys.skEr.expose(), keys.skPi.expose(), keys.skPr.expose())), toHex(expected.expose()));
  assert.equal(keys.skAi.length, 0);
  assert.equal(keys.skEi.length, 36);
});

test('an AEAD suite with an integrity transform is refused, RFC 5282 §8', () => {
  assert.throws(() => deriveIkeSaKeys({ suite: { encrId: EncrId.ENCR_AES_GCM_16, encrKeyBits: 128, prfId: PrfId.PRF_HMAC_SHA2_256, integId: IntegId.AUTH_HMAC_SHA2_256_128 }, sharedSecret: new SecretBytes(new Uint8Array(32)), ni: new Uint8Array(16), nr: new Uint8Array(16), spiI: new Uint8Array(8), spiR: new Uint8Array(8) }),
    (e: unknown) => e instanceof KipsecError && e.code === 'ERR_IKE_UNSUPPORTED_ALGORITHM');
});
