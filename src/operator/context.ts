// What every controller gets: caches, the API client, clock, logger, metrics, events, the CA.
import type { Clock } from '../common/time.js';
import type { OperatorKube } from './fence.js';
import type { Condition } from '../api/conditions.js';
import type { IPsecMesh, IPsecMeshStatus, IPsecNode, IPsecTunnel } from '../api/types.js';
import type { CaStore } from './ca-store.js';
import type { EventRecorder } from './events.js';
import type { IdentityIndex } from './identity-index.js';
import type { Informer } from '../api/kube/informer.js';
import { nodeLeaseName, nodeOfLease, type NodeLease } from '../api/node-lease.js';
import type { CertificateRequest, ConfigMap, Csr, KNode, Secret } from './kinds.js';
import type { Logger } from './logger.js';
import type { PairMemory } from './mesh-pair-memory.js';
import type { OperatorMetrics } from './metrics.js';

export interface Caches {
  readonly nodes: Informer<KNode>;
  readonly csrs: Informer<Csr>;
  readonly ipsecNodes: Informer<IPsecNode>;
  readonly meshes: Informer<IPsecMesh>;
  readonly tunnels: Informer<IPsecTunnel>;
  readonly caSecret: Informer<Secret>;
  readonly bundle: Informer<ConfigMap>;
  readonly certificateRequests: Informer<CertificateRequest> | undefined;
  /** The nodes' heartbeat Leases in our namespace (label kipsec.io/node-lease; api/node-lease.ts). */
  readonly nodeLeases: Informer<NodeLease>;
}

/** What the mesh controller remembers of one IPsecMesh while leading (cleared when it starts leading). */
export interface MeshMemory {
  readonly pairs: PairMemory;
  /** Our last status write, and the mesh's resourceVersion it was based on: while the cache still
   * shows that version it lags behind our write, and this is the status to compare with. */
  readonly written?: { readonly basedOn: string | undefined; readonly status: IPsecMeshStatus; readonly resourceVersion?: string };
  readonly lastWriteMs?: number;
  /** CPU time of the last reconcile (real ms, not the injected clock): node changes wait ten times
   * that before the next one, so the O(n²) pair work never takes more than a tenth of the process. */
  readonly costMs?: number;
}

export interface Ctx {
  /** Writes are fenced by the leader lease (fence.ts). */
  readonly kube: OperatorKube;
  readonly namespace: string;
  readonly clock: Clock;
  readonly log: Logger;
  readonly metrics: OperatorMetrics;
  readonly events: EventRecorder;
  readonly ca: CaStore;
  readonly caches: Caches;
  readonly identities: IdentityIndex;
  readonly agentUsername: string;
  readonly defaultCertLifetimeMs: number;
  readonly meshName?: string;
  readonly meshMemory: Map<string, MeshMemory>;
  /** uids of CSRs this process wrote a certificate to that the CSR cache does not show yet. */
  readonly csrsIssued: Set<string>;
  /** Our last IdentityVerified write per IPsecNode and the resourceVersion it was based on: while
   * the cache still shows that version, it lags behind the write, and this is what the node has. */
  readonly identityWritten: Map<string, { readonly basedOn: string; readonly condition: Condition }>;
}

/** The mesh that configures identity: the one named explicitly, else "default", else the oldest. */
export function activeMesh(c: Caches, name?: string): IPsecMesh | undefined {
  const all = c.meshes.list();
  if (name !== undefined) return all.find((m) => m.metadata.name === name);
  return all.find((m) => m.metadata.name === 'default') ?? all.sort((a, b) => (a.metadata.creationTimestamp ?? '').localeCompare(b.metadata.creationTimestamp ?? ''))[0];
}

/** A node's heartbeat Lease from the cache: only the one named after it and held by it. */
export function nodeLeaseOf(c: Caches, namespace: string): (node: string) => NodeLease | undefined {
  return (node) => {
    const l = c.nodeLeases.get(`${namespace}/${nodeLeaseName(node)}`);
    return l && nodeOfLease(l) === node ? l : undefined;
  };
}
