// API group, kinds, labels, finalizers and well-known names shared by operator, agent and tests.

export const GROUP = 'kipsec.io';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;
export const CATEGORY = 'kipsec';

export const KINDS = {
  IPsecMesh: { kind: 'IPsecMesh', plural: 'ipsecmeshes', singular: 'ipsecmesh', shortNames: ['ipm'] },
  IPsecTunnel: { kind: 'IPsecTunnel', plural: 'ipsectunnels', singular: 'ipsectunnel', shortNames: ['ipt'] },
  IPsecNode: { kind: 'IPsecNode', plural: 'ipsecnodes', singular: 'ipsecnode', shortNames: ['ipn'] },
} as const;
export type KindName = keyof typeof KINDS;

/** Field manager for every write the operator makes (server-side apply and patches). */
export const OPERATOR_FIELD_MANAGER = 'kipsec-operator';
export const AGENT_FIELD_MANAGER = 'kipsec-agent';

export const LABELS = {
  gateway: 'kipsec.io/gateway',            // Nodes that may carry site-to-site tunnels
  node: 'kipsec.io/node',                  // on CSRs / CertificateRequests: the node they are for
  managedBy: 'app.kubernetes.io/managed-by',
  component: 'app.kubernetes.io/component',
} as const;

export const ANNOTATIONS = {
  caRotateRequested: 'kipsec.io/rotate-ca',   // set on the CA Secret to start a rotation
  caRotationStarted: 'kipsec.io/ca-rotation-started', // on the CA Secret while a rotation runs
  signingCa: 'kipsec.io/signing-ca',          // on the trust bundle ConfigMap: SHA-256 of the CA that signs now
  caRotationPhase: 'kipsec.io/ca-rotation',   // on the trust bundle ConfigMap: Trusting | Reissuing (absent: none)
} as const;

export const FINALIZERS = {
  tunnel: 'kipsec.io/tunnel-teardown',        // held until gateways report their SAs torn down
} as const;

/** CertificateSigningRequest signer the operator implements (DESIGN.md §4). */
export const SIGNER_NAME = 'kipsec.io/node-identity';
export const AGENT_SERVICE_ACCOUNT = 'kipsec-agent';
export const OPERATOR_SERVICE_ACCOUNT = 'kipsec-operator';
export const DEFAULT_NAMESPACE = 'kipsec-system';

export const CA_SECRET = 'kipsec-ca';
export const TRUST_BUNDLE_CONFIGMAP = 'kipsec-trust-bundle';
export const TRUST_BUNDLE_KEY = 'ca.crt';
export const LEADER_LEASE = 'kipsec-operator';

export function agentUsername(namespace: string): string { return `system:serviceaccount:${namespace}:${AGENT_SERVICE_ACCOUNT}`; }
