// bench/handshake-vs-strongswan's responders and what it reads of them: the agent as a user runs
// it (bundle, DaemonSet flags, one IPsecTunnel per initiator) and charon with one connection for
// all; per-process CPU and memory from /proc, XFRM counts, the agent's event-loop delay and warnings.
import { execFileSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { reqidFor } from '../../src/agent/tunnel.js';
import type { Netns } from '../../e2e/lib/netns.js';
import { agentBundle } from '../../e2e/vm/agent-harness.js';
import { certFile, keyFile } from './certs.js';
import { ESP_PROPOSAL, IKE_PROPOSAL, PSK, RESPONDER, RESPONDER_SUBNET, inner, outer, sleep } from './scenario.js';

export interface ProcStat { readonly cpuTicks: number; readonly childTicks: number; readonly rssKb: number; readonly anonKb: number; readonly hwmKb: number; readonly threads: number }

export const CLK_TCK = ((): number => { try { return Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100; } catch { return 100; } })();

/** utime + stime + cutime + cstime (all threads, reaped children) and memory of one process. */
export function procStat(pid: number): ProcStat {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // fields from #3 (state) on
  const ticks = [11, 12, 13, 14].reduce((s, k) => s + Number(f[k]), 0); // #14..#17
  const childTicks = Number(f[13]) + Number(f[14]); // cutime, cstime: processes it started and reaped
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0);
  return { cpuTicks: ticks, childTicks, rssKb: kb('VmRSS'), anonKb: kb('RssAnon'), hwmKb: kb('VmHWM'), threads: kb('Threads') };
}

/** CPU ticks per thread (name#tid), to see where a process spends beyond its main thread. */
export function threadTicks(pid: number): Map<string, number> {
  const m = new Map<string, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const st = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
      m.set(`${st.slice(st.indexOf('(') + 1, st.lastIndexOf(')'))}#${tid}`, Number(f[11]) + Number(f[12]));
    } catch { /* thread ended */ }
  }
  return m;
}

export function pidOf(ns: Netns, comm: string): number {
  const pids = execFileSync('ip', ['netns', 'pids', ns.name], { timeout: 10_000 }).toString().split(/\s+/).filter(Boolean).map(Number);
  for (const p of pids) { try { if (readFileSync(`/proc/${p}/comm`, 'utf8').trim() === comm) return p; } catch { /* gone */ } }
  throw new Error(`no ${comm} process in ${ns.name}`);
}

export async function xfrmCounts(ns: Netns): Promise<{ states: number; policies: number }> {
  const n = async (what: string): Promise<number> => (await ns.run('ip', ['xfrm', what, 'list'], { timeoutMs: 120_000 })).stdout.split('\n').filter((l) => l.startsWith('src ')).length;
  return { states: await n('state'), policies: await n('policy') };
}

/** certs: a bench/handshake/certs.ts directory (ECDSA certificates); the PSK file without. */
export function agentYaml(n: number, certs?: string): string {
  const auth = certs === undefined ? '{psk: {file: psk}}' : `{certificate: {certFile: ${certFile(certs, 'agent')}, keyFile: ${keyFile(certs, 'agent')}, caFile: ${certFile(certs, 'ca')}}}`;
  const docs: string[] = [];
  const used = new Set<number>();
  for (let i = 0; i < n; i++) {
    // Tunnel names map to stable reqids (FNV-1a, 24 bits); skip the rare name whose reqid collides.
    let name = `ini-${i}`;
    for (let k = 0; used.has(reqidFor(name)) && k < 100; k++) name = `ini-${i}-${k}`;
    used.add(reqidFor(name));
    docs.push(`apiVersion: kipsec.io/v1alpha1
kind: IPsecTunnel
metadata: {name: ${name}}
spec:
  local: {address: ${RESPONDER.agent.address}, subnets: [${RESPONDER_SUBNET}]}
  remote: {address: ${outer(i)}, ${certs === undefined ? '' : `id: ${outer(i)}, `}subnets: [${inner(i)}/32]}
  auth: ${auth}
  ike: {proposals: [${IKE_PROPOSAL}]}
  esp: {proposals: [${ESP_PROPOSAL}]}
  dpd: {interval: 30s}
  startAction: respond
`);
  }
  return docs.join('---\n');
}

/** charon's files for --auth cert (StrongSwan.start's `files`): CA, its certificate and key. */
export function swanFiles(certs: string): Record<string, string> {
  return { 'x509ca/ca.crt': readFileSync(certFile(certs, 'ca'), 'utf8'), 'x509/swan.crt': readFileSync(certFile(certs, 'swan'), 'utf8'), 'private/swan.key': readFileSync(keyFile(certs, 'swan'), 'utf8') };
}

/** certs: ECDSA certificates (swanFiles), pubkey authentication both ways; the PSK without. */
export function swanctl(certs?: string): string {
  const local = certs === undefined ? 'auth = psk' : 'auth = pubkey\n      certs = swan.crt';
  const secrets = certs === undefined ? `secrets {\n  ike-bench {\n    secret = "${PSK}"\n  }\n}\n` : '';
  return `connections {
  bench {
    version = 2
    local_addrs = ${RESPONDER.swan.address}
    remote_addrs = 10.64.0.0/16
    proposals = ${IKE_PROPOSAL}
    dpd_delay = 30s
    local {
      ${local}
      id = ${RESPONDER.swan.address}
    }
    remote {
      auth = ${certs === undefined ? 'psk' : 'pubkey'}
      id = %any
    }
    children {
      bench {
        local_ts = ${RESPONDER_SUBNET}
        remote_ts = 10.65.0.0/16
        esp_proposals = ${ESP_PROPOSAL}
        start_action = none
      }
    }
  }
}
${secrets}`;
}

/**
 * Preloaded into the agent (--import): its event-loop delay (perf_hooks.monitorEventLoopDelay, 10 ms
 * resolution, as prom-client samples it). On SIGUSR2 it writes the histogram since the last
 * signal to eld.json beside itself, in ms, and starts a new one: one reading per rate slice.
 */
const ELD_PROBE = `import { monitorEventLoopDelay } from 'node:perf_hooks';
import { writeFileSync } from 'node:fs';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
const h = monitorEventLoopDelay({ resolution: 10 });
h.enable();
let seq = 0;
process.on('SIGUSR2', () => {
  const ms = (ns) => ns / 1e6;
  writeFileSync(new URL('./eld.json', import.meta.url), JSON.stringify({ seq: ++seq, p50: ms(h.percentile(50)), p99: ms(h.percentile(99)), max: ms(h.max), mean: ms(h.mean) }));
  h.reset();
});
// SIGWINCH: memory after a full GC (live JS heap, ArrayBuffer/external bytes) and glibc's malloc
// figures (the ESP addon's espMallocInfo: in use, free inside the heap; then RSS after
// malloc_trim) into mem.json, and with KIPSEC_BENCH_HEAPSNAP a heap snapshot beside it
// (bench/handshake/heap-summary.ts reads it).
v8.setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc');
let addon = null;
try { addon = createRequire(import.meta.url)(process.env.KIPSEC_ESP_ADDON ?? resolve(dirname(process.argv[1]), '../../native/build/Release/kipsec_esp.node')); } catch { /* no addon */ }
let memSeq = 0;
process.on('SIGWINCH', () => {
  gc(); gc();
  const m = process.memoryUsage();
  const spaces = Object.fromEntries(v8.getHeapSpaceStatistics().map((s) => [s.space_name, s.space_used_size]));
  const malloc = addon?.espMallocInfo ? addon.espMallocInfo(false) : undefined;
  const trimmed = addon?.espMallocInfo ? { ...addon.espMallocInfo(true), rss: process.memoryUsage().rss } : undefined;
  const snap = process.env.KIPSEC_BENCH_HEAPSNAP ? v8.writeHeapSnapshot(new URL('./agent-' + (memSeq + 1) + '.heapsnapshot', import.meta.url).pathname) : undefined;
  writeFileSync(new URL('./mem.json', import.meta.url), JSON.stringify({ seq: ++memSeq, rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers, spaces, malloc, trimmed, snap }));
});
`;

export interface EventLoopDelay { readonly seq: number; readonly p50: number; readonly p99: number; readonly max: number; readonly mean: number }

/** Signal the agent's probe (ELD_PROBE) and wait for a newer `file` in `dir` than the last one; null if it did not answer. */
async function askAgent<T extends { readonly seq: number }>(pid: number, dir: string, file: string, signal: NodeJS.Signals, tries: number): Promise<T | null> {
  const path = join(dir, file);
  const last = existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as T).seq : 0;
  process.kill(pid, signal);
  for (let i = 0; i < tries; i++) {
    await sleep(100);
    try { const r = JSON.parse(readFileSync(path, 'utf8')) as T; if (r.seq > last) return r; } catch { /* not yet */ }
  }
  return null;
}

/** The agent's event-loop delay since the previous call, or null if it did not answer. */
export function agentEventLoopDelay(pid: number, dir: string): Promise<EventLoopDelay | null> { return askAgent<EventLoopDelay>(pid, dir, 'eld.json', 'SIGUSR2', 50); }

export interface MallocInfo { readonly heapBytes: number; readonly mmapBytes: number; readonly inUseBytes: number; readonly freeBytes: number; readonly topFreeBytes: number }
export interface AgentMemory {
  readonly seq: number; readonly rss: number; readonly heapUsed: number; readonly heapTotal: number; readonly external: number; readonly arrayBuffers: number; readonly spaces: Readonly<Record<string, number>>;
  /** glibc's figures, then again after malloc_trim(0) with the RSS then. */
  readonly malloc?: MallocInfo; readonly trimmed?: MallocInfo & { readonly rss: number };
  readonly snap?: string;
}

/** The agent's memory after a full GC (ELD_PROBE's SIGWINCH), or null if it did not answer; a heap snapshot with KIPSEC_BENCH_HEAPSNAP. */
export function agentMemory(pid: number, dir: string): Promise<AgentMemory | null> { return askAgent<AgentMemory>(pid, dir, 'mem.json', 'SIGWINCH', 1200); }

/** NODE_OPTIONS of the agent container in deploy/agent.yaml (the DaemonSet users install). */
export function deployedNodeOptions(): string {
  const ds = parseYaml(readFileSync(fileURLToPath(new URL('../../deploy/agent.yaml', import.meta.url)), 'utf8')) as
    { spec?: { template?: { spec?: { containers?: Array<{ name?: string; env?: Array<{ name?: string; value?: string }> }> } } } };
  const agent = ds.spec?.template?.spec?.containers?.find((c) => c.name === 'agent');
  return agent?.env?.find((e) => e.name === 'NODE_OPTIONS')?.value ?? '';
}

/** The agent as a user runs it (the CLI bundle, with the DaemonSet's Node flags), its log in a file like charon's. */
export async function startAgent(ns: Netns, n: number, timeoutMs: number, datapath: 'kernel' | 'userspace', certs?: string): Promise<{ pid: number; dir: string; child: ChildProcess }> {
  const dir = mkdtempSync(join(tmpdir(), 'kipsec-bench-agent-'));
  writeFileSync(join(dir, 'psk'), `${PSK}\n`, { mode: 0o600 });
  writeFileSync(join(dir, 'tunnels.yaml'), agentYaml(n, certs));
  const socket = join(dir, 'agent.sock');
  const log = openSync(join(dir, 'agent.log'), 'a');
  // KIPSEC_BENCH_PROFILE=1: a V8 CPU profile of the agent, written when it exits (SIGTERM below).
  const prof = process.env['KIPSEC_BENCH_PROFILE'] ? ['--cpu-prof', `--cpu-prof-dir=${process.env['VM_OUT'] ?? dir}`] : [];
  // Node/V8 flags: the DaemonSet's NODE_OPTIONS, or KIPSEC_BENCH_NODE_FLAGS to compare runs ("" for none).
  const flags = (process.env['KIPSEC_BENCH_NODE_FLAGS'] ?? deployedNodeOptions()).split(/\s+/).filter(Boolean);
  writeFileSync(join(dir, 'eld-probe.mjs'), ELD_PROBE);
  const child = ns.spawn(process.execPath, [...prof, ...flags, '--import', join(dir, 'eld-probe.mjs'), agentBundle(), 'agent', '--standalone', '--config', join(dir, 'tunnels.yaml'), '--control-socket', socket, '--log-level', 'info', '--datapath', datapath], { stdio: ['ignore', log, log] });
  closeSync(log);
  const deadline = Date.now() + timeoutMs;
  while (!existsSync(socket)) {
    if (child.exitCode !== null) throw new Error(`agent exited ${child.exitCode}:\n${readFileSync(join(dir, 'agent.log'), 'utf8').slice(-4000)}`);
    if (Date.now() > deadline) throw new Error(`agent did not listen within ${timeoutMs} ms`);
    await sleep(200);
  }
  return { pid: child.pid ?? 0, dir, child };
}

/** The agent's warnings and errors of the run, counted by message (a failed install says why here). */
export function agentWarnings(file: string): string {
  const counts = new Map<string, number>();
  let text: string;
  try { text = readFileSync(file, 'utf8'); } catch { return `agent log ${file} unreadable`; }
  for (const line of text.split('\n')) {
    if (!line.includes('"level":"warn"') && !line.includes('"level":"error"')) continue;
    let key = line.slice(0, 200);
    try { const j = JSON.parse(line) as { msg?: string; err?: string; code?: string }; key = [j.msg, j.code, j.err].filter(Boolean).join(': ').slice(0, 240); } catch { /* keep the raw line */ }
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  if (counts.size === 0) return 'agent log: no warnings or errors';
  return `agent log warnings/errors:\n${[...counts].sort((a, b) => b[1] - a[1]).slice(0, 8).map(([k, n]) => `  ${String(n).padStart(5)} × ${k}`).join('\n')}`;
}

/** Whether this kernel takes an ESP state (AES-GCM), else why not. Retried: the first use loads modules. */
export async function espProblem(ns: Netns): Promise<string | null> {
  let why = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    const r = await ns.run('ip', ['xfrm', 'state', 'add', 'src', '192.0.2.9', 'dst', '192.0.2.8', 'proto', 'esp', 'spi', '1', 'aead', 'rfc4106(gcm(aes))', `0x${'42'.repeat(36)}`, '128'], { check: false, timeoutMs: 60_000 });
    await ns.run('ip', ['xfrm', 'state', 'flush'], { check: false });
    if (r.code === 0) return null;
    why = r.stderr.trim() || `exit ${r.code}`;
    await sleep(2_000);
  }
  return why;
}
