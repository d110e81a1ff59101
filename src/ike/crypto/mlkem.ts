// ML-KEM (FIPS 203) as an IKEv2 key exchange method (draft-ietf-ipsecme-ikev2-mlkem; IANA Transform
// Type 4 IDs 35 ML-KEM-512, 36 ML-KEM-768, 37 ML-KEM-1024), usually as an RFC 9370 additional key exchange.
// A KEM is not symmetric like Diffie-Hellman: the initiator's KE data is its encapsulation key ek, the
// responder encapsulates to it and answers with the ciphertext c, and both hold the 32-octet key K.
//
//   initiator: createMlKemShare(id)      -> publicValue = ek;  computeSharedSecret(c) = Decaps(dk, c)
//   responder: encapsulateMlKem(id, ek)  -> { publicValue: c, sharedSecret: K }
//
// Peer data is checked before either backend sees it (FIPS 203 §7.2 encapsulation key type and modulus
// check, §7.3 ciphertext type check), so bad network input is an InvalidKeyExchangeError, never a crash.
//
// Backends: node:crypto where the runtime has ML-KEM (Node 24 with OpenSSL 3.5: 'ml-kem-*' KeyObjects,
// crypto.encapsulate/decapsulate), else @noble/post-quantum — audited, pure JS, from the noble family the
// tests already use as an oracle — because Node 20's OpenSSL 3.0 has no ML-KEM. Both derive the key pair
// from the 64-octet seed d||z (FIPS 203 ML-KEM.KeyGen_internal), which is also what exportPrivate returns.
import * as nodeCrypto from 'node:crypto';
import { createPrivateKey, createPublicKey, type KeyObject, type PrivateKeyInput, type PublicKeyInput } from 'node:crypto';
import { ml_kem512, ml_kem768, ml_kem1024 } from '@noble/post-quantum/ml-kem.js';
import { SecretBytes } from '../../common/secret.js';
import { cryptoRandom, type Random } from '../../common/time.js';
import { DhId } from '../constants.js';
import { InvalidKeyExchangeError } from './errors.js';
import type { KeyShare } from './dh.js';

/** FIPS 203 §8 Table 2 / Table 3 sizes, in octets. */
export interface MlKemParams {
  readonly id: number;
  readonly name: 'ML-KEM-512' | 'ML-KEM-768' | 'ML-KEM-1024';
  readonly k: number;
  /** The initiator's KE data: ek, 384k + 32. */
  readonly encapsulationKeyLength: number;
  /** The responder's KE data: c, 32(du·k + dv). */
  readonly ciphertextLength: number;
  readonly decapsulationKeyLength: number;
}

export const ML_KEM_SHARED_KEY_LENGTH = 32;
/** d || z (FIPS 203 Algorithm 19). */
export const ML_KEM_SEED_LENGTH = 64;
/** Encapsulation randomness m (FIPS 203 Algorithm 20). */
export const ML_KEM_MESSAGE_LENGTH = 32;
const Q = 3329;

export const ML_KEM_PARAMS: ReadonlyMap<number, MlKemParams> = new Map<number, MlKemParams>([
  [DhId.ML_KEM_512, { id: DhId.ML_KEM_512, name: 'ML-KEM-512', k: 2, encapsulationKeyLength: 800, ciphertextLength: 768, decapsulationKeyLength: 1632 }],
  [DhId.ML_KEM_768, { id: DhId.ML_KEM_768, name: 'ML-KEM-768', k: 3, encapsulationKeyLength: 1184, ciphertextLength: 1088, decapsulationKeyLength: 2400 }],
  [DhId.ML_KEM_1024, { id: DhId.ML_KEM_1024, name: 'ML-KEM-1024', k: 4, encapsulationKeyLength: 1568, ciphertextLength: 1568, decapsulationKeyLength: 3168 }],
]);

export function isMlKem(id: number): boolean {
  return ML_KEM_PARAMS.has(id);
}

/** The peer's ML-KEM KE data is malformed; same code and notify (INVALID_SYNTAX) as a bad DH value. */
export class InvalidMlKemDataError extends InvalidKeyExchangeError {
  constructor(id: number, message: string) {
    super(id, message);
    // The parent's text says "DH group"; name the KEM instead, in the stack's first line too.
    this.message = `${ML_KEM_PARAMS.get(id)?.name ?? `key exchange method ${id}`}: ${message}`;
    Error.captureStackTrace(this, new.target);
  }
}

export function mlKemParams(id: number): MlKemParams {
  const p = ML_KEM_PARAMS.get(id);
  if (!p) throw new InvalidMlKemDataError(id, 'not an ML-KEM key exchange method');
  return p;
}

/**
 * FIPS 203 §7.2 input checks on an encapsulation key from the peer: the length (type check) and
 * ByteEncode12(ByteDecode12(ek[0:384k])) == ek[0:384k] (modulus check), i.e. each 12-bit coefficient < q.
 */
export function checkEncapsulationKey(id: number, ek: Uint8Array): void {
  const p = mlKemParams(id);
  if (ek.length !== p.encapsulationKeyLength)
    throw new InvalidMlKemDataError(id, `encapsulation key is ${ek.length} octets, want ${p.encapsulationKeyLength}`);
  const polyBytes = 384 * p.k;
  for (let i = 0; i < polyBytes; i += 3) {
    const b0 = ek[i]!; const b1 = ek[i + 1]!; const b2 = ek[i + 2]!;
    const c0 = b0 | ((b1 & 0x0f) << 8);
    const c1 = (b1 >> 4) | (b2 << 4);
    if (c0 >= Q || c1 >= Q)
      throw new InvalidMlKemDataError(id, `encapsulation key fails the modulus check (coefficient ${c0 >= Q ? c0 : c1} at octet ${i} is not below q = ${Q}, FIPS 203 §7.2)`);
  }
}

/** FIPS 203 §7.3 ciphertext type check (decapsulation itself rejects implicitly, never by error). */
export function checkCiphertext(id: number, c: Uint8Array): void {
  const p = mlKemParams(id);
  if (c.length !== p.ciphertextLength) throw new InvalidMlKemDataError(id, `ciphertext is ${c.length} octets, want ${p.ciphertextLength}`);
}

// --- backends ------------------------------------------------------------------------------

export type MlKemBackendName = 'node' | 'noble';

interface KeyPair { readonly encapsulationKey: Uint8Array; decapsulate(c: Uint8Array): Uint8Array }

interface Backend {
  readonly name: MlKemBackendName;
  keyPairFromSeed(p: MlKemParams, seed: Uint8Array): KeyPair;
  /** `m` fixes the encapsulation randomness; only the library accepts it. */
  encapsulate(p: MlKemParams, ek: Uint8Array, m?: Uint8Array): { c: Uint8Array; k: Uint8Array };
}

const NOBLE = { [DhId.ML_KEM_512]: ml_kem512, [DhId.ML_KEM_768]: ml_kem768, [DhId.ML_KEM_1024]: ml_kem1024 } as const;

function nobleOf(p: MlKemParams): typeof ml_kem768 {
  const kem = NOBLE[p.id as keyof typeof NOBLE];
  if (!kem) throw new InvalidMlKemDataError(p.id, 'not an ML-KEM key exchange method');
  return kem;
}

const nobleBackend: Backend = {
  name: 'noble',
  keyPairFromSeed(p, seed) {
    const kem = nobleOf(p);
    const { publicKey, secretKey } = kem.keygen(seed);
    return { encapsulationKey: publicKey, decapsulate: (c) => kem.decapsulate(c, secretKey) };
  },
  encapsulate(p, ek, m) {
    const { cipherText, sharedSecret } = m ? nobleOf(p).encapsulate(ek, m) : nobleOf(p).encapsulate(ek);
    return { c: cipherText, k: sharedSecret };
  },
};

/** The part of Node 24's node:crypto that @types/node 20 does not describe. */
interface NodeKemApi {
  encapsulate(key: KeyObject): { sharedKey: Buffer; ciphertext: Buffer };
  decapsulate(key: KeyObject, ciphertext: Uint8Array): Buffer;
}
const nodeKem = nodeCrypto as unknown as Partial<NodeKemApi>;
const nodeType = (p: MlKemParams): string => p.name.toLowerCase();
const buf = (b: Uint8Array): Buffer => Buffer.from(b.buffer, b.byteOffset, b.byteLength);
// Raw key formats (Node 24.7+): 'raw-seed' for d||z, 'raw-public' for ek.
const rawSeed = (p: MlKemParams, seed: Uint8Array): KeyObject =>
  createPrivateKey({ key: buf(seed), format: 'raw-seed', asymmetricKeyType: nodeType(p) } as unknown as PrivateKeyInput);
const rawPublic = (p: MlKemParams, ek: Uint8Array): KeyObject =>
  createPublicKey({ key: buf(ek), format: 'raw-public', asymmetricKeyType: nodeType(p) } as unknown as PublicKeyInput);
const exportRawPublic = (k: KeyObject): Uint8Array => new Uint8Array(k.export({ format: 'raw-public' } as unknown as { format: 'der'; type: 'spki' }));

function nodeApi(): NodeKemApi {
  const { encapsulate, decapsulate } = nodeKem;
  if (!encapsulate || !decapsulate) throw new TypeError('node:crypto has no ML-KEM in this runtime');
  return { encapsulate, decapsulate };
}

const nodeBackend: Backend = {
  name: 'node',
  keyPairFromSeed(p, seed) {
    const api = nodeApi();
    const privateKey = rawSeed(p, seed);
    return {
      encapsulationKey: exportRawPublic(createPublicKey(privateKey)),
      decapsulate: (c) => new Uint8Array(api.decapsulate(privateKey, buf(c))),
    };
  },
  encapsulate(p, ek, m) {
    if (m) return nobleBackend.encapsulate(p, ek, m);
    const { sharedKey, ciphertext } = nodeApi().encapsulate(rawPublic(p, ek));
    return { c: new Uint8Array(ciphertext), k: new Uint8Array(sharedKey) };
  },
};

let nodeHas: boolean | undefined;

/** Whether this runtime's node:crypto does ML-KEM with raw seeds and keys (checked once). */
export function nodeHasMlKem(): boolean {
  if (nodeHas === undefined) {
    try {
      const p = mlKemParams(DhId.ML_KEM_512);
      const pair = nodeBackend.keyPairFromSeed(p, new Uint8Array(ML_KEM_SEED_LENGTH));
      nodeHas = pair.encapsulationKey.length === p.encapsulationKeyLength;
    } catch {
      nodeHas = false;
    }
  }
  return nodeHas;
}

function backendFor(name: MlKemBackendName | undefined): Backend {
  if (name === 'noble') return nobleBackend;
  if (name === 'node') {
    if (!nodeHasMlKem()) throw new TypeError('node:crypto has no ML-KEM in this runtime (needs Node 24.7+ with OpenSSL 3.5)');
    return nodeBackend;
  }
  return nodeHasMlKem() ? nodeBackend : nobleBackend;
}

/** The backend used when none is asked for. */
export function defaultMlKemBackend(): MlKemBackendName {
  return backendFor(undefined).name;
}

// --- the two roles -------------------------------------------------------------------------

export interface MlKemOptions {
  /** Randomness for the seed and for m (tests pass SeededRandom); defaults to node's CSPRNG. */
  readonly random?: Random;
  /** Force a backend (differential tests); defaults to node:crypto where it has ML-KEM. */
  readonly backend?: MlKemBackendName;
}

/** Initiator: a fresh key pair; its publicValue (ek) goes in our KE payload. */
export function createMlKemShare(id: number, opts: MlKemOptions = {}): KeyShare {
  return mlKemShareFromSeed(id, (opts.random ?? cryptoRandom).bytes(ML_KEM_SEED_LENGTH), opts);
}

/** Initiator share from a fixed seed d||z (vectors, or a checkpointed exchange via exportPrivate). */
export function mlKemShareFromSeed(id: number, seed: Uint8Array, opts: { backend?: MlKemBackendName } = {}): KeyShare {
  const p = mlKemParams(id);
  if (seed.length !== ML_KEM_SEED_LENGTH) throw new InvalidMlKemDataError(id, `seed is ${seed.length} octets, want ${ML_KEM_SEED_LENGTH}`);
  const own = new Uint8Array(seed);
  const pair = backendFor(opts.backend).keyPairFromSeed(p, own);
  return {
    group: id,
    publicValue: pair.encapsulationKey,
    exportPrivate: () => new SecretBytes(new Uint8Array(own)),
    computeSharedSecret(ciphertext) {
      checkCiphertext(id, ciphertext);
      // A forged ciphertext yields an unrelated key (implicit rejection, FIPS 203 §6.3); AUTH then fails.
      return new SecretBytes(pair.decapsulate(ciphertext));
    },
  };
}

/** What the responder sends back and keeps. */
export interface KeyExchangeResponse {
  /** Key Exchange Data for our KE payload (the ciphertext, for ML-KEM). */
  readonly publicValue: Uint8Array;
  readonly sharedSecret: SecretBytes;
}

/** Responder: encapsulate to the initiator's ek; throws InvalidKeyExchangeError for a bad ek. */
export function encapsulateMlKem(id: number, encapsulationKey: Uint8Array, opts: MlKemOptions = {}): KeyExchangeResponse {
  const p = mlKemParams(id);
  checkEncapsulationKey(id, encapsulationKey);
  const m = opts.random ? opts.random.bytes(ML_KEM_MESSAGE_LENGTH) : undefined;
  let out: { c: Uint8Array; k: Uint8Array };
  try {
    out = backendFor(opts.backend).encapsulate(p, encapsulationKey, m);
  } catch (e) {
    // Not reachable for a key that passed the checks above; kept so a backend's refusal is still typed.
    throw new InvalidMlKemDataError(id, `encapsulation key rejected (${(e as Error).message})`);
  }
  return { publicValue: out.c, sharedSecret: new SecretBytes(out.k) };
}

/** Encapsulation with fixed randomness m (FIPS 203 ML-KEM.Encaps_internal), for known-answer tests. */
export function encapsulateMlKemDeterministic(id: number, encapsulationKey: Uint8Array, m: Uint8Array): KeyExchangeResponse {
  if (m.length !== ML_KEM_MESSAGE_LENGTH) throw new InvalidMlKemDataError(id, `m is ${m.length} octets, want ${ML_KEM_MESSAGE_LENGTH}`);
  return encapsulateMlKem(id, encapsulationKey, { random: { bytes: () => new Uint8Array(m) }, backend: 'noble' });
}
