// Shapes of the built-in objects the operator reads and writes (only the fields it uses).
export interface Meta {
  name: string; namespace?: string; uid?: string; resourceVersion?: string; generation?: number;
  creationTimestamp?: string; deletionTimestamp?: string; labels?: Record<string, string>; annotations?: Record<string, string>;
  finalizers?: string[]; generateName?: string;
}

export interface Secret { apiVersion?: 'v1'; kind?: 'Secret'; metadata: Meta; type?: string; data?: Record<string, string> }
export interface ConfigMap { apiVersion?: 'v1'; kind?: 'ConfigMap'; metadata: Meta; data?: Record<string, string> }
export interface KNode { metadata: Meta; status?: { addresses?: { type: string; address: string }[] }; spec?: { podCIDRs?: string[] } }

export interface CsrCondition { type: 'Approved' | 'Denied' | 'Failed'; status: 'True' | 'False'; reason?: string; message?: string; lastUpdateTime?: string; lastTransitionTime?: string }
export interface Csr {
  apiVersion?: 'certificates.k8s.io/v1'; kind?: 'CertificateSigningRequest';
  metadata: Meta;
  spec: { request: string; signerName: string; username?: string; groups?: string[]; uid?: string; extra?: Record<string, string[]>; usages?: string[]; expirationSeconds?: number };
  status?: { conditions?: CsrCondition[]; certificate?: string };
}

export interface CertificateRequest {
  apiVersion?: 'cert-manager.io/v1'; kind?: 'CertificateRequest';
  metadata: Meta;
  spec: { request: string; issuerRef: { name: string; kind?: string; group?: string }; usages?: string[]; duration?: string; isCA?: boolean; username?: string };
  status?: { conditions?: { type: string; status: string; reason?: string; message?: string }[]; certificate?: string; ca?: string; failureTime?: string };
}
