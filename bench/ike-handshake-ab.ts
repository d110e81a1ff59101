// Two source trees' in-process handshake rates, A/B: bench/ike-handshake.ts run from each tree
// (each its own copy: put the same bench file in both when comparing commits), alternating A and
// B in pairs (A first in even pairs, B first in odd ones), both runs of a pair under one flock of
// the lock file so a pair sees the same machine; /proc/loadavg is read before each run.
// Prints every pair's figures, then per case the median of each tree, the per-pair B/A ratios
// with their median and range, for engine handshakes per CPU-second, per wall second, the raw
// crypto rate and the engine's CPU beyond the raw crypto (ms per handshake).
//
// Run: node --import tsx bench/ike-handshake-ab.ts <treeA> <treeB> [pairs=6] [seconds=3] [--lock FILE|--no-lock]
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

interface Row { engine: number; raw: number; wall: number }
type Run = { load: string; psk: Row; cert: Row };

const args = process.argv.slice(2);
const flag = (name: string): string | undefined => { const i = args.indexOf(name); return i < 0 ? undefined : args.splice(i, 2)[1]; };
const noLock = args.includes('--no-lock') ? (args.splice(args.indexOf('--no-lock'), 1), true) : false;
const lock = flag('--lock') ?? '/tmp/kipsec-heavy.lock';
const [treeA, treeB, pairsArg, secsArg] = args;
if (treeA === undefined || treeB === undefined) throw new Error('usage: ike-handshake-ab.ts <treeA> <treeB> [pairs] [seconds] [--lock FILE|--no-lock]');
const PAIRS = Number(pairsArg ?? 6);
const SECS = secsArg ?? '3';

function parse(out: string): { psk: Row; cert: Row } {
  const row = (label: string): Row => {
    const line = out.split('\n').find((l) => l.startsWith(label));
    const m = line?.match(/^\S.*?\s+(\d+)\s+(\d+)\s+[\d.]+x\s+\S+ the 2x target\s+(\d+)/);
    if (!m) throw new Error(`no '${label}' row with a wall column in:\n${out}`);
    return { engine: Number(m[1]), raw: Number(m[2]), wall: Number(m[3]) };
  };
  return { psk: row('PSK + X25519'), cert: row('ECDSA-P256 certs') };
}

/** One pair, both runs inside one lock; the shell marks where each run's output starts. */
function pair(order: readonly string[]): Run[] {
  const script = order.map((t) => `echo "@@ $(cat /proc/loadavg)"; cd '${t}' && node --import tsx bench/ike-handshake.ts ${SECS} || exit 1`).join('; ');
  const cmd = noLock ? ['sh', '-c', script] : ['flock', lock, 'sh', '-c', script];
  const r = spawnSync(cmd[0]!, cmd.slice(1), { encoding: 'utf8', maxBuffer: 16 << 20 });
  if (r.status !== 0) throw new Error(`pair failed (${r.status}): ${r.stdout}${r.stderr}`);
  return r.stdout.split('@@ ').slice(1).map((part) => ({ load: part.split('\n')[0]!.split(' ').slice(0, 3).join(' '), ...parse(part) }));
}

const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2; };
const overhead = (r: Row): number => 1000 / r.engine - 1000 / r.raw;
const head = (t: string): string => { try { return readFileSync(`${t}/.git`, 'utf8').trim(); } catch { return t; } };

console.log(`A = ${treeA} (${head(treeA)})\nB = ${treeB} (${head(treeB)})\n${PAIRS} pairs, ${SECS}s per case, lock ${noLock ? 'none' : lock}`);
console.log('pair side load(1/5/15)        PSK eng/CPU-s  wall   raw | cert eng/CPU-s  wall   raw');
const runs: Array<{ a: Run; b: Run }> = [];
for (let p = 0; p < PAIRS; p++) {
  const order = p % 2 === 0 ? [treeA, treeB] : [treeB, treeA];
  const [first, second] = pair(order) as [Run, Run];
  const res = p % 2 === 0 ? { a: first, b: second } : { a: second, b: first };
  runs.push(res);
  const sides: ReadonlyArray<'a' | 'b'> = p % 2 === 0 ? ['a', 'b'] : ['b', 'a'];
  for (const side of sides) {
    const x = res[side];
    console.log(`${String(p + 1).padStart(4)} ${side.toUpperCase().padStart(4)} ${x.load.padEnd(18)}${String(x.psk.engine).padStart(14)}${String(x.psk.wall).padStart(6)}${String(x.psk.raw).padStart(6)} |${String(x.cert.engine).padStart(15)}${String(x.cert.wall).padStart(6)}${String(x.cert.raw).padStart(6)}`);
  }
}

console.log('\ncase  figure                       median A  median B   B/A of medians   per-pair B/A: median [min..max]');
for (const kind of ['psk', 'cert'] as const) {
  const figs: Array<[string, (r: Row) => number]> = [
    ['engine hs/CPU-s', (r) => r.engine], ['engine hs/s wall', (r) => r.wall], ['raw crypto hs/CPU-s', (r) => r.raw],
    ['engine CPU-ms/hs beyond raw', overhead],
  ];
  for (const [name, f] of figs) {
    const a = runs.map((r) => f(r.a[kind])); const b = runs.map((r) => f(r.b[kind]));
    const ratios = runs.map((r) => f(r.b[kind]) / f(r.a[kind]));
    const fmt = (v: number): string => (v < 10 ? v.toFixed(3) : v.toFixed(0));
    console.log(`${kind.padEnd(6)}${name.padEnd(29)}${fmt(median(a)).padStart(9)}${fmt(median(b)).padStart(10)}${(median(b) / median(a)).toFixed(2).padStart(16)}x   ${median(ratios).toFixed(2)}x [${Math.min(...ratios).toFixed(2)}..${Math.max(...ratios).toFixed(2)}]  (${ratios.map((x) => x.toFixed(2)).join(' ')})`);
  }
}
