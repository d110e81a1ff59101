// IKEv2 protocol numbers, named as in RFC 7296 and the IANA "Internet Key Exchange Version 2
// (IKEv2) Parameters" registry. `as const` objects plus derived unions (no enum), one block per
// registry so a reader can hold this file next to the RFC.

/** RFC 7296 §3.1 Exchange Types. */
export const ExchangeType = {
  IKE_SA_INIT: 34,
  IKE_AUTH: 35,
  CREATE_CHILD_SA: 36,
  INFORMATIONAL: 37,
  /** RFC 9242 §3: between IKE_SA_INIT and IKE_AUTH (RFC 9370: one per additional key exchange). */
  IKE_INTERMEDIATE: 43,
  /** RFC 9370 §2.2.2: one per additional key exchange after a CREATE_CHILD_SA. */
  IKE_FOLLOWUP_KE: 44,
} as const;
export type ExchangeTypeName = keyof typeof ExchangeType;

/** RFC 7296 §3.1 header flags. */
export const HeaderFlag = { INITIATOR: 0x08, VERSION: 0x10, RESPONSE: 0x20 } as const;

/** RFC 7296 §3.2 Payload Types (plus RFC 7383 SKF). */
export const PayloadType = {
  NONE: 0,
  SA: 33,
  KE: 34,
  IDi: 35,
  IDr: 36,
  CERT: 37,
  CERTREQ: 38,
  AUTH: 39,
  NONCE: 40,
  NOTIFY: 41,
  DELETE: 42,
  VENDOR_ID: 43,
  TSi: 44,
  TSr: 45,
  SK: 46,
  CP: 47,
  EAP: 48,
  SKF: 53,
} as const;
export type PayloadTypeName = keyof typeof PayloadType;

/**
 * RFC 7296 §3.3.2 Transform Types, plus RFC 9370 (§2.2.1, IANA section) Additional Key Exchange 1..7 (ADDKE1..7).
 * RFC 9370 renames type 4 "Key Exchange Method (KE)"; it stays DH here, as the rest of the code spells it.
 */
export const TransformType = {
  ENCR: 1, PRF: 2, INTEG: 3, DH: 4, ESN: 5,
  ADDKE1: 6, ADDKE2: 7, ADDKE3: 8, ADDKE4: 9, ADDKE5: 10, ADDKE6: 11, ADDKE7: 12,
} as const;
export type TransformTypeName = keyof typeof TransformType;

/** ADDKE1..ADDKE7 in order; each is negotiated on its own and may be NONE (RFC 9370 §2.2.1). */
export const ADDITIONAL_KE_TYPES = [
  TransformType.ADDKE1, TransformType.ADDKE2, TransformType.ADDKE3, TransformType.ADDKE4,
  TransformType.ADDKE5, TransformType.ADDKE6, TransformType.ADDKE7,
] as const;

export function isAdditionalKeyExchangeType(type: number): boolean {
  return type >= TransformType.ADDKE1 && type <= TransformType.ADDKE7;
}

/** Transform Type 1 — Encryption Algorithm IDs (IANA). */
export const EncrId = {
  ENCR_DES: 2,
  ENCR_3DES: 3,
  ENCR_NULL: 11,
  ENCR_AES_CBC: 12,
  ENCR_AES_CTR: 13,
  ENCR_AES_GCM_8: 18,
  ENCR_AES_GCM_12: 19,
  ENCR_AES_GCM_16: 20,
  ENCR_CHACHA20_POLY1305: 28,
} as const;

/** Transform Type 2 — Pseudorandom Function IDs. */
export const PrfId = {
  PRF_HMAC_MD5: 1,
  PRF_HMAC_SHA1: 2,
  PRF_HMAC_SHA2_256: 5,
  PRF_HMAC_SHA2_384: 6,
  PRF_HMAC_SHA2_512: 7,
} as const;

/** Transform Type 3 — Integrity Algorithm IDs. */
export const IntegId = {
  NONE: 0,
  AUTH_HMAC_MD5_96: 1,
  AUTH_HMAC_SHA1_96: 2,
  AUTH_HMAC_SHA2_256_128: 12,
  AUTH_HMAC_SHA2_384_192: 13,
  AUTH_HMAC_SHA2_512_256: 14,
} as const;

/**
 * Transform Type 4 — Key Exchange Method IDs (ADDKE1..7 take the same IDs, RFC 9370 §2.2.1).
 * ML-KEM 35/36/37: IANA "Transform Type 4 - Key Exchange Method Transform IDs", registered by
 * draft-ietf-ipsecme-ikev2-mlkem (early individual drafts proposed 35/36 for 768/1024; IANA's are these).
 */
export const DhId = {
  NONE: 0,
  MODP_768: 1,
  MODP_1024: 2,
  MODP_1536: 5,
  MODP_2048: 14,
  MODP_3072: 15,
  MODP_4096: 16,
  MODP_6144: 17,
  MODP_8192: 18,
  ECP_256: 19,
  ECP_384: 20,
  ECP_521: 21,
  MODP_1024_160: 22,
  MODP_2048_224: 23,
  MODP_2048_256: 24,
  CURVE25519: 31,
  CURVE448: 32,
  ML_KEM_512: 35,
  ML_KEM_768: 36,
  ML_KEM_1024: 37,
} as const;

/** Transform Type 5 — Extended Sequence Numbers. */
export const EsnId = { NO_ESN: 0, ESN: 1 } as const;

/** RFC 7296 §3.3.5 Transform Attribute types. */
export const TransformAttr = { KEY_LENGTH: 14 } as const;

/** RFC 7296 §3.3.1 Protocol IDs. */
export const ProtocolId = { IKE: 1, AH: 2, ESP: 3 } as const;

/** RFC 7296 §3.5 ID Types. */
export const IdType = {
  ID_IPV4_ADDR: 1,
  ID_FQDN: 2,
  ID_RFC822_ADDR: 3,
  ID_IPV6_ADDR: 5,
  ID_DER_ASN1_DN: 9,
  ID_DER_ASN1_GN: 10,
  ID_KEY_ID: 11,
} as const;

/** RFC 7296 §3.6 Certificate Encodings (the ones we meet). */
export const CertEncoding = {
  X509_CERT_SIGNATURE: 4,
  HASH_AND_URL_X509_CERT: 12,
} as const;

/** RFC 7296 §3.8 Authentication Methods, RFC 4754 ECDSA, RFC 7427 Digital Signature. */
export const AuthMethod = {
  RSA_DIGITAL_SIGNATURE: 1,
  SHARED_KEY_MESSAGE_INTEGRITY_CODE: 2,
  DSS_DIGITAL_SIGNATURE: 3,
  ECDSA_SHA256_P256: 9,
  ECDSA_SHA384_P384: 10,
  ECDSA_SHA512_P521: 11,
  DIGITAL_SIGNATURE: 14,
} as const;

/** RFC 7427 §4 / IANA Hash Algorithms for SIGNATURE_HASH_ALGORITHMS. */
export const HashAlgorithm = { SHA1: 1, SHA2_256: 2, SHA2_384: 3, SHA2_512: 4, IDENTITY: 5 } as const;

/** RFC 7296 §3.10.1 Notify Message Types: errors (< 16384). */
export const NotifyError = {
  UNSUPPORTED_CRITICAL_PAYLOAD: 1,
  INVALID_IKE_SPI: 4,
  INVALID_MAJOR_VERSION: 5,
  INVALID_SYNTAX: 7,
  INVALID_MESSAGE_ID: 9,
  INVALID_SPI: 11,
  NO_PROPOSAL_CHOSEN: 14,
  INVALID_KE_PAYLOAD: 17,
  AUTHENTICATION_FAILED: 24,
  SINGLE_PAIR_REQUIRED: 34,
  NO_ADDITIONAL_SAS: 35,
  INTERNAL_ADDRESS_FAILURE: 36,
  FAILED_CP_REQUIRED: 37,
  TS_UNACCEPTABLE: 38,
  INVALID_SELECTORS: 39,
  TEMPORARY_FAILURE: 43,
  CHILD_SA_NOT_FOUND: 44,
  STATE_NOT_FOUND: 47, // RFC 9370 §2.2.2: an IKE_FOLLOWUP_KE whose link the responder does not know
} as const;

/** RFC 7296 §3.10.1 Notify Message Types: status (>= 16384), plus extensions we implement. */
export const NotifyStatus = {
  INITIAL_CONTACT: 16384,
  SET_WINDOW_SIZE: 16385,
  ADDITIONAL_TS_POSSIBLE: 16386,
  IPCOMP_SUPPORTED: 16387,
  NAT_DETECTION_SOURCE_IP: 16388,
  NAT_DETECTION_DESTINATION_IP: 16389,
  COOKIE: 16390,
  USE_TRANSPORT_MODE: 16391,
  HTTP_CERT_LOOKUP_SUPPORTED: 16392,
  REKEY_SA: 16393,
  ESP_TFC_PADDING_NOT_SUPPORTED: 16394,
  NON_FIRST_FRAGMENTS_ALSO: 16395,
  MOBIKE_SUPPORTED: 16396,
  ADDITIONAL_IP4_ADDRESS: 16397, // RFC 4555 (MOBIKE)
  ADDITIONAL_IP6_ADDRESS: 16398,
  NO_ADDITIONAL_ADDRESSES: 16399,
  UPDATE_SA_ADDRESSES: 16400,
  COOKIE2: 16401,
  NO_NATS_ALLOWED: 16402,
  AUTH_LIFETIME: 16403, // RFC 4478
  MULTIPLE_AUTH_SUPPORTED: 16404,
  ANOTHER_AUTH_FOLLOWS: 16405, // RFC 4739
  REDIRECT_SUPPORTED: 16406,
  EAP_ONLY_AUTHENTICATION: 16417, // RFC 5998
  IKEV2_MESSAGE_ID_SYNC_SUPPORTED: 16420, // RFC 6311
  IKEV2_FRAGMENTATION_SUPPORTED: 16430, // RFC 7383
  SIGNATURE_HASH_ALGORITHMS: 16431, // RFC 7427
  CHILDLESS_IKEV2_SUPPORTED: 16418, // RFC 6023
  INTERMEDIATE_EXCHANGE_SUPPORTED: 16438, // RFC 9242 §3
  ADDITIONAL_KEY_EXCHANGE: 16441, // RFC 9370 §2.2.2 (IKE_FOLLOWUP_KE)
} as const;

/** RFC 7296 §3.13.1 Traffic Selector Types. */
export const TsType = { TS_IPV4_ADDR_RANGE: 7, TS_IPV6_ADDR_RANGE: 8 } as const;

/** RFC 7296 §3.15.1 Configuration Payload types and attributes (the subset we use). */
export const CfgType = { CFG_REQUEST: 1, CFG_REPLY: 2, CFG_SET: 3, CFG_ACK: 4 } as const;
export const CfgAttr = { INTERNAL_IP4_ADDRESS: 1, INTERNAL_IP4_NETMASK: 2, INTERNAL_IP4_DNS: 3, INTERNAL_IP6_ADDRESS: 8, INTERNAL_IP6_DNS: 10, INTERNAL_IP4_SUBNET: 13, INTERNAL_IP6_SUBNET: 15 } as const;

/** RFC 7296 §2.4: IKE runs on UDP 500; RFC 3948: 4500 with a 4-byte non-ESP marker. */
export const IKE_PORT = 500;
export const IKE_NATT_PORT = 4500;
export const NON_ESP_MARKER = new Uint8Array([0, 0, 0, 0]);

/** Reverse lookup for logs and errors: notifyName(14) === 'NO_PROPOSAL_CHOSEN'. */
export function notifyName(type: number): string {
  return NOTIFY_NAMES.get(type) ?? `NOTIFY_${type}`;
}
// Built once (errors first, as the lookup always preferred them): names go into per-message logs.
const NOTIFY_NAMES: ReadonlyMap<number, string> = new Map([...Object.entries(NotifyStatus), ...Object.entries(NotifyError)].map(([k, v]) => [v, k]));
