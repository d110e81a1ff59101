// Node pairs of an IPsecMesh, judged from the IPsecNode statuses: each agent reports its own view
// of every mesh peer (DESIGN.md §3, one writer per object), so a pair {a, b} has two witnesses.
// Pure functions: the operator turns them into IPsecMesh status and PairDown/PairUp Events,
// `kipsec status --cluster` prints the same views as a node × node matrix.
//
// The rules (one place; the CLI and the operator share them):
//   side  = what node a reports about peer b (its status.peers entry for b):
//     up          state established or rekeying (an old lastError is history then)
//     failed      state failed, or any other state with a lastError (the agent is retrying)
//     connecting  state connecting, none or deleting, no lastError
//     unknown     b is not in a's peers list, or a's status is stale (below). A large mesh's agent
//                 lists only the peers that are not up (status.peersListed notUp): there an
//                 unlisted peer is up, as long as a expects as many peers as the mesh has others
//                 (api/peer-listing.ts; else a has not caught up with a join or a leave).
//   pair  = established when both sides are up; half when exactly one is; otherwise failed when
//           a side failed, connecting when a side is connecting, unknown when neither says anything.
//   stale = the node's agent has not been heard from within the bound (by the operator's clock):
//           its node Lease's renewTime is older than the Lease's duration, or — an agent without a
//           Lease (one from before Leases, during an upgrade) — its status.lastUpdateTime is more
//           than STALE_AFTER_MS old (api/node-lease.ts lastHeard). The agent writes state changes
//           within seconds and renews its Lease every third of its duration, so three missed
//           renewals mean it is down or cut off from the apiserver. A stale node is not trusted at
//           all: its Ready=True does not count as ready, and what it says about its peers counts
//           as unknown (the last words of a dead agent are no evidence that an SA is still up).
//           A node with neither a Lease nor a lastUpdateTime is never stale.
//
// Size: a mesh of n nodes has n·(n−1)/2 pairs (499,500 at 1,000 nodes), and all of them may be
// down at once (a forming mesh, agents that do not report peers yet, a CA mishap). So pair states
// live in typed arrays over the upper triangle (pairIndex), messages are built only for the pairs
// shown (worstPairs, Events, the CLI), and the per-node peer lookups are cached per object.
// What the operator remembers between reconciles (PairDown/PairUp) is in mesh-pair-memory.ts.
import { CONDITION_TYPES as C, isTrue } from '../api/conditions.js';
import { unlistedPeersUp } from '../api/peer-listing.js';
import { isHeardStale, lastHeard, staleAtMs, STATUS_STALE_AFTER_MS, type Heard, type NodeLease } from '../api/node-lease.js';
import type { IPsecNode, MeshPairStatus, NodePeerStatus } from '../api/types.js';

export const STALE_AFTER_MS = STATUS_STALE_AFTER_MS;
/** A node's heartbeat Lease by node name (the operator's cache), or none. */
export type LeaseOf = (node: string) => NodeLease | undefined;
export const WORST_PAIRS_MAX = 10;
const MESSAGE_MAX = 1024;

export type SideState = 'up' | 'failed' | 'connecting' | 'unknown';
export type PairState = MeshPairStatus['state'];

// Side codes (what one node reports about one peer).
const S_UP = 0; const S_FAILED = 1; const S_CONNECTING = 2; const S_UNKNOWN = 3;
const SIDE_STATES: readonly SideState[] = ['up', 'failed', 'connecting', 'unknown'];
// Pair codes, as stored in PairEvaluation.codes.
const P_ESTABLISHED = 0; const P_FAILED = 1; const P_CONNECTING = 2; const P_HALF = 3; const P_UNKNOWN = 4;
const PAIR_STATES: readonly PairState[] = ['established', 'failed', 'connecting', 'half', 'unknown'];
/** Worst first: failed, connecting, then half and unknown alike. */
const PAIR_RANK: readonly number[] = [3, 0, 1, 2, 2];

/** One node as the pair rules see it. */
export interface NodeView {
  readonly name: string;
  /** Its agent's Ready condition says True (regardless of staleness). */
  readonly readyReported: boolean;
  readonly stale: boolean;
  readonly lastUpdateTime: string | undefined;
  /** When its agent was last heard from, and through what (its Lease, or its status). */
  readonly heard: Heard | undefined;
  readonly peers: ReadonlyMap<string, NodePeerStatus>;
  /** It lists only the peers that are not up, and expects every other node of the mesh. */
  readonly unlistedUp: boolean;
}

/** What `node` reports about `peer`, judged. `detail` is the human part after "node: ". */
export interface SideView {
  readonly node: string;
  readonly peer: string;
  readonly state: SideState;
  readonly detail: string;
  readonly notify?: string;
}

export interface PairView {
  readonly key: string;
  /** In name order. */
  readonly nodes: readonly [string, string];
  readonly state: PairState;
  /** Names the side(s) with the problem and the IKE notify, e.g. "node-a: AUTHENTICATION_FAILED: …". */
  readonly message: string;
  readonly sides: readonly [SideView, SideView];
}

export interface PairEvaluation {
  /** Sorted by name; pair (i, j) with i < j indexes these. */
  readonly nodes: readonly NodeView[];
  readonly expected: number;
  readonly established: number;
  readonly counts: Readonly<Record<PairState, number>>;
  /** Pair state codes over the upper triangle, pairIndex order, four bits each (codeAt): 6 MB at
   * 5,000 nodes, not 12.5, and a reconcile holds the old and the new ones for a while. */
  readonly codes: Uint8Array;
}

/** Established: the pair code evaluatePairs stores for a pair both sides report up. */
export function isEstablishedCode(c: number): boolean { return c === P_ESTABLISHED; }

/** Pair k's code in packed codes: the low nibble of byte k/2 for even k, the high one for odd k. */
export function codeAt(codes: Uint8Array, k: number): number { return (codes[k >> 1]! >> ((k & 1) << 2)) & 15; }

export function pairKey(a: string, b: string): string { return a < b ? `${a} <-> ${b}` : `${b} <-> ${a}`; }

/** n·(n−1)/2 (and 0, not −0, for no nodes). */
export function pairCount(n: number): number { return n < 2 ? 0 : (n * (n - 1)) / 2; }

/** Index of pair (i, j), i < j < n, in the row-by-row upper triangle. */
export function pairIndex(n: number, i: number, j: number): number { return i * n - (i * (i + 1)) / 2 + (j - i - 1); }

export function isStale(n: IPsecNode, nowMs: number, lease?: NodeLease): boolean { return isHeardStale(lastHeard(n.status, lease), nowMs); }

function sideCode(r: NodePeerStatus): number {
  if (r.state === 'established' || r.state === 'rekeying') return S_UP;
  if (r.lastError || r.state === 'failed') return S_FAILED;
  return S_CONNECTING;
}

// Informer objects are replaced, never mutated, on update: the derived maps are cached per object,
// so a reconcile rebuilds only the nodes that changed.
const derived = new WeakMap<IPsecNode, Omit<NodeView, 'stale' | 'unlistedUp' | 'heard'>>();

export function nodeView(n: IPsecNode, nowMs: number, meshSize = 0, lease?: NodeLease): NodeView {
  let d = derived.get(n);
  if (!d) {
    const peers = new Map<string, NodePeerStatus>();
    for (const p of n.status?.peers ?? []) peers.set(p.node, p);
    d = { name: n.metadata.name, readyReported: isTrue(n.status?.conditions, C.Ready), lastUpdateTime: n.status?.lastUpdateTime, peers };
    derived.set(n, d);
  }
  const heard = lastHeard(n.status, lease);
  return { ...d, stale: isHeardStale(heard, nowMs), heard, unlistedUp: unlistedPeersUp(n.status, meshSize) };
}

/** "last heard from T by its node Lease": what a stale node is said to be. */
export function heardText(v: NodeView): string {
  const h = v.heard;
  return h ? `last heard from ${metaTime(h.atMs)} by its ${h.source === 'lease' ? 'node Lease' : 'status'}` : 'not heard from';
}

/** Counted as ready: Ready=True and not stale. */
export function isCountedReady(v: NodeView): boolean { return v.readyReported && !v.stale; }

function sideCodeOf(from: NodeView, peer: string): number {
  if (from.stale) return S_UNKNOWN;
  const r = from.peers.get(peer);
  return r ? sideCode(r) : from.unlistedUp ? S_UP : S_UNKNOWN;
}

/** What `from` reports about `peer`, as a state only (the matrix cell). */
export function sideState(from: NodeView, peer: string): SideState { return SIDE_STATES[sideCodeOf(from, peer)]!; }

export function sideView(from: NodeView, peer: string): SideView {
  const base = { node: from.name, peer };
  if (from.stale) return { ...base, state: 'unknown', detail: `${heardText(from)}: agent down or cut off from the apiserver` };
  const r = from.peers.get(peer);
  if (!r) return from.unlistedUp ? { ...base, state: 'up', detail: 'up (it lists only the peers that are not up)' } : { ...base, state: 'unknown', detail: `does not report ${peer}` };
  if (r.state === 'established' || r.state === 'rekeying') return { ...base, state: 'up', detail: r.state };
  if (r.lastError) {
    const e = r.lastError;
    const what = `${e.notify ? `${e.notify}: ` : ''}${e.message}`;
    return { ...base, state: 'failed', detail: r.state === 'failed' ? what : `${what} (${r.state})`, ...(e.notify ? { notify: e.notify } : {}) };
  }
  if (r.state === 'failed') return { ...base, state: 'failed', detail: 'failed (no error reported)' };
  return { ...base, state: 'connecting', detail: r.state === 'none' ? 'no SA yet' : r.state };
}

function pairCode(sa: number, sb: number): number {
  const ups = (sa === S_UP ? 1 : 0) + (sb === S_UP ? 1 : 0);
  if (ups === 2) return P_ESTABLISHED;
  if (ups === 1) return P_HALF;
  if (sa === S_FAILED || sb === S_FAILED) return P_FAILED;
  if (sa === S_CONNECTING || sb === S_CONNECTING) return P_CONNECTING;
  return P_UNKNOWN;
}

const SIDE_RANK: Record<SideState, number> = { failed: 0, connecting: 1, unknown: 2, up: 3 };

/** The pair of two nodes with its message (built on demand: only for the pairs shown). */
export function pairView(a: NodeView, b: NodeView): PairView {
  const [x, y] = a.name < b.name ? [a, b] : [b, a];
  const sx = sideView(x, y.name); const sy = sideView(y, x.name);
  const state = PAIR_STATES[pairCode(sideCodeOf(x, y.name), sideCodeOf(y, x.name))]!;
  return { key: pairKey(x.name, y.name), nodes: [x.name, y.name], state, message: pairMessage(state, sx, sy), sides: [sx, sy] };
}

function pairMessage(state: PairState, a: SideView, b: SideView): string {
  if (state === 'established') return `${a.node}: ${a.detail}; ${b.node}: ${b.detail}`;
  // The side with the problem first (failed before connecting before silent), then the other.
  const down = [a, b].filter((s) => s.state !== 'up').sort((s, t) => SIDE_RANK[s.state] - SIDE_RANK[t.state]);
  const parts = down.map((s) => `${s.node}: ${s.detail}`);
  const up = [a, b].find((s) => s.state === 'up');
  if (up) parts.push(`${up.node} reports ${up.detail}`);
  return clip(parts.join('; '), MESSAGE_MAX);
}

function clip(s: string, n: number): string { return s.length <= n ? s : `${s.slice(0, n - 1)}…`; }

// Rows of side codes, per IPsecNode object and node list: sideAt(row, j) = what this node reports
// about names[j], two bits each (a side code is 0..3), so 5,000 rows of 5,000 peers take 6 MB, not
// 25. While the node list stays the same (interned, so the same array), a reconcile rebuilds only
// the rows of the nodes that changed, and judging a pair is two array reads.
interface NameList { readonly names: readonly string[]; readonly index: ReadonlyMap<string, number> }
const lists = new Map<string, NameList>();
const rows = new WeakMap<IPsecNode, { readonly list: NameList; readonly row: Uint8Array }>();

function internNames(sorted: readonly string[]): NameList {
  const key = sorted.join('\n');
  let l = lists.get(key);
  if (l) { lists.delete(key); lists.set(key, l); return l; } // most recently used last
  l = { names: sorted, index: new Map(sorted.map((x, i) => [x, i])) };
  lists.set(key, l);
  if (lists.size > 16) lists.delete(lists.keys().next().value!);
  return l;
}

// A new IPsecNode object (every status write, the agent's minutely refresh, the operator's own
// condition) usually reports the same peers: its row is built in a scratch buffer and, when equal to
// the node's row of the last evaluation (`prev`), that row is shared instead of allocating another.
// Rows are small ArrayBuffers freed only when the old object dies in a full GC, so during a join
// storm fresh copies piled up as tens of MiB of RSS at 5,000 nodes (bench/operator-scale).
let scratch = new Uint8Array(0);
function rowOf(n: IPsecNode, list: NameList, prev: Uint8Array | undefined): Uint8Array {
  const c = rows.get(n);
  if (c && c.list === list) return c.row;
  const len = Math.ceil(list.names.length / 4);
  if (scratch.length < len) scratch = new Uint8Array(len);
  // Unlisted peers: S_UP (0) everywhere or S_UNKNOWN (3) everywhere.
  const buf = scratch.subarray(0, len).fill(unlistedPeersUp(n.status, list.names.length) ? 0x00 : 0xff);
  for (const p of n.status?.peers ?? []) {
    const j = list.index.get(p.node);
    if (j !== undefined) { const sh = (j & 3) << 1; buf[j >> 2] = (buf[j >> 2]! & ~(3 << sh)) | (sideCode(p) << sh); }
  }
  const row = prev && prev.length === len && Buffer.from(prev.buffer, prev.byteOffset, prev.byteLength).equals(buf) ? prev : buf.slice();
  rows.set(n, { list, row });
  return row;
}

// The codes depend only on the name list and each node's row (none when stale). Agents rewrite
// their status every minute, the operator sets a condition, identities get published: most
// updates change no row, so the last codes of a list are kept and reused while its rows are
// equal — an O(n) check per changed node instead of O(n²) work (1–2 s of CPU at 5,000 nodes).
// Codes are never mutated once built, so evaluations may share them. A few lists only (one per
// mesh, usually one): a node list that changes keeps no stale n² arrays alive.
interface CodesEntry { readonly rows: readonly (Uint8Array | undefined)[]; readonly codes: Uint8Array; readonly byCode: readonly number[] }
const lastCodes = new Map<NameList, CodesEntry>();
const LAST_CODES_MAX = 4;
function keepCodes(list: NameList, e: CodesEntry): void {
  lastCodes.delete(list); lastCodes.set(list, e);
  if (lastCodes.size > LAST_CODES_MAX) lastCodes.delete(lastCodes.keys().next().value!);
}

const sideAt = (row: Uint8Array, j: number): number => (row[j >> 2]! >> ((j & 3) << 1)) & 3;

function sameRows(a: readonly (Uint8Array | undefined)[], b: readonly (Uint8Array | undefined)[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]; const y = b[i];
    if (x === y) continue;
    if (!x || !y || !Buffer.from(x.buffer, x.byteOffset, x.byteLength).equals(y)) return false;
  }
  return true;
}

/** Judge every pair of the given (already selected) nodes: two array reads per pair, no objects per pair. */
export function evaluatePairs(nodes: readonly IPsecNode[], nowMs: number, leaseOf?: LeaseOf): PairEvaluation {
  const sorted = [...nodes].sort((a, b) => cmp(a.metadata.name, b.metadata.name));
  const views = sorted.map((n) => nodeView(n, nowMs, sorted.length, leaseOf?.(n.metadata.name)));
  const list = internNames(views.map((v) => v.name));
  const last = lastCodes.get(list);
  const sideRows = sorted.map((x, i) => (views[i]!.stale ? undefined : rowOf(x, list, last?.rows[i])));
  const n = views.length;
  if (last && sameRows(last.rows, sideRows)) {
    keepCodes(list, { ...last, rows: sideRows }); // the new row objects: next time equal by reference
    return withCodes(views, last.codes, last.byCode);
  }
  const codes = new Uint8Array((pairCount(n) + 1) >> 1);
  const byCode = [0, 0, 0, 0, 0];
  let k = 0;
  for (let i = 0; i < n; i++) {
    const ri = sideRows[i];
    for (let j = i + 1; j < n; j++) {
      const rj = sideRows[j];
      const c = pairCode(ri ? sideAt(ri, j) : S_UNKNOWN, rj ? sideAt(rj, i) : S_UNKNOWN);
      if (k & 1) codes[k >> 1] = codes[k >> 1]! | (c << 4); else codes[k >> 1] = c;
      k++; byCode[c]!++;
    }
  }
  keepCodes(list, { rows: sideRows, codes, byCode });
  return withCodes(views, codes, byCode);
}

function withCodes(views: readonly NodeView[], codes: Uint8Array, byCode: readonly number[]): PairEvaluation {
  const counts = { established: byCode[P_ESTABLISHED]!, failed: byCode[P_FAILED]!, connecting: byCode[P_CONNECTING]!, half: byCode[P_HALF]!, unknown: byCode[P_UNKNOWN]! };
  return { nodes: views, expected: pairCount(views.length), established: counts.established, counts, codes };
}

/** Call fn for every pair that is not established, in pairIndex order. */
export function forEachDown(ev: PairEvaluation, fn: (i: number, j: number, state: PairState) => void): void {
  const n = ev.nodes.length;
  let k = 0;
  for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++, k++) { const c = codeAt(ev.codes, k); if (c !== P_ESTABLISHED) fn(i, j, PAIR_STATES[c]!); }
}

/** Every pair that is not established, with its message (the CLI, tests; the operator uses worstPairs). */
export function downPairs(ev: PairEvaluation): PairView[] {
  const out: PairView[] = [];
  forEachDown(ev, (i, j) => out.push(pairView(ev.nodes[i]!, ev.nodes[j]!)));
  return out;
}

/** When pair (i, j) went down, ms since the epoch; Infinity when not known (sorts last, no since). */
export type SinceFn = (i: number, j: number) => number;

/** The worst `max` pairs for status.worstPairs: failed, connecting, then half/unknown; longest down first, then by name. */
interface Cand { readonly rank: number; readonly since: number; readonly i: number; readonly j: number }
// The selection depends only on the codes and the since function (per memory, memorySinceFn): the
// same two select the same pairs, whose messages are built again from the nodes of today.
const lastWorst = new WeakMap<Uint8Array, { readonly since: SinceFn; readonly max: number; readonly top: readonly Cand[] }>();

export function worstPairs(ev: PairEvaluation, since: SinceFn, max = WORST_PAIRS_MAX): MeshPairStatus[] {
  const hit = lastWorst.get(ev.codes);
  const top = hit && hit.since === since && hit.max === max ? hit.top : selectWorst(ev, since, max);
  lastWorst.set(ev.codes, { since, max, top });
  return top.map((t) => {
    const p = pairView(ev.nodes[t.i]!, ev.nodes[t.j]!);
    return { nodes: [p.nodes[0], p.nodes[1]], state: p.state, message: p.message, ...(Number.isFinite(t.since) ? { since: metaTime(t.since) } : {}) };
  });
}

function selectWorst(ev: PairEvaluation, since: SinceFn, max: number): Cand[] {
  const order = (x: Cand, y: Cand): number => x.rank - y.rank || (x.since === y.since ? 0 : x.since < y.since ? -1 : 1) || x.i - y.i || x.j - y.j;
  const top: Cand[] = [];
  const n = ev.nodes.length;
  let k = 0;
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++, k++) {
      const c = codeAt(ev.codes, k);
      if (c === P_ESTABLISHED) continue;
      const cand = { rank: PAIR_RANK[c]!, since: since(i, j), i, j };
      if (max === Infinity) { top.push(cand); continue; }
      // Bounded insertion: O(pairs · max), no array of every pair down.
      if (top.length >= max && order(cand, top[top.length - 1]!) >= 0) continue;
      let at = top.length;
      while (at > 0 && order(cand, top[at - 1]!) < 0) at--;
      top.splice(at, 0, cand);
      if (top.length > max) top.pop();
    }
  }
  return max === Infinity ? top.sort(order) : top;
}

function cmp(a: string, b: string): number { return a < b ? -1 : a > b ? 1 : 0; }

/** When the operator next has to look again although nothing changed: the next node to go stale. */
export function nextStaleCheckMs(nodes: readonly IPsecNode[], nowMs: number, leaseOf?: LeaseOf): number {
  let next = Infinity;
  for (const n of nodes) {
    const due = staleAtMs(lastHeard(n.status, leaseOf?.(n.metadata.name))) + 1000 - nowMs;
    if (due > 0 && due < next) next = due;
  }
  return next;
}

/** Metav1 time: RFC 3339, seconds precision. */
export function metaTime(ms: number): string { return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z'); }
