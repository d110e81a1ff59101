// src/agent/kernel-spi-table.ts: SA records by (address, SPI) with the SPI as the Map key. Two
// records with one SPI (another address, or the other direction) must both be found, each by its
// own address, and taking one out must leave the other; SPIs past 2^31 are the same key as their
// int32 form (XFRM's are unsigned, the engine's sometimes signed).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SpiTable } from '../../../src/agent/kernel-spi-table.js';

interface Rec { readonly at: string; readonly tag: string }
const table = (): SpiTable<Rec> => new SpiTable<Rec>((r) => r.at);

test('SpiTable: records sharing an SPI are told apart by address; deleting one leaves the other', () => {
  const t = table();
  const a = { at: '192.0.2.1', tag: 'a' }; const b = { at: '192.0.2.9', tag: 'b' };
  t.set(0xc0000001, a); t.set(0xc0000001, b);
  assert.equal(t.size, 2);
  assert.equal(t.get('192.0.2.1', 0xc0000001), a);
  assert.equal(t.get('192.0.2.9', 0xc0000001), b);
  assert.equal(t.get('192.0.2.5', 0xc0000001), undefined);
  assert.equal(t.find(0xc0000001, () => true), b, 'find: the last added that matches');
  assert.equal(t.delete(0xc0000001, a), true);
  assert.equal(t.delete(0xc0000001, a), false, 'gone already');
  assert.equal(t.get('192.0.2.1', 0xc0000001), undefined);
  assert.equal(t.get('192.0.2.9', 0xc0000001), b);
  assert.deepEqual([...t.values()], [b]);
  assert.equal(t.size, 1);
});

test('SpiTable: set at an address already held replaces that record; an SPI past 2^31 and its int32 form are one key', () => {
  const t = table();
  const a = { at: '192.0.2.1', tag: 'a' }; const a2 = { at: '192.0.2.1', tag: 'a2' }; const c = { at: '192.0.2.3', tag: 'c' };
  t.set(0xf0000000, a); t.set(0x100, c); t.set(0xf0000000 | 0, a2);
  assert.equal(t.size, 2);
  assert.equal(t.get('192.0.2.1', 0xf0000000), a2);
  assert.equal(t.delete(0xf0000000, a), false, 'the replaced record is not in');
  assert.deepEqual([...t.values()].map((r) => r.tag), ['a2', 'c']);
  assert.equal(t.delete(0xf0000000 | 0, a2), true);
  assert.deepEqual([...t.values()], [c]);
});
