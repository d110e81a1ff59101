// Two network namespaces joined by a veth (192.0.2.1 ↔ 192.0.2.2, RFC 5737), each running
// bench/esp-peer.ts: a userspace ESP engine on UDP 4500 over a TUN device "esp0", with routes
// 10.1.0.0/24 ↔ 10.2.0.0/24 into the TUN. Keys are chosen here (no IKE). Shared by
// e2e/netns/esp-userspace.test.ts and bench/esp-throughput.ts. Peers are killed by pid and the
// namespaces deleted by name when the scope ends (e2e/lib/netns.ts).
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { ChildProcess } from 'node:child_process';
import { pair, type Netns, type Scope } from '../e2e/lib/netns.js';
import type { EspAlgorithm } from '../src/esp/codec.js';
import type { PeerCommand, PeerConfig } from './esp-peer.js';

/** A command without its id (the side numbers them). */
export type Command = PeerCommand extends infer C ? (C extends PeerCommand ? Omit<C, 'id'> : never) : never;

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const PEER = fileURLToPath(new URL('./esp-peer.ts', import.meta.url));

export const WIRE = { a: '192.0.2.1', b: '192.0.2.2' } as const;
export const INNER = { a: '10.1.0.1', b: '10.2.0.1', aNet: '10.1.0.0/24', bNet: '10.2.0.0/24' } as const;
export const TUN_MTU = 1400;

export interface EspSide {
  readonly ns: Netns;
  readonly child: ChildProcess;
  /** The engine's stats as JSON (bigints as strings). */
  stats(): Promise<EspStatsJson>;
  /** Run one command in the peer; rejects with its error. */
  command(c: Command): Promise<void>;
  /** The next IKE datagram the engine passed up (hex, as received). */
  nextIke(): Promise<string>;
}

export interface EspSaStatsJson { direction: string; spi: number; packets: string; bytes: string; drops: Record<string, string> }
export interface EspStatsJson { counters: Record<string, string>; offloads: Record<string, boolean>; sas: EspSaStatsJson[] }

/** Lines of a child's stdout, awaited one predicate at a time, bounded in time. */
function lineReader(child: ChildProcess): (pred: (v: Record<string, unknown>) => boolean, what: string, timeoutMs?: number) => Promise<Record<string, unknown>> {
  const lines: Array<Record<string, unknown>> = [];
  let wake: (() => void) | null = null;
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => { stderr += d.toString(); });
  createInterface({ input: child.stdout! }).on('line', (l) => {
    try { lines.push(JSON.parse(l) as Record<string, unknown>); } catch { lines.push({ text: l }); }
    wake?.();
  });
  return async (pred, what, timeoutMs = 20_000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = lines.findIndex(pred);
      if (i >= 0) return lines.splice(i, 1)[0]!;
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`esp-peer exited (${child.exitCode ?? child.signalCode}) before ${what}: ${stderr.trim()}`);
      if (Date.now() > deadline) throw new Error(`esp-peer: no ${what} within ${timeoutMs} ms: ${stderr.trim()}`);
      await new Promise<void>((r) => { wake = r; setTimeout(r, 100); });
      wake = null;
    }
  };
}

async function startPeer(ns: Netns, cfg: PeerConfig, offloads: string | undefined): Promise<EspSide> {
  const env = offloads === undefined ? process.env : { ...process.env, KIPSEC_ESP_OFFLOADS: offloads };
  const child = ns.spawn(process.execPath, ['--import', 'tsx', PEER, JSON.stringify(cfg)], { cwd: ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] });
  const next = lineReader(child);
  await next((v) => v['ready'] === true, 'ready line');
  let ids = 0;
  return {
    ns, child,
    command: async (c) => {
      const id = ++ids;
      child.stdin?.write(`${JSON.stringify({ ...c, id })}\n`);
      const r = await next((v) => v['reply'] === id, `reply to ${c.op}`);
      if (typeof r['error'] === 'string') throw new Error(`${c.op}: ${r['error']}`);
    },
    nextIke: async () => (await next((v) => typeof v['ike'] === 'string', 'IKE datagram'))['ike'] as string,
    stats: async () => {
      child.stdin?.write('stats\n');
      return (await next((v) => 'stats' in v, 'stats line'))['stats'] as EspStatsJson;
    },
  };
}

/** Route the far inner network into the TUN, from the local inner address. */
async function tunRoutes(ns: Netns, localAddr: string, remoteNet: string): Promise<void> {
  await ns.run('ip', ['addr', 'add', `${localAddr}/32`, 'dev', 'esp0']);
  await ns.run('ip', ['link', 'set', 'esp0', 'mtu', String(TUN_MTU), 'up']);
  await ns.run('ip', ['route', 'add', remoteNet, 'dev', 'esp0', 'src', localAddr]);
}

export const INITIAL_SPI = { ab: 0x1000a0b, ba: 0x1000b0a } as const;

/** offloads: KIPSEC_ESP_OFFLOADS for both engines ("none" forces every fallback); unset: all the kernel offers. */
export async function espTunnelPair(scope: Scope, o: { algorithm?: EspAlgorithm; offloads?: string } = {}): Promise<{ a: EspSide; b: EspSide }> {
  const algorithm = o.algorithm ?? 'aes-gcm-16';
  const keyLen = algorithm === 'chacha20-poly1305' ? 36 : 20;
  const [nsA, nsB] = await pair(scope, { a: `${WIRE.a}/24`, b: `${WIRE.b}/24` });
  const ab = { spi: INITIAL_SPI.ab, key: randomBytes(keyLen).toString('hex') };
  const ba = { spi: INITIAL_SPI.ba, key: randomBytes(keyLen).toString('hex') };
  const common = { tun: 'esp0', port: 4500, algorithm, maxSeconds: 600 };
  const a = await startPeer(nsA, { ...common, bind: WIRE.a, local: INNER.aNet, remote: INNER.bNet, out: { ...ab, peer: WIRE.b, peerPort: 4500 }, in: ba }, o.offloads);
  scope.after(() => { a.child.stdin?.end(); });
  const b = await startPeer(nsB, { ...common, bind: WIRE.b, local: INNER.bNet, remote: INNER.aNet, out: { ...ba, peer: WIRE.a, peerPort: 4500 }, in: ab }, o.offloads);
  scope.after(() => { b.child.stdin?.end(); });
  await tunRoutes(nsA, INNER.a, INNER.bNet);
  await tunRoutes(nsB, INNER.b, INNER.aNet);
  return { a, b };
}
