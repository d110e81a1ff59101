// RFC 7296 §2.6 stateless cookies: Cookie = <VersionIDofSecret> | Hash(Ni | IPi | SPIi | <secret>).
// The responder keeps no state for a request it answers with a COOKIE. The secret changes every
// COOKIE_SECRET_LIFETIME_MS (§2.6: "change the value of <secret> frequently"; strongSwan switches
// every 120 s), checked whenever a cookie is made or verified rather than by a timer, and one
// previous version is kept so a cookie issued just before a switch still verifies.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Clock, Random } from '../../common/time.js';
import { ipToBytes } from '../sa/addr.js';

/** strongSwan's SECRET_SWITCH: how long one COOKIE secret is used. */
export const COOKIE_SECRET_LIFETIME_MS = 120_000;

export class CookieJar {
  #version = 0;
  #secret: Uint8Array;
  #previous: Uint8Array | null = null;
  #since: number;
  readonly #random: Random;
  readonly #clock: Pick<Clock, 'now'> | null;

  /** Without a clock the secret changes only on rotate(). */
  constructor(random: Random, clock: Pick<Clock, 'now'> | null = null) {
    this.#random = random; this.#clock = clock; this.#secret = random.bytes(32); this.#since = clock?.now() ?? 0;
  }

  /** Start a new secret version. */
  rotate(): void { this.#previous = this.#secret; this.#secret = this.#random.bytes(32); this.#version = (this.#version + 1) & 0xff; }

  /** Switch secrets as time requires: once per lifetime passed, at most twice (then nothing old is left). */
  #age(): void {
    if (this.#clock === null) return;
    const now = this.#clock.now();
    for (let i = 0; i < 2 && now - this.#since >= COOKIE_SECRET_LIFETIME_MS; i++) { this.rotate(); this.#since += COOKIE_SECRET_LIFETIME_MS; }
    if (now - this.#since >= COOKIE_SECRET_LIFETIME_MS) this.#since = now;
  }

  make(ni: Uint8Array, initiatorAddress: string, spiI: bigint): Uint8Array {
    this.#age();
    return this.#compute(this.#version, this.#secret, ni, initiatorAddress, spiI);
  }

  verify(cookie: Uint8Array, ni: Uint8Array, initiatorAddress: string, spiI: bigint): boolean {
    this.#age();
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
