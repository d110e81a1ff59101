// fuzz-ike-state.ts: the IKEv2 state-machine fuzz (test/unit/ike/fuzz/state-fuzz.ts) as a long run:
// seeded random sequences of genuine, reordered, replayed, mutated and intruder datagrams against
// both engines of a pair in every start state, with the invariants checked after every input.
//
//   npx tsx scripts/fuzz-ike-state.ts [--count N] [--seed S] [--episode E] [--start STATE] [--mode MODE]
//       [--variant V] [--episode-inputs N] [--recover-every N] [--time-limit SECONDS]
//
// --episode E reruns from episode E of seed S (a failure prints the exact command). Prints
// progress, then inputs/s, drops by reason, peak state sizes and RSS. Exit status 0 = PASS,
// 1 = an invariant broke (the message names it, with the last steps), 2 = time limit reached.
import { BOUNDS, MODES, runStateFuzz, START_STATES, StateFuzzFailure, VARIANTS, type StateFuzzReport } from '../test/unit/ike/fuzz/state-fuzz.js';

const args = process.argv.slice(2);
function flag(name: string): string | undefined { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : undefined; }
function oneOf<T extends string>(name: string, xs: readonly T[]): T | undefined {
  const v = flag(name);
  if (v === undefined) return undefined;
  if (!(xs as readonly string[]).includes(v)) { console.error(`${name} must be one of ${xs.join(', ')}, got "${v}"`); process.exit(64); }
  return v as T;
}
const episode = flag('--episode');
const count = Number(flag('--count') ?? (episode !== undefined ? 1 : 1_000_000));
const seed = Number(flag('--seed') ?? (Date.now() % 0x7fffffff));
const timeLimitMs = Number(flag('--time-limit') ?? 3_600) * 1000;
const start = oneOf('--start', START_STATES); const mode = oneOf('--mode', MODES); const variant = oneOf('--variant', VARIANTS);

const started = performance.now();
let peakRssMb = 0; let lastPrint = started; let timedOut = false;
const rate = (r: StateFuzzReport): number => Math.round(r.inputs / ((performance.now() - started) / 1000));
class TimeLimit extends Error {}

console.log(`fuzz-ike-state: seed ${seed}, ${count} inputs${episode !== undefined ? ` from episode ${episode}` : ''}`);
let report: StateFuzzReport | null = null;
let failure: StateFuzzFailure | null = null;
try {
  report = await runStateFuzz({
    seed, inputs: count,
    ...(start ? { start } : {}), ...(mode ? { mode } : {}), ...(variant ? { variant } : {}),
    ...(episode !== undefined ? { firstEpisode: Number(episode) } : {}),
    ...(flag('--episode-inputs') ? { episodeInputs: Number(flag('--episode-inputs')) } : {}),
    ...(flag('--recover-every') ? { recoverEvery: Number(flag('--recover-every')) } : {}),
    onEpisode: (r) => {
      report = r;
      if (r.episodes % 16 === 0) peakRssMb = Math.max(peakRssMb, process.memoryUsage().rss / 2 ** 20);
      const now = performance.now();
      if (now - lastPrint > 30_000) {
        lastPrint = now;
        console.log(`  ${r.inputs} inputs, ${r.episodes} episodes, ${rate(r)}/s, RSS ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MiB`);
      }
      if (now - started > timeLimitMs) throw new TimeLimit();
    },
  });
} catch (e) {
  if (e instanceof TimeLimit) timedOut = true;
  else if (e instanceof StateFuzzFailure) failure = e;
  else throw e;
}
peakRssMb = Math.max(peakRssMb, process.memoryUsage().rss / 2 ** 20);
const seconds = (performance.now() - started) / 1000;
if (failure) console.log(`invariant broken: ${failure.message}`);
if (report !== null) {
  const r: StateFuzzReport = report;
  const sorted = (o: Record<string, number>): string => Object.entries(o).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(', ');
  console.log(`drops by reason: ${sorted(r.drops)}`);
  console.log(`error events of the genuine engines: ${sorted(r.errors)}`);
  console.log(`inputs by start state: ${sorted(r.byStart)}`);
  console.log(`inputs by mode: ${sorted(r.byMode)}; by receiver: ${sorted(r.byTarget)}`);
  console.log(`steps by action: ${sorted(r.byAction)}; timer steps ${r.timerSteps}, operator steps ${r.operatorSteps}, recoveries ${r.recoveries} (${r.freshRecoveries} with a new IKE SA after forged input), genuine ike-up ${r.genuineIkeUp}`);
  console.log(`peak state per engine: ${Object.entries(r.peak).map(([k, v]) => `${k} ${v}/${BOUNDS[k as keyof typeof BOUNDS]}`).join(', ')}`);
}
const result = failure ? 'FAIL' : timedOut ? 'TIME LIMIT' : 'PASS';
const inputs = failure ? '(see above)' : String(report === null ? 0 : (report as StateFuzzReport).inputs);
console.log(`fuzz-ike-state: ${result} — ${inputs} inputs in ${seconds.toFixed(1)} s (${report === null ? 0 : rate(report)}/s), seed ${seed}, peak RSS ${peakRssMb.toFixed(0)} MiB`);
process.exitCode = failure ? 1 : timedOut ? 2 : 0;
