// DESIGN.md §7 import rules, enforced on the source tree: common imports nothing of ours; ike,
// xfrm, esp, pki and api import only common; operator never imports ike/xfrm/esp/agent; only
// agent and cli compose. A violation names the file and the import.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve, dirname, sep } from 'node:path';
import { repoRoot } from '../lib/paths.js';

const root = repoRoot();
const src = join(root, 'src');

const ALLOWED: Readonly<Record<string, readonly string[]>> = {
  common: [],
  ike: ['common'],
  xfrm: ['common'],
  esp: ['common'],
  pki: ['common'],
  api: ['common'],
  operator: ['common', 'api', 'pki'],
  agent: ['common', 'api', 'pki', 'ike', 'xfrm', 'esp'],
  cli: ['common', 'api', 'pki', 'ike', 'xfrm', 'esp', 'agent', 'operator'],
};

function walk(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else if (p.endsWith('.ts')) out.push(p);
  }
  return out;
}

/** Module specifiers of static imports, re-exports and dynamic imports. */
export function importsOf(text: string): string[] {
  const re = /(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|import\s*\(\s*['"]([^'"]+)['"]\s*\)|import\s+['"]([^'"]+)['"]/g;
  const out: string[] = [];
  for (let m = re.exec(text); m; m = re.exec(text)) out.push((m[1] ?? m[2] ?? m[3])!);
  return out;
}

export function violations(files: readonly string[], read: (f: string) => string = (f) => readFileSync(f, 'utf8')): string[] {
  const bad: string[] = [];
  for (const file of files) {
    const layer = relative(src, file).split(sep)[0]!;
    const allowed = ALLOWED[layer];
    if (!allowed) { bad.push(`${relative(root, file)}: src/${layer} is not a known layer (add it to DESIGN.md §7 and this test)`); continue; }
    for (const spec of importsOf(read(file))) {
      if (!spec.startsWith('.')) continue;
      const target = relative(src, resolve(dirname(file), spec)).split(sep)[0]!;
      if (target === layer) continue;
      if (target.startsWith('..')) { bad.push(`${relative(root, file)}: imports ${spec} from outside src/`); continue; }
      if (!allowed.includes(target)) bad.push(`${relative(root, file)}: src/${layer} may not import src/${target} (${spec})`);
    }
  }
  return bad;
}

test('source tree follows the import rules of DESIGN.md §7', () => {
  const files = walk(src);
  assert.ok(files.length > 0, 'found no source files');
  assert.deepEqual(violations(files), []);
});

test('import-rule check reports forbidden imports (the check itself can fail)', () => {
  const files = [join(src, 'operator', 'x.ts'), join(src, 'ike', 'y.ts'), join(src, 'common', 'z.ts')];
  const text: Record<string, string> = {
    [files[0]!]: `import { a } from '../ike/engine.js';\nimport type { T } from '../api/types.js';`,
    [files[1]!]: `export * from "../xfrm/client.js";\nimport { R } from '../common/bytes.js';`,
    [files[2]!]: `const m = await import('../pki/ca.js');`,
  };
  const found = violations(files, (f) => text[f] ?? '');
  assert.deepEqual(found, [
    'src/operator/x.ts: src/operator may not import src/ike (../ike/engine.js)',
    'src/ike/y.ts: src/ike may not import src/xfrm (../xfrm/client.js)',
    'src/common/z.ts: src/common may not import src/pki (../pki/ca.js)',
  ]);
});
