// bench/esp-vs-libipsec — kipsec's userspace ESP engine against strongSwan's kernel-libipsec (the
// userspace ESP data path issue 12 has to beat), measured in one run with the same generators
// (bench/traffic-gen.ts) over three data paths, each between two fresh namespaces on a veth
// (192.0.2.1 ↔ 192.0.2.2, inner 10.1.0.1 → 10.2.0.1, TUN MTU 1400 on both tunnels):
//   (a) kipsec: two bench/esp-peer.ts engines with fixed keys (bench/esp-pair.ts), ESP in UDP 4500;
//   (b) libipsec: two charons (strongSwan 5.9, kernel-libipsec) with a PSK IKE SA, ESP in UDP 4500;
//   (c) the plain veth, no tunnel (the ceiling; the kernel does the work, so no process CPU).
// Per path: one TCP stream's Gbit/s; 64-byte UDP datagrams per second offered, dropped by the
// sending end's TUN queue (the data path did not read them in time), encapsulated by the sending
// end (its outbound SA counter), decapsulated by the receiving end (its inbound SA counter),
// delivered to the sink, and lost to full socket buffers at the receiving end: the sink's (Udp
// RcvbufErrors less the 4500 socket's) and the data path's UDP 4500 socket's (/proc/net/udp
// drops); the Node generators share 2 cores with both data paths. And the CPU-seconds of the data
// path's processes (both esp-peer processes, both charons) per GB of TCP and per million UDP
// datagrams delivered; then kipsec/libipsec ratios. Timings only: nothing here is a test.
//   node --import tsx bench/esp-vs-libipsec.ts [--seconds 5] [--algorithm aes-gcm-16|chacha20-poly1305] [--with-kernel]
// --with-kernel adds (d) the kernel's ESP (bench/esp-kernel-pair.ts: static XFRM states, ESP in UDP
// 4500, route MTU 1400) and, for every path, the machine's busy CPU (/proc/stat) per GB and per
// million datagrams, less the plain veth's: the kernel's ESP work has no process of its own, so
// that difference is its CPU, and the ratios against kernel ESP use it for all three. Only
// meaningful on a machine doing nothing else (the kernel-lane VM: bench/esp-vm.sh); the host
// kernel here has no ESP, and the flag then stops with the kernel's refusal.
// kipsec's engines use every offload the kernel offers (TUN TSO, UDP GSO/GRO; the run prints which
// and how much they carried); KIPSEC_ESP_OFFLOADS=none (or a list) in the environment limits them.
// Needs root (namespaces, TUN) and strongSwan (charon, swanctl, the kernel-libipsec plugin).
import { cpus, release } from 'node:os';
import type { EspAlgorithm } from '../src/esp/codec.js';
import { pair, type Netns, type Scope } from '../e2e/lib/netns.js';
import { StrongSwan, pskConnection } from '../e2e/lib/strongswan.js';
import { espTunnelPair, INNER, WIRE } from './esp-pair.js';
import { kernelEspPair, machineBusySeconds } from './esp-kernel-pair.js';
import { cpuSeconds, gbitPerSec, tcpStream, udpFlood, type TcpResult, type UdpResult } from './traffic-gen.js';

const arg = (name: string, dflt: string): string => { const i = process.argv.indexOf(`--${name}`); return i > 0 ? process.argv[i + 1] ?? dflt : dflt; };
const SECONDS = Number(arg('seconds', '5'));
const ALGORITHM = arg('algorithm', 'aes-gcm-16') as EspAlgorithm;
const WITH_KERNEL = process.argv.includes('--with-kernel');
/** The same transform in strongSwan's words: AES-GCM-16 with a 128-bit key (esp-pair's 20-byte key||salt), or ChaCha20-Poly1305. */
const SWAN_ESP: Readonly<Record<string, string>> = { 'aes-gcm-16': 'aes128gcm16', 'chacha20-poly1305': 'chacha20poly1305' };

interface PathResult {
  readonly name: string;
  readonly tcp: TcpResult; readonly tcpCpu: number | undefined;
  readonly udp: UdpResult; readonly udpCpu: number | undefined;
  /** UDP run: packets the sending end's TUN device dropped (its queue full: the data path did not read them in time). */
  readonly tunDropped: number;
  /** UDP run: ESP packets the sending end encapsulated (its outbound SA counter), undefined for the plain veth. */
  readonly encapsulated: number | undefined;
  /** UDP run: ESP packets the receiving end decapsulated (its inbound SA counter), undefined for the plain veth. */
  readonly decapsulated: number | undefined;
  /** UDP run, receiving namespace: datagrams dropped for a full socket buffer, at the sink and at the data path's UDP 4500 socket(s). */
  readonly sinkOverflow: number;
  readonly espSocketOverflow: number;
  /** Busy CPU-seconds of the whole machine (/proc/stat) over the TCP and the UDP run. */
  readonly tcpMachine: number; readonly udpMachine: number;
  /** The data path has a TUN device (its drops are counted). */
  readonly tun: boolean;
}

/** TX drops of the TUN devices in a namespace (`ip -s -j link`: stats64.tx.dropped). */
async function tunTxDropped(ns: Netns): Promise<number> {
  const links = JSON.parse((await ns.run('ip', ['-s', '-j', 'link', 'show', 'type', 'tun'])).stdout) as Array<{ stats64?: { tx?: { dropped?: number } } }>;
  return links.reduce((n, l) => n + (l.stats64?.tx?.dropped ?? 0), 0);
}

/** Drops (the last column of /proc/net/udp) summed over the UDP sockets bound to a local port in a namespace. */
async function udpSocketDrops(ns: Netns, port: number): Promise<number> {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  let n = 0;
  for (const l of (await ns.run('cat', ['/proc/net/udp'])).stdout.split('\n').slice(1)) {
    const f = l.trim().split(/\s+/);
    if (f[1]?.endsWith(hex)) n += Number(f[f.length - 1] ?? 0);
  }
  return n;
}

/** Udp RcvbufErrors of a namespace (/proc/net/snmp: a header line of names, then one of values). */
async function udpRcvbufErrors(ns: Netns): Promise<number> {
  const lines = (await ns.run('cat', ['/proc/net/snmp'])).stdout.split('\n').filter((l) => l.startsWith('Udp: '));
  const names = lines[0]?.split(' ') ?? [];
  const values = lines[1]?.split(' ') ?? [];
  return Number(values[names.indexOf('RcvbufErrors')] ?? 0);
}

/** The generators through one data path; `cpu` sums its processes' CPU-seconds (undefined: the kernel's). */
/** SA packet counters of a tunnel: outbound at the sending end, inbound at the receiving end. */
interface SaCounters { out(): Promise<number>; in(): Promise<number> }

async function measure(name: string, a: Netns, b: Netns, cpu: (() => number) | undefined, sas?: SaCounters, tun = true): Promise<PathResult> {
  let c0 = cpu?.();
  let m0 = machineBusySeconds();
  const tcp = await tcpStream(a, b, INNER.b, SECONDS);
  const tcpMachine = machineBusySeconds() - m0;
  const tcpCpu = cpu && c0 !== undefined ? cpu() - c0 : undefined;
  c0 = cpu?.();
  const p0 = await sas?.in();
  const q0 = await sas?.out();
  const d0 = await tunTxDropped(a);
  const o0 = await udpRcvbufErrors(b);
  const e0 = await udpSocketDrops(b, 4500);
  m0 = machineBusySeconds();
  const udp = await udpFlood(a, b, INNER.b, SECONDS);
  const udpMachine = machineBusySeconds() - m0;
  const udpCpu = cpu && c0 !== undefined ? cpu() - c0 : undefined;
  const p1 = await sas?.in();
  const q1 = await sas?.out();
  const tunDropped = (await tunTxDropped(a)) - d0;
  // The sink's socket is gone by now: its share is the namespace's total less the 4500 socket's.
  const espSocketOverflow = (await udpSocketDrops(b, 4500)) - e0;
  const sinkOverflow = (await udpRcvbufErrors(b)) - o0 - espSocketOverflow;
  // One line per path as soon as it is measured, so a run that dies later still shows it.
  console.log(`measured ${name}: TCP ${gbitPerSec(tcp).toFixed(3)} Gbit/s (${(tcp.bytes / 1e9).toFixed(2)} GB), UDP-64 ${Math.round(udp.received / udp.sec)}/s delivered of ${Math.round(udp.sent / udp.sec)}/s offered; ` +
    `CPU s (TCP, UDP): processes ${tcpCpu?.toFixed(2) ?? '-'}, ${udpCpu?.toFixed(2) ?? '-'}; machine ${tcpMachine.toFixed(2)}, ${udpMachine.toFixed(2)}`);
  return { name, tcp, tcpCpu, udp, udpCpu, tunDropped, encapsulated: q0 !== undefined && q1 !== undefined ? q1 - q0 : undefined, decapsulated: p0 !== undefined && p1 !== undefined ? p1 - p0 : undefined, sinkOverflow, espSocketOverflow, tcpMachine, udpMachine, tun };
}

/** pids of the charon processes in a namespace (charon runs as `unshare … exec charon`). */
async function charonPids(ns: Netns): Promise<number[]> {
  const pids = (await ns.run('ip', ['netns', 'pids', ns.name])).stdout.split(/\s+/).filter(Boolean).map(Number);
  const out: number[] = [];
  for (const p of pids) {
    const comm = await ns.run('cat', [`/proc/${p}/comm`], { check: false });
    if (comm.stdout.trim() === 'charon') out.push(p);
  }
  return out;
}

const tunMtus: string[] = [];
const offloadLines: string[] = [];
let kernelDriver = '';

async function libipsecPair(scope: Scope): Promise<{ a: Netns; b: Netns; pids: number[]; sas: SaCounters }> {
  const [a, b] = await pair(scope, { a: `${WIRE.a}/24`, b: `${WIRE.b}/24` });
  await a.run('ip', ['addr', 'add', `${INNER.a}/24`, 'dev', 'lo']);
  await b.run('ip', ['addr', 'add', `${INNER.b}/24`, 'dev', 'lo']);
  const esp = SWAN_ESP[ALGORITHM];
  if (!esp) throw new Error(`no strongSwan name for ${ALGORITHM}`);
  const common = { name: 't', proposals: 'aes256gcm16-prfsha384-x25519', espProposals: esp, psk: 'bench esp-vs-libipsec: correct horse battery staple' };
  // Log level 1 (no per-packet logging either way): the bench measures ESP, not the log file.
  const logLevels = { ike: 1, cfg: 1 };
  const sa = await StrongSwan.start(scope, a, { logLevels, swanctl: pskConnection({ ...common, local: WIRE.a, remote: WIRE.b, localTs: INNER.aNet, remoteTs: INNER.bNet }) });
  const sb = await StrongSwan.start(scope, b, { logLevels, swanctl: pskConnection({ ...common, local: WIRE.b, remote: WIRE.a, localTs: INNER.bNet, remoteTs: INNER.aNet }) });
  const r = await sa.initiate('t');
  if (r.code !== 0) throw new Error(`charon initiate failed:\n${r.stdout}\n${sa.log().slice(-3000)}`);
  const pids = [...await charonPids(a), ...await charonPids(b)];
  if (pids.length !== 2) throw new Error(`expected 2 charon processes, found ${pids.length}`);
  const ping = await a.run('ping', ['-c', '3', '-i', '0.2', '-W', '10', '-I', INNER.a, INNER.b], { check: false, timeoutMs: 60_000 });
  if (!/[23] received/.test(ping.stdout)) throw new Error(`no ping through libipsec: ${ping.stdout}`);
  // kernel-libipsec's TUN device (ipsec0 unless taken) and its MTU, to print beside esp-pair's.
  const tun = /^\d+: (\S+?): <[^>]*> mtu (\d+)/m.exec((await a.run('ip', ['-o', 'link', 'show', 'type', 'tun'])).stdout);
  tunMtus.push(`libipsec ${tun?.[1] ?? '?'} ${tun?.[2] ?? '?'}`);
  return { a, b, pids, sas: {
    out: async () => (await sa.childSas()).reduce((n, c) => n + c.packetsOut, 0),
    in: async () => (await sb.childSas()).reduce((n, c) => n + c.packetsIn, 0),
  } };
}

async function main(): Promise<void> {
  const cleanups: Array<() => unknown> = [];
  const scope: Scope = { after: (fn) => { cleanups.push(fn); } };
  const results: PathResult[] = [];
  let kernel: PathResult | undefined;
  try {
    if (WITH_KERNEL) {
      // (d) kernel ESP first, so a kernel without ESP stops the run before the long part.
      const x = await kernelEspPair(scope, ALGORITHM);
      kernelDriver = x.driver;
      kernel = await measure('kernel ESP (XFRM)', x.a, x.b, undefined, x, false);
      for (const fn of cleanups.splice(0).reverse()) await fn();
    }
    // (a) kipsec
    const k = await espTunnelPair(scope, { algorithm: ALGORITHM });
    const kPids = [k.a.child.pid, k.b.child.pid];
    tunMtus.push(`kipsec esp0 ${/ mtu (\d+)/.exec((await k.a.ns.run('ip', ['-o', 'link', 'show', 'esp0'])).stdout)?.[1] ?? '?'}`);
    const kCpu = (): number => kPids.reduce<number>((s, p) => s + cpuSeconds(p), 0);
    const count = async (side: typeof k.a, direction: 'in' | 'out'): Promise<number> =>
      (await side.stats()).sas.filter((x) => x.direction === direction).reduce((n, x) => n + Number(x.packets), 0);
    results.push(await measure('kipsec userspace', k.a.ns, k.b.ns, kCpu, { out: () => count(k.a, 'out'), in: () => count(k.b, 'in') }));
    for (const [side, s] of [['a', await k.a.stats()], ['b', await k.b.stats()]] as const) {
      const on = Object.entries(s.offloads).filter(([, v]) => v).map(([n]) => n).join(' ') || 'none';
      const c = (n: string): string => s.counters[n] ?? '?';
      offloadLines.push(`kipsec ${side}: offloads ${on}; TUN super-packets ${c('tunSuperPackets')} → ${c('tunSegments')} segments, GSO sends ${c('gsoSends')} (${c('gsoDatagrams')} datagrams), GRO receives ${c('groReceives')} (${c('groDatagrams')} datagrams), GSO fallbacks ${c('gsoFallbacks')}`);
    }
    // Plain veth in the same namespaces, once kipsec's numbers are in; with --with-kernel at kernel
    // ESP's route MTU, since its CPU is this reference's subtracted.
    const mtu = WITH_KERNEL ? ['mtu', '1400'] : [];
    await k.a.ns.run('ip', ['route', 'replace', INNER.bNet, 'via', WIRE.b, 'src', INNER.a, ...mtu]);
    await k.b.ns.run('ip', ['route', 'replace', INNER.aNet, 'via', WIRE.a, 'src', INNER.b, ...mtu]);
    const plain = await measure('plain veth', k.a.ns, k.b.ns, undefined, undefined, false);
    for (const fn of cleanups.splice(0).reverse()) await fn();
    // (b) libipsec, after kipsec's engines are gone.
    const l = await libipsecPair(scope);
    const lCpu = (): number => l.pids.reduce((s, p) => s + cpuSeconds(p), 0);
    results.push(await measure('strongSwan kernel-libipsec', l.a, l.b, lCpu, l.sas));
    if (kernel) results.push(kernel);
    results.push(plain);
  } finally {
    for (const fn of cleanups.reverse()) await fn();
  }

  const perGb = (cpu: number, r: PathResult): number => cpu / (r.tcp.bytes / 1e9);
  const perM = (cpu: number, r: PathResult): number => cpu / (r.udp.received / 1e6);
  const plain = results[results.length - 1]!;
  // The data path's share of the machine: its busy CPU per GB (per M datagrams) less the plain veth's.
  const netGb = (r: PathResult): number => perGb(r.tcpMachine, r) - perGb(plain.tcpMachine, plain);
  const netM = (r: PathResult): number => perM(r.udpMachine, r) - perM(plain.udpMachine, plain);
  const head = ['data path', 'TCP Gbit/s', 'UDP-64 offered/s', 'TUN dropped/s', 'encapsulated/s', 'decapsulated/s', 'delivered/s', 'sink overflow/s', '4500 overflow/s', 'CPU s/GB (TCP)', 'CPU s/M delivered (UDP)'];
  const rows: string[][] = [WITH_KERNEL ? [...head, 'machine s/GB', 'less plain s/GB', 'machine s/M', 'less plain s/M'] : head];
  for (const r of results) {
    const pps = r.udp.received / r.udp.sec;
    const row = [r.name, gbitPerSec(r.tcp).toFixed(3), Math.round(r.udp.sent / r.udp.sec).toString(), r.tun ? Math.round(r.tunDropped / r.udp.sec).toString() : '-',
      ...[r.encapsulated, r.decapsulated].map((n) => (n === undefined ? '-' : Math.round(n / r.udp.sec).toString())), Math.round(pps).toString(), Math.round(r.sinkOverflow / r.udp.sec).toString(), Math.round(r.espSocketOverflow / r.udp.sec).toString(),
      r.tcpCpu === undefined ? 'kernel' : perGb(r.tcpCpu, r).toFixed(2),
      r.udpCpu === undefined ? 'kernel' : perM(r.udpCpu, r).toFixed(2)];
    if (WITH_KERNEL) row.push(perGb(r.tcpMachine, r).toFixed(2), r === plain ? '-' : netGb(r).toFixed(2), perM(r.udpMachine, r).toFixed(2), r === plain ? '-' : netM(r).toFixed(2));
    rows.push(row);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  console.log(`algorithm ${ALGORITHM} (strongSwan: ${SWAN_ESP[ALGORITHM]}), ${SECONDS} s per measurement, same generators for each path; TUN MTU: ${tunMtus.join(', ')}; kernel ${release()}, ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'})`);
  for (const l of offloadLines) console.log(l);
  if (WITH_KERNEL) {
    console.log(`kernel ESP: static XFRM states, tunnel mode, ESP in UDP 4500, route MTU 1400; AEAD driver ${kernelDriver}. ` +
      'CPU s/GB and s/M count the data path\'s processes only; "machine" is all busy CPU (/proc/stat: user+nice+system+irq+softirq+steal) over the run, ' +
      'generators included; "less plain" subtracts the plain veth\'s machine figure: the data path\'s own cost, the only one the kernel\'s ESP has.');
  }
  for (const r of rows) console.log(r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  '));
  const [k, l] = results as [PathResult, PathResult, PathResult];
  const ratio = (x: number, y: number): string => (y > 0 ? (x / y).toFixed(2) : 'n/a');
  console.log(`kipsec / libipsec: TCP throughput ${ratio(gbitPerSec(k.tcp), gbitPerSec(l.tcp))}×, UDP-64 packet rate ${ratio(k.udp.received, l.udp.received)}× delivered, ${ratio(k.decapsulated ?? 0, l.decapsulated ?? 0)}× decapsulated, ` +
    `CPU per GB ${ratio(k.tcpCpu! / k.tcp.bytes, l.tcpCpu! / l.tcp.bytes)}× (below 1: less CPU), CPU per packet ${ratio(k.udpCpu! / k.udp.received, l.udpCpu! / l.udp.received)}×`);
  if (WITH_KERNEL) {
    const x = results[2]!;
    for (const r of [k, l]) {
      console.log(`${r.name} / kernel ESP: TCP throughput ${ratio(gbitPerSec(r.tcp), gbitPerSec(x.tcp))}×, UDP-64 delivered ${ratio(r.udp.received, x.udp.received)}×, ` +
        `CPU per GB (machine less plain) ${ratio(netGb(r), netGb(x))}×, CPU per packet (machine less plain) ${ratio(netM(r), netM(x))}×`);
    }
  }
}

await main();
process.exit(0);
