// bench/agent-watch-memory: what the cluster-mode agent's watches (src/agent/mesh/watch.ts: every
// IPsecMesh, every IPsecNode, every Node's metadata, its own Node, the trust bundle) cost in memory,
// against the same process without them, in a cluster of N nodes on a real apiserver + etcd.
// Every node in the cluster runs an agent holding all of this, so it is per node × N.
//
// The objects are shaped as a running mesh leaves them: Nodes as kubelets write them
// (bench/lib/kube-shapes.ts), IPsecNodes with the spec and status an agent applies (server-side, so
// with managedFields of both the agent and the operator), the status listing every peer
// established up to 100 peers and none above (peersListed: notUp, a healthy large mesh).
//
//   KIPSEC_KUBECONFIG=... node --import tsx bench/agent-watch-memory.ts [N...]   (default 100 1000 5000)
//   --keep: leave the objects (and reuse those of an earlier --keep run of the same N); each N is
//   measured alone, so the objects of other N go first.
// Figures only; the child runs as the DaemonSet runs the agent (bundled JavaScript, its NODE_OPTIONS).
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { KubeClient, RESOURCES, resourcePath } from '../src/api/kube/client.js';
import { AGENT_FIELD_MANAGER, API_VERSION, KINDS, OPERATOR_FIELD_MANAGER } from '../src/api/names.js';
import { ensureNamespace, installKipsecCrds } from '../e2e/apiserver/support.js';
import { kubeconfigPath, loadKubeConfig } from '../e2e/lib/kube.js';
import { deployedNodeOptions } from './handshake/responders.js';
import { kubeletNode } from './lib/kube-shapes.js';

const keep = process.argv.includes('--keep');
const counts = process.argv.slice(2).filter((a) => /^\d+$/.test(a)).map(Number);
const NS = 'kipsec-bench-watch';
const REPEATS = 2;

async function pool<T>(items: readonly T[], n: number, fn: (x: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: n }, async () => {
    for (;;) {
      const i = next++;
      if (i >= items.length) return;
      for (let attempt = 1; ; attempt++) {
        try { await fn(items[i]!, i); break; } catch (e) { if (attempt >= 5) throw e; await new Promise((r) => setTimeout(r, 200 * attempt)); }
      }
    }
  }));
}

const hex = (s: string): string => createHash('sha256').update(s).digest('hex');
const ipOf = (i: number): string => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
const at = new Date().toISOString().replace(/\.\d+Z$/, 'Z');

function ipsecNodeStatus(names: readonly string[], i: number): Record<string, unknown> {
  const peers = names.length - 1;
  const listed = peers <= 100;
  return {
    conditions: [{ type: 'Ready', status: 'True', reason: 'PeersEstablished', message: `${peers}/${peers} peers established`, lastTransitionTime: at, observedGeneration: 1 }],
    datapath: 'kernel', strict: true, traffic: { mode: 'routed', source: 'mesh' },
    peersUp: peers, peersExpected: peers, espOverheadBytes: 73, maxInnerPacketBytes: 1427, certificateNotAfter: at,
    peers: !listed ? [] : names.filter((_, k) => k !== i).map((p, k) => ({
      node: p, state: 'established', role: k % 2 ? 'initiator' : 'responder', address: ipOf(k),
      ikeSuite: 'AES_GCM_16_256/PRF_HMAC_SHA2_384/CURVE_25519', espSuite: 'AES_GCM_16_256/NO_EXT_SEQ',
      ikeSpis: `${hex(p).slice(0, 16)}_i ${hex(p).slice(16, 32)}_r`,
      children: [{ name: 'pods', mode: 'tunnel', spiIn: hex(p).slice(32, 40), spiOut: hex(p).slice(40, 48) }],
      establishedTime: at, lastRekeyTime: at, bytesIn: 123456789, bytesOut: 987654321, packetsIn: 123456, packetsOut: 654321,
    })),
    peersListed: listed ? 'all' : 'notUp',
    xfrmErrors: {}, lastUpdateTime: at,
  };
}

async function populate(admin: KubeClient, n: number, tag: string): Promise<void> {
  const names = Array.from({ length: n }, (_, i) => `${tag}-node-${i}`);
  await admin.apply(resourcePath(RESOURCES.ipsecMeshes, { name: tag }), { apiVersion: API_VERSION, kind: KINDS.IPsecMesh.kind, metadata: { name: tag, labels: { 'kipsec.io/test': tag } }, spec: { nodeSelector: { 'kipsec.io/test': tag } } }, 'kipsec-bench');
  const have = new Set((await admin.get<{ items: { metadata: { name: string } }[] }>(resourcePath(RESOURCES.ipsecNodes), { labelSelector: `kipsec.io/test=${tag}` })).items.map((x) => x.metadata.name));
  const t0 = Date.now();
  await pool(names.filter((x) => !have.has(x)), 32, async (name) => {
    const i = names.indexOf(name);
    const ip = ipOf(i);
    await admin.create(resourcePath(RESOURCES.nodes), kubeletNode(name, ip, tag)).catch((e: unknown) => { if ((e as { status?: number }).status !== 409) throw e; });
    const path = resourcePath(RESOURCES.ipsecNodes, { name });
    const meta = { name, labels: { 'kipsec.io/test': tag } };
    await admin.apply(path, { apiVersion: API_VERSION, kind: KINDS.IPsecNode.kind, metadata: meta, spec: {
      endpoint: { address: ip, ikePort: 500, nattPort: 4500 }, podCIDRs: [`10.244.${i % 250}.0/24`], traffic: { mode: 'routed' },
      identity: { certFingerprint: hex(`${name}c`), publicKeyFingerprint: hex(`${name}k`), san: name, notAfter: at, issuerFingerprint: hex('ca'), trustedCAs: [hex('ca')] },
    } }, AGENT_FIELD_MANAGER);
    await admin.apply(`${path}/status`, { apiVersion: API_VERSION, kind: KINDS.IPsecNode.kind, metadata: { name }, status: ipsecNodeStatus(names, i) }, AGENT_FIELD_MANAGER);
    await admin.apply(`${path}/status`, { apiVersion: API_VERSION, kind: KINDS.IPsecNode.kind, metadata: { name }, status: { conditions: [{ type: 'IdentityVerified', status: 'True', reason: 'CertificateMatches', message: 'the published certificate is the one the signer issued', lastTransitionTime: at, observedGeneration: 1 }] } }, OPERATOR_FIELD_MANAGER);
  });
  console.log(`  ${n} nodes: objects ready in ${((Date.now() - t0) / 1000).toFixed(1)} s (${n - have.size} created)`);
}

async function cleanup(admin: KubeClient, tag: string): Promise<void> {
  const sel = { labelSelector: `kipsec.io/test=${tag}` };
  await admin.delete(resourcePath(RESOURCES.ipsecNodes), sel).catch(() => undefined);
  await admin.delete(resourcePath(RESOURCES.nodes), sel).catch(() => undefined);
  await admin.delete(resourcePath(RESOURCES.ipsecMeshes, { name: tag })).catch(() => undefined);
}

/** The child bundled as the agent ships (no loader in the process; tsx would add ~80 MiB). */
function bundleChild(): string {
  const repo = new URL('..', import.meta.url).pathname;
  mkdirSync(`${repo}build`, { recursive: true });
  const out = mkdtempSync(`${repo}build/bench-watch-`);
  process.on('exit', () => rmSync(out, { recursive: true, force: true }));
  execFileSync(`${repo}node_modules/.bin/esbuild`, [`${repo}bench/agent-watch-child.ts`, '--bundle', '--platform=node', '--format=esm', '--packages=external', '--target=node20', `--outfile=${out}/child.mjs`, '--log-level=warning']);
  return `${out}/child.mjs`;
}

interface ChildResult { mode: string; syncMs: number; rss: number; heapUsed: number; heapTotal: number; external: number; cached: Record<string, number> }

function runChild(entry: string, node: string, mode: 'none' | 'watch'): ChildResult {
  const out = execFileSync(process.execPath, [entry, kubeconfigPath(), NS, node, mode], { env: { ...process.env, NODE_OPTIONS: deployedNodeOptions() }, encoding: 'utf8', timeout: 300_000 });
  return JSON.parse(out.trim().split('\n').pop()!) as ChildResult;
}

const admin = new KubeClient(loadKubeConfig(), { maxSockets: 32 });
await installKipsecCrds(admin);
await ensureNamespace(admin, NS);
const entry = bundleChild();
const mib = (b: number): string => (b / 1048576).toFixed(1);
console.log(`cluster-mode agent watches, node ${process.version}, NODE_OPTIONS "${deployedNodeOptions()}"; memory after two full GCs, median of ${REPEATS}`);
const rows: string[] = [];
for (const n of counts.length ? counts : [100, 1000, 5000]) {
  const tag = `bench-watch-${n}`;
  // Each N alone in the cluster: objects an earlier --keep run left under another N go first.
  for (const other of [100, 1000, 5000, ...counts].filter((x) => x !== n)) await cleanup(admin, `bench-watch-${other}`);
  await populate(admin, n, tag);
  const node = `${tag}-node-0`;
  const med = (xs: number[]): number => xs.sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;
  const none: ChildResult[] = []; const watch: ChildResult[] = [];
  for (let r = 0; r < REPEATS; r++) { none.push(runChild(entry, node, 'none')); watch.push(runChild(entry, node, 'watch')); }
  const [rn, rw] = [med(none.map((x) => x.rss)), med(watch.map((x) => x.rss))];
  const [hn, hw] = [med(none.map((x) => x.heapUsed)), med(watch.map((x) => x.heapUsed))];
  rows.push(`  ${String(n).padStart(6)}${mib(rn).padStart(10)}${mib(rw).padStart(10)}${mib(rw - rn).padStart(10)}${mib(hn).padStart(10)}${mib(hw).padStart(10)}${((hw - hn) / n / 1024).toFixed(1).padStart(12)}${String(med(watch.map((x) => x.syncMs))).padStart(9)}  ${JSON.stringify(watch[0]!.cached)}`);
  if (!keep) await cleanup(admin, tag);
}
console.log(`  ${'nodes'.padStart(6)}${'RSS none'.padStart(10)}${'RSS watch'.padStart(10)}${'Δ RSS'.padStart(10)}${'heap none'.padStart(10)}${'heap watch'.padStart(10)}${'Δheap/node'.padStart(12)}${'sync ms'.padStart(9)}  cached`);
for (const r of rows) console.log(r);
console.log('  (MiB; Δheap/node in KiB: the V8 heap the watches hold per node in the cluster)');
