// bench/operator-status-write: what one IPsecNode IdentityVerified write costs the apiserver and
// etcd, by how it is sent — server-side apply (what the operator sends), a JSON merge patch of the
// conditions list, a JSON patch of the one entry — each with the resourceVersion precondition.
// Three sets of N IPsecNodes, each shaped as an agent leaves it (spec, and a status the agent
// applied as kipsec-agent), one set per method; per round fresh sets, then the methods interleaved
// in slices (below) write the condition to their sets (add: the first write, as at a join) and
// again with another status (change). Prints apiserver + etcd CPU per write, idle rate subtracted,
// and checks each method's semantics once: a stale resourceVersion is refused with 409, the
// agent's own condition survives, and a later agent apply keeps our condition.
//   KIPSEC_APISERVER_DIR=... KIPSEC_KUBECONFIG=... node --import tsx bench/operator-status-write.ts [N] [rounds]
import { mkdtempSync, rmSync } from 'node:fs';
import { KubeClient, RESOURCES, resourcePath } from '../src/api/kube/client.js';
import { loadKubeconfigFile } from '../src/api/kube/kubeconfig.js';
import { API_VERSION, KINDS, OPERATOR_FIELD_MANAGER } from '../src/api/names.js';
import { applyDeployFile, cleanupNamespace, ensureNamespace, installKipsecCrds } from '../e2e/apiserver/support.js';
import { loadKubeConfig } from '../e2e/lib/kube.js';
import { apiserverCpuSec } from './lib/apiserver-cpu.js';
import { serviceAccountKubeconfig } from './lib/service-account-kubeconfig.js';

interface Cond { type: string; status: string; reason: string; message: string; lastTransitionTime: string; observedGeneration?: number }
interface INode { metadata: { name: string; resourceVersion?: string; generation?: number }; status?: { conditions?: Cond[] } }
const METHODS = ['apply', 'merge', 'json'] as const;
type Method = (typeof METHODS)[number];

const now = (): string => new Date().toISOString().replace(/\.\d+Z$/, 'Z');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function pool<T>(items: readonly T[], n: number, fn: (x: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: n }, async () => { for (;;) { const i = next++; if (i >= items.length) return; await fn(items[i]!); } }));
}

/** The request each method sends for `cond` on `n` (the object as the operator's cache holds it). */
function write(kube: KubeClient, m: Method, n: INode, cond: Cond): Promise<INode> {
  const name = n.metadata.name; const rv = n.metadata.resourceVersion!;
  const path = resourcePath(RESOURCES.ipsecNodes, { name, sub: 'status' });
  const have = n.status?.conditions ?? [];
  const i = have.findIndex((c) => c.type === cond.type);
  if (m === 'apply') {
    return kube.apply<INode>(path, { apiVersion: API_VERSION, kind: KINDS.IPsecNode.kind, metadata: { name, resourceVersion: rv }, status: { conditions: [cond] } }, OPERATOR_FIELD_MANAGER);
  }
  if (m === 'merge') {
    const conditions = i < 0 ? [...have, cond] : have.map((c, j) => (j === i ? cond : c));
    return kube.mergePatch<INode>(path, { metadata: { resourceVersion: rv }, status: { conditions } }, OPERATOR_FIELD_MANAGER);
  }
  const ops = [{ op: 'replace', path: '/metadata/resourceVersion', value: rv },
    i >= 0 ? { op: 'replace', path: `/status/conditions/${i}`, value: cond }
      : n.status?.conditions ? { op: 'add', path: '/status/conditions/-', value: cond }
        : n.status ? { op: 'add', path: '/status/conditions', value: [cond] } : { op: 'add', path: '/status', value: { conditions: [cond] } }];
  return kube.request<INode>('PATCH', path, { body: ops, contentType: 'application/json-patch+json', query: { fieldManager: OPERATOR_FIELD_MANAGER } });
}

function identity(status: 'True' | 'False', gen: number | undefined): Cond {
  return { type: 'IdentityVerified', status, reason: status === 'True' ? 'CertificateMatches' : 'UnknownCertificate', message: status === 'True' ? 'certificate issued for the node, valid until 2027-12-07T00:00:00Z' : 'certificate ab12… was not issued for the node', lastTransitionTime: now(), ...(gen === undefined ? {} : { observedGeneration: gen }) };
}

async function agentStatus(admin: KubeClient, name: string, extra: Cond[] = []): Promise<INode> {
  return admin.apply<INode>(resourcePath(RESOURCES.ipsecNodes, { name, sub: 'status' }), { apiVersion: API_VERSION, kind: KINDS.IPsecNode.kind, metadata: { name }, status: {
    datapath: 'kernel', peersUp: 12, peersExpected: 12, lastUpdateTime: now(),
    conditions: [{ type: 'Ready', status: 'True', reason: 'AllPeersEstablished', message: '12 of 12 peers established', lastTransitionTime: now() }, ...extra],
  } }, 'kipsec-agent');
}

async function createSet(admin: KubeClient, prefix: string, n: number, label: string): Promise<INode[]> {
  const out: INode[] = new Array<INode>(n);
  await pool(Array.from({ length: n }, (_, i) => i), 32, async (i) => {
    const name = `${prefix}-${i}`;
    await admin.create(resourcePath(RESOURCES.ipsecNodes), { apiVersion: API_VERSION, kind: KINDS.IPsecNode.kind, metadata: { name, labels: { 'kipsec.io/test': label } },
      spec: { endpoint: { address: `10.9.${i >> 8}.${i & 255}` }, identity: { certFingerprint: 'ab'.repeat(32), publicKeyFingerprint: 'cd'.repeat(32), san: name } } });
    out[i] = await agentStatus(admin, name);
  });
  return out;
}

const SLICE = 50;

/**
 * One kind of write (add or change) by every method to its own set, interleaved: slices of SLICE
 * objects, the methods in turn within each slice (order rotated), so that the apiserver's GC cycles
 * and the machine's other load fall on all methods alike instead of on whole phases. Each write's
 * new version replaces the old in its set. Returns CPU seconds and writes per method.
 */
async function interleaved(kube: KubeClient, sets: ReadonlyMap<Method, INode[]>, status: 'True' | 'False', idleRate: number, acc: Map<Method, { cpuSec: number; writes: number }>): Promise<void> {
  const n = sets.get('apply')!.length;
  for (let from = 0, k = 0; from < n; from += SLICE, k++) {
    for (let j = 0; j < METHODS.length; j++) {
      const m = METHODS[(j + k) % METHODS.length]!; const set = sets.get(m)!;
      const idx = Array.from({ length: Math.min(SLICE, n - from) }, (_, i) => from + i);
      const c0 = apiserverCpuSec()!; const t0 = performance.now();
      await pool(idx, 16, async (i) => { set[i] = await write(kube, m, set[i]!, identity(status, set[i]!.metadata.generation)); });
      const a = acc.get(m) ?? { cpuSec: 0, writes: 0 };
      acc.set(m, { cpuSec: a.cpuSec + apiserverCpuSec()! - c0 - idleRate * (performance.now() - t0) / 1000, writes: a.writes + idx.length });
    }
  }
}

/** Semantics, once per method: 409 on a stale version; the agent's Ready kept; an agent apply keeps ours. */
async function checkSemantics(admin: KubeClient, kube: KubeClient, m: Method, n: INode): Promise<Record<string, unknown>> {
  const first = await write(kube, m, n, identity('True', n.metadata.generation));
  const stale = await write(kube, m, n, identity('False', n.metadata.generation)).then(() => 'accepted', (e: { status?: number }) => e.status);
  const later = await agentStatus(admin, n.metadata.name, [{ type: 'Healthy', status: 'True', reason: 'Ok', message: 'a second agent condition', lastTransitionTime: now() }]);
  const types = (later.status?.conditions ?? []).map((c) => `${c.type}=${c.status}`).join(',');
  const owners = (later as { metadata: { managedFields?: { manager: string; operation: string }[] } }).metadata.managedFields?.map((f) => `${f.manager}/${f.operation}`).join(',');
  return { method: m, staleWrite: stale, firstWriteConditions: first.status?.conditions?.map((c) => c.type).join(','), afterAgentApply: types, managers: owners };
}

const [nArg, roundsArg] = process.argv.slice(2).map(Number);
const N = nArg || 300; const ROUNDS = roundsArg || 4;
const admin = new KubeClient(loadKubeConfig(), { maxSockets: 64 });
const tag = `sw-${process.pid}`; const ns = `kipsec-${tag}`;
await installKipsecCrds(admin);
await ensureNamespace(admin, ns);
const rbacCleanup = await applyDeployFile(admin, 'rbac.yaml', ns);
const dir = mkdtempSync('/tmp/kipsec-bench-sw-');
const kube = new KubeClient(loadKubeconfigFile(await serviceAccountKubeconfig(admin, ns, 'kipsec-operator', dir)), { maxSockets: 16 });
rmSync(dir, { recursive: true, force: true });
if (apiserverCpuSec() === undefined) throw new Error('KIPSEC_APISERVER_DIR must name the running apiserver lane (e2e/apiserver.sh)');

try {
  const probe = await createSet(admin, `${tag}-check`, METHODS.length, tag);
  for (const [i, m] of METHODS.entries()) process.stdout.write(`${JSON.stringify(await checkSemantics(admin, kube, m, probe[i]!))}\n`);
  await sleep(2000);
  const i0 = apiserverCpuSec()!; await sleep(5000); const idleRate = (apiserverCpuSec()! - i0) / 5;
  process.stdout.write(`${JSON.stringify({ n: N, rounds: ROUNDS, idleApiserverEtcdCpuPerSec: +idleRate.toFixed(3) })}\n`);
  const perRound: Record<string, number[]> = {};
  for (let r = 0; r < ROUNDS; r++) {
    const sets = new Map<Method, INode[]>();
    for (const m of METHODS) sets.set(m, await createSet(admin, `${tag}-r${r}-${m}`, N, tag));
    for (const kind of ['add', 'change'] as const) {
      await sleep(1000);
      const acc = new Map<Method, { cpuSec: number; writes: number }>();
      await interleaved(kube, sets, kind === 'add' ? 'True' : 'False', idleRate, acc);
      const ms = Object.fromEntries([...acc].map(([m, a]) => [m, +((a.cpuSec * 1000) / a.writes).toFixed(3)]));
      for (const [m, v] of Object.entries(ms)) (perRound[`${m} ${kind}`] ??= []).push(v);
      process.stdout.write(`${JSON.stringify({ round: r, kind, apiserverEtcdCpuMsPerWrite: ms })}\n`);
    }
    await admin.request('DELETE', resourcePath(RESOURCES.ipsecNodes), { query: { labelSelector: `kipsec.io/test=${tag}` } });
  }
  const mean = (xs: number[]): number => +(xs.reduce((s, x) => s + x, 0) / xs.length).toFixed(3);
  process.stdout.write(`${JSON.stringify({ apiserverEtcdCpuMsPerWrite: Object.fromEntries(Object.entries(perRound).map(([k, v]) => [k, { mean: mean(v), rounds: v }])) })}\n`);
} finally {
  await admin.request('DELETE', resourcePath(RESOURCES.ipsecNodes), { query: { labelSelector: `kipsec.io/test=${tag}` } }).catch(() => undefined);
  await rbacCleanup();
  await cleanupNamespace(admin, ns, tag);
  admin.close(); kube.close();
}
