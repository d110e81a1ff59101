// Signature schemes for IKEv2 AUTH: the RFC 7427 DIGITAL_SIGNATURE (14) schemes, identified on the
// wire by an ASN.1 AlgorithmIdentifier, and the classic methods RSA_DIGITAL_SIGNATURE (1,
// PKCS#1 v1.5 with SHA-1, RFC 7296 §3.8) and ECDSA_SHA*_P* (9/10/11, RFC 4754: raw r | s).
import { equalBytes } from '../../common/bytes.js';
import { AuthMethod, HashAlgorithm } from '../constants.js';
import { NULL_DER, oid, SEQUENCE, smallInt, tlv } from './der.js';

export type KeyKind = 'ec' | 'rsa' | 'rsa-pss' | 'ed25519';
export type SigHash = 'sha1' | 'sha256' | 'sha384' | 'sha512' | null;

export interface SignatureScheme {
  readonly name: string;
  /** Key types that can produce/verify it (node KeyObject.asymmetricKeyType). */
  readonly keyKinds: readonly KeyKind[];
  /** Digest given to node's sign/verify; null for Ed25519 (PureEdDSA). */
  readonly hash: SigHash;
  /** RFC 7427 §4 hash ID, for SIGNATURE_HASH_ALGORITHMS. */
  readonly hashId: number;
  readonly padding: 'pkcs1' | 'pss' | 'none';
  /** ECDSA signature encoding: DER for RFC 7427, raw r|s for RFC 4754. */
  readonly dsaEncoding: 'der' | 'ieee-p1363';
  /** RFC 7427 AlgorithmIdentifier (DER); null for the classic methods. */
  readonly algorithmIdentifier: Uint8Array | null;
  /** Classic AUTH method, or DIGITAL_SIGNATURE. */
  readonly authMethod: number;
  /** For classic ECDSA: the only curve allowed with the method. */
  readonly curve?: string;
}

const HASH_OID = { sha256: '608648016503040201', sha384: '608648016503040202', sha512: '608648016503040203' } as const;
const HASH_ID = { sha1: HashAlgorithm.SHA1, sha256: HashAlgorithm.SHA2_256, sha384: HashAlgorithm.SHA2_384, sha512: HashAlgorithm.SHA2_512 } as const;
const HASH_LEN = { sha256: 32, sha384: 48, sha512: 64 } as const;

/**
 * RSASSA-PSS-params (RFC 4055 §3.1) as in RFC 7427 Appendix A.4: hash and MGF1 hash identical,
 * hash AlgorithmIdentifiers with NULL parameters, salt length = hash length, default trailer.
 */
function pssAlgId(h: 'sha256' | 'sha384' | 'sha512'): Uint8Array {
  const hashAlg = tlv(SEQUENCE, oid(HASH_OID[h]), NULL_DER);
  return tlv(SEQUENCE, oid('2a864886f70d01010a'), tlv(SEQUENCE,
    tlv(0xa0, hashAlg),
    tlv(0xa1, tlv(SEQUENCE, oid('2a864886f70d010108'), hashAlg)),
    tlv(0xa2, smallInt(HASH_LEN[h]))));
}

function ecdsa(h: 'sha256' | 'sha384' | 'sha512', oidTail: string): SignatureScheme {
  return { name: `ecdsa-with-${h}`, keyKinds: ['ec'], hash: h, hashId: HASH_ID[h], padding: 'none', dsaEncoding: 'der', algorithmIdentifier: tlv(SEQUENCE, oid(`2a8648ce3d0403${oidTail}`)), authMethod: AuthMethod.DIGITAL_SIGNATURE };
}
function pss(h: 'sha256' | 'sha384' | 'sha512'): SignatureScheme {
  return { name: `rsassa-pss-${h}`, keyKinds: ['rsa', 'rsa-pss'], hash: h, hashId: HASH_ID[h], padding: 'pss', dsaEncoding: 'der', algorithmIdentifier: pssAlgId(h), authMethod: AuthMethod.DIGITAL_SIGNATURE };
}
function pkcs1(h: 'sha256' | 'sha384' | 'sha512', oidTail: string): SignatureScheme {
  return { name: `${h}WithRSAEncryption`, keyKinds: ['rsa'], hash: h, hashId: HASH_ID[h], padding: 'pkcs1', dsaEncoding: 'der', algorithmIdentifier: tlv(SEQUENCE, oid(`2a864886f70d0101${oidTail}`), NULL_DER), authMethod: AuthMethod.DIGITAL_SIGNATURE };
}

/** RFC 7427 schemes, in our order of preference per key kind. */
export const RFC7427_SCHEMES: readonly SignatureScheme[] = [
  ecdsa('sha256', '02'), ecdsa('sha384', '03'), ecdsa('sha512', '04'),
  pss('sha256'), pss('sha384'), pss('sha512'),
  pkcs1('sha256', '0b'), pkcs1('sha384', '0c'), pkcs1('sha512', '0d'),
  // RFC 8420: Ed25519 uses the "identity" hash; AlgorithmIdentifier without parameters.
  { name: 'ed25519', keyKinds: ['ed25519'], hash: null, hashId: HashAlgorithm.IDENTITY, padding: 'none', dsaEncoding: 'der', algorithmIdentifier: tlv(SEQUENCE, oid('2b6570')), authMethod: AuthMethod.DIGITAL_SIGNATURE },
];

export const CLASSIC_SCHEMES: readonly SignatureScheme[] = [
  { name: 'rsa-pkcs1-sha1', keyKinds: ['rsa'], hash: 'sha1', hashId: HashAlgorithm.SHA1, padding: 'pkcs1', dsaEncoding: 'der', algorithmIdentifier: null, authMethod: AuthMethod.RSA_DIGITAL_SIGNATURE },
  { name: 'ecdsa-sha256-p256', keyKinds: ['ec'], hash: 'sha256', hashId: HashAlgorithm.SHA2_256, padding: 'none', dsaEncoding: 'ieee-p1363', algorithmIdentifier: null, authMethod: AuthMethod.ECDSA_SHA256_P256, curve: 'prime256v1' },
  { name: 'ecdsa-sha384-p384', keyKinds: ['ec'], hash: 'sha384', hashId: HashAlgorithm.SHA2_384, padding: 'none', dsaEncoding: 'ieee-p1363', algorithmIdentifier: null, authMethod: AuthMethod.ECDSA_SHA384_P384, curve: 'secp384r1' },
  { name: 'ecdsa-sha512-p521', keyKinds: ['ec'], hash: 'sha512', hashId: HashAlgorithm.SHA2_512, padding: 'none', dsaEncoding: 'ieee-p1363', algorithmIdentifier: null, authMethod: AuthMethod.ECDSA_SHA512_P521, curve: 'secp521r1' },
];

export function schemeByName(name: string): SignatureScheme | undefined {
  return RFC7427_SCHEMES.find((s) => s.name === name) ?? CLASSIC_SCHEMES.find((s) => s.name === name);
}

/** Find the RFC 7427 scheme for an AlgorithmIdentifier received in AUTH data (exact DER match). */
export function schemeByAlgorithmIdentifier(algId: Uint8Array): SignatureScheme | undefined {
  return RFC7427_SCHEMES.find((s) => s.algorithmIdentifier !== null && equalBytes(s.algorithmIdentifier, algId));
}

export function classicSchemeForMethod(authMethod: number): SignatureScheme | undefined {
  return CLASSIC_SCHEMES.find((s) => s.authMethod === authMethod);
}
