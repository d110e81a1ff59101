// The cluster-mode agent's watches for bench/agent-watch-memory.ts, in a process of their own so
// the memory is theirs. argv: kubeconfig, namespace, node name, mode: `none` loads the same modules
// and stops there (the agent's baseline without the watches), `watch` starts MeshWatch as the agent
// does (src/cli/agent-cluster.ts) and waits until every informer has listed.
// Prints one JSON line: memory after two full GCs, the objects cached, the time to sync.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import pino from 'pino';
import { KubeClient } from '../src/api/kube/client.js';
import { loadKubeconfigFile } from '../src/api/kube/kubeconfig.js';
import { systemClock } from '../src/common/time.js';
import { MeshWatch } from '../src/agent/mesh/watch.js';

const [kubeconfig = '', namespace = '', node = '', mode = 'none'] = process.argv.slice(2);
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const kube = new KubeClient(loadKubeconfigFile(kubeconfig), { maxSockets: 8 });
const t0 = performance.now();
let cached: Record<string, number> = {};
let watch: MeshWatch | undefined;
if (mode === 'watch') {
  watch = new MeshWatch(kube, { node, namespace, clock: systemClock, log: pino({ level: 'warn' }, pino.destination(2)) });
  watch.start();
  await watch.waitForSync();
  cached = { ipsecNodes: watch.ipsecNodes.size, nodes: watch.nodeLabels.size, self: watch.self.size, meshes: watch.meshes.size };
}
const syncMs = performance.now() - t0;
// Let the watch streams settle (bookmarks, the last list page's garbage) before measuring.
await new Promise((r) => setTimeout(r, 2_000));
gc(); gc();
const m = process.memoryUsage();
console.log(JSON.stringify({ mode, syncMs: Math.round(syncMs), rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, cached }));
await watch?.stop();
process.exit(0);
