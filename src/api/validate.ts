// The TypeScript side of the CRD schema: checks a plain value (parsed YAML) against a schema Node
// the way the apiserver would — types, enums, patterns, bounds, required and unknown fields, then
// the CEL rules' TypeScript twins — and reports one Problem per fault with the field path
// (`spec.ike.proposals[0]: unknown transform "aes257"`). Rules of an object run only when the
// object's own subtree is otherwise well-formed, as the apiserver skips CEL on malformed values.
import type { Mode, Node, Problem } from './schema.js';

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function validateNode(node: Node<unknown>, value: unknown, path: string, mode: Mode, out: Problem[]): void {
  const before = out.length;
  const s = node.openapi;
  const t = typeOf(value);
  const want = s.type;
  if (want && !(t === want || (want === 'object' && t === 'object'))) {
    out.push({ path, message: `must be ${want === 'integer' ? 'an integer' : `a${want === 'object' || want === 'array' ? 'n' : ''} ${want}`}, got ${t}` });
    return;
  }
  if (typeof value === 'string') {
    if (s.enum && !s.enum.includes(value)) out.push({ path, message: `unsupported value "${value}": supported values: ${s.enum.map((e) => `"${e}"`).join(', ')}` });
    if (s.maxLength !== undefined && value.length > s.maxLength) out.push({ path, message: `may not be longer than ${s.maxLength}` });
    if (s.minLength !== undefined && value.length < s.minLength) out.push({ path, message: `should be at least ${s.minLength} chars long` });
    if (s.pattern !== undefined && !new RegExp(s.pattern).test(value)) out.push({ path, message: `invalid value "${value}": should match '${s.pattern}'` });
  }
  if (typeof value === 'number') {
    if (s.minimum !== undefined && value < s.minimum) out.push({ path, message: `should be greater than or equal to ${s.minimum}` });
    if (s.maximum !== undefined && value > s.maximum) out.push({ path, message: `should be less than or equal to ${s.maximum}` });
  }
  if (Array.isArray(value)) {
    if (s.maxItems !== undefined && value.length > s.maxItems) out.push({ path, message: `must have at most ${s.maxItems} items` });
    if (s.minItems !== undefined && value.length < s.minItems) out.push({ path, message: `should have at least ${s.minItems} items` });
    if (s['x-kubernetes-list-type'] === 'set') {
      const seen = new Set<string>();
      value.forEach((v, i) => { const k = JSON.stringify(v); if (seen.has(k)) out.push({ path: `${path}[${i}]`, message: `duplicate value ${k}` }); seen.add(k); });
    }
    if (node.item) value.forEach((v, i) => validateNode(node.item!, v, `${path}[${i}]`, mode, out));
  }
  if (isRecord(value)) {
    if (node.props) {
      for (const [k, p] of Object.entries(node.props)) {
        if (value[k] === undefined) {
          if (p.required || (mode === 'standalone' && node.standaloneRequired.includes(k))) out.push({ path: `${path}.${k}`, message: 'Required value' });
          continue;
        }
        if (mode === 'standalone' && node.clusterOnly.includes(k)) { out.push({ path: `${path}.${k}`, message: 'only valid in a cluster object, not in a standalone config' }); continue; }
        validateNode(p.node, value[k], `${path}.${k}`, mode, out);
      }
      for (const k of Object.keys(value)) if (!(k in node.props)) out.push({ path: `${path}.${k}`, message: 'unknown field' });
    } else if (node.value) {
      if (s.maxProperties !== undefined && Object.keys(value).length > s.maxProperties) out.push({ path, message: `must have at most ${s.maxProperties} properties` });
      for (const [k, v] of Object.entries(value)) validateNode(node.value, v, `${path}[${k}]`, mode, out);
    }
  }
  if (out.length !== before) return;
  for (const r of node.rules) {
    const msg = r.check(value, mode);
    if (msg !== undefined) out.push({ path: r.cel.fieldPath ? `${path}${r.cel.fieldPath}` : path, message: msg });
  }
}

/** Fill in schema defaults (as the apiserver does on write), returning a new value. */
export function applyDefaults(node: Node<unknown>, value: unknown): unknown {
  if (Array.isArray(value) && node.item) return value.map((v) => applyDefaults(node.item!, v));
  if (!isRecord(value)) return value;
  const out: Record<string, unknown> = { ...value };
  if (node.props) {
    for (const [k, p] of Object.entries(node.props)) {
      if (out[k] === undefined && p.node.openapi.default !== undefined) out[k] = structuredClone(p.node.openapi.default);
      if (out[k] !== undefined) out[k] = applyDefaults(p.node, out[k]);
    }
  } else if (node.value) {
    for (const [k, v] of Object.entries(out)) out[k] = applyDefaults(node.value, v);
  }
  return out;
}
