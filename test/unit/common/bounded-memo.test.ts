import { test } from 'node:test';
import assert from 'node:assert/strict';
import { boundedMemo, flatString } from '../../../src/common/bounded-memo.js';

test('boundedMemo builds a value once per key and hands out the same object after', () => {
  const m = new Map<string, { n: number }>();
  let made = 0;
  const a = boundedMemo(m, 'k', () => ({ n: ++made }));
  const b = boundedMemo(m, 'k', () => ({ n: ++made }));
  assert.equal(a, b);
  assert.equal(made, 1);
});

test('boundedMemo keeps nothing when make() throws, so a bad input is refused again next time', () => {
  const m = new Map<string, number>();
  assert.throws(() => boundedMemo(m, 'bad', () => { throw new Error('bad input'); }), /bad input/);
  assert.equal(m.size, 0);
});

test('boundedMemo clears the table when it is full: never more than `limit` entries', () => {
  const m = new Map<number, number>();
  for (let i = 0; i < 10; i++) boundedMemo(m, i, () => i * 2, 4);
  assert.ok(m.size <= 4, `size ${m.size}`);
  assert.equal(boundedMemo(m, 9, () => -1, 4), 18, 'the last value is still there');
});

test('flatString returns an equal string, lone surrogates included', () => {
  const s = `${'a'.repeat(20)}\ud800${'b'.repeat(20)}`.slice(3, 30);
  assert.equal(flatString(s), s);
});
