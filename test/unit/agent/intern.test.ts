// src/agent/intern.ts: the config's strings shared and flat, the values unchanged.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { internStrings } from '../../../src/agent/intern.js';

test('internStrings: equal values, one copy per distinct string, order and nesting kept', () => {
  const text = 'local: 192.0.2.1, remote: 192.0.2.1';
  const v = { a: text.slice(7, 16), list: [text.slice(26, 35), 'x'], n: 3, b: true, nil: null, und: undefined };
  const c = internStrings(v);
  assert.deepEqual(c, v);
  assert.deepEqual(Object.keys(c), Object.keys(v));
  assert.equal(c.a, '192.0.2.1');
  assert.notEqual(c, v);
  assert.notEqual(c.list, v.list);
});

test('internStrings: a lone surrogate and a "__proto__" key survive as data', () => {
  const v = JSON.parse('{"__proto__": {"polluted": "\\ud800"}}') as Record<string, unknown>;
  const c = internStrings(v);
  assert.equal(Object.getPrototypeOf(c), Object.prototype);
  assert.deepEqual(Object.getOwnPropertyDescriptor(c, '__proto__')?.value, { polluted: '\ud800' });
  assert.equal(({} as { polluted?: unknown }).polluted, undefined);
});

test('internStrings: non-plain objects are kept as they are', () => {
  const d = new Date(0); const m = new Map([['k', 'v']]); const u = new Uint8Array([1]);
  const c = internStrings({ d, m, u });
  assert.equal(c.d, d); assert.equal(c.m, m); assert.equal(c.u, u);
});

test('internStrings: equal lists of strings are one list; other lists are copies', () => {
  const c = internStrings([{ s: ['10.0.0.0/16'], p: ['aes256gcm16'] }, { s: ['10.0.0.0/16'], p: ['aes256gcm16', 'x'] }, { m: [1], n: [1] }]);
  assert.equal(c[0]!.s, c[1]!.s);
  assert.notEqual(c[0]!.p, c[1]!.p);
  assert.deepEqual(c[1]!.p, ['aes256gcm16', 'x']);
  assert.notEqual(c[2]!.m, c[2]!.n);
});
