// Which CertificateSigningRequests for signer kipsec.io/node-identity to approve (DESIGN.md §4).
// A pure function of the request, the parsed CSR and what the cluster knows, so every rule has a
// unit test. Approve only when all hold:
//  - the requester is the agent's service account (spec.username, set by the apiserver);
//  - if the token was bound to a pod, its node (extra authentication.kubernetes.io/node-name) is
//    the node the CSR names — an agent cannot ask for another node's identity;
//  - the CSR names exactly one node as CN and its only DNS SAN, and that Node exists;
//  - IP SANs, if any, are addresses of that Node;
//  - usages are within digital signature / server auth / client auth;
//  - the node has no other live identity (an unexpired certificate, or an approval, for a different
//    public key) — unless the request comes from a pod bound to that very node. A renewal with the
//    same key is always fine.
// Why a pod-bound request may replace a live identity: a node that rebooted with a wiped state
// directory has a new key, and would otherwise be locked out for up to a certificate lifetime. The
// apiserver vouches that the requester runs on the node, which is what the identity asserts; peers
// pin the public key the agent publishes in its IPsecNode, so the old key stops being accepted as
// soon as the node publishes the new fingerprint. A request without a pod-bound node cannot prove
// where it runs and is still denied; the admin then waits for the old certificate to expire or
// deletes the CSR that holds it.
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
  /** Not a CSR condition reason: the Event's, when an approval replaces a live identity. */
  superseded: 'IdentitySuperseded',
} as const;

export const ALLOWED_USAGES: readonly string[] = ['digital signature', 'server auth', 'client auth', 'key encipherment'];
export const POD_NODE_NAME_EXTRA = 'authentication.kubernetes.io/node-name';

/** One identity a node holds: `source` says where it comes from ("CSR x", "approved CSR x"). */
export interface LiveIdentity { readonly publicKeyFingerprint: string; readonly notAfterMs: number; readonly source: string; readonly csrName: string }

export interface PolicyContext {
  readonly agentUsername: string;
  readonly nowMs: number;
  nodeAddresses(name: string): readonly string[] | undefined; // undefined: no such Node
  liveIdentities(node: string): readonly LiveIdentity[];
}

export type CsrDecision =
  | { readonly verdict: 'approve'; readonly node: string; readonly ips: readonly string[]; readonly reason: string; readonly message: string; readonly supersedes: readonly LiveIdentity[] }
  | { readonly verdict: 'deny'; readonly reason: string; readonly message: string };

export function isDecided(c: Csr): boolean {
  return (c.status?.conditions ?? []).some((x) => (x.type === 'Approved' || x.type === 'Denied') && x.status === 'True');
}
export function isApproved(c: Csr): boolean { return (c.status?.conditions ?? []).some((x) => x.type === 'Approved' && x.status === 'True'); }
export function isFailed(c: Csr): boolean { return (c.status?.conditions ?? []).some((x) => x.type === 'Failed' && x.status === 'True'); }

const isoTime = (ms: number): string => new Date(ms).toISOString();
const describe = (ls: readonly LiveIdentity[]): string => ls.map((l) => `${l.source}, valid until ${isoTime(l.notAfterMs)}`).join('; ');
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
  const others = ctx.liveIdentities(node).filter((l) => l.notAfterMs > ctx.nowMs && l.publicKeyFingerprint !== parsed.publicKeyFingerprint);
  if (others.length > 0 && boundNode === undefined) {
    const untilMs = Math.max(...others.map((o) => o.notAfterMs));
    return deny(CSR_REASONS.identityInUse, `node ${node} already has a live identity with another key (${describe(others)}) and this request does not come from a pod bound to node ${node}, so it cannot replace it. `
      + `To get a certificate: request from the agent's pod on ${node} (its projected service-account token names the node), wait until ${isoTime(untilMs)}, or delete the old identity (kubectl delete csr ${others.map((o) => o.csrName).join(' ')}); then request again`);
  }
  const from = boundNode === undefined ? ctx.agentUsername : `${ctx.agentUsername} in a pod on that node`;
  const message = others.length === 0 ? `node ${node} exists and the request comes from ${from}`
    : `node ${node} exists and the request comes from ${from}; its new key supersedes the live identity with another key (${describe(others)})`;
  return { verdict: 'approve', node, ips: parsed.ipAddresses, reason: CSR_REASONS.approved, message, supersedes: others };
}
