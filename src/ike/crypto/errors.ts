// Typed failures of the IKE crypto layer. Each class has one fixed `code`; where the failure maps
// onto an RFC 7296 §3.10.1 notify, `notify` names it so the exchange layer can answer the peer
// without string matching. Messages never contain key material.
import { KipsecError } from '../../common/errors.js';

/** Notify types a crypto failure may translate into (names as in src/ike/constants.ts). */
export type CryptoNotify = 'INVALID_SYNTAX' | 'AUTHENTICATION_FAILED' | 'NO_PROPOSAL_CHOSEN' | 'INVALID_KE_PAYLOAD';

/** An algorithm ID we do not implement (or refuse without allowWeak). */
export class UnsupportedAlgorithmError extends KipsecError {
  readonly notify: CryptoNotify = 'NO_PROPOSAL_CHOSEN';
  constructor(message: string) { super('ERR_IKE_UNSUPPORTED_ALGORITHM', message); }
}

/** The peer's KE payload data is not a valid public value for the group (RFC 7296 §3.4). */
export class InvalidKeyExchangeError extends KipsecError {
  readonly notify: CryptoNotify = 'INVALID_SYNTAX';
  readonly group: number;
  constructor(group: number, message: string) {
    super('ERR_IKE_INVALID_KE_VALUE', `DH group ${group}: ${message}`);
    this.group = group;
  }
}

/** SK payload integrity (ICV / AEAD tag) did not verify: drop the message silently (RFC 7296 §2.21.1). */
export class IntegrityError extends KipsecError {
  constructor(message = 'SK payload integrity check failed') { super('ERR_IKE_INTEGRITY', message); }
}

/** SK payload structurally wrong after (or before) decryption: length, block alignment, pad length. */
export class SkMalformedError extends KipsecError {
  readonly notify: CryptoNotify = 'INVALID_SYNTAX';
  constructor(message: string) { super('ERR_IKE_SK_MALFORMED', message); }
}

/** AUTH payload did not verify, or the method/key/hash combination is not acceptable. */
export class AuthenticationError extends KipsecError {
  readonly notify: CryptoNotify = 'AUTHENTICATION_FAILED';
  constructor(message: string) { super('ERR_IKE_AUTHENTICATION_FAILED', message); }
}

/** Why a certificate chain or identity match was rejected. */
export type CertificateErrorCode =
  | 'ERR_IKE_CERT_MALFORMED'
  | 'ERR_IKE_CERT_EXPIRED'
  | 'ERR_IKE_CERT_NOT_YET_VALID'
  | 'ERR_IKE_CERT_UNTRUSTED'
  | 'ERR_IKE_CERT_BAD_SIGNATURE'
  | 'ERR_IKE_CERT_NOT_CA'
  | 'ERR_IKE_CERT_KEY_USAGE'
  | 'ERR_IKE_CERT_CHAIN_TOO_LONG'
  | 'ERR_IKE_CERT_CHAIN_TOO_BIG'
  | 'ERR_IKE_CERT_UNSUPPORTED_CRITICAL'
  | 'ERR_IKE_CERT_WEAK_SIGNATURE'
  | 'ERR_IKE_CERT_ID_MISMATCH'
  | 'ERR_IKE_CERT_PIN_MISMATCH';

/** Certificate validation failed; the exchange layer answers AUTHENTICATION_FAILED. */
export class CertificateError extends KipsecError {
  readonly notify: CryptoNotify = 'AUTHENTICATION_FAILED';
  declare readonly code: CertificateErrorCode;
  constructor(code: CertificateErrorCode, message: string) { super(code, message); }
}
