// One entry point per role for every key exchange method, Diffie-Hellman or KEM, so the exchange
// code (IKE_SA_INIT, IKE_INTERMEDIATE, CREATE_CHILD_SA, IKE_FOLLOWUP_KE) need not know which it has.
// RFC 9370 §2.2.2: the initiator's KE payload goes first; the responder's KE data depends on it for a
// KEM (ciphertext to the initiator's key) but not for DH (its own public value).
//
//   initiator                                     responder
//   share = initiateKeyExchange(m)   KEi ----->   r = respondToKeyExchange(m, KEi)
//   share.computeSharedSecret(KEr)   <----- KEr   (KEr = r.publicValue, r.sharedSecret)
import type { Random } from '../../common/time.js';
import { createKeyShare, keyExchangeLength, type KeyShare } from './dh.js';
import { createMlKemShare, encapsulateMlKem, isMlKem, mlKemParams, type KeyExchangeResponse, type MlKemBackendName } from './mlkem.js';

export type KeyExchangeRole = 'initiator' | 'responder';

export interface KeyExchangeOptions {
  readonly random?: Random;
  /** Permit MODP 1/2/5 (RFC 8247 MUST NOT / SHOULD NOT). */
  readonly allowWeak?: boolean;
  /** ML-KEM only: force node:crypto or the library (tests). */
  readonly mlKemBackend?: MlKemBackendName;
}

export type { KeyExchangeResponse } from './mlkem.js';

/** Whether the method is a KEM (ML-KEM): its two KE payloads differ in meaning and length. */
export function isKemMethod(method: number): boolean {
  return isMlKem(method);
}

/** Initiator: our half; publicValue goes in KEi, computeSharedSecret takes the responder's KEr data. */
export function initiateKeyExchange(method: number, opts: KeyExchangeOptions = {}): KeyShare {
  if (isMlKem(method)) return createMlKemShare(method, { ...(opts.random ? { random: opts.random } : {}), ...(opts.mlKemBackend ? { backend: opts.mlKemBackend } : {}) });
  return createKeyShare(method, { ...(opts.random ? { random: opts.random } : {}), ...(opts.allowWeak ? { allowWeak: true } : {}) });
}

/** Responder: KEr data and the shared secret from the initiator's KEi data (InvalidKeyExchangeError if it is bad). */
export function respondToKeyExchange(method: number, initiatorData: Uint8Array, opts: KeyExchangeOptions = {}): KeyExchangeResponse {
  if (isMlKem(method)) return encapsulateMlKem(method, initiatorData, { ...(opts.random ? { random: opts.random } : {}), ...(opts.mlKemBackend ? { backend: opts.mlKemBackend } : {}) });
  const share = createKeyShare(method, { ...(opts.random ? { random: opts.random } : {}), ...(opts.allowWeak ? { allowWeak: true } : {}) });
  return { publicValue: share.publicValue, sharedSecret: share.computeSharedSecret(initiatorData) };
}

/** Expected Key Exchange Data length of the KE payload `role` sends (RFC 7296 §3.4: a mismatch is INVALID_SYNTAX). */
export function keyExchangeDataLength(method: number, role: KeyExchangeRole, allowWeak = false): number {
  if (isMlKem(method)) {
    const p = mlKemParams(method);
    return role === 'initiator' ? p.encapsulationKeyLength : p.ciphertextLength;
  }
  return keyExchangeLength(method, allowWeak);
}
