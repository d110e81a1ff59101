// IKEv2 codec fuzz core (DESIGN.md §9: network input never throws anything but ParseError out of the
// decoders): push N inputs through the decoders and check that nothing but ParseError escapes,
// that everything that decodes re-encodes to bytes that decode to the same thing, and that memory
// stays bounded. Used by scripts/fuzz-ike-codec.ts (long runs) and codec.test.ts (bounded, in CI).
//
// Inputs, from a seeded PRNG so a failure can be replayed with its seed:
//   random bytes; random bytes behind a valid header; strongSwan golden datagrams
//   (test/golden/ike) and fast-check-generated valid messages with 1-4 mutations each (bit flips,
//   byte overwrites, truncations, insertions, 16-bit writes at payload length fields and anywhere,
//   header length fix-ups); and mutated inner payload chains (as if decrypted from SK).
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { equalBytes } from '../../../../src/common/bytes.js';
import { ParseError } from '../../../../src/common/errors.js';
import {
  checkInnerPayloads, checkOuterPayloads, decodeMessage, decodePayloadChain, encodeMessage, encodePayloadChain,
} from '../../../../src/ike/codec/index.js';
import { innerPayload, message } from '../codec/arbitraries.js';

export interface CodecFuzzOptions {
  readonly count: number;
  readonly seed: number;
  /** Stop early (timedOut) after this long. */
  readonly timeLimitMs?: number;
}

export interface CodecFuzzReport {
  readonly seed: number;
  inputs: number;
  /** Messages that decoded (and re-encoded identically). */
  ok: number;
  parseErrors: number;
  innerOk: number;
  /** Escaping non-ParseErrors and re-encoding mismatches; must be 0. */
  failures: number;
  maxRssMb: number;
  seconds: number;
  timedOut: boolean;
  readonly codes: Map<string, number>;
  /** The first few failures, with the input in hex. */
  readonly failureSamples: string[];
}

const goldenDir = join(import.meta.dirname, '../../../golden/ike');
let golden: Uint8Array[] | undefined;
function goldenDatagrams(): Uint8Array[] {
  golden ??= readdirSync(goldenDir).filter((f) => f.endsWith('.json')).flatMap((f) =>
    (JSON.parse(readFileSync(join(goldenDir, f), 'utf8')) as { datagrams: Array<{ hex: string }> }).datagrams
      .map((d) => new Uint8Array(Buffer.from(d.hex, 'hex'))));
  return golden;
}

export function runCodecFuzz(o: CodecFuzzOptions): CodecFuzzReport {
  const seed = o.seed;
  // xorshift32: fast, seedable, good enough to pick mutations.
  let state = (seed >>> 0) || 1;
  const rnd = (): number => { state ^= state << 13; state >>>= 0; state ^= state >>> 17; state ^= state << 5; state >>>= 0; return state; };
  const below = (n: number): number => (n <= 0 ? 0 : rnd() % n);
  const randomBytes = (n: number): Uint8Array => { const b = new Uint8Array(n); for (let i = 0; i < n; i++) b[i] = rnd() & 0xff; return b; };

  const gold = goldenDatagrams();
  const generated: Uint8Array[] = fc.sample(message, { numRuns: 400, seed }).map((m) => encodeMessage(m.header, m.payloads));
  const innerChains: Array<{ first: number; bytes: Uint8Array }> = fc.sample(fc.array(innerPayload, { maxLength: 8 }), { numRuns: 400, seed })
    .map((ps) => { const e = encodePayloadChain(ps); return { first: e.firstType, bytes: e.bytes }; });

  /** Offsets of the generic payload headers of a (valid) chain starting at `at`, for length edits. */
  function payloadHeaders(b: Uint8Array, at: number): number[] {
    const out: number[] = [];
    while (at + 4 <= b.length && out.length < 64) {
      out.push(at);
      const len = (b[at + 2]! << 8) | b[at + 3]!;
      if (len < 4) break;
      at += len;
    }
    return out;
  }

  function mutate(src: Uint8Array, chainStart: number): Uint8Array {
    let b = new Uint8Array(src);
    const rounds = below(3) === 0 ? 1 + below(4) : 1; // mostly one edit, so most inputs get deep into the chain
    for (let k = 0; k < rounds && b.length > 0; k++) {
      const at = below(b.length);
      switch (below(8)) {
        case 0: b[at] = b[at]! ^ (1 << below(8)); break;
        case 1: b[at] = rnd() & 0xff; break;
        case 2: b = b.subarray(0, at); break;
        case 3: { const ins = randomBytes(1 + below(16)); const g = new Uint8Array(b.length + ins.length); g.set(b.subarray(0, at)); g.set(ins, at); g.set(b.subarray(at), at + ins.length); b = g; break; }
        case 4: { // edit a payload length field
          const hs = payloadHeaders(b, chainStart);
          const h = hs[below(hs.length)];
          if (h !== undefined && h + 4 <= b.length) { const v = below(3) === 0 ? rnd() & 0xffff : ((b[h + 2]! << 8) | b[h + 3]!) + below(9) - 4; b[h + 2] = (v >> 8) & 0xff; b[h + 3] = v & 0xff; }
          break;
        }
        case 5: if (at + 2 <= b.length) { const v = rnd() & 0xffff; b[at] = v >> 8; b[at + 1] = v & 0xff; } break;
        case 6: { const g = new Uint8Array(b.length - Math.min(b.length, below(8))); g.set(b.subarray(0, g.length)); b = g; break; }
        default: { const x = b.subarray(at, at + 1 + below(8)); b = new Uint8Array([...b.subarray(0, at), ...x, ...x, ...b.subarray(at + x.length)]); }
      }
    }
    // Half the time, make the IKE Length field agree so the payload walk is exercised.
    if (chainStart === 28 && b.length >= 28 && below(2) === 0) new DataView(b.buffer, b.byteOffset).setUint32(24, b.length);
    return b;
  }

  const r: CodecFuzzReport = { seed, inputs: 0, ok: 0, parseErrors: 0, innerOk: 0, failures: 0, maxRssMb: 0, seconds: 0, timedOut: false, codes: new Map(), failureSamples: [] };

  function fail(kind: string, input: Uint8Array, e?: unknown): void {
    r.failures++;
    if (r.failureSamples.length < 5) r.failureSamples.push(`${kind}: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e ?? '')} input=${Buffer.from(input).toString('hex').slice(0, 400)}`);
  }

  function guarded(input: Uint8Array, f: () => void): void {
    try { f(); r.ok++; } catch (e) {
      if (e instanceof ParseError) { r.parseErrors++; r.codes.set(e.code, (r.codes.get(e.code) ?? 0) + 1); } else fail('escaped', input, e);
    }
  }

  function runMessage(input: Uint8Array): void {
    guarded(input, () => {
      const m = decodeMessage(input);
      // Whatever decodes must re-encode to bytes that decode to the same thing, byte for byte.
      const again = encodeMessage(m.header, m.payloads);
      const m2 = decodeMessage(again);
      if (!equalBytes(encodeMessage(m2.header, m2.payloads), again)) fail('re-encode mismatch', input);
      try { checkOuterPayloads(m.header.exchangeType, m.header.response, m.payloads); } catch (e) { if (!(e instanceof ParseError)) fail('escaped from checkOuterPayloads', input, e); }
      const env = m.encrypted();
      if (env !== undefined) runInner(env.body, env.innerNext, m.header.exchangeType, m.header.response);
    });
  }

  function runInner(bytes: Uint8Array, first: number, exchangeType = 37, response = false): void {
    try {
      const ps = decodePayloadChain(bytes, first);
      r.innerOk++;
      if (!equalBytes(encodePayloadChain(decodePayloadChain(encodePayloadChain(ps).bytes, first)).bytes, encodePayloadChain(ps).bytes)) fail('inner re-encode mismatch', bytes);
      checkInnerPayloads(exchangeType, response, ps);
    } catch (e) { if (!(e instanceof ParseError)) fail('escaped from inner chain', bytes, e); }
  }

  const started = performance.now();
  const limit = o.timeLimitMs ?? Infinity;
  for (let i = 0; i < o.count; i++) {
    r.inputs++;
    const pick = below(100);
    if (pick < 8) runMessage(randomBytes(below(600)));
    else if (pick < 20) {
      const b = randomBytes(28 + below(600));
      b.set(gold[below(gold.length)]!.subarray(0, 16)); b[16] = 33 + below(21); b[17] = 0x20;
      new DataView(b.buffer).setUint32(24, b.length);
      runMessage(b);
    } else if (pick < 60) runMessage(mutate(gold[below(gold.length)]!, 28));
    else if (pick < 90) runMessage(mutate(generated[below(generated.length)]!, 28));
    else { const c = innerChains[below(innerChains.length)]!; runInner(mutate(c.bytes, 0), below(4) === 0 ? below(256) : c.first); }
    if ((i & 0x3fff) === 0) {
      r.maxRssMb = Math.max(r.maxRssMb, process.memoryUsage().rss / 2 ** 20);
      if (performance.now() - started > limit) { r.timedOut = true; break; }
    }
  }
  r.seconds = (performance.now() - started) / 1000;
  r.maxRssMb = Math.max(r.maxRssMb, process.memoryUsage().rss / 2 ** 20);
  return r;
}
