// Traffic between the pods of a cluster built by cluster-net.ts: a ping matrix (every pod to every
// pod on another node); a continuous ping, stopped by pid with SIGINT, whose mark() reports the
// echoes sent, answered and lost and the longest gap since the previous mark; one TCP stream per
// node pair whose bytes are checked end to end (SHA-256 of a deterministic AES-CTR byte stream on
// both sides); and PacedStreams, long-lived paced TCP streams per node pair whose receivers check
// every byte as it arrives and report bytes and the longest gap between arrivals per mark. Each
// pod taking part in the streams runs one small Node process (receiver and sender in one) — node
// startup costs seconds under the VM's emulation, so never one process per stream.
// Every wait is bounded; processes are killed by pid.
import type { ChildProcess } from 'node:child_process';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
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

/** Where node-pair traffic runs: which pod of the sending (lower-index) node and of the other; default 0 and 0. */
export interface PodChoice { readonly srcPod?: number; readonly dstPod?: number }

/** One (from, to) per node pair: 'unordered' from the lower-index node only, 'ordered' both ways. */
function nodePairs(cluster: Cluster, pairs: 'unordered' | 'ordered', o: PodChoice, who: string): Array<{ id: string; from: ClusterPod; to: ClusterPod }> {
  const out: Array<{ id: string; from: ClusterPod; to: ClusterPod }> = [];
  for (const a of cluster.nodes) for (const b of cluster.nodes) {
    if (a === b || (pairs !== 'ordered' && a.index > b.index)) continue;
    const from = a.pods[(o.srcPod ?? 0) % a.pods.length];
    const to = b.pods[(o.dstPod ?? 0) % b.pods.length];
    if (!from || !to) throw new Error(`${who}: ${a.name} or ${b.name} has no pods`);
    out.push({ id: `${from.name}->${to.name}`, from, to });
  }
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

/** ICMP echo sequence numbers are 16 bits (RFC 792); iputils prints them modulo 2^16. */
const ICMP_SEQ_SPACE = 0x10000;

/** What `ping -O` printed, by sequence number (unwrapped past 65535, so one run has no repeats). */
export interface PingLog {
  /** Sequence numbers an echo reply came back for (duplicates once). */
  readonly answered: ReadonlySet<number>;
  /** Round-trip time of an answered echo, where ping printed one. */
  readonly rttMs: ReadonlyMap<number, number>;
  /** An ICMP error that came back instead (e.g. "Destination Host Unreachable"): not an answer. */
  readonly icmpErrors: ReadonlyMap<number, string>;
  /** The highest sequence number ping showed it had sent (answered, "no answer yet" or an ICMP error); 0 when none. */
  readonly highestSent: number;
}

/**
 * Parse `ping -O` output (iputils; with or without -D timestamps). Lines that are no echo reply —
 * "no answer yet for icmp_seq=N" (-O, printed when N+1 is sent), "From GW icmp_seq=N Destination
 * Host Unreachable" — count as sent and unanswered.
 */
export function parsePingLog(text: string): PingLog {
  const answered = new Set<number>();
  const rttMs = new Map<number, number>();
  const icmpErrors = new Map<number, string>();
  let highest = 0;
  // The candidate k·2^16 + raw nearest the highest seen so far: a wrap goes forward, a late reply stays behind.
  const unwrap = (raw: number): number => {
    const base = Math.floor(highest / ICMP_SEQ_SPACE) * ICMP_SEQ_SPACE + raw;
    const best = [base - ICMP_SEQ_SPACE, base, base + ICMP_SEQ_SPACE].filter((x) => x >= 0)
      .reduce((a, b) => (Math.abs(b - highest) < Math.abs(a - highest) ? b : a));
    highest = Math.max(highest, best);
    return best;
  };
  for (const line of text.split('\n')) {
    const reply = /\d+ bytes from .*?icmp_seq=(\d+)(?:.*? time=([\d.]+) ms)?/.exec(line);
    if (reply) {
      const seq = unwrap(Number(reply[1]));
      answered.add(seq);
      if (reply[2] !== undefined && !rttMs.has(seq)) rttMs.set(seq, Number(reply[2]));
      continue;
    }
    const none = /no answer yet for icmp_seq=(\d+)/.exec(line);
    if (none) { unwrap(Number(none[1])); continue; }
    const err = /From .*?icmp_seq=(\d+) (.+)$/.exec(line);
    if (err) icmpErrors.set(unwrap(Number(err[1])), err[2]!.trim());
  }
  return { answered, rttMs, icmpErrors, highestSent: highest };
}

export interface PingWindow {
  /** Sequence numbers the window covers, firstSeq..lastSeq (none when lastSeq < firstSeq). */
  readonly firstSeq: number;
  readonly lastSeq: number;
  readonly sent: number;
  readonly received: number;
  /** Sequence numbers in the window that no reply came back for. */
  readonly lost: number[];
  /** Longest time without an answer, in steps of the interval (see pingWindow); the interval itself when nothing was lost. */
  readonly longestGapMs: number;
  readonly maxRttMs: number | undefined;
}

export interface PingWindowOptions {
  /** ping's -i. */
  readonly intervalMs: number;
  /**
   * An echo still unanswered after this long (judged by how many were sent after it) is lost even
   * when no later echo was answered, i.e. while an outage is still going on; default 1000 ms.
   */
  readonly graceMs?: number;
  /** End the window at this sequence number at least (stop(): all ping sent but the last echo). */
  readonly endAtLeast?: number;
}

/**
 * The echoes after `afterSeq` (the previous window's lastSeq; 0 at the start): up to the highest
 * answered sequence number — later echoes may still be in flight and belong to the next window —
 * or, when nothing new was answered for a while, up to the last echo older than the grace.
 *
 * The gap is counted in sequence numbers × interval, not from `ping -D` timestamps: it says which
 * echoes went unanswered and nothing else, so it is exact and the same on every run with the same
 * losses. Arrival times would add reply jitter and the scheduling of ping itself and of whoever
 * reads its pipe; under the cluster lane's single-threaded TCG a stalled process would show up as a
 * "gap" with nothing lost. A reply that is merely slow is visible in maxRttMs instead.
 * The first gap is measured from the window's start (the previous window's last echo), so a gap that
 * spans two windows shows in each with the part that falls in it.
 */
export function pingWindow(log: PingLog, afterSeq: number, o: PingWindowOptions): PingWindow {
  if (!(o.intervalMs > 0)) throw new Error(`pingWindow: intervalMs is ${o.intervalMs}, want > 0`);
  const graceSeqs = Math.ceil((o.graceMs ?? 1000) / o.intervalMs);
  let highestAnswered = 0;
  for (const s of log.answered) if (s > highestAnswered) highestAnswered = s;
  const lastSeq = Math.max(afterSeq, highestAnswered, log.highestSent - graceSeqs, o.endAtLeast ?? 0);
  const lost: number[] = [];
  let received = 0, prev = afterSeq, longest = 0;
  let maxRttMs: number | undefined;
  for (let s = afterSeq + 1; s <= lastSeq; s++) {
    if (!log.answered.has(s)) { lost.push(s); continue; }
    received++;
    longest = Math.max(longest, s - prev);
    prev = s;
    const rtt = log.rttMs.get(s);
    if (rtt !== undefined) maxRttMs = Math.max(maxRttMs ?? 0, rtt);
  }
  // Unanswered echoes at the end (an outage still going on) are a gap too.
  longest = Math.max(longest, lastSeq - prev);
  return { firstSeq: afterSeq + 1, lastSeq, sent: lastSeq - afterSeq, received, lost, longestGapMs: longest * o.intervalMs, maxRttMs };
}

export interface ContinuousPingResult {
  readonly sent: number;
  readonly received: number;
  /** Unanswered sequence numbers before the last one sent (the echo in flight at SIGINT is no loss). */
  readonly lost: number[];
  /** The longest time without an answer over the whole run (see pingWindow). */
  readonly longestGapMs: number;
  readonly maxRttMs: number | undefined;
  readonly wasRunning: boolean;
  readonly tail: string;
}

/**
 * `ping -O -i 0.1` running until stop(): SIGINT by pid makes it print its summary. -O prints "no
 * answer yet for icmp_seq=N" when N+1 goes out unanswered, so the output names every echo sent,
 * which lets mark() close a window during an outage. mark() reports the echoes since the previous
 * mark; an echo in flight at stop() is not a loss.
 */
export class ContinuousPing {
  readonly #p: ChildProcess;
  readonly #intervalMs: number;
  readonly #graceMs: number | undefined;
  #out = '';
  #markedSeq = 0;

  /** `graceMs`: how long mark() waits for an echo's answer before counting it lost (pingWindow). */
  constructor(ns: Netns, from: string, to: string, o: { intervalMs?: number; graceMs?: number } = {}) {
    this.#intervalMs = o.intervalMs ?? 100;
    this.#graceMs = o.graceMs;
    this.#p = ns.spawn('ping', ['-O', '-i', (this.#intervalMs / 1000).toFixed(3), '-I', from, to]);
    this.#p.stdout?.on('data', (d: Buffer) => { this.#out += d.toString(); });
  }

  get running(): boolean { return this.#p.exitCode === null && this.#p.signalCode === null; }

  /**
   * Start the next window after every echo sent so far, answered or not: what follows is judged
   * from now on (mark() keeps the last second's unanswered echoes in the next window instead).
   */
  markSent(): void {
    this.#markedSeq = Math.max(this.#markedSeq, parsePingLog(this.#out).highestSent);
  }

  /** The echoes since the previous mark (or the start), up to the highest one answered so far. */
  mark(): PingWindow {
    const w = pingWindow(parsePingLog(this.#out), this.#markedSeq, { intervalMs: this.#intervalMs, ...(this.#graceMs === undefined ? {} : { graceMs: this.#graceMs }) });
    this.#markedSeq = w.lastSeq;
    return w;
  }

  async stop(): Promise<ContinuousPingResult> {
    const wasRunning = this.running;
    const done = new Promise<void>((r) => { if (!this.running) r(); else this.#p.on('exit', () => r()); });
    if (this.#p.pid && wasRunning) process.kill(this.#p.pid, 'SIGINT');
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([done, new Promise((r) => { timer = setTimeout(r, 15_000); })]);
    clearTimeout(timer);
    if (this.running && this.#p.pid) try { process.kill(this.#p.pid, 'SIGKILL'); } catch { /* gone */ }
    const c = pingCounts(this.#out);
    const whole = pingWindow(parsePingLog(this.#out), 0, { intervalMs: this.#intervalMs, endAtLeast: c.sent - 1 });
    return { ...c, lost: whole.lost, longestGapMs: whole.longestGapMs, maxRttMs: whole.maxRttMs, wasRunning, tail: this.#out.split('\n').slice(-4).join('\n') };
  }
}

export interface NodePairPing { readonly from: PodRef; readonly to: PodRef; readonly ping: ContinuousPing }

/** A ContinuousPing per unordered node pair, from a pod of the lower-index node to a pod of the other. */
export function pingEveryNodePair(cluster: Cluster, o: { intervalMs?: number; srcPod?: number; dstPod?: number } = {}): NodePairPing[] {
  return nodePairs(cluster, 'unordered', o, 'pingEveryNodePair')
    .map(({ from, to }) => ({ from: ref(from), to: ref(to), ping: new ContinuousPing(from.ns, from.ip, to.ip, o.intervalMs === undefined ? {} : { intervalMs: o.intervalMs }) }));
}

/** One report line: `node-a-pod-0 → node-b-pod-0: ping 30 sent, 30 received, longest gap 100 ms`. */
export function pingWindowLine(p: { readonly from: PodRef; readonly to: PodRef }, w: PingWindow): string {
  const lost = w.lost.length === 0 ? '' : `, lost ${w.lost.length} (seq ${compactSeqs(w.lost)})`;
  return `${p.from.pod} → ${p.to.pod}: ping ${w.sent} sent, ${w.received} received, longest gap ${w.longestGapMs} ms${lost}`;
}

/** 3,4,5,9 → "3-5,9". */
function compactSeqs(seqs: readonly number[]): string {
  const runs: string[] = [];
  for (let i = 0; i < seqs.length;) {
    let j = i;
    while (j + 1 < seqs.length && seqs[j + 1] === seqs[j]! + 1) j++;
    runs.push(j === i ? String(seqs[i]) : `${seqs[i]}-${seqs[j]}`);
    i = j + 1;
  }
  return runs.join(',');
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

/** The JSON lines a peer printed (its own, trusted to have the shape T). */
function parseLines<T extends { role: string }>(text: string): T[] {
  const out: T[] = [];
  for (const l of text.split('\n')) {
    if (!l.trim()) continue;
    try { out.push(JSON.parse(l) as T); } catch { /* not ours */ }
  }
  return out;
}

/** One TCP stream per node pair (a pod on A → a pod on B), checked end to end; bounded in time. */
export async function tcpStreams(cluster: Cluster, o: TcpStreamOptions = {}): Promise<TcpStreamResult[]> {
  const bytes = o.bytes ?? 1 << 20;
  const port = o.port ?? 5201;
  const timeoutMs = o.timeoutMs ?? 60_000;
  const deadline = Date.now() + timeoutMs;
  const streams = nodePairs(cluster, o.pairs ?? 'unordered', o, 'tcpStreams');
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
  const lines = procs.flatMap((p) => parseLines<PeerLine>(p.out).map((l) => ({ pod: p.pod, l })));
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

// ---------------------------------------------------------------------------------------------
// Paced streams

/**
 * The per-pod process of PacedStreams, plain JavaScript run with `node -e`. argv[1] is its JSON
 * config: {listen?: {host, port, ids}, bind, send: [{id, host, port}], chunkBytes, intervalMs,
 * lifeMs, corrupt?: {id, offset}}. Commands on stdin, one a line: `go` (senders connect),
 * `mark N`, `stop`. A sender writes `<id>\n`, then chunkBytes of the stream's keystream (the same
 * AES-128-CTR as PEER_SCRIPT) every intervalMs until `stop`, then half-closes; the receiver checks
 * every byte as it arrives against its own copy of the keystream, so a corrupted byte is reported
 * at its offset, and writes its total back before closing. Nothing reconnects: a second connection
 * for a stream is an error. JSON lines out:
 *   {role:'listening'} · {role:'connected', id} (sender)
 *   {role:'mark', n, id, bytes, total, longestGapMs, connected, error?, offset?} (receiver: bytes and
 *     longest gap between arrivals since the previous mark; the window's gap restarts)
 *   {role:'smark', n, id, sent, error?, offset?} (sender)
 *   {role:'error', side, id, offset, error} at once, for a socket error, reset or mismatch
 *   {role:'final', id, total, longestGapMs, ended, error?, offset?} (receiver, whole run)
 *   {role:'sent', id, bytes, ack, error?, offset?} (sender; ack is the receiver's total, echoed back)
 *   {role:'timeout'} after lifeMs, {role:'orphaned'} when stdin closes before `stop`: then it exits.
 * Times are from the monotonic clock.
 */
const PACED_SCRIPT = String.raw`
const net = require('node:net'), crypto = require('node:crypto');
const cfg = JSON.parse(process.argv[1]);
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const now = () => Number(process.hrtime.bigint() / 1000000n);
const keystream = (id) => crypto.createCipheriv('aes-128-ctr', crypto.createHash('sha256').update(id).digest().subarray(0, 16), Buffer.alloc(16));
setTimeout(() => { out({ role: 'timeout' }); process.exit(2); }, cfg.lifeMs).unref();
let stopping = false, server;
const recv = new Map((cfg.listen ? cfg.listen.ids : []).map((id) => [id, { id, ks: keystream(id), conn: false, total: 0, winBytes: 0, winStart: null, lastAt: null, winGap: 0, allGap: 0, ended: false, final: false, error: null }]));
const send = cfg.send.map((t) => ({ t, id: t.id, ks: keystream(t.id), sock: null, connected: false, sent: 0, ack: '', timer: null, closed: false, error: null }));
const fail = (st, side, offset, error) => {
  if (st.error) return;
  st.error = { offset, error };
  out({ role: 'error', side, id: st.id, offset, error });
};
const errOf = (st) => (st.error ? { error: st.error.error, offset: st.error.offset } : {});
const maybeExit = () => {
  if (!stopping || send.some((s) => !s.closed) || [...recv.values()].some((r) => !r.final)) return;
  if (server) server.close();
  setImmediate(() => process.exit(0));
};
const startClock = (st, t) => { if (st.lastAt === null) { st.lastAt = t; st.winStart = t; } };
function finalize(st) {
  if (st.final) return;
  st.final = true;
  if (!st.ended) fail(st, 'recv', st.total, st.conn ? 'closed without the end of the stream' : 'never connected');
  if (st.lastAt !== null) st.allGap = Math.max(st.allGap, now() - st.lastAt);
  out(Object.assign({ role: 'final', id: st.id, total: st.total, longestGapMs: st.allGap, ended: st.ended }, errOf(st)));
  maybeExit();
}
function serve(s) {
  s.setNoDelay(true);
  let head = Buffer.alloc(0), st = null, rejected = false;
  s.on('data', (d) => {
    if (rejected) return;
    if (st === null) {
      head = Buffer.concat([head, d]);
      const nl = head.indexOf(10);
      if (nl < 0) { if (head.length > 1024) { rejected = true; out({ role: 'error', side: 'recv', id: null, offset: 0, error: 'no stream id line' }); s.destroy(); } return; }
      const id = head.subarray(0, nl).toString();
      const known = recv.get(id);
      if (!known || known.conn || known.final) {
        rejected = true;
        if (known) fail(known, 'recv', known.total, 'a second connection for the stream (streams never reconnect)');
        else out({ role: 'error', side: 'recv', id, offset: 0, error: 'unexpected stream id' });
        s.destroy();
        return;
      }
      st = known; st.conn = true; startClock(st, now());
      d = head.subarray(nl + 1);
      if (d.length === 0) return;
    }
    if (st.error) return;
    const t = now();
    st.winGap = Math.max(st.winGap, t - Math.max(st.lastAt, st.winStart));
    st.allGap = Math.max(st.allGap, t - st.lastAt);
    st.lastAt = t;
    const want = st.ks.update(Buffer.alloc(d.length));
    if (!d.equals(want)) {
      let i = 0;
      while (d[i] === want[i]) i++;
      st.total += i; st.winBytes += i;
      fail(st, 'recv', st.total, 'byte mismatch: got 0x' + d[i].toString(16) + ', want 0x' + want[i].toString(16));
      s.destroy();
      return;
    }
    st.total += d.length; st.winBytes += d.length;
  });
  s.on('end', () => { if (st !== null && !st.error) { st.ended = true; s.end(st.total + '\n'); } else s.end(); });
  s.on('error', (e) => { if (st !== null) fail(st, 'recv', st.total, e.code || e.message); });
  s.on('close', () => { if (st !== null) finalize(st); });
}
function connect(st) {
  const s = net.connect({ host: st.t.host, port: st.t.port, localAddress: cfg.bind });
  st.sock = s;
  s.setNoDelay(true);
  const tick = () => {
    if (stopping || st.error || st.closed) return;
    const chunk = st.ks.update(Buffer.alloc(cfg.chunkBytes));
    const c = cfg.corrupt;
    if (c && c.id === st.id && c.offset >= st.sent && c.offset < st.sent + chunk.length) chunk[c.offset - st.sent] ^= 0xff;
    s.write(chunk);
    st.sent += chunk.length;
  };
  s.on('connect', () => {
    st.connected = true;
    out({ role: 'connected', id: st.id });
    s.write(st.id + '\n');
    tick();
    st.timer = setInterval(tick, cfg.intervalMs);
  });
  s.on('data', (d) => { st.ack += d; });
  s.on('end', () => { if (!stopping) fail(st, 'send', st.sent, 'the receiver ended the stream before stop'); });
  s.on('error', (e) => fail(st, 'send', st.sent, e.code || e.message));
  s.on('close', () => {
    clearInterval(st.timer);
    if (!stopping) fail(st, 'send', st.sent, 'closed before stop');
    st.closed = true;
    out(Object.assign({ role: 'sent', id: st.id, bytes: st.sent, ack: st.ack.trim() }, errOf(st)));
    maybeExit();
  });
}
function mark(n) {
  const t = now();
  for (const st of recv.values()) {
    if (st.lastAt !== null) st.winGap = Math.max(st.winGap, t - Math.max(st.lastAt, st.winStart));
    out(Object.assign({ role: 'mark', n, id: st.id, bytes: st.winBytes, total: st.total, longestGapMs: st.winGap, connected: st.conn }, errOf(st)));
    st.winBytes = 0; st.winGap = 0;
    if (st.lastAt !== null) st.winStart = t;
  }
  for (const st of send) out(Object.assign({ role: 'smark', n, id: st.id, sent: st.sent }, errOf(st)));
}
function stop() {
  if (stopping) return;
  stopping = true;
  for (const st of send) {
    clearInterval(st.timer);
    if (st.closed) continue;
    if (st.connected) st.sock.end();
    else { fail(st, 'send', 0, 'not connected at stop'); st.sock.destroy(); }
  }
  for (const st of recv.values()) if (!st.conn) finalize(st);
  maybeExit();
}
function command(line) {
  const [cmd, arg] = line.split(' ');
  if (cmd === 'go') { const t = now(); for (const st of recv.values()) startClock(st, t); for (const st of send) connect(st); }
  else if (cmd === 'mark') mark(Number(arg));
  else if (cmd === 'stop') stop();
}
let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (d) => {
  input += d;
  for (let nl = input.indexOf('\n'); nl >= 0; nl = input.indexOf('\n')) { const line = input.slice(0, nl).trim(); input = input.slice(nl + 1); command(line); }
});
process.stdin.on('end', () => { if (!stopping) { out({ role: 'orphaned' }); process.exit(4); } });
if (cfg.listen) {
  server = net.createServer({ allowHalfOpen: true }, serve);
  server.on('error', (e) => { out({ role: 'error', side: 'listen', id: null, offset: 0, error: e.message }); process.exit(3); });
  server.listen(cfg.listen.port, cfg.listen.host, () => out({ role: 'listening' }));
} else out({ role: 'listening' });
`;

export interface PacedStreamOptions extends PodChoice {
  /** Bytes written per tick; default 1024. */
  readonly chunkBytes?: number;
  /** Between writes; default 100 ms. */
  readonly intervalMs?: number;
  /** Receivers' port; default 5202 (tcpStreams uses 5201, so both can run at once). */
  readonly port?: number;
  /** Bound for start(): every peer listening, then every stream connected; default 60 s (node takes seconds to start under the VM). */
  readonly startTimeoutMs?: number;
  /** Bound for mark() to get every stream's line from both ends; default 15 s. */
  readonly markTimeoutMs?: number;
  /** Bound for stop() to get every stream's final report; then the peers are killed; default 30 s. */
  readonly stopTimeoutMs?: number;
  /** The peers exit by themselves after this (a stop() that never came); default 2 h. */
  readonly maxLifeMs?: number;
  /** A test of the probe itself: the sender of stream `id` flips the byte at `offset`. */
  readonly corrupt?: { readonly id: string; readonly offset: number };
}

export interface PacedStream { readonly id: string; readonly from: PodRef; readonly to: PodRef }

export interface StreamWindow extends PacedStream {
  /** 1 for the first mark(). */
  readonly mark: number;
  /** Bytes the receiver got and checked since the previous mark (or since `go`). */
  readonly bytes: number;
  readonly totalBytes: number;
  /** Bytes the sender had written in all when it saw the mark (the difference is in flight). */
  readonly sentTotal: number | undefined;
  /** Longest time between two arrivals in the window (its start and end count as arrivals). */
  readonly longestGapMs: number;
  /** The first error on the stream, from either end, with its offset; sticky. */
  readonly error: string | undefined;
}

export interface StreamFinal extends PacedStream {
  /** Bytes the sender wrote. */
  readonly sent: number;
  /** Bytes the receiver got, every one checked against the keystream. */
  readonly received: number;
  /** The receiver's total as it came back to the sender on the same connection. */
  readonly acked: number | undefined;
  /** Longest time between two arrivals over the whole run. */
  readonly longestGapMs: number;
  /** No error, the stream ended with the sender's FIN, and sent = received = acked. */
  readonly intact: boolean;
  readonly error: string | undefined;
}

interface PacedLine {
  role: string; id?: string | null; n?: number; side?: string; offset?: number; error?: string;
  bytes?: number; total?: number; sent?: number; longestGapMs?: number; connected?: boolean; ended?: boolean; ack?: string;
}

interface PacedPeer { readonly pod: ClusterPod; readonly child: ChildProcess; out: string; err: string; exited: boolean; readonly lines: PacedLine[] }

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Poll `done` every 25 ms until it holds or `timeoutMs` passes; true if it held. */
async function until(timeoutMs: number, done: () => boolean): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() >= deadline) return false;
    await sleep(25);
  }
  return true;
}

function lineError(l: PacedLine | undefined): string | undefined {
  if (l?.error === undefined) return undefined;
  return `${l.error}${l.offset === undefined ? '' : ` at offset ${l.offset}`}`;
}

/**
 * Long-lived TCP streams, one per unordered node pair, each writing chunkBytes every intervalMs
 * of a deterministic byte stream that the receiver checks byte by byte as it arrives. mark()
 * reports, per stream, the bytes and the longest gap between arrivals since the previous mark;
 * stop() ends the streams and checks that every byte sent arrived. One node process per pod
 * taking part (PACED_SCRIPT). Every wait is bounded; the peers are killed by pid when stop() runs
 * out of time or start() fails, and by the namespaces' cleanup otherwise.
 */
export class PacedStreams {
  readonly streams: readonly PacedStream[];
  readonly #peers: readonly PacedPeer[];
  readonly #o: { markTimeoutMs: number; stopTimeoutMs: number };
  #marks = 0;
  #final: StreamFinal[] | undefined;

  private constructor(streams: readonly PacedStream[], peers: readonly PacedPeer[], o: { markTimeoutMs: number; stopTimeoutMs: number }) {
    this.streams = streams;
    this.#peers = peers;
    this.#o = o;
  }

  static async start(cluster: Cluster, o: PacedStreamOptions = {}): Promise<PacedStreams> {
    const chunkBytes = o.chunkBytes ?? 1024;
    const intervalMs = o.intervalMs ?? 100;
    const port = o.port ?? 5202;
    const startTimeoutMs = o.startTimeoutMs ?? 60_000;
    if (!Number.isInteger(chunkBytes) || chunkBytes < 1) throw new Error(`PacedStreams: chunkBytes is ${chunkBytes}, want an integer ≥ 1`);
    if (!(intervalMs >= 1)) throw new Error(`PacedStreams: intervalMs is ${intervalMs}, want ≥ 1`);
    const pairs = nodePairs(cluster, 'unordered', o, 'PacedStreams');
    const byPod = new Map<ClusterPod, { listen: string[]; send: typeof pairs }>();
    const entry = (p: ClusterPod): { listen: string[]; send: typeof pairs } => {
      let e = byPod.get(p);
      if (!e) { e = { listen: [], send: [] }; byPod.set(p, e); }
      return e;
    };
    for (const s of pairs) { entry(s.to).listen.push(s.id); entry(s.from).send.push(s); }
    const peers: PacedPeer[] = [...byPod.entries()].map(([pod, e]) => {
      const cfg = {
        listen: e.listen.length > 0 ? { host: pod.ip, port, ids: e.listen } : undefined,
        bind: pod.ip,
        send: e.send.map((s) => ({ id: s.id, host: s.to.ip, port })),
        chunkBytes, intervalMs, lifeMs: o.maxLifeMs ?? 7_200_000, corrupt: o.corrupt,
      };
      const child = pod.ns.spawn(process.execPath, ['-e', PACED_SCRIPT, JSON.stringify(cfg)], { stdio: ['pipe', 'pipe', 'pipe'] });
      const p: PacedPeer = { pod, child, out: '', err: '', exited: false, lines: [] };
      child.stdout?.on('data', (d: Buffer) => {
        p.out += d.toString();
        const nl = p.out.lastIndexOf('\n');
        if (nl < 0) return;
        p.lines.push(...parseLines<PacedLine>(p.out.slice(0, nl)));
        p.out = p.out.slice(nl + 1);
      });
      child.stderr?.on('data', (d: Buffer) => { p.err += d.toString(); });
      child.stdin?.on('error', () => { /* the peer is gone; its exit says why */ });
      child.on('exit', () => { p.exited = true; });
      return p;
    });
    const streams = pairs.map((s) => ({ id: s.id, from: ref(s.from), to: ref(s.to) }));
    const self = new PacedStreams(streams, peers, { markTimeoutMs: o.markTimeoutMs ?? 15_000, stopTimeoutMs: o.stopTimeoutMs ?? 30_000 });
    try {
      const listening = await until(startTimeoutMs, () => peers.every((p) => p.exited || p.lines.some((l) => l.role === 'listening')));
      const dead = peers.find((p) => p.exited);
      if (dead) throw new Error(`PacedStreams: the peer in ${dead.pod.name} exited before listening:\n${self.#describe()}`);
      if (!listening) throw new Error(`PacedStreams: peers not listening within ${startTimeoutMs} ms:\n${self.#describe()}`);
      self.#send('go');
      const connected = await until(startTimeoutMs, () => streams.every((s) => self.#line('connected', s.id) || self.#line('error', s.id)) || peers.some((p) => p.exited));
      const bad = streams.filter((s) => !self.#line('connected', s.id));
      if (!connected || bad.length > 0)
        throw new Error(`PacedStreams: ${bad.map((s) => s.id).join(', ') || 'some stream'} not connected within ${startTimeoutMs} ms:\n${[...self.errors(), self.#describe()].join('\n')}`);
    } catch (e) {
      self.kill();
      throw e;
    }
    return self;
  }

  /** Per stream: bytes and longest gap since the previous mark (or `go`), and any error so far. */
  async mark(): Promise<StreamWindow[]> {
    const n = ++this.#marks;
    this.#send(`mark ${n}`);
    const has = (role: string, id: string): boolean => this.#line(role, id, n) !== undefined;
    await until(this.#o.markTimeoutMs, () => this.streams.every((s) =>
      (has('mark', s.id) || this.#peerOf(s.to).exited) && (has('smark', s.id) || this.#peerOf(s.from).exited)));
    return this.streams.map((s) => {
      const r = this.#line('mark', s.id, n), w = this.#line('smark', s.id, n);
      const errors = [
        lineError(r) && `receiver: ${lineError(r)}`, lineError(w) && `sender: ${lineError(w)}`,
        !r && `no mark ${n} from the receiver in ${s.to.pod} within ${this.#o.markTimeoutMs} ms${this.#peerOf(s.to).exited ? ' (it exited)' : ''}`,
        !w && `no mark ${n} from the sender in ${s.from.pod} within ${this.#o.markTimeoutMs} ms${this.#peerOf(s.from).exited ? ' (it exited)' : ''}`,
      ].filter((x): x is string => typeof x === 'string');
      return {
        ...s, mark: n, bytes: r?.bytes ?? 0, totalBytes: r?.total ?? 0, sentTotal: w?.sent,
        longestGapMs: r?.longestGapMs ?? 0, error: errors.length > 0 ? errors.join('; ') : undefined,
      };
    });
  }

  /** End every stream (the sender's FIN after its last chunk) and report what arrived; bounded, then killed by pid. */
  async stop(): Promise<StreamFinal[]> {
    if (this.#final) return this.#final;
    this.#send('stop');
    const ok = await until(this.#o.stopTimeoutMs, () => this.#peers.every((p) => p.exited));
    this.kill();
    // The last lines of a peer killed or just exited may still be in the pipe.
    await until(1_000, () => this.#peers.every((p) => p.child.stdout === null || p.child.stdout.readableEnded));
    this.#final = this.streams.map((s) => {
      const r = this.#line('final', s.id), w = this.#line('sent', s.id);
      const acked = w?.ack !== undefined && /^\d+$/.test(w.ack) ? Number(w.ack) : undefined;
      const sent = w?.bytes ?? 0, received = r?.total ?? 0;
      const errors = [
        lineError(r) && `receiver: ${lineError(r)}`, lineError(w) && `sender: ${lineError(w)}`,
        !r && `no final report from the receiver in ${s.to.pod}${ok ? '' : ` within ${this.#o.stopTimeoutMs} ms`}`,
        !w && `no final report from the sender in ${s.from.pod}${ok ? '' : ` within ${this.#o.stopTimeoutMs} ms`}`,
        r && w && !lineError(r) && !lineError(w) && (sent !== received || acked !== sent) && `sent ${sent}, received ${received}, acknowledged ${acked ?? 'nothing'}`,
      ].filter((x): x is string => typeof x === 'string');
      return {
        ...s, sent, received, acked, longestGapMs: r?.longestGapMs ?? 0,
        intact: errors.length === 0 && r?.ended === true, error: errors.length > 0 ? errors.join('; ') : undefined,
      };
    });
    return this.#final;
  }

  /** Every error a peer reported so far (socket error, reset, mismatch, timeout), with stream id and offset. */
  errors(): string[] {
    return this.#peers.flatMap((p) => p.lines
      .filter((l) => l.role === 'error' || l.role === 'timeout' || l.role === 'orphaned')
      .map((l) => (l.role === 'error' ? `${l.id ?? '(no stream)'} (${l.side ?? '?'} in ${p.pod.name}): ${lineError(l) ?? ''}` : `${p.pod.name}: peer ${l.role}`)));
  }

  /** SIGKILL every peer still running, by pid; for finally paths (stop() does it when it runs out of time). */
  kill(): void {
    for (const p of this.#peers) if (!p.exited && p.child.pid) try { process.kill(p.child.pid, 'SIGKILL'); } catch { /* gone */ }
  }

  #send(cmd: string): void {
    for (const p of this.#peers) if (!p.exited && p.child.stdin?.writable) p.child.stdin.write(`${cmd}\n`);
  }

  #peerOf(r: PodRef): PacedPeer {
    const p = this.#peers.find((x) => x.pod.name === r.pod);
    if (!p) throw new Error(`PacedStreams: no peer in ${r.pod}`);
    return p;
  }

  #line(role: string, id: string, n?: number): PacedLine | undefined {
    for (const p of this.#peers) {
      const l = p.lines.find((x) => x.role === role && x.id === id && (n === undefined || x.n === n));
      if (l) return l;
    }
    return undefined;
  }

  #describe(): string {
    return this.#peers.map((p) => `${p.pod.name}${p.exited ? ` (exited ${p.child.exitCode ?? p.child.signalCode})` : ''}: ${p.lines.map((l) => JSON.stringify(l)).join(' ')} ${p.out} ${p.err.trim()}`).join('\n');
  }
}

/** The windows or final reports that show a problem, as lines for an assertion message. */
export function streamFailures(items: readonly StreamWindow[] | readonly StreamFinal[]): string[] {
  const out: string[] = [];
  for (const x of items) {
    if ('intact' in x) {
      if (!x.intact) out.push(`${x.id}: sent ${x.sent}, received ${x.received}: ${x.error ?? 'did not end with the sender\'s FIN'}`);
    } else if (x.error !== undefined) out.push(`${x.id} (mark ${x.mark}): ${x.error}`);
  }
  return out;
}

/** One report line: `node-a-pod-0 → node-b-pod-0: stream 15360 B (total 30720 B, sent 31744 B), longest gap 101 ms`. */
export function streamWindowLine(w: StreamWindow): string {
  return `${w.from.pod} → ${w.to.pod}: stream ${w.bytes} B (total ${w.totalBytes} B, sent ${w.sentTotal ?? '?'} B), longest gap ${w.longestGapMs} ms${w.error === undefined ? '' : `: ${w.error}`}`;
}

/**
 * `bytes` random octets from `from` to a socat listener at `toIp:port` in `to` (files under `dir`),
 * checked byte for byte on arrival: one TCP transfer through whatever tunnel carries that address.
 */
export async function socatTransfer(dir: string, from: Netns, to: Netns, toIp: string, port: number, bytes: number): Promise<void> {
  const sent = randomBytes(bytes);
  const src = join(dir, `send-${port}`);
  const dst = join(dir, `recv-${port}`);
  writeFileSync(src, sent);
  const server = to.spawn('socat', ['-u', `TCP-LISTEN:${port},bind=${toIp},reuseaddr`, `OPEN:${dst},creat,trunc`]);
  const serverDone = new Promise<number | null>((r) => server.once('exit', (code) => r(code)));
  let client = { code: 1, stdout: '', stderr: '' };
  for (let i = 0; i < 40 && client.code !== 0; i++) { // the listener may not be up yet: retry, bounded
    client = await from.run('socat', ['-u', `OPEN:${src}`, `TCP:${toIp}:${port},connect-timeout=2`], { timeoutMs: 30_000, check: false });
    if (client.code !== 0) await sleep(100);
  }
  assert.equal(client.code, 0, `socat client → ${toIp}:${port}: ${client.stderr}`);
  // unref: a pending bound must not keep the test process alive after the last transfer.
  const bound = new Promise<string>((r) => { setTimeout(r, 30_000, 'timeout').unref(); });
  assert.equal(await Promise.race([serverDone, bound]), 0, 'socat listener finished');
  const got = readFileSync(dst);
  assert.equal(got.length, sent.length, `bytes received at ${toIp}`);
  assert.ok(got.equals(sent), `${bytes} bytes arrived at ${toIp} as sent`);
}
