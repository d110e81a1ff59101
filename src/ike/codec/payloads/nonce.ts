// RFC 7296 §3.9 Nonce payload: Nonce Data, at least 16 and at most 256 octets (§2.10).
import type { Reader, Writer } from '../../../common/bytes.js';
import { fail, type PayloadFlags } from './base.js';

export const NONCE_MIN_BYTES = 16;
export const NONCE_MAX_BYTES = 256;

export interface NoncePayload extends PayloadFlags { readonly kind: 'nonce'; readonly data: Uint8Array }

export function decodeNonce(r: Reader): NoncePayload {
  const data = r.rest();
  if (data.length < NONCE_MIN_BYTES || data.length > NONCE_MAX_BYTES)
    fail(r, 'ERR_IKE_NONCE_LENGTH', `nonce is ${data.length} bytes, want ${NONCE_MIN_BYTES}..${NONCE_MAX_BYTES}`);
  return { kind: 'nonce', data };
}

export function encodeNonce(w: Writer, p: NoncePayload): void { w.bytes(p.data); }
