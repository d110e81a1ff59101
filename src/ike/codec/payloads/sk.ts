// RFC 7296 §3.14 Encrypted and Authenticated payload (SK, type 46): the envelope only.
// Body = IV || ciphertext (inner payloads + padding + pad length) || ICV; the generic header's
// Next Payload is the type of the first inner payload. The codec never decrypts: the exchanges
// layer hands the body to the crypto module and decodes the plaintext with decodePayloadChain.
// For AEAD (RFC 5282 §5.1) the associated data is the message from the IKE header through the SK
// generic header; for AES-CBC + HMAC the ICV covers the message from the header through the
// ciphertext. See envelope.ts for both directions.
import type { Reader, Writer } from '../../../common/bytes.js';
import type { PayloadFlags } from './base.js';

export interface SkPayload extends PayloadFlags {
  readonly kind: 'sk';
  /** Payload type of the first inner payload (the generic header's Next Payload). */
  readonly innerNext: number;
  /** IV || ciphertext || ICV. */
  readonly body: Uint8Array;
}

export function decodeSk(r: Reader, innerNext: number): SkPayload {
  return { kind: 'sk', innerNext, body: r.rest() };
}

export function encodeSk(w: Writer, p: SkPayload): void { w.bytes(p.body); }
