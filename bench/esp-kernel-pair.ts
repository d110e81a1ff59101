// The kernel's own ESP between two namespaces, for bench/esp-vs-libipsec.ts --with-kernel: the
// same veth and addresses as bench/esp-pair.ts (192.0.2.1 ↔ 192.0.2.2, inner 10.1.0.1 → 10.2.0.1),
// static XFRM states (fixed test keys, no IKE) in tunnel mode with ESP in UDP 4500 ↔ 4500, so the
// wire format is the userspace pair's, and policies 10.1.0.0/24 ↔ 10.2.0.0/24. Each namespace
// holds a UDP_ENCAP_ESPINUDP socket on 4500 (bench/esp-encap-socket.ts): without one the kernel
// answers ESP-in-UDP with port unreachable. The route to the far inner net carries mtu 1400, the
// TUN MTU of the userspace pairs, so TCP uses the same MSS on all three paths.
// Also: machine-wide busy CPU from /proc/stat, the only honest way to see the kernel's share: ESP
// runs in the senders' syscalls and in NET_RX softirqs, charged to whatever task was interrupted.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { ChildProcess } from 'node:child_process';
import type { EspAlgorithm } from '../src/esp/codec.js';
import { pair, type Netns, type Scope } from '../e2e/lib/netns.js';
import { INNER, TUN_MTU, WIRE } from './esp-pair.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const HOLDER = fileURLToPath(new URL('./esp-encap-socket.ts', import.meta.url));
const CLK_TCK = 100;

/** ip-xfrm(8)'s AEAD name and key||salt length (bytes) for each algorithm, ICV 128 bits. */
const XFRM_AEAD: Readonly<Partial<Record<EspAlgorithm, { name: string; keyBytes: number }>>> = {
  'aes-gcm-16': { name: 'rfc4106(gcm(aes))', keyBytes: 20 },
  'chacha20-poly1305': { name: 'rfc7539esp(chacha20,poly1305)', keyBytes: 36 },
};

export const KERNEL_SPI = { ab: 0x2000a0b, ba: 0x2000b0a } as const;

export interface KernelEspPair {
  readonly a: Netns;
  readonly b: Netns;
  /** Packets through the a→b SA: encapsulated at a (out), decapsulated at b (in). */
  out(): Promise<number>;
  in(): Promise<number>;
  /** The driver the kernel instantiated for the AEAD (/proc/crypto), e.g. generic-gcm-aesni. */
  readonly driver: string;
}

/** Busy CPU-seconds of the whole machine so far: /proc/stat's cpu line less idle and iowait (guest time is inside user). */
export function machineBusySeconds(): number {
  const f = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = f;
  void idle; void iowait;
  return (user + nice + system + irq + softirq + steal) / CLK_TCK;
}

/** Packets of one SA (`ip -s xfrm state get`: "lifetime current:" then "<bytes>(bytes), <packets>(packets)"). */
async function saPackets(ns: Netns, src: string, dst: string, spi: number): Promise<number> {
  const out = (await ns.run('ip', ['-s', 'xfrm', 'state', 'get', 'src', src, 'dst', dst, 'proto', 'esp', 'spi', `0x${spi.toString(16)}`])).stdout;
  const m = /lifetime current:\s*\n\s*\d+\(bytes\),\s*(\d+)\(packets\)/.exec(out);
  if (!m) throw new Error(`no packet counter in ip -s xfrm state output: ${out.slice(0, 400)}`);
  return Number(m[1]);
}

/** Start the encap socket holder and wait for its "ready" line (tsx under TCG takes a while). */
async function encapSocket(ns: Netns, address: string): Promise<ChildProcess> {
  const child = ns.spawn(process.execPath, ['--import', 'tsx', HOLDER, address, '4500', '900'], { cwd: ROOT });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr?.on('data', (d: Buffer) => { out += d.toString(); });
  for (let i = 0; i < 1200 && !out.includes('ready'); i++) {
    if (child.exitCode !== null) throw new Error(`esp-encap-socket exited ${child.exitCode}: ${out.trim()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  if (!/ready encap=2/.test(out)) throw new Error(`esp-encap-socket in ${ns.name}: no "ready encap=2" within 120 s: ${out.trim()}`);
  return child;
}

/** One namespace's half: both SAs (the same pair at each end), its two policies, the route. */
async function configure(ns: Netns, side: 'a' | 'b', aead: { name: string }, keys: { ab: string; ba: string }): Promise<void> {
  const [me, peer] = side === 'a' ? [WIRE.a, WIRE.b] : [WIRE.b, WIRE.a];
  const [myNet, peerNet, myAddr] = side === 'a' ? [INNER.aNet, INNER.bNet, INNER.a] : [INNER.bNet, INNER.aNet, INNER.b];
  const sas = [
    { src: WIRE.a, dst: WIRE.b, spi: KERNEL_SPI.ab, key: keys.ab },
    { src: WIRE.b, dst: WIRE.a, spi: KERNEL_SPI.ba, key: keys.ba },
  ];
  for (const s of sas) {
    const r = await ns.run('ip', ['xfrm', 'state', 'add', 'src', s.src, 'dst', s.dst, 'proto', 'esp', 'spi', `0x${s.spi.toString(16)}`, 'reqid', '1',
      'mode', 'tunnel', 'replay-window', '128', 'aead', aead.name, `0x${s.key}`, '128', 'encap', 'espinudp', '4500', '4500', '0.0.0.0'], { check: false, timeoutMs: 180_000 });
    if (r.code !== 0) {
      throw new Error(`the kernel refused an ESP state (ip xfrm state add … proto esp … aead ${aead.name} … encap espinudp 4500 4500: ${r.stderr.trim() || `exit ${r.code}`}); ` +
        'kernel ESP needs esp4 and the AEAD in the running kernel (this host kernel has none?): run bash bench/esp-vm.sh, or drop --with-kernel');
    }
  }
  const tmpl = (src: string, dst: string): string[] => ['tmpl', 'src', src, 'dst', dst, 'proto', 'esp', 'reqid', '1', 'mode', 'tunnel'];
  await ns.run('ip', ['xfrm', 'policy', 'add', 'src', myNet, 'dst', peerNet, 'dir', 'out', ...tmpl(me, peer)]);
  await ns.run('ip', ['xfrm', 'policy', 'add', 'src', peerNet, 'dst', myNet, 'dir', 'in', ...tmpl(peer, me)]);
  await ns.run('ip', ['route', 'add', peerNet, 'via', peer, 'src', myAddr, 'mtu', String(TUN_MTU)]);
}

export async function kernelEspPair(scope: Scope, algorithm: EspAlgorithm): Promise<KernelEspPair> {
  const aead = XFRM_AEAD[algorithm];
  if (!aead) throw new Error(`--with-kernel: no XFRM AEAD for ${algorithm} (aes-gcm-16 or chacha20-poly1305)`);
  const [a, b] = await pair(scope, { a: `${WIRE.a}/24`, b: `${WIRE.b}/24` });
  await a.run('ip', ['addr', 'add', `${INNER.a}/24`, 'dev', 'lo']);
  await b.run('ip', ['addr', 'add', `${INNER.b}/24`, 'dev', 'lo']);
  await encapSocket(a, WIRE.a);
  await encapSocket(b, WIRE.b);
  const keys = { ab: randomBytes(aead.keyBytes).toString('hex'), ba: randomBytes(aead.keyBytes).toString('hex') };
  await configure(a, 'a', aead, keys);
  await configure(b, 'b', aead, keys);
  // -W 10, 2 of 3: the first packet under TCG emulation can be slow.
  const ping = await a.run('ping', ['-c', '3', '-i', '0.2', '-W', '10', '-I', INNER.a, INNER.b], { check: false, timeoutMs: 60_000 });
  if (!/[23] received/.test(ping.stdout)) throw new Error(`no ping through kernel ESP: ${ping.stdout}${ping.stderr}`);
  const encapsulated = await saPackets(a, WIRE.a, WIRE.b, KERNEL_SPI.ab);
  if (encapsulated < 2) throw new Error(`the ping did not go through the a→b SA (${encapsulated} packets on it)`);
  // The kernel uses the highest-priority implementation of a name (/proc/crypto lists them all).
  const field = (blk: string, f: string): string | undefined => new RegExp(`^${f}\\s*: (.*)$`, 'm').exec(blk)?.[1];
  const impls = readFileSync('/proc/crypto', 'utf8').split('\n\n').filter((blk) => field(blk, 'name') === aead.name);
  const best = impls.sort((x, y) => Number(field(y, 'priority') ?? 0) - Number(field(x, 'priority') ?? 0))[0];
  const driver = best === undefined ? '?' : `${field(best, 'driver') ?? '?'} (priority ${field(best, 'priority') ?? '?'}, ${impls.length} registered)`;
  return {
    a, b, driver,
    out: () => saPackets(a, WIRE.a, WIRE.b, KERNEL_SPI.ab),
    in: () => saPackets(b, WIRE.a, WIRE.b, KERNEL_SPI.ab),
  };
}
