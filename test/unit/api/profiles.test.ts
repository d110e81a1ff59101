// IPsecTunnel profiles (src/api/profiles/): each preset merged under a spec field by field, and
// the CRD's refusal of a proposal the provider does not accept, naming the provider and its
// document. Every expected figure cites the provider page it comes from (the module headers
// quote the sections).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateTunnel } from '../../../src/api/config.js';
import { buildCrd } from '../../../src/api/crd.js';
import { PRESETS, effectiveTunnel, refusalMessage, refusedToken } from '../../../src/api/profiles/index.js';
import type { Profile } from '../../../src/api/transforms.js';
import type { IPsecTunnelSpec } from '../../../src/api/types.js';
import { goodTunnelSpec } from './cases.js';

const AWS_DOC = 'https://docs.aws.amazon.com/vpn/latest/s2svpn/VPNTunnels.html';
const GCP_DOC = 'https://cloud.google.com/network-connectivity/docs/vpn/concepts/supported-ike-ciphers';
const AZURE_DOC = 'https://learn.microsoft.com/en-us/azure/vpn-gateway/vpn-gateway-about-compliance-crypto';

const tunnel = (spec: unknown): unknown => ({ apiVersion: 'kipsec.io/v1alpha1', kind: 'IPsecTunnel', metadata: { name: 't1' }, spec });

function routed(profile: Profile, more: Partial<IPsecTunnelSpec> = {}): IPsecTunnelSpec {
  return { ...goodTunnelSpec(), profile, xfrmInterface: { ifId: 42, insideAddress: '169.254.10.2/30' }, ...more };
}

test(`aws preset (${AWS_DOC}): Phase 1 28,800 s and Phase 2 3,600 s less a 540 s margin (270 s + 100 % fuzz), DPD 10 s / 40 s, route mode with 0.0.0.0/0 selectors, MTU 1446, we initiate (startup action "Add")`, () => {
  const e = effectiveTunnel(routed('aws'));
  assert.deepEqual(e.ike, { proposals: ['aes256gcm16-prfsha384-ecp384', 'aes256-sha256-modp2048'], rekeyTime: '7h51m' });
  assert.deepEqual(e.esp, { proposals: ['aes256gcm16-ecp384', 'aes256-sha256-modp2048'], rekeyTime: '51m', lifeTime: '1h' });
  assert.deepEqual(e.dpd, { interval: '10s', timeout: '40s', action: 'restart' });
  assert.deepEqual([e.mode, e.startAction, e.localTs, e.remoteTs], ['route', 'initiate', ['0.0.0.0/0'], ['0.0.0.0/0']]);
  assert.deepEqual(e.xfrmInterface, { name: 'xfrm42', ifId: 42, insideAddress: '169.254.10.2/30', mtu: 1446 });
  assert.equal(e.mssBytes, 1406);
});

test(`gcp preset (${GCP_DOC}): Phase 1 36,000 s, Phase 2 10,800 s, one cipher per role as Google recommends, MTU 1390 under the 1460-byte gateway MTU`, () => {
  const e = effectiveTunnel(routed('gcp'));
  assert.deepEqual(e.ike, { proposals: ['aes256gcm16-prfsha256-x25519'], rekeyTime: '9h51m' });
  assert.deepEqual(e.esp, { proposals: ['aes256gcm16-x25519'], rekeyTime: '2h51m', lifeTime: '3h' });
  assert.deepEqual([e.mode, e.localTs, e.remoteTs, e.xfrmInterface?.mtu], ['route', ['0.0.0.0/0'], ['0.0.0.0/0'], 1390]);
});

test(`azure preset (${AZURE_DOC}): IKE 28,800 s, quick mode 27,000 s and 102,400,000 KB, DPD timeout 45 s, MTU 1400 / MSS 1350`, () => {
  const e = effectiveTunnel(routed('azure'));
  assert.deepEqual(e.ike, { proposals: ['aes256gcm16-prfsha384-ecp384'], rekeyTime: '7h51m' });
  assert.deepEqual(e.esp, { proposals: ['aes256gcm16-ecp384'], rekeyTime: '7h21m', lifeTime: '7h30m', lifeBytes: 102_400_000 * 1024 });
  assert.deepEqual([e.dpd.timeout, e.mode, e.xfrmInterface?.mtu, e.mssBytes], ['45s', 'route', 1400, 1350]);
});

test('strongswan preset (swanctl.conf defaults): what a tunnel without a profile gets — policy mode, subnets as selectors', () => {
  const e = effectiveTunnel(goodTunnelSpec());
  assert.equal(e.profile, 'strongswan');
  assert.deepEqual([e.mode, e.localTs, e.remoteTs, e.xfrmInterface], ['policy', ['10.1.0.0/16'], ['172.31.0.0/16'], undefined]);
  assert.deepEqual(e.esp.proposals, PRESETS.strongswan.esp.proposals);
});

test('explicit fields override the profile field by field; the rest stays the profile\'s', () => {
  const e = effectiveTunnel(routed('aws', {
    esp: { rekeyTime: '40m' }, dpd: { action: 'clear' }, startAction: 'respond',
    xfrmInterface: { ifId: 7, name: 'aws-a', mtu: 1400 },
  }));
  assert.deepEqual(e.esp, { proposals: PRESETS.aws.esp.proposals, rekeyTime: '40m', lifeTime: '1h' });
  assert.deepEqual(e.dpd, { interval: '10s', timeout: '40s', action: 'clear' });
  assert.equal(e.startAction, 'respond');
  assert.deepEqual(e.xfrmInterface, { name: 'aws-a', ifId: 7, mtu: 1400 });
});

test('an explicit mode: policy under a cloud profile brings policy selectors (the subnets) and needs no interface', () => {
  const s: IPsecTunnelSpec = { ...goodTunnelSpec(), profile: 'aws', mode: 'policy' };
  assert.deepEqual(validateTunnel(tunnel(s), 'cluster'), []);
  const e = effectiveTunnel(s);
  assert.deepEqual([e.mode, e.localTs, e.remoteTs], ['policy', ['10.1.0.0/16'], ['172.31.0.0/16']]);
});

test('a cloud profile without xfrmInterface is refused: its mode is route', () => {
  const ps = validateTunnel(tunnel({ ...goodTunnelSpec(), profile: 'gcp' }), 'cluster');
  assert.deepEqual(ps.map((p) => p.path), ['spec.xfrmInterface']);
  assert.match(ps[0]!.message, /route mode needs xfrmInterface .*comes from the profile/);
});

test(`aws refuses Curve25519: its DH groups are 2, 14-24 (${AWS_DOC}, Phase 1 Diffie-Hellman (DH) group numbers)`, () => {
  const ps = validateTunnel(tunnel(routed('aws', { ike: { proposals: ['aes256gcm16-prfsha384-x25519'] } })), 'cluster');
  assert.deepEqual(ps, [{ path: 'spec.ike.proposals', message: `proposal aes256gcm16-prfsha384-x25519 is not accepted by aws (x25519; ${PRESETS.aws.accepts!.citation})` }]);
  assert.ok(ps[0]!.message.includes(AWS_DOC));
});

test(`aws accepts aes128-sha1-modp1024: AES128, SHA1 and DH group 2 are among its defaults (${AWS_DOC})`, () => {
  // The weak-transform rule lets modp1024 through for aws (transforms.ts), and AWS lists it.
  assert.deepEqual(validateTunnel(tunnel(routed('aws', { ike: { proposals: ['aes128-sha1-modp1024'] } })), 'cluster'), []);
  assert.equal(refusedToken('aws', 'ike', 'aes128-sha1-modp1024'), undefined);
});

test('aws refuses DH group 5 in IKE but accepts it for PFS (Phase 1 groups 2, 14-24; Phase 2 groups 2, 5, 14-24)', () => {
  assert.equal(refusedToken('aws', 'ike', 'aes256-sha256-modp1536'), 'modp1536');
  assert.equal(refusedToken('aws', 'esp', 'aes256-sha256-modp1536'), undefined);
});

test(`gcp refuses ChaCha20-Poly1305: not in Cloud VPN's cipher tables (${GCP_DOC})`, () => {
  const ps = validateTunnel(tunnel(routed('gcp', { esp: { proposals: ['chacha20poly1305-x25519'] } })), 'cluster');
  assert.deepEqual(ps.map((p) => p.path), ['spec.esp.proposals']);
  assert.match(ps[0]!.message, /^proposal chacha20poly1305-x25519 is not accepted by gcp \(chacha20poly1305; Google Cloud VPN supported IKE ciphers/);
});

test(`azure refuses Curve25519 and SHA-512: neither is an IPsec/IKE policy parameter (${AZURE_DOC})`, () => {
  assert.match(refusalMessage('azure', 'ike', ['aes256gcm16-prfsha384-ecp384', 'aes256-sha512-x25519']) ?? '', /^proposal aes256-sha512-x25519 is not accepted by azure \(sha512; Azure VPN Gateway/);
  const ps = validateTunnel(tunnel(routed('azure', { esp: { proposals: ['aes256gcm16-x25519'] } })), 'cluster');
  assert.deepEqual(ps.map((p) => p.path), ['spec.esp.proposals']);
  assert.ok(ps[0]!.message.includes(AZURE_DOC));
});

test('a weak transform under a profile that does not allow it gets the weak message first, then the provider\'s', () => {
  const ps = validateTunnel(tunnel(routed('aws', { ike: { proposals: ['3des-sha256-modp2048'] } })), 'cluster');
  assert.deepEqual(ps.map((p) => p.path), ['spec.ike.proposals', 'spec.ike.proposals']);
  assert.match(ps[0]!.message, /weak transform refused/);
  assert.match(ps[1]!.message, /not accepted by aws \(3des;/);
});

test(`aws inside addresses (${AWS_DOC}, Inside tunnel IPv4 CIDR): a /30 from 169.254.0.0/16, not one of the blocks AWS reserves`, () => {
  const problems = (a: string) => validateTunnel(tunnel(routed('aws', { xfrmInterface: { ifId: 41, insideAddress: a } })), 'cluster');
  assert.deepEqual(problems('169.254.10.2/30'), []);
  for (const bad of ['169.254.10.2/29', '10.0.0.2/30', '169.254.3.2/30', '169.254.169.253/30']) {
    const ps = problems(bad);
    assert.deepEqual(ps.map((p) => p.path), ['spec.xfrmInterface.insideAddress'], bad);
    assert.match(ps[0]!.message, new RegExp(`^${bad.replace(/\./g, '\\.')} is not an inside address aws accepts`));
  }
  // Other providers choose their own: no such rule for gcp.
  assert.deepEqual(validateTunnel(tunnel(routed('gcp', { xfrmInterface: { ifId: 51, insideAddress: '10.0.0.2/30' } })), 'cluster'), []);
});

test('the CRD carries the provider rule as CEL with a messageExpression naming the provider', () => {
  const spec = buildCrd('IPsecTunnel').spec.versions[0]!.schema.openAPIV3Schema.properties!['spec']!;
  const rules = spec['x-kubernetes-validations'] ?? [];
  const ike = rules.find((r) => r.fieldPath === '.ike.proposals' && r.messageExpression?.includes('is not accepted by aws'));
  assert.ok(ike, 'IKE provider rule');
  assert.ok(ike.rule.includes("self.profile == 'azure'") && ike.rule.includes("'x25519'"), ike.rule);
  assert.ok(ike.messageExpression?.includes(AWS_DOC));
});
