// Test helpers: hex, golden file loading, and the "only ParseError" assertion used by the
// robustness properties.
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ParseError } from '../../../../src/common/errors.js';
import type { IkePayload, PayloadKind, PayloadOf } from '../../../../src/ike/codec/index.js';

export const hex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
export const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

export interface GoldenDatagram {
  index: number; from: string; to: string; direction: 'i->r' | 'r->i'; nonEspMarker: boolean;
  exchange: string; response: boolean; messageId: number; initiatorSpi: string; responderSpi: string; hex: string;
}
export interface GoldenIkeSa {
  uniqueId: number; initiatorSpi: string; responderSpi: string; initiatorAddress: string; proposal: string;
  keys: Record<string, string>;
}
export interface GoldenCapture {
  source: string; scenario: string; negotiated: { ike: string; esp: string };
  config: { ikeProposals: string; espProposals: string; fragmentSize: number };
  ikeSas: GoldenIkeSa[]; datagrams: GoldenDatagram[];
}

export const GOLDEN_DIR = join(import.meta.dirname, '../../../golden/ike');

export function loadGolden(): GoldenCapture[] {
  return readdirSync(GOLDEN_DIR).filter((f) => f.endsWith('.json')).sort()
    .map((f) => JSON.parse(readFileSync(join(GOLDEN_DIR, f), 'utf8')) as GoldenCapture);
}

/** Run f; it may return or throw a ParseError, nothing else. */
export function onlyParseError(f: () => unknown): void {
  try { f(); } catch (e) {
    if (!(e instanceof ParseError)) assert.fail(`escaped ${e instanceof Error ? `${e.name}: ${e.message}\n${e.stack}` : String(e)}`);
  }
}

/** One payload with a generic header (Next Payload 0, not critical) around `body`. */
export function wrap(body: Uint8Array, next = 0, flags = 0): Uint8Array {
  const out = new Uint8Array(4 + body.length);
  out[0] = next; out[1] = flags;
  new DataView(out.buffer).setUint16(2, out.length);
  out.set(body, 4);
  return out;
}

/** Assert f throws a ParseError with this code (and return it for more checks). */
export function throwsCode(f: () => unknown, code: string): ParseError {
  try { f(); } catch (e) {
    if (e instanceof ParseError && e.code === code) return e;
    assert.fail(`want ParseError ${code}, got ${e instanceof Error ? `${e.name} ${(e as { code?: string }).code}: ${e.message}` : String(e)}`);
  }
  assert.fail(`want ParseError ${code}, nothing thrown`);
}

/** Narrow a decoded payload to the kind the test expects (and fail if it is another). */
export function asKind<K extends PayloadKind>(kind: K, p: IkePayload | undefined): PayloadOf<K> {
  assert.equal(p?.kind, kind);
  return p as PayloadOf<K>;
}
