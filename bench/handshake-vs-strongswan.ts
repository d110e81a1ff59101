// bench/handshake-vs-strongswan — IKEv2 responder capacity of `kipsec agent --standalone` next to
// strongSwan's charon (Debian 5.9), same machine, same proposals, same initiator load (issue 5).
// Targets: agent ≥ 1.5× charon's handshake rate; agent RSS within 2× of charon's at 1,000 IKE SAs.
//
// What runs where, and why:
//  - Both responders install real Child SAs (XFRM states + policies + routes), so they need a
//    kernel with ESP. The host kernel of these machines has none, so the wrapper
//    `bash bench/handshake-vs-strongswan.sh` runs this file inside the kernel-lane VM (Debian's
//    kernel under QEMU TCG, e2e/kernel-vm.sh). Everything runs in there — generator, agent,
//    charon — so both responders are emulated alike; absolute rates are TCG rates (several times
//    below native), the ratios are the figures. On a machine whose kernel has ESP, run it
//    directly: `node --import tsx bench/handshake-vs-strongswan.ts` (root, strongSwan installed).
//  - Three network namespaces: `gen` (the load generator) with a veth to `agent` (198.51.100.1)
//    and one to `swan` (203.0.113.1). Initiator i sends from its own outer address 10.64.x.y
//    (a local route for 10.64.0.0/16 on gen's lo, so every address binds) and asks for a Child SA
//    between its inner 10.65.x.y/32 and the responder's 10.200.0.0/16, so each Child SA gets
//    distinct policies. Each responder has 10.200.0.1 on lo, so both install routes (table 220).
//  - One load generator process: our IKEv2 engine (src/ike IkeEngine) as initiator with an
//    in-memory KernelIpsec that only hands out SPIs, one UDP socket per initiator address. The
//    same process, peers, proposals (PSK, aes256gcm16-prfsha256-x25519 / aes256gcm16) and
//    concurrency serve both responders.
//  - Responder configs, each as its users would write it for many peers: the agent gets one
//    IPsecTunnel per initiator (remote address/id = the initiator, remote subnet = its /32;
//    the agent's schema has no %any remote), charon one connection with remote_addrs
//    10.64.0.0/16, remote id %any, remote_ts 10.65.0.0/16 narrowed to each initiator's /32, and a
//    PSK without ids. Both at their default log level (agent: info to a file; charon: level 1
//    to a file), DPD every 30 s on both, everything else at defaults (cookie threshold 10 on both;
//    the default concurrency of 8 stays below it, so no COOKIE round trips).
//
// Measurements:
//  1. Memory: on fresh responders, RSS (VmRSS; RssAnon alongside) idle with the config loaded,
//     then holding 500 and 1,000 established IKE SAs with one Child SA each, each sample after
//     20 s idle; the slope between the two is the memory per SA (the kernel's XFRM state and
//     policy counts are printed as the check that both really hold them).
//  2. Rate: handshake cycles (IKE_SA_INIT + IKE_AUTH with the Child SA, then an IKE Delete, as
//     strongSwan's load-tester does with delete_after_established) at a fixed concurrency, in
//     alternating slices (agent, charon, charon, agent, …) so machine noise hits both alike; each
//     slice fills the pipeline for a ramp before its counted window. Reported:
//     - handshakes/s of wall time. The generator shares the VM's 2 vCPUs with the responder
//       (its CPU use is printed): this is the rate the whole machine sustains with that
//       responder, so the generator's own cost dilutes the ratio.
//     - handshakes per CPU-second of the responder process (utime+stime of all its threads and
//       reaped children, from /proc): the responder's capacity, independent of how the vCPUs
//       were shared. charon is multi-threaded, the agent is one Node thread plus V8's helpers.
// Figures only: nothing here asserts a timing (performance never decides pass/fail).
//
//   bash bench/handshake-vs-strongswan.sh [--rounds 4] [--slice 20] [--ramp 5] [--concurrency 8] [--sas 1000] [--warmup 10]
//   On the host kernel, both responders on their userspace data paths (kipsec's ESP engine,
//   charon's kernel-libipsec), no VM: node --import tsx bench/handshake-vs-strongswan.ts --datapath userspace
//   (KIPSEC_BENCH_THREADS=1: per-thread CPU of each responder per slice; KIPSEC_BENCH_PROFILE=1 with
//   KVM_OUT=DIR: a V8 CPU profile of the agent in DIR; KIPSEC_BENCH_NODE_FLAGS="...": the agent's
//   Node/V8 flags instead of deploy/agent.yaml's NODE_OPTIONS, "" for none)
import { execFileSync, type ChildProcess } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { copyFileSync, mkdtempSync, mkdirSync, openSync, closeSync, readdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { SecretBytes } from '../src/common/secret.js';
import { cryptoRandom, systemClock } from '../src/common/time.js';
import { IkeEngine, type PeerConfig } from '../src/ike/engine.js';
import type { Endpoint, IkeEvent, KernelIpsec } from '../src/ike/ports.js';
import { reqidFor } from '../src/agent/tunnel.js';
import { Netns, link } from '../e2e/lib/netns.js';
import { StrongSwan } from '../e2e/lib/strongswan.js';
import { agentBundle } from '../e2e/vm/agent-harness.js';
import { prepareVm } from '../e2e/vm/agent-vm.js';

// ───────────────────────────── the scenario, shared by both processes ─────────────────────────────

const TARGETS = ['agent', 'swan'] as const;
type Target = (typeof TARGETS)[number];
const RESPONDER: Readonly<Record<Target, { readonly address: string; readonly gen: string; readonly dev: string }>> = {
  agent: { address: '198.51.100.1', gen: '198.51.100.2', dev: 'eth0' },
  swan: { address: '203.0.113.1', gen: '203.0.113.2', dev: 'eth1' },
};
const IKE_PROPOSAL = 'aes256gcm16-prfsha256-x25519';
const ESP_PROPOSAL = 'aes256gcm16';
const PSK = 'kipsec bench: handshake-vs-strongswan psk';
const RESPONDER_SUBNET = '10.200.0.0/16';
/** Initiator i: outer (IKE) address 10.64.x.y, inner (traffic selector) address 10.65.x.y. */
const outer = (i: number): string => `10.64.${((i + 1) >> 8) & 255}.${(i + 1) & 255}`;
const inner = (i: number): string => `10.65.${((i + 1) >> 8) & 255}.${(i + 1) & 255}`;
const MAX_INITIATORS = 60_000;

type GenCommand =
  | { readonly cmd: 'rate'; readonly target: Target; readonly rampMs: number; readonly ms: number; readonly concurrency: number }
  | { readonly cmd: 'establish'; readonly target: Target; readonly from: number; readonly to: number; readonly concurrency: number; readonly timeoutMs: number }
  | { readonly cmd: 'exit' };

interface RateReply { readonly inWindow: number; readonly total: number; readonly failed: number; readonly windowMs: number; readonly elapsedMs: number; readonly cpuMs: number; readonly medianMs: number }
interface PoolReply { readonly done: number; readonly failed: number; readonly elapsedMs: number; readonly firstError?: string }

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const median = (xs: readonly number[]): number => { const s = [...xs].sort((a, b) => a - b); return s.length ? s[Math.floor(s.length / 2)]! : 0; };
function cpuMs(): number { const u = process.cpuUsage(); return (u.user + u.system) / 1000; }

// ───────────────────────────── the load generator (child process in `gen`) ─────────────────────────────

/** The generator's kernel: hands out SPIs, installs nothing (its Child SAs never carry traffic). */
function fakeKernel(): KernelIpsec {
  let spi = 0x100000;
  const none = (): Promise<void> => Promise.resolve();
  return {
    allocSpi: () => Promise.resolve(spi++), releaseSpi: none, installChildSa: none, updateChildSa: none, deleteChildSa: none,
    queryCounters: () => Promise.resolve({ inboundBytes: 0n, inboundPackets: 0n, outboundBytes: 0n, outboundPackets: 0n, lastInboundMs: null }),
    installTrap: none, removeTrap: none, restoreChildSa: () => Promise.resolve(false),
  };
}

/** Per-peer waiters, resolved from engine events. */
interface Waiter { up: ((ok: boolean, why?: string) => void) | undefined; down: (() => void) | undefined }

class LoadGenerator {
  readonly #n: number;
  readonly #sockets = new Map<string, Socket>();
  readonly #waiters = new Map<string, Waiter>();
  /** Peers with an IKE SA in any state (initiated, not yet announced down). */
  readonly #live = new Set<string>();
  readonly #engine: IkeEngine;
  /** Peers of each target with an established IKE SA (establish), left out of rate cycles. */
  readonly #held: Record<Target, Set<number>> = { agent: new Set(), swan: new Set() };
  sendErrors = 0;

  constructor(n: number) {
    this.#n = n;
    const peers: PeerConfig[] = [];
    const secret = new SecretBytes(new Uint8Array(Buffer.from(PSK)));
    for (const t of TARGETS) for (let i = 0; i < n; i++) {
      peers.push({
        name: `${t}-${i}`,
        local: { address: outer(i), id: { type: 'ipv4', value: outer(i) } },
        remote: { address: RESPONDER[t].address, id: { type: 'ipv4', value: RESPONDER[t].address } },
        auth: { method: 'psk', secret },
        ike: { proposals: [IKE_PROPOSAL], rekeyTimeMs: 4 * 3_600_000 },
        children: [{ name: 'c', localTs: [`${inner(i)}/32`], remoteTs: [RESPONDER_SUBNET], espProposals: [ESP_PROPOSAL], mode: 'tunnel', rekeyTimeMs: 3_600_000, lifeTimeMs: 3_960_000 }],
        dpd: { intervalMs: 0, action: 'clear' },
        startAction: 'respond',
      });
    }
    const transport = { send: (d: Uint8Array, to: Endpoint, from: Endpoint): void => this.#send(d, to, from) };
    const events = { emit: (e: IkeEvent): void => this.#onEvent(e) };
    // The generator keeps its crypto on its own thread whatever KIPSEC_IKE_CRYPTO_WORKERS says: only the agent varies.
    this.#engine = new IkeEngine({ transport, kernel: fakeKernel(), clock: systemClock, random: cryptoRandom, events }, peers, { cryptoWorkers: 0 });
  }

  /**
   * Ports 500 and 4500 per initiator address. Without a NAT nothing floats to 4500 on the kernel
   * data paths; the userspace ones (kipsec's engine, charon's kernel-libipsec) do ESP in UDP only,
   * so their IKE moves to 4500 (RFC 7296 §2.23), where IKE carries the non-ESP marker (RFC 3948 §2.2).
   */
  async bind(): Promise<void> {
    for (let i = 0; i < this.#n; i++) {
      const address = outer(i);
      for (const port of [500, 4500]) {
        const s = createSocket({ type: 'udp4' });
        await new Promise<void>((resolve, reject) => { s.once('error', reject); s.bind({ address, port, exclusive: true }, () => { s.off('error', reject); resolve(); }); });
        s.on('error', () => { this.sendErrors++; });
        s.on('message', (msg, rinfo) => {
          let d = new Uint8Array(msg.buffer, msg.byteOffset, msg.byteLength);
          if (port === 4500) {
            if (d.length < 4 || d[0] !== 0 || d[1] !== 0 || d[2] !== 0 || d[3] !== 0) return; // ESP or a keepalive: not for the generator
            d = d.subarray(4);
          }
          void this.#engine.receive(d, { address: rinfo.address, port: rinfo.port }, { address, port });
        });
        this.#sockets.set(`${address}:${port}`, s);
      }
    }
  }

  #send(d: Uint8Array, to: Endpoint, from: Endpoint): void {
    const s = this.#sockets.get(`${from.address}:${from.port}`);
    if (!s) { this.sendErrors++; return; }
    const out = from.port === 4500 ? Buffer.concat([Buffer.alloc(4), d]) : d;
    s.send(out, to.port, to.address, (e) => { if (e) this.sendErrors++; });
  }

  #onEvent(e: IkeEvent): void {
    if (e.type === 'ike-down') this.#live.delete(e.peer);
    const w = this.#waiters.get(e.peer);
    if (!w) return;
    if (e.type === 'child-up') { w.up?.(true); w.up = undefined; }
    else if (e.type === 'error') { w.up?.(false, `${e.error.code}${e.error.notify ? ` (${e.error.notify})` : ''}: ${e.error.message}`); w.up = undefined; }
    else if (e.type === 'ike-down') { w.up?.(false, `IKE SA down: ${e.reason}`); w.up = undefined; w.down?.(); w.down = undefined; }
  }

  #waiter(name: string): Waiter {
    let w = this.#waiters.get(name);
    if (!w) { w = { up: undefined, down: undefined }; this.#waiters.set(name, w); }
    return w;
  }

  /** Initiate peer i of `target` and wait (bounded) for its Child SA. */
  #up(target: Target, i: number, timeoutMs: number): Promise<{ ok: boolean; why?: string }> {
    const name = `${target}-${i}`;
    return new Promise((resolve) => {
      const w = this.#waiter(name);
      const timer = setTimeout(() => { w.up = undefined; resolve({ ok: false, why: `no Child SA within ${timeoutMs} ms` }); }, timeoutMs);
      w.up = (ok, why) => { clearTimeout(timer); resolve(why === undefined ? { ok } : { ok, why }); };
      this.#live.add(name);
      try { this.#engine.initiate(name); } catch (e) { clearTimeout(timer); w.up = undefined; resolve({ ok: false, why: String(e) }); }
    });
  }

  /** Delete peer i's IKE SA (INFORMATIONAL Delete) and wait (bounded) until it is gone. */
  #down(target: Target, i: number, timeoutMs: number): Promise<boolean> {
    const name = `${target}-${i}`;
    if (!this.#live.has(name)) return Promise.resolve(true);
    return new Promise((resolve) => {
      const w = this.#waiter(name);
      const timer = setTimeout(() => { w.down = undefined; resolve(false); }, timeoutMs);
      w.down = () => { clearTimeout(timer); resolve(true); };
      // terminate() resolves only once the whole engine is idle; the ike-down event is what we wait for.
      this.#engine.terminate(name).catch(() => { /* reported through ike-down or the timeout */ });
    });
  }

  /**
   * Handshake cycles against `target`: `concurrency` workers, each taking a free peer, bringing
   * it up and deleting it again, for `rampMs` (filling the pipeline, not counted) and then the
   * `ms` window. Completed = Child SA up; counted in the window when it came up inside it.
   * In-flight cycles finish after the window (not in the window's rate, but in `total`, which
   * goes with the responder's CPU time of the whole slice).
   */
  async rate(target: Target, rampMs: number, ms: number, concurrency: number): Promise<RateReply> {
    const free = Array.from({ length: this.#n }, (_, i) => i).filter((i) => !this.#held[target].has(i));
    const c0 = cpuMs(); const t0 = performance.now(); const from = t0 + rampMs; const end = from + ms;
    let inWindow = 0; let total = 0; let failed = 0;
    const lat: number[] = [];
    const worker = async (): Promise<void> => {
      for (let k = 0; k < 1_000_000 && performance.now() < end; k++) {
        const i = free.shift();
        if (i === undefined) { await sleep(5); continue; }
        const s = performance.now();
        const r = await this.#up(target, i, 30_000);
        const at = performance.now();
        if (r.ok) { total++; lat.push(at - s); if (at >= from && at <= end) inWindow++; } else failed++;
        await this.#down(target, i, 30_000);
        free.push(i);
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, free.length) }, worker));
    return { inWindow, total, failed, windowMs: ms, elapsedMs: performance.now() - t0, cpuMs: cpuMs() - c0, medianMs: median(lat) };
  }

  /** Bring up peers [from, to) of `target` and keep them (for the memory figures). */
  async establish(target: Target, from: number, to: number, concurrency: number, timeoutMs: number): Promise<PoolReply> {
    const t0 = performance.now(); let next = from; let done = 0; let failed = 0; let firstError: string | undefined;
    const worker = async (): Promise<void> => {
      for (;;) {
        const i = next++;
        if (i >= Math.min(to, this.#n) || performance.now() - t0 > timeoutMs) return;
        const r = await this.#up(target, i, 60_000);
        if (r.ok) { done++; this.#held[target].add(i); } else { failed++; firstError ??= r.why; }
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    return { done, failed, elapsedMs: performance.now() - t0, ...(firstError ? { firstError } : {}) };
  }

  async close(): Promise<void> {
    await this.#engine.close();
    for (const s of this.#sockets.values()) s.close();
  }
}

/** Generator main: commands as JSON lines on stdin, one JSON reply line each on stdout. */
async function generatorMain(n: number): Promise<void> {
  const gen = new LoadGenerator(n);
  await gen.bind();
  console.log(JSON.stringify({ ready: true }));
  const rl = createInterface({ input: process.stdin });
  for await (const line of rl) {
    const c = JSON.parse(line) as GenCommand;
    let reply: unknown;
    switch (c.cmd) {
      case 'rate': reply = await gen.rate(c.target, c.rampMs, c.ms, c.concurrency); break;
      case 'establish': reply = await gen.establish(c.target, c.from, c.to, c.concurrency, c.timeoutMs); break;
      case 'exit': await gen.close(); console.log(JSON.stringify({ bye: true })); process.exit(0);
    }
    console.log(JSON.stringify({ ...(reply as object), sendErrors: gen.sendErrors }));
  }
}

// ───────────────────────────── the driver (root namespace) ─────────────────────────────

/** The generator child, spoken to over JSON lines. */
class GeneratorProcess {
  readonly #child: ChildProcess;
  readonly #lines: string[] = [];
  #wake: (() => void) | undefined;
  #stderr = '';

  constructor(ns: Netns, n: number) {
    this.#child = ns.spawn(process.execPath, [...process.execArgv, process.argv[1]!, '--generator', String(n)], { stdio: ['pipe', 'pipe', 'pipe'] });
    createInterface({ input: this.#child.stdout! }).on('line', (l) => { this.#lines.push(l); this.#wake?.(); });
    this.#child.stderr!.on('data', (d: Buffer) => { this.#stderr = (this.#stderr + d.toString()).slice(-8000); });
  }

  get pid(): number { return this.#child.pid ?? 0; }

  async #line(timeoutMs: number): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (this.#lines.length === 0) {
      if (this.#child.exitCode !== null || this.#child.signalCode !== null) throw new Error(`load generator exited (${this.#child.exitCode ?? this.#child.signalCode}):\n${this.#stderr}`);
      if (Date.now() > deadline) throw new Error(`load generator silent for ${timeoutMs} ms:\n${this.#stderr}`);
      await new Promise<void>((r) => { this.#wake = r; setTimeout(r, 500); });
    }
    return this.#lines.shift()!;
  }

  async ready(timeoutMs: number): Promise<void> { await this.#line(timeoutMs); }

  async send<T>(c: GenCommand, timeoutMs: number): Promise<T & { sendErrors: number }> {
    this.#child.stdin!.write(`${JSON.stringify(c)}\n`);
    return JSON.parse(await this.#line(timeoutMs)) as T & { sendErrors: number };
  }
}

interface ProcStat { readonly cpuTicks: number; readonly childTicks: number; readonly rssKb: number; readonly anonKb: number; readonly hwmKb: number; readonly threads: number }

const CLK_TCK = ((): number => { try { return Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100; } catch { return 100; } })();

/** utime + stime + cutime + cstime (all threads, reaped children) and memory of one process. */
function procStat(pid: number): ProcStat {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // fields from #3 (state) on
  const ticks = [11, 12, 13, 14].reduce((s, k) => s + Number(f[k]), 0); // #14..#17
  const childTicks = Number(f[13]) + Number(f[14]); // cutime, cstime: processes it started and reaped
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0);
  return { cpuTicks: ticks, childTicks, rssKb: kb('VmRSS'), anonKb: kb('RssAnon'), hwmKb: kb('VmHWM'), threads: kb('Threads') };
}

/** CPU ticks per thread (name#tid), to see where a process spends beyond its main thread. */
function threadTicks(pid: number): Map<string, number> {
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

function pidOf(ns: Netns, comm: string): number {
  const pids = execFileSync('ip', ['netns', 'pids', ns.name], { timeout: 10_000 }).toString().split(/\s+/).filter(Boolean).map(Number);
  for (const p of pids) { try { if (readFileSync(`/proc/${p}/comm`, 'utf8').trim() === comm) return p; } catch { /* gone */ } }
  throw new Error(`no ${comm} process in ${ns.name}`);
}

async function xfrmCounts(ns: Netns): Promise<{ states: number; policies: number }> {
  const n = async (what: string): Promise<number> => (await ns.run('ip', ['xfrm', what, 'list'], { timeoutMs: 120_000 })).stdout.split('\n').filter((l) => l.startsWith('src ')).length;
  return { states: await n('state'), policies: await n('policy') };
}

function agentYaml(n: number): string {
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
  remote: {address: ${outer(i)}, subnets: [${inner(i)}/32]}
  auth: {psk: {file: psk}}
  ike: {proposals: [${IKE_PROPOSAL}]}
  esp: {proposals: [${ESP_PROPOSAL}]}
  dpd: {interval: 30s}
  startAction: respond
`);
  }
  return docs.join('---\n');
}

function swanctl(): string {
  return `connections {
  bench {
    version = 2
    local_addrs = ${RESPONDER.swan.address}
    remote_addrs = 10.64.0.0/16
    proposals = ${IKE_PROPOSAL}
    dpd_delay = 30s
    local {
      auth = psk
      id = ${RESPONDER.swan.address}
    }
    remote {
      auth = psk
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
secrets {
  ike-bench {
    secret = "${PSK}"
  }
}
`;
}

/**
 * Preloaded into the agent (--import): its event-loop delay (perf_hooks.monitorEventLoopDelay, 10 ms
 * resolution, as prom-client samples it). On SIGUSR2 it writes the histogram since the last
 * signal to eld.json beside itself, in ms, and starts a new one: one reading per rate slice.
 */
const ELD_PROBE = `import { monitorEventLoopDelay } from 'node:perf_hooks';
import { writeFileSync } from 'node:fs';
const h = monitorEventLoopDelay({ resolution: 10 });
h.enable();
let seq = 0;
process.on('SIGUSR2', () => {
  const ms = (ns) => ns / 1e6;
  writeFileSync(new URL('./eld.json', import.meta.url), JSON.stringify({ seq: ++seq, p50: ms(h.percentile(50)), p99: ms(h.percentile(99)), max: ms(h.max), mean: ms(h.mean) }));
  h.reset();
});
`;

interface EventLoopDelay { readonly seq: number; readonly p50: number; readonly p99: number; readonly max: number; readonly mean: number }

/** The agent's event-loop delay since the previous call (ELD_PROBE), or null if it did not answer. */
async function agentEventLoopDelay(pid: number, dir: string): Promise<EventLoopDelay | null> {
  const file = join(dir, 'eld.json');
  const last = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as EventLoopDelay).seq : 0;
  process.kill(pid, 'SIGUSR2');
  for (let i = 0; i < 50; i++) {
    await sleep(100);
    try { const r = JSON.parse(readFileSync(file, 'utf8')) as EventLoopDelay; if (r.seq > last) return r; } catch { /* not yet */ }
  }
  return null;
}

/** NODE_OPTIONS of the agent container in deploy/agent.yaml (the DaemonSet users install). */
function deployedNodeOptions(): string {
  const ds = parseYaml(readFileSync(fileURLToPath(new URL('../deploy/agent.yaml', import.meta.url)), 'utf8')) as
    { spec?: { template?: { spec?: { containers?: Array<{ name?: string; env?: Array<{ name?: string; value?: string }> }> } } } };
  const agent = ds.spec?.template?.spec?.containers?.find((c) => c.name === 'agent');
  return agent?.env?.find((e) => e.name === 'NODE_OPTIONS')?.value ?? '';
}

/** The agent as a user runs it (the CLI bundle, with the DaemonSet's Node flags), its log in a file like charon's. */
async function startAgent(ns: Netns, n: number, timeoutMs: number, datapath: 'kernel' | 'userspace'): Promise<{ pid: number; dir: string; child: ChildProcess }> {
  const dir = mkdtempSync(join(tmpdir(), 'kipsec-bench-agent-'));
  writeFileSync(join(dir, 'psk'), `${PSK}\n`, { mode: 0o600 });
  writeFileSync(join(dir, 'tunnels.yaml'), agentYaml(n));
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
function agentWarnings(file: string): string {
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

interface Options { rounds: number; sliceSec: number; rampSec: number; concurrency: number; sas: number; warmupSec: number; datapath: 'kernel' | 'userspace' }

function options(argv: readonly string[]): Options {
  const num = (flag: string, d: number): number => {
    const i = argv.indexOf(flag);
    if (i < 0) return d;
    const v = Number(argv[i + 1]);
    if (!Number.isFinite(v) || v <= 0) throw new Error(`${flag} needs a positive number`);
    return v;
  };
  const dp = argv.includes('--datapath') ? argv[argv.indexOf('--datapath') + 1] : 'kernel';
  if (dp !== 'kernel' && dp !== 'userspace') throw new Error('--datapath must be kernel or userspace');
  const o: Options = { rounds: num('--rounds', 4), sliceSec: num('--slice', 20), rampSec: num('--ramp', 5), concurrency: num('--concurrency', 8), sas: num('--sas', 1000), warmupSec: num('--warmup', 10), datapath: dp };
  if (o.sas > MAX_INITIATORS) throw new Error(`--sas at most ${MAX_INITIATORS}`);
  return o;
}

const lines: string[] = [];
function out(line = ''): void {
  console.log(line);
  lines.push(line);
  if (process.env['VM_OUT']) { mkdirSync(process.env['VM_OUT'], { recursive: true }); writeFileSync(join(process.env['VM_OUT'], 'handshake-vs-strongswan.txt'), lines.join('\n') + '\n'); }
}
const loadavg = (): string => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
const mb = (kb: number): string => (kb / 1024).toFixed(1);

/** Whether this kernel takes an ESP state (AES-GCM), else why not. Retried: the first use loads modules. */
async function espProblem(ns: Netns): Promise<string | null> {
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

async function driverMain(o: Options): Promise<void> {
  prepareVm();
  const t0 = Date.now();
  const stamp = (): string => `${((Date.now() - t0) / 1000).toFixed(0)}s`;
  if (!StrongSwan.available()) throw new Error('strongSwan is not installed (charon + swanctl)');
  out(`bench/handshake-vs-strongswan: kernel ${execFileSync('uname', ['-r']).toString().trim()}${process.env['KIPSEC_IN_VM'] ? ' (kernel-lane VM, QEMU TCG)' : ''}, node ${process.version}, ${cpus().length} CPUs, load ${loadavg()}`);
  out(`  data paths: ${o.datapath === 'userspace' ? 'userspace (kipsec ESP engine vs charon kernel-libipsec)' : 'kernel XFRM on both'}`);
  out(`  PSK, IKE ${IKE_PROPOSAL}, ESP ${ESP_PROPOSAL}; ${o.sas} initiators; concurrency ${o.concurrency}; ${o.rounds} rounds × (${o.rampSec} s ramp + ${o.sliceSec} s window) per responder`);

  const gen = await Netns.create(null, 'gen');
  const nsA = await Netns.create(null, 'agent');
  const nsS = await Netns.create(null, 'swan');
  const killed: ChildProcess[] = [];
  // Interrupted: kill what runs in the namespaces (by pid, Netns.destroy) and remove them.
  const cleanup = async (): Promise<void> => {
    for (const c of killed) if (c.pid && c.exitCode === null) { try { process.kill(c.pid, 'SIGKILL'); } catch { /* gone */ } }
    for (const ns of [gen, nsA, nsS]) await ns.destroy();
  };
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => { void cleanup().finally(() => process.exit(130)); });
  let agentRef: { dir: string; child: ChildProcess } | undefined;
  let swanRef: StrongSwan | undefined;
  // Both responders' logs go to $VM_OUT (the wrapper's KVM_OUT on the host), kept for a look after the run.
  const saveLogs = (): void => {
    const dir = process.env['VM_OUT'];
    if (!dir) return;
    mkdirSync(dir, { recursive: true });
    if (agentRef) { try { copyFileSync(join(agentRef.dir, 'agent.log'), join(dir, 'agent.log')); } catch { /* none */ } }
    if (swanRef) { try { copyFileSync(join(swanRef.dir, 'charon.log'), join(dir, 'charon.log')); } catch { /* none */ } }
  };
  try {
    const esp = o.datapath === 'kernel' ? await espProblem(nsA) : null;
    if (esp !== null) throw new Error(`this kernel takes no ESP state (${esp}); run \`bash bench/handshake-vs-strongswan.sh\` (the kernel-lane VM)`);
    for (const [t, ns] of [['agent', nsA], ['swan', nsS]] as const) {
      const r = RESPONDER[t];
      await link(gen, `${r.gen}/24`, ns, `${r.address}/24`, r.dev, 'eth0');
      await ns.run('ip', ['route', 'add', '10.64.0.0/16', 'via', r.gen]);
      await ns.run('ip', ['route', 'add', '10.65.0.0/16', 'via', r.gen]);
      await ns.run('ip', ['addr', 'add', '10.200.0.1/32', 'dev', 'lo']);
    }
    // Every 10.64.x.y is local in `gen` (AnyIP), so each initiator binds its own address.
    await gen.run('ip', ['route', 'add', 'local', '10.64.0.0/16', 'dev', 'lo']);

    out(`[${stamp()}] starting charon and the agent (${o.sas} tunnels)`);
    // Userspace data paths on both sides: kipsec's ESP engine, charon's kernel-libipsec.
    const swan = await StrongSwan.start(null, nsS, { mode: o.datapath === 'userspace' ? 'libipsec' : 'kernel', swanctl: swanctl(), logLevels: { ike: 1, cfg: 1 } });
    swanRef = swan;
    const swanPid = pidOf(nsS, 'charon');
    const agent = await startAgent(nsA, o.sas, 600_000, o.datapath);
    agentRef = agent;
    killed.push(agent.child);
    const pids: Record<Target, number> = { agent: agent.pid, swan: swanPid };
    out(`[${stamp()}] responders up (agent pid ${agent.pid}, charon pid ${swanPid}); starting the load generator`);
    const g = new GeneratorProcess(gen, o.sas);
    await g.ready(600_000);
    await sleep(3_000);
    const idle = { agent: procStat(pids.agent), swan: procStat(pids.swan) };

    // ── 1. handshake rate, interleaved slices (first: a responder that fails at 1,000 SAs
    //    must not cost this figure) ──
    for (const t of TARGETS) await g.send<RateReply>({ cmd: 'rate', target: t, rampMs: 0, ms: o.warmupSec * 1000, concurrency: o.concurrency }, 600_000);
    const acc: Record<Target, { inWindow: number; total: number; failed: number; windowMs: number; cpuTicks: number; genCpuMs: number; elapsedMs: number; medians: number[]; perRound: number[]; perRoundCpu: number[] }> = {
      agent: { inWindow: 0, total: 0, failed: 0, windowMs: 0, cpuTicks: 0, genCpuMs: 0, elapsedMs: 0, medians: [], perRound: [], perRoundCpu: [] },
      swan: { inWindow: 0, total: 0, failed: 0, windowMs: 0, cpuTicks: 0, genCpuMs: 0, elapsedMs: 0, medians: [], perRound: [], perRoundCpu: [] },
    };
    const loads: string[] = [loadavg()];
    const eld: EventLoopDelay[] = [];
    for (let round = 0; round < o.rounds; round++) {
      const order: readonly Target[] = round % 2 === 0 ? TARGETS : [...TARGETS].reverse();
      for (const t of order) {
        if (t === 'agent') await agentEventLoopDelay(pids.agent, agent.dir); // a fresh histogram for this slice
        const before = procStat(pids[t]);
        const threadsBefore = process.env['KIPSEC_BENCH_THREADS'] ? threadTicks(pids[t]) : undefined;
        const r = await g.send<RateReply>({ cmd: 'rate', target: t, rampMs: o.rampSec * 1000, ms: o.sliceSec * 1000, concurrency: o.concurrency }, (o.rampSec + o.sliceSec) * 1000 + 600_000);
        const after = procStat(pids[t]);
        const ticks = after.cpuTicks - before.cpuTicks;
        if (t === 'agent') {
          const d = await agentEventLoopDelay(pids.agent, agent.dir);
          if (d) eld.push(d);
          out(`    agent event-loop delay in the slice: p50 ${d?.p50.toFixed(1) ?? '?'} ms, p99 ${d?.p99.toFixed(1) ?? '?'} ms, max ${d?.max.toFixed(1) ?? '?'} ms`);
        }
        if (threadsBefore) {
          const busy = [...threadTicks(pids[t])].map(([k, v]) => [k, v - (threadsBefore.get(k) ?? 0)] as const).filter(([, v]) => v > 0).sort((a, b) => b[1] - a[1]);
          out(`    ${t} threads (CPU s): ${busy.slice(0, 8).map(([k, v]) => `${k} ${(v / CLK_TCK).toFixed(1)}`).join(', ')}`);
        }
        const a = acc[t];
        a.inWindow += r.inWindow; a.total += r.total; a.failed += r.failed; a.windowMs += r.windowMs; a.cpuTicks += ticks; a.genCpuMs += r.cpuMs; a.elapsedMs += r.elapsedMs;
        a.medians.push(r.medianMs); a.perRound.push(r.inWindow / (r.windowMs / 1000)); a.perRoundCpu.push(r.total / Math.max(1e-9, ticks / CLK_TCK));
        out(`[${stamp()}] round ${round + 1} ${t.padEnd(5)}: ${(r.inWindow / (r.windowMs / 1000)).toFixed(1).padStart(7)} hs/s, ${r.total} cycles, responder CPU ${(ticks / CLK_TCK).toFixed(1)} s (child processes ${((after.childTicks - before.childTicks) / CLK_TCK).toFixed(1)} s), generator CPU ${(r.cpuMs / 1000).toFixed(1)} s, median ${r.medianMs.toFixed(0)} ms, ${r.failed} failed, load ${loadavg()}`);
      }
      loads.push(loadavg());
    }

    const rate = (t: Target): number => acc[t].inWindow / (acc[t].windowMs / 1000);
    const perCpu = (t: Target): number => acc[t].total / Math.max(1e-9, acc[t].cpuTicks / CLK_TCK);
    const util = (t: Target): number => (acc[t].cpuTicks / CLK_TCK) / (acc[t].elapsedMs / 1000);
    const roundRatios = acc.agent.perRound.map((x, i) => x / (acc.swan.perRound[i] ?? NaN));
    out('');
    out(`handshake rate (cycles: IKE_SA_INIT + IKE_AUTH with Child SA, then Delete; ${o.rounds} × ${o.sliceSec} s per responder)`);
    out(`  ${'responder'.padEnd(22)}${'hs/s (wall)'.padStart(12)}${'hs/CPU-s'.padStart(10)}${'CPU used'.padStart(10)}${'gen CPU'.padStart(9)}${'median ms'.padStart(11)}${'failed'.padStart(8)}`);
    for (const t of TARGETS) {
      const label = t === 'agent' ? 'kipsec agent' : 'strongSwan charon 5.9';
      out(`  ${label.padEnd(22)}${rate(t).toFixed(1).padStart(12)}${perCpu(t).toFixed(1).padStart(10)}${`${(util(t) * 100).toFixed(0)}%`.padStart(10)}${`${((acc[t].genCpuMs / acc[t].elapsedMs) * 100).toFixed(0)}%`.padStart(9)}${median(acc[t].medians).toFixed(0).padStart(11)}${String(acc[t].failed).padStart(8)}`);
    }
    const ratio = rate('agent') / rate('swan'); const ratioCpu = perCpu('agent') / perCpu('swan');
    out(`  agent / charon: ${ratio.toFixed(2)}× wall rate (rounds: ${roundRatios.map((x) => x.toFixed(2)).join(' ')}), ${ratioCpu.toFixed(2)}× per responder CPU-second; target ≥ 1.5×: ${ratio >= 1.5 ? 'met' : 'NOT met'} (wall), ${ratioCpu >= 1.5 ? 'met' : 'NOT met'} (per CPU-s)`);
    out('  ("CPU used": responder CPU seconds per wall second of its slices, 100% = one vCPU; "gen CPU": the same for the load generator)');
    if (eld.length > 0) {
      out(`  agent event-loop delay under load (KIPSEC_IKE_CRYPTO_WORKERS=${process.env['KIPSEC_IKE_CRYPTO_WORKERS'] ?? 'unset: one per core'}), per slice: p50 ${median(eld.map((d) => d.p50)).toFixed(1)} ms (median of slices), p99 ${median(eld.map((d) => d.p99)).toFixed(1)} ms (median), worst p99 ${Math.max(...eld.map((d) => d.p99)).toFixed(1)} ms, max ${Math.max(...eld.map((d) => d.max)).toFixed(1)} ms`);
    }
    out('');
    // ── 2. memory at N established IKE SAs ──
    // Sampled at N/2 and at N SAs, each after 20 s idle (as a daemon holding its SAs mostly is:
    // V8's memory reducer and glibc's trim get the same chance on both sides), with the CPU each
    // responder used in that idle window (DPD every 30 s, timers). The slope between the two
    // samples is the cost per SA; the idle sample (before any SA) also holds startup garbage.
    const half: Record<Target, ProcStat> = { ...idle };
    const held: Record<Target, ProcStat> = { ...idle };
    const xfrm: Record<Target, { states: number; policies: number }> = { agent: { states: 0, policies: 0 }, swan: { states: 0, policies: 0 } };
    const mid = Math.floor(o.sas / 2);
    for (const t of TARGETS) {
      for (const [from, to] of [[0, mid], [mid, o.sas]] as const) {
        const r = await g.send<PoolReply>({ cmd: 'establish', target: t, from, to, concurrency: o.concurrency, timeoutMs: 3_000_000 }, 3_100_000);
        out(`[${stamp()}] ${t}: IKE SAs ${from}..${to - 1}: ${r.done} established in ${(r.elapsedMs / 1000).toFixed(1)} s (${(r.done / (r.elapsedMs / 1000)).toFixed(1)}/s), ${r.failed} failed${r.firstError ? ` (first: ${r.firstError})` : ''}`);
        const before = procStat(pids[t]);
        await sleep(20_000);
        const now = procStat(pids[t]);
        if (to === mid) half[t] = now; else held[t] = now;
        out(`    ${t} holding ${to} SAs: RSS ${mb(now.rssKb)} MiB, CPU while idle 20 s: ${(((now.cpuTicks - before.cpuTicks) / CLK_TCK / 20) * 100).toFixed(0)}% of a vCPU`);
      }
      xfrm[t] = await xfrmCounts(t === 'agent' ? nsA : nsS);
    }
    out(`memory (VmRSS) of the responder process`);
    out(`  ${'responder'.padEnd(22)}${'idle MiB'.padStart(10)}${`${mid} SAs`.padStart(10)}${`${o.sas} SAs`.padStart(10)}${'KiB/SA'.padStart(9)}${'peak MiB'.padStart(10)}${'anon MiB (idle/half/full)'.padStart(27)}${'XFRM states/policies'.padStart(22)}`);
    const perSa = (t: Target): number => (held[t].rssKb - half[t].rssKb) / Math.max(1, o.sas - mid);
    for (const t of TARGETS) {
      const label = t === 'agent' ? 'kipsec agent' : 'strongSwan charon 5.9';
      out(`  ${label.padEnd(22)}${mb(idle[t].rssKb).padStart(10)}${mb(half[t].rssKb).padStart(10)}${mb(held[t].rssKb).padStart(10)}${perSa(t).toFixed(1).padStart(9)}${mb(held[t].hwmKb).padStart(10)}${`${mb(idle[t].anonKb)}/${mb(half[t].anonKb)}/${mb(held[t].anonKb)}`.padStart(27)}${`${xfrm[t].states}/${xfrm[t].policies}`.padStart(22)}`);
    }
    const memRatio = held.agent.rssKb / held.swan.rssKb;
    out(`  agent / charon at ${o.sas} SAs: ${memRatio.toFixed(2)}× RSS (target ≤ 2×: ${memRatio <= 2 ? 'met' : 'NOT met'}); per SA (slope ${mid}→${o.sas}): ${(perSa('agent') / Math.max(0.1, perSa('swan'))).toFixed(2)}×`);
    out('  ("KiB/SA": RSS growth from the half to the full sample per added SA; "anon": RssAnon, private memory without mapped binaries and libraries; "peak": VmHWM)');
    out('');
    out(`load average (guest) during the rate rounds: ${loads.join(' | ')}; total ${stamp()}`);
    out(agentWarnings(join(agent.dir, 'agent.log')));
    await g.send({ cmd: 'exit' }, 30_000).catch(() => undefined);
    saveLogs();
    await swan.stop();
    // SIGTERM, so the agent exits cleanly (and writes its CPU profile when asked to).
    process.kill(agent.pid, 'SIGTERM');
    for (let i = 0; i < 600 && agent.child.exitCode === null && agent.child.signalCode === null; i++) await sleep(100);
  } catch (e) {
    // A responder that died is a finding: say how, with the end of its log and any OOM kill.
    const c = agentRef?.child;
    if (agentRef && c && (c.exitCode !== null || c.signalCode !== null)) {
      out(`agent exited (${c.exitCode ?? c.signalCode}) during the run; the end of its log:`);
      try { out(readFileSync(join(agentRef.dir, 'agent.log'), 'utf8').split('\n').slice(-40).join('\n')); } catch { /* none */ }
      try { out(execFileSync('dmesg').toString().split('\n').filter((l) => /oom|killed process/i.test(l)).slice(-5).join('\n') || '(no OOM kill in dmesg)'); } catch { /* none */ }
    }
    saveLogs();
    throw e;
  } finally {
    await cleanup();
  }
}

if (process.argv.includes('--generator')) {
  const n = Number(process.argv[process.argv.indexOf('--generator') + 1]);
  await generatorMain(n);
} else {
  await driverMain(options(process.argv.slice(2))).then(() => process.exit(0), (e: unknown) => { console.error(e); process.exit(1); });
}
