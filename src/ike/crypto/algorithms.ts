// Descriptors for the transforms kipsec implements, keyed by IANA ID (src/ike/constants.ts).
// Everything that needs key lengths, block sizes or hash names reads them here, so the KDF, the
// SK payload and the policy layer agree. "weak" marks algorithms refused unless a profile opts in
// (DESIGN.md §6, RFC 8247 MUST NOT / SHOULD NOT).
import { DhId, EncrId, IntegId, PrfId } from '../constants.js';
import { UnsupportedAlgorithmError } from './errors.js';

export type HashName = 'md5' | 'sha1' | 'sha256' | 'sha384' | 'sha512';

/** Transform type 2. RFC 7296 §2.13: for HMAC PRFs the preferred key size is the output size. */
export interface PrfAlg {
  readonly id: number;
  readonly name: string;
  readonly hash: HashName;
  readonly outputLength: number;
  readonly weak: boolean;
}

/** Transform type 3, used for the SK payload with non-AEAD ciphers. */
export interface IntegAlg {
  readonly id: number;
  readonly name: string;
  readonly hash: HashName;
  readonly keyLength: number;
  readonly icvLength: number;
  readonly weak: boolean;
}

/**
 * Transform type 1 with a concrete key length. `saltLength` bytes follow the key in keying
 * material (RFC 5282 §7.1 GCM, RFC 7634 §2 ChaCha20-Poly1305).
 */
export interface EncrAlg {
  readonly id: number;
  readonly name: string;
  readonly kind: 'cbc' | 'gcm' | 'chacha20-poly1305';
  /** OpenSSL cipher name for node:crypto. */
  readonly cipher: string;
  readonly keyLength: number;
  readonly saltLength: number;
  readonly ivLength: number;
  /** Block size used for §3.14 padding: 1 for the AEAD modes (no padding needed). */
  readonly blockSize: number;
  /** AEAD tag length, 0 for CBC (which needs an INTEG transform). */
  readonly icvLength: number;
  readonly aead: boolean;
  readonly weak: boolean;
}

export const PRFS: ReadonlyMap<number, PrfAlg> = new Map<number, PrfAlg>([
  [PrfId.PRF_HMAC_MD5, { id: PrfId.PRF_HMAC_MD5, name: 'PRF_HMAC_MD5', hash: 'md5', outputLength: 16, weak: true }],
  [PrfId.PRF_HMAC_SHA1, { id: PrfId.PRF_HMAC_SHA1, name: 'PRF_HMAC_SHA1', hash: 'sha1', outputLength: 20, weak: false }],
  [PrfId.PRF_HMAC_SHA2_256, { id: PrfId.PRF_HMAC_SHA2_256, name: 'PRF_HMAC_SHA2_256', hash: 'sha256', outputLength: 32, weak: false }],
  [PrfId.PRF_HMAC_SHA2_384, { id: PrfId.PRF_HMAC_SHA2_384, name: 'PRF_HMAC_SHA2_384', hash: 'sha384', outputLength: 48, weak: false }],
  [PrfId.PRF_HMAC_SHA2_512, { id: PrfId.PRF_HMAC_SHA2_512, name: 'PRF_HMAC_SHA2_512', hash: 'sha512', outputLength: 64, weak: false }],
]);

export const INTEGS: ReadonlyMap<number, IntegAlg> = new Map<number, IntegAlg>([
  [IntegId.AUTH_HMAC_MD5_96, { id: IntegId.AUTH_HMAC_MD5_96, name: 'AUTH_HMAC_MD5_96', hash: 'md5', keyLength: 16, icvLength: 12, weak: true }],
  [IntegId.AUTH_HMAC_SHA1_96, { id: IntegId.AUTH_HMAC_SHA1_96, name: 'AUTH_HMAC_SHA1_96', hash: 'sha1', keyLength: 20, icvLength: 12, weak: false }],
  [IntegId.AUTH_HMAC_SHA2_256_128, { id: IntegId.AUTH_HMAC_SHA2_256_128, name: 'AUTH_HMAC_SHA2_256_128', hash: 'sha256', keyLength: 32, icvLength: 16, weak: false }],
  [IntegId.AUTH_HMAC_SHA2_384_192, { id: IntegId.AUTH_HMAC_SHA2_384_192, name: 'AUTH_HMAC_SHA2_384_192', hash: 'sha384', keyLength: 48, icvLength: 24, weak: false }],
  [IntegId.AUTH_HMAC_SHA2_512_256, { id: IntegId.AUTH_HMAC_SHA2_512_256, name: 'AUTH_HMAC_SHA2_512_256', hash: 'sha512', keyLength: 64, icvLength: 32, weak: false }],
]);

function cbc(bits: 128 | 192 | 256): EncrAlg {
  return { id: EncrId.ENCR_AES_CBC, name: `ENCR_AES_CBC_${bits}`, kind: 'cbc', cipher: `aes-${bits}-cbc`, keyLength: bits / 8, saltLength: 0, ivLength: 16, blockSize: 16, icvLength: 0, aead: false, weak: false };
}
function gcm(bits: 128 | 192 | 256): EncrAlg {
  // RFC 5282 §3: 8-octet explicit IV; the 4-octet salt is the tail of the key material.
  return { id: EncrId.ENCR_AES_GCM_16, name: `ENCR_AES_GCM_16_${bits}`, kind: 'gcm', cipher: `aes-${bits}-gcm`, keyLength: bits / 8, saltLength: 4, ivLength: 8, blockSize: 1, icvLength: 16, aead: true, weak: false };
}

const ENCRS: readonly EncrAlg[] = [
  cbc(128), cbc(192), cbc(256),
  gcm(128), gcm(192), gcm(256),
  { id: EncrId.ENCR_CHACHA20_POLY1305, name: 'ENCR_CHACHA20_POLY1305', kind: 'chacha20-poly1305', cipher: 'chacha20-poly1305', keyLength: 32, saltLength: 4, ivLength: 8, blockSize: 1, icvLength: 16, aead: true, weak: false },
  { id: EncrId.ENCR_3DES, name: 'ENCR_3DES', kind: 'cbc', cipher: 'des-ede3-cbc', keyLength: 24, saltLength: 0, ivLength: 8, blockSize: 8, icvLength: 0, aead: false, weak: true },
];

/** Algorithms whose key length is fixed: the transform carries no KEY_LENGTH attribute. */
const FIXED_KEY_BITS: ReadonlyMap<number, number> = new Map([
  [EncrId.ENCR_CHACHA20_POLY1305, 256],
  [EncrId.ENCR_3DES, 192],
]);

/** Whether an ENCR transform must carry the KEY_LENGTH attribute (RFC 7296 §3.3.5). */
export function encrNeedsKeyLength(id: number): boolean {
  return !FIXED_KEY_BITS.has(id);
}

/** `keyLengthBits` is the KEY_LENGTH attribute; omit it for fixed-length ciphers. */
export function encrAlg(id: number, keyLengthBits?: number): EncrAlg {
  const bits = keyLengthBits ?? FIXED_KEY_BITS.get(id);
  const alg = ENCRS.find((a) => a.id === id && a.keyLength * 8 === bits);
  if (!alg) throw new UnsupportedAlgorithmError(`encryption algorithm ${id}${bits === undefined ? '' : ` with ${bits}-bit key`} is not supported`);
  return alg;
}

export function prfAlg(id: number): PrfAlg {
  const alg = PRFS.get(id);
  if (!alg) throw new UnsupportedAlgorithmError(`PRF ${id} is not supported`);
  return alg;
}

export function integAlg(id: number): IntegAlg {
  const alg = INTEGS.get(id);
  if (!alg) throw new UnsupportedAlgorithmError(`integrity algorithm ${id} is not supported`);
  return alg;
}

/** Key exchange groups: `family` decides the encoding and validation rules (see dh.ts). */
export interface DhGroupInfo {
  readonly id: number;
  readonly name: string;
  readonly family: 'modp' | 'ecp' | 'curve25519';
  /** Length of the KE payload data in octets (RFC 7296 §3.4, RFC 5903 §7, RFC 8031 §3.1). */
  readonly publicLength: number;
  readonly weak: boolean;
}

export const DH_GROUPS: ReadonlyMap<number, DhGroupInfo> = new Map<number, DhGroupInfo>([
  [DhId.MODP_768, { id: DhId.MODP_768, name: 'MODP_768', family: 'modp', publicLength: 96, weak: true }],
  [DhId.MODP_1024, { id: DhId.MODP_1024, name: 'MODP_1024', family: 'modp', publicLength: 128, weak: true }],
  [DhId.MODP_1536, { id: DhId.MODP_1536, name: 'MODP_1536', family: 'modp', publicLength: 192, weak: true }],
  [DhId.MODP_2048, { id: DhId.MODP_2048, name: 'MODP_2048', family: 'modp', publicLength: 256, weak: false }],
  [DhId.MODP_3072, { id: DhId.MODP_3072, name: 'MODP_3072', family: 'modp', publicLength: 384, weak: false }],
  [DhId.MODP_4096, { id: DhId.MODP_4096, name: 'MODP_4096', family: 'modp', publicLength: 512, weak: false }],
  [DhId.ECP_256, { id: DhId.ECP_256, name: 'ECP_256', family: 'ecp', publicLength: 64, weak: false }],
  [DhId.ECP_384, { id: DhId.ECP_384, name: 'ECP_384', family: 'ecp', publicLength: 96, weak: false }],
  [DhId.ECP_521, { id: DhId.ECP_521, name: 'ECP_521', family: 'ecp', publicLength: 132, weak: false }],
  [DhId.CURVE25519, { id: DhId.CURVE25519, name: 'CURVE25519', family: 'curve25519', publicLength: 32, weak: false }],
]);

/**
 * Groups 22-24 (RFC 5114 MODP with prime-order subgroups) are deliberately not implemented:
 * RFC 8247 says MUST NOT / SHOULD NOT, and their validation needs the subgroup order check.
 */
export const UNIMPLEMENTED_WEAK_GROUPS: ReadonlySet<number> = new Set([DhId.MODP_1024_160, DhId.MODP_2048_224, DhId.MODP_2048_256]);

export function dhGroupInfo(id: number, allowWeak = false): DhGroupInfo {
  const g = DH_GROUPS.get(id);
  if (!g) {
    if (UNIMPLEMENTED_WEAK_GROUPS.has(id))
      throw new UnsupportedAlgorithmError(`DH group ${id} (RFC 5114) is weak and not implemented`);
    throw new UnsupportedAlgorithmError(`DH group ${id} is not supported`);
  }
  if (g.weak && !allowWeak) throw new UnsupportedAlgorithmError(`DH group ${id} (${g.name}) is weak; refused without allowWeak`);
  return g;
}
