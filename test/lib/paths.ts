// Repository paths for tests, found by walking up to package.json, so a test reads its vectors and
// golden files the same way whether it runs from the source tree (tsx) or from dist/.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let cached: string | undefined;

export function repoRoot(): string {
  if (cached) return cached;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 10; i++) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'src'))) return (cached = dir);
    dir = dirname(dir);
  }
  throw new Error('repoRoot: no package.json above this file');
}

export function repoPath(...parts: string[]): string { return join(repoRoot(), ...parts); }

/** Every .ts file below `dir`, recursively. */
export function tsFilesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...tsFilesUnder(p));
    else if (p.endsWith('.ts')) out.push(p);
  }
  return out;
}
