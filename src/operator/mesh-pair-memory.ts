// Which mesh pairs went down or came back between two reconciles (for PairDown/PairUp Events and
// the `since` of status.worstPairs): what the operator remembers of each pair, judged by the
// pair rules of mesh-pairs.ts.
//
// Size: one small index per pair (n·(n−1)/2 of them: 12.5 M at 5,000 nodes) into a short table of
// remembered states — up, unknown, and "down (never up | after up) since second S". Pairs go down
// together in few distinct seconds, so the table stays short (states no pair uses any more are
// dropped) and the index is four bits while it has at most 16 states, else one byte: 6.25 MB at
// 5,000 nodes, where a code byte and a 4-byte since per pair took 62.5 MB (twice that while a
// reconcile built the next memory from the previous one).
import { codeAt, pairIndex, pairView, isEstablishedCode, metaTime, type PairEvaluation, type SinceFn } from './mesh-pairs.js';
import type { IPsecMeshStatus } from '../api/types.js';

// What the memory knows of a pair.
const M_UP = 0;          // established at the last reconcile
const M_DOWN_NEW = 1;    // not established, and never was while we watched: no Events for it
const M_DOWN_WAS_UP = 2; // went down after having been established: PairUp when it returns
const M_UNKNOWN = 3;     // nothing known (a new node, or an operator start without a complete status)

/** One remembered state; `sinceSec` (seconds since the epoch) only for the two down states. */
export interface RememberedState { readonly code: number; readonly sinceSec: number }
const UP: RememberedState = { code: M_UP, sinceSec: 0 };
const UNKNOWN: RememberedState = { code: M_UNKNOWN, sinceSec: 0 };
/** Table positions of the two states every memory has. */
const I_UP = 0; const I_UNKNOWN = 1;

/** Table positions, one per pair: `bits` 4 packs two per byte (low nibble first), else one per element. */
export interface IndexArray { readonly bits: 4 | 8 | 16 | 32; readonly data: Uint8Array | Uint16Array | Uint32Array }

/**
 * What the operator remembers of a mesh between reconciles: per pair of `names` (sorted, the
 * nodes of the last reconcile) whether it was up, down-never-up or down-after-up, and since when
 * it is down: `states[at[pairIndex]]`.
 */
export interface PairMemory {
  readonly names: readonly string[];
  readonly at: IndexArray;   // states[get(at, pairIndex)]
  readonly states: readonly RememberedState[];
}

function indexArray(pairs: number, tableSize: number): IndexArray {
  if (tableSize <= 16) return { bits: 4, data: new Uint8Array((pairs + 1) >> 1) };
  return tableSize <= 0x100 ? { bits: 8, data: new Uint8Array(pairs) } : tableSize <= 0x10000 ? { bits: 16, data: new Uint16Array(pairs) } : { bits: 32, data: new Uint32Array(pairs) };
}

const get = (a: IndexArray, k: number): number => (a.bits === 4 ? (a.data[k >> 1]! >> ((k & 1) << 2)) & 15 : a.data[k]!);
function set(a: IndexArray, k: number, v: number): void {
  if (a.bits !== 4) { a.data[k] = v; return; }
  const sh = (k & 1) << 2;
  a.data[k >> 1] = (a.data[k >> 1]! & ~(15 << sh)) | (v << sh);
}
const pairsOf = (names: readonly string[]): number => (names.length < 2 ? 0 : (names.length * (names.length - 1)) / 2);

function cmp(a: string, b: string): number { return a < b ? -1 : a > b ? 1 : 0; }

function indexOf(sorted: readonly string[], x: string): number {
  let lo = 0; let hi = sorted.length - 1;
  while (lo <= hi) { const mid = (lo + hi) >> 1; const c = cmp(sorted[mid]!, x); if (c === 0) return mid; if (c < 0) lo = mid + 1; else hi = mid - 1; }
  return -1;
}

const isDown = (s: RememberedState): boolean => s.code === M_DOWN_NEW || s.code === M_DOWN_WAS_UP;

/** When the memory says pair {a, b} went down (metav1 time), if it is down. */
export function memorySince(m: PairMemory, a: string, b: string): string | undefined {
  const [x, y] = a < b ? [a, b] : [b, a];
  const i = indexOf(m.names, x); const j = indexOf(m.names, y);
  if (i < 0 || j < 0) return undefined;
  const s = m.states[get(m.at, pairIndex(m.names.length, i, j))]!;
  return isDown(s) ? metaTime(s.sinceSec * 1000) : undefined;
}

/**
 * Memory after an operator (re)start, from the mesh's own status (the previous leader's view):
 *  - the pairs in status.worstPairs are down since their `since`, and count as having been up, so
 *    the on-call who saw PairDown for one gets PairUp when it returns (at most WORST_PAIRS_MAX
 *    Events, for pairs that may in fact never have come up; the Normal Event says "established");
 *  - the other pairs of today's nodes count as established only when that status is complete:
 *    every non-established pair was listed (pairsExpected − pairsEstablished = worstPairs.length)
 *    and pairsExpected fits today's node count. Then a pair that broke while no operator was
 *    leading gets its PairDown. Otherwise nothing is known of them: whatever is down now is taken
 *    as never up (no Events: no storm after a restart).
 */
export function seedPairMemory(prev: IPsecMeshStatus | undefined, nodeNames: readonly string[], nowMs: number): PairMemory {
  const names = [...nodeNames].sort(cmp);
  const n = names.length;
  const pairs = n < 2 ? 0 : (n * (n - 1)) / 2;
  const listed = prev?.worstPairs ?? [];
  const complete = prev?.pairsExpected !== undefined && prev.pairsEstablished !== undefined
    && prev.pairsExpected - prev.pairsEstablished === listed.length && prev.pairsExpected === pairs;
  const states: RememberedState[] = [UP, UNKNOWN];
  const at = indexArray(pairs, 2 + listed.length);
  if (!complete) at.data.fill(at.bits === 4 ? I_UNKNOWN | (I_UNKNOWN << 4) : I_UNKNOWN);
  for (const p of listed) {
    const [a, b] = p.nodes;
    if (a === undefined || b === undefined) continue;
    const [x, y] = a < b ? [a, b] : [b, a];
    const i = indexOf(names, x); const j = indexOf(names, y);
    if (i < 0 || j < 0 || i === j) continue;
    const t = p.since !== undefined ? Date.parse(p.since) : NaN;
    set(at, pairIndex(n, i, j), states.push({ code: M_DOWN_WAS_UP, sinceSec: Math.floor((Number.isFinite(t) ? t : nowMs) / 1000) }) - 1);
  }
  return { names, at, states };
}

export interface PairTransitions {
  readonly memory: PairMemory;
  /** Established before, not now (one PairDown each): [i, j] into the evaluation's nodes. */
  readonly wentDown: readonly (readonly [number, number])[];
  /** Down after having been up, established now (one PairUp each), with when they went down (ms). */
  readonly cameUp: readonly { readonly i: number; readonly j: number; readonly downSinceMs: number }[];
}

/** The evaluation codes each memory was tracked from, and one since function per memory. */
const trackedFrom = new WeakMap<PairMemory, Uint8Array>();
const sinceFns = new WeakMap<PairMemory, SinceFn>();

/**
 * The previous memory's table without the states no pair uses any more (each reconcile that sees
 * pairs go down adds up to two), and where each old position went. Identity while it is short
 * enough for four-bit positions with the two new states.
 */
function compactStates(prev: PairMemory): { states: RememberedState[]; remap: Int32Array | undefined } {
  if (prev.states.length + 2 <= 16) return { states: [...prev.states], remap: undefined };
  const used = new Uint8Array(prev.states.length);
  used[I_UP] = 1; used[I_UNKNOWN] = 1;
  const pairs = pairsOf(prev.names);
  for (let k = 0; k < pairs; k++) used[get(prev.at, k)] = 1;
  const remap = new Int32Array(prev.states.length).fill(-1);
  const states: RememberedState[] = [];
  prev.states.forEach((s, i) => { if (used[i]) remap[i] = states.push(s) - 1; });
  return { states, remap };
}

/**
 * Compare the remembered pairs with the new evaluation. A pair that stays down keeps its since
 * and emits nothing more, whatever its state does meanwhile (connecting → failed → connecting);
 * a pair that was never up emits nothing when it comes up; pairs of nodes that left are forgotten.
 */
export function trackPairs(prev: PairMemory, ev: PairEvaluation, nowMs: number): PairTransitions {
  // The very codes this memory was tracked from (evaluatePairs reused them): nothing moved.
  if (trackedFrom.get(prev) === ev.codes) return { memory: prev, wentDown: [], cameUp: [] };
  const n = ev.nodes.length;
  const names = ev.nodes.map((v) => v.name);
  // Where each of today's nodes was in the remembered (also sorted) list, -1 when new.
  const old = names.map((x) => indexOf(prev.names, x));
  const on = prev.names.length;
  const sameNodes = on === n && old.every((x, i) => x === i); // then pair k was pair k
  const { states, remap } = compactStates(prev);
  const prevCode = Uint8Array.from(prev.states, (s) => s.code); // the loop reads a byte, not an object
  const nowSec = Math.floor(nowMs / 1000);
  // The two states a pair going down now takes, added to the table when first needed.
  let downNewNow = -1; let downWasUpNow = -1;
  const at = indexArray(ev.expected, states.length + 2);
  const wentDown: [number, number][] = [];
  const cameUp: { i: number; j: number; downSinceMs: number }[] = [];
  let k = 0;
  for (let i = 0; i < n; i++) {
    const oi = old[i]!;
    for (let j = i + 1; j < n; j++, k++) {
      const oj = old[j]!;
      const pi = sameNodes ? get(prev.at, k) : oi >= 0 && oj >= 0 ? get(prev.at, pairIndex(on, oi, oj)) : I_UNKNOWN;
      const was = prevCode[pi]!;
      if (isEstablishedCode(codeAt(ev.codes, k))) {
        set(at, k, I_UP);
        if (was === M_DOWN_WAS_UP) cameUp.push({ i, j, downSinceMs: prev.states[pi]!.sinceSec * 1000 });
      } else if (was === M_DOWN_NEW || was === M_DOWN_WAS_UP) {
        set(at, k, remap ? remap[pi]! : pi);
      } else if (was === M_UP) {
        if (downWasUpNow < 0) downWasUpNow = states.push({ code: M_DOWN_WAS_UP, sinceSec: nowSec }) - 1;
        set(at, k, downWasUpNow);
        wentDown.push([i, j]);
      } else {
        if (downNewNow < 0) downNewNow = states.push({ code: M_DOWN_NEW, sinceSec: nowSec }) - 1;
        set(at, k, downNewNow);
      }
    }
  }
  const memory: PairMemory = { names, at, states };
  trackedFrom.set(memory, ev.codes);
  return { memory, wentDown, cameUp };
}

/** The since the memory keeps for pair (i, j) of the evaluation it was tracked with (ms). */
export function memorySinceFn(m: PairMemory): SinceFn {
  // One function per memory: worstPairs recognises it and reuses its selection.
  let f = sinceFns.get(m);
  if (!f) {
    const n = m.names.length;
    f = (i, j) => m.states[get(m.at, pairIndex(n, i, j))]!.sinceSec * 1000;
    sinceFns.set(m, f);
  }
  return f;
}

export interface PairEvent { readonly type: 'Warning' | 'Normal'; readonly reason: 'PairDown' | 'PairUp'; readonly note: string }

/**
 * The Events for one reconcile: one per pair that went down or came back, at most `max` of each
 * kind (the operator passes the node count, so a node failing — n−1 pairs — is reported pair by
 * pair while a mass failure stays O(nodes) writes), plus one summary Event for the rest.
 */
export function pairEvents(t: PairTransitions, ev: PairEvaluation, nowMs: number, max: number): PairEvent[] {
  const out: PairEvent[] = [];
  for (const [i, j] of t.wentDown.slice(0, max)) {
    const p = pairView(ev.nodes[i]!, ev.nodes[j]!);
    out.push({ type: 'Warning', reason: 'PairDown', note: `${p.nodes[0]} <-> ${p.nodes[1]}: ${p.message}` });
  }
  if (t.wentDown.length > max) out.push({ type: 'Warning', reason: 'PairDown', note: `${t.wentDown.length - max} more pairs went down (${t.wentDown.length} in all); status.worstPairs lists the worst` });
  for (const u of t.cameUp.slice(0, max)) {
    out.push({ type: 'Normal', reason: 'PairUp', note: `${ev.nodes[u.i]!.name} <-> ${ev.nodes[u.j]!.name}: established (down since ${metaTime(u.downSinceMs)}, ${human(nowMs - u.downSinceMs)})` });
  }
  if (t.cameUp.length > max) out.push({ type: 'Normal', reason: 'PairUp', note: `${t.cameUp.length - max} more pairs established again (${t.cameUp.length} in all)` });
  return out;
}

function human(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '?';
  const s = Math.round(ms / 1000);
  return s < 120 ? `${s}s` : s < 7200 ? `${Math.round(s / 60)}m` : `${(s / 3600).toFixed(1)}h`;
}
