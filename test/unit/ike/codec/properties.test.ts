// Property tests (fast-check): every payload and every message survives decode(encode(x)) = x, and
// no input — random bytes, or valid messages with bit flips, truncations, insertions and length
// field edits — makes the decoder throw anything but ParseError (DESIGN.md §8, §9).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  certReqHashes, checkInnerPayloads, checkOuterPayloads, cookieData, decodeMessage, decodePayloadChain, encodeMessage,
  encodePayloadChain, invalidKeGroup, natDetectionHash, rekeySa, setWindowSize, signatureHashAlgorithms, splitSignatureAuth,
  type IkePayload,
} from '../../../../src/ike/codec/index.js';
import { envelope, header, innerPayload, message } from './arbitraries.js';
import { hex, loadGolden, onlyParseError } from './helpers.js';

const RUNS = Number(process.env.KIPSEC_FC_RUNS ?? 300);

function roundTripChain(payloads: IkePayload[]): void {
  const { firstType, bytes } = encodePayloadChain(payloads);
  assert.deepEqual(decodePayloadChain(bytes, firstType), payloads);
  const again = encodePayloadChain(decodePayloadChain(bytes, firstType));
  assert.deepEqual(again.bytes, bytes);
}

describe('round trip: decode(encode(x)) = x', () => {
  const kinds = ['sa', 'ke', 'idi', 'idr', 'cert', 'certreq', 'auth', 'nonce', 'notify', 'delete', 'vendor', 'tsi', 'tsr', 'cp', 'eap', 'unknown'] as const;
  for (const kind of kinds) {
    it(`${kind} payload round-trips, RFC 7296 §3`, () => {
      fc.assert(fc.property(innerPayload.filter((p) => p.kind === kind), (p) => roundTripChain([p])), { numRuns: Math.ceil(RUNS / 3) });
    });
  }

  it('SK and SKF envelopes round-trip as the last outer payload, RFC 7296 §3.14 / RFC 7383 §2.5', () => {
    fc.assert(fc.property(header, envelope, (h, env) => {
      const m = decodeMessage(encodeMessage(h, [env]));
      assert.deepEqual(m.payloads, [env]);
      assert.deepEqual(m.header, h);
    }), { numRuns: RUNS });
  });

  it('inner payload chains of any mix round-trip', () => {
    fc.assert(fc.property(fc.array(innerPayload, { maxLength: 10 }), (ps) => roundTripChain(ps)), { numRuns: RUNS });
  });

  it('whole messages round-trip and re-encode byte-identically, RFC 7296 §3.1', () => {
    fc.assert(fc.property(message, ({ header: h, payloads }) => {
      const wire = encodeMessage(h, payloads);
      const m = decodeMessage(wire);
      assert.deepEqual(m.header, h);
      assert.deepEqual(m.payloads, payloads);
      assert.deepEqual(encodeMessage(m.header, m.payloads), wire);
    }), { numRuns: RUNS });
  });
});

/** Decode, then everything the exchanges layer would run before a handler. */
function fullDecode(b: Uint8Array): void {
  const m = decodeMessage(b);
  try { checkOuterPayloads(m.header.exchangeType, m.header.response, m.payloads); } catch (e) { onlyParseError(() => { throw e; }); }
  const env = m.encrypted();
  if (env !== undefined) {
    // Treat the body as if it were plaintext: the inner decoder must be just as robust.
    onlyParseError(() => checkInnerPayloads(m.header.exchangeType, m.header.response, decodePayloadChain(env.body, env.innerNext)));
  }
}

const golden = loadGolden().flatMap((g) => g.datagrams.map((d) => hex(d.hex)));

const seeds: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc.constantFrom(...golden),
  message.map(({ header: h, payloads }) => encodeMessage(h, payloads)),
);

/** A valid message with one random edit. */
const mutated: fc.Arbitrary<Uint8Array> = fc.tuple(seeds, fc.nat(), fc.nat(), fc.integer({ min: 0, max: 5 }), u8Array()).map(([b, i, v, how, ins]) => {
  const out = new Uint8Array(b);
  if (b.length === 0) return out;
  const at = i % b.length;
  switch (how) {
    case 0: out[at] = out[at]! ^ (1 << (v % 8)); return out; // bit flip
    case 1: return out.subarray(0, at); // truncation
    case 2: { // a 16-bit length field edit anywhere (payload and substructure lengths are 16-bit)
      const dv = new DataView(out.buffer);
      if (at + 2 <= out.length) dv.setUint16(at, v & 0xffff);
      return out;
    }
    case 3: { // IKE header length edit, then truncate or extend to match (so the chain walk runs)
      const len = 28 + (v % (b.length + 64));
      const grown = new Uint8Array(len); grown.set(b.subarray(0, Math.min(len, b.length)));
      new DataView(grown.buffer).setUint32(24, len);
      return grown;
    }
    case 4: { // insertion of random bytes
      const grown = new Uint8Array(b.length + ins.length);
      grown.set(b.subarray(0, at)); grown.set(ins, at); grown.set(b.subarray(at), at + ins.length);
      return grown;
    }
    default: out[at] = v & 0xff; return out; // byte overwrite
  }
});

function u8Array(): fc.Arbitrary<Uint8Array> { return fc.uint8Array({ maxLength: 12 }); }

describe('robustness: only ParseError escapes', () => {
  it('arbitrary bytes only ever yield ParseError', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 600 }), (b) => onlyParseError(() => fullDecode(b))), { numRuns: RUNS * 5 });
  });

  it('arbitrary bytes behind a valid header only ever yield ParseError', () => {
    fc.assert(fc.property(header, fc.integer({ min: 0, max: 255 }), fc.uint8Array({ maxLength: 600 }), (h, next, body) => {
      const head = encodeMessage(h, []);
      const b = new Uint8Array(28 + body.length);
      b.set(head); b.set(body, 28); b[16] = next;
      new DataView(b.buffer).setUint32(24, b.length);
      onlyParseError(() => fullDecode(b));
    }), { numRuns: RUNS * 5 });
  });

  it('mutated valid and golden messages only ever yield ParseError', () => {
    fc.assert(fc.property(mutated, (b) => onlyParseError(() => fullDecode(b))), { numRuns: RUNS * 10 });
  });

  it('typed readers (notify data, CERTREQ hashes, RFC 7427 AUTH) on arbitrary payloads only ever yield ParseError', () => {
    const readers = [natDetectionHash, cookieData, invalidKeGroup, signatureHashAlgorithms, rekeySa, setWindowSize];
    fc.assert(fc.property(innerPayload, fc.integer({ min: 0, max: 0xffff }), (p, type) => {
      if (p.kind === 'notify') for (const read of readers) onlyParseError(() => read({ ...p, type: [16388, 16389, 16390, 17, 16431, 16393, 16385][type % 7]! }));
      if (p.kind === 'certreq') onlyParseError(() => certReqHashes({ ...p, encoding: 4 }));
      if (p.kind === 'auth') onlyParseError(() => splitSignatureAuth({ ...p, method: 14 }));
    }), { numRuns: RUNS * 3 });
  });

  it('arbitrary inner chains only ever yield ParseError', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 60 }), fc.uint8Array({ maxLength: 400 }), (first, b) => {
      onlyParseError(() => decodePayloadChain(b, first));
    }), { numRuns: RUNS * 5 });
  });
});
