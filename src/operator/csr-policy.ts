// Which CertificateSigningRequests for signer kipsec.io/node-identity to approve (DESIGN.md §4).
// A pure function of the request, the parsed CSR and what the cluster knows, so every rule has a
// unit test. Approve only when all hold:
//  - the requester is the agent's service account (spec.username, set by the apiserver);
//  - if the token was bound to a pod, its node (extra authentication.kubernetes.io/node-name) is
//    the node the CSR names — an agent cannot ask for another node's identity;
//  - the CSR names exactly one node as CN and its only DNS SAN, and that Node exists;
//  - IP SANs, if any, are addresses of that Node;
//  - usages are within digital signature / server auth / client auth;
//  - the node has no other live identity: no unexpired certificate for a different public key
//    (a renewal with the same key is fine). Reimaged nodes wait for the old cert to expire, or an
//    admin deletes the old CSR.
import type { ParsedCsr } from '../pki/index.js';
import type { Csr } from './kinds.js';

export const CSR_REASONS = {
  approved: 'KipsecNodeIdentity',
  unauthorized: 'UnauthorizedRequester',
  invalid: 'InvalidRequest',
  nodeMissing: 'NodeNotFound',
  nodeMismatch: 'NodeMismatch',
  ipNotOfNode: 'IPNotOfNode',
  badUsages: 'UnsupportedUsages',
  identityInUse: 'IdentityInUse',
} as const;

export const ALLOWED_USAGES: readonly string[] = ['digital signature', 'server auth', 'client auth', 'key encipherment'];
export const POD_NODE_NAME_EXTRA = 'authentication.kubernetes.io/node-name';

export interface LiveIdentity { readonly publicKeyFingerprint: string; readonly notAfterMs: number; readonly source: string }

export interface PolicyContext {
  readonly agentUsername: string;
  readonly nowMs: number;
  nodeAddresses(name: string): readonly string[] | undefined; // undefined: no such Node
  liveIdentities(node: string): readonly LiveIdentity[];
}

export type CsrDecision =
  | { readonly verdict: 'approve'; readonly node: string; readonly ips: readonly string[]; readonly reason: string; readonly message: string }
  | { readonly verdict: 'deny'; readonly reason: string; readonly message: string };

export function isDecided(c: Csr): boolean {
  return (c.status?.conditions ?? []).some((x) => (x.type === 'Approved' || x.type === 'Denied') && x.status === 'True');
}
export function isApproved(c: Csr): boolean { return (c.status?.conditions ?? []).some((x) => x.type === 'Approved' && x.status === 'True'); }
export function isFailed(c: Csr): boolean { return (c.status?.conditions ?? []).some((x) => x.type === 'Failed' && x.status === 'True'); }

const deny = (reason: string, message: string): CsrDecision => ({ verdict: 'deny', reason, message });

export function decideCsr(c: Csr, parsed: ParsedCsr | Error, ctx: PolicyContext): CsrDecision {
  if (c.spec.username !== ctx.agentUsername) return deny(CSR_REASONS.unauthorized, `requested by ${c.spec.username ?? '(unknown)'}, only ${ctx.agentUsername} may request node identities`);
  if (parsed instanceof Error) return deny(CSR_REASONS.invalid, parsed.message);
  const bad = (c.spec.usages ?? []).filter((u) => !ALLOWED_USAGES.includes(u));
  if (bad.length > 0) return deny(CSR_REASONS.badUsages, `usages ${bad.join(', ')} are not allowed (allowed: ${ALLOWED_USAGES.join(', ')})`);
  if (parsed.dnsNames.length !== 1 || parsed.otherSans > 0) return deny(CSR_REASONS.invalid, `the CSR must name exactly one node as its DNS SAN, got DNS [${parsed.dnsNames.join(', ')}]${parsed.otherSans ? ` and ${parsed.otherSans} other SANs` : ''}`);
  const node = parsed.dnsNames[0]!;
  if (parsed.commonName !== undefined && parsed.commonName !== node) return deny(CSR_REASONS.invalid, `CN ${parsed.commonName} differs from the SAN ${node}`);
  const boundNode = c.spec.extra?.[POD_NODE_NAME_EXTRA]?.[0];
  if (boundNode !== undefined && boundNode !== node) return deny(CSR_REASONS.nodeMismatch, `the requesting pod runs on node ${boundNode} but asks for ${node}`);
  const addrs = ctx.nodeAddresses(node);
  if (addrs === undefined) return deny(CSR_REASONS.nodeMissing, `node ${node} does not exist`);
  const foreign = parsed.ipAddresses.filter((ip) => !addrs.includes(ip));
  if (foreign.length > 0) return deny(CSR_REASONS.ipNotOfNode, `IP SANs ${foreign.join(', ')} are not addresses of node ${node} (${addrs.join(', ') || 'none'})`);
  const other = ctx.liveIdentities(node).find((l) => l.notAfterMs > ctx.nowMs && l.publicKeyFingerprint !== parsed.publicKeyFingerprint);
  if (other) return deny(CSR_REASONS.identityInUse, `node ${node} already has a live identity with another key (${other.source}, valid until ${new Date(other.notAfterMs).toISOString()})`);
  return { verdict: 'approve', node, ips: parsed.ipAddresses, reason: CSR_REASONS.approved, message: `node ${node} exists and the request comes from ${ctx.agentUsername}` };
}
