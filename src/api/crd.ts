// CustomResourceDefinition objects for the three kinds, built from resources.ts. gen-crds.ts writes
// them to crds/; the operator's tests install them from here so tests and crds/ never differ.
import { CATEGORY, GROUP, KINDS, VERSION, type KindName } from './names.js';
import { meshSpec, meshStatus, nodeSpec, nodeStatus, tunnelSpec, tunnelStatus } from './resources.js';
import { toOpenApi, type Node, type OpenApiSchema } from './schema.js';

interface PrinterColumn { name: string; type: 'string' | 'integer' | 'date' | 'boolean'; jsonPath: string; priority?: number; description?: string }

export interface CrdObject {
  apiVersion: 'apiextensions.k8s.io/v1';
  kind: 'CustomResourceDefinition';
  metadata: { name: string; labels: Record<string, string> };
  spec: {
    group: string;
    scope: 'Cluster';
    names: { kind: string; plural: string; singular: string; shortNames: string[]; categories: string[] };
    versions: {
      name: string; served: true; storage: true;
      schema: { openAPIV3Schema: OpenApiSchema };
      subresources: { status: Record<string, never> };
      additionalPrinterColumns: PrinterColumn[];
    }[];
  };
}

const cond = (type: string): string => `.status.conditions[?(@.type=="${type}")].status`;

const DEFS: Record<KindName, { spec: Node<unknown>; status: Node<unknown>; description: string; columns: PrinterColumn[] }> = {
  IPsecMesh: {
    spec: meshSpec as Node<unknown>, status: meshStatus as Node<unknown>,
    description: 'Node-to-node encryption for the cluster (usually one, named "default").',
    columns: [
      { name: 'Ready', type: 'string', jsonPath: cond('Ready') },
      { name: 'Nodes-Ready', type: 'integer', jsonPath: '.status.nodesReady' },
      { name: 'Nodes', type: 'integer', jsonPath: '.status.nodesTotal' },
      { name: 'Pairs-Up', type: 'integer', jsonPath: '.status.pairsEstablished' },
      { name: 'Pairs', type: 'integer', jsonPath: '.status.pairsExpected' },
      { name: 'Identity', type: 'string', jsonPath: '.spec.identity.source' },
      { name: 'CA', type: 'string', jsonPath: '.status.caFingerprint', priority: 1 },
      { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
    ],
  },
  IPsecTunnel: {
    spec: tunnelSpec as Node<unknown>, status: tunnelStatus as Node<unknown>,
    description: 'A site-to-site IPsec tunnel from gateway nodes to a remote IKEv2 peer.',
    columns: [
      { name: 'Remote', type: 'string', jsonPath: '.spec.remote.address' },
      { name: 'Ready', type: 'string', jsonPath: cond('Ready') },
      { name: 'Established', type: 'string', jsonPath: cond('Established') },
      { name: 'Active', type: 'string', jsonPath: '.status.activeGateway' },
      { name: 'Gateways-Up', type: 'integer', jsonPath: '.status.gatewaysEstablished', priority: 1 },
      { name: 'Gateways', type: 'integer', jsonPath: '.status.gatewaysTotal', priority: 1 },
      { name: 'Suite', type: 'string', jsonPath: '.status.negotiatedSuite' },
      { name: 'Last-Rekey', type: 'date', jsonPath: '.status.lastRekeyTime', priority: 1 },
      { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
    ],
  },
  IPsecNode: {
    spec: nodeSpec as Node<unknown>, status: nodeStatus as Node<unknown>,
    description: 'One node\'s IKE endpoint, identity and SA state, written by that node\'s agent.',
    columns: [
      { name: 'Address', type: 'string', jsonPath: '.spec.endpoint.address' },
      { name: 'Ready', type: 'string', jsonPath: cond('Ready') },
      { name: 'Peers-Up', type: 'integer', jsonPath: '.status.peersUp' },
      { name: 'Peers', type: 'integer', jsonPath: '.status.peersExpected' },
      { name: 'Traffic', type: 'string', jsonPath: '.status.traffic.mode' },
      { name: 'Datapath', type: 'string', jsonPath: '.status.datapath' },
      { name: 'Identity', type: 'string', jsonPath: cond('IdentityVerified') },
      { name: 'Cert-Expires', type: 'string', jsonPath: '.spec.identity.notAfter' },
      { name: 'Max-Inner', type: 'integer', jsonPath: '.status.maxInnerPacketBytes', priority: 1 },
      { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
    ],
  },
};

export function buildCrd(kind: KindName): CrdObject {
  const names = KINDS[kind];
  const d = DEFS[kind];
  const root: OpenApiSchema = {
    type: 'object',
    description: d.description,
    required: ['spec'],
    properties: {
      apiVersion: { type: 'string' },
      kind: { type: 'string' },
      metadata: { type: 'object' },
      spec: toOpenApi(d.spec),
      status: toOpenApi(d.status),
    },
  };
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${names.plural}.${GROUP}`, labels: { 'app.kubernetes.io/part-of': 'kipsec' } },
    spec: {
      group: GROUP,
      scope: 'Cluster',
      names: { kind: names.kind, plural: names.plural, singular: names.singular, shortNames: [...names.shortNames], categories: [CATEGORY] },
      versions: [{ name: VERSION, served: true, storage: true, schema: { openAPIV3Schema: root }, subresources: { status: {} }, additionalPrinterColumns: d.columns }],
    },
  };
}

export const ALL_KINDS: readonly KindName[] = ['IPsecMesh', 'IPsecTunnel', 'IPsecNode'];

/** File name in crds/ (kubebuilder style). */
export function crdFileName(kind: KindName): string { return `${GROUP}_${KINDS[kind].plural}.yaml`; }
