// The `kipsec` command table: --help lists every command, and a command whose capability is not
// built yet says so and exits non-zero without doing anything (no fake output).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { run } from '../../../src/cli/main.js';
import { COMMANDS, EXIT_NOT_BUILT, EXIT_USAGE, type Command } from '../../../src/cli/commands.js';
import { repoPath } from '../../lib/paths.js';

function capture(): { io: { out(l: string): void; err(l: string): void }; out: string[]; err: string[] } {
  const out: string[] = []; const err: string[] = [];
  return { io: { out: (l) => out.push(l), err: (l) => err.push(l) }, out, err };
}

test('kipsec --help lists every command with its summary', async () => {
  const c = capture();
  assert.equal(await run(['--help'], c.io), 0);
  const text = c.out.join('\n');
  for (const cmd of COMMANDS) assert.match(text, new RegExp(`\\b${cmd.name}\\b.*${cmd.summary.slice(0, 20).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
});

test('a command that is not built yet exits non-zero and says so in the product\'s words', async () => {
  // Every command in COMMANDS is built today, so a loop over its placeholders would check nothing:
  // the dispatch runs over a table with one placeholder beside the real commands.
  const table: readonly Command[] = [...COMMANDS, { name: 'placeholder', usage: 'placeholder', summary: 'a capability not built yet' }];
  const placeholders = table.filter((x) => !x.run);
  assert.deepEqual(placeholders.map((x) => x.name), ['placeholder'], 'the check below runs over the placeholder');
  for (const cmd of placeholders) {
    const c = capture();
    assert.equal(await run([cmd.name], c.io, table), EXIT_NOT_BUILT, cmd.name);
    assert.match(c.err.join('\n'), /^kipsec placeholder: not available in this version; nothing was done$/);
    assert.deepEqual(c.out, []);
    const h = capture();
    assert.equal(await run([cmd.name, '--help'], h.io, table), 0);
    assert.match(h.out.join('\n'), /not available in this version/);
  }
  const listing = capture();
  await run(['--help'], listing.io, table);
  assert.match(listing.out.join('\n'), /placeholder +a capability not built yet \(not available in this version\)/);
  assert.doesNotMatch(listing.out.join('\n'), /status .*\(not available/, 'a built command is not marked');
});

test('an unknown command is a usage error', async () => {
  const c = capture();
  assert.equal(await run(['frobnicate'], c.io), EXIT_USAGE);
  assert.match(c.err[0] ?? '', /unknown command "frobnicate"/);
});

test('bin/kipsec.js runs the built CLI (npx kipsec --help)', () => {
  const r = spawnSync(process.execPath, [repoPath('bin', 'kipsec.js'), '--help'], { encoding: 'utf8', timeout: 30_000 });
  if (r.status === 1 && /not built yet; run `npm run build`/.test(r.stderr)) assert.fail('dist/ is missing: the test command builds before the lanes run');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^usage: kipsec COMMAND/);
});

test('the compiled addon loader (dist/src/xfrm/native.js) finds native/build, as `npx kipsec` and the image run it', () => {
  const loader = repoPath('dist', 'src', 'xfrm', 'native.js');
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', `const m = await import(${JSON.stringify(pathToFileURL(loader).href)}); console.log(Object.keys(m.loadNative()).sort().join(' '));`], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /netlinkOpen .*openTun .*setUdpEncap/);
});
