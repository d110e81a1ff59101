// ML-KEM as an IKEv2 key exchange: NIST ACVP known answers (FIPS 203 KeyGen, Encaps, Decaps and the
// §7.2 encapsulation key check; subset in mlkem-acvp.json), the KE payload sizes of
// draft-ietf-ipsecme-ikev2-mlkem, both roles through the method-agnostic entry points, and peer input
// that must fail with InvalidKeyExchangeError (never another exception). Vectors run on every backend
// this runtime has; mlkem-differential.test.ts crosses the two backends.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { inspect } from 'node:util';
import fc from 'fast-check';
import { ml_kem512, ml_kem768, ml_kem1024 } from '@noble/post-quantum/ml-kem.js';
import { concatBytes, fromHex, toHex } from '../../../../src/common/bytes.js';
import { SeededRandom } from '../../../../src/common/time.js';
import { DhId } from '../../../../src/ike/constants.js';
import { InvalidKeyExchangeError } from '../../../../src/ike/crypto/errors.js';
import {
  checkCiphertext, checkEncapsulationKey, createMlKemShare, encapsulateMlKem, encapsulateMlKemDeterministic, ML_KEM_PARAMS,
  mlKemShareFromSeed, nodeHasMlKem, type MlKemBackendName,
} from '../../../../src/ike/crypto/mlkem.js';
import { initiateKeyExchange, isKemMethod, keyExchangeDataLength, respondToKeyExchange } from '../../../../src/ike/crypto/key-exchange.js';
import { acvp, cctv, METHOD } from './mlkem-vectors.js';

const backends: MlKemBackendName[] = nodeHasMlKem() ? ['noble', 'node'] : ['noble'];
const isKeError = (e: unknown): boolean => e instanceof InvalidKeyExchangeError && e.code === 'ERR_IKE_INVALID_KE_VALUE' && e.notify === 'INVALID_SYNTAX';
const NOBLE_BY_ID = { [DhId.ML_KEM_512]: ml_kem512, [DhId.ML_KEM_768]: ml_kem768, [DhId.ML_KEM_1024]: ml_kem1024 } as const;

for (const backend of backends) {
  for (const v of acvp.keyGen) {
    test(`FIPS 203 ML-KEM.KeyGen_internal, ACVP keyGen tc ${v.tcId} (${v.parameterSet}, ${backend}): seed d||z gives the ACVP ek`, () => {
      const share = mlKemShareFromSeed(METHOD[v.parameterSet], concatBytes(fromHex(v.d), fromHex(v.z)), { backend });
      assert.equal(toHex(share.publicValue), v.ek);
    });
  }
  for (const v of acvp.decapsulation) {
    test(`FIPS 203 ML-KEM.Decaps, ACVP decapsulation tc ${v.tcId} (${v.parameterSet}, ${v.reason}, ${backend}): the ACVP key K`, () => {
      // A modified ciphertext must give the implicit-rejection key, not an error (FIPS 203 §6.3).
      const share = mlKemShareFromSeed(METHOD[v.parameterSet], concatBytes(fromHex(v.d), fromHex(v.z)), { backend });
      assert.equal(toHex(share.computeSharedSecret(fromHex(v.c)).expose()), v.k);
    });
  }
}

for (const v of acvp.keyGen) {
  test(`FIPS 203 ML-KEM.KeyGen_internal, ACVP keyGen tc ${v.tcId} (${v.parameterSet}): the library's dk hashes to the ACVP dk`, () => {
    // Checks the expanded key the library decapsulates with, which the raw seed API never shows.
    const { secretKey } = NOBLE_BY_ID[METHOD[v.parameterSet] as keyof typeof NOBLE_BY_ID].keygen(concatBytes(fromHex(v.d), fromHex(v.z)));
    assert.equal(createHash('sha256').update(secretKey).digest('hex'), v.dkSha256);
  });
}

for (const v of acvp.encapsulation) {
  test(`FIPS 203 ML-KEM.Encaps_internal, ACVP encapsulation tc ${v.tcId} (${v.parameterSet}): ek and m give the ACVP c and K`, () => {
    const r = encapsulateMlKemDeterministic(METHOD[v.parameterSet], fromHex(v.ek), fromHex(v.m));
    assert.equal(toHex(r.publicValue), v.c);
    assert.equal(toHex(r.sharedSecret.expose()), v.k);
  });
}

for (const v of acvp.encapsulationKeyCheck) {
  test(`FIPS 203 §7.2 encapsulation key check, ACVP tc ${v.tcId} (${v.parameterSet}): ${v.testPassed ? 'accepted' : `refused, "${v.reason}"`}`, () => {
    const id = METHOD[v.parameterSet];
    const ek = fromHex(v.ek);
    if (v.testPassed) {
      checkEncapsulationKey(id, ek);
      for (const backend of backends) assert.equal(encapsulateMlKem(id, ek, { backend }).publicValue.length, ML_KEM_PARAMS.get(id)!.ciphertextLength);
    } else {
      // This ACVP release's invalid keys are also 416 octets too long, so the §7.2 type check refuses
      // them before the modulus check runs; the CCTV vectors below exercise the modulus check itself.
      assert.throws(() => checkEncapsulationKey(id, ek), (e: unknown) => isKeError(e) && /octets, want|modulus check/.test((e as Error).message));
      // The responder path runs the same check first: a crafted key from the network is a typed error.
      for (const backend of backends) assert.throws(() => encapsulateMlKem(id, ek, { backend }), isKeError);
    }
  });
}

for (const v of cctv.vectors) {
  test(`FIPS 203 §7.2 modulus check, C2SP CCTV modulus vector line ${v.line} (${v.parameterSet}): one coefficient >= q is refused`, () => {
    const id = METHOD[v.parameterSet];
    assert.throws(() => checkEncapsulationKey(id, fromHex(v.ek)), (e: unknown) => isKeError(e) && /modulus check/.test((e as Error).message));
    for (const backend of backends) assert.throws(() => encapsulateMlKem(id, fromHex(v.ek), { backend }), isKeError);
  });
}

test('FIPS 203 §7.2 modulus check at the edges: q and 4095 in the first and last coefficient are refused, q-1 is not', () => {
  const valid = acvp.keyGen.find((v) => v.parameterSet === 'ML-KEM-768')!;
  const ek = fromHex(valid.ek);
  const withCoefficient = (index: number, value: number): Uint8Array => {
    const out = new Uint8Array(ek);
    const at = Math.floor(index / 2) * 3;
    if (index % 2 === 0) { out[at] = value & 0xff; out[at + 1] = (out[at + 1]! & 0xf0) | (value >> 8); } else { out[at + 1] = (out[at + 1]! & 0x0f) | ((value & 0x0f) << 4); out[at + 2] = value >> 4; }
    return out;
  };
  const last = 256 * 3 - 1;
  for (const index of [0, 1, last]) {
    for (const value of [3329, 4095]) assert.throws(() => checkEncapsulationKey(DhId.ML_KEM_768, withCoefficient(index, value)), /modulus check \(coefficient \d+ at octet/);
    checkEncapsulationKey(DhId.ML_KEM_768, withCoefficient(index, 3328));
  }
  // The 32-octet seed rho after the polynomials is not range-checked: any bytes are valid there.
  const rho = new Uint8Array(ek); rho.fill(0xff, 1152);
  checkEncapsulationKey(DhId.ML_KEM_768, rho);
});

test('draft-ietf-ipsecme-ikev2-mlkem KE data sizes: ek 800/1184/1568 from the initiator, c 768/1088/1568 from the responder', () => {
  const want = { [DhId.ML_KEM_512]: [800, 768], [DhId.ML_KEM_768]: [1184, 1088], [DhId.ML_KEM_1024]: [1568, 1568] };
  for (const [id, [ek, c]] of Object.entries(want).map(([k, v]) => [Number(k), v] as const)) {
    assert.equal(keyExchangeDataLength(id, 'initiator'), ek);
    assert.equal(keyExchangeDataLength(id, 'responder'), c);
    const share = initiateKeyExchange(id);
    assert.equal(share.publicValue.length, ek);
    assert.equal(respondToKeyExchange(id, share.publicValue).publicValue.length, c);
  }
  // A DH group's KE data is the same length both ways.
  assert.equal(keyExchangeDataLength(DhId.CURVE25519, 'initiator'), 32);
  assert.equal(keyExchangeDataLength(DhId.CURVE25519, 'responder'), 32);
});

test('RFC 9370 §2.2.2 both roles through one interface: ML-KEM and X25519 give both sides the same secret', () => {
  for (const id of [DhId.ML_KEM_512, DhId.ML_KEM_768, DhId.ML_KEM_1024, DhId.CURVE25519]) {
    const initiator = initiateKeyExchange(id);
    const responder = respondToKeyExchange(id, initiator.publicValue);
    const secret = initiator.computeSharedSecret(responder.publicValue);
    assert.equal(toHex(secret.expose()), toHex(responder.sharedSecret.expose()), `method ${id}`);
    assert.equal(isKemMethod(id), id !== DhId.CURVE25519);
  }
});

test('ML-KEM with injected randomness is reproducible (the ike-pair harness runs on SeededRandom)', () => {
  const run = (): string[] => {
    const random = new SeededRandom(7);
    const share = createMlKemShare(DhId.ML_KEM_768, { random });
    const r = encapsulateMlKem(DhId.ML_KEM_768, share.publicValue, { random });
    return [toHex(share.publicValue), toHex(r.publicValue), toHex(share.computeSharedSecret(r.publicValue).expose())];
  };
  assert.deepEqual(run(), run());
});

test('exportPrivate returns the 64-octet seed: a restarted daemon rebuilds the same key pair and decapsulates', () => {
  const share = createMlKemShare(DhId.ML_KEM_768);
  const r = encapsulateMlKem(DhId.ML_KEM_768, share.publicValue);
  const seed = share.exportPrivate();
  assert.equal(seed.length, 64);
  const again = mlKemShareFromSeed(DhId.ML_KEM_768, seed.expose());
  assert.equal(toHex(again.publicValue), toHex(share.publicValue));
  assert.equal(toHex(again.computeSharedSecret(r.publicValue).expose()), toHex(r.sharedSecret.expose()));
  assert.match(inspect(r.sharedSecret), /redacted/);
  assert.equal(JSON.stringify({ k: seed }), '{"k":"[redacted]"}');
});

test('FIPS 203 §7.2/§7.3 type checks: wrong-length ek or ciphertext is InvalidKeyExchangeError naming both lengths', () => {
  const share = createMlKemShare(DhId.ML_KEM_768);
  assert.throws(() => encapsulateMlKem(DhId.ML_KEM_768, share.publicValue.subarray(1)), (e: unknown) => isKeError(e) && (e as Error).message === 'ML-KEM-768: encapsulation key is 1183 octets, want 1184');
  assert.throws(() => encapsulateMlKem(DhId.ML_KEM_512, share.publicValue), /ML-KEM-512: encapsulation key is 1184 octets, want 800/);
  assert.throws(() => share.computeSharedSecret(new Uint8Array(1089)), (e: unknown) => isKeError(e) && (e as Error).message === 'ML-KEM-768: ciphertext is 1089 octets, want 1088');
  assert.throws(() => share.computeSharedSecret(new Uint8Array(0)), isKeError);
  assert.throws(() => checkCiphertext(DhId.ML_KEM_1024, new Uint8Array(1088)), /want 1568/);
  // What a logged stack shows: the KEM's name, not the DH wording of the parent class.
  assert.throws(() => checkCiphertext(DhId.ML_KEM_1024, new Uint8Array(1)), (e: unknown) =>
    /^InvalidMlKemDataError: ML-KEM-1024: ciphertext is 1 octets, want 1568\n/.test((e as Error).stack ?? ''));
  assert.throws(() => mlKemShareFromSeed(DhId.ML_KEM_768, new Uint8Array(32)), /seed is 32 octets, want 64/);
  assert.throws(() => encapsulateMlKemDeterministic(DhId.ML_KEM_768, share.publicValue, new Uint8Array(31)), /m is 31 octets, want 32/);
});

test('random bytes as the peer\'s ek or ciphertext: a typed error or a key, never another exception', () => {
  const share = createMlKemShare(DhId.ML_KEM_512);
  fc.assert(fc.property(fc.uint8Array({ minLength: 0, maxLength: 900 }), fc.boolean(), (bytes, asEk) => {
    try {
      const out = asEk ? encapsulateMlKem(DhId.ML_KEM_512, bytes).sharedSecret : share.computeSharedSecret(bytes);
      assert.equal(out.length, 32);
    } catch (e) {
      assert.ok(isKeError(e), `unexpected ${String(e)}`);
    }
  }), { numRuns: 200 });
  // Right-length random keys: practically all fail the modulus check (each coefficient is below q with probability 3329/4096).
  fc.assert(fc.property(fc.uint8Array({ minLength: 800, maxLength: 800 }), (ek) => {
    try { encapsulateMlKem(DhId.ML_KEM_512, ek); } catch (e) { assert.ok(isKeError(e)); }
  }), { numRuns: 50 });
});

test('a non-ML-KEM method is refused by the ML-KEM functions with a clear error', () => {
  assert.throws(() => createMlKemShare(DhId.CURVE25519), /key exchange method 31: not an ML-KEM key exchange method/);
});
