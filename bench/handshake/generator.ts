// bench/handshake-vs-strongswan's load generator: one process (in the `gen` namespace) running our
// IKEv2 engine as every initiator, one UDP socket pair per initiator address, driven by JSON-line
// commands (scenario.ts) from the driver through GeneratorProcess.
import { type ChildProcess } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { SecretBytes } from '../../src/common/secret.js';
import { cryptoRandom, systemClock } from '../../src/common/time.js';
import { IkeEngine, type PeerConfig } from '../../src/ike/engine.js';
import type { Endpoint, IkeEvent, KernelIpsec } from '../../src/ike/ports.js';
import type { Netns } from '../../e2e/lib/netns.js';
import { initiatorCredentials } from './certs.js';
import { cpuMs, ESP_PROPOSAL, IKE_PROPOSAL, median, PSK, quantile, RESPONDER, RESPONDER_SUBNET, TARGETS, inner, outer, sleep, type BurstReply, type GenCommand, type PoolReply, type RateReply, type Target } from './scenario.js';

// ───────────────────────────── the load generator (child process in `gen`) ─────────────────────────────

/** The generator's kernel: hands out SPIs, installs nothing (its Child SAs never carry traffic). */
export function fakeKernel(): KernelIpsec {
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

export class LoadGenerator {
  readonly #n: number;
  readonly #sockets = new Map<string, Socket>();
  readonly #waiters = new Map<string, Waiter>();
  /** Peers with an IKE SA in any state (initiated, not yet announced down). */
  readonly #live = new Set<string>();
  readonly #engine: IkeEngine;
  /** Peers of each target with an established IKE SA (establish), left out of rate cycles. */
  readonly #held: Record<Target, Set<number>> = { agent: new Set(), swan: new Set() };
  sendErrors = 0;

  /** certs: a bench/handshake/certs.ts directory for ECDSA certificate authentication; PSK without. */
  constructor(n: number, certs?: string) {
    this.#n = n;
    const peers: PeerConfig[] = [];
    const secret = new SecretBytes(new Uint8Array(Buffer.from(PSK)));
    const creds = certs === undefined ? [] : Array.from({ length: n }, (_, i) => i);
    let shared: ReturnType<typeof initiatorCredentials> | undefined;
    const auths: PeerConfig['auth'][] = creds.map((i) => { shared = initiatorCredentials(certs!, i, shared); return { method: 'certificate', ...shared }; });
    for (const t of TARGETS) for (let i = 0; i < n; i++) {
      peers.push({
        name: `${t}-${i}`,
        local: { address: outer(i), id: { type: 'ipv4', value: outer(i) } },
        remote: { address: RESPONDER[t].address, id: { type: 'ipv4', value: RESPONDER[t].address } },
        auth: auths[i] ?? { method: 'psk', secret },
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

  /**
   * Initiators [0, n) of `target` all started in the same turn, as after a responder's reboot or a
   * CA rotation when every peer handshakes at once. Each keeps the engine's own retransmission
   * schedule (charon's: ~165 s before it gives up); `timeoutMs` only bounds the whole burst.
   */
  async burst(target: Target, n: number, timeoutMs: number): Promise<BurstReply> {
    const c0 = cpuMs(); const t0 = performance.now();
    const took: number[] = []; const failures: Record<string, number> = {};
    let last = 0;
    await Promise.all(Array.from({ length: Math.min(n, this.#n) }, async (_, i) => {
      const r = await this.#up(target, i, timeoutMs);
      const at = performance.now() - t0;
      if (r.ok) { took.push(at); last = Math.max(last, at); this.#held[target].add(i); return; }
      const why = (r.why ?? 'unknown').replace(/:.*$/, '');
      failures[why] = (failures[why] ?? 0) + 1;
    }));
    return { done: took.length, failed: Object.values(failures).reduce((a, b) => a + b, 0), lastMs: last, p50Ms: quantile(took, 0.5), p90Ms: quantile(took, 0.9), p99Ms: quantile(took, 0.99), failures, cpuMs: cpuMs() - c0 };
  }

  async close(): Promise<void> {
    await this.#engine.close();
    for (const s of this.#sockets.values()) s.close();
  }
}

/** Generator main: commands as JSON lines on stdin, one JSON reply line each on stdout. */
export async function generatorMain(n: number, certs?: string): Promise<void> {
  const gen = new LoadGenerator(n, certs);
  await gen.bind();
  console.log(JSON.stringify({ ready: true }));
  const rl = createInterface({ input: process.stdin });
  for await (const line of rl) {
    const c = JSON.parse(line) as GenCommand;
    let reply: unknown;
    switch (c.cmd) {
      case 'rate': reply = await gen.rate(c.target, c.rampMs, c.ms, c.concurrency); break;
      case 'establish': reply = await gen.establish(c.target, c.from, c.to, c.concurrency, c.timeoutMs); break;
      case 'burst': reply = await gen.burst(c.target, c.n, c.timeoutMs); break;
      case 'exit': await gen.close(); console.log(JSON.stringify({ bye: true })); process.exit(0);
    }
    console.log(JSON.stringify({ ...(reply as object), sendErrors: gen.sendErrors }));
  }
}

// ───────────────────────────── the driver (root namespace) ─────────────────────────────

/** The generator child, spoken to over JSON lines. */
export class GeneratorProcess {
  readonly #child: ChildProcess;
  readonly #lines: string[] = [];
  #wake: (() => void) | undefined;
  #stderr = '';

  constructor(ns: Netns, n: number, certs?: string) {
    this.#child = ns.spawn(process.execPath, [...process.execArgv, process.argv[1]!, '--generator', String(n), ...(certs === undefined ? [] : ['--certs', certs])], { stdio: ['pipe', 'pipe', 'pipe'] });
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
