// bench/operator-scale-heartbeat: the steady-state cost of the nodes' heartbeat in a real apiserver,
// the old way against the new one, in the same run. N IPsecNodes carry the status an agent of an
// N-node mesh writes (agent/mesh/node-status.ts computeNodeStatus); W watches of all IPsecNodes
// stand for the agents (every agent watches every IPsecNode), W watches of the namespace's Leases
// with the agents' selector (!kipsec.io/node-lease: their tunnel-Lease watch) and one watch of the
// node Leases (the operator's). Then, for three heartbeat periods each:
//   status: every node rewrites its IPsecNode status (a new lastUpdateTime) once a period — before;
//   lease:  every node renews its Lease once a period (the agent's NodeLeaseRenewer) — now.
// Printed: writes, watch events and bytes per watcher, apiserver+etcd CPU, and lease/status ratios.
//   KIPSEC_KUBECONFIG=... KIPSEC_APISERVER_DIR=... node --import tsx bench/operator-scale-heartbeat.ts [N [W [periodSec]]]
// (defaults 300 nodes, 20 watchers, 5 s; a period of 5 s compresses the agents' 60 s twelvefold).
import { systemClock } from '../src/common/time.js';
import { KubeClient, RESOURCES, resourcePath } from '../src/api/kube/client.js';
import { NODE_LEASE_LABEL } from '../src/api/node-lease.js';
import { computeNodeStatus } from '../src/agent/mesh/node-status.js';
import { NodeLeaseRenewer } from '../src/agent/mesh/node-lease.js';
import { createLogger } from '../src/agent/log.js';
import type { TunnelStatus } from '../src/agent/status.js';
import { cleanupNamespace, ensureNamespace, installKipsecCrds } from '../e2e/apiserver/support.js';
import { loadKubeConfig } from '../e2e/lib/kube.js';
import { apiserverCpuSec } from './lib/apiserver-cpu.js';

const [N = 300, W = 20, PERIOD_SEC = 5] = process.argv.slice(2).map(Number);
const PERIODS = 3;

async function pool<T>(items: readonly T[], n: number, fn: (x: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: n }, async () => { for (;;) { const i = next++; if (i >= items.length) return; await fn(items[i]!, i); } }));
}

/** What one agent of an n-node mesh publishes with every peer established (the listed peers: all up to 100, else none). */
function meshStatus(node: string, names: readonly string[], nowMs: number): ReturnType<typeof computeNodeStatus> {
  const peers: TunnelStatus[] = names.filter((x) => x !== node).map((x, i): TunnelStatus => ({
    name: `mesh/${x}`, node: x, local: '10.1.0.1', remote: `10.0.${(i >> 8) & 255}.${i & 255}`, ikeState: 'established', startAction: 'respond', role: 'responder',
    ikeSuite: 'aes256gcm16-prfsha384-x25519', ikeSpis: { initiator: '0123456789abcdef', responder: 'fedcba9876543210' }, establishedAt: '2026-12-07T10:00:00.000Z',
    children: [{ name: 'pods', state: 'installed', suite: 'aes256gcm16-x25519', spiIn: 'c1234567', spiOut: 'c7654321', mode: 'tunnel', localTs: ['10.244.0.0/24'], remoteTs: ['10.244.1.0/24'], encap: false, bytesIn: 1000, bytesOut: 2000, packetsIn: 10, packetsOut: 20 }],
  }));
  return computeNodeStatus({
    nowMs, datapath: 'kernel', inactive: undefined, peers, skipped: [], traffic: { traffic: { mode: 'routed' }, source: 'detected', message: 'routed' },
    strict: true, certNotAfterMs: nowMs + 86_400_000, identityValid: true, policiesIn: true, mtu: 1500, xfrmErrors: { XfrmInNoStates: 0 }, existing: undefined,
  });
}

interface Counter { events: number; bytes: number }

async function main(): Promise<void> {
  const admin = new KubeClient(loadKubeConfig(), { maxSockets: 64 });
  const tag = `hb-${process.pid}`;
  const ns = `kipsec-${tag}`;
  const label = `kipsec.io/test=${tag}`;
  await installKipsecCrds(admin);
  await ensureNamespace(admin, ns);
  const names = Array.from({ length: N }, (_, i) => `${tag}-n${i}`);
  await pool(names, 32, async (name, i) => {
    await admin.create(resourcePath(RESOURCES.ipsecNodes), { apiVersion: 'kipsec.io/v1alpha1', kind: 'IPsecNode', metadata: { name, labels: { 'kipsec.io/test': tag } }, spec: { endpoint: { address: `10.1.${(i >> 8) & 255}.${i & 255}` } } });
  });
  const statusBytes = JSON.stringify(meshStatus(names[0]!, names, Date.now())).length;

  const stop = new AbortController();
  // The watches hold their sockets for the whole run: a client of their own, so the writes never queue behind them.
  const watcher = new KubeClient(loadKubeConfig(), { maxSockets: 2 * W + 8 });
  const watch = (path: string, query: Record<string, string>, c: Counter): void => {
    void (async () => {
      while (!stop.signal.aborted) {
        try {
          const rv = (await watcher.get<{ metadata: { resourceVersion: string } }>(path, { ...query, limit: 1 })).metadata.resourceVersion;
          await watcher.watch<unknown>(path, { ...query, resourceVersion: rv, timeoutSeconds: 600 }, (e) => { if (e.type !== 'BOOKMARK') { c.events++; c.bytes += JSON.stringify(e.object).length; } }, stop.signal);
        } catch { /* restarted */ }
      }
    })();
  };
  const agentsNodes = Array.from({ length: W }, (): Counter => ({ events: 0, bytes: 0 }));
  const agentsLeases = Array.from({ length: W }, (): Counter => ({ events: 0, bytes: 0 }));
  const operatorLeases: Counter = { events: 0, bytes: 0 };
  agentsNodes.forEach((c) => watch(resourcePath(RESOURCES.ipsecNodes), { labelSelector: label }, c));
  agentsLeases.forEach((c) => watch(resourcePath(RESOURCES.leases, { namespace: ns }), { labelSelector: `!${NODE_LEASE_LABEL}` }, c));
  watch(resourcePath(RESOURCES.leases, { namespace: ns }), { labelSelector: NODE_LEASE_LABEL }, operatorLeases);
  const log = createLogger({ level: 'silent' });
  const renewers = names.map((node) => new NodeLeaseRenewer({ kube: admin, namespace: ns, node, clock: systemClock, log, durationMs: 3 * PERIOD_SEC * 1000 }));
  // The first status of every node and the Leases' creation are not part of either window.
  await pool(names, 32, async (name) => { await admin.apply(resourcePath(RESOURCES.ipsecNodes, { name, sub: 'status' }), { apiVersion: 'kipsec.io/v1alpha1', kind: 'IPsecNode', metadata: { name }, status: meshStatus(name, names, Date.now()) }, 'kipsec-agent'); });
  await pool(renewers, 32, (r) => r.renew());
  await new Promise((r) => setTimeout(r, 3000));

  const sum = (cs: readonly Counter[]): Counter => cs.reduce((a, c) => ({ events: a.events + c.events, bytes: a.bytes + c.bytes }), { events: 0, bytes: 0 });
  const phase = async (what: string, beat: (i: number) => Promise<void>): Promise<Record<string, unknown>> => {
    const n0 = sum(agentsNodes); const l0 = sum(agentsLeases); const o0 = { ...operatorLeases };
    const cpu0 = apiserverCpuSec(); const t0 = Date.now();
    let writes = 0;
    // Each node once a period, spread evenly over it, as agents with independent timers are.
    for (let p = 0; p < PERIODS; p++) {
      const start = t0 + p * PERIOD_SEC * 1000;
      await pool(names, 32, async (_x, i) => {
        const at = start + (i * PERIOD_SEC * 1000) / N;
        if (at > Date.now()) await new Promise((r) => setTimeout(r, at - Date.now()));
        await beat(i); writes++;
      });
    }
    const wall = (Date.now() - t0) / 1000;
    await new Promise((r) => setTimeout(r, 2000)); // the watches drain
    const cpu1 = apiserverCpuSec();
    const n1 = sum(agentsNodes); const l1 = sum(agentsLeases);
    return {
      phase: what, writes, writesPerSec: +(writes / wall).toFixed(1),
      agentWatchEventsPerWatcher: +((n1.events - n0.events + l1.events - l0.events) / W).toFixed(1),
      agentWatchBytesPerWatcher: Math.round((n1.bytes - n0.bytes + l1.bytes - l0.bytes) / W),
      operatorLeaseEvents: operatorLeases.events - o0.events,
      apiserverEtcdCpuSec: cpu0 !== undefined && cpu1 !== undefined ? +(cpu1 - cpu0).toFixed(2) : undefined,
    };
  };
  const before = await phase('status', async (i) => {
    const name = names[i]!;
    await admin.apply(resourcePath(RESOURCES.ipsecNodes, { name, sub: 'status' }), { apiVersion: 'kipsec.io/v1alpha1', kind: 'IPsecNode', metadata: { name }, status: meshStatus(name, names, Date.now()) }, 'kipsec-agent');
  });
  const now = await phase('lease', (i) => renewers[i]!.renew());
  stop.abort();
  watcher.close();
  await admin.request('DELETE', resourcePath(RESOURCES.ipsecNodes), { query: { labelSelector: label } }).catch(() => undefined);
  await cleanupNamespace(admin, ns, tag);
  admin.close();
  const ratio = (k: string): number | undefined => {
    const a = before[k] as number | undefined; const b = now[k] as number | undefined;
    return a && b !== undefined ? +(b / a).toFixed(4) : undefined;
  };
  process.stdout.write(`${JSON.stringify({
    nodes: N, agentWatchers: W, periodSec: PERIOD_SEC, periods: PERIODS, statusBytes, before, now,
    leaseOverStatus: { apiserverEtcdCpu: ratio('apiserverEtcdCpuSec'), agentWatchEventsPerWatcher: ratio('agentWatchEventsPerWatcher'), agentWatchBytesPerWatcher: ratio('agentWatchBytesPerWatcher') },
    // Every node writes once a period either way; what changes is who receives it.
    writesPerNodePerPeriod: { status: +((before['writes'] as number) / N / PERIODS).toFixed(2), lease: +((now['writes'] as number) / N / PERIODS).toFixed(2) },
  })}\n`);
}

await main();
