// Loads a JSON vector file from test/vectors/ and insists it names its source.
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const dir = resolve(dirname(fileURLToPath(import.meta.url)), '../../../vectors');

export function loadVectors<T>(name: string): T & { source: string } {
  const v = JSON.parse(readFileSync(join(dir, name), 'utf8')) as T & { source?: unknown };
  if (typeof v.source !== 'string' || v.source.length < 10) throw new Error(`${name}: vector file lacks a source field`);
  return v as T & { source: string };
}
