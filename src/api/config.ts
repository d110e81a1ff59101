// The standalone agent's config: a YAML stream of IPsecTunnel objects (DESIGN.md §3), checked with
// the same schema as the CRD. validateTunnelConfig returns one Problem per fault, each naming the
// field (`tunnels.yaml#2 spec.ike.proposals[0]: unknown transform "aes257"` once prefixed).
import { parseAllDocuments } from 'yaml';
import { API_VERSION, KINDS } from './names.js';
import { tunnelSpec } from './resources.js';
import type { Mode, Node, Problem } from './schema.js';
import type { IPsecTunnel } from './types.js';
import { applyDefaults, validateNode } from './validate.js';

export type { Problem } from './schema.js';

/** Validate one IPsecTunnel object (already parsed). Mode 'standalone' demands files, refuses Secret refs. */
export function validateTunnel(doc: unknown, mode: Mode = 'standalone'): Problem[] {
  const out: Problem[] = [];
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return [{ path: '', message: 'must be an IPsecTunnel object' }];
  const o = doc as Record<string, unknown>;
  if (o['apiVersion'] !== API_VERSION) out.push({ path: 'apiVersion', message: `must be "${API_VERSION}"` });
  if (o['kind'] !== KINDS.IPsecTunnel.kind) out.push({ path: 'kind', message: `must be "${KINDS.IPsecTunnel.kind}"` });
  const md = o['metadata'];
  const name = typeof md === 'object' && md !== null ? (md as Record<string, unknown>)['name'] : undefined;
  if (typeof name !== 'string' || !/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/.test(name)) out.push({ path: 'metadata.name', message: 'must be a DNS subdomain name' });
  if (o['spec'] === undefined) out.push({ path: 'spec', message: 'Required value' });
  else validateNode(tunnelSpec as Node<unknown>, applyDefaults(tunnelSpec as Node<unknown>, o['spec']), 'spec', mode, out);
  return out;
}

/** The tunnel with schema defaults filled in (call after validateTunnel returned no problems). */
export function withDefaults(t: IPsecTunnel): IPsecTunnel {
  return { ...t, spec: applyDefaults(tunnelSpec as Node<unknown>, t.spec) as IPsecTunnel['spec'] };
}

export interface ParsedConfig { readonly tunnels: IPsecTunnel[]; readonly problems: Problem[] }

/** Parse a YAML stream; problems are prefixed with the document's name or index. */
export function parseTunnelConfig(text: string, mode: Mode = 'standalone'): ParsedConfig {
  const tunnels: IPsecTunnel[] = [];
  const problems: Problem[] = [];
  const names = new Set<string>();
  parseAllDocuments(text).forEach((d, i) => {
    if (d.errors.length > 0) { for (const e of d.errors) problems.push({ path: `#${i}`, message: `YAML: ${e.message}` }); return; }
    const v: unknown = d.toJS();
    if (v === null || v === undefined) return;
    const name = typeof v === 'object' && !Array.isArray(v) ? ((v as { metadata?: { name?: unknown } }).metadata?.name) : undefined;
    const label = typeof name === 'string' ? name : `#${i}`;
    const ps = validateTunnel(v, mode);
    for (const p of ps) problems.push({ path: `${label} ${p.path}`, message: p.message });
    if (typeof name === 'string') { if (names.has(name)) problems.push({ path: `${label} metadata.name`, message: 'duplicate tunnel name' }); names.add(name); }
    if (ps.length === 0) tunnels.push(withDefaults(v as IPsecTunnel));
  });
  return { tunnels, problems };
}

export function formatProblem(p: Problem): string { return `${p.path}: ${p.message}`; }
