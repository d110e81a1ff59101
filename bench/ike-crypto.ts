// Raw cost of the IKE crypto operations (node:crypto through kipsec's src/ike/crypto API): the
// ceiling the in-process handshake bench (bench/ike-handshake) is compared against. Then the same
// public-key operations through the worker pool (src/ike/crypto/pool.ts), in batches of 1 and 16
// jobs per event-loop turn: ops/s (wall) and the main thread's busy time per op (event-loop
// utilisation), i.e. what message passing costs the engine's thread against doing the work there.
//   node --import tsx bench/ike-crypto.ts [--ms=800] [--no-pool]
// Import measureIkeCrypto() to get the rows (ops/s) in another bench.
import { generateKeyPairSync } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { SecretBytes } from '../src/common/secret.js';
import { DhId, EncrId, IntegId, PrfId } from '../src/ike/constants.js';
import { createKeyShare, drawPrivateValue } from '../src/ike/crypto/dh.js';
import type { CryptoJob } from '../src/ike/crypto/jobs.js';
import { CryptoPool } from '../src/ike/crypto/pool.js';
import { deriveChildSaKeys, deriveIkeSaKeys, type IkeSuite } from '../src/ike/crypto/keys.js';
import { createPrf, prfPlus } from '../src/ike/crypto/prf.js';
import { createSkPair } from '../src/ike/crypto/sk.js';
import { pskAuthData, signAuth, signedOctets, verifySignatureAuth } from '../src/ike/crypto/auth.js';
import { schemeByName } from '../src/ike/crypto/signature-schemes.js';

export interface BenchRow { readonly name: string; readonly opsPerSec: number; readonly usPerOp: number }

/**
 * ops/s of fn: the best of `rounds` timed slices of ms/rounds each, after a warm-up. Best-of
 * rather than mean because on shared 2-vCPU machines other processes only ever slow a slice down.
 */
function measure(name: string, fn: () => void, ms: number, rounds = 3): BenchRow {
  for (let i = 0; i < 50; i++) fn(); // warm up (JIT, OpenSSL contexts)
  let best = 0;
  const budget = BigInt(Math.max(1, Math.round(ms / rounds))) * 1_000_000n;
  for (let r = 0; r < rounds; r++) {
    let n = 0;
    const start = process.hrtime.bigint();
    let elapsed = 0n;
    while (elapsed < budget) {
      for (let i = 0; i < 10; i++) fn();
      n += 10;
      elapsed = process.hrtime.bigint() - start;
    }
    best = Math.max(best, n / (Number(elapsed) / 1e9));
  }
  return { name, opsPerSec: best, usPerOp: 1e6 / best };
}

const SK_SUITES: readonly [string, IkeSuite][] = [
  ['aes128-sha256', { encrId: EncrId.ENCR_AES_CBC, encrKeyBits: 128, prfId: PrfId.PRF_HMAC_SHA2_256, integId: IntegId.AUTH_HMAC_SHA2_256_128 }],
  ['aes256-sha384', { encrId: EncrId.ENCR_AES_CBC, encrKeyBits: 256, prfId: PrfId.PRF_HMAC_SHA2_384, integId: IntegId.AUTH_HMAC_SHA2_384_192 }],
  ['aes256-sha512', { encrId: EncrId.ENCR_AES_CBC, encrKeyBits: 256, prfId: PrfId.PRF_HMAC_SHA2_512, integId: IntegId.AUTH_HMAC_SHA2_512_256 }],
  ['aes128gcm16', { encrId: EncrId.ENCR_AES_GCM_16, encrKeyBits: 128, prfId: PrfId.PRF_HMAC_SHA2_256 }],
  ['aes256gcm16', { encrId: EncrId.ENCR_AES_GCM_16, encrKeyBits: 256, prfId: PrfId.PRF_HMAC_SHA2_384 }],
  ['chacha20poly1305', { encrId: EncrId.ENCR_CHACHA20_POLY1305, prfId: PrfId.PRF_HMAC_SHA2_256 }],
];

export function measureIkeCrypto(ms = 800): BenchRow[] {
  const rows: BenchRow[] = [];
  const peer = (g: number) => createKeyShare(g).publicValue;
  const x25519Peer = peer(DhId.CURVE25519);
  rows.push(measure('X25519 keygen + shared secret', () => { createKeyShare(DhId.CURVE25519).computeSharedSecret(x25519Peer); }, ms));
  const ecpPeer = peer(DhId.ECP_256);
  rows.push(measure('ECP-256 ECDH keygen + shared secret', () => { createKeyShare(DhId.ECP_256).computeSharedSecret(ecpPeer); }, ms));
  const modpPeer = peer(DhId.MODP_2048);
  rows.push(measure('MODP-2048 keygen + shared secret', () => { createKeyShare(DhId.MODP_2048).computeSharedSecret(modpPeer); }, ms));

  const octets = new Uint8Array(600).fill(7);
  const ec = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const ecdsa = schemeByName('ecdsa-with-sha256')!;
  const ecSig = signAuth(ecdsa, ec.privateKey, octets);
  rows.push(measure('ECDSA-P256 sign (RFC 7427 AUTH)', () => { signAuth(ecdsa, ec.privateKey, octets); }, ms));
  rows.push(measure('ECDSA-P256 verify (RFC 7427 AUTH)', () => { verifySignatureAuth(ecSig.authMethod, ecSig.authData, ec.publicKey, octets); }, ms));
  const ed = generateKeyPairSync('ed25519');
  const edScheme = schemeByName('ed25519')!;
  const edSig = signAuth(edScheme, ed.privateKey, octets);
  rows.push(measure('Ed25519 sign (RFC 7427 AUTH)', () => { signAuth(edScheme, ed.privateKey, octets); }, ms));
  rows.push(measure('Ed25519 verify (RFC 7427 AUTH)', () => { verifySignatureAuth(edSig.authMethod, edSig.authData, ed.publicKey, octets); }, ms));

  const prf = createPrf(PrfId.PRF_HMAC_SHA2_256);
  const psk = new SecretBytes(new TextEncoder().encode('a pre-shared key of reasonable length'));
  const skP = new SecretBytes(new Uint8Array(32).fill(3));
  const msg = new Uint8Array(500).fill(1); const nonce = new Uint8Array(32).fill(2); const id = new Uint8Array(12).fill(4);
  rows.push(measure('PSK AUTH (signed octets + prf(prf(psk,pad),octets))', () => {
    pskAuthData(prf, psk, signedOctets({ realMessage: msg, peerNonce: nonce, prf, skP, idPayloadBody: id }));
  }, ms));

  const suite: IkeSuite = { encrId: EncrId.ENCR_AES_GCM_16, encrKeyBits: 256, prfId: PrfId.PRF_HMAC_SHA2_384 };
  const gir = new SecretBytes(new Uint8Array(32).fill(9));
  const spi = new Uint8Array(8).fill(5);
  rows.push(measure('prf+ IKE SA keys (SKEYSEED + 7 keys, sha384)', () => {
    deriveIkeSaKeys({ suite, sharedSecret: gir, ni: nonce, nr: nonce, spiI: spi, spiR: spi });
  }, ms));
  const skD = new SecretBytes(new Uint8Array(48).fill(1));
  rows.push(measure('prf+ Child SA KEYMAT (aes256gcm16, sha384)', () => {
    deriveChildSaKeys({ prfId: PrfId.PRF_HMAC_SHA2_384, skD, suite: { encrId: EncrId.ENCR_AES_GCM_16, encrKeyBits: 256 }, ni: nonce, nr: nonce });
  }, ms));
  rows.push(measure('prf+ 256 octets (sha256)', () => { prfPlus(prf, skD, nonce, 256); }, ms));

  const inner = new Uint8Array(1024).fill(0x5a);
  for (const [name, s] of SK_SUITES) {
    const keys = deriveIkeSaKeys({ suite: s, sharedSecret: gir, ni: nonce, nr: nonce, spiI: spi, spiR: spi });
    const i = createSkPair(s, keys, 'initiator'); const r = createSkPair(s, keys, 'responder');
    const aad = new Uint8Array(32);
    const bodyLen = i.outbound.encryptedLength(inner.length);
    new DataView(aad.buffer).setUint32(24, 32 + bodyLen);
    rows.push(measure(`SK encrypt+decrypt 1 KiB ${name}`, () => { r.inbound.decrypt(i.outbound.encrypt(inner, aad), aad); }, ms));
  }
  return rows;
}

export interface PoolRow { readonly name: string; readonly opsPerSec: number; readonly mainUsPerOp: number; readonly inlineUsPerOp: number }

/**
 * `make()` jobs through `pool`, `batch` submitted per event-loop turn, for `ms`: wall ops/s and
 * the main thread's active time per op (performance.eventLoopUtilization), next to the same
 * jobs run inline on this thread (inlineUsPerOp).
 */
async function measurePool(pool: CryptoPool, name: string, make: () => CryptoJob, batch: number, ms: number): Promise<PoolRow> {
  const round = (): Promise<unknown> => Promise.all(Array.from({ length: batch }, () => pool.run(make())));
  for (let i = 0; i < 20; i++) await round(); // warm up: workers started, their JIT and OpenSSL contexts
  const elu0 = performance.eventLoopUtilization();
  const t0 = performance.now();
  let n = 0;
  while (performance.now() - t0 < ms) { await round(); n += batch; }
  const wall = performance.now() - t0;
  const elu = performance.eventLoopUtilization(elu0);
  const inline = new CryptoPool({ size: 0 });
  const i0 = performance.now(); let m = 0;
  while (performance.now() - i0 < ms / 2) { await inline.run(make()); m++; }
  const inlineUs = ((performance.now() - i0) * 1000) / m;
  await inline.close();
  return { name: `${name}, batch ${batch}`, opsPerSec: n / (wall / 1000), mainUsPerOp: (elu.active * 1000) / n, inlineUsPerOp: inlineUs };
}

export async function measurePoolOverhead(ms = 800): Promise<PoolRow[]> {
  const pool = new CryptoPool({ size: availableParallelism() });
  const rows: PoolRow[] = [];
  const x25519Peer = createKeyShare(DhId.CURVE25519).publicValue;
  const ec = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const octets = new Uint8Array(600).fill(7);
  const sig = signAuth(schemeByName('ecdsa-with-sha256')!, ec.privateKey, octets);
  const jobs: readonly [string, () => CryptoJob][] = [
    ['X25519 keygen + shared secret', () => ({ op: 'dh', group: DhId.CURVE25519, privateValue: drawPrivateValue(DhId.CURVE25519), peerPublicValue: x25519Peer, allowWeak: false })],
    ['ECDSA-P256 sign', () => ({ op: 'sign', scheme: 'ecdsa-with-sha256', privateKey: ec.privateKey, octets })],
    ['ECDSA-P256 verify', () => ({ op: 'verify', authMethod: sig.authMethod, authData: sig.authData, publicKey: ec.publicKey, octets, allowedHashes: null, allowSha1Rsa: false })],
  ];
  try {
    for (const [name, make] of jobs) for (const batch of [1, 16]) rows.push(await measurePool(pool, name, make, batch, ms));
  } finally { await pool.close(); }
  return rows;
}

function printTable(rows: readonly BenchRow[]): void {
  const w = Math.max(...rows.map((r) => r.name.length));
  console.log(`${'operation'.padEnd(w)}  ${'ops/s'.padStart(10)}  ${'µs/op'.padStart(9)}`);
  console.log(`${'-'.repeat(w)}  ${'-'.repeat(10)}  ${'-'.repeat(9)}`);
  for (const r of rows) console.log(`${r.name.padEnd(w)}  ${Math.round(r.opsPerSec).toString().padStart(10)}  ${r.usPerOp.toFixed(1).padStart(9)}`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const msArg = process.argv.find((a) => a.startsWith('--ms='));
  const ms = msArg ? Number(msArg.slice(5)) : 800;
  console.log(`kipsec IKE raw crypto cost — node ${process.version}, OpenSSL ${process.versions.openssl}, best of 3 slices, ${ms} ms per row`);
  printTable(measureIkeCrypto(ms));
  if (!process.argv.includes('--no-pool')) {
    console.log(`\nthrough the worker pool (${availableParallelism()} workers): wall ops/s, main-thread µs/op (event-loop active time), inline µs/op (same jobs, pool size 0)`);
    const rows = await measurePoolOverhead(ms);
    const w = Math.max(...rows.map((r) => r.name.length));
    console.log(`${'operation'.padEnd(w)}  ${'ops/s'.padStart(10)}  ${'main µs/op'.padStart(10)}  ${'inline µs/op'.padStart(12)}  main/inline`);
    for (const r of rows) console.log(`${r.name.padEnd(w)}  ${Math.round(r.opsPerSec).toString().padStart(10)}  ${r.mainUsPerOp.toFixed(1).padStart(10)}  ${r.inlineUsPerOp.toFixed(1).padStart(12)}  ${(r.mainUsPerOp / r.inlineUsPerOp).toFixed(2).padStart(10)}x`);
  }
}
