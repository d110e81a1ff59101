// Status computation as pure functions: conditions keep lastTransitionTime unless status flips,
// mesh readiness and degradation reasons, tunnel aggregation of gateway reports, and the
// IPsecNode identity check.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setCondition, findCondition, sameConditions } from '../../../src/api/conditions.js';
import type { IPsecMesh, IPsecNode, IPsecTunnel } from '../../../src/api/types.js';
import { computeIdentityCondition, computeMeshStatus, computeTunnelStatus, gatewayReports, sameMeshStatus } from '../../../src/operator/status.js';

const T0 = Date.UTC(2026, 0, 1);
const mesh = (gen = 3): IPsecMesh => ({ apiVersion: 'kipsec.io/v1alpha1', kind: 'IPsecMesh', metadata: { name: 'default', generation: gen }, spec: {} });
const node = (name: string, ready: boolean, verified = true, tunnels: Record<string, unknown>[] = []): IPsecNode => ({
  apiVersion: 'kipsec.io/v1alpha1', kind: 'IPsecNode', metadata: { name }, spec: { endpoint: { address: '192.0.2.1' } },
  status: { tunnels, conditions: [
    { type: 'Ready', status: ready ? 'True' : 'False', reason: 'x', message: '', lastTransitionTime: 't' },
    { type: 'IdentityVerified', status: verified ? 'True' : 'False', reason: 'x', message: '', lastTransitionTime: 't' }] },
});

test('setCondition keeps lastTransitionTime while status is unchanged and moves it on a flip', () => {
  const a = setCondition([], { type: 'Ready', status: 'False', reason: 'R1', message: 'm' }, 't1');
  const b = setCondition(a, { type: 'Ready', status: 'False', reason: 'R2', message: 'm2' }, 't2');
  assert.equal(findCondition(b, 'Ready')?.lastTransitionTime, 't1');
  const c = setCondition(b, { type: 'Ready', status: 'True', reason: 'R3', message: '' }, 't3');
  assert.equal(findCondition(c, 'Ready')?.lastTransitionTime, 't3');
  assert.ok(sameConditions(c, [...c].reverse()));
});

test('mesh: no nodes → Ready=False NoNodes; all ready → AllNodesReady; some not → NodesNotReady naming them; observedGeneration set', () => {
  assert.equal(findCondition(computeMeshStatus(mesh(), { nodes: [], caFingerprint: 'f', rotationInProgress: false }, T0).conditions, 'Ready')?.reason, 'NoNodes');
  const all = computeMeshStatus(mesh(), { nodes: [node('a', true), node('b', true)], caFingerprint: 'f', rotationInProgress: false }, T0);
  assert.deepEqual([all.nodesReady, all.nodesTotal, all.observedGeneration, findCondition(all.conditions, 'Ready')?.reason, findCondition(all.conditions, 'Ready')?.observedGeneration], [2, 2, 3, 'AllNodesReady', 3]);
  const some = computeMeshStatus(mesh(), { nodes: [node('a', true), node('b', false)], caFingerprint: 'f', rotationInProgress: false }, T0);
  assert.match(findCondition(some.conditions, 'Ready')!.message, /1\/2 .*not ready: b/);
});

test('mesh: an unverified node identity is Degraded; CA rotation is reported but not Degraded', () => {
  const d = computeMeshStatus(mesh(), { nodes: [node('a', true, false)], caFingerprint: 'f', rotationInProgress: false }, T0);
  assert.deepEqual([findCondition(d.conditions, 'Degraded')?.status, findCondition(d.conditions, 'Degraded')?.reason], ['True', 'UnknownCertificate']);
  const r = computeMeshStatus(mesh(), { nodes: [node('a', true)], caFingerprint: 'f', rotationInProgress: true }, T0);
  assert.deepEqual([findCondition(r.conditions, 'Degraded')?.status, findCondition(r.conditions, 'Degraded')?.reason, r.rotationInProgress], ['False', 'CARotating', true]);
});

test('mesh status recomputed from the same inputs is the same (no write), even later in time', () => {
  const m = mesh();
  const s1 = computeMeshStatus(m, { nodes: [node('a', true)], caFingerprint: 'f', rotationInProgress: false }, T0);
  const s2 = computeMeshStatus({ ...m, status: s1 }, { nodes: [node('a', true)], caFingerprint: 'f', rotationInProgress: false }, T0 + 60_000);
  assert.ok(sameMeshStatus(s1, s2));
});

const tunnel: IPsecTunnel = { apiVersion: 'kipsec.io/v1alpha1', kind: 'IPsecTunnel', metadata: { name: 't', generation: 1 }, spec: { local: {}, remote: { address: '203.0.113.1', subnets: ['10.0.0.0/8'] }, auth: {} } };

test('tunnel: gateway reports come from IPsecNode status; established active gateway → Ready with suite; standby not required', () => {
  const gws = gatewayReports('t', [
    node('gw1', true, true, [{ name: 't', role: 'active', childSaState: 'established', negotiatedSuite: 'aes256gcm16-prfsha384-x25519', lastRekeyTime: '2026-01-01T00:00:00Z' }]),
    node('gw2', true, true, [{ name: 't', role: 'standby', childSaState: 'none' }, { name: 'other' }]),
  ]);
  assert.deepEqual(gws.map((g) => g.node), ['gw1', 'gw2']);
  const st = computeTunnelStatus(tunnel, gws, T0);
  assert.deepEqual([findCondition(st.conditions, 'Established')?.status, findCondition(st.conditions, 'Ready')?.status, st.negotiatedSuite, st.gatewaysEstablished, st.lastRekeyTime], ['True', 'True', 'aes256gcm16-prfsha384-x25519', 1, '2026-01-01T00:00:00Z']);
});

test('tunnel: a gateway error surfaces as Degraded with the IKE notify; no reports → NoGatewayReports', () => {
  const st = computeTunnelStatus(tunnel, [{ node: 'gw1', role: 'active', ikeSaState: 'failed', lastError: { notify: 'NO_PROPOSAL_CHOSEN', message: 'peer offered aes128-sha1-modp1024' } }], T0);
  assert.equal(findCondition(st.conditions, 'Degraded')?.message, 'gw1: NO_PROPOSAL_CHOSEN: peer offered aes128-sha1-modp1024');
  assert.equal(findCondition(st.conditions, 'Established')?.reason, 'NotEstablished');
  assert.equal(findCondition(computeTunnelStatus(tunnel, [], T0).conditions, 'Ready')?.reason, 'NoGatewayReports');
});

test('IPsecNode identity: matches an issued, unexpired certificate; otherwise says why', () => {
  const n = (fp?: string): IPsecNode => ({ apiVersion: 'kipsec.io/v1alpha1', kind: 'IPsecNode', metadata: { name: 'n1' }, spec: { endpoint: { address: '192.0.2.1' }, ...(fp ? { identity: { certFingerprint: fp } } : {}) } });
  const issued = [{ certFingerprint: 'aa', notAfterMs: T0 + 1000 }];
  assert.equal(computeIdentityCondition(n('aa'), true, issued, T0).reason, 'CertificateMatches');
  assert.equal(computeIdentityCondition(n('aa'), true, issued, T0 + 2000).reason, 'UnknownCertificate');
  assert.equal(computeIdentityCondition(n('bb'), true, issued, T0).reason, 'UnknownCertificate');
  assert.equal(computeIdentityCondition(n(), true, issued, T0).reason, 'NoCertificate');
  assert.equal(computeIdentityCondition(n('aa'), false, issued, T0).reason, 'NodeMissing');
});
