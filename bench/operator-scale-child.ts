// The operator under test for bench/operator-scale.ts, in its own process so its memory is its own.
// Messages: parent → {cmd:'stats'|'mem'|'stop'} or {cmd:'heapsnap', path}; child → {ready}, {stats}, {mem}, {snapped}.
import { writeHeapSnapshot } from 'node:v8';
import pino from 'pino';
import { systemClock } from '../src/common/time.js';
import { KubeClient } from '../src/api/kube/client.js';
import { loadKubeconfigFile } from '../src/api/kube/kubeconfig.js';
import { Operator } from '../src/operator/operator.js';

const [kubeconfig = '', namespace = '', selector = '', meshName = ''] = process.argv.slice(2);
// As src/cli/operator.ts builds it (the default socket pool): eight informers' watches hold sockets too.
const kube = new KubeClient(loadKubeconfigFile(kubeconfig));
const op = new Operator({ kube, namespace, identity: 'bench', clock: systemClock, log: pino({ level: process.env['KIPSEC_BENCH_LOG'] ?? 'warn' }, pino.destination(2)), csrLabelSelector: selector, meshName, ...(process.env['KIPSEC_BENCH_WORKERS'] ? { workers: Number(process.env['KIPSEC_BENCH_WORKERS']) } : {})
  // The deployed lease timing (leader.ts DEFAULT_LEADER_TIMING): renewals every 2 s are writes too.
  // A fresh namespace has no Lease, so the first attempt takes it.
});

async function stats(): Promise<unknown> {
  global.gc?.();
  const m = process.memoryUsage();
  const issued = (await op.metrics.certificatesIssued.get()).values.reduce((s, v) => s + v.value, 0);
  const MiB = 2 ** 20;
  // maxRSS (KiB): the peak over the process's life, not just what is resident after this gc().
  return {
    rssMiB: m.rss / MiB, peakRssMiB: process.resourceUsage().maxRSS / 1024, heapUsedMiB: m.heapUsed / MiB, heapTotalMiB: m.heapTotal / MiB, externalMiB: m.external / MiB, arrayBuffersMiB: m.arrayBuffers / MiB,
    requests: kube.stats, issued, cpuUserMs: process.cpuUsage().user / 1000, cpuSystemMs: process.cpuUsage().system / 1000,
  };
}

process.on('message', (msg: { cmd: string; path?: string }) => {
  if (msg.cmd === 'stats') void stats().then((s) => process.send?.({ stats: s }));
  if (msg.cmd === 'mem') {
    // Without a gc(): what is resident and committed right now (the bench's timeline).
    const m = process.memoryUsage(); const MiB = 2 ** 20;
    process.send?.({ mem: { rssMiB: Math.round(m.rss / MiB), heapTotalMiB: Math.round(m.heapTotal / MiB), heapUsedMiB: Math.round(m.heapUsed / MiB), externalMiB: Math.round(m.external / MiB), arrayBuffersMiB: Math.round(m.arrayBuffers / MiB) } });
  }
  if (msg.cmd === 'heapsnap' && msg.path) { writeHeapSnapshot(msg.path); process.send?.({ snapped: true }); }
  if (msg.cmd === 'stop') void op.stop().then(() => process.exit(0));
});

await op.start();
const t = setInterval(() => { if (op.isLeader && op.ctx.ca.state) { clearInterval(t); process.send?.({ ready: true }); } }, 50);
