// bench/esp-throughput — the userspace ESP data path (issue 12) between two namespaces
// (bench/esp-pair.ts): TCP throughput through the tunnel, small-packet rate (UDP, 64-byte
// payloads), and the engines' CPU-seconds per GB moved; the reference measured in the same run is
// the same TCP generator over the plain veth (no tunnel). No strongSwan comparison yet (issue 12's
// target: ≥ 2× kernel-libipsec).
//   node --import tsx bench/esp-throughput.ts [--seconds 5] [--algorithm aes-gcm-16|chacha20-poly1305]
// Needs root (namespaces, TUN). Generators are Node (iperf3 is not installed here): one TCP
// stream with 64 KiB writes, one UDP sender; both are bounded by --seconds.
import { readFileSync } from 'node:fs';
import type { EspAlgorithm } from '../src/esp/codec.js';
import { espTunnelPair, INNER, WIRE, type EspSide } from './esp-pair.js';

const arg = (name: string, dflt: string): string => { const i = process.argv.indexOf(`--${name}`); return i > 0 ? process.argv[i + 1] ?? dflt : dflt; };
const SECONDS = Number(arg('seconds', '5'));
const ALGORITHM = arg('algorithm', 'aes-gcm-16') as EspAlgorithm;
const CLK_TCK = 100;

// TCP sink: counts bytes, closes when the sender ends. TCP source: writes for SECONDS, prints JSON.
const TCP_SINK = `require('net').createServer((s) => { s.on('data', () => {}); s.on('end', () => s.end()); }).listen(5001, process.argv[1]);`;
const TCP_SOURCE = `const net = require('net'); const chunk = Buffer.alloc(65536, 7); let bytes = 0; const t0 = process.hrtime.bigint();
const s = net.connect(5001, process.argv[1], () => { const stopAt = Date.now() + Number(process.argv[2]) * 1000;
  const pump = () => { while (Date.now() < stopAt) { bytes += chunk.length; if (!s.write(chunk)) return s.once('drain', pump); } s.end(); }; pump(); });
s.on('data', () => {}); s.on('close', () => { const sec = Number(process.hrtime.bigint() - t0) / 1e9; console.log(JSON.stringify({ bytes, sec })); });`;
// UDP source: 64-byte payloads, 64 per macrotask, for SECONDS.
const UDP_SOURCE = `const d = require('dgram').createSocket('udp4'); const p = Buffer.alloc(64); let sent = 0; const stopAt = Date.now() + Number(process.argv[2]) * 1000;
const tick = () => { if (Date.now() >= stopAt) { d.close(); console.log(JSON.stringify({ sent })); return; } for (let i = 0; i < 64; i++) d.send(p, 5002, process.argv[1], () => { sent++; }); setImmediate(tick); }; tick();`;
const UDP_SINK = `require('dgram').createSocket('udp4').on('message', () => {}).bind(5002, process.argv[1]);`;

function cpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return 0;
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK; // utime, stime (proc(5) fields 14, 15)
}

const engineCpu = (a: EspSide, b: EspSide): number => cpuSeconds(a.child.pid) + cpuSeconds(b.child.pid);

async function tcp(a: EspSide, b: EspSide): Promise<{ bytes: number; sec: number }> {
  const sink = b.ns.spawn(process.execPath, ['-e', TCP_SINK, INNER.b]);
  try {
    await new Promise((r) => setTimeout(r, 300));
    const r = await a.ns.run(process.execPath, ['-e', TCP_SOURCE, INNER.b, String(SECONDS)], { timeoutMs: (SECONDS + 30) * 1000 });
    return JSON.parse(r.stdout) as { bytes: number; sec: number };
  } finally { if (sink.pid) process.kill(sink.pid, 'SIGKILL'); }
}

async function main(): Promise<void> {
  const cleanups: Array<() => unknown> = [];
  const scope = { after: (fn: () => unknown) => { cleanups.push(fn); } };
  try {
    const { a, b } = await espTunnelPair(scope, { algorithm: ALGORITHM });
    const inPackets = async (): Promise<bigint> => BigInt((await b.stats()).sas.find((s) => s.direction === 'in')!.packets);

    let cpu0 = engineCpu(a, b);
    const t = await tcp(a, b);
    const tcpCpu = engineCpu(a, b) - cpu0;

    const usink = b.ns.spawn(process.execPath, ['-e', UDP_SINK, INNER.b]);
    await new Promise((r) => setTimeout(r, 300));
    const p0 = await inPackets();
    cpu0 = engineCpu(a, b);
    const u = await a.ns.run(process.execPath, ['-e', UDP_SOURCE, INNER.b, String(SECONDS)], { timeoutMs: (SECONDS + 30) * 1000 });
    await new Promise((r) => setTimeout(r, 300));
    const udpCpu = engineCpu(a, b) - cpu0;
    const delivered = Number((await inPackets()) - p0);
    if (usink.pid) process.kill(usink.pid, 'SIGKILL');
    const { sent } = JSON.parse(u.stdout) as { sent: number };

    // Reference in the same run: the same TCP generator over the plain veth.
    await a.ns.run('ip', ['route', 'replace', INNER.bNet, 'via', WIRE.b, 'src', INNER.a]);
    await b.ns.run('ip', ['route', 'replace', INNER.aNet, 'via', WIRE.a, 'src', INNER.b]);
    const plain = await tcp(a, b);

    const gbit = (x: { bytes: number; sec: number }): number => (x.bytes * 8) / x.sec / 1e9;
    const rows: Array<[string, string]> = [
      ['algorithm', ALGORITHM],
      ['TCP through ESP (1 stream)', `${gbit(t).toFixed(3)} Gbit/s (${(t.bytes / 2 ** 20).toFixed(0)} MiB in ${t.sec.toFixed(1)} s)`],
      ['TCP over plain veth (reference)', `${gbit(plain).toFixed(3)} Gbit/s`],
      ['ESP / plain', `${(gbit(t) / gbit(plain)).toFixed(3)}`],
      ['engine CPU-seconds per GB (both ends, TCP)', `${(tcpCpu / (t.bytes / 1e9)).toFixed(2)} s/GB (${tcpCpu.toFixed(2)} s for ${(t.bytes / 1e9).toFixed(2)} GB)`],
      ['UDP 64-byte: offered by the Node sender', `${Math.round(sent / SECONDS)} packets/s`],
      ['UDP 64-byte: decapsulated at b', `${Math.round(delivered / SECONDS)} packets/s (${((delivered / Math.max(sent, 1)) * 100).toFixed(1)} % of offered)`],
      ['engine CPU-seconds per million packets (UDP)', `${(udpCpu / (delivered / 1e6)).toFixed(2)} s`],
    ];
    const w = Math.max(...rows.map(([k]) => k.length));
    for (const [k, v] of rows) console.log(`${k.padEnd(w)}  ${v}`);
  } finally {
    for (const fn of cleanups.reverse()) await fn();
    // The namespaces (and every process in them) go with e2e/lib/netns.ts's exit hook.
  }
}

await main();
process.exit(0);
