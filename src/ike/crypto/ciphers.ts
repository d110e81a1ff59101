// Raw cipher primitives under the SK payload, over node:crypto. No IKE framing here (that is
// sk.ts); these exist separately so RFC 3602 / GCM / RFC 7634 vectors can test them directly.
import { createCipheriv, createDecipheriv, createHmac, timingSafeEqual, type CipherGCMTypes, type CipherChaCha20Poly1305Types } from 'node:crypto';
import type { EncrAlg, IntegAlg } from './algorithms.js';
import { IntegrityError, SkMalformedError } from './errors.js';

function buf(b: Uint8Array): Buffer { return Buffer.from(b.buffer, b.byteOffset, b.byteLength); }

/** AES-CBC without PKCS#7 padding: IKE pads itself (RFC 7296 §3.14). */
export function cbcEncrypt(alg: EncrAlg, key: Uint8Array, iv: Uint8Array, plaintext: Uint8Array): Uint8Array {
  if (plaintext.length % alg.blockSize !== 0) throw new SkMalformedError(`CBC plaintext is ${plaintext.length} octets, not a multiple of ${alg.blockSize}`);
  const c = createCipheriv(alg.cipher, buf(key), buf(iv));
  c.setAutoPadding(false);
  return new Uint8Array(Buffer.concat([c.update(buf(plaintext)), c.final()]));
}

export function cbcDecrypt(alg: EncrAlg, key: Uint8Array, iv: Uint8Array, ciphertext: Uint8Array): Uint8Array {
  if (ciphertext.length === 0 || ciphertext.length % alg.blockSize !== 0)
    throw new SkMalformedError(`CBC ciphertext is ${ciphertext.length} octets, not a positive multiple of ${alg.blockSize}`);
  const d = createDecipheriv(alg.cipher, buf(key), buf(iv));
  d.setAutoPadding(false);
  return new Uint8Array(Buffer.concat([d.update(buf(ciphertext)), d.final()]));
}

/** 12-octet AEAD nonce = salt (4, from keying material) | explicit IV (8, on the wire). */
function aeadNonce(salt: Uint8Array, iv: Uint8Array): Buffer {
  return Buffer.concat([buf(salt), buf(iv)]);
}

/** AES-GCM (RFC 5282) or ChaCha20-Poly1305 (RFC 7634): returns ciphertext | tag. */
export function aeadSeal(alg: EncrAlg, keyAndSalt: Uint8Array, iv: Uint8Array, aad: Uint8Array, plaintext: Uint8Array): Uint8Array {
  const key = buf(keyAndSalt.subarray(0, alg.keyLength));
  const nonce = aeadNonce(keyAndSalt.subarray(alg.keyLength), iv);
  const c = alg.kind === 'gcm'
    ? createCipheriv(alg.cipher as CipherGCMTypes, key, nonce, { authTagLength: alg.icvLength })
    : createCipheriv(alg.cipher as CipherChaCha20Poly1305Types, key, nonce, { authTagLength: alg.icvLength });
  c.setAAD(buf(aad), { plaintextLength: plaintext.length });
  // One allocation for ciphertext | tag (AEAD final() adds no octets; kept for any it would).
  const ct = c.update(buf(plaintext));
  const fin = c.final();
  const tag = c.getAuthTag();
  const out = new Uint8Array(ct.length + fin.length + tag.length);
  out.set(ct); out.set(fin, ct.length); out.set(tag, ct.length + fin.length);
  return out;
}

/** Inverse of aeadSeal; a wrong tag is IntegrityError, never a bare Error. */
export function aeadOpen(alg: EncrAlg, keyAndSalt: Uint8Array, iv: Uint8Array, aad: Uint8Array, sealed: Uint8Array): Uint8Array {
  if (sealed.length < alg.icvLength) throw new SkMalformedError(`AEAD data is ${sealed.length} octets, shorter than the ${alg.icvLength}-octet tag`);
  const key = buf(keyAndSalt.subarray(0, alg.keyLength));
  const nonce = aeadNonce(keyAndSalt.subarray(alg.keyLength), iv);
  const ctLen = sealed.length - alg.icvLength;
  const d = alg.kind === 'gcm'
    ? createDecipheriv(alg.cipher as CipherGCMTypes, key, nonce, { authTagLength: alg.icvLength })
    : createDecipheriv(alg.cipher as CipherChaCha20Poly1305Types, key, nonce, { authTagLength: alg.icvLength });
  d.setAuthTag(buf(sealed.subarray(ctLen)));
  d.setAAD(buf(aad), { plaintextLength: ctLen });
  const pt = d.update(buf(sealed.subarray(0, ctLen)));
  try {
    d.final();
  } catch {
    pt.fill(0);
    throw new IntegrityError();
  }
  // update() returns a Buffer owning its memory (never the shared pool): a view, not a copy.
  return new Uint8Array(pt.buffer, pt.byteOffset, pt.byteLength);
}

/** Truncated HMAC over the parts (RFC 4868 / RFC 2404). */
export function integIcv(alg: IntegAlg, key: Uint8Array, ...parts: readonly Uint8Array[]): Uint8Array {
  const h = createHmac(alg.hash, buf(key));
  for (const p of parts) h.update(buf(p));
  return new Uint8Array(h.digest().subarray(0, alg.icvLength));
}

/** Constant-time comparison of an expected and a received ICV. */
export function icvEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(buf(a), buf(b));
}
