// bench/handshake-vs-strongswan --burst N: N initiators handshake with one fresh responder at
// once, as every peer of a node does after the node reboots or the cluster's CA rotates. Each
// responder gets its burst alone (the other one idle, not yet touched); the figure is the time
// until the last initiator has its Child SA, and whether any gave up (the generator keeps the
// engine's own retransmission schedule, charon's default: ~165 s). Cookies (both sides: threshold
// 10 half-open SAs) and each side's half-open limits are part of what is measured. After the
// burst the responder idles 20 s and its RSS is read: memory holding N SAs that came in at once.
// Then it is killed (SIGKILL: no N Deletes to load the generator during the other's burst; the
// agent gets SIGTERM with KIPSEC_BENCH_PROFILE, so it writes its CPU profile).
import type { Netns } from '../../e2e/lib/netns.js';
import type { GeneratorProcess } from './generator.js';
import { CLK_TCK, procStat, xfrmCounts, type AgentMemory, type ProcStat } from './responders.js';
import { sleep, type BurstReply, type Target } from './scenario.js';

export interface BurstRig {
  readonly g: GeneratorProcess;
  readonly n: number;
  readonly order: readonly Target[];
  readonly pids: Readonly<Record<Target, number>>;
  readonly ns: Readonly<Record<Target, Netns>>;
  readonly idle: Readonly<Record<Target, ProcStat>>;
  readonly out: (line?: string) => void;
  readonly stamp: () => string;
  /** The agent's `kipsec status --json` (what its IKE engine and ESP engine turned away), if it answers. */
  readonly agentStatus: () => Promise<unknown>;
  /** The agent's memory after a full GC (V8 heap, external), read after the RSS samples. */
  readonly agentMemory: () => Promise<AgentMemory | null>;
}

/**
 * Where the agent's RSS growth per SA went: live V8 heap (after GC), ArrayBuffer/external
 * memory, and the rest of RSS (the ESP engine's and OpenSSL's malloc, glibc arenas, V8 heap
 * pages not yet returned: committed but free).
 */
function memorySplit(a: AgentMemory, b: AgentMemory, n: number): string {
  const kib = (x: number): string => (x / 1024 / Math.max(1, n)).toFixed(1);
  const rest = (m: AgentMemory): number => m.rss - m.heapUsed - m.external;
  const mib = (x: number): string => (x / 1048576).toFixed(1);
  return `agent after GC: RSS ${mib(b.rss)} MiB = V8 heap used ${mib(b.heapUsed)} (${mib(b.heapTotal)} committed) + external ${mib(b.external)} (ArrayBuffers ${mib(b.arrayBuffers)}) + rest ${mib(rest(b))}; `
    + `per SA: heap ${kib(b.heapUsed - a.heapUsed)} KiB, committed heap ${kib(b.heapTotal - a.heapTotal)} KiB, external ${kib(b.external - a.external)} KiB, rest ${kib(rest(b) - rest(a))} KiB, RSS ${kib(b.rss - a.rss)} KiB`
    + (a.malloc && b.malloc && a.trimmed && b.trimmed
      ? `\n    malloc (all arenas): in use ${mib(b.malloc.inUseBytes)} MiB, free inside its heaps ${mib(b.malloc.freeBytes)} MiB; per SA: in use ${kib(b.malloc.inUseBytes - a.malloc.inUseBytes)} KiB, free ${kib(b.malloc.freeBytes - a.malloc.freeBytes)} KiB; `
        + `RSS after malloc_trim(0) ${mib(b.trimmed.rss)} MiB (${kib(b.trimmed.rss - a.trimmed.rss)} KiB/SA)`
      : '');
}

/** Nonzero IKE drops by reason and the ESP engine's IKE counters (ike, ikeDropped) from the agent's status. */
function dropsOf(status: unknown): string {
  const st = status as { ike?: { drops?: Record<string, number> }; esp?: { counters?: Record<string, number> } } | undefined;
  const ike = Object.entries(st?.ike?.drops ?? {}).filter(([, v]) => v > 0).map(([k, v]) => `${k} ${v}`);
  const esp = Object.entries(st?.esp?.counters ?? {}).filter(([k]) => k.startsWith('ike')).map(([k, v]) => `${k} ${v}`);
  if (st === undefined) return 'its status did not answer';
  return `IKE engine drops: ${ike.join(', ') || 'none'}; ESP engine: ${st.esp ? esp.join(', ') || 'no IKE counters' : '(kernel data path)'}`;
}

const LABEL: Readonly<Record<Target, string>> = { agent: 'kipsec agent', swan: 'strongSwan charon' };
const mb = (kb: number): string => (kb / 1024).toFixed(1);
const s = (ms: number): string => (ms / 1000).toFixed(1);

/** SIGKILL, or SIGTERM when the agent must write its CPU profile (KIPSEC_BENCH_PROFILE); waits up to 120 s. */
async function stop(pid: number, signal: 'SIGTERM' | 'SIGKILL'): Promise<void> {
  try { process.kill(pid, signal); } catch { return; }
  for (let i = 0; i < 1200; i++) {
    try { process.kill(pid, 0); } catch { return; }
    await sleep(100);
  }
}

/** The namespace's UDP counters (/proc/net/snmp): datagrams the kernel dropped before the responder read them. */
async function udpDrops(ns: Netns): Promise<string> {
  const text = (await ns.run('cat', ['/proc/net/snmp'], { check: false })).stdout;
  const [names, values] = text.split('\n').filter((l) => l.startsWith('Udp:'));
  if (!names || !values) return 'no UDP counters';
  const v = new Map(names.split(/\s+/).slice(1).map((k, i) => [k, values.split(/\s+/)[i + 1] ?? '?']));
  return `kernel UDP: InDatagrams ${v.get('InDatagrams')}, RcvbufErrors ${v.get('RcvbufErrors')}, InErrors ${v.get('InErrors')}`;
}

export async function runBurst(r: BurstRig): Promise<void> {
  const rows: { t: Target; b: BurstReply; cpuS: number; held: ProcStat; xfrm: { states: number; policies: number } }[] = [];
  for (const t of r.order) {
    const before = procStat(r.pids[t]);
    const memBefore = t === 'agent' ? await r.agentMemory() : null;
    r.out(`[${r.stamp()}] ${t}: ${r.n} initiators at once`);
    const b = await r.g.send<BurstReply>({ cmd: 'burst', target: t, n: r.n, timeoutMs: 900_000 }, 960_000);
    const after = procStat(r.pids[t]);
    const cpuS = (after.cpuTicks - before.cpuTicks) / CLK_TCK;
    const failures = Object.entries(b.failures).map(([k, v]) => `${v} × ${k}`).join(', ');
    r.out(`    ${b.done} established, last after ${s(b.lastMs)} s (p50 ${s(b.p50Ms)} s, p90 ${s(b.p90Ms)} s, p99 ${s(b.p99Ms)} s); ${b.failed} failed${failures ? ` (${failures})` : ''}; responder CPU ${cpuS.toFixed(1)} s, generator CPU ${s(b.cpuMs)} s`);
    r.out(`    ${t}: ${await udpDrops(r.ns[t])}`);
    if (t === 'agent') r.out(`    agent: ${dropsOf(await r.agentStatus().catch(() => undefined))}`);
    await sleep(20_000);
    const held = procStat(r.pids[t]);
    const xfrm = await xfrmCounts(r.ns[t]);
    r.out(`    after 20 s idle: RSS ${mb(held.rssKb)} MiB (idle before the burst ${mb(r.idle[t].rssKb)} MiB), peak ${mb(held.hwmKb)} MiB; XFRM states/policies ${xfrm.states}/${xfrm.policies}`);
    if (t === 'agent') {
      const memAfter = await r.agentMemory();
      r.out(memBefore && memAfter ? `    ${memorySplit(memBefore, memAfter, b.done)}` : '    agent memory probe did not answer');
      if (memAfter?.snap) r.out(`    heap snapshot: ${memAfter.snap} (before the burst: ${memBefore?.snap ?? 'none'})`);
    }
    rows.push({ t, b, cpuS, held, xfrm });
    await stop(r.pids[t], t === 'agent' && process.env['KIPSEC_BENCH_PROFILE'] ? 'SIGTERM' : 'SIGKILL');
  }
  r.out('');
  r.out(`burst: ${r.n} initiators at once against a fresh responder (order: ${r.order.join(', ')})`);
  r.out(`  ${'responder'.padEnd(20)}${'all up (s)'.padStart(11)}${'p50 (s)'.padStart(9)}${'p99 (s)'.padStart(9)}${'failed'.padStart(8)}${'resp. CPU s'.padStart(13)}${'RSS MiB'.padStart(9)}${'KiB/SA'.padStart(8)}${'peak MiB'.padStart(10)}`);
  for (const { t, b, cpuS, held } of rows) {
    const perSa = (held.rssKb - r.idle[t].rssKb) / Math.max(1, b.done);
    r.out(`  ${LABEL[t].padEnd(20)}${s(b.lastMs).padStart(11)}${s(b.p50Ms).padStart(9)}${s(b.p99Ms).padStart(9)}${String(b.failed).padStart(8)}${cpuS.toFixed(1).padStart(13)}${mb(held.rssKb).padStart(9)}${perSa.toFixed(1).padStart(8)}${mb(held.hwmKb).padStart(10)}`);
  }
  const a = rows.find((x) => x.t === 'agent'); const c = rows.find((x) => x.t === 'swan');
  if (a && c) {
    r.out(`  agent / charon: time to all up ${(a.b.lastMs / Math.max(1, c.b.lastMs)).toFixed(2)}× (lower is better), responder CPU ${(a.cpuS / Math.max(0.01, c.cpuS)).toFixed(2)}×, RSS holding them ${(a.held.rssKb / Math.max(1, c.held.rssKb)).toFixed(2)}× (target ≤ 1.5× at 5,000)`);
  }
  r.out('  ("KiB/SA": RSS after the burst minus RSS before it, per established SA; "peak": VmHWM over the process\'s life)');
}
