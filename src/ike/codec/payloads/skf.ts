// RFC 7383 §2.5 Encrypted Fragment payload (SKF, type 53): Fragment Number (2), Total Fragments (2),
// then IV || ciphertext || ICV as in SK. Next Payload is the first inner payload's type in
// fragment 1 and 0 in the others. Numbers start at 1 and Fragment Number <= Total Fragments.
// AEAD associated data runs through the 8-octet SKF header (RFC 7383 §2.5.3).
import type { Reader, Writer } from '../../../common/bytes.js';
import { fail, type PayloadFlags } from './base.js';

export interface SkfPayload extends PayloadFlags {
  readonly kind: 'skf';
  readonly innerNext: number;
  readonly fragmentNumber: number;
  readonly totalFragments: number;
  readonly body: Uint8Array;
}

export function decodeSkf(r: Reader, innerNext: number): SkfPayload {
  const fragmentNumber = r.u16('fragment number');
  const totalFragments = r.u16('total fragments');
  if (fragmentNumber === 0 || totalFragments === 0 || fragmentNumber > totalFragments)
    fail(r, 'ERR_IKE_SKF_NUMBER', `fragment ${fragmentNumber} of ${totalFragments}, want 1 <= number <= total`);
  return { kind: 'skf', innerNext, fragmentNumber, totalFragments, body: r.rest() };
}

export function encodeSkf(w: Writer, p: SkfPayload): void {
  w.u16(p.fragmentNumber).u16(p.totalFragments).bytes(p.body);
}
