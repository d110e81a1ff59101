// Condition types and reasons (metav1.Condition), and the pure helpers that keep
// lastTransitionTime stable: it moves only when status flips, so writes happen only on change.

export const CONDITION_TYPES = {
  Ready: 'Ready',
  Degraded: 'Degraded',
  Established: 'Established',
  IdentityVerified: 'IdentityVerified',
} as const;
export type ConditionType = (typeof CONDITION_TYPES)[keyof typeof CONDITION_TYPES];

export const REASONS = {
  AllNodesReady: 'AllNodesReady',
  NodesNotReady: 'NodesNotReady',
  NoNodes: 'NoNodes',
  CARotating: 'CARotating',
  AsExpected: 'AsExpected',
  Established: 'Established',
  PartiallyEstablished: 'PartiallyEstablished',
  NotEstablished: 'NotEstablished',
  NoGatewayReports: 'NoGatewayReports',
  GatewayError: 'GatewayError',
  CertificateMatches: 'CertificateMatches',
  NoCertificate: 'NoCertificate',
  UnknownCertificate: 'UnknownCertificate',
  NodeMissing: 'NodeMissing',
  Deleting: 'Deleting',
  // IPsecNode Ready, written by the node's agent
  PeersEstablished: 'PeersEstablished',
  PeersNotEstablished: 'PeersNotEstablished',
  NoPeers: 'NoPeers',
  NotInMesh: 'NotInMesh',
  NoMesh: 'NoMesh',
  // IPsecMesh pairs
  AllPairsEstablished: 'AllPairsEstablished',
  PairsNotEstablished: 'PairsNotEstablished',
  PairDown: 'PairDown',
  PairUp: 'PairUp',
} as const;

export type ConditionStatus = 'True' | 'False' | 'Unknown';

export interface Condition {
  type: string;
  status: ConditionStatus;
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number;
}

/** What a controller wants a condition to be; the time is filled in by setCondition. */
export interface DesiredCondition { type: string; status: ConditionStatus; reason: string; message: string; observedGeneration?: number }

/** Merge desired into existing, keeping lastTransitionTime unless status changed. Pure. */
export function setCondition(existing: readonly Condition[], want: DesiredCondition, nowIso: string): Condition[] {
  const prev = existing.find((c) => c.type === want.type);
  const next: Condition = { ...want, lastTransitionTime: prev && prev.status === want.status ? prev.lastTransitionTime : nowIso };
  return [...existing.filter((c) => c.type !== want.type), next].sort((a, b) => a.type.localeCompare(b.type));
}

export function findCondition(cs: readonly Condition[] | undefined, type: string): Condition | undefined {
  return cs?.find((c) => c.type === type);
}

export function isTrue(cs: readonly Condition[] | undefined, type: string): boolean {
  return findCondition(cs, type)?.status === 'True';
}

/** Equal ignoring order (what matters for "write only on change"). */
export function sameConditions(a: readonly Condition[] | undefined, b: readonly Condition[] | undefined): boolean {
  const norm = (xs: readonly Condition[] | undefined): string => JSON.stringify([...(xs ?? [])].sort((x, y) => x.type.localeCompare(y.type)).map((c) => [c.type, c.status, c.reason, c.message, c.lastTransitionTime, c.observedGeneration ?? null]));
  return norm(a) === norm(b);
}
