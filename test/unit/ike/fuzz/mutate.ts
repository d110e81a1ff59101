// Datagram mutations for the IKE state-machine fuzz (state-fuzz.ts): each keeps most of a real
// message so it gets past the codec into the engine's header, SPI, window, integrity and
// reassembly checks. Offsets are the RFC 7296 §3.1 header: SPIi 0..7, SPIr 8..15, Next Payload 16,
// Version 17, Exchange Type 18, Flags 19, Message ID 20..23, Length 24..27; an SKF payload
// (RFC 7383 §2.5) carries Fragment Number at 32..33 and Total Fragments at 34..35.
import { SeededRandom } from '../../../../src/common/time.js';

/** SeededRandom with the picks the generator needs; same seed, same sequence. */
export class Rng {
  readonly #r: SeededRandom;
  constructor(seed: number) { this.#r = new SeededRandom(seed); }
  /** 0..n-1 (0 when n <= 0). */
  int(n: number): number {
    if (n <= 1) return 0;
    const b = this.#r.bytes(4);
    return (((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0) % n;
  }
  chance(p: number): boolean { return this.int(1_000_000) < p * 1_000_000; }
  pick<T>(xs: readonly T[]): T {
    if (xs.length === 0) throw new Error('pick from an empty list');
    return xs[this.int(xs.length)]!;
  }
  /** A key of `weights`, chosen with probability proportional to its weight. */
  weighted<K extends string>(weights: Readonly<Record<K, number>>): K {
    const entries = Object.entries(weights) as [K, number][];
    let x = this.int(entries.reduce((a, [, w]) => a + w, 0));
    for (const [k, w] of entries) { if (x < w) return k; x -= w; }
    return entries[0]![0];
  }
  bytes(n: number): Uint8Array { return this.#r.bytes(n); }
  /** A 32-bit seed for a sub-generator. */
  seed(): number { return this.int(0x7fffffff) + 1; }
}

/** Mutations and their weights: body edits most, so many inputs reach decryption and reassembly. */
export const MUTATIONS = {
  'bit-flip': 5, truncate: 2, extend: 2, 'spi-i': 1, 'spi-r': 1, 'message-id': 1, flags: 1, 'exchange-type': 1,
  'next-payload': 1, version: 1, length: 1, 'splice-body': 1, 'splice-tail': 2, 'fragment-fields': 2, overwrite: 3,
} as const;
export type Mutation = keyof typeof MUTATIONS;

/** Payload types worth putting in Next Payload (RFC 7296 §3.2, RFC 7383 SKF 53) plus junk. */
const PAYLOAD_TYPES = [0, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 53, 1, 255] as const;
/** IKE_SA_INIT, IKE_AUTH, CREATE_CHILD_SA, INFORMATIONAL, IKE_INTERMEDIATE, junk. */
const EXCHANGES = [34, 35, 36, 37, 43, 0, 33, 255] as const;

function setU32(b: Uint8Array, at: number, v: number): void { if (b.length >= at + 4) new DataView(b.buffer, b.byteOffset, b.byteLength).setUint32(at, v >>> 0); }
function getU32(b: Uint8Array, at: number): number { return b.length >= at + 4 ? new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(at) : 0; }
function fixLength(b: Uint8Array): void { setU32(b, 24, b.length); }

function concat(a: Uint8Array, c: Uint8Array): Uint8Array { const o = new Uint8Array(a.length + c.length); o.set(a); o.set(c, a.length); return o; }

/** One mutation of a copy of `d`; `donor` is another real datagram for the splices and SPI swaps. */
export function mutateOnce(r: Rng, kind: Mutation, d: Uint8Array, donor: Uint8Array): Uint8Array {
  const out = new Uint8Array(d);
  const anywhere = (): number => r.int(Math.max(1, out.length));
  switch (kind) {
    case 'bit-flip': {
      // Some in the header, where the engine branches; most anywhere (payloads, ICV).
      const at = r.chance(0.3) ? r.int(Math.min(28, out.length)) : anywhere();
      if (at < out.length) out[at] = out[at]! ^ (1 << r.int(8));
      return out;
    }
    case 'truncate': return out.subarray(0, r.chance(0.3) ? r.int(Math.min(40, out.length)) : anywhere());
    case 'extend': {
      const o = concat(out, r.bytes(1 + r.int(r.chance(0.1) ? 2_000 : 64)));
      if (r.chance(0.5)) fixLength(o);
      return o;
    }
    case 'spi-i': case 'spi-r': {
      const at = kind === 'spi-i' ? 0 : 8;
      const v = r.int(3);
      if (out.length < at + 8) return out;
      if (v === 0) out.set(r.bytes(8), at);
      else if (v === 1) out.fill(0, at, at + 8);
      else if (donor.length >= at + 8) out.set(donor.subarray(at, at + 8), at);
      return out;
    }
    case 'message-id': {
      const id = getU32(out, 20);
      setU32(out, 20, r.pick([0, 1, 2, id + 1, id - 1, id + 2, 0xffffffff, 0x80000000, getU32(donor, 20), r.int(0xffffffff)]));
      return out;
    }
    case 'flags': if (out.length > 19) out[19] = r.chance(0.5) ? out[19]! ^ r.pick([0x08, 0x10, 0x20, 0x28]) : r.int(256); return out;
    case 'exchange-type': if (out.length > 18) out[18] = r.pick(EXCHANGES); return out;
    case 'next-payload': if (out.length > 16) out[16] = r.pick(PAYLOAD_TYPES); return out;
    case 'version': if (out.length > 17) out[17] = r.pick([0x10, 0x20, 0x21, 0x30, 0x00, 0x2f]); return out;
    case 'length': setU32(out, 24, r.pick([0, 28, out.length - 1, out.length + 1, out.length + 100, 0xffffffff, r.int(20_000)])); return out;
    case 'splice-body': {
      // Our header on the donor's payloads (their keys, our SPIs and message ID), or the reverse.
      if (out.length < 28 || donor.length < 28) return out;
      const o = r.chance(0.5) ? concat(out.subarray(0, 28), donor.subarray(28)) : concat(donor.subarray(0, 28), out.subarray(28));
      fixLength(o);
      return o;
    }
    case 'splice-tail': {
      // Cut both at random points and join: a payload chain that starts right and ends wrong.
      const cut = 28 + r.int(Math.max(1, out.length - 28));
      const from = Math.min(donor.length, 28 + r.int(Math.max(1, donor.length - 28)));
      const o = concat(out.subarray(0, cut), donor.subarray(from));
      if (r.chance(0.7)) fixLength(o);
      return o;
    }
    case 'fragment-fields': {
      if (out.length < 36) return out;
      const v = new DataView(out.buffer, out.byteOffset, out.byteLength);
      const total = v.getUint16(34);
      if (r.chance(0.5)) v.setUint16(32, r.pick([0, 1, 2, total, total + 1, 64, 65, 0xffff]));
      else v.setUint16(34, r.pick([0, 1, 2, total - 1, total + 1, 64, 65, 0xffff]));
      return out;
    }
    case 'overwrite': {
      const at = anywhere(); const n = Math.min(out.length - at, 1 + r.int(16));
      if (n > 0) out.set(r.bytes(n), at);
      return out;
    }
  }
}

/** One to three mutations; returns the bytes and the first mutation's name (for the trace). */
export function mutate(r: Rng, d: Uint8Array, donor: Uint8Array): { readonly bytes: Uint8Array; readonly kind: Mutation } {
  const kind = r.weighted(MUTATIONS);
  let b = mutateOnce(r, kind, d, donor);
  for (let extra = r.chance(0.25) ? 1 + r.int(2) : 0; extra > 0; extra--) b = mutateOnce(r, r.weighted(MUTATIONS), b, donor);
  return { bytes: b, kind };
}
