// The IKE crypto worker pool (src/ike/crypto/pool.ts): a job gives the same bytes on a worker as on
// the calling thread, the queue bound holds, failures reach the caller as errors with the original
// code and message, a dead worker fails only its jobs, and a process using the pool ends by itself.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { DhId } from '../../../../src/ike/constants.js';
import { createKeyShare, drawPrivateValue, keyShareFromPrivate } from '../../../../src/ike/crypto/dh.js';
import { CryptoJobError, runCryptoJob, type CryptoJob } from '../../../../src/ike/crypto/jobs.js';
import { acquireCryptoPool, CryptoPool, CryptoQueueFullError, CryptoWorkerError, cryptoWorkersFromEnv, DEFAULT_INLINE_UP_TO, inlineUpToFromEnv, releaseCryptoPool } from '../../../../src/ike/crypto/pool.js';
import { signAuth, verifySignatureAuth } from '../../../../src/ike/crypto/auth.js';
import { schemeByName } from '../../../../src/ike/crypto/signature-schemes.js';
import { SeededRandom } from '../../../../src/common/time.js';

const GROUPS = [DhId.CURVE25519, DhId.ECP_256, DhId.ECP_384, DhId.MODP_2048];
const octets = new Uint8Array(400).fill(0x42);

function dhJob(group: number, seed: number): Extract<CryptoJob, { op: 'dh' }> {
  const peer = createKeyShare(group, { random: new SeededRandom(seed + 1000) }).publicValue;
  return { op: 'dh', group, privateValue: drawPrivateValue(group, new SeededRandom(seed)), peerPublicValue: peer, allowWeak: false };
}

test('a DH job gives the same KE data and g^ir on a worker, on the calling thread (size 0) and through KeyShare (RFC 7296 §1.2)', async () => {
  const workers = new CryptoPool({ size: 2, inlineUpTo: 0 });
  const inline = new CryptoPool({ size: 0 });
  try {
    for (const [i, group] of GROUPS.entries()) {
      const job = dhJob(group, i);
      const expectShare = keyShareFromPrivate(group, new Uint8Array(job.privateValue));
      const expectSecret = expectShare.computeSharedSecret(job.peerPublicValue).expose();
      const viaWorker = await workers.run(dhJob(group, i));
      const viaThread = await inline.run(dhJob(group, i));
      assert.deepEqual(viaWorker.publicValue, expectShare.publicValue, `group ${group} public value`);
      assert.deepEqual(viaWorker.sharedSecret, expectSecret, `group ${group} shared secret`);
      assert.deepEqual(viaThread.publicValue, viaWorker.publicValue);
      assert.deepEqual(viaThread.sharedSecret, viaWorker.sharedSecret);
    }
    assert.equal(workers.stats().workers, 2);
    assert.ok(workers.stats().started >= 1, 'jobs ran on worker threads');
    assert.equal(inline.stats().started, 0);
  } finally { await workers.close(); await inline.close(); }
});

test('the private value is wiped on the calling thread once the job is handed over', async () => {
  const pool = new CryptoPool({ size: 1, inlineUpTo: 0 });
  try {
    const job = dhJob(DhId.CURVE25519, 7);
    const p = pool.run(job);
    await p;
    // Moved to the worker (its buffer detached here) or zeroed: either way not readable on this thread.
    assert.ok(job.privateValue.byteLength === 0 || job.privateValue.every((b) => b === 0), 'private value no longer readable here');
  } finally { await pool.close(); }
});

test('Ed25519 AUTH signed on a worker equals the calling thread\'s, and verifies there (RFC 8420, RFC 7427)', async () => {
  const pool = new CryptoPool({ size: 2, inlineUpTo: 0 });
  try {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const scheme = schemeByName('ed25519')!;
    const signed = await pool.run({ op: 'sign', scheme: 'ed25519', privateKey, octets });
    assert.deepEqual(signed, signAuth(scheme, privateKey, octets));
    assert.equal(verifySignatureAuth(signed.authMethod, signed.authData, publicKey, octets).name, 'ed25519');
  } finally { await pool.close(); }
});

test('ECDSA AUTH signed on a worker verifies on the calling thread and on a worker (RFC 7427 §3)', async () => {
  const pool = new CryptoPool({ size: 2, inlineUpTo: 0 });
  try {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const signed = await pool.run({ op: 'sign', scheme: 'ecdsa-with-sha256', privateKey, octets });
    assert.equal(verifySignatureAuth(signed.authMethod, signed.authData, publicKey, octets).name, 'ecdsa-with-sha256');
    const v = await pool.run({ op: 'verify', authMethod: signed.authMethod, authData: signed.authData, publicKey, octets, allowedHashes: null, allowSha1Rsa: false });
    assert.deepEqual(v, runCryptoJob({ op: 'verify', authMethod: signed.authMethod, authData: signed.authData, publicKey, octets, allowedHashes: null, allowSha1Rsa: false }));
  } finally { await pool.close(); }
});

test('a signature that does not verify rejects with the AuthenticationError\'s code and message, on a worker as on the thread', async () => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const signed = runCryptoJob({ op: 'sign', scheme: 'ecdsa-with-sha256', privateKey, octets });
  assert.ok('authData' in signed);
  const job = { op: 'verify' as const, authMethod: signed.authMethod, authData: signed.authData, publicKey, octets: new Uint8Array(400), allowedHashes: null, allowSha1Rsa: false };
  const pool = new CryptoPool({ size: 1, inlineUpTo: 0 });
  try {
    await assert.rejects(pool.run(job), (e: unknown) => {
      assert.ok(e instanceof CryptoJobError);
      assert.equal(e.code, 'ERR_IKE_AUTHENTICATION_FAILED');
      assert.equal(e.originalName, 'AuthenticationError');
      assert.match(e.message, /did not verify/);
      return true;
    });
    await assert.rejects(new CryptoPool({ size: 0 }).run(job), { code: 'ERR_IKE_AUTHENTICATION_FAILED', message: /did not verify/ });
    assert.equal(pool.stats().failed, 1);
  } finally { await pool.close(); }
});

test('an invalid peer KE value rejects with ERR_IKE_INVALID_KE_VALUE from the worker (RFC 8031 §2: all-zero X25519 secret)', async () => {
  const pool = new CryptoPool({ size: 1, inlineUpTo: 0 });
  try {
    const job = { ...dhJob(DhId.CURVE25519, 3), peerPublicValue: new Uint8Array(32) };
    await assert.rejects(pool.run(job), { code: 'ERR_IKE_INVALID_KE_VALUE', originalName: 'InvalidKeyExchangeError' });
  } finally { await pool.close(); }
});

test('back-pressure: beyond maxQueued unfinished jobs, run() rejects at once with CryptoQueueFullError and counts it', async () => {
  const pool = new CryptoPool({ size: 1, inlineUpTo: 0, maxQueued: 4 });
  try {
    const jobs = Array.from({ length: 10 }, (_, i) => dhJob(DhId.CURVE25519, 100 + i));
    const settled = await Promise.allSettled(jobs.map((j) => pool.run(j)));
    const full = settled.filter((s) => s.status === 'rejected' && s.reason instanceof CryptoQueueFullError);
    assert.equal(settled.filter((s) => s.status === 'fulfilled').length, 4);
    assert.equal(full.length, 6);
    assert.equal(pool.stats().rejected, 6);
    assert.ok(jobs.slice(4).every((j) => j.privateValue.every((b) => b === 0)), 'refused jobs\' private values are wiped');
    assert.equal(pool.pending, 0);
    // Room again once the queue drained.
    await pool.run(dhJob(DhId.CURVE25519, 200));
  } finally { await pool.close(); }
});

test('close() fails unfinished jobs with CryptoWorkerError and refuses new ones', async () => {
  const pool = new CryptoPool({ size: 1, inlineUpTo: 0 });
  const p = pool.run(dhJob(DhId.MODP_2048, 5));
  await pool.close();
  await assert.rejects(p, CryptoWorkerError);
  await assert.rejects(pool.run(dhJob(DhId.CURVE25519, 6)), /closed/);
  assert.equal(pool.pending, 0);
});

test('a worker that exits fails its jobs with CryptoWorkerError naming the exit code; the caller\'s process goes on', async () => {
  const pool = new CryptoPool({ size: 1, inlineUpTo: 0, workerUrl: new URL('./fixtures/exiting-worker.mjs', import.meta.url) });
  try {
    await assert.rejects(pool.run(dhJob(DhId.CURVE25519, 8)), (e: unknown) => e instanceof CryptoWorkerError && /exited with code 3/.test(e.message));
    // A replacement worker is started for the next job (which this fixture kills again).
    await assert.rejects(pool.run(dhJob(DhId.CURVE25519, 9)), CryptoWorkerError);
    assert.equal(pool.stats().started, 2);
    assert.equal(pool.pending, 0);
  } finally { await pool.close(); }
});

test('an exception thrown inside a worker reaches the job\'s caller with its message', async () => {
  const pool = new CryptoPool({ size: 1, inlineUpTo: 0, workerUrl: new URL('./fixtures/throwing-worker.mjs', import.meta.url) });
  try {
    await assert.rejects(pool.run(dhJob(DhId.CURVE25519, 10)), (e: unknown) => e instanceof CryptoWorkerError && /worker handler broke/.test(e.message));
  } finally { await pool.close(); }
});

test('a missing worker entry falls back to the calling thread and says why', async () => {
  const pool = new CryptoPool({ size: 2, inlineUpTo: 0, workerUrl: new URL('./fixtures/no-such-worker.mjs', import.meta.url) });
  assert.equal(pool.size, 0);
  assert.match(pool.stats().fallbackReason ?? '', /no-such-worker\.mjs not found/);
  const r = await pool.run(dhJob(DhId.CURVE25519, 11));
  assert.equal(r.publicValue.length, 32);
  await pool.close();
});

test('a process that used the pool ends by itself, after close() and with the pool left idle (workers unref\'d)', () => {
  const script = fileURLToPath(new URL('./fixtures/pool-exit.ts', import.meta.url));
  for (const [mode, completed] of [['close', 3], ['idle', 3], ['one', 1]] as const) {
    // The timeout only guards against a hang; the assertion is that the child ended with status 0.
    const out = execFileSync(process.execPath, ['--import', 'tsx', script, mode], { encoding: 'utf8', timeout: 60_000 });
    assert.match(out, new RegExp(`started=2 completed=${completed}`), mode);
  }
});

test('engines share one pool per size; the last release terminates it', async () => {
  const a = acquireCryptoPool(1);
  const b = acquireCryptoPool(1);
  assert.equal(a, b);
  await a.run(dhJob(DhId.CURVE25519, 12));
  await releaseCryptoPool(a);
  await b.run(dhJob(DhId.CURVE25519, 13)); // still open: b holds it
  await releaseCryptoPool(b);
  await assert.rejects(b.run(dhJob(DhId.CURVE25519, 14)), /closed/);
  const c = acquireCryptoPool(1);
  assert.notEqual(c, a, 'a fresh pool after the last release');
  await releaseCryptoPool(c);
});

test('KIPSEC_IKE_CRYPTO_WORKERS: unset means every core, 0 disables, anything else is refused', () => {
  assert.ok(cryptoWorkersFromEnv({}) >= 1);
  assert.equal(cryptoWorkersFromEnv({ KIPSEC_IKE_CRYPTO_WORKERS: '0' }), 0);
  assert.equal(cryptoWorkersFromEnv({ KIPSEC_IKE_CRYPTO_WORKERS: '3' }), 3);
  assert.throws(() => cryptoWorkersFromEnv({ KIPSEC_IKE_CRYPTO_WORKERS: '-1' }), /whole number/);
  assert.throws(() => cryptoWorkersFromEnv({ KIPSEC_IKE_CRYPTO_WORKERS: 'many' }), /whole number/);
});

test('a turn\'s batch of at most inlineUpTo X25519 jobs runs on the calling thread; a larger batch, and any other job, goes to a worker', async () => {
  // Why: a lone X25519 costs less here than its message round trip (pool.ts); the bytes must not differ.
  const pool = new CryptoPool({ size: 1, inlineUpTo: 2 });
  try {
    const expect = runCryptoJob(dhJob(DhId.CURVE25519, 20));
    const two = await Promise.all([pool.run(dhJob(DhId.CURVE25519, 20)), pool.run(dhJob(DhId.CURVE25519, 21))]);
    assert.deepEqual(two[0], expect);
    assert.deepEqual({ inline: pool.stats().inline, started: pool.stats().started, batches: pool.stats().batches }, { inline: 2, started: 0, batches: 0 });
    const job = dhJob(DhId.CURVE25519, 22);
    await pool.run(job);
    assert.ok(job.privateValue.every((b) => b === 0), 'private value wiped after an inline run');
    await Promise.all([21, 22, 23].map((i) => pool.run(dhJob(DhId.CURVE25519, i))));
    await pool.run(dhJob(DhId.ECP_256, 24));
    const s = pool.stats();
    assert.deepEqual({ inline: s.inline, batches: s.batches, completed: s.completed, pending: s.pending }, { inline: 3, batches: 2, completed: 7, pending: 0 });
    await assert.rejects(pool.run({ ...dhJob(DhId.CURVE25519, 25), peerPublicValue: new Uint8Array(32) }), { code: 'ERR_IKE_INVALID_KE_VALUE' });
    assert.equal(pool.stats().pending, 0);
  } finally { await pool.close(); }
});

test('KIPSEC_IKE_CRYPTO_INLINE: unset means DEFAULT_INLINE_UP_TO, 0 sends every job to a worker, anything else is refused', () => {
  assert.equal(inlineUpToFromEnv({}), DEFAULT_INLINE_UP_TO);
  assert.equal(inlineUpToFromEnv({ KIPSEC_IKE_CRYPTO_INLINE: '0' }), 0);
  assert.equal(inlineUpToFromEnv({ KIPSEC_IKE_CRYPTO_INLINE: '4' }), 4);
  assert.throws(() => inlineUpToFromEnv({ KIPSEC_IKE_CRYPTO_INLINE: '-1' }), /whole number/);
});
