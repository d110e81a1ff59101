// The Encrypted and Authenticated payload body (RFC 7296 §3.14), also used inside SKF (RFC 7383):
//
//   IV | E( inner payloads | padding | pad length ) | ICV
//
// CBC + HMAC: IV is random (unpredictable, §3.14), plaintext padded to the block size, and the
//   ICV is the truncated HMAC over everything from the IKE header to the end of the ciphertext,
//   i.e. aad | IV | ciphertext.
// AEAD (RFC 5282 AES-GCM-16, RFC 7634 ChaCha20-Poly1305): 8-octet explicit IV, nonce = salt | IV,
//   the AEAD tag is the ICV, additional data = IKE header + unencrypted payload header(s) (`aad`).
//   No padding is needed; the pad length octet is still present (RFC 5282 §3, RFC 7634 §3).
//
// `aad` is the message from its first octet up to the end of the SK (or SKF) payload header, with
// the final Length fields already written: call encryptedLength() first to size them.
import { SecretBytes } from '../../common/secret.js';
import { cryptoRandom, type Random } from '../../common/time.js';
import type { EncrAlg, IntegAlg } from './algorithms.js';
import { aeadOpen, aeadSeal, cbcDecrypt, cbcEncrypt, icvEqual, integIcv } from './ciphers.js';
import { IntegrityError, SkMalformedError } from './errors.js';
import { resolveSuite, type IkeSaKeys, type IkeSuite } from './keys.js';

/** One direction of SK protection (outbound encrypts with SK_e/SK_a of the sender's role). */
export interface SkCipher {
  readonly encr: EncrAlg;
  readonly integ: IntegAlg | null;
  /** IV + ICV octets around the ciphertext. */
  readonly overhead: number;
  /** SK body length for `innerLength` octets of inner payloads (with minimal padding). */
  encryptedLength(innerLength: number): number;
  /** IV | ciphertext | ICV for the inner payloads. `opts.iv` fixes the IV (tests only). */
  encrypt(inner: Uint8Array, aad: Uint8Array, opts?: { readonly iv?: Uint8Array }): Uint8Array;
  /** The inner payloads, or IntegrityError (drop silently) / SkMalformedError. */
  decrypt(body: Uint8Array, aad: Uint8Array): Uint8Array;
}

export interface SkCipherParams {
  readonly suite: IkeSuite;
  /** SK_ei or SK_er (key | salt for AEAD). */
  readonly encKey: SecretBytes;
  /** SK_ai or SK_ar; empty for AEAD. */
  readonly integKey: SecretBytes;
  /** IV source (CBC IVs, the AEAD counter's start); defaults to node's CSPRNG. */
  readonly random?: Random;
}

export function createSkCipher(p: SkCipherParams): SkCipher {
  return new SkDirection(p);
}

/**
 * A class, not an object of closures: the methods live on the prototype, so an IKE SA's two
 * directions hold their fields only (the closures and their context were ~1.1 KB per IKE SA).
 */
class SkDirection implements SkCipher {
  readonly encr: EncrAlg;
  readonly integ: IntegAlg | null;
  readonly overhead: number;
  readonly #icvLength: number;
  readonly #encKey: Uint8Array;
  readonly #integKey: Uint8Array;
  readonly #random: Random;
  #counter: bigint;

  constructor(p: SkCipherParams) {
    const { encr, integ } = resolveSuite(p.suite);
    this.encr = encr;
    this.integ = integ;
    this.#random = p.random ?? cryptoRandom;
    this.#icvLength = encr.aead ? encr.icvLength : integ!.icvLength;
    this.overhead = encr.ivLength + this.#icvLength;
    this.#encKey = p.encKey.expose();
    this.#integKey = p.integKey.expose();
    if (this.#encKey.length !== encr.keyLength + encr.saltLength)
      throw new SkMalformedError(`${encr.name} needs ${encr.keyLength + encr.saltLength} key octets, got ${this.#encKey.length}`);
    // AEAD IVs must never repeat under one key (RFC 5282 §3.1): a 64-bit counter per direction,
    // starting at a random point so that two SkCipher objects built from the same keys by mistake
    // still do not collide in practice.
    this.#counter = new DataView(this.#random.bytes(8).buffer).getBigUint64(0) & 0x7fffffffffffffffn;
  }

  #paddedLength(innerLength: number): number {
    const withPadLen = innerLength + 1;
    return Math.ceil(withPadLen / this.encr.blockSize) * this.encr.blockSize;
  }

  encryptedLength(n: number): number { return this.encr.ivLength + this.#paddedLength(n) + this.#icvLength; }

  encrypt(inner: Uint8Array, aad: Uint8Array, opts?: { readonly iv?: Uint8Array }): Uint8Array {
    const encr = this.encr;
    const total = this.#paddedLength(inner.length);
    const plain = new Uint8Array(total);
    plain.set(inner);
    plain[total - 1] = total - inner.length - 1; // pad length; padding octets stay zero
    let iv: Uint8Array;
    if (opts?.iv) iv = opts.iv;
    else if (encr.aead) {
      this.#counter = (this.#counter + 1n) & 0xffffffffffffffffn;
      iv = new Uint8Array(8);
      new DataView(iv.buffer).setBigUint64(0, this.#counter);
    } else iv = this.#random.bytes(encr.ivLength);
    if (iv.length !== encr.ivLength) throw new SkMalformedError(`IV is ${iv.length} octets, want ${encr.ivLength}`);
    const out = new Uint8Array(encr.ivLength + total + this.#icvLength);
    out.set(iv);
    if (encr.aead) {
      out.set(aeadSeal(encr, this.#encKey, iv, aad, plain), encr.ivLength);
    } else {
      const ct = cbcEncrypt(encr, this.#encKey, iv, plain);
      out.set(ct, encr.ivLength);
      out.set(integIcv(this.integ!, this.#integKey, aad, out.subarray(0, encr.ivLength + total)), encr.ivLength + total);
    }
    plain.fill(0);
    return out;
  }

  decrypt(body: Uint8Array, aad: Uint8Array): Uint8Array {
    const encr = this.encr;
    const icvLength = this.#icvLength;
    const minCipher = encr.aead ? 1 : encr.blockSize;
    if (body.length < encr.ivLength + minCipher + icvLength)
      throw new SkMalformedError(`SK payload body is ${body.length} octets, need at least ${encr.ivLength + minCipher + icvLength}`);
    const iv = body.subarray(0, encr.ivLength);
    let plain: Uint8Array;
    if (encr.aead) {
      plain = aeadOpen(encr, this.#encKey, iv, aad, body.subarray(encr.ivLength));
    } else {
      const ctEnd = body.length - icvLength;
      const expected = integIcv(this.integ!, this.#integKey, aad, body.subarray(0, ctEnd));
      // Integrity first (encrypt-then-MAC): nothing is decrypted before the ICV verifies.
      if (!icvEqual(expected, body.subarray(ctEnd))) throw new IntegrityError();
      plain = cbcDecrypt(encr, this.#encKey, iv, body.subarray(encr.ivLength, ctEnd));
    }
    const padLength = plain[plain.length - 1]!;
    if (padLength > plain.length - 1) {
      plain.fill(0);
      throw new SkMalformedError(`pad length ${padLength} exceeds the ${plain.length - 1} decrypted octets`);
    }
    return plain.slice(0, plain.length - 1 - padLength);
  }
}

/** Both directions for an IKE SA, from our role: outbound uses our keys, inbound the peer's. */
export function createSkPair(suite: IkeSuite, keys: IkeSaKeys, role: 'initiator' | 'responder', random?: Random): { outbound: SkCipher; inbound: SkCipher } {
  const i = { encKey: keys.skEi, integKey: keys.skAi };
  const r = { encKey: keys.skEr, integKey: keys.skAr };
  const mine = role === 'initiator' ? i : r;
  const theirs = role === 'initiator' ? r : i;
  const base = random ? { suite, random } : { suite };
  return { outbound: createSkCipher({ ...base, ...mine }), inbound: createSkCipher({ ...base, ...theirs }) };
}
