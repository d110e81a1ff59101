// Codec fuzz in CI (issue 14 "Hardening"): a bounded run of the generator behind
// scripts/fuzz-ike-codec.ts, on a fixed seed and on a fresh one each run (printed; KIPSEC_FUZZ_SEED
// reruns it). Long runs: `npx tsx scripts/fuzz-ike-codec.ts 1000000 --seed N`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runCodecFuzz, type CodecFuzzReport } from './codec-fuzz.js';

function passed(r: CodecFuzzReport): void {
  assert.equal(r.failures, 0, `seed ${r.seed}:\n${r.failureSamples.join('\n')}`);
  // The generator must get past the header: many inputs decode, many more are refused as ParseError.
  assert.ok(r.ok > r.inputs / 20 && r.parseErrors > r.inputs / 4, JSON.stringify({ ok: r.ok, parseErrors: r.parseErrors, inputs: r.inputs }));
}

test('80,000 mutated and random datagrams: the decoders throw only ParseError, and whatever decodes re-encodes to the same bytes (DESIGN.md §9; RFC 7296 §3)', () => {
  passed(runCodecFuzz({ count: 80_000, seed: 20_261_127 }));
});

test('the codec fuzz on a fresh seed each run (KIPSEC_FUZZ_SEED reruns one): the same checks (DESIGN.md §9)', (t) => {
  const seed = Number(process.env['KIPSEC_FUZZ_SEED'] ?? (Date.now() % 0x7fffffff));
  t.diagnostic(`seed ${seed}`);
  passed(runCodecFuzz({ count: 40_000, seed }));
});
