// A kipsec mesh in the cluster lane, the way a platform engineer gets one: kipsec installed from
// deploy/ (CRDs, RBAC, admission policy), the operator and one agent per node run exactly as the
// Deployment and the DaemonSet describe them (e2e/lib/pod-runner.ts), Node objects with pod CIDRs,
// an IPsecMesh, and nodes and pods as network namespaces on a bridge (e2e/lib/cluster-net.ts).
import assert from 'node:assert/strict';
import { RESOURCES, resourcePath, type KubeClient } from '../../src/api/kube/client.js';
import type { IPsecMesh, IPsecMeshSpec, IPsecNode } from '../../src/api/types.js';
import { deleteQuietly } from '../apiserver/support.js';
import { classifyPcapFile, WireCapture, type CaptureReport } from './capture.js';
import { buildCluster, podCidrsOf, type Cluster, type ClusterNode, type Overlay } from './cluster-net.js';
import { uniqueName } from './kube.js';
import { agentCredentials, createNode, inClusterDir, installKipsec, operatorCredentials, type KipsecInstall } from './lane-kube.js';
import { Netns, type Scope } from './netns.js';
import { runPod, type PodHandle } from './pod-runner.js';
import { pingCounts, pingLosses, type PingPair } from './traffic.js';
import { kernelStates, xfrmStat } from './xfrm-text.js';

export interface MeshLane {
  readonly install: KipsecInstall;
  readonly kube: KubeClient;
  readonly cluster: Cluster;
  /** The operator pod's own network namespace (not hostNetwork). */
  readonly controlNs: Netns;
  readonly agents: Map<string, PodHandle>;
  operator: PodHandle | undefined;
  startOperator(): Promise<PodHandle>;
  stopOperator(): Promise<void>;
  startAgent(node: ClusterNode): Promise<PodHandle>;
  /**
   * Runs `body` with the node's agent stopped by the test, and makes sure an agent runs on the node
   * again afterwards even when `body` failed, so one failing step does not fail every later one.
   */
  withAgentStopped<T>(node: ClusterNode, body: () => Promise<T>): Promise<T>;
  applyMesh(spec: IPsecMeshSpec): Promise<void>;
  ipsecNodes(): Promise<IPsecNode[]>;
  mesh(): Promise<IPsecMesh>;
  /**
   * Every node reports every other node established (peersUp = n-1), bounded in time; `nodes`: only
   * these take part (the others have no agent).
   */
  waitAllUp(timeoutMs: number, nodes?: readonly ClusterNode[]): Promise<IPsecNode[]>;
  /** The node's /var/lib/kipsec (the agent's state dir on the host), once an agent ran there. */
  stateDir(node: ClusterNode): string;
  /** Logs of every pod, tails, for failure messages. */
  logs(tail?: number): string;
  /**
   * Every pair of a ping matrix reached its pod. A pair that lost an echo is pinged again (5 echoes):
   * a loss that repeats fails, with each node's non-zero XFRM error counters, SA count and the logs;
   * one that does not is printed. (Seen twice in some twenty runs, right after the mesh came up: one
   * echo of 108 lost with no XFRM counter moved, so outside IPsec. Steady-state loss is what the
   * continuous pings of the operations file judge, and there any loss fails.)
   */
  assertNoLoss(pairs: readonly PingPair[]): Promise<void>;
  /** Where a node's agent keeps its control socket (the node's /run/kipsec). */
  controlSocket(node: ClusterNode): string;
}

export const MESH_NAME = 'default';

/** Capture on the wire while `during` runs; only a complete capture is believed (a "no plaintext" verdict needs every packet). */
export async function capturedOnWire(t: Scope, c: Cluster, during: () => Promise<void>): Promise<CaptureReport> {
  const cap = await WireCapture.start(t, c.wire);
  try { await during(); } finally { /* stopped below either way */ }
  const stats = await cap.stop();
  assert.ok(stats.complete, `the capture is incomplete (${JSON.stringify({ captured: stats.captured, received: stats.receivedByFilter, dropped: stats.droppedByKernel, endedEarly: stats.endedEarly })})`);
  return classifyPcapFile(stats.file, { podCidrs: podCidrsOf(c) });
}

export interface MeshLaneOptions {
  readonly nodes: number;
  readonly overlay: Overlay;
  readonly mesh: IPsecMeshSpec;
  readonly label: string;
  /** Agent args beyond deploy/agent.yaml's (e.g. --datapath auto), with why: printed atop each agent's log. */
  readonly agentArgs?: { readonly args: readonly string[]; readonly why: string };
}

export async function startMeshLane(t: Scope, o: MeshLaneOptions): Promise<MeshLane> {
  const install = await installKipsec(t, uniqueName(`kipsec-${o.label}`));
  const kube = install.kube;
  const cluster = await buildCluster(t, { nodes: o.nodes, podsPerNode: 2, overlay: o.overlay });
  for (const n of cluster.nodes) await createNode(t, n.name, { internalIP: n.ip, podCIDRs: [n.podCidr] });
  const controlNs = await Netns.create(t, 'ctl');
  const agents = new Map<string, PodHandle>();
  const dirs = new Map<string, ReturnType<typeof inClusterDir>>();
  /** When each node's current agent started: a status written before that is the previous agent's. */
  const startedAt = new Map<string, number>();
  t.after(async () => {
    // Cluster-scoped objects this lane made: the mesh, the agents' IPsecNodes, and their CSRs — a
    // node's live certificate with another key would make the signer refuse the next test's agent
    // on a node of the same name (one live identity per node).
    await deleteQuietly(kube, resourcePath(RESOURCES.ipsecMeshes, { name: MESH_NAME }));
    for (const n of cluster.nodes) await deleteQuietly(kube, resourcePath(RESOURCES.ipsecNodes, { name: n.name }));
    const csrs = await kube.get<{ items: { metadata: { name: string } }[] }>(resourcePath(RESOURCES.csrs), { labelSelector: `kipsec.io/node in (${cluster.nodes.map((n) => n.name).join(',')})` });
    for (const c of csrs.items) await deleteQuietly(kube, resourcePath(RESOURCES.csrs, { name: c.metadata.name }));
  });
  const lane: MeshLane = {
    install, kube, cluster, controlNs, agents, operator: undefined,
    async startOperator() {
      const dir = inClusterDir(await operatorCredentials(t, install));
      lane.operator = await runPod(t, { manifest: 'deploy/operator.yaml', container: 'operator', dir, netns: controlNs.name });
      return lane.operator;
    },
    async stopOperator() {
      const op = lane.operator;
      lane.operator = undefined;
      if (op) await op.stop('SIGTERM');
    },
    async startAgent(n) {
      let dir = dirs.get(n.name);
      if (!dir) { dir = inClusterDir(await agentCredentials(t, install, n.name)); dirs.set(n.name, dir); }
      startedAt.set(n.name, Math.floor(Date.now() / 1000) * 1000);
      const pod = await runPod(t, { manifest: 'deploy/agent.yaml', container: 'agent', dir, netns: n.ns.name, ...(o.agentArgs ? { extraArgs: o.agentArgs } : {}) });
      agents.set(n.name, pod);
      return pod;
    },
    async withAgentStopped(n, body) {
      try {
        return await body();
      } finally {
        if (!agents.get(n.name)?.running()) await lane.startAgent(n);
      }
    },
    async applyMesh(spec) {
      await kube.apply(resourcePath(RESOURCES.ipsecMeshes, { name: MESH_NAME }), { apiVersion: 'kipsec.io/v1alpha1', kind: 'IPsecMesh', metadata: { name: MESH_NAME }, spec }, 'kipsec-e2e');
    },
    async ipsecNodes() {
      const names = new Set(cluster.nodes.map((n) => n.name));
      return (await kube.get<{ items: IPsecNode[] }>(resourcePath(RESOURCES.ipsecNodes))).items.filter((x) => names.has(x.metadata.name));
    },
    mesh: () => kube.get<IPsecMesh>(resourcePath(RESOURCES.ipsecMeshes, { name: MESH_NAME })),
    async waitAllUp(timeoutMs, nodes = cluster.nodes) {
      const want = nodes.length - 1;
      const names = new Set(nodes.map((n) => n.name));
      const end = Date.now() + timeoutMs;
      let last: IPsecNode[] = [];
      for (;;) {
        last = await lane.ipsecNodes().then((l) => l.filter((x) => names.has(x.metadata.name))).catch(() => last);
        const fresh = (x: IPsecNode): boolean => Date.parse(x.status?.lastUpdateTime ?? '') >= (startedAt.get(x.metadata.name) ?? 0);
        if (last.length === nodes.length && last.every((x) => x.status?.peersUp === want && x.status.peersExpected === want && fresh(x))) return last;
        for (const [name, a] of agents) if (names.has(name) && !a.running()) throw new Error(`agent on ${name} exited while the mesh came up:\n${a.log().slice(-5000)}`);
        if (Date.now() > end) {
          const summary = last.map((x) => `${x.metadata.name}: ${x.status?.peersUp ?? '?'}/${x.status?.peersExpected ?? '?'} ${JSON.stringify(x.status?.peers?.map((p) => [p.node, p.state, p.lastError?.message]))}`).join('\n');
          throw new Error(`not every node pair up within ${timeoutMs} ms:\n${summary}\n${lane.logs(3000)}`);
        }
        await new Promise((r) => setTimeout(r, 1000));
      }
    },
    logs(tail = 4000) {
      const parts = [...agents].map(([n, a]) => `--- agent ${n} ---\n${a.log().slice(-tail)}`);
      if (lane.operator) parts.push(`--- operator ---\n${lane.operator.log().slice(-tail)}`);
      return parts.join('\n');
    },
    async assertNoLoss(pairs) {
      const lost = pingLosses(pairs);
      if (lost.length === 0) return;
      const nodes = await Promise.all(cluster.nodes.map(async (n) => {
        const stat = Object.entries(await xfrmStat(n.ns).catch(() => ({}))).filter(([, v]) => v > 0);
        const states = await kernelStates(n.ns).catch(() => []);
        return `${n.name}: ${states.length} SAs, xfrm_stat ${JSON.stringify(Object.fromEntries(stat))}`;
      }));
      const pods = new Map(cluster.nodes.flatMap((n) => n.pods).map((p) => [p.name, p]));
      const unreachable = pairs.filter((p) => p.sent === 0 || p.received === 0);
      const again = await Promise.all(pairs.filter((p) => p.sent > 0 && p.received > 0 && p.received < p.sent).map(async (p) => {
        const from = pods.get(p.from.pod)!;
        const r = await from.ns.run('ping', ['-n', '-q', '-c', '5', '-i', '0.2', '-W', '5', '-I', from.ip, p.to.ip], { check: false, timeoutMs: 30_000 });
        return { p, ...pingCounts(r.stdout) };
      }));
      const repeated = again.filter((x) => x.received < x.sent || x.sent === 0);
      if (unreachable.length > 0 || repeated.length > 0) {
        assert.fail(`pings lost:\n${lost.join('\n')}\nagain: ${again.map((x) => `${x.p.from.pod} → ${x.p.to.pod} ${x.received}/${x.sent}`).join(', ')}\n${nodes.join('\n')}\n${lane.logs(2500)}`);
      }
      console.log(`transient loss, not repeated: ${lost.join('; ')}; again ${again.map((x) => `${x.received}/${x.sent}`).join(', ')}; ${nodes.join('; ')}`);
    },
    stateDir(n) {
      const dir = dirs.get(n.name)?.varLibKipsec;
      if (!dir) throw new Error(`no agent folder for ${n.name}`);
      return dir;
    },
    controlSocket(n) {
      const dir = dirs.get(n.name);
      if (!dir?.runKipsec) throw new Error(`no agent folder for ${n.name}`);
      return `${dir.runKipsec}/agent.sock`;
    },
  };
  return lane;
}

/** A plaintext ICMP echo to `to` with source `from` (a peer's pod address), sent by a rogue host on the wire. */
export async function inject(t: Scope, lane: MeshLane, victim: ClusterNode, from: string, to: string): Promise<void> {
  const rogue = lane.cluster.wire;
  // The rogue is the wire itself: an address there, the spoofed source on its loopback, a route to the victim's pods.
  await rogue.run('sh', ['-c', `ip addr add 192.0.2.250/24 dev br0 2>/dev/null; ip addr add ${from}/32 dev lo 2>/dev/null; ip link set lo up; ip route replace ${victim.podCidr} via ${victim.ip}`]);
  t.after(() => rogue.run('sh', ['-c', `ip addr del ${from}/32 dev lo; ip route del ${victim.podCidr}`], { check: false }));
  await rogue.run('ping', ['-c', '5', '-i', '0.2', '-W', '1', '-I', from, to], { check: false, timeoutMs: 30_000 });
}

export async function icmpInEchos(pod: { ns: { run: (c: string, a: readonly string[]) => Promise<{ stdout: string }> } }): Promise<number> {
  const snmp = (await pod.ns.run('cat', ['/proc/net/snmp'])).stdout.split('\n').filter((l) => l.startsWith('Icmp:'));
  const [names, values] = [snmp[0]!.split(/\s+/), snmp[1]!.split(/\s+/)];
  return Number(values[names.indexOf('InEchos')]);
}
