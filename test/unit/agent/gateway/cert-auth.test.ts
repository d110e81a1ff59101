// Certificate authentication of IPsecTunnels on gateway nodes (src/agent/gateway/cert-auth.ts,
// compile.ts): our side is the node identity the operator issued, the remote's CA bundle comes
// from spec.auth.certificate.caSecretRef; the IKE identity is the certificate's DNS SAN unless
// spec.local.id names another identity the certificate carries.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KeyObject, X509Certificate, createPrivateKey, createPublicKey } from 'node:crypto';
import type { IPsecTunnel } from '../../../../src/api/types.js';
import { validateTunnel } from '../../../../src/api/config.js';
import { certificateLocalId, checkCaBundle, type GatewayIdentity } from '../../../../src/agent/gateway/cert-auth.js';
import { compileGatewayTunnel, standaloneSpec } from '../../../../src/agent/gateway/compile.js';
import { createCa, createCsr, exportPrivateKeyPem, generateKeyPair, issueNodeCertificate, parseCsr, type CertificateAuthority } from '../../../../src/pki/index.js';
import { pemBlocks } from '../../../../src/agent/peers.js';

const NOW = Date.now();
const CA_REF = { name: 'vpc-ca', namespace: 'kipsec-system' };

async function nodeIdentity(ca: CertificateAuthority, node: string, ips: string[] = []): Promise<GatewayIdentity & { pem: string }> {
  const keys = await generateKeyPair();
  const csr = await parseCsr(await createCsr(keys, node, ips));
  const cert = issueNodeCertificate(ca, csr, { nowMs: NOW, dnsNames: csr.dnsNames, ipAddresses: csr.ipAddresses });
  return { certificate: pemBlocks(cert.pem)[0]!, chain: [], privateKey: createPrivateKey(await exportPrivateKeyPem(keys)), pem: cert.pem };
}

async function fixtures(): Promise<{ node: GatewayIdentity & { pem: string }; remoteCaPem: Uint8Array; clusterCa: CertificateAuthority }> {
  const clusterCa = await createCa(await generateKeyPair(), 'kipsec cluster CA', NOW);
  const remoteCa = await createCa(await generateKeyPair(), 'cloud VPN CA', NOW);
  return { node: await nodeIdentity(clusterCa, 'node-a', ['192.0.2.11']), remoteCaPem: new Uint8Array(Buffer.from(remoteCa.cert.toString('pem'))), clusterCa };
}

function tunnel(o: { localId?: string; remoteId?: string | null } = {}): IPsecTunnel {
  return {
    apiVersion: 'kipsec.io/v1alpha1', kind: 'IPsecTunnel', metadata: { name: 'to-vpc' },
    spec: {
      local: { ...(o.localId ? { id: o.localId } : {}) },
      remote: { address: '192.0.2.100', ...(o.remoteId === null ? {} : { id: o.remoteId ?? 'vpn.cloud.test' }), subnets: ['10.99.0.0/24'] },
      auth: { certificate: { caSecretRef: CA_REF } },
      ike: { proposals: ['aes256gcm16-prfsha384-x25519'] }, esp: { proposals: ['aes256gcm16'] },
    },
  } as IPsecTunnel;
}

const ctx = { address: '192.0.2.11', podCIDRs: ['10.244.1.0/24'], psk: undefined };

test('certificate auth compiles to the node identity: our certificate and key, the Secret\'s CA bundle as trust anchors, the node name (DNS SAN) as IKE ID, remote.id as the remote\'s', async () => {
  const f = await fixtures();
  const r = compileGatewayTunnel(tunnel(), { ...ctx, caBundle: f.remoteCaPem, identity: f.node });
  assert.ok(r.ok, r.ok ? '' : r.message);
  const auth = r.peer.config.auth;
  assert.equal(auth.method, 'certificate');
  if (auth.method !== 'certificate') return;
  assert.deepEqual(Buffer.from(auth.certificate), Buffer.from(f.node.certificate), 'the node certificate is presented');
  assert.equal(auth.privateKey instanceof KeyObject, true);
  assert.equal(createPublicKey(auth.privateKey).export({ format: 'der', type: 'spki' }).toString('hex'), new X509Certificate(f.node.certificate).publicKey.export({ format: 'der', type: 'spki' }).toString('hex'), 'the node key signs');
  assert.deepEqual(auth.cas.map((c) => Buffer.from(c)), pemBlocks(Buffer.from(f.remoteCaPem).toString()).map((c) => Buffer.from(c)), 'the remote must chain to the CA bundle from the Secret, not to the cluster CA');
  assert.deepEqual(r.peer.config.local.id, { type: 'fqdn', value: 'node-a' }, 'the node name, not the address the certificate also carries');
  assert.deepEqual(r.peer.config.remote.id, { type: 'fqdn', value: 'vpn.cloud.test' });
  assert.equal(r.peer.config.local.address, '192.0.2.11');
});

test('a renewed node certificate changes the peer\'s digest (the engine takes the new credentials) but not its session digest (the SAs stay until the next IKE_AUTH)', async () => {
  const f = await fixtures();
  const renewed = await nodeIdentity(f.clusterCa, 'node-a', ['192.0.2.11']);
  const a = compileGatewayTunnel(tunnel(), { ...ctx, caBundle: f.remoteCaPem, identity: f.node });
  const b = compileGatewayTunnel(tunnel(), { ...ctx, caBundle: f.remoteCaPem, identity: renewed });
  assert.ok(a.ok && b.ok);
  assert.notEqual(a.peer.digest, b.peer.digest);
  assert.equal(a.peer.sessionDigest, b.peer.sessionDigest);
  const again = compileGatewayTunnel(tunnel(), { ...ctx, caBundle: f.remoteCaPem, identity: f.node });
  assert.ok(again.ok);
  assert.equal(again.peer.digest, a.peer.digest, 'the same credentials: no change');
});

test('spec.local.id: used when the node certificate carries it (its IP SAN, its subject DN), refused with what it carries otherwise', async () => {
  const f = await fixtures();
  const ip = compileGatewayTunnel(tunnel({ localId: '192.0.2.11' }), { ...ctx, caBundle: f.remoteCaPem, identity: f.node });
  assert.ok(ip.ok, ip.ok ? '' : ip.message);
  assert.deepEqual(ip.peer.config.local.id, { type: 'ipv4', value: '192.0.2.11' });
  const dn = certificateLocalId(f.node.certificate, 'CN=node-a');
  assert.deepEqual(dn, { ok: true, id: 'CN=node-a' });
  assert.deepEqual(certificateLocalId(f.node.certificate, 'NODE-A'), { ok: true, id: 'NODE-A' }, 'DNS names compare without case');
  const other = compileGatewayTunnel(tunnel({ localId: 'gw.cluster.test' }), { ...ctx, caBundle: f.remoteCaPem, identity: f.node });
  assert.equal(other.ok, false);
  if (other.ok) return;
  assert.match(other.message, /spec\.local\.id "gw\.cluster\.test" is not an identity of this node's certificate \(it carries DNS:node-a, IP:192\.0\.2\.11, subject "CN=node-a"\)/);
});

test('the CA bundle from the Secret: none, not PEM, a certificate that does not parse; each refused naming the Secret and the problem', async () => {
  const f = await fixtures();
  const none = compileGatewayTunnel(tunnel(), { ...ctx, caBundle: undefined, identity: f.node });
  assert.deepEqual(none, { ok: false, message: 'no CA bundle (the Secret is not readable yet)' });
  const junk = compileGatewayTunnel(tunnel(), { ...ctx, caBundle: new Uint8Array(Buffer.from('not a certificate')), identity: f.node });
  assert.deepEqual(junk, { ok: false, message: 'the CA Secret kipsec-system/vpc-ca (key "ca.crt") holds no PEM certificate (-----BEGIN CERTIFICATE-----)' });
  const good = Buffer.from(f.remoteCaPem).toString();
  const broken = `${good}-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n`;
  assert.equal(checkCaBundle(new Uint8Array(Buffer.from(broken))), 'certificate 2 of 2 does not parse');
  const r = compileGatewayTunnel(tunnel(), { ...ctx, caBundle: new Uint8Array(Buffer.from(broken)), identity: f.node });
  assert.equal(r.ok, false);
  if (!r.ok) assert.match(r.message, /^the CA Secret kipsec-system\/vpc-ca \(key "ca\.crt"\) certificate 2 of 2 does not parse$/);
  assert.equal(checkCaBundle(f.remoteCaPem), undefined);
});

test('no node certificate yet, or no remote.id (an unvalidated object): refused, not compiled into a peer that would accept any certificate of the CA', async () => {
  const f = await fixtures();
  assert.equal(standaloneSpec(tunnel(), { ...ctx }), 'no node certificate yet (the operator has not issued it)');
  assert.match(String(standaloneSpec(tunnel({ remoteId: null }), { ...ctx, identity: f.node })), /certificate authentication needs spec\.remote\.id/);
});

test('validation (the CRD\'s rules): cluster tunnels take certificate.caSecretRef, not the standalone files, and need remote.id', () => {
  const doc = (spec: Record<string, unknown>): unknown => ({ ...tunnel(), spec: { ...tunnel().spec, ...spec } });
  const ok = validateTunnel(tunnel(), 'cluster');
  assert.deepEqual(ok, []);
  const files = validateTunnel(doc({ auth: { certificate: { certFile: 'a.crt', keyFile: 'a.key', caFile: 'ca.crt' } } }), 'cluster');
  assert.ok(files.some((p) => /in a cluster the node identity comes from the operator/.test(p.message)), JSON.stringify(files));
  const noRef = validateTunnel(doc({ auth: { certificate: {} } }), 'cluster');
  assert.ok(noRef.some((p) => /caSecretRef is required/.test(p.message)), JSON.stringify(noRef));
  const noId = validateTunnel(tunnel({ remoteId: null }), 'cluster');
  assert.ok(noId.some((p) => /certificate authentication needs remote\.id/.test(p.message)), JSON.stringify(noId));
});
