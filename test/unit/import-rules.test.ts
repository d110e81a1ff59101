// DESIGN.md §7 import rules, enforced on the source tree: common imports nothing of ours; ike,
// xfrm, esp, pki and api import only common; operator never imports ike/xfrm/esp/agent; only
// agent and cli compose. A violation names the file and the import. Within a layer, files import
// each other without cycles (a cycle means no file of it can be read, tested or moved alone); a
// cycle is reported with its files.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, relative, resolve, dirname, sep } from 'node:path';
import { repoRoot, tsFilesUnder } from '../lib/paths.js';

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

/** The file a relative specifier names ('./x.js' is x.ts, './dir' is dir/index.ts), if it is one of ours. */
function target(from: string, spec: string, known: ReadonlySet<string>): string | undefined {
  const base = resolve(dirname(from), spec);
  return [base.replace(/\.js$/, '.ts'), `${base}.ts`, join(base, 'index.ts')].find((f) => known.has(f));
}

/**
 * Import cycles among the files of one layer, type-only imports included: each strongly connected
 * component of the file graph (Tarjan) with more than one file, or a file importing itself, named by
 * its layer, its files, and the shortest path around it from its first file.
 */
export function cycles(files: readonly string[], read: (f: string) => string = (f) => readFileSync(f, 'utf8')): string[] {
  const known = new Set(files);
  const layerOf = (f: string): string => relative(src, f).split(sep)[0] ?? '';
  const edges = new Map<string, string[]>();
  for (const f of files) {
    const out: string[] = [];
    for (const spec of importsOf(read(f))) {
      if (!spec.startsWith('.')) continue;
      const t = target(f, spec, known);
      if (t !== undefined && layerOf(t) === layerOf(f) && !out.includes(t)) out.push(t);
    }
    edges.set(f, out);
  }
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, index.size); low.set(v, index.get(v) ?? 0);
    stack.push(v); onStack.add(v);
    for (const w of edges.get(v) ?? []) {
      if (!index.has(w)) { visit(w); low.set(v, Math.min(low.get(v) ?? 0, low.get(w) ?? 0)); }
      else if (onStack.has(w)) low.set(v, Math.min(low.get(v) ?? 0, index.get(w) ?? 0));
    }
    if (low.get(v) !== index.get(v)) return;
    const c: string[] = [];
    for (let w = stack.pop(); w !== undefined; w = stack.pop()) { onStack.delete(w); c.push(w); if (w === v) break; }
    components.push(c);
  };
  for (const f of [...files].sort()) if (!index.has(f)) visit(f);
  const found: string[] = [];
  for (const c of components) {
    const first = [...c].sort()[0];
    if (first === undefined || (c.length === 1 && !(edges.get(first) ?? []).includes(first))) continue;
    const inside = new Set(c);
    const layerDir = join(src, layerOf(first));
    const name = (f: string): string => relative(layerDir, f).split(sep).join('/');
    found.push(`src/${layerOf(first)}: ${c.length} file(s) in an import cycle: ${c.map(name).sort().join(', ')}; e.g. ${shortestLoop(first, edges, inside).map(name).join(' -> ')}`);
  }
  return found.sort();
}

/** Breadth-first: the shortest import path from `start` back to itself through files of `inside`. */
function shortestLoop(start: string, edges: ReadonlyMap<string, readonly string[]>, inside: ReadonlySet<string>): string[] {
  const parent = new Map<string, string>();
  const queue = [start];
  for (let i = 0; i < queue.length; i++) {
    const v = queue[i] ?? start;
    for (const w of edges.get(v) ?? []) {
      if (w === start) {
        const path = [start];
        for (let u: string | undefined = v; u !== undefined && u !== start; u = parent.get(u)) path.splice(1, 0, u);
        return [...path, start];
      }
      if (inside.has(w) && !parent.has(w)) { parent.set(w, v); queue.push(w); }
    }
  }
  return [start];
}

test('source tree follows the import rules of DESIGN.md §7', () => {
  const files = tsFilesUnder(src);
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

/**
 * Cycles that predate this check, listed so they cannot grow unnoticed: a change to one of their
 * files that alters the cycle fails here, and breaking it means deleting its line.
 */
const KNOWN_CYCLES: readonly string[] = [
  'src/cli: 7 file(s) in an import cycle: agent-cluster.ts, agent.ts, commands.ts, control.ts, diagnose.ts, mesh-status.ts, rotate-ca.ts; e.g. agent-cluster.ts -> commands.ts -> agent.ts -> agent-cluster.ts',
];

test('no import cycles among the files of a layer, other than the known ones', () => {
  assert.deepEqual(cycles(tsFilesUnder(src)), KNOWN_CYCLES);
});

test('cycle check reports each cycle with its files (the check itself can fail)', () => {
  const f = (p: string): string => join(src, ...p.split('/'));
  const files = [f('ike/engine.ts'), f('ike/sa/core.ts'), f('ike/sa/tasks.ts'), f('ike/ports.ts'), f('ike/self.ts'), f('agent/a.ts'), f('agent/b.ts')];
  const text: Record<string, string> = {
    [f('ike/engine.ts')]: `import { EngineCore } from './sa/core.js';\nimport type { EnginePorts } from './ports.js';`,
    [f('ike/sa/core.ts')]: `import type { Status } from '../engine.js';\nimport { handle } from './tasks.js';`,
    [f('ike/sa/tasks.ts')]: `import type { EngineCore } from './core.js';`,
    [f('ike/self.ts')]: `export * from './self.js';`,
    // Across layers is the import rules' business, not a cycle within one layer.
    [f('agent/a.ts')]: `import { b } from './b.js';\nimport { IkeEngine } from '../ike/engine.js';`,
    [f('agent/b.ts')]: `import { IkeEngine } from '../ike/index.js';`,
  };
  assert.deepEqual(cycles(files, (p) => text[p] ?? ''), [
    'src/ike: 1 file(s) in an import cycle: self.ts; e.g. self.ts -> self.ts',
    'src/ike: 3 file(s) in an import cycle: engine.ts, sa/core.ts, sa/tasks.ts; e.g. engine.ts -> sa/core.ts -> engine.ts',
  ]);
});
