// RFC 7296 §2.13: the negotiated PRF (HMAC only; AES-XCBC/CMAC PRFs are not offered) and prf+,
// the expansion every IKEv2 key derivation uses:
//   prf+ (K,S) = T1 | T2 | T3 | ...   with  T1 = prf(K, S | 0x01),  Tn = prf(K, Tn-1 | S | n)
// The counter is one octet, so at most 255 blocks can be produced.
import { createHmac } from 'node:crypto';
import { SecretBytes } from '../../common/secret.js';
import { KipsecError } from '../../common/errors.js';
import { prfAlg, type PrfAlg } from './algorithms.js';

/** A keyed PRF bound to its algorithm; the key may be public (nonces) or secret. */
export interface Prf {
  readonly alg: PrfAlg;
  /** prf(key, ...data) with the data parts concatenated. */
  compute(key: Uint8Array | SecretBytes, ...data: readonly Uint8Array[]): Uint8Array;
}

function raw(k: Uint8Array | SecretBytes): Uint8Array {
  return k instanceof SecretBytes ? k.expose() : k;
}

export function createPrf(prfId: number): Prf {
  const alg = prfAlg(prfId);
  return {
    alg,
    compute(key, ...data) {
      const h = createHmac(alg.hash, raw(key));
      for (const d of data) h.update(d);
      // digest() returns a Buffer owning its own memory: viewed as a plain Uint8Array, not copied.
      const d = h.digest();
      return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
    },
  };
}

/** prf+ (K, S) truncated to `length` octets. Throws if more than 255 blocks are needed. */
export function prfPlus(prf: Prf, key: Uint8Array | SecretBytes, seed: Uint8Array, length: number): SecretBytes {
  const hLen = prf.alg.outputLength;
  const blocks = Math.ceil(length / hLen);
  if (blocks > 255) throw new KipsecError('ERR_IKE_PRF_PLUS_LENGTH', `prf+ cannot produce ${length} octets with ${prf.alg.name} (max ${255 * hLen})`);
  const out = new Uint8Array(blocks * hLen);
  let prev: Uint8Array = new Uint8Array(0);
  const counter = new Uint8Array(1);
  for (let i = 1; i <= blocks; i++) {
    counter[0] = i;
    prev = prf.compute(key, prev, seed, counter);
    out.set(prev, (i - 1) * hLen);
  }
  prev.fill(0);
  const result = out.slice(0, length);
  out.fill(0);
  return new SecretBytes(result);
}
