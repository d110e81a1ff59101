// Summary of a V8 CPU profile (.cpuprofile from `node --cpu-prof`, or the agent's from
// bench/handshake-vs-strongswan with KIPSEC_BENCH_PROFILE=1): time per function, by self time
// (default) or inclusive time, or per source file, or one function's time by its callers.
//
//   node --import tsx bench/cpuprofile-summary.ts FILE.cpuprofile [--top 40] [--incl]
//        [--exclude fnA,fnB] [--callers FN [--depth 2]] [--by-file BUNDLE_DIR]
//
//  --exclude: drop samples with any of these functions on the stack (e.g. the bench's own setup,
//             or x25519Share,computeSharedSecret to see what is left beside the key exchange).
//  --by-file: self time per source file. For an esbuild bundle (the agent in the strongSwan bench)
//             pass a rebuild of it from the same tree: the `// src/...` markers name the files.
// Times are wall time between samples on the profiled thread: a thread descheduled inside a call
// (a postMessage or sendto that wakes another thread on a busy machine) charges that call.
import { readdirSync, readFileSync } from 'node:fs';

interface CallFrame { readonly functionName: string; readonly url: string; readonly lineNumber: number }
interface ProfileNode { readonly id: number; readonly callFrame: CallFrame; readonly children?: readonly number[] }
interface Profile { readonly nodes: readonly ProfileNode[]; readonly samples: readonly number[]; readonly timeDeltas: readonly number[] }

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const file = process.argv[2];
if (file === undefined || file.startsWith('--')) {
  console.error('usage: bench/cpuprofile-summary.ts FILE.cpuprofile [--top N] [--incl] [--exclude a,b] [--callers FN [--depth N]] [--by-file BUNDLE_DIR]');
  process.exit(2);
}
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const top = Number(arg('--top') ?? 40);
const exclude = new Set((arg('--exclude') ?? '').split(',').filter(Boolean));
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

const shortUrl = (url: string): string => url.replace(/^file:\/\//, '').replace(/^.*?\/(src|bench|test|e2e|node_modules|build)\//, '$1/');
const label = (f: CallFrame): string => `${f.functionName || '(anonymous)'} ${f.url ? `${shortUrl(f.url)}:${f.lineNumber + 1}` : ''}`.trimEnd();

/** The stack of a sample, innermost first. */
function stackOf(id: number): ProfileNode[] {
  const out: ProfileNode[] = [];
  for (let c: number | undefined = id; c !== undefined; c = parent.get(c)) out.push(byId.get(c)!);
  return out;
}

/** Source file of a frame: node/npm as such; for a bundle chunk, the nearest `// src/...` marker above the line. */
function fileOf(f: CallFrame, chunks: Map<string, string[]>): string {
  if (!f.url) return f.functionName || '(native)';
  if (f.url.startsWith('node:')) return f.url;
  if (f.url.includes('/node_modules/')) return `npm:${f.url.split('/node_modules/')[1]!.split('/')[0]!}`;
  const lines = chunks.get(f.url.split('/').pop()!);
  if (!lines) return shortUrl(f.url);
  for (let i = Math.min(f.lineNumber, lines.length - 1); i >= 0; i--) {
    const m = /^\/\/ ((?:src|bench|e2e)\/\S+)/.exec(lines[i]!);
    if (m) return m[1]!;
  }
  return shortUrl(f.url);
}

const bundleDir = arg('--by-file');
const chunks = new Map<string, string[]>();
if (bundleDir) for (const f of readdirSync(bundleDir)) if (f.endsWith('.mjs') || f.endsWith('.js')) chunks.set(f, readFileSync(`${bundleDir}/${f}`, 'utf8').split('\n'));
const callersOf = arg('--callers');
const depth = Number(arg('--depth') ?? 1);

const acc = new Map<string, number>();
let busy = 0; let idle = 0;
const add = (k: string, us: number): void => { acc.set(k, (acc.get(k) ?? 0) + us); };
for (let i = 0; i < profile.samples.length; i++) {
  const us = profile.timeDeltas[i] ?? 0;
  const stack = stackOf(profile.samples[i]!);
  const leaf = stack[0]!.callFrame;
  if (leaf.functionName === '(idle)') { idle += us; continue; }
  if (exclude.size > 0 && stack.some((n) => exclude.has(n.callFrame.functionName))) continue;
  busy += us;
  if (callersOf !== undefined) {
    const at = stack.findIndex((n) => n.callFrame.functionName === callersOf);
    if (at >= 0) add(stack.slice(at + 1, at + 1 + depth).map((n) => label(n.callFrame)).join(' < ') || '(top)', us);
  } else if (bundleDir !== undefined) add(fileOf(leaf, chunks), us);
  else if (process.argv.includes('--incl')) for (const k of new Set(stack.map((n) => label(n.callFrame)))) add(k, us);
  else add(label(leaf), us);
}

const ms = (us: number): string => (us / 1000).toFixed(1).padStart(9);
console.log(`${file}: busy ${ms(busy).trim()} ms, idle ${ms(idle).trim()} ms${exclude.size > 0 ? ` (without stacks through ${[...exclude].join(', ')})` : ''}`);
if (callersOf !== undefined) console.log(`${callersOf}: inclusive time by caller (${depth} frame${depth === 1 ? '' : 's'} up)`);
console.log('       ms  % busy');
for (const [k, us] of [...acc].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${ms(us)} ${(100 * us / busy).toFixed(1).padStart(6)}  ${k}`);
