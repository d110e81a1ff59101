// bench/handshake/config-heap — the V8 heap a configured tunnel holds, in process, without SAs:
// the burst bench's config of N tunnels (responders.ts agentYaml, PSK) loaded as the standalone
// agent on the userspace data path loads it (file snapshot, userspace peer, desired peers) and
// the engine's PeerRuntime of each; heap after a full GC with N tunnels less with one, over N-1.
// One tree per process: a second load in the same process runs warm call sites that give objects
// other shapes, so trees compare by running this once each, alternating. idle-memory.ts measures
// the agent itself; this one separates the config's share in seconds.
//
//   node --expose-gc --import tsx bench/handshake/config-heap.ts [--tunnels 5000] [--snap prefix] [tree]
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { writeHeapSnapshot } from 'node:v8';
import { agentYaml } from './responders.js';
import { PSK } from './scenario.js';

const args = process.argv.slice(2);
const opt = (name: string): string | undefined => { const i = args.indexOf(name); if (i < 0) return undefined; const v = args[i + 1]; args.splice(i, 2); return v; };
const n = Number(opt('--tunnels') ?? 5000);
const snap = opt('--snap');
const tree = resolve(args[0] ?? '.');
const maybeGc = (globalThis as { gc?: () => void }).gc;
if (!maybeGc) throw new Error('run with node --expose-gc');
const gc: () => void = maybeGc;

type Mod = Record<string, (...a: unknown[]) => unknown>;
const imp = async (p: string): Promise<Mod> => await import(pathToFileURL(join(tree, p)).href) as Mod;
const files = await imp('src/agent/file-source.ts');
const userspace = await imp('src/agent/userspace/peer.ts');
const runtime = await imp('src/ike/sa/peer-runtime.ts');

const dir = mkdtempSync(join(tmpdir(), 'kipsec-config-heap-'));
try {
  writeFileSync(join(dir, 'psk'), `${PSK}\n`, { mode: 0o600 });
  let reqid = 1;
  // Built in a function, so nothing but its result stays reachable from this frame.
  const load = (file: string): unknown => {
    const s = files['loadFileSnapshot']!(file, () => undefined, undefined, userspace['userspacePeer']) as { peers: { config: unknown }[] };
    return { peers: s.peers, runtimes: s.peers.map((p) => runtime['buildPeerRuntime']!(p.config, undefined, () => reqid++)) };
  };
  const used: number[] = [];
  const keep: unknown[] = [];
  for (const count of [1, n]) {
    const file = join(dir, `tunnels-${count}.yaml`);
    writeFileSync(file, agentYaml(count));
    keep.length = 0; gc(); gc();
    const before = process.memoryUsage().heapUsed;
    keep.push(load(file));
    gc(); gc();
    if (snap !== undefined) writeHeapSnapshot(`${snap}-${count}.heapsnapshot`);
    used.push(process.memoryUsage().heapUsed - before);
  }
  console.log(`${tree}: ${n} tunnels: ${((used[1]! - used[0]!) / (n - 1)).toFixed(0)} bytes of V8 heap per configured tunnel (heap after GC; node ${process.version})`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
