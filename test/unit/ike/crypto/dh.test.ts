// Key exchange: RFC 5903 §8 ECP vectors, RFC 7748 / RFC 8031 X25519 vectors, the RFC 3526 primes
// recomputed from pi, MODP results against a bigint modpow, differential checks against
// @noble/curves, and every peer-value validation rule (typed InvalidKeyExchangeError).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { x25519 } from '@noble/curves/ed25519.js';
import { p256, p384, p521 } from '@noble/curves/nist.js';
import { fromHex, toHex, concatBytes } from '../../../../src/common/bytes.js';
import { SeededRandom } from '../../../../src/common/time.js';
import { DhId } from '../../../../src/ike/constants.js';
import { createKeyShare, keyExchangeLength, keyShareFromPrivate, modpPrime, validatePeerPublicValue } from '../../../../src/ike/crypto/dh.js';
import { InvalidKeyExchangeError, UnsupportedAlgorithmError } from '../../../../src/ike/crypto/errors.js';
import { loadVectors } from './vectors.js';

const isKeError = (e: unknown): boolean => e instanceof InvalidKeyExchangeError && e.code === 'ERR_IKE_INVALID_KE_VALUE';

const ecp = loadVectors<{ vectors: { group: number; i: string; gi: string; r: string; gr: string; gir: string }[] }>('ecp-rfc5903.json');
for (const v of ecp.vectors) {
  test(`ECP group ${v.group} matches RFC 5903 §8 (public values x|y and g^ir)`, () => {
    const a = keyShareFromPrivate(v.group, fromHex(v.i));
    const b = keyShareFromPrivate(v.group, fromHex(v.r));
    assert.equal(toHex(a.publicValue), v.gi.toLowerCase());
    assert.equal(toHex(b.publicValue), v.gr.toLowerCase());
    assert.equal(toHex(a.computeSharedSecret(b.publicValue).expose()), v.gir.toLowerCase());
    assert.equal(toHex(b.computeSharedSecret(a.publicValue).expose()), v.gir.toLowerCase());
  });
}

const xv = loadVectors<{ vectors: { name: string; a: string; A: string; b: string; B: string; K: string }[] }>('x25519.json');
for (const v of xv.vectors) {
  test(`Curve25519 (group 31) matches ${v.name}`, () => {
    const a = keyShareFromPrivate(DhId.CURVE25519, fromHex(v.a));
    const b = keyShareFromPrivate(DhId.CURVE25519, fromHex(v.b));
    assert.equal(toHex(a.publicValue), v.A);
    assert.equal(toHex(b.publicValue), v.B);
    assert.equal(toHex(a.computeSharedSecret(b.publicValue).expose()), v.K);
    assert.equal(toHex(b.computeSharedSecret(a.publicValue).expose()), v.K);
  });
}

/** pi * 2^bits, truncated, by Machin's formula in bigint fixed point (independent of node). */
function piTimes2Pow(bits: number): bigint {
  const guard = 64;
  const one = 1n << BigInt(bits + guard);
  const arctanInv = (x: bigint): bigint => {
    let sum = 0n; let term = one / x; let k = 1n; const x2 = x * x; let sign = 1n;
    while (term !== 0n) { sum += sign * (term / k); term /= x2; k += 2n; sign = -sign; }
    return sum;
  };
  return (16n * arctanInv(5n) - 4n * arctanInv(239n)) >> BigInt(guard);
}

const modp = loadVectors<{ groups: { group: number; bits: number; c: number; rfc: string }[] }>('modp-rfc3526.json');
for (const g of modp.groups) {
  test(`MODP group ${g.group} prime equals the ${g.rfc} definition from pi`, () => {
    const n = BigInt(g.bits);
    const p = (1n << n) - (1n << (n - 64n)) - 1n + (1n << 64n) * (piTimes2Pow(g.bits - 130) + BigInt(g.c));
    assert.equal(toHex(modpPrime(g.group)), p.toString(16).padStart(g.bits / 4, '0'));
  });
}

function modPow(b: bigint, e: bigint, m: bigint): bigint {
  let r = 1n; b %= m;
  while (e > 0n) { if (e & 1n) r = (r * b) % m; b = (b * b) % m; e >>= 1n; }
  return r;
}
const big = (b: Uint8Array): bigint => BigInt('0x' + (toHex(b) || '0'));

for (const group of [DhId.MODP_2048, DhId.MODP_3072, DhId.MODP_4096]) {
  test(`MODP group ${group}: public value and g^ir equal a bigint modpow, padded to the prime length (RFC 7296 §2.14)`, () => {
    const xa = fromHex('00000000000000000000000000000000000000000000000000000000000000000000000000000002ff'); // leading zeros stay harmless
    const a = keyShareFromPrivate(group, xa);
    const b = createKeyShare(group, { random: new SeededRandom(group) });
    const p = big(modpPrime(group));
    assert.equal(a.publicValue.length, keyExchangeLength(group));
    assert.equal(big(a.publicValue), modPow(2n, big(xa), p));
    const s = a.computeSharedSecret(b.publicValue);
    assert.equal(s.length, keyExchangeLength(group));
    assert.equal(big(s.expose()), modPow(big(b.publicValue), big(xa), p));
    assert.equal(toHex(b.computeSharedSecret(a.publicValue).expose()), toHex(s.expose()));
  });
}

test('MODP refuses peer values outside 1 < y < p-1 and of the wrong length (RFC 8247 §2.4)', () => {
  const a = createKeyShare(DhId.MODP_2048);
  const p = modpPrime(DhId.MODP_2048);
  const pMinus1 = new Uint8Array(p); pMinus1[255] = pMinus1[255]! - 1;
  const one = new Uint8Array(256); one[255] = 1;
  for (const bad of [new Uint8Array(256), one, pMinus1, p, new Uint8Array(256).fill(0xff)])
    assert.throws(() => a.computeSharedSecret(bad), isKeError);
  assert.throws(() => a.computeSharedSecret(new Uint8Array(255).fill(7)), isKeError);
});

test('ECP refuses points off the curve, unreduced coordinates and wrong lengths (RFC 5903 §7)', () => {
  const a = createKeyShare(DhId.ECP_256);
  const b = createKeyShare(DhId.ECP_256);
  const offCurve = new Uint8Array(b.publicValue); offCurve[63] = offCurve[63]! ^ 1;
  assert.throws(() => a.computeSharedSecret(offCurve), isKeError);
  assert.throws(() => a.computeSharedSecret(new Uint8Array(64)), isKeError); // (0,0): not on the curve
  assert.throws(() => a.computeSharedSecret(new Uint8Array(64).fill(0xff)), isKeError); // x, y >= p
  assert.throws(() => a.computeSharedSecret(concatBytes(new Uint8Array([4]), b.publicValue)), isKeError); // SEC1 prefix is not IKE encoding
  assert.throws(() => a.computeSharedSecret(b.publicValue.subarray(0, 32)), isKeError); // compressed form
  assert.throws(() => validatePeerPublicValue(DhId.ECP_384, b.publicValue), isKeError); // P-256 point for group 20
});

test('Curve25519 refuses low-order points whose shared secret is all-zero (RFC 8031 §2, RFC 7748 §6.1)', () => {
  const a = createKeyShare(DhId.CURVE25519);
  const lowOrder = [
    '0000000000000000000000000000000000000000000000000000000000000000',
    '0100000000000000000000000000000000000000000000000000000000000000',
    'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800',
  ];
  for (const hex of lowOrder) assert.throws(() => a.computeSharedSecret(fromHex(hex)), isKeError, hex);
  assert.throws(() => a.computeSharedSecret(new Uint8Array(31)), isKeError);
});

test('weak MODP groups need allowWeak; RFC 5114 groups 22-24 are refused with a clear message', () => {
  for (const g of [DhId.MODP_768, DhId.MODP_1024, DhId.MODP_1536]) {
    assert.throws(() => createKeyShare(g), (e: unknown) => e instanceof UnsupportedAlgorithmError && /weak/.test(e.message));
    const a = createKeyShare(g, { allowWeak: true });
    const b = createKeyShare(g, { allowWeak: true });
    assert.equal(toHex(a.computeSharedSecret(b.publicValue).expose()), toHex(b.computeSharedSecret(a.publicValue).expose()));
  }
  for (const g of [22, 23, 24])
    assert.throws(() => createKeyShare(g, { allowWeak: true }), (e: unknown) => e instanceof UnsupportedAlgorithmError && /RFC 5114/.test(e.message));
  assert.throws(() => createKeyShare(99), UnsupportedAlgorithmError);
});

test('fixed randomness gives reproducible key shares (engine tests rely on it)', () => {
  for (const g of [DhId.CURVE25519, DhId.ECP_256, DhId.ECP_521, DhId.MODP_2048]) {
    const a = createKeyShare(g, { random: new SeededRandom(7) });
    const b = createKeyShare(g, { random: new SeededRandom(7) });
    assert.equal(toHex(a.publicValue), toHex(b.publicValue));
  }
});

// --- differential against @noble/curves -------------------------------------------------

test('X25519 agrees with @noble/curves for random private keys', () => {
  fc.assert(fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.uint8Array({ minLength: 32, maxLength: 32 }), (sa, sb) => {
    const a = keyShareFromPrivate(DhId.CURVE25519, sa);
    assert.equal(toHex(a.publicValue), toHex(x25519.getPublicKey(sa)));
    const nobleB = x25519.getPublicKey(sb);
    assert.equal(toHex(a.computeSharedSecret(nobleB).expose()), toHex(x25519.getSharedSecret(sa, nobleB)));
  }), { numRuns: 50 });
});

const nist = [[DhId.ECP_256, p256], [DhId.ECP_384, p384], [DhId.ECP_521, p521]] as const;
for (const [group, curve] of nist) {
  test(`ECP group ${group} ECDH agrees with @noble/curves (x|y encoding, x-coordinate secret)`, () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 2 ** 31 }), (seed) => {
      const ours = createKeyShare(group, { random: new SeededRandom(seed) });
      const theirSecret = curve.utils.randomSecretKey();
      const theirPub = curve.getPublicKey(theirSecret, false).subarray(1); // drop the 0x04
      const shared = ours.computeSharedSecret(theirPub);
      const nobleShared = curve.getSharedSecret(theirSecret, concatBytes(new Uint8Array([4]), ours.publicValue), true).subarray(1);
      assert.equal(toHex(shared.expose()), toHex(nobleShared));
      assert.ok(curve.utils.isValidPublicKey(concatBytes(new Uint8Array([4]), ours.publicValue), false));
    }), { numRuns: group === DhId.ECP_521 ? 8 : 20 });
  });
}
