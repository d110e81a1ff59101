// bench/xfrm — XFRM install rate of src/xfrm next to `ip -batch` doing the same work in the same
// run and the same kind of fresh network namespace. Policies on any kernel (the host accepts
// them); SAs only where the kernel has ESP (the kernel-lane VM: `bash e2e/vm-run.sh bench/xfrm.ts`).
//   node --import tsx bench/xfrm.ts [--sizes 1000,10000]
// Each child process first installs and flushes 4k entries (JIT warm-up; "cold 1k" is the first
// of those), then for each size N: kipsec batched (addPolicies/addSas: requests pipelined in 64 KiB datagrams),
// kipsec one-at-a-time (await each ACK), and `ip -batch` (iproute2, one process). Growth: the
// batched runs are timed per 1k chunk; the last chunk's rate over the first one's shows whether
// installing slows down as the table fills (medians over XFRM_BENCH_ROUNDS=3 alternating rounds).
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SecretBytes } from '../src/common/secret.js';
import { XfrmClient } from '../src/xfrm/client.js';
import type { PolicySpec } from '../src/xfrm/policy.js';
import type { SaSpec } from '../src/xfrm/sa.js';
import { Netns } from '../e2e/lib/netns.js';

const SELF = fileURLToPath(import.meta.url);
const ROUNDS = Number(process.env.XFRM_BENCH_ROUNDS ?? 3);
const median = (xs: readonly number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]!; };
type Kind = 'policy' | 'sa';

const KEY = new SecretBytes(new Uint8Array(20).fill(0x42));
const KEY_HEX = '0x' + '42'.repeat(20);
const ip4 = (i: number, base: number): string => `10.${base + ((i >> 16) & 0x3f)}.${(i >> 8) & 0xff}.${i & 0xff}`;

function policy(i: number): PolicySpec {
  return { selector: { src: `${ip4(i, 0)}/32`, dst: '10.200.0.0/16' }, dir: 'out', priority: 100, templates: [{ src: '192.0.2.1', dst: '192.0.2.2', proto: 'esp', reqid: i + 1, mode: 'tunnel' }] };
}
function policyLine(i: number): string {
  return `xfrm policy add src ${ip4(i, 0)}/32 dst 10.200.0.0/16 dir out priority 100 tmpl src 192.0.2.1 dst 192.0.2.2 proto esp reqid ${i + 1} mode tunnel`;
}
function sa(i: number): SaSpec {
  return { src: '192.0.2.1', dst: '192.0.2.2', spi: 0x10000 + i, reqid: i + 1, mode: 'tunnel', aead: { name: 'rfc4106(gcm(aes))', key: KEY, icvBits: 128 } };
}
function saLine(i: number): string {
  return `xfrm state add src 192.0.2.1 dst 192.0.2.2 proto esp spi ${0x10000 + i} reqid ${i + 1} mode tunnel aead rfc4106(gcm(aes)) ${KEY_HEX} 128`;
}

interface Result { kind: Kind; n: number; coldPerSec: number; batchedPerSec: number; serialPerSec: number; ipBatchPerSec: number; firstChunkPerSec?: number; lastChunkPerSec?: number; ipFirstChunkPerSec?: number; ipLastChunkPerSec?: number }

async function measure(kind: Kind, n: number): Promise<Result> {
  const c = XfrmClient.open({ timeoutMs: 60_000 });
  const flush = async (): Promise<void> => { if (kind === 'policy') await c.flushPolicies(); else await c.flushSas('esp'); };
  const add = (from: number, to: number): Promise<(Error | null)[]> => (kind === 'policy'
    ? c.addPolicies(Array.from({ length: to - from }, (_, k) => policy(from + k)))
    : c.addSas(Array.from({ length: to - from }, (_, k) => sa(from + k))));
  const check = (res: (Error | null)[]): void => { const bad = res.find((e) => e); if (bad) throw bad; };

  await flush();
  // Warm-up (JIT, socket buffers) with the same kind of request, then a clean table: the agent is
  // a long-running process, so the steady state is what counts. The cold rate is reported too.
  const w0 = performance.now();
  check(await add(n, n + 1000));
  const coldPerSec = 1000 / ((performance.now() - w0) / 1000);
  for (let i = 0; i < 3; i++) { check(await add(n + 1000 * (i + 1), n + 1000 * (i + 2))); }
  await flush();
  // Rounds alternate kipsec batched and `ip -batch` so both see the same machine load (these
  // machines are shared; single runs vary several-fold); medians are reported.
  // `ip -batch` gets the same work as one file per 1k chunk, run back to back, so its growth is
  // measured the same way (one process start per 1k lines is noise next to 1k kernel requests).
  const chunk = Math.min(1000, n);
  const files: string[] = [];
  for (let i = 0; i < n; i += chunk) {
    const file = join(tmpdir(), `kipsec-bench-${process.pid}-${kind}-${n}-${i}.batch`);
    writeFileSync(file, Array.from({ length: Math.min(chunk, n - i) }, (_, k) => (kind === 'policy' ? policyLine(i + k) : saLine(i + k))).join('\n') + '\n');
    files.push(file);
  }
  const batched: number[] = []; const ipb: number[] = []; const first: number[] = []; const last: number[] = [];
  const ipFirst: number[] = []; const ipLast: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const chunkRates: number[] = [];
    const t0 = performance.now();
    for (let i = 0; i < n; i += chunk) {
      const c0 = performance.now();
      check(await add(i, Math.min(n, i + chunk)));
      chunkRates.push(chunk / ((performance.now() - c0) / 1000));
    }
    batched.push(n / ((performance.now() - t0) / 1000));
    first.push(chunkRates[0]!); last.push(chunkRates[chunkRates.length - 1]!);
    await flush();
    const b0 = performance.now();
    const ipRates: number[] = [];
    for (const file of files) {
      const f0 = performance.now();
      const r = spawnSync('ip', ['-batch', file], { encoding: 'utf8' });
      ipRates.push(chunk / ((performance.now() - f0) / 1000));
      if (r.status !== 0) throw new Error(`ip -batch failed: ${r.stderr.slice(0, 300)}`);
    }
    ipb.push(n / ((performance.now() - b0) / 1000));
    ipFirst.push(ipRates[0]!); ipLast.push(ipRates[ipRates.length - 1]!);
    await flush();
  }
  for (const file of files) rmSync(file);

  // One request at a time (await each ACK), on an empty table, for at most 1k entries: it shows
  // the per-request round trip, which does not depend on N (and takes minutes under emulation).
  const serialN = Math.min(n, 1000);
  const s0 = performance.now();
  for (let i = 0; i < serialN; i++) {
    if (kind === 'policy') await c.addPolicy(policy(i)); else await c.addSa(sa(i));
  }
  const serialPerSec = serialN / ((performance.now() - s0) / 1000);
  await flush();
  const batchedPerSec = median(batched); const ipBatchPerSec = median(ipb);
  const chunkRates = n > chunk ? [median(first), median(last), median(ipFirst), median(ipLast)] : [];
  c.close();
  return {
    kind, n, coldPerSec, batchedPerSec, serialPerSec, ipBatchPerSec,
    ...(chunkRates.length > 1 ? { firstChunkPerSec: chunkRates[0]!, lastChunkPerSec: chunkRates[1]!, ipFirstChunkPerSec: chunkRates[2]!, ipLastChunkPerSec: chunkRates[3]! } : {}),
  };
}

function espAvailable(ns: Netns): boolean {
  const r = spawnSync('ip', ['netns', 'exec', ns.name, 'ip', 'xfrm', 'state', 'add', 'src', '192.0.2.9', 'dst', '192.0.2.8', 'proto', 'esp', 'spi', '1', 'aead', 'rfc4106(gcm(aes))', KEY_HEX, '128'], { encoding: 'utf8' });
  spawnSync('ip', ['netns', 'exec', ns.name, 'ip', 'xfrm', 'state', 'flush']);
  return r.status === 0;
}

const fmt = (x: number): string => Math.round(x).toLocaleString('en-US').padStart(9);

// Printed lines; also written to $VM_OUT/xfrm-bench.txt in the kernel lane (node --test keeps stdout to itself).
const lines: string[] = [];
function out(line: string): void {
  console.log(line);
  lines.push(line);
  if (process.env.VM_OUT) { mkdirSync(process.env.VM_OUT, { recursive: true }); writeFileSync(join(process.env.VM_OUT, 'xfrm-bench.txt'), lines.join('\n') + '\n'); }
}

async function main(): Promise<void> {
  const arg = process.argv.indexOf('--sizes');
  const sizes = (arg > 0 ? process.argv[arg + 1]! : '1000,10000').split(',').map(Number);
  const kernel = execFileSync('uname', ['-r']).toString().trim();
  out(`bench/xfrm on kernel ${kernel}, node ${process.version}; rates in installs/s (higher is better)`);
  out(`${'what'.padEnd(8)} ${'N'.padStart(6)} ${'cold 1k'.padStart(9)} ${'kipsec batched'.padStart(15)} ${'1-by-1 (1k)'.padStart(14)} ${'ip -batch'.padStart(10)} ${'batched/ip'.padStart(10)}  growth: last 1k / first 1k`);
  const ns = await Netns.create(null, 'bench');
  try {
    const kinds: Kind[] = espAvailable(ns) ? ['policy', 'sa'] : ['policy'];
    for (const kind of kinds) {
      for (const n of sizes) {
        const r = spawnSync('ip', ['netns', 'exec', ns.name, 'env', `XFRM_BENCH=${kind}:${n}`, process.execPath, '--import', 'tsx', SELF], { encoding: 'utf8', timeout: 900_000 });
        if (r.status !== 0) { out(`${kind} ${n}: failed: ${r.stderr.slice(0, 400)}`); continue; }
        const res = JSON.parse(r.stdout.trim().split('\n').pop()!) as Result;
        const g = (a?: number, b?: number): string => (a && b ? `${(b / a).toFixed(2)}× (${fmt(a).trim()} → ${fmt(b).trim()})` : '-');
        const growth = res.firstChunkPerSec ? `kipsec ${g(res.firstChunkPerSec, res.lastChunkPerSec)}, ip ${g(res.ipFirstChunkPerSec, res.ipLastChunkPerSec)}` : '-';
        out(`${kind.padEnd(8)} ${String(n).padStart(6)} ${fmt(res.coldPerSec)} ${fmt(res.batchedPerSec).padStart(15)} ${fmt(res.serialPerSec).padStart(14)} ${fmt(res.ipBatchPerSec).padStart(10)} ${(res.batchedPerSec / res.ipBatchPerSec).toFixed(2).padStart(9)}×  ${growth}`);
      }
    }
    if (!kinds.includes('sa')) out('sa: skipped, this kernel has no ESP (run in the kernel lane: bash e2e/vm-run.sh bench/xfrm.ts)');
  } finally {
    await ns.destroy();
  }
}

const job = process.env.XFRM_BENCH;
if (job) {
  const [kind, n] = job.split(':') as [Kind, string];
  await measure(kind, Number(n)).then((r) => { console.log(JSON.stringify(r)); process.exit(0); }, (e: unknown) => { console.error(e); process.exit(1); });
} else {
  await main();
}
