// bench/esp-throughput — the userspace ESP data path (issue 12) between two namespaces
// (bench/esp-pair.ts): TCP throughput through the tunnel, small-packet rate (UDP, 64-byte
// payloads), and the engines' CPU-seconds per GB moved; the reference measured in the same run is
// the same TCP generator over the plain veth (no tunnel). The comparison with strongSwan's
// kernel-libipsec in the same run is bench/esp-vs-libipsec.ts.
//   node --import tsx bench/esp-throughput.ts [--seconds 5] [--algorithm aes-gcm-16|chacha20-poly1305]
// Needs root (namespaces, TUN). Generators (bench/traffic-gen.ts) are Node (iperf3 is not installed
// here): one TCP stream with 64 KiB writes, one UDP sender; both are bounded by --seconds.
import type { EspAlgorithm } from '../src/esp/codec.js';
import { espTunnelPair, INNER, WIRE, type EspSide } from './esp-pair.js';
import { cpuSeconds, gbitPerSec, tcpStream, udpFlood } from './traffic-gen.js';

const arg = (name: string, dflt: string): string => { const i = process.argv.indexOf(`--${name}`); return i > 0 ? process.argv[i + 1] ?? dflt : dflt; };
const SECONDS = Number(arg('seconds', '5'));
const ALGORITHM = arg('algorithm', 'aes-gcm-16') as EspAlgorithm;
const engineCpu = (a: EspSide, b: EspSide): number => cpuSeconds(a.child.pid) + cpuSeconds(b.child.pid);

async function main(): Promise<void> {
  const cleanups: Array<() => unknown> = [];
  const scope = { after: (fn: () => unknown) => { cleanups.push(fn); } };
  try {
    const { a, b } = await espTunnelPair(scope, { algorithm: ALGORITHM });
    const inPackets = async (): Promise<bigint> => BigInt((await b.stats()).sas.find((s) => s.direction === 'in')!.packets);

    let cpu0 = engineCpu(a, b);
    const t = await tcpStream(a.ns, b.ns, INNER.b, SECONDS);
    const tcpCpu = engineCpu(a, b) - cpu0;

    const p0 = await inPackets();
    cpu0 = engineCpu(a, b);
    const { sent } = await udpFlood(a.ns, b.ns, INNER.b, SECONDS);
    const udpCpu = engineCpu(a, b) - cpu0;
    const delivered = Number((await inPackets()) - p0);

    // Reference in the same run: the same TCP generator over the plain veth.
    await a.ns.run('ip', ['route', 'replace', INNER.bNet, 'via', WIRE.b, 'src', INNER.a]);
    await b.ns.run('ip', ['route', 'replace', INNER.aNet, 'via', WIRE.a, 'src', INNER.b]);
    const plain = await tcpStream(a.ns, b.ns, INNER.b, SECONDS);

    const gbit = gbitPerSec;
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
