// RFC 7296 §3.8 Authentication payload: Auth Method (1), RESERVED (3), Authentication Data.
// For method 14 (RFC 7427 §3) the data starts with a one-octet ASN.1 AlgorithmIdentifier length,
// then that AlgorithmIdentifier, then the signature; splitSignatureAuth separates them.
import type { Reader, Writer } from '../../../common/bytes.js';
import { AuthMethod } from '../../constants.js';
import { IkeCodecError } from '../errors.js';
import { fail, skipReserved, type PayloadFlags } from './base.js';

export interface AuthPayload extends PayloadFlags { readonly kind: 'auth'; readonly method: number; readonly data: Uint8Array }

export function decodeAuth(r: Reader): AuthPayload {
  const method = r.u8('auth method');
  skipReserved(r, 3);
  const data = r.rest();
  if (data.length === 0) fail(r, 'ERR_IKE_AUTH_EMPTY', `authentication data (method ${method}) is empty`);
  return { kind: 'auth', method, data };
}

export function encodeAuth(w: Writer, p: AuthPayload): void { w.u8(p.method).zeros(3).bytes(p.data); }

/** RFC 7427 §3: split Digital Signature auth data into AlgorithmIdentifier DER and signature. */
export function splitSignatureAuth(p: AuthPayload): { algorithm: Uint8Array; signature: Uint8Array } {
  if (p.method !== AuthMethod.DIGITAL_SIGNATURE)
    throw new IkeCodecError('ERR_IKE_AUTH_METHOD', `auth method is ${p.method}, want ${AuthMethod.DIGITAL_SIGNATURE} (RFC 7427)`, 0);
  const n = p.data[0] ?? 0;
  if (n === 0 || 1 + n >= p.data.length)
    throw new IkeCodecError('ERR_IKE_AUTH_SIGNATURE', `signature auth data is ${p.data.length} bytes with an AlgorithmIdentifier of ${n}`, 0);
  return { algorithm: p.data.subarray(1, 1 + n), signature: p.data.subarray(1 + n) };
}

/** Inverse of splitSignatureAuth. */
export function joinSignatureAuth(algorithm: Uint8Array, signature: Uint8Array): Uint8Array {
  if (algorithm.length === 0 || algorithm.length > 255) throw new RangeError(`AlgorithmIdentifier is ${algorithm.length} bytes, want 1..255`);
  const out = new Uint8Array(1 + algorithm.length + signature.length);
  out[0] = algorithm.length;
  out.set(algorithm, 1);
  out.set(signature, 1 + algorithm.length);
  return out;
}
