// Traffic generators shared by bench/esp-throughput.ts and bench/esp-vs-libipsec.ts, so every
// data path they compare is driven by the same code: one TCP stream with 64 KiB writes, and a UDP
// sender of 64-byte payloads (64 per macrotask). Both are small Node programs run inside a
// namespace (iperf3 is not installed here), bounded by `seconds`; sinks are killed by pid.
// Also: CPU-seconds of a process from /proc/<pid>/stat (utime + stime).
import { readFileSync } from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import type { Netns } from '../e2e/lib/netns.js';

const CLK_TCK = 100;

// TCP sink: reads and drops, closes when the sender ends. TCP source: writes for argv[2] seconds, prints JSON.
const TCP_SINK = `require('net').createServer((s) => { s.on('data', () => {}); s.on('end', () => s.end()); }).listen(5001, process.argv[1], () => console.log('ready'));`;
const TCP_SOURCE = `const net = require('net'); const chunk = Buffer.alloc(65536, 7); let bytes = 0; const t0 = process.hrtime.bigint();
const s = net.connect(5001, process.argv[1], () => { const stopAt = Date.now() + Number(process.argv[2]) * 1000;
  const pump = () => { while (Date.now() < stopAt) { bytes += chunk.length; if (!s.write(chunk)) return s.once('drain', pump); } s.end(); }; pump(); });
s.on('data', () => {}); s.on('close', () => { const sec = Number(process.hrtime.bigint() - t0) / 1e9; console.log(JSON.stringify({ bytes, sec })); });`;
// UDP source: 64-byte payloads, 64 per macrotask, for argv[2] seconds.
const UDP_SOURCE = `const d = require('dgram').createSocket('udp4'); const p = Buffer.alloc(64); let sent = 0; const stopAt = Date.now() + Number(process.argv[2]) * 1000;
const tick = () => { if (Date.now() >= stopAt) { d.close(); console.log(JSON.stringify({ sent })); return; } for (let i = 0; i < 64; i++) d.send(p, 5002, process.argv[1], () => { sent++; }); setImmediate(tick); }; tick();`;
// UDP sink: counts datagrams; prints "ready" once bound, the count on SIGTERM.
const UDP_SINK = `let received = 0; const d = require('dgram').createSocket('udp4'); d.on('message', () => { received++; });
d.bind(5002, process.argv[1], () => console.log('ready')); process.on('SIGTERM', () => { console.log(JSON.stringify({ received })); process.exit(0); });`;

export interface TcpResult { readonly bytes: number; readonly sec: number }
/** sec: the sender's sending time (it stops after that many seconds of its own clock). */
export interface UdpResult { readonly sent: number; readonly received: number; readonly sec: number }

export const gbitPerSec = (x: TcpResult): number => (x.bytes * 8) / x.sec / 1e9;

/** CPU-seconds (user + system) a process has used so far; 0 when no pid. */
export function cpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return 0;
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK; // utime, stime (proc(5) fields 14, 15)
}

/** Wait for a sink's "ready" line: bound, within 60 s (Node starts slowly under TCG emulation). */
async function sinkReady(sink: ChildProcess, what: string): Promise<void> {
  let out = '';
  sink.stdout?.on('data', (d: Buffer) => { out += d.toString(); });
  for (let i = 0; i < 600 && !out.includes('ready'); i++) await new Promise((r) => setTimeout(r, 100));
  if (!out.includes('ready')) throw new Error(`${what} sink did not bind within 60 s`);
}

/** One TCP stream from `from` to `toIp` (in `to`) for `seconds`. */
export async function tcpStream(from: Netns, to: Netns, toIp: string, seconds: number): Promise<TcpResult> {
  const sink = to.spawn(process.execPath, ['-e', TCP_SINK, toIp]);
  try {
    await sinkReady(sink, 'TCP');
    const r = await from.run(process.execPath, ['-e', TCP_SOURCE, toIp, String(seconds)], { timeoutMs: (seconds + 30) * 1000 });
    return JSON.parse(r.stdout) as TcpResult;
  } finally { if (sink.pid) try { process.kill(sink.pid, 'SIGKILL'); } catch { /* gone */ } }
}

/** 64-byte UDP datagrams from `from` to `toIp` for `seconds`; the sink in `to` counts what arrives. */
export async function udpFlood(from: Netns, to: Netns, toIp: string, seconds: number): Promise<UdpResult> {
  const sink = to.spawn(process.execPath, ['-e', UDP_SINK, toIp]);
  let out = '';
  sink.stdout?.on('data', (d: Buffer) => { out += d.toString(); });
  const exited = new Promise<void>((r) => sink.once('exit', () => r()));
  try {
    await sinkReady(sink, 'UDP');
    const r = await from.run(process.execPath, ['-e', UDP_SOURCE, toIp, String(seconds)], { timeoutMs: (seconds + 30) * 1000 });
    await new Promise((res) => setTimeout(res, 300)); // packets still in the tunnel
    if (sink.pid) process.kill(sink.pid, 'SIGTERM');
    await Promise.race([exited, new Promise((res) => setTimeout(res, 5_000))]);
    const m = /\{"received":(\d+)\}/.exec(out);
    if (!m) throw new Error(`UDP sink printed no count: ${out}`);
    return { sent: (JSON.parse(r.stdout) as { sent: number }).sent, received: Number(m[1]), sec: seconds };
  } finally { if (sink.pid && sink.exitCode === null) try { process.kill(sink.pid, 'SIGKILL'); } catch { /* gone */ } }
}
