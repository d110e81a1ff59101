// fuzz-esp.ts: push N inputs (default 1,000,000) through the userspace ESP engine's input path
// over loopback UDP and check that each is counted exactly once under the reason the reference
// model predicts (delivered, or a per-reason drop), that delivered + drops = inputs, that nothing
// crashes, and that memory stays bounded. The generator, oracle and driver are in
// test/unit/esp/fuzz-model.ts and fuzz-run.ts (fuzz.test.ts runs 6,000 of them in CI).
//
//   node --import tsx scripts/fuzz-esp.ts [--count N] [--seed S] [--batch B] [--time-limit SECONDS]
//
// --batch 1 checks the counters after every datagram and names the input that broke them.
// Exit status 0 = PASS, 1 = a counter differs from the model or a datagram was lost, 2 = time limit.
import { runEspFuzz } from '../test/unit/esp/fuzz-run.js';

const args = process.argv.slice(2);
const flag = (name: string): string | undefined => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : undefined; };
const count = Number(flag('--count') ?? 1_000_000);
const seed = Number(flag('--seed') ?? (Date.now() % 0x7fffffff));
const batch = Number(flag('--batch') ?? 256);
const timeLimitMs = Number(flag('--time-limit') ?? 1800) * 1000;
if (!Number.isSafeInteger(count) || count < 1 || !Number.isSafeInteger(seed) || !Number.isSafeInteger(batch) || batch < 1) {
  console.error('usage: fuzz-esp.ts [--count N] [--seed S] [--batch B] [--time-limit SECONDS]');
  process.exit(64);
}

let lastReport = 0;
const r = await runEspFuzz({
  count, seed, batch, timeLimitMs,
  onProgress: (sent, ms) => {
    if (ms - lastReport < 10_000) return;
    lastReport = ms;
    console.log(`  ${sent} inputs, ${Math.round(sent / (ms / 1000))}/s, RSS ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MiB`);
  },
});
const result = r.mismatches.length > 0 ? 'FAIL' : r.timedOut ? 'TIME LIMIT' : 'PASS';
const outcomes = [...r.got.entries()].filter(([, n]) => n > 0n).sort((a, b) => Number(b[1] - a[1])).map(([k, n]) => `${k} ${n}`).join(', ');
const kinds = [...r.kinds.entries()].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${n}`).join(', ');
for (const m of r.mismatches) console.log(`mismatch: ${m}`);
console.log(`inputs by kind: ${kinds}`);
console.log(`engine counts: ${outcomes} (sum ${[...r.got.values()].reduce((a, b) => a + b, 0n)}, rxDatagrams ${r.rxDatagrams})`);
console.log(`highest verified sequence numbers: ${r.tops.map((t) => `${t.algorithm}${t.esn ? ' (esn)' : ''} ${t.seq}`).join(', ')}`);
console.log(`inner events ${r.innerEvents}, event-queue drops ${r.eventsDropped}`);
console.log(`fuzz-esp: ${result} — ${r.inputs} inputs in ${r.seconds.toFixed(1)} s (${Math.round(r.inputs / r.seconds)}/s), seed ${seed}, peak RSS ${r.maxRssMb.toFixed(0)} MiB`);
process.exitCode = r.mismatches.length > 0 ? 1 : r.timedOut ? 2 : 0;
