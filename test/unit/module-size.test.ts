// docs/CONTRIBUTING.md: small modules with one job. Each file of the IKE engine (src/ike) stays
// within MAX_LINES so it can be read in one go and a newcomer finds one step per file; an offender
// is named with its line count. Allowances are listed, each with why, and one that is no longer
// needed fails too, so the list only shrinks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { repoRoot, tsFilesUnder } from '../lib/paths.js';

const root = repoRoot();
const MAX_LINES = 450;

/**
 * Files allowed over MAX_LINES, by path from the repository root, with why. Splitting one means
 * deleting its line here.
 */
const ALLOWED_OVER: Readonly<Record<string, string>> = {};

/** Lines as `wc -l` counts them (a last line without a newline still counts). */
export function lineCount(text: string): number {
  if (text.length === 0) return 0;
  const n = text.split('\n').length;
  return text.endsWith('\n') ? n - 1 : n;
}

/**
 * Problems with the sizes of `files` (paths from the repository root with their line counts): each
 * file over `max` that has no allowance, and each allowance whose file is no longer over `max`.
 */
export function sizeProblems(files: ReadonlyMap<string, number>, max: number, allowed: Readonly<Record<string, string>>): string[] {
  const out: string[] = [];
  for (const [file, lines] of [...files].sort(([a], [b]) => a.localeCompare(b))) {
    if (lines > max && allowed[file] === undefined) out.push(`${file}: ${lines} lines, over ${max}: split it into modules of one job each`);
  }
  for (const file of Object.keys(allowed).sort()) {
    const lines = files.get(file);
    if (lines === undefined) out.push(`${file}: allowed over ${max} lines but not found: delete its allowance`);
    else if (lines <= max) out.push(`${file}: ${lines} lines, within ${max} now: delete its allowance`);
  }
  return out;
}

test(`every file of src/ike is at most ${MAX_LINES} lines, apart from the listed allowances`, () => {
  const files = new Map<string, number>();
  for (const f of tsFilesUnder(join(root, 'src', 'ike'))) files.set(relative(root, f).split(sep).join('/'), lineCount(readFileSync(f, 'utf8')));
  assert.ok(files.size > 0, 'found no files under src/ike');
  assert.deepEqual(sizeProblems(files, MAX_LINES, ALLOWED_OVER), []);
});

test('size check names offenders and stale allowances (the check itself can fail)', () => {
  const files = new Map([['src/ike/a.ts', 451], ['src/ike/b.ts', 450], ['src/ike/c.ts', 900], ['src/ike/d.ts', 12]]);
  assert.deepEqual(sizeProblems(files, 450, { 'src/ike/c.ts': 'x', 'src/ike/d.ts': 'y', 'src/ike/gone.ts': 'z' }), [
    'src/ike/a.ts: 451 lines, over 450: split it into modules of one job each',
    'src/ike/d.ts: 12 lines, within 450 now: delete its allowance',
    'src/ike/gone.ts: allowed over 450 lines but not found: delete its allowance',
  ]);
  assert.equal(lineCount('a\nb\n'), 2);
  assert.equal(lineCount('a\nb'), 2);
  assert.equal(lineCount(''), 0);
});
