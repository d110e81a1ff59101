// The agent's checkpoint files (src/agent/checkpoints.ts): they hold IKE SA keys, so the directory
// is 0700, files 0600 and written atomically, and on load nothing but an owner-only regular file
// of ours is read; everything else is refused by name (DESIGN.md §9: no secret leaks).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, chownSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileCheckpoints } from '../../../src/agent/checkpoints.js';
import { SecretBytes } from '../../../src/common/secret.js';

function dir(t: { after(fn: () => unknown): void }): string {
  const d = mkdtempSync(join(tmpdir(), 'kipsec-state-'));
  t.after(() => rmSync(d, { recursive: true, force: true }));
  return join(d, 'state');
}

const bytes = (s: string): SecretBytes => new SecretBytes(new Uint8Array(Buffer.from(s)));

test('save writes owner-only files in an owner-only directory; load returns them; remove and clear delete them', (t) => {
  const d = dir(t);
  const store = FileCheckpoints.open(d);
  assert.equal(statSync(d).mode & 0o777, 0o700);
  store.save('00000000000000aa', bytes('first'));
  store.save('00000000000000aa', bytes('second')); // replaced, not appended
  store.save('00000000000000bb', bytes('other'));
  assert.equal(statSync(join(d, '00000000000000aa.ikesa')).mode & 0o777, 0o600);
  assert.deepEqual(readdirSync(d).sort(), ['00000000000000aa.ikesa', '00000000000000bb.ikesa'], 'no temporary file left behind');
  const loaded = store.load();
  assert.deepEqual(loaded.refused, []);
  assert.deepEqual(Object.fromEntries(loaded.items.map((i) => [i.id, Buffer.from(i.data.expose()).toString()])), { '00000000000000aa': 'second', '00000000000000bb': 'other' });
  store.remove('00000000000000aa');
  store.remove('00000000000000aa'); // idempotent
  assert.deepEqual(readdirSync(d), ['00000000000000bb.ikesa']);
  store.clear();
  assert.deepEqual(readdirSync(d), []);
});

test('an id that is not 16 hex digits is refused before touching the file system (no path tricks)', (t) => {
  const store = FileCheckpoints.open(dir(t));
  for (const id of ['../../etc/passwd', '0123', 'ZZZZZZZZZZZZZZZZ', '']) assert.throws(() => store.save(id, bytes('x')), /not 16 hex digits/);
});

test('load refuses, by name and reason, files others may read, symlinks, foreign owners and stray names; a cut-short save is removed', (t) => {
  const d = dir(t);
  const store = FileCheckpoints.open(d);
  store.save('00000000000000aa', bytes('good'));
  writeFileSync(join(d, '00000000000000bb.ikesa'), 'loose', { mode: 0o644 });
  chmodSync(join(d, '00000000000000bb.ikesa'), 0o644);
  symlinkSync(join(d, '00000000000000aa.ikesa'), join(d, '00000000000000cc.ikesa'));
  writeFileSync(join(d, '00000000000000dd.ikesa'), 'foreign', { mode: 0o600 });
  const root = process.getuid?.() === 0;
  if (root) chownSync(join(d, '00000000000000dd.ikesa'), 4242, 4242);
  writeFileSync(join(d, 'notes.txt'), 'hello', { mode: 0o600 });
  writeFileSync(join(d, '.00000000000000ee.999.tmp'), 'half', { mode: 0o600 });
  const loaded = store.load();
  assert.deepEqual(loaded.items.map((i) => i.id), root ? ['00000000000000aa'] : ['00000000000000aa', '00000000000000dd']);
  const why = Object.fromEntries(loaded.refused.map((r) => [r.file.split('/').pop(), r.reason]));
  assert.match(why['00000000000000bb.ikesa']!, /mode 644 lets others read key material/);
  assert.match(why['00000000000000cc.ikesa']!, /cannot open: ELOOP/);
  if (root) assert.match(why['00000000000000dd.ikesa']!, /owned by uid 4242/);
  assert.match(why['notes.txt']!, /not a checkpoint file name/);
  assert.ok(!readdirSync(d).includes('.00000000000000ee.999.tmp'), 'the temporary file of an interrupted save is removed');
});

test('a state directory with loose permissions is tightened; one that is not a directory is refused', (t) => {
  const d = dir(t);
  FileCheckpoints.open(d);
  chmodSync(d, 0o755);
  FileCheckpoints.open(d);
  assert.equal(statSync(d).mode & 0o777, 0o700);
  const f = join(d, 'file');
  writeFileSync(f, 'x');
  assert.throws(() => FileCheckpoints.open(f), /EEXIST|not a directory/);
});
