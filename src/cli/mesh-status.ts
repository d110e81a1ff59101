// `kipsec status --cluster | --kubeconfig PATH [--mesh NAME] [--json]`: the mesh as the agents see
// it, read from the apiserver (no control socket): a node × node matrix of what each node's agent
// reports about each peer (its IPsecNode status.peers), judged by the same rules the operator
// aggregates into IPsecMesh status (src/operator/mesh-pairs.ts), the counts, and every pair that
// is not established with the error its sides report. The data is a pure function of the objects
// (buildMeshView), the table a pure function of the data (formatMeshView); --json prints the data.
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { errorMessage } from '../common/errors.js';
import { findCondition } from '../api/conditions.js';
import { KubeClient, RESOURCES, resourcePath } from '../api/kube/client.js';
import { KubeApiError } from '../api/kube/errors.js';
import type { IPsecMesh, IPsecNode, MeshPairStatus } from '../api/types.js';
import { NODE_LEASE_LABEL, nodeOfLease, type NodeLease } from '../api/node-lease.js';
import { evaluatePairs, isCountedReady, metaTime, pairKey, sideState, worstPairs, type LeaseOf, type SideState } from '../operator/mesh-pairs.js';
import { str, UsageError, type Parsed } from './args.js';
import { EXIT_FAILURE, EXIT_OK, type CliIo } from './commands.js';

/** A matrix cell: what the row's agent reports about the column's node. */
export type Cell = 'UP' | '..' | 'XX' | '?' | '-';
const CELL: Record<SideState, Cell> = { up: 'UP', connecting: '..', failed: 'XX', unknown: '?' };

export const LEGEND = 'UP established (or rekeying)   .. connecting (no SA yet, deleting)   XX failed (error below)   ? not reported, or the row\'s status is stale   - self';

export interface MeshViewNode {
  readonly name: string;
  /** Ready=True and not stale. */
  readonly ready: boolean;
  readonly stale: boolean;
  readonly lastUpdateTime?: string;
  /** When its agent was last heard from, and through what (its node Lease, or its status). */
  readonly heard?: { readonly at: string; readonly by: 'lease' | 'status' };
}

export interface MeshView {
  /** The IPsecMesh whose nodeSelector picked the nodes; null when none exists (then: every IPsecNode). */
  readonly mesh: { readonly name: string; readonly nodeSelector: Readonly<Record<string, string>> } | null;
  readonly nodesReady: number;
  readonly nodesTotal: number;
  readonly pairsEstablished: number;
  readonly pairsExpected: number;
  /** Sorted by name; the matrix rows and columns in this order. */
  readonly nodes: readonly MeshViewNode[];
  /** matrix[row][column]: what `row` reports about `column`. */
  readonly matrix: Readonly<Record<string, Readonly<Record<string, Cell>>>>;
  /** Every pair that is not established, worst first; `since` when the operator's status lists it. */
  readonly pairs: readonly MeshPairStatus[];
  /** The operator's own view, when it has written one. */
  readonly operator?: { readonly ready?: string; readonly degraded?: string; readonly pairsEstablished?: number; readonly pairsExpected?: number };
  readonly notes: readonly string[];
}

/** The view of the given (already selected) nodes. Pure. */
export function buildMeshView(nodes: readonly IPsecNode[], mesh: IPsecMesh | undefined, nowMs: number, notes: readonly string[] = [], leaseOf?: LeaseOf): MeshView {
  const ev = evaluatePairs(nodes, nowMs, leaseOf);
  const matrix: Record<string, Record<string, Cell>> = {};
  for (const r of ev.nodes) {
    const row: Record<string, Cell> = {};
    for (const c of ev.nodes) row[c.name] = r === c ? '-' : CELL[sideState(r, c.name)];
    matrix[r.name] = row;
  }
  // The since the operator recorded for the pairs its status lists; the others sort after them.
  const listed = new Map((mesh?.status?.worstPairs ?? []).filter((p) => p.nodes.length === 2 && p.since).map((p) => [pairKey(p.nodes[0]!, p.nodes[1]!), Date.parse(p.since!)]));
  const pairs = worstPairs(ev, (i, j) => listed.get(pairKey(ev.nodes[i]!.name, ev.nodes[j]!.name)) ?? Infinity, Infinity);
  const cond = (t: string): string | undefined => { const c = findCondition(mesh?.status?.conditions, t); return c ? `${c.status} (${c.reason})` : undefined; };
  const st = mesh?.status;
  const ready = cond('Ready'); const degraded = cond('Degraded');
  const operator = st ? {
    ...(ready !== undefined ? { ready } : {}), ...(degraded !== undefined ? { degraded } : {}),
    ...(st.pairsEstablished !== undefined ? { pairsEstablished: st.pairsEstablished } : {}), ...(st.pairsExpected !== undefined ? { pairsExpected: st.pairsExpected } : {}),
  } : undefined;
  return {
    mesh: mesh ? { name: mesh.metadata.name, nodeSelector: mesh.spec.nodeSelector ?? {} } : null,
    nodesReady: ev.nodes.filter(isCountedReady).length, nodesTotal: ev.nodes.length,
    pairsEstablished: ev.established, pairsExpected: ev.expected,
    nodes: ev.nodes.map((n) => ({ name: n.name, ready: isCountedReady(n), stale: n.stale, ...(n.lastUpdateTime ? { lastUpdateTime: n.lastUpdateTime } : {}), ...(n.heard ? { heard: { at: metaTime(n.heard.atMs), by: n.heard.source } } : {}) })),
    matrix, pairs, ...(operator ? { operator } : {}), notes,
  };
}

/** The human table. */
export function formatMeshView(v: MeshView): string[] {
  const out: string[] = [];
  const sel = v.mesh ? Object.entries(v.mesh.nodeSelector).map(([k, x]) => `${k}=${x}`).join(',') : '';
  const title = v.mesh ? `mesh ${v.mesh.name}${sel ? ` (nodes ${sel})` : ''}` : 'all IPsecNodes (no IPsecMesh)';
  out.push(`${title}: ${v.pairsEstablished}/${v.pairsExpected} pairs established, ${v.nodesReady}/${v.nodesTotal} nodes ready`);
  if (v.operator) {
    const parts = [v.operator.ready ? `Ready ${v.operator.ready}` : undefined, v.operator.degraded ? `Degraded ${v.operator.degraded}` : undefined,
      v.operator.pairsExpected !== undefined ? `${v.operator.pairsEstablished ?? 0}/${v.operator.pairsExpected} pairs` : undefined].filter((x) => x !== undefined);
    if (parts.length > 0) out.push(`operator status: ${parts.join(', ')}`);
  }
  for (const n of v.notes) out.push(`note: ${n}`);
  if (v.nodes.length === 0) { out.push('', 'no IPsecNode: no agent has registered (yet)'); return out; }
  const idxW = String(v.nodes.length).length;
  const nameW = Math.max(4, ...v.nodes.map((n) => n.name.length));
  const stateW = 9; // "not ready" / "stale"
  const cellW = Math.max(2, idxW) + 2;
  const lead = `  ${''.padStart(idxW)}  ${'node'.padEnd(nameW)}  ${'state'.padEnd(stateW)}  `;
  out.push('');
  out.push(`${lead}${v.nodes.map((_n, i) => String(i + 1).padEnd(cellW)).join('').trimEnd()}`);
  v.nodes.forEach((r, i) => {
    const state = r.stale ? 'stale' : r.ready ? 'ready' : 'not ready';
    const cells = v.nodes.map((c) => (v.matrix[r.name]?.[c.name] ?? '?').padEnd(cellW)).join('').trimEnd();
    out.push(`  ${String(i + 1).padStart(idxW)}  ${r.name.padEnd(nameW)}  ${state.padEnd(stateW)}  ${cells}`);
  });
  out.push('');
  out.push('rows: the reporting node; columns: the peer it reports on (numbered as the rows)');
  out.push(LEGEND);
  const stale = v.nodes.filter((n) => n.stale);
  const when = (n: MeshViewNode): string => (n.heard?.by === 'lease' ? `last Lease renewal ${n.heard.at}` : `last update ${n.lastUpdateTime ?? '?'}`);
  if (stale.length > 0) out.push(`stale: ${stale.map((n) => `${n.name} (${when(n)})`).join(', ')} — its agent was not heard from in time (its node Lease expired, or, without one, no status update for over 3 minutes); its reports are not trusted`);
  if (v.pairs.length > 0) {
    out.push('');
    out.push(`not established (${v.pairs.length}), worst first:`);
    const pw = Math.max(...v.pairs.map((p) => `${p.nodes[0]} <-> ${p.nodes[1]}`.length));
    for (const p of v.pairs) out.push(`  ${`${p.nodes[0]} <-> ${p.nodes[1]}`.padEnd(pw)}  ${p.state.padEnd(10)}  ${p.message ?? ''}${p.since ? `  (down since ${p.since})` : ''}`);
  }
  return out;
}

/** Credentials: --kubeconfig PATH; with --cluster, $KUBECONFIG, ~/.kube/config, then the pod's service account (as kubectl). */
export async function kubeClient(p: Parsed): Promise<KubeClient> {
  const { loadDefaultKubeconfig, loadInCluster, loadKubeconfigFile } = await import('../api/kube/kubeconfig.js');
  let kc;
  const file = str(p, 'kubeconfig');
  if (file !== undefined) {
    if (!existsSync(file)) throw new UsageError(`--kubeconfig ${file}: no such file`);
    kc = loadKubeconfigFile(file);
  } else if ((process.env['KUBECONFIG'] ?? '') !== '' || existsSync(join(homedir(), '.kube', 'config'))) {
    kc = loadDefaultKubeconfig();
  } else if (process.env['KUBERNETES_SERVICE_HOST']) {
    kc = loadInCluster();
  } else {
    throw new UsageError('--cluster: no kubeconfig ($KUBECONFIG, ~/.kube/config) and not in a pod (KUBERNETES_SERVICE_HOST unset); pass --kubeconfig PATH');
  }
  return new KubeClient(kc, { maxSockets: 4 });
}

export async function listAll<T>(kube: KubeClient, path: string): Promise<T[]> {
  const out: T[] = [];
  let cont: string | undefined;
  do {
    const page = await kube.get<{ items: T[]; metadata: { continue?: string } }>(path, { limit: 500, continue: cont });
    out.push(...page.items);
    cont = page.metadata.continue || undefined;
  } while (cont !== undefined);
  return out;
}

/** The mesh the operator would pick: the one named, else "default", else the oldest. */
function pickMesh(all: readonly IPsecMesh[], name: string | undefined): IPsecMesh | undefined {
  if (name !== undefined) return all.find((m) => m.metadata.name === name);
  return all.find((m) => m.metadata.name === 'default') ?? [...all].sort((a, b) => (a.metadata.creationTimestamp ?? '').localeCompare(b.metadata.creationTimestamp ?? ''))[0];
}

/**
 * The agents' heartbeat Leases (api/node-lease.ts), from any namespace (the CLI does not know which
 * one kipsec runs in); the newest renewal when two installs hold one for the same node.
 */
async function nodeLeases(kube: KubeClient, notes: string[]): Promise<LeaseOf | undefined> {
  let items: NodeLease[];
  try { items = (await kube.get<{ items: NodeLease[] }>(resourcePath(RESOURCES.leases), { labelSelector: NODE_LEASE_LABEL })).items; } catch (e) {
    if (!(e instanceof KubeApiError && (e.status === 403 || e.status === 404))) throw e;
    notes.push('cannot list Leases: staleness is judged from the statuses alone (a quiet node may show as stale)');
    return undefined;
  }
  const byNode = new Map<string, NodeLease>();
  for (const l of items) {
    const n = nodeOfLease(l);
    const have = n === undefined ? undefined : byNode.get(n);
    if (n !== undefined && (!have || (l.spec?.renewTime ?? '') > (have.spec?.renewTime ?? ''))) byNode.set(n, l);
  }
  return (node) => byNode.get(node);
}

/** Read the objects and print; exit 0 once printed (whatever the mesh's health), 1 when the apiserver could not be read. */
export async function runMeshStatus(p: Parsed, io: CliIo): Promise<number> {
  let kube: KubeClient;
  try { kube = await kubeClient(p); } catch (e) {
    if (e instanceof UsageError) throw e;
    io.err(`kipsec status: cannot load the cluster credentials: ${errorMessage(e)}`);
    return EXIT_FAILURE;
  }
  try {
    const wanted = str(p, 'mesh');
    const meshes = await listAll<IPsecMesh>(kube, resourcePath(RESOURCES.ipsecMeshes));
    const mesh = pickMesh(meshes, wanted);
    if (wanted !== undefined && !mesh) { io.err(`kipsec status: no IPsecMesh named ${wanted}${meshes.length > 0 ? ` (there are: ${meshes.map((m) => m.metadata.name).join(', ')})` : ''}`); return EXIT_FAILURE; }
    let nodes = await listAll<IPsecNode>(kube, resourcePath(RESOURCES.ipsecNodes));
    const notes: string[] = [];
    const sel = Object.entries(mesh?.spec.nodeSelector ?? {});
    if (sel.length > 0) {
      try {
        const labelSelector = sel.map(([k, v]) => `${k}=${v}`).join(',');
        const picked = new Set((await kube.get<{ items: { metadata: { name: string } }[] }>(resourcePath(RESOURCES.nodes), { labelSelector })).items.map((n) => n.metadata.name));
        nodes = nodes.filter((n) => picked.has(n.metadata.name));
      } catch (e) {
        if (!(e instanceof KubeApiError && e.status === 403)) throw e;
        notes.push('may not list Nodes: the nodeSelector is not applied, every IPsecNode is shown');
      }
    }
    const leaseOf = await nodeLeases(kube, notes);
    const view = buildMeshView(nodes, mesh, Date.now(), notes, leaseOf);
    if (p.flags.has('json')) io.out(JSON.stringify(view, null, 2));
    else for (const l of formatMeshView(view)) io.out(l);
    return EXIT_OK;
  } catch (e) {
    // API errors, an unreachable apiserver, and credentials the client cannot use (exec plugin, TLS files).
    io.err(`kipsec status: cannot read the mesh from the apiserver: ${errorMessage(e)}`);
    return EXIT_FAILURE;
  } finally {
    kube.close();
  }
}
