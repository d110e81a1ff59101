// fuzz-ike-codec.ts: push N inputs (default 1,000,000) through the IKEv2 codec's decoders and check
// that nothing but ParseError ever escapes (DESIGN.md §9), that everything that decodes re-encodes
// to bytes that decode to the same thing, and that memory stays bounded. The generator and checks
// are in test/unit/ike/fuzz/codec-fuzz.ts (codec.test.ts runs a bounded count of it in CI).
//
//   node --import tsx scripts/fuzz-ike-codec.ts [N] [--seed S] [--time-limit SECONDS]
//
// Exit status 0 = PASS, 1 = an escaping non-ParseError or a re-encoding mismatch, 2 = time limit.
import { runCodecFuzz } from '../test/unit/ike/fuzz/codec-fuzz.js';

const args = process.argv.slice(2);
const flag = (name: string): string | undefined => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : undefined; };
const total = Number(args.find((a, i) => /^\d+$/.test(a) && !['--seed', '--time-limit'].includes(args[i - 1] ?? '')) ?? 1_000_000);
const seed = Number(flag('--seed') ?? (Date.now() % 0x7fffffff));
const timeLimitMs = Number(flag('--time-limit') ?? 900) * 1000;

const r = runCodecFuzz({ count: total, seed, timeLimitMs });
const top = [...r.codes.entries()].sort((a, b) => b[1] - a[1]).slice(0, 6).map(([c, n]) => `${c} ${n}`).join(', ');
const result = r.failures > 0 ? 'FAIL' : r.timedOut ? 'TIME LIMIT' : 'PASS';
console.log(`top ParseError codes: ${top}`);
for (const f of r.failureSamples) console.log(`failure: ${f}`);
console.log(`fuzz-ike-codec: ${result} — ${r.inputs} inputs in ${r.seconds.toFixed(1)} s (${Math.round(r.inputs / r.seconds)}/s), seed ${seed}; ` +
  `decoded ${r.ok}, ParseError ${r.parseErrors}, inner chains decoded ${r.innerOk}, other exceptions/mismatches ${r.failures}, max RSS ${r.maxRssMb.toFixed(0)} MiB`);
process.exitCode = r.failures > 0 ? 1 : r.timedOut ? 2 : 0;
