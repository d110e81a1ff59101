// Input generator and oracle for the ESP input-path fuzz (fuzz.test.ts, scripts/fuzz-esp.ts).
// Every generated datagram comes with the one counter the engine must charge it to, predicted by
// walking RFC 3948 §2.2 (keepalive, IKE marker) and RFC 4303 §3.4 (SPI, length and alignment,
// anti-replay with ESN inference, ICV, pad, next header, inner packet, selectors) in the engine's
// order over reference.ts's window. Why an oracle rather than "no crash": a drop counted under the
// wrong reason hides a bug (a forged packet charged to replay, a valid one to auth), and only an
// exact per-reason prediction catches that. Deterministic for a seed (keys, IVs and choices all
// come from the seed's generator).
import type { EspAlgorithm, EspDropReason } from '../../../src/esp/codec.js';
import { RefReplayWindow, ipv4Udp, ipv6Udp, layout, sealEsp, type RefSa } from './reference.js';

/** Where an input must end up: an engine-wide counter, a per-SA drop reason, or delivered. */
export type Outcome = 'keepalive' | 'ike' | 'runt' | 'unknownSpi' | 'delivered' | EspDropReason;

export interface FuzzInput {
  readonly kind: InputKind;
  readonly data: Buffer;
  readonly outcome: Outcome;
  /** The SA charged, for per-SA outcomes. */
  readonly spi: number | null;
  /** For 'delivered': the inner packet that must come out. */
  readonly inner?: Buffer;
}

/** What the engine must not look past: the largest ciphertext it decrypts (esp.h ESP_MAX_CIPHERTEXT). */
export const MAX_CIPHERTEXT = 2048 + 255 + 2;
/** The 64-bit number each authentic packet was sealed for (the wire has only the low 32 bits). */
const SEALED = new WeakMap<Buffer, bigint>();
const INNER = new WeakMap<Buffer, Buffer>();
const WINDOW = 1024;

/** mulberry32: small, fast and seedable; not for keys outside tests. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface FuzzSa {
  readonly ref: RefSa;
  readonly window: RefReplayWindow;
  /** Next fresh sequence number to seal. */
  next: bigint;
  /** Recently sent authentic packets (replays come from here). */
  readonly sent: Buffer[];
}

const SUITES: ReadonlyArray<{ algorithm: EspAlgorithm; key: number; integrity: number; esn: boolean }> = [
  { algorithm: 'aes-gcm-16', key: 20, integrity: 0, esn: false },
  { algorithm: 'chacha20-poly1305', key: 36, integrity: 0, esn: true },
  { algorithm: 'aes-cbc-hmac-sha2-256-128', key: 16, integrity: 32, esn: true },
  { algorithm: 'aes-cbc-hmac-sha2-512-256', key: 32, integrity: 64, esn: false },
];
export const FUZZ_SPIS = [0x1001, 0x1002, 0x1003, 0x1004] as const;

const KINDS = [
  'valid', 'replay', 'outOfWindow', 'badPad', 'badNextHeader', 'dummy', 'malformedInner', 'outsideSelector', 'badIcv',
  'wrongSpi', 'truncated', 'oversized', 'random', 'mutated', 'keepalive', 'ike',
] as const;
export type InputKind = (typeof KINDS)[number];
/** Relative weights: a fifth valid so the window keeps moving; mutations and junk most of the rest. */
const WEIGHTS: Readonly<Record<InputKind, number>> = {
  valid: 20, replay: 8, outOfWindow: 4, badPad: 4, badNextHeader: 3, dummy: 2, malformedInner: 3, outsideSelector: 3, badIcv: 6,
  wrongSpi: 5, truncated: 8, oversized: 2, random: 10, mutated: 18, keepalive: 1, ike: 1,
};
const TOTAL_WEIGHT = Object.values(WEIGHTS).reduce((a, b) => a + b, 0);

export class EspFuzzModel {
  readonly sas: FuzzSa[];
  readonly #r: () => number;

  constructor(seed: number) {
    this.#r = prng(seed);
    this.sas = SUITES.map((s, i) => ({
      ref: { algorithm: s.algorithm, key: this.bytes(s.key), spi: FUZZ_SPIS[i]!, ...(s.integrity ? { integrityKey: this.bytes(s.integrity) } : {}), ...(s.esn ? { esn: true } : {}) },
      window: new RefReplayWindow(WINDOW, s.esn), next: 1n, sent: [],
    }));
  }

  int(n: number): number { return Math.floor(this.#r() * n); }
  bytes(n: number): Buffer { const b = Buffer.allocUnsafe(n); for (let i = 0; i < n; i++) b[i] = this.int(256); return b; }
  pick<T>(xs: readonly T[]): T { return xs[this.int(xs.length)]!; }

  /** One input and the outcome the engine must count it under; the model's windows move as the engine's will. */
  next(): FuzzInput {
    let w = this.int(TOTAL_WEIGHT);
    let kind: InputKind = 'valid';
    for (const k of KINDS) { if (w < WEIGHTS[k]) { kind = k; break; } w -= WEIGHTS[k]; }
    const sa = this.pick(this.sas);
    const data = this.build(kind, sa);
    return { kind, data: data.bytes, ...this.classify(data.bytes, data.content) };
  }

  /**
   * A fresh sequence number; ESN SAs now and then jump up to 2^31 so that runs cross 2^32 (the
   * receiver infers forward jumps below 2^32 - window correctly, Appendix A2.2).
   */
  #fresh(sa: FuzzSa): bigint {
    const seq = sa.next;
    sa.next += sa.ref.esn && this.int(200) === 0 ? BigInt(1 + this.int(2 ** 31)) : BigInt(1 + this.int(3));
    return seq;
  }

  /** An inner packet inside the SA's selectors (REMOTE → LOCAL as the harness installs them). */
  #inner(outside = false): Buffer {
    const len = this.int(this.int(8) === 0 ? 1400 : 120);
    if (this.int(4) === 0) {
      const src = Buffer.from(outside ? '20010db8000900000000000000000009' : '20010db8000200000000000000000009', 'hex');
      return ipv6Udp(src, Buffer.from('20010db8000100000000000000000005', 'hex'), this.bytes(len));
    }
    return ipv4Udp(outside ? `10.9.0.${1 + this.int(250)}` : `10.2.0.${1 + this.int(250)}`, `10.1.0.${1 + this.int(250)}`, this.bytes(len));
  }

  #seal(sa: FuzzSa, inner: Buffer, o: { seq?: bigint; pad?: Uint8Array; nextHeader?: number } = {}): Buffer {
    const { iv } = layout(sa.ref.algorithm);
    const seq = o.seq ?? this.#fresh(sa);
    const b = sealEsp(sa.ref, inner, {
      seq, ...(sa.ref.integrityKey ? { iv: this.bytes(iv) } : {}),
      ...(o.pad ? { pad: o.pad } : {}), ...(o.nextHeader !== undefined ? { nextHeader: o.nextHeader } : {}),
    });
    SEALED.set(b, seq);
    INNER.set(b, inner);
    return b;
  }

  /** Bytes of the input, and for authentic packets what their verified content leads to. */
  build(kind: InputKind, sa: FuzzSa): { bytes: Buffer; content?: Outcome } {
    const { block } = layout(sa.ref.algorithm);
    switch (kind) {
      case 'valid': return { bytes: this.#remember(sa, this.#seal(sa, this.#inner())), content: 'delivered' };
      case 'replay': {
        const old = sa.sent.length > 0 ? this.pick(sa.sent) : undefined;
        return old ? { bytes: old, content: 'delivered' } : { bytes: this.#seal(sa, this.#inner()), content: 'delivered' };
      }
      case 'outOfWindow': {
        const top = sa.window.top;
        const back = BigInt(WINDOW + this.int(5000));
        return { bytes: this.#seal(sa, this.#inner(), { seq: top > back ? top - back : 0n }), content: 'delivered' };
      }
      case 'badPad': {
        const inner = this.#inner();
        const n = (block - ((inner.length + 2) % block)) % block || block; // at least one pad byte to get wrong
        const pad = Uint8Array.from({ length: n }, (_, i) => i + 1);
        pad[this.int(n)]! ^= 1 + this.int(255);
        return { bytes: this.#seal(sa, inner, { pad }), content: 'pad' };
      }
      case 'badNextHeader': {
        let nh = this.int(256);
        while (nh === 4 || nh === 41 || nh === 59) nh = this.int(256);
        return { bytes: this.#seal(sa, this.#inner(), { nextHeader: nh }), content: 'nextHeader' };
      }
      case 'dummy': return { bytes: this.#seal(sa, this.#inner(), { nextHeader: 59 }), content: 'dummy' };
      case 'malformedInner': {
        // Not a whole IP packet of the next header's family: junk, or IPv4 labelled IPv6.
        const inner = this.int(2) === 0 ? Buffer.concat([Buffer.from([0x10 + this.int(0x30)]), this.bytes(this.int(60))]) : this.#inner();
        return { bytes: this.#seal(sa, inner, { nextHeader: inner[0]! >> 4 === 6 ? 4 : 41 }), content: 'malformed' };
      }
      case 'outsideSelector': return { bytes: this.#seal(sa, this.#inner(true)), content: 'selector' };
      case 'badIcv': { const b = this.#seal(sa, this.#inner()); b[b.length - 1 - this.int(8)]! ^= 1 << this.int(8); return { bytes: b }; }
      case 'wrongSpi': {
        const b = this.#seal(sa, this.#inner());
        let spi = this.int(0x1_0000_0000);
        while (spi === 0 || FUZZ_SPIS.includes(spi as 0x1001)) spi = this.int(0x1_0000_0000);
        b.writeUInt32BE(spi, 0);
        return { bytes: b };
      }
      case 'truncated': { const b = this.#seal(sa, this.#inner()); return { bytes: b.subarray(0, this.int(b.length)) }; }
      case 'oversized': {
        const len = MAX_CIPHERTEXT + 1 + this.int(this.int(10) === 0 ? 30000 : 3000);
        const b = Buffer.concat([this.#seal(sa, this.#inner()).subarray(0, 8), this.bytes(len)]);
        return { bytes: this.int(4) === 0 ? b : b.subarray(0, b.length - ((b.length - 8) % block)) };
      }
      case 'random': return { bytes: this.bytes(this.int(this.int(20) === 0 ? 4000 : 200)) };
      case 'mutated': return { bytes: this.#mutate(this.#seal(sa, this.#inner())) };
      case 'keepalive': return { bytes: Buffer.from([0xff]) };
      case 'ike': return { bytes: Buffer.concat([Buffer.alloc(4), this.bytes(this.int(600))]) };
    }
  }

  /** An authentic packet for seq (the model knows what it was sealed for). */
  seal(sa: FuzzSa, inner: Buffer, seq: bigint): Buffer { return this.#seal(sa, inner, { seq }); }

  #remember(sa: FuzzSa, b: Buffer): Buffer {
    if (sa.sent.length < 64) sa.sent.push(b); else sa.sent[this.int(64)] = b;
    return b;
  }

  /** 1–4 edits of a sealed packet, never the identity (so the packet is no longer authentic). */
  #mutate(orig: Buffer): Buffer {
    let b = Buffer.from(orig);
    for (let n = 1 + this.int(4); n > 0; n--) {
      const at = this.int(b.length + 1);
      switch (this.int(6)) {
        case 0: if (b.length) b[Math.min(at, b.length - 1)]! ^= 1 << this.int(8); break;
        case 1: if (b.length) b[Math.min(at, b.length - 1)] = this.int(256); break;
        case 2: b = Buffer.concat([b.subarray(0, at), this.bytes(1 + this.int(16)), b.subarray(at)]); break;
        case 3: b = Buffer.concat([b.subarray(0, at), b.subarray(Math.min(b.length, at + 1 + this.int(16)))]); break;
        case 4: b = Buffer.concat([b, b.subarray(this.int(b.length))]); break;
        default: b = b.subarray(0, at); break;
      }
    }
    return b.equals(orig) ? Buffer.concat([orig, Buffer.from([0])]) : b;
  }

  /**
   * The counter the engine must charge: RFC 3948 §2.2–2.3, then RFC 4303 §3.4 in esp_decap's order.
   * content: for an authentic packet, what its verified plaintext leads to; undefined = not authentic.
   */
  classify(d: Buffer, content?: Outcome): { outcome: Outcome; spi: number | null; inner?: Buffer } {
    if (d.length === 1 && d[0] === 0xff) return { outcome: 'keepalive', spi: null };
    if (d.length >= 4 && d[0] === 0 && d[1] === 0 && d[2] === 0 && d[3] === 0) return { outcome: 'ike', spi: null };
    if (d.length < 8) return { outcome: 'runt', spi: null };
    const spi = d.readUInt32BE(0);
    const sa = this.sas.find((s) => s.ref.spi === spi);
    if (!sa) return { outcome: 'unknownSpi', spi: null };
    const { iv, icv, block } = layout(sa.ref.algorithm);
    const head = 8 + iv;
    if (d.length < head + block + icv || (d.length - head - icv) % block !== 0) return { outcome: 'truncated', spi };
    if (d.length - head - icv > MAX_CIPHERTEXT) return { outcome: 'tooBig', spi };
    const seq = sa.window.infer(d.readUInt32BE(4));
    if (seq === undefined || !sa.window.fresh(seq)) return { outcome: 'replay', spi };
    // Authentic only if sealed with exactly this 64-bit number (ESN: the high bits are in the ICV).
    const sealedFor = content !== undefined && seq === SEALED.get(d);
    if (!sealedFor) return { outcome: 'auth', spi };
    sa.window.accept(seq); // verified: the window moves whatever the content (RFC 4303 §3.4.3)
    const inner = content === 'delivered' ? INNER.get(d) : undefined;
    return { outcome: content, spi, ...(inner ? { inner } : {}) };
  }
}
