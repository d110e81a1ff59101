// Traffic between the pods of a cluster built by cluster-net.ts: a ping matrix (every pod to every
// pod on another node), a continuous ping stopped by pid with SIGINT, and one TCP stream per node
// pair whose bytes are checked end to end (SHA-256 of a deterministic AES-CTR byte stream on both
// sides). Each pod taking part in the streams runs one small Node process (receiver and sender in
// one) — node startup costs seconds under the VM's emulation, so never one process per stream.
// Every wait is bounded; processes are killed by pid.
import type { ChildProcess } from 'node:child_process';
import type { Netns } from './netns.js';
import type { Cluster, ClusterPod } from './cluster-net.js';

/** Parse `ping` summary: transmitted and received counts. */
export function pingCounts(out: string): { sent: number; received: number } {
  const m = /(\d+) packets transmitted, (\d+) (?:packets )?received/.exec(out);
  return { sent: Number(m?.[1] ?? 0), received: Number(m?.[2] ?? 0) };
}

export interface PodRef { readonly node: string; readonly pod: string; readonly ip: string }

function ref(p: ClusterPod): PodRef { return { node: p.node, pod: p.name, ip: p.ip }; }

async function pool<T, R>(items: readonly T[], limit: number, fn: (x: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) { const i = next++; out[i] = await fn(items[i]!); }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

// ---------------------------------------------------------------------------------------------
// Ping matrix

export interface PingMatrixOptions {
  /** Echo requests per pair; default 3. */
  readonly count?: number;
  /** Between requests; default 200 ms (below 200 ms needs root, which the lanes have). */
  readonly intervalMs?: number;
  /** Bound for one pair's ping process; default 15 s. */
  readonly timeoutMs?: number;
  /** Pings running at once; default 12. */
  readonly concurrency?: number;
}

export interface PingPair { readonly from: PodRef; readonly to: PodRef; readonly sent: number; readonly received: number; readonly output: string }

/** Every pod pings every pod on every other node (count echoes each), a bounded number at once. */
export async function pingMatrix(cluster: Cluster, o: PingMatrixOptions = {}): Promise<PingPair[]> {
  const count = o.count ?? 3;
  const interval = ((o.intervalMs ?? 200) / 1000).toFixed(3);
  const timeoutMs = o.timeoutMs ?? 15_000;
  const waitSec = String(Math.max(1, Math.min(5, Math.floor(timeoutMs / 3000))));
  const pairs: Array<{ from: ClusterPod; to: ClusterPod }> = [];
  for (const a of cluster.nodes) for (const b of cluster.nodes) {
    if (a === b) continue;
    for (const from of a.pods) for (const to of b.pods) pairs.push({ from, to });
  }
  return pool(pairs, o.concurrency ?? 12, async ({ from, to }) => {
    const r = await from.ns.run('ping', ['-n', '-q', '-c', String(count), '-i', interval, '-W', waitSec, '-I', from.ip, to.ip], { check: false, timeoutMs });
    const c = pingCounts(r.stdout);
    return { from: ref(from), to: ref(to), ...c, output: `${r.stdout}${r.stderr}`.trim() };
  });
}

/** The pairs that lost any echo, as lines for an assertion message. */
export function pingLosses(pairs: readonly PingPair[]): string[] {
  return pairs.filter((p) => p.sent === 0 || p.received < p.sent)
    .map((p) => `${p.from.pod} (${p.from.ip}) → ${p.to.pod} (${p.to.ip}): ${p.received}/${p.sent}${p.sent === 0 ? `: ${p.output.split('\n').slice(-2).join(' ')}` : ''}`);
}

// ---------------------------------------------------------------------------------------------
// Continuous ping

/**
 * `ping -i 0.1` running until stop(): SIGINT by pid makes it print its summary. An echo in flight
 * at that moment is not a loss, so stop() reports which sequence numbers went unanswered before
 * the last one sent.
 */
export class ContinuousPing {
  readonly #p: ChildProcess;
  #out = '';

  constructor(ns: Netns, from: string, to: string, o: { intervalMs?: number } = {}) {
    this.#p = ns.spawn('ping', ['-i', ((o.intervalMs ?? 100) / 1000).toFixed(3), '-I', from, to]);
    this.#p.stdout?.on('data', (d: Buffer) => { this.#out += d.toString(); });
  }

  get running(): boolean { return this.#p.exitCode === null && this.#p.signalCode === null; }

  async stop(): Promise<{ sent: number; received: number; lost: number[]; wasRunning: boolean; tail: string }> {
    const wasRunning = this.running;
    const done = new Promise<void>((r) => { if (!this.running) r(); else this.#p.on('exit', () => r()); });
    if (this.#p.pid && wasRunning) process.kill(this.#p.pid, 'SIGINT');
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([done, new Promise((r) => { timer = setTimeout(r, 15_000); })]);
    clearTimeout(timer);
    const c = pingCounts(this.#out);
    const seqs = new Set([...this.#out.matchAll(/icmp_seq=(\d+)/g)].map((m) => Number(m[1])));
    const lost = [...Array(Math.max(0, c.sent - 1)).keys()].map((k) => k + 1).filter((s) => !seqs.has(s));
    return { ...c, lost, wasRunning, tail: this.#out.split('\n').slice(-4).join('\n') };
  }
}

// ---------------------------------------------------------------------------------------------
// TCP streams

/**
 * The per-pod process, plain JavaScript run with `node -e` (no tsx: it starts in a fraction of
 * the time). argv[1] is its JSON config: {listen?: {host, port, expect}, bind, send: [{id, host,
 * port, bytes}], timeoutMs}. It prints JSON lines: {role: 'listening'} once the server is bound,
 * then after "go" on stdin it sends; per stream {role: 'recv'|'send', id, bytes, sha256, …}.
 * The byte stream of a stream id is AES-128-CTR over zeros keyed by SHA-256(id): deterministic,
 * incompressible, cheap. The receiver answers the sender with its digest before closing.
 */
const PEER_SCRIPT = String.raw`
const net = require('node:net'), crypto = require('node:crypto');
const cfg = JSON.parse(process.argv[1]);
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
let pending = (cfg.listen ? cfg.listen.expect : 0) + cfg.send.length;
let server;
const finish = () => { if (--pending === 0) { if (server) server.close(); process.exitCode = 0; setImmediate(() => process.exit(0)); } };
setTimeout(() => { out({ role: 'timeout', pending }); process.exit(2); }, cfg.timeoutMs).unref();
const keystream = (id) => crypto.createCipheriv('aes-128-ctr', crypto.createHash('sha256').update(id).digest().subarray(0, 16), Buffer.alloc(16));
function serve(s) {
  let head = Buffer.alloc(0), id = null, n = 0, done = false;
  const h = crypto.createHash('sha256');
  const end = (o) => { if (done) return; done = true; out(Object.assign({ role: 'recv', id, bytes: n }, o)); finish(); };
  s.on('data', (d) => {
    if (id === null) {
      head = Buffer.concat([head, d]);
      const nl = head.indexOf(10);
      if (nl < 0) { if (head.length > 1024) s.destroy(new Error('no stream id line')); return; }
      id = head.subarray(0, nl).toString();
      d = head.subarray(nl + 1);
    }
    h.update(d); n += d.length;
  });
  let sha256, error;
  s.on('end', () => { sha256 = h.digest('hex'); s.end(sha256 + '\n'); });
  s.on('error', (e) => { error = e.message; });
  s.on('close', () => end({ sha256, error }));
}
function send(t) {
  const t0 = Date.now(), h = crypto.createHash('sha256'), ks = keystream(t.id);
  let sent = 0, ack = '', done = false, error;
  const s = net.connect({ host: t.host, port: t.port, localAddress: cfg.bind });
  const pump = () => {
    while (sent < t.bytes) {
      const chunk = ks.update(Buffer.alloc(Math.min(65536, t.bytes - sent)));
      h.update(chunk); sent += chunk.length;
      if (!s.write(chunk)) { s.once('drain', pump); return; }
    }
    s.end();
  };
  s.on('connect', () => { s.write(t.id + '\n'); pump(); });
  s.on('data', (d) => { ack += d; });
  s.on('error', (e) => { error = e.message; });
  s.on('close', () => {
    if (done) return; done = true;
    out({ role: 'send', id: t.id, bytes: sent, sha256: h.digest('hex'), ack: ack.trim(), ms: Date.now() - t0, error });
    finish();
  });
}
const go = () => { for (const t of cfg.send) send(t); };
if (cfg.listen) {
  // Half-open: after the sender's FIN the receiver still writes its digest back.
  server = net.createServer({ allowHalfOpen: true }, serve);
  server.on('error', (e) => { out({ role: 'error', error: e.message }); process.exit(3); });
  server.listen(cfg.listen.port, cfg.listen.host, () => out({ role: 'listening' }));
} else out({ role: 'listening' });
let input = '';
process.stdin.on('data', (d) => { input += d; if (input.includes('go\n')) { process.stdin.pause(); go(); } });
`;

export interface TcpStreamOptions {
  /** Bytes per stream; default 1 MiB. */
  readonly bytes?: number;
  /** Bound for the whole run (start, all streams, results); default 60 s. */
  readonly timeoutMs?: number;
  /** Receivers' port; default 5201. */
  readonly port?: number;
  /** 'unordered': one stream per node pair, from the lower-index node; 'ordered': both ways. Default 'unordered'. */
  readonly pairs?: 'unordered' | 'ordered';
  /** Which pod of the sending / receiving node (index, modulo the pods there); default 0 and 0. */
  readonly srcPod?: number;
  readonly dstPod?: number;
}

export interface TcpStreamResult {
  readonly from: PodRef;
  readonly to: PodRef;
  /** Bytes the stream was to carry. */
  readonly bytes: number;
  readonly sent: number;
  readonly received: number;
  readonly sentSha256: string | undefined;
  readonly receivedSha256: string | undefined;
  /** All bytes arrived and both digests agree (and the receiver's digest came back to the sender). */
  readonly matched: boolean;
  readonly ms: number | undefined;
  readonly error: string | undefined;
}

interface PeerLine { role: string; id?: string; bytes?: number; sha256?: string; ack?: string; ms?: number; error?: string; pending?: number }

function parseLines(text: string): PeerLine[] {
  const out: PeerLine[] = [];
  for (const l of text.split('\n')) {
    if (!l.trim()) continue;
    try { out.push(JSON.parse(l) as PeerLine); } catch { /* not ours */ }
  }
  return out;
}

/** One TCP stream per node pair (a pod on A → a pod on B), checked end to end; bounded in time. */
export async function tcpStreams(cluster: Cluster, o: TcpStreamOptions = {}): Promise<TcpStreamResult[]> {
  const bytes = o.bytes ?? 1 << 20;
  const port = o.port ?? 5201;
  const timeoutMs = o.timeoutMs ?? 60_000;
  const deadline = Date.now() + timeoutMs;
  const streams: Array<{ id: string; from: ClusterPod; to: ClusterPod }> = [];
  for (const a of cluster.nodes) for (const b of cluster.nodes) {
    if (a === b || (o.pairs !== 'ordered' && a.index > b.index)) continue;
    const from = a.pods[(o.srcPod ?? 0) % a.pods.length];
    const to = b.pods[(o.dstPod ?? 0) % b.pods.length];
    if (!from || !to) throw new Error(`tcpStreams: ${a.name} or ${b.name} has no pods`);
    streams.push({ id: `${from.name}->${to.name}`, from, to });
  }
  // One process per pod taking part, serving its incoming streams and sending its outgoing ones.
  const byPod = new Map<ClusterPod, { listen: number; send: typeof streams }>();
  const entry = (p: ClusterPod): { listen: number; send: typeof streams } => {
    let e = byPod.get(p);
    if (!e) { e = { listen: 0, send: [] }; byPod.set(p, e); }
    return e;
  };
  for (const s of streams) { entry(s.to).listen++; entry(s.from).send.push(s); }
  const procs = [...byPod.entries()].map(([pod, e]) => {
    const cfg = {
      listen: e.listen > 0 ? { host: pod.ip, port, expect: e.listen } : undefined,
      bind: pod.ip,
      send: e.send.map((s) => ({ id: s.id, host: s.to.ip, port, bytes })),
      timeoutMs,
    };
    const child = pod.ns.spawn(process.execPath, ['-e', PEER_SCRIPT, JSON.stringify(cfg)], { stdio: ['pipe', 'pipe', 'pipe'] });
    const p = { pod, child, out: '', err: '', exited: false };
    child.stdout?.on('data', (d: Buffer) => { p.out += d.toString(); });
    child.stderr?.on('data', (d: Buffer) => { p.err += d.toString(); });
    child.on('exit', () => { p.exited = true; });
    return p;
  });
  const killAll = (): void => {
    for (const p of procs) if (!p.exited && p.child.pid) try { process.kill(p.child.pid, 'SIGKILL'); } catch { /* gone */ }
  };
  const describe = (): string => procs.map((p) => `${p.pod.name}: ${p.out.trim()} ${p.err.trim()}`).join('\n');
  try {
    while (!procs.every((p) => /"role":"listening"/.test(p.out))) {
      const dead = procs.find((p) => p.exited);
      if (dead) throw new Error(`tcpStreams: the peer in ${dead.pod.name} exited before listening:\n${describe()}`);
      if (Date.now() > deadline) throw new Error(`tcpStreams: peers not listening within ${timeoutMs} ms:\n${describe()}`);
      await new Promise((r) => setTimeout(r, 25));
    }
    for (const p of procs) p.child.stdin?.end('go\n');
    while (!procs.every((p) => p.exited) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  } finally {
    killAll();
  }
  const lines = procs.flatMap((p) => parseLines(p.out).map((l) => ({ pod: p.pod, l })));
  return streams.map((s) => {
    const send = lines.find((x) => x.l.role === 'send' && x.l.id === s.id)?.l;
    const recv = lines.find((x) => x.l.role === 'recv' && x.l.id === s.id)?.l;
    const matched = send?.sha256 !== undefined && send.bytes === bytes && recv?.bytes === bytes && recv.sha256 === send.sha256 && send.ack === send.sha256;
    const errors = [send?.error, recv?.error, !send ? 'sender reported nothing' : undefined, !recv ? 'receiver reported nothing' : undefined].filter(Boolean);
    const timedOut = !matched && Date.now() >= deadline ? [`not done within ${timeoutMs} ms`] : [];
    return {
      from: ref(s.from), to: ref(s.to), bytes,
      sent: send?.bytes ?? 0, received: recv?.bytes ?? 0,
      sentSha256: send?.sha256, receivedSha256: recv?.sha256,
      matched, ms: send?.ms,
      error: matched ? undefined : [...errors, ...timedOut].join('; ') || 'digests differ',
    };
  });
}

/** The streams that did not carry their bytes intact, as lines for an assertion message. */
export function tcpFailures(results: readonly TcpStreamResult[]): string[] {
  return results.filter((r) => !r.matched)
    .map((r) => `${r.from.pod} → ${r.to.pod}: sent ${r.sent}/${r.bytes}, received ${r.received}: ${r.error ?? ''}`);
}
