// The agent's log censor (src/agent/log.ts): field names secrets travel under are replaced by
// "[redacted]" at the top level and one object down, in a line's fields and in a child's bindings.
// Why: the censor replaced pino's redact paths (four lines per handshake paid ~3× the line for
// them); it must still catch every name and depth the paths did, and leave other lines untouched.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { censorFields, createLogger, REDACT_KEYS } from '../../../src/agent/log.js';
import { SecretBytes } from '../../../src/common/secret.js';

function sink(): { log: ReturnType<typeof createLogger>; lines: () => Record<string, unknown>[] } {
  const out: string[] = [];
  const dest = new Writable({ write(chunk: Buffer, _enc, cb) { out.push(...chunk.toString().split('\n').filter(Boolean)); cb(); } });
  return { log: createLogger({ level: 'info', destination: dest }), lines: () => out.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

test('log censor: every REDACT_KEYS name at the top level and one object down is "[redacted]"; the caller\'s objects are not changed', () => {
  const { log, lines } = sink();
  for (const k of REDACT_KEYS) {
    const nested = { [k]: 'S3CRET', other: 1 };
    log.info({ [k]: 'S3CRET', nested, keep: 'x' }, 'line');
    assert.equal(nested[k], 'S3CRET');
  }
  for (const [i, l] of lines().entries()) {
    const k = REDACT_KEYS[i]!;
    assert.equal(l[k], '[redacted]');
    assert.deepEqual(l['nested'], { [k]: '[redacted]', other: 1 });
    assert.equal(l['keep'], 'x');
  }
  assert.ok(!lines().some((l) => JSON.stringify(l).includes('S3CRET')));
});

test('log censor: a child\'s bindings are censored too, a class instance keeps its toJSON, SecretBytes serialises redacted', () => {
  const { log, lines } = sink();
  class Holder { readonly psk: string; readonly name: string; constructor(psk: string, name: string) { this.psk = psk; this.name = name; } toJSON(): unknown { return { name: this.name, psk: this.psk }; } }
  log.child({ secret: 'S3CRET', part: 'p' }).info({ holder: new Holder('S3CRET', 'h'), raw: new SecretBytes(Buffer.from('S3CRET')) }, 'line');
  const [l] = lines();
  assert.equal(l!['secret'], '[redacted]');
  assert.equal(l!['part'], 'p');
  assert.deepEqual(l!['holder'], { name: 'h', psk: '[redacted]' });
  assert.ok(!JSON.stringify(l).includes('S3CRET'));
});

test('log censor: a grandchild keeps its parent\'s bindings and has its own censored', () => {
  const { log, lines } = sink();
  log.child({ part: 'ike' }).child({ tunnel: 't', nested: { key: 'S3CRET' } }).info('line');
  const [l] = lines();
  assert.equal(l!['part'], 'ike');
  assert.equal(l!['tunnel'], 't');
  assert.deepEqual(l!['nested'], { key: '[redacted]' });
});

test('log censor: a line without such names is passed through as the same object (no copy per line)', () => {
  const fields = { tunnel: 't', spis: ['0a', '0b'], remote: { address: '192.0.2.2', port: 500 }, buf: new Uint8Array(4) };
  assert.equal(censorFields(fields), fields);
  assert.equal(censorFields({ key: undefined }).key, undefined);
});
