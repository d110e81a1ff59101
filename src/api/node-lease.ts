// A node's liveness: a coordination.k8s.io/v1 Lease per node, renewed by its agent, as the kubelet
// does in kube-node-lease. The IPsecNode status is written only when it changes; a heartbeat there
// would be one write of the whole status per node and minute, sent to every agent watching
// IPsecNodes (5,000 nodes: ~83 writes/s, ~416k watch events/s). A Lease renewal is ~300 bytes,
// watched by the operator alone (agents exclude these Leases by label).
//
// One rule for the operator's staleness and the agent's reconnect check (lastHeard):
//   - the Lease decides when there is one whose renewTime is not older than the status's
//     lastUpdateTime by more than its leaseDuration: stale when renewTime + leaseDuration < now;
//   - otherwise lastUpdateTime decides, stale after STATUS_STALE_AFTER_MS: an agent that predates the
//     Lease (an upgrade in progress) writes lastUpdateTime every minute and no Lease, and one rolled
//     back leaves a Lease behind that stops moving while its status keeps being written;
//   - neither: never stale (nothing was promised).
// Both times come from the agent's clock, so comparing them is skew-free; comparing them with the
// reader's clock is not, and the bounds (minutes by default) absorb ordinary skew.
import type { IPsecNodeStatus } from './types.js';

/** The status-based rule's bound, and the most a Lease's leaseDurationSeconds may stretch it to. */
export const STATUS_STALE_AFTER_MS = 3 * 60_000;
/** The agent's default: renewed every third of it, so three missed renewals make it stale. */
export const NODE_LEASE_DURATION_MS = 3 * 60_000;
/** A Lease's duration below this is read as this (a node cannot make itself flap faster). */
export const NODE_LEASE_MIN_MS = 1_000;

/** On every node Lease; the operator selects by it, the agents' tunnel-Lease watch excludes it. */
export const NODE_LEASE_LABEL = 'kipsec.io/node-lease';
export const NODE_LEASE_PREFIX = 'kipsec-node-';

/** The Lease of a node, in the kipsec namespace (holderIdentity is the node name). */
export function nodeLeaseName(node: string): string { return `${NODE_LEASE_PREFIX}${node}`; }

export interface NodeLeaseSpec { holderIdentity?: string; leaseDurationSeconds?: number; acquireTime?: string; renewTime?: string; leaseTransitions?: number }
export interface NodeLease {
  apiVersion?: string; kind?: string;
  metadata: { name: string; namespace?: string; resourceVersion?: string; labels?: Record<string, string>; ownerReferences?: unknown[] };
  spec?: NodeLeaseSpec;
}

/** The node a Lease is the heartbeat of: its holder, when the name matches it; else none. */
export function nodeOfLease(l: NodeLease): string | undefined {
  const holder = l.spec?.holderIdentity;
  return holder && l.metadata.name === nodeLeaseName(holder) ? holder : undefined;
}

/** Kubernetes MicroTime: RFC 3339 with six fractional digits. */
export function microTime(ms: number): string { return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z'); }

export function leaseDurationMs(l: NodeLease): number {
  const s = l.spec?.leaseDurationSeconds;
  const ms = typeof s === 'number' && Number.isFinite(s) ? s * 1000 : NODE_LEASE_DURATION_MS;
  return Math.min(STATUS_STALE_AFTER_MS, Math.max(NODE_LEASE_MIN_MS, ms));
}

export interface Heard {
  /** When the node was last heard from, by its agent's clock. */
  readonly atMs: number;
  /** Stale once the reader's clock is past atMs + boundMs. */
  readonly boundMs: number;
  readonly source: 'lease' | 'status';
}

/** The rule above (pure). */
export function lastHeard(status: Pick<IPsecNodeStatus, 'lastUpdateTime'> | undefined, lease: NodeLease | undefined): Heard | undefined {
  const updated = Date.parse(status?.lastUpdateTime ?? '');
  const renewed = Date.parse(lease?.spec?.renewTime ?? '');
  if (lease && Number.isFinite(renewed)) {
    const boundMs = leaseDurationMs(lease);
    if (!Number.isFinite(updated) || updated - renewed <= boundMs) return { atMs: renewed, boundMs, source: 'lease' };
  }
  return Number.isFinite(updated) ? { atMs: updated, boundMs: STATUS_STALE_AFTER_MS, source: 'status' } : undefined;
}

export function isHeardStale(h: Heard | undefined, nowMs: number): boolean { return h !== undefined && nowMs - h.atMs > h.boundMs; }

/** When `h` goes stale (ms since the epoch), or Infinity. */
export function staleAtMs(h: Heard | undefined): number { return h === undefined ? Infinity : h.atMs + h.boundMs; }
