// bench/handshake/heap-summary — where a V8 heap snapshot's bytes are: the largest groups by node
// type and constructor name (self sizes; ArrayBuffer backing stores are "native" nodes of their
// own), and, for each instance of the given classes, the bytes reachable from each of its fields
// (objects with one strong retainer only, so shared configs and the engine are charged to no
// field; other instances of the classes not entered): per instance, what an IkeSa holds in `lastResponse`, `keys`, …
// Given two snapshots (before, after), groups are the difference and per-instance figures come
// from the second.
//
//   node --import tsx bench/handshake/heap-summary.ts [--before a.heapsnapshot] after.heapsnapshot [--class IkeSa,Object+lastResponse] [--top 30] [--detail]
import { readFileSync } from 'node:fs';

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[]]; edge_fields: string[]; edge_types: [string[]] }; node_count: number };
  nodes: number[];
  edges: number[];
  strings: string[];
}

interface Graph { readonly s: Snapshot; readonly nf: number; readonly ef: number; readonly firstEdge: Uint32Array; readonly nodeTypes: string[]; readonly edgeTypes: string[] }

function load(file: string): Graph {
  const s = JSON.parse(readFileSync(file, 'utf8')) as Snapshot;
  const nf = s.snapshot.meta.node_fields.length; const ef = s.snapshot.meta.edge_fields.length;
  const n = s.nodes.length / nf;
  const firstEdge = new Uint32Array(n + 1);
  const ec = s.snapshot.meta.node_fields.indexOf('edge_count');
  for (let i = 0, e = 0; i < n; i++) { firstEdge[i] = e; e += s.nodes[i * nf + ec]! * ef; firstEdge[i + 1] = e; }
  return { s, nf, ef, firstEdge, nodeTypes: s.snapshot.meta.node_types[0], edgeTypes: s.snapshot.meta.edge_types[0] };
}

const typeOf = (g: Graph, i: number): string => g.nodeTypes[g.s.nodes[i * g.nf]!]!;
const nameOf = (g: Graph, i: number): string => g.s.strings[g.s.nodes[i * g.nf + 1]!]!;
const selfOf = (g: Graph, i: number): number => g.s.nodes[i * g.nf + 3]!;
/** Plain objects by their first property names, closures by function name, timers by callback. */
const detail = (g: Graph, i: number): string => {
  const t = typeOf(g, i); const name = nameOf(g, i);
  const props: string[] = [];
  for (let e = g.firstEdge[i]!; e < g.firstEdge[i + 1]!; e += g.ef) {
    if (g.edgeTypes[g.s.edges[e]!] !== 'property') continue;
    const p = String(g.s.strings[g.s.edges[e + 1]!]);
    if (name === 'Timeout' && p === '_onTimeout') return `Timeout → ${nameOf(g, g.s.edges[e + 2]! / g.nf) || '(anonymous)'}`;
    props.push(p);
  }
  if (t === 'closure') return `closure ${name || '(anonymous)'}`;
  if (t === 'object' && (name === 'Object' || name === 'Array')) return `${name} {${props.slice(0, 5).join(',')}}`;
  return '';
};
const groupOf = (g: Graph, i: number): string => {
  const t = typeOf(g, i);
  const name = nameOf(g, i);
  if (DETAIL) { const d = detail(g, i); if (d) return d; }
  return t === 'string' || t === 'concatenated string' || t === 'sliced string' ? `(${t})` : t === 'code' || t === 'closure' ? `(${t}) ${t === 'closure' ? '' : name.slice(0, 30)}` : `(${t}) ${name.slice(0, 60)}`;
};

function groups(g: Graph): Map<string, { count: number; bytes: number }> {
  const m = new Map<string, { count: number; bytes: number }>();
  const n = g.s.nodes.length / g.nf;
  for (let i = 0; i < n; i++) {
    const k = groupOf(g, i);
    const v = m.get(k) ?? { count: 0, bytes: 0 };
    v.count++; v.bytes += selfOf(g, i);
    m.set(k, v);
  }
  return m;
}

function fields(g: Graph, classes: readonly string[]): void {
  const n = g.s.nodes.length / g.nf;
  const seen = new Uint8Array(n);
  const roots: number[] = [];
  // A class is a constructor name, or name+field for plain objects (Object+lastResponse: the IKE SA records).
  const hasField = (i: number, f: string): boolean => {
    for (let e = g.firstEdge[i]!; e < g.firstEdge[i + 1]!; e += g.ef) if (g.edgeTypes[g.s.edges[e]!] === 'property' && g.s.strings[g.s.edges[e + 1]!] === f) return true;
    return false;
  };
  const label = new Map<number, string>();
  for (let i = 0; i < n; i++) {
    if (typeOf(g, i) !== 'object') continue;
    const c = classes.find((k) => { const [name, field] = k.split('+'); return nameOf(g, i) === name && (field === undefined || hasField(i, field)); });
    if (c !== undefined) { roots.push(i); label.set(i, c); }
  }
  for (const r of roots) seen[r] = 1;
  // Only what is owned: a node with at most MAX_OWNERS strong retainers (shared proposals, configs and the engine
  // itself are retained from many places and not charged to any field).
  const indeg = new Uint32Array(n);
  for (let e = 0; e < g.s.edges.length; e += g.ef) if (!['weak', 'shortcut'].includes(g.edgeTypes[g.s.edges[e]!]!)) indeg[g.s.edges[e + 2]! / g.nf]!++;
  const per = new Map<string, number>();
  const skipEdge = new Set(['weak', 'shortcut']);
  for (const r of roots) {
    const cls = label.get(r)!;
    per.set(`${cls}: (object itself)`, (per.get(`${cls}: (object itself)`) ?? 0) + selfOf(g, r));
    for (let e = g.firstEdge[r]!; e < g.firstEdge[r + 1]!; e += g.ef) {
      const et = g.edgeTypes[g.s.edges[e]!]!;
      if (skipEdge.has(et)) continue;
      const name = et === 'element' || et === 'hidden' ? `[${et}]` : String(g.s.strings[g.s.edges[e + 1]!]);
      if (name === 'map' || name === '__proto__') continue;
      const to = g.s.edges[e + 2]! / g.nf;
      let bytes = 0;
      const stack = [to];
      while (stack.length) {
        const x = stack.pop()!;
        if (seen[x] || indeg[x]! > MAX_OWNERS) continue;
        const t = typeOf(g, x);
        if (t === 'code' || t === 'hidden' && nameOf(g, x) === 'system / Map') continue; // shared shapes and code
        seen[x] = 1;
        bytes += selfOf(g, x);
        for (let f = g.firstEdge[x]!; f < g.firstEdge[x + 1]!; f += g.ef) if (!skipEdge.has(g.edgeTypes[g.s.edges[f]!]!)) stack.push(g.s.edges[f + 2]! / g.nf);
      }
      const k = `${cls}.${name}`;
      per.set(k, (per.get(k) ?? 0) + bytes);
    }
  }
  const count = new Map<string, number>();
  for (const r of roots) count.set(label.get(r)!, (count.get(label.get(r)!) ?? 0) + 1);
  console.log(`\nreachable from each field (first reach; per instance): ${[...count].map(([k, v]) => `${v} × ${k}`).join(', ') || 'no instances'}`);
  for (const [k, v] of [...per].sort((a, b) => b[1] - a[1]).slice(0, 40)) {
    const c = count.get(k.slice(0, k.indexOf(k.includes(': (') ? ':' : '.'))) ?? 1;
    if (v > 0) console.log(`  ${k.padEnd(48)}${(v / c).toFixed(0).padStart(9)} B`);
  }
}

const argv = process.argv.slice(2);
// --detail: plain objects grouped by their first property names, closures by name, timers by callback.
const DETAIL = argv.includes('--detail') ? (argv.splice(argv.indexOf('--detail'), 1), true) : false;
// --owners N: a field also charges nodes with up to N strong retainers (default 1: owned only;
// 2 takes in a buffer that a view and its ArrayBuffer both hold).
const MAX_OWNERS = argv.includes('--owners') ? Number(argv.splice(argv.indexOf('--owners'), 2)[1]) : 1;
const opt = (f: string): string | undefined => { const i = argv.indexOf(f); return i >= 0 ? argv.splice(i, 2)[1] : undefined; };
const beforeFile = opt('--before');
const classes = (opt('--class') ?? 'IkeSa').split(',');
const top = Number(opt('--top') ?? 30);
const afterFile = argv[0];
if (!afterFile) throw new Error('usage: heap-summary.ts [--before a.heapsnapshot] b.heapsnapshot [--class IkeSa] [--top 30]');
const after = load(afterFile);
const ga = groups(after);
const gb = beforeFile ? groups(load(beforeFile)) : new Map<string, { count: number; bytes: number }>();
const diff = [...ga].map(([k, v]) => ({ k, count: v.count - (gb.get(k)?.count ?? 0), bytes: v.bytes - (gb.get(k)?.bytes ?? 0) })).sort((a, b) => b.bytes - a.bytes);
const total = diff.reduce((s, d) => s + d.bytes, 0);
console.log(`${beforeFile ? 'growth' : 'size'} by node type and name: ${(total / 1048576).toFixed(1)} MiB`);
for (const d of diff.slice(0, top)) console.log(`  ${d.k.padEnd(70)}${String(d.count).padStart(9)}${(d.bytes / 1024).toFixed(0).padStart(10)} KiB`);
fields(after, classes);
