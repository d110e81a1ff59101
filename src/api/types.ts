// TypeScript types of the resources, inferred from the schema Nodes (resources.ts) so they cannot
// drift from the CRDs. Spec types describe what a user may write (defaulted fields optional).
import type { Condition } from './conditions.js';
import type { Infer } from './schema.js';
import type { meshPairStatus, caRotationStatus, meshSpec, meshStatus, nodePeerStatus, nodeSpec, nodeStatus, tunnelGatewayStatus, tunnelSpec, tunnelStatus } from './resources.js';

export type IPsecTunnelSpec = Infer<typeof tunnelSpec>;
export type IPsecTunnelStatus = Omit<Infer<typeof tunnelStatus>, 'conditions'> & { conditions?: Condition[] };
export type TunnelGatewayStatus = Infer<typeof tunnelGatewayStatus>;
export type IPsecMeshSpec = Infer<typeof meshSpec>;
export type IPsecMeshStatus = Omit<Infer<typeof meshStatus>, 'conditions'> & { conditions?: Condition[] };
export type IPsecNodeSpec = Infer<typeof nodeSpec>;
export type IPsecNodeStatus = Omit<Infer<typeof nodeStatus>, 'conditions'> & { conditions?: Condition[] };
export type NodePeerStatus = Infer<typeof nodePeerStatus>;
export type MeshPairStatus = Infer<typeof meshPairStatus>;
export type CaRotationStatus = Infer<typeof caRotationStatus>;

export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
}

export interface Resource<K extends string, S, St> {
  apiVersion: 'kipsec.io/v1alpha1';
  kind: K;
  metadata: ObjectMeta;
  spec: S;
  status?: St;
}

export type IPsecTunnel = Resource<'IPsecTunnel', IPsecTunnelSpec, IPsecTunnelStatus>;
export type IPsecMesh = Resource<'IPsecMesh', IPsecMeshSpec, IPsecMeshStatus>;
export type IPsecNode = Resource<'IPsecNode', IPsecNodeSpec, IPsecNodeStatus>;
