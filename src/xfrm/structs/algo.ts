// The three algorithm structs (include/uapi/linux/xfrm.h). alg_key_len is in BITS; the key
// follows the fixed part. Keys are SecretBytes so a decoded dump can never leak into a log.
//   struct xfrm_algo       { char alg_name[64]; unsigned int alg_key_len;                         char alg_key[]; };  /* 68 + key */
//   struct xfrm_algo_auth  { char alg_name[64]; unsigned int alg_key_len; unsigned int alg_trunc_len; char alg_key[]; };  /* 72 + key */
//   struct xfrm_algo_aead  { char alg_name[64]; unsigned int alg_key_len; unsigned int alg_icv_len;   char alg_key[]; };  /* 72 + key */
// XFRMA_ALG_CRYPT and XFRMA_ALG_AUTH carry xfrm_algo, XFRMA_ALG_AUTH_TRUNC xfrm_algo_auth,
// XFRMA_ALG_AEAD xfrm_algo_aead.
import type { Reader, Writer } from '../../common/bytes.js';
import { ParseError } from '../../common/errors.js';
import { SecretBytes } from '../../common/secret.js';
import { getU32, putU32 } from './host.js';

export const XFRM_ALG_NAME_LEN = 64;
export const XFRM_ALGO_SIZE = 68;
export const XFRM_ALGO_AUTH_SIZE = 72;
export const XFRM_ALGO_AEAD_SIZE = 72;

export interface XfrmAlgo { readonly alg_name: string; readonly alg_key_len: number; readonly alg_key: SecretBytes }
export interface XfrmAlgoAuth extends XfrmAlgo { readonly alg_trunc_len: number }
export interface XfrmAlgoAead extends XfrmAlgo { readonly alg_icv_len: number }

function getName(r: Reader): string {
  const raw = r.bytes(XFRM_ALG_NAME_LEN, 'alg_name');
  const nul = raw.indexOf(0);
  return new TextDecoder().decode(nul < 0 ? raw : raw.subarray(0, nul));
}
function putName(w: Writer, name: string): void {
  const b = new TextEncoder().encode(name);
  if (b.length >= XFRM_ALG_NAME_LEN) throw new RangeError(`algorithm name longer than ${XFRM_ALG_NAME_LEN - 1} bytes: ${name}`);
  w.bytes(b).zeros(XFRM_ALG_NAME_LEN - b.length);
}
function getKey(r: Reader, bits: number): SecretBytes {
  const n = Math.ceil(bits / 8);
  if (n > r.remaining) throw new ParseError('ERR_XFRM_ALGO_KEY', `alg_key_len ${bits} bits but ${r.remaining} key bytes`, r.offset);
  return new SecretBytes(r.bytes(n, 'alg_key').slice());
}

export function decodeXfrmAlgo(r: Reader): XfrmAlgo {
  const alg_name = getName(r); const alg_key_len = getU32(r);
  return { alg_name, alg_key_len, alg_key: getKey(r, alg_key_len) };
}
export function encodeXfrmAlgo(w: Writer, v: XfrmAlgo): void {
  putName(w, v.alg_name); putU32(w, v.alg_key_len); w.bytes(v.alg_key.expose());
}

export function decodeXfrmAlgoAuth(r: Reader): XfrmAlgoAuth {
  const alg_name = getName(r); const alg_key_len = getU32(r); const alg_trunc_len = getU32(r);
  return { alg_name, alg_key_len, alg_trunc_len, alg_key: getKey(r, alg_key_len) };
}
export function encodeXfrmAlgoAuth(w: Writer, v: XfrmAlgoAuth): void {
  putName(w, v.alg_name); putU32(w, v.alg_key_len); putU32(w, v.alg_trunc_len); w.bytes(v.alg_key.expose());
}

export function decodeXfrmAlgoAead(r: Reader): XfrmAlgoAead {
  const alg_name = getName(r); const alg_key_len = getU32(r); const alg_icv_len = getU32(r);
  return { alg_name, alg_key_len, alg_icv_len, alg_key: getKey(r, alg_key_len) };
}
export function encodeXfrmAlgoAead(w: Writer, v: XfrmAlgoAead): void {
  putName(w, v.alg_name); putU32(w, v.alg_key_len); putU32(w, v.alg_icv_len); w.bytes(v.alg_key.expose());
}
