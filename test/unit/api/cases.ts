// Bad IPsecTunnel/IPsecMesh specs, each with the field the refusal must name. Shared by the unit
// test of the TypeScript validator and e2e/apiserver/crd-validation.test.ts, which sends every one
// to the real apiserver: both must refuse it naming the same field.
import type { IPsecMeshSpec, IPsecTunnelSpec } from '../../../src/api/types.js';

export type Mutable = Record<string, unknown>;

export function goodTunnelSpec(): IPsecTunnelSpec {
  return {
    local: { subnets: ['10.1.0.0/16'] },
    remote: { address: '203.0.113.10', subnets: ['172.31.0.0/16'] },
    auth: { psk: { secretRef: { name: 'psk', namespace: 'kipsec-system' } } },
  };
}

export interface BadCase<S> { readonly name: string; readonly mutate: (s: S) => void; readonly path: string; readonly message: RegExp }

export const BAD_TUNNELS: readonly BadCase<IPsecTunnelSpec>[] = [
  { name: 'unknown transform in an IKE proposal', mutate: (s) => { s.ike = { proposals: ['aes257gcm16-prfsha384-x25519'] }; }, path: 'spec.ike.proposals[0]', message: /unknown transform "aes257gcm16"/ },
  { name: 'IKE proposal without a DH group', mutate: (s) => { s.ike = { proposals: ['aes256gcm16-prfsha384'] }; }, path: 'spec.ike.proposals[0]', message: /key exchange group/ },
  { name: 'AEAD IKE proposal without a PRF', mutate: (s) => { s.ike = { proposals: ['aes256gcm16-x25519'] }; }, path: 'spec.ike.proposals[0]', message: /needs a PRF/ },
  { name: 'CBC ESP proposal without integrity', mutate: (s) => { s.esp = { proposals: ['aes256-x25519'] }; }, path: 'spec.esp.proposals[0]', message: /integrity/ },
  { name: 'PRF inside an ESP proposal', mutate: (s) => { s.esp = { proposals: ['aes256gcm16-prfsha256'] }; }, path: 'spec.esp.proposals[0]', message: /PRF belongs in IKE/ },
  { name: 'weak DH group without a profile', mutate: (s) => { s.ike = { proposals: ['aes256-sha256-modp1024'] }; }, path: 'spec.ike.proposals', message: /weak transform refused/ },
  { name: 'weak DH group the profile does not allow', mutate: (s) => { s.profile = 'gcp'; s.esp = { proposals: ['aes256gcm16-modp1536'] }; }, path: 'spec.esp.proposals', message: /weak transform refused/ },
  { name: '3DES under the aws profile', mutate: (s) => { s.profile = 'aws'; s.ike = { proposals: ['3des-sha256-modp2048'] }; }, path: 'spec.ike.proposals', message: /weak transform refused/ },
  { name: 'two auth methods', mutate: (s) => { s.auth = { psk: { secretRef: { name: 'p', namespace: 'n' } }, certificate: { caSecretRef: { name: 'c', namespace: 'n' } } }; }, path: 'spec.auth', message: /exactly one auth method/ },
  { name: 'no auth method', mutate: (s) => { s.auth = {}; }, path: 'spec.auth', message: /exactly one auth method/ },
  { name: 'PSK file in a cluster object', mutate: (s) => { s.auth = { psk: { file: '/etc/kipsec/psk' } }; }, path: 'spec.auth.psk.file', message: /standalone/ },
  { name: 'not a CIDR', mutate: (s) => { s.remote.subnets = ['172.31.0.0/33']; }, path: 'spec.remote.subnets[0]', message: /must be a CIDR/ },
  { name: 'CIDR with host bits', mutate: (s) => { s.local.subnets = ['10.1.0.1/16']; }, path: 'spec.local.subnets[0]', message: /host bits zero/ },
  { name: 'local address not an IP', mutate: (s) => { s.local.address = '192.0.2.300'; }, path: 'spec.local.address', message: /must be an IP address/ },
  { name: 'remote address neither IP nor DNS name', mutate: (s) => { s.remote.address = 'not a host!'; }, path: 'spec.remote.address', message: /IP address or a DNS name/ },
  { name: 'esp lifeTime not longer than rekeyTime', mutate: (s) => { s.esp = { rekeyTime: '2h', lifeTime: '1h' }; }, path: 'spec.esp.lifeTime', message: /longer than rekeyTime/ },
  { name: 'IKE rekeyTime too short', mutate: (s) => { s.ike = { rekeyTime: '30s' }; }, path: 'spec.ike.rekeyTime', message: /at least 5m/ },
  { name: 'malformed duration', mutate: (s) => { s.esp = { rekeyTime: '1 hour' }; }, path: 'spec.esp.rekeyTime', message: /should match/ },
  { name: 'DPD timeout not longer than interval', mutate: (s) => { s.dpd = { interval: '60s', timeout: '30s' }; }, path: 'spec.dpd.timeout', message: /longer than interval/ },
  { name: 'ESP packet limit past the 32-bit sequence space', mutate: (s) => { s.esp = { lifePackets: 4294967296 }; }, path: 'spec.esp.lifePackets', message: /less than or equal to 4294967295|4.294967295e\+09/ },
  { name: 'ESP byte limit so small it would rekey every few packets', mutate: (s) => { s.esp = { lifeBytes: 1000 }; }, path: 'spec.esp.lifeBytes', message: /greater than or equal to 1048576|1.048576e\+06/ },
  { name: 'certificate authentication without remote.id (any certificate of the CA would do, RFC 4945 §3.1)', mutate: (s) => { s.auth = { certificate: { caSecretRef: { name: 'peer-ca', namespace: 'kipsec-system' } } }; }, path: 'spec.remote.id', message: /certificate authentication needs remote\.id/ },
  { name: 'unsupported DPD action', mutate: (s) => { (s as unknown as { dpd: Mutable }).dpd = { action: 'explode' }; }, path: 'spec.dpd.action', message: /[Uu]nsupported value/ },
  { name: 'route mode without an XFRM interface', mutate: (s) => { s.mode = 'route'; }, path: 'spec.xfrmInterface', message: /route mode needs xfrmInterface/ },
  { name: 'XFRM interface in policy mode', mutate: (s) => { s.xfrmInterface = { ifId: 7 }; }, path: 'spec.xfrmInterface', message: /only used with mode: route/ },
  { name: 'Curve25519 under the aws profile (AWS tunnel options: DH groups 2, 14-24)', mutate: (s) => { s.profile = 'aws'; s.xfrmInterface = { ifId: 9 }; s.ike = { proposals: ['aes256gcm16-prfsha384-x25519'] }; }, path: 'spec.ike.proposals', message: /proposal aes256gcm16-prfsha384-x25519 is not accepted by aws \(x25519;/ },
  { name: 'SHA-512 ESP integrity under the azure profile (not an Azure IPsec/IKE policy parameter)', mutate: (s) => { s.profile = 'azure'; s.xfrmInterface = { ifId: 9 }; s.esp = { proposals: ['aes256-sha512-ecp384'] }; }, path: 'spec.esp.proposals', message: /is not accepted by azure \(sha512;/ },
  { name: 'a cloud profile (route mode) without an XFRM interface', mutate: (s) => { s.profile = 'gcp'; }, path: 'spec.xfrmInterface', message: /route mode needs xfrmInterface/ },
  { name: 'an aws inside address in a block AWS reserves (169.254.169.252/30)', mutate: (s) => { s.profile = 'aws'; s.xfrmInterface = { ifId: 9, insideAddress: '169.254.169.253/30' }; }, path: 'spec.xfrmInterface.insideAddress', message: /not an inside address aws accepts/ },
  { name: 'remote without subnets', mutate: (s) => { delete (s.remote as Partial<typeof s.remote>).subnets; }, path: 'spec.remote.subnets', message: /Required value/ },
];

export function goodMeshSpec(): IPsecMeshSpec { return {}; }

export const BAD_MESHES: readonly BadCase<IPsecMeshSpec>[] = [
  { name: 'cert-manager identity without issuerRef', mutate: (s) => { s.identity = { source: 'cert-manager' }; }, path: 'spec.identity.issuerRef', message: /issuerRef is required/ },
  { name: 'issuerRef with the builtin CA', mutate: (s) => { s.identity = { issuerRef: { name: 'x' } }; }, path: 'spec.identity.issuerRef', message: /issuerRef is required/ },
  { name: 'certificate lifetime under an hour', mutate: (s) => { s.identity = { certificateLifetime: '10m' }; }, path: 'spec.identity.certificateLifetime', message: /between 1h and 8760h/ },
  { name: 'weak transform in the mesh', mutate: (s) => { s.esp = { proposals: ['aes128gcm16-modp1024'] }; }, path: 'spec.esp.proposals', message: /weak transform refused/ },
  { name: 'unsupported datapath', mutate: (s) => { (s as Mutable)['datapath'] = 'dpdk'; }, path: 'spec.datapath', message: /[Uu]nsupported value/ },
];
