// Two source trees' IKE engines in ONE process, in alternating slices: full in-process handshakes
// (IKE_SA_INIT + IKE_AUTH with the first Child SA, fake transport and kernel, as in
// bench/ike-handshake.ts) by tree A's engine, then by tree B's, 200 ms each, A first in even rounds
// and B first in odd ones. Each tree's modules are imported from its own src/ (two copies of the
// engine side by side), so a load change on the machine hits both alike and the ratio is of the
// same run. Per tree: handshakes per CPU-second (process.cpuUsage over its slices) and per wall
// second; the B/A ratio of the totals and its spread over blocks of rounds.
//
// Run: node --import tsx bench/ike-handshake-same-run.ts <treeA> <treeB> [seconds-per-tree=10] [psk|cert|both]
// (for a commit: git worktree add --detach /tmp/x <commit>, and node_modules linked into it)
import { resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import type { IkeEngine, PeerConfig } from '../src/ike/engine.js';
import type { ManualClock } from '../src/common/time.js';
import { benchPeerPair, benchPki, HandshakeRig, type RigEngine } from './lib/ike-bench-fixtures.js';

type Kind = 'psk' | 'cert';
const [treeA, treeB, secsArg, kindArg] = process.argv.slice(2);
if (treeA === undefined || treeB === undefined) throw new Error('usage: ike-handshake-same-run.ts <treeA> <treeB> [seconds-per-tree] [psk|cert|both]');
const SECONDS = Number(secsArg ?? 10);
const KINDS: readonly Kind[] = kindArg === 'psk' || kindArg === 'cert' ? [kindArg] : ['psk', 'cert'];
const SLICE_MS = 200;
const ROUNDS = Math.max(2, Math.round((SECONDS * 1000) / SLICE_MS));
const B = '192.0.2.2';

/** The parts of a tree the rig uses, from that tree's own src/. */
interface Tree {
  readonly name: string;
  readonly IkeEngine: new (ports: unknown, peers: readonly PeerConfig[], options?: unknown) => IkeEngine;
  readonly identityFromString: (s: string) => PeerConfig['local']['id'];
  readonly pskFrom: (s: string) => unknown;
  readonly clock: ManualClock;
  readonly random: unknown;
}

async function loadTree(name: string, dir: string): Promise<Tree> {
  const imp = (p: string): Promise<Record<string, unknown>> => import(pathToFileURL(resolve(dir, p)).href) as Promise<Record<string, unknown>>;
  const [engine, identity, auth, time] = await Promise.all([imp('src/ike/engine.ts'), imp('src/ike/sa/identity.ts'), imp('src/ike/crypto/auth.ts'), imp('src/common/time.ts')]);
  const Clock = time.ManualClock as new (now: number) => ManualClock;
  return {
    name, IkeEngine: engine.IkeEngine as Tree['IkeEngine'], identityFromString: identity.identityFromString as Tree['identityFromString'],
    pskFrom: auth.pskFrom as Tree['pskFrom'], clock: new Clock(Date.now()), random: time.cryptoRandom,
  };
}

const pki = benchPki();

function configs(t: Tree, kind: Kind, i: number): [PeerConfig, PeerConfig] { return benchPeerPair(pki, t, kind, i, B); }

/** A rig on tree t's engine, its peers configured up front. */
function newRig(t: Tree, kind: Kind, size: number): HandshakeRig {
  const engine: RigEngine = { create: (ports, peers, o) => new t.IkeEngine(ports, peers, o), clock: t.clock, random: t.random };
  return new HandshakeRig(engine, Array.from({ length: size }, (_, i) => configs(t, kind, i)), B);
}

function cpuMs(): number { const u = process.cpuUsage(); return (u.user + u.system) / 1000; }

interface Acc { n: number; cpu: number; wall: number }
const rate = (a: Acc): { cpu: number; wall: number } => ({ cpu: a.n / (a.cpu / 1000), wall: a.n / (a.wall / 1000) });

/** Rigs are rebuilt between slices when they run out, outside the measured time. */
async function slice(t: Tree, kind: Kind, rigs: Map<Tree, HandshakeRig>, acc: Acc, perSlice: number): Promise<void> {
  let rig = rigs.get(t)!;
  if (rig.size - rig.next < perSlice) { await rig.close(); rig = newRig(t, kind, rig.size); rigs.set(t, rig); }
  const c = cpuMs(); const t0 = performance.now(); const end = t0 + SLICE_MS;
  while (performance.now() < end) {
    if (rig.next >= rig.size) throw new Error('rig exhausted mid-slice: raise its size');
    await rig.handshake(); acc.n++;
  }
  acc.cpu += cpuMs() - c; acc.wall += performance.now() - t0;
}

const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2; };

async function main(): Promise<void> {
  const a = await loadTree('A', treeA!); const b = await loadTree('B', treeB!);
  console.log(`IKEv2 handshakes in one process, engines of two trees alternating ${SLICE_MS} ms slices, ${ROUNDS} rounds per case (node ${process.version})`);
  console.log(`A = ${resolve(treeA!)}\nB = ${resolve(treeB!)}`);
  for (const kind of KINDS) {
    const perSlice = 600; // above the ~150-500 handshakes a slice completes on this class of machine
    const rigs = new Map<Tree, HandshakeRig>([[a, newRig(a, kind, 4 * perSlice)], [b, newRig(b, kind, 4 * perSlice)]]);
    for (let i = 0; i < 50; i++) { await rigs.get(a)!.handshake(); await rigs.get(b)!.handshake(); } // warm-up, both JITs
    const tot = { A: { n: 0, cpu: 0, wall: 0 }, B: { n: 0, cpu: 0, wall: 0 } };
    // Blocks of 10 rounds give the spread: each block's B/A of handshakes per CPU-second.
    const blocks: Array<{ cpu: number; wall: number }> = [];
    let blk = { A: { n: 0, cpu: 0, wall: 0 }, B: { n: 0, cpu: 0, wall: 0 } };
    for (let r = 0; r < ROUNDS; r++) {
      const order: ReadonlyArray<[Tree, 'A' | 'B']> = r % 2 === 0 ? [[a, 'A'], [b, 'B']] : [[b, 'B'], [a, 'A']];
      for (const [t, k] of order) {
        const one = { n: 0, cpu: 0, wall: 0 };
        await slice(t, kind, rigs, one, perSlice);
        for (const x of [tot[k], blk[k]]) { x.n += one.n; x.cpu += one.cpu; x.wall += one.wall; }
      }
      if ((r + 1) % 10 === 0) {
        blocks.push({ cpu: rate(blk.B).cpu / rate(blk.A).cpu, wall: rate(blk.B).wall / rate(blk.A).wall });
        blk = { A: { n: 0, cpu: 0, wall: 0 }, B: { n: 0, cpu: 0, wall: 0 } };
      }
    }
    const ra = rate(tot.A); const rb = rate(tot.B);
    const label = kind === 'psk' ? 'PSK + X25519' : 'ECDSA-P256 certs + X25519';
    const cpus = blocks.map((x) => x.cpu); const walls = blocks.map((x) => x.wall);
    console.log(`${label}: A ${tot.A.n} handshakes, ${ra.cpu.toFixed(0)} hs/CPU-s (${(1000 / ra.cpu).toFixed(3)} CPU-ms/hs), ${ra.wall.toFixed(0)} hs/s wall`);
    console.log(`${' '.repeat(label.length)}  B ${tot.B.n} handshakes, ${rb.cpu.toFixed(0)} hs/CPU-s (${(1000 / rb.cpu).toFixed(3)} CPU-ms/hs), ${rb.wall.toFixed(0)} hs/s wall`);
    console.log(`${' '.repeat(label.length)}  B/A per CPU-second ${(rb.cpu / ra.cpu).toFixed(3)}x (blocks of 10 rounds: median ${median(cpus).toFixed(3)} [${Math.min(...cpus).toFixed(2)}..${Math.max(...cpus).toFixed(2)}]), wall ${(rb.wall / ra.wall).toFixed(3)}x (median ${median(walls).toFixed(3)} [${Math.min(...walls).toFixed(2)}..${Math.max(...walls).toFixed(2)}])`);
    for (const r of rigs.values()) { await r.alice.close(); await r.bob.close(); }
  }
}

await main();
