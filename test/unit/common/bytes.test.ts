import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Reader, Writer, concatBytes, fromHex, toHex } from '../../../src/common/bytes.js';
import { ParseError } from '../../../src/common/errors.js';
import { parseDurationMs } from '../../../src/common/duration.js';
import { SecretBytes } from '../../../src/common/secret.js';
import { inspect } from 'node:util';

test('Reader refuses to read past its end with ParseError, never RangeError', () => {
  const r = new Reader(new Uint8Array([1, 2, 3]));
  assert.equal(r.u16(), 0x0102);
  assert.throws(() => r.u16('length'), (e: unknown) => e instanceof ParseError && e.code === 'ERR_TRUNCATED' && /length: need 2 bytes, have 1/.test(e.message));
});

test('sub-reader is bounded to its slice', () => {
  const r = new Reader(new Uint8Array([0, 0, 0, 5, 9, 9]));
  r.u16();
  const s = r.sub(2);
  assert.equal(s.u16(), 5);
  assert.throws(() => s.u8(), ParseError);
  assert.equal(r.remaining, 2);
});

test('Writer and Reader round-trip every integer width in both byte orders (property)', () => {
  fc.assert(fc.property(fc.integer({ min: 0, max: 0xff }), fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 0, max: 0xffffffff }), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), (a, b, c, d) => {
    const w = new Writer(1).u8(a).u16(b).u32(c).u64(d).u16le(b).u32le(c).u64le(d);
    const r = new Reader(w.finish());
    assert.deepEqual([r.u8(), r.u16(), r.u32(), r.u64(), r.u16le(), r.u32le(), r.u64le()], [a, b, c, d, b, c, d]);
    assert.ok(r.done);
  }));
});

test('hex helpers and concat', () => {
  assert.equal(toHex(concatBytes(fromHex('de ad'), fromHex('BEEF'))), 'deadbeef');
  assert.throws(() => fromHex('abc'), RangeError);
});

test('durations parse as Kubernetes/strongSwan users write them and bad ones name the field', () => {
  assert.equal(parseDurationMs('20s', 'x'), 20_000);
  assert.equal(parseDurationMs('1h30m', 'x'), 5_400_000);
  assert.equal(parseDurationMs('500ms', 'x'), 500);
  assert.throws(() => parseDurationMs('4 hours', 'spec.ike.rekeyTime'), /spec\.ike\.rekeyTime: invalid duration "4 hours"/);
});

test('SecretBytes never prints its bytes', () => {
  const s = new SecretBytes(new Uint8Array([0x41, 0x42]));
  assert.equal(JSON.stringify({ s }), '{"s":"[redacted]"}');
  assert.equal(`${s}`, '[redacted]');
  assert.ok(!inspect({ s }).includes('65'));
});
