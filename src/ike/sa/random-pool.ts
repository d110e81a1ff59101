// A pool over the Random port: one CSPRNG call per 4 KiB instead of one per nonce/SPI/key (a
// handshake needs a dozen small draws, and node's randomBytes has a fixed per-call cost that
// showed up at ~6 % of a PSK handshake). Consumed bytes are zeroed in the pool at once, so
// future key material is the only thing that lingers, as in any CSPRNG's buffer.
import type { Random } from '../../common/time.js';

export function pooledRandom(source: Random, poolBytes = 4_096): Random {
  let pool: Uint8Array = new Uint8Array(0);
  let at = 0;
  return {
    bytes(n: number): Uint8Array {
      if (n > poolBytes / 4) return source.bytes(n);
      if (at + n > pool.length) { pool.fill(0); pool = source.bytes(poolBytes); at = 0; }
      const out = pool.slice(at, at + n);
      pool.fill(0, at, at + n);
      at += n;
      return out;
    },
  };
}
