// bench/handshake/ike-sa-heap — the V8 heap an established IKE SA with its Child SA holds, in
// process: two engines (initiator and responder, fake transport and kernel as in ike-handshake),
// 100 handshakes to warm up, then N more; heap used after a full GC before and after, divided by
// N and by 2 (each handshake leaves one IKE SA + Child SA in each engine); ArrayBuffer backing
// stores (process.memoryUsage().arrayBuffers, malloc'd, not in the heap figure) likewise. Given several source
// trees, each tree's engine is loaded from its own src/ and the trees alternate, so two commits
// compare within one process. `--snap dir` writes heap snapshots before and after (per tree, last
// round) for bench/handshake/heap-summary.ts.
//
//   node --expose-gc --import tsx bench/handshake/ike-sa-heap.ts [--n 1000] [--rounds 2] [--snap dir] [--tsx] [tree…]
// (--tsx: the trees' sources through tsx instead of bundled). A tree is `dir` or `dir:clock`, the
// engines' clock: manual (default: common/time.ts ManualClock, timers in one Map), system
// (systemClock: a setTimeout per timer, as the agent had) or agent (agent/deadline-clock.ts, the
// agent's); the timers set are those of an SA that is up (rekey and lifetime, hours away).
// `+xfrm` after it: the responder's kernel port is the agent's (agent/kernel.ts XfrmKernel on the
// userspace data path's XFRM port, esp-xfrm.ts, over an ESP engine whose native side does nothing:
// the engine's own bytes are malloc'd, esp-sa-memory.ts measures them), so the figure adds what the
// agent keeps per Child SA besides the IKE engine; both engines' peers then use NAT-T (the
// userspace data path sends ESP in UDP only).
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { writeHeapSnapshot } from 'node:v8';
import type { IkeEngine, PeerConfig } from '../../src/ike/engine.js';
import { benchPeerPair, benchPki, HandshakeRig } from '../lib/ike-bench-fixtures.js';

const args = process.argv.slice(2);
const opt = (name: string): string | undefined => { const i = args.indexOf(name); if (i < 0) return undefined; const v = args[i + 1]; args.splice(i, 2); return v; };
const N = Number(opt('--n') ?? 1000);
const ROUNDS = Number(opt('--rounds') ?? 2);
const SNAP = opt('--snap');
const TSX = args.includes('--tsx') ? (args.splice(args.indexOf('--tsx'), 1), true) : false;
const trees = args.length > 0 ? args : ['.'];
const WARM = 100;
const B = '192.0.2.2';
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with node --expose-gc');

interface Tree {
  readonly dir: string;
  readonly IkeEngine: new (ports: unknown, peers: readonly PeerConfig[], options?: unknown) => IkeEngine;
  readonly identityFromString: (s: string) => PeerConfig['local']['id'];
  readonly pskFrom: (s: string) => unknown;
  readonly clock: unknown;
  readonly random: unknown;
  /** +xfrm: the responder's kernel port, new per rig. */
  readonly kernel: (() => unknown) | null;
}

/** The agent's kernel port on the userspace data path over a native ESP side that does nothing. */
function agentKernel(m: readonly Mod[]): () => unknown {
  const [kernelM, espXfrmM, datapathM, espM, logM] = m as [Mod, Mod, Mod, Mod, Mod];
  const zeros = (names: readonly string[]): Record<string, bigint> => Object.fromEntries(names.map((n) => [n, 0n]));
  const native = {
    espCreate: () => ({}), espLocalPort: () => 4500, espClose: () => undefined, espAddSa: () => undefined, espUpdateSa: () => undefined,
    espRemoveSa: () => true, espAddPolicy: () => undefined, espRemovePolicy: () => true,
    espStats: () => ({ counters: zeros(espM.ESP_COUNTERS as string[]), sas: [] }), espSaStats: () => null, espSendIke: (_h: unknown, d: Uint8Array) => d.length, espInject: () => 'sent',
  };
  const EspEngine = espM.EspEngine as { open(o: unknown): unknown };
  const log = (logM.createLogger as (o: unknown) => unknown)({ level: 'silent' });
  return () => {
    const rtnl = { setLinkMtu: async () => undefined, setLinkUp: async () => undefined, routeGet: async () => ({}), listLinks: async () => [] };
    const dp = new (datapathM.UserspaceDatapath as new (o: unknown) => { open(a: string, p: number): Promise<unknown> })({
      rtnl, log, openTun: (n: string) => ({ fd: -1, name: n }), openEngine: (fd: number, address: string, port: number) => EspEngine.open({ tunFd: fd, address, port, native }),
    });
    void dp.open(B, 4500);
    const xfrm = new (espXfrmM.EspXfrm as new (d: unknown) => unknown)(dp);
    return new (kernelM.XfrmKernel as new (o: unknown) => unknown)({ xfrm, log, reqidOf: () => 1, wantsRoutes: () => false });
  };
}

const MODULES = ['src/ike/engine.ts', 'src/ike/sa/identity.ts', 'src/ike/crypto/auth.ts', 'src/common/time.ts'] as const;
const XFRM_MODULES = ['src/agent/kernel.ts', 'src/agent/userspace/esp-xfrm.ts', 'src/agent/userspace/datapath.ts', 'src/esp/index.ts', 'src/agent/log.ts'] as const;
type ClockKind = 'manual' | 'system' | 'agent';
const specOf = (t: string): { dir: string; clock: ClockKind; xfrm: boolean } => {
  const m = /^(.*?)(?::(manual|system|agent))?(\+xfrm)?$/.exec(t)!;
  return { dir: m[1]!, clock: (m[2] ?? 'manual') as ClockKind, xfrm: m[3] !== undefined };
};
type Mod = Record<string, unknown>;

/**
 * The tree's modules bundled by esbuild as the agent's image is (no keepNames: tsx's keepNames
 * gives every named closure a property store of its own, ~130 bytes the agent does not pay).
 */
function bundle(dir: string, i: number, modules: readonly string[]): string {
  // inside the tree, so that its node_modules resolve the external packages
  const out = resolve(dir, 'build', `ike-sa-heap-${process.pid}-${i}.mjs`);
  process.on('exit', () => rmSync(out, { force: true }));
  const entry = modules.map((m, k) => `export * as m${k} from ${JSON.stringify(resolve(dir, m))};`).join('\n');
  execFileSync(resolve('node_modules/.bin/esbuild'), ['--bundle', '--platform=node', '--format=esm', '--packages=external', '--target=node20', `--outfile=${out}`, '--log-level=warning'],
    { input: entry, stdio: ['pipe', 'inherit', 'inherit'], cwd: dir });
  return out;
}

async function loadTree(spec: string, i: number): Promise<Tree> {
  const { dir, clock, xfrm } = specOf(spec);
  const modules = [...MODULES, ...(clock === 'agent' ? ['src/agent/deadline-clock.ts'] : []), ...(xfrm ? XFRM_MODULES : [])];
  let mods: Record<string, unknown>[];
  if (TSX) {
    const imp = (p: string): Promise<Record<string, unknown>> => import(pathToFileURL(resolve(dir, p)).href) as Promise<Record<string, unknown>>;
    mods = await Promise.all(modules.map(imp));
  } else {
    const b = await import(pathToFileURL(bundle(dir, i, modules)).href) as Record<string, Record<string, unknown>>;
    mods = modules.map((_, k) => b[`m${k}`]!);
  }
  const [engine, identity, auth, time] = mods as [Mod, Mod, Mod, Mod];
  const agentClock = clock === 'agent' ? mods[MODULES.length] : undefined;
  const Clock = time.ManualClock as new (now: number) => unknown;
  return {
    dir: spec, IkeEngine: engine.IkeEngine as Tree['IkeEngine'], identityFromString: identity.identityFromString as Tree['identityFromString'],
    pskFrom: auth.pskFrom as Tree['pskFrom'], clock: clock === 'manual' ? new Clock(Date.now()) : clock === 'system' ? time.systemClock : (agentClock!.deadlineClock as () => unknown)(), random: time.cryptoRandom,
    kernel: xfrm ? agentKernel(mods.slice(-XFRM_MODULES.length)) : null,
  };
}

const pki = benchPki();

/** V8 heap used and ArrayBuffer backing stores (malloc'd outside the heap), after a full GC. */
function afterGc(): { heap: number; buffers: number } { gc!(); gc!(); const m = process.memoryUsage(); return { heap: m.heapUsed, buffers: m.arrayBuffers }; }

async function measure(t: Tree, snapTag: string | undefined): Promise<{ heap: number; buffers: number }> {
  // The rig creates the initiator's engine, then the responder's (the one given options).
  const ports = (p: unknown, responder: boolean): unknown => (responder && t.kernel ? { ...(p as object), kernel: t.kernel() } : p);
  const natt = (c: PeerConfig): PeerConfig => (t.kernel ? { ...c, natTraversal: 'always' } : c);
  const rig = new HandshakeRig({ create: (p, peers, o) => new t.IkeEngine(ports(p, o !== undefined), peers, o), clock: t.clock, random: t.random },
    Array.from({ length: WARM + N }, (_, i) => benchPeerPair(pki, t, 'psk', i, B).map(natt) as [PeerConfig, PeerConfig]), B);
  for (let i = 0; i < WARM; i++) await rig.handshake();
  const before = afterGc();
  if (snapTag !== undefined) writeHeapSnapshot(`${snapTag}-before.heapsnapshot`);
  for (let i = 0; i < N; i++) await rig.handshake();
  const after = afterGc();
  if (snapTag !== undefined) writeHeapSnapshot(`${snapTag}-after.heapsnapshot`);
  await rig.close();
  return { heap: (after.heap - before.heap) / N / 2, buffers: (after.buffers - before.buffers) / N / 2 };
}

const loaded = await Promise.all(trees.map((d, i) => loadTree(d, i)));
const results = new Map<string, { heap: number; buffers: number }[]>(trees.map((d) => [d, []]));
for (let r = 0; r < ROUNDS; r++) {
  const order = r % 2 === 0 ? loaded : [...loaded].reverse();
  for (const t of order) {
    const tag = SNAP !== undefined && r === ROUNDS - 1 ? resolve(SNAP, `tree${loaded.indexOf(t)}`) : undefined;
    const b = await measure(t, tag);
    results.get(t.dir)!.push(b);
    console.log(`round ${r} ${t.dir}: ${Math.round(b.heap)} bytes of V8 heap + ${Math.round(b.buffers)} of ArrayBuffer backing stores per IKE SA with its Child SA`);
  }
}
const mean = (v: readonly number[]): number => Math.round(v.reduce((a, b) => a + b, 0) / v.length);
for (const [d, v] of results) {
  console.log(`${d}: heap ${v.map((x) => Math.round(x.heap)).join(' ')} (mean ${mean(v.map((x) => x.heap))}), backing stores ${v.map((x) => Math.round(x.buffers)).join(' ')} (mean ${mean(v.map((x) => x.buffers))}) bytes per IKE SA with its Child SA`);
}
