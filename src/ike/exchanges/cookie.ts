// RFC 7296 §2.6 stateless cookies: Cookie = <VersionIDofSecret> | Hash(Ni | IPi | SPIi | <secret>).
// The responder keeps no state for a request it answers with a COOKIE; the secret is rotated by
// version so cookies issued just before a rotation still verify (one previous version is kept).
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Random } from '../../common/time.js';
import { ipToBytes } from '../sa/addr.js';

export class CookieJar {
  #version = 0;
  #secret: Uint8Array;
  #previous: Uint8Array | null = null;
  readonly #random: Random;

  constructor(random: Random) { this.#random = random; this.#secret = random.bytes(32); }

  /** Start a new secret version (the agent may call this periodically, strongSwan: every 120 s). */
  rotate(): void { this.#previous = this.#secret; this.#secret = this.#random.bytes(32); this.#version = (this.#version + 1) & 0xff; }

  make(ni: Uint8Array, initiatorAddress: string, spiI: bigint): Uint8Array {
    return this.#compute(this.#version, this.#secret, ni, initiatorAddress, spiI);
  }

  verify(cookie: Uint8Array, ni: Uint8Array, initiatorAddress: string, spiI: bigint): boolean {
    const v = cookie[0];
    const secret = v === this.#version ? this.#secret : v === ((this.#version - 1) & 0xff) ? this.#previous : null;
    if (secret === null || v === undefined) return false;
    const want = this.#compute(v, secret, ni, initiatorAddress, spiI);
    return want.length === cookie.length && timingSafeEqual(want, cookie);
  }

  #compute(version: number, secret: Uint8Array, ni: Uint8Array, address: string, spiI: bigint): Uint8Array {
    const spi = Buffer.alloc(8); spi.writeBigUInt64BE(spiI);
    const h = createHash('sha256').update(ni).update(ipToBytes(address)).update(spi).update(secret).digest();
    const out = new Uint8Array(1 + h.length); out[0] = version; out.set(h, 1);
    return out;
  }
}
