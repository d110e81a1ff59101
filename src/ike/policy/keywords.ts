// strongSwan proposal keywords (docs.strongswan.org "Algorithm Proposals (Cipher Suites)") mapped to
// IKEv2 transforms. `status` says what kipsec does with a keyword it knows:
//   ok        — implemented and acceptable (SHA-1 included: RFC 8247 MUST-, used only when written)
//   weak      — implemented but refused unless the profile sets allowWeak (RFC 8247 MUST NOT/SHOULD NOT)
//   refused   — known, deliberately not implemented (broken: DES, NULL; RFC 5114 groups)
//   unsupported — known, valid elsewhere, not implemented by kipsec (yet)
//
// RFC 9370 additional key exchanges use strongSwan's "keN_" prefix: ke1_mlkem768 is ML-KEM-768 as
// ADDKE1 (Transform Type 6), ke1_none offers NONE for it (the additional exchange is then optional).
// Only ML-KEM and none are listed after the prefix: post-quantum KEMs are what ADDKE is for.
import { ADDITIONAL_KE_TYPES, DhId, EncrId, EsnId, IntegId, PrfId, TransformType } from '../constants.js';

export type KeywordStatus = 'ok' | 'weak' | 'refused' | 'unsupported';

export interface Keyword {
  /** Canonical spelling used when formatting. */
  readonly name: string;
  readonly type: number;
  readonly id: number;
  /** KEY_LENGTH attribute in bits, for variable-length ciphers. */
  readonly keyLength?: number;
  readonly aead?: boolean;
  readonly status: KeywordStatus;
  /** Extra spellings strongSwan accepts. */
  readonly aliases?: readonly string[];
  /** A KEM kipsec implements only as an RFC 9370 additional key exchange (keN_...), not in Transform Type 4. */
  readonly additionalOnly?: boolean;
}

/** draft-ietf-ipsecme-ikev2-mlkem / IANA names, in strongSwan's spelling. */
const ML_KEM = [
  { name: 'mlkem512', id: DhId.ML_KEM_512 },
  { name: 'mlkem768', id: DhId.ML_KEM_768 },
  { name: 'mlkem1024', id: DhId.ML_KEM_1024 },
] as const;

const E = TransformType.ENCR; const I = TransformType.INTEG; const P = TransformType.PRF; const D = TransformType.DH; const N = TransformType.ESN;

export const KEYWORDS: readonly Keyword[] = [
  // Encryption
  { name: 'aes128', type: E, id: EncrId.ENCR_AES_CBC, keyLength: 128, status: 'ok', aliases: ['aes'] },
  { name: 'aes192', type: E, id: EncrId.ENCR_AES_CBC, keyLength: 192, status: 'ok' },
  { name: 'aes256', type: E, id: EncrId.ENCR_AES_CBC, keyLength: 256, status: 'ok' },
  { name: 'aes128gcm16', type: E, id: EncrId.ENCR_AES_GCM_16, keyLength: 128, aead: true, status: 'ok', aliases: ['aes128gcm128'] },
  { name: 'aes192gcm16', type: E, id: EncrId.ENCR_AES_GCM_16, keyLength: 192, aead: true, status: 'ok', aliases: ['aes192gcm128'] },
  { name: 'aes256gcm16', type: E, id: EncrId.ENCR_AES_GCM_16, keyLength: 256, aead: true, status: 'ok', aliases: ['aes256gcm128'] },
  { name: 'aes128gcm8', type: E, id: EncrId.ENCR_AES_GCM_8, keyLength: 128, aead: true, status: 'unsupported', aliases: ['aes128gcm64'] },
  { name: 'aes256gcm8', type: E, id: EncrId.ENCR_AES_GCM_8, keyLength: 256, aead: true, status: 'unsupported', aliases: ['aes256gcm64'] },
  { name: 'aes128gcm12', type: E, id: EncrId.ENCR_AES_GCM_12, keyLength: 128, aead: true, status: 'unsupported', aliases: ['aes128gcm96'] },
  { name: 'aes256gcm12', type: E, id: EncrId.ENCR_AES_GCM_12, keyLength: 256, aead: true, status: 'unsupported', aliases: ['aes256gcm96'] },
  { name: 'aes128ctr', type: E, id: EncrId.ENCR_AES_CTR, keyLength: 128, status: 'unsupported' },
  { name: 'aes256ctr', type: E, id: EncrId.ENCR_AES_CTR, keyLength: 256, status: 'unsupported' },
  { name: 'chacha20poly1305', type: E, id: EncrId.ENCR_CHACHA20_POLY1305, aead: true, status: 'ok' },
  { name: '3des', type: E, id: EncrId.ENCR_3DES, status: 'weak' },
  { name: 'des', type: E, id: EncrId.ENCR_DES, status: 'refused' },
  { name: 'null', type: E, id: EncrId.ENCR_NULL, status: 'refused' },
  // Integrity
  { name: 'sha1', type: I, id: IntegId.AUTH_HMAC_SHA1_96, status: 'ok', aliases: ['sha'] },
  { name: 'sha256', type: I, id: IntegId.AUTH_HMAC_SHA2_256_128, status: 'ok', aliases: ['sha2_256'] },
  { name: 'sha384', type: I, id: IntegId.AUTH_HMAC_SHA2_384_192, status: 'ok', aliases: ['sha2_384'] },
  { name: 'sha512', type: I, id: IntegId.AUTH_HMAC_SHA2_512_256, status: 'ok', aliases: ['sha2_512'] },
  { name: 'md5', type: I, id: IntegId.AUTH_HMAC_MD5_96, status: 'weak' },
  { name: 'aesxcbc', type: I, id: 5, status: 'unsupported' },
  // PRF
  { name: 'prfsha1', type: P, id: PrfId.PRF_HMAC_SHA1, status: 'ok' },
  { name: 'prfsha256', type: P, id: PrfId.PRF_HMAC_SHA2_256, status: 'ok' },
  { name: 'prfsha384', type: P, id: PrfId.PRF_HMAC_SHA2_384, status: 'ok' },
  { name: 'prfsha512', type: P, id: PrfId.PRF_HMAC_SHA2_512, status: 'ok' },
  { name: 'prfmd5', type: P, id: PrfId.PRF_HMAC_MD5, status: 'weak' },
  { name: 'prfaesxcbc', type: P, id: 4, status: 'unsupported' },
  // Key exchange
  { name: 'modp768', type: D, id: DhId.MODP_768, status: 'weak' },
  { name: 'modp1024', type: D, id: DhId.MODP_1024, status: 'weak' },
  { name: 'modp1536', type: D, id: DhId.MODP_1536, status: 'weak' },
  { name: 'modp2048', type: D, id: DhId.MODP_2048, status: 'ok' },
  { name: 'modp3072', type: D, id: DhId.MODP_3072, status: 'ok' },
  { name: 'modp4096', type: D, id: DhId.MODP_4096, status: 'ok' },
  { name: 'modp6144', type: D, id: DhId.MODP_6144, status: 'unsupported' },
  { name: 'modp8192', type: D, id: DhId.MODP_8192, status: 'unsupported' },
  { name: 'modp1024s160', type: D, id: DhId.MODP_1024_160, status: 'refused' },
  { name: 'modp2048s224', type: D, id: DhId.MODP_2048_224, status: 'refused' },
  { name: 'modp2048s256', type: D, id: DhId.MODP_2048_256, status: 'refused' },
  { name: 'ecp192', type: D, id: 25, status: 'unsupported' },
  { name: 'ecp224', type: D, id: 26, status: 'unsupported' },
  { name: 'ecp256', type: D, id: DhId.ECP_256, status: 'ok' },
  { name: 'ecp384', type: D, id: DhId.ECP_384, status: 'ok' },
  { name: 'ecp521', type: D, id: DhId.ECP_521, status: 'ok' },
  { name: 'x25519', type: D, id: DhId.CURVE25519, status: 'ok', aliases: ['curve25519'] },
  { name: 'x448', type: D, id: DhId.CURVE448, status: 'unsupported', aliases: ['curve448'] },
  // ML-KEM alone in IKE_SA_INIT would put 800..1568 octets into a message that cannot be fragmented
  // (RFC 7383), and the exchange code keys Transform Type 4 as Diffie-Hellman: additional only.
  ...ML_KEM.map((m) => ({ ...m, type: D, status: 'unsupported' as const, additionalOnly: true })),
  // Extended sequence numbers (ESP/AH only)
  { name: 'esn', type: N, id: EsnId.ESN, status: 'ok' },
  { name: 'noesn', type: N, id: EsnId.NO_ESN, status: 'ok' },
  // RFC 9370 Additional Key Exchange 1..7
  ...ADDITIONAL_KE_TYPES.flatMap((type, i) => [...ML_KEM, { name: 'none', id: DhId.NONE }].map((m): Keyword => ({ name: `ke${i + 1}_${m.name}`, type, id: m.id, status: 'ok' }))),
];

const BY_SPELLING: ReadonlyMap<string, Keyword> = new Map(KEYWORDS.flatMap((k) => [[k.name, k] as const, ...(k.aliases ?? []).map((a) => [a, k] as const)]));

export function keywordBySpelling(token: string): Keyword | undefined {
  return BY_SPELLING.get(token.toLowerCase());
}

/** The keyword for a transform, or undefined for IDs strongSwan has no keyword for. */
export function keywordFor(type: number, id: number, keyLength?: number): Keyword | undefined {
  return KEYWORDS.find((k) => k.type === type && k.id === id && k.keyLength === keyLength);
}

const TYPE_PREFIX: Readonly<Record<number, string>> = { [E]: 'encr', [I]: 'integ', [P]: 'prf', [D]: 'ke', [N]: 'esn' };

/** Name for logs and error messages; unknown IDs print as e.g. "encr57", "encr12/160" or "ke1_ke99". */
export function transformName(type: number, id: number, keyLength?: number): string {
  const k = keywordFor(type, id, keyLength);
  if (k) return k.name;
  if (type === D && id === DhId.NONE) return 'none';
  const addke = (ADDITIONAL_KE_TYPES as readonly number[]).indexOf(type);
  if (addke >= 0) return `ke${addke + 1}_${transformName(D, id, keyLength)}`;
  return `${TYPE_PREFIX[type] ?? `type${type}-`}${id}${keyLength === undefined ? '' : `/${keyLength}`}`;
}
