// bench/handshake/idle-memory — the standalone agent's baseline: RSS and its split (V8 heap after a
// full GC, external, glibc malloc in use and free, RSS after malloc_trim) with 1, 1,000 and 5,000
// IPsecTunnels configured and no SA, each a fresh agent as the burst bench starts it (bundle,
// DaemonSet Node flags, userspace data path, its own namespace), read after 20 s idle.
// Root; no load generator, no charon. Figures only.
//
//   node --import tsx bench/handshake/idle-memory.ts [--tunnels 1,1000,5000]
import { Netns } from '../../e2e/lib/netns.js';
import { agentMemory, procStat, startAgent } from './responders.js';
import { RESPONDER, sleep } from './scenario.js';

const arg = process.argv.indexOf('--tunnels');
const counts = (arg > 0 ? process.argv[arg + 1]! : '1,1000,5000').split(',').map(Number);
const mib = (b: number): string => (b / 1048576).toFixed(1);
console.log(`idle agent (standalone, userspace data path, no SA): node ${process.version}`);
console.log(`  ${'tunnels'.padStart(8)}${'RSS MiB'.padStart(9)}${'V8 used'.padStart(9)}${'V8 comm.'.padStart(10)}${'external'.padStart(10)}${'malloc used'.padStart(13)}${'malloc free'.padStart(13)}${'RSS trimmed'.padStart(13)}`);
for (const n of counts) {
  const ns = await Netns.create(null, 'idle');
  try {
    await ns.run('ip', ['link', 'set', 'lo', 'up']);
    await ns.run('ip', ['addr', 'add', `${RESPONDER.agent.address}/24`, 'dev', 'lo']);
    const a = await startAgent(ns, n, 300_000, 'userspace');
    await sleep(20_000);
    const p = procStat(a.pid);
    const m = await agentMemory(a.pid, a.dir);
    console.log(`  ${String(n).padStart(8)}${mib(p.rssKb * 1024).padStart(9)}${m ? [mib(m.heapUsed).padStart(9), mib(m.heapTotal).padStart(10), mib(m.external).padStart(10), mib(m.malloc?.inUseBytes ?? NaN).padStart(13), mib(m.malloc?.freeBytes ?? NaN).padStart(13), mib(m.trimmed?.rss ?? NaN).padStart(13)].join('') : '  (memory probe did not answer)'}`);
    process.kill(a.pid, 'SIGKILL');
  } finally {
    await ns.destroy();
  }
}
console.log('  (MiB; "V8 comm.": V8 heap committed; "malloc": glibc, all arenas; "RSS trimmed": RSS after malloc_trim(0))');
