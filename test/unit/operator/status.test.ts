// Status computation as pure functions: conditions keep lastTransitionTime unless status flips,
// mesh readiness and degradation reasons, tunnel aggregation of gateway reports, and the
// IPsecNode identity check.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setCondition, findCondition, sameConditions } from '../../../src/api/conditions.js';
import type { CaRotationStatus, IPsecMesh, IPsecNode, IPsecTunnel } from '../../../src/api/types.js';
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

/** Every node reports every other as established (a healthy full mesh). */
const fullMesh = (ns: IPsecNode[]): IPsecNode[] => ns.map((n) => ({ ...n, status: { ...n.status, peers: ns.filter((x) => x !== n).map((x) => ({ node: x.metadata.name, state: 'established' as const })) } }));
const inputs = (nodes: IPsecNode[], o: { caRotation?: CaRotationStatus } = {}) => ({ nodes, caFingerprint: 'f', caRotation: o.caRotation });

test('mesh: no nodes → Ready=False NoNodes; one ready node → AllNodesReady; all ready, all pairs up → AllPairsEstablished; some not → NodesNotReady naming them; observedGeneration set', () => {
  assert.equal(findCondition(computeMeshStatus(mesh(), inputs([]), T0).conditions, 'Ready')?.reason, 'NoNodes');
  const one = computeMeshStatus(mesh(), inputs([node('a', true)]), T0);
  assert.deepEqual([findCondition(one.conditions, 'Ready')?.reason, one.pairsExpected, one.pairsEstablished], ['AllNodesReady', 0, 0]);
  const all = computeMeshStatus(mesh(), inputs(fullMesh([node('a', true), node('b', true)])), T0);
  assert.deepEqual([all.nodesReady, all.nodesTotal, all.observedGeneration, findCondition(all.conditions, 'Ready')?.reason, findCondition(all.conditions, 'Ready')?.observedGeneration], [2, 2, 3, 'AllPairsEstablished', 3]);
  assert.deepEqual([all.pairsEstablished, all.pairsExpected, all.worstPairs, findCondition(all.conditions, 'Ready')?.message], [1, 1, undefined, '2/2 nodes ready; 1/1 pairs established']);
  const some = computeMeshStatus(mesh(), inputs(fullMesh([node('a', true), node('b', false)])), T0);
  assert.match(findCondition(some.conditions, 'Ready')!.message, /1\/2 .*not ready: b; 1\/1 pairs established/);
});

test('mesh: all nodes ready but a pair not established → Ready=False PairsNotEstablished and Degraded=True PairsNotEstablished with the worst pair and the side\'s notify', () => {
  const ns = fullMesh([node('node-a', true), node('node-b', true), node('node-c', true)]);
  ns[0]!.status!.peers![0] = { node: 'node-b', state: 'failed', lastError: { notify: 'AUTHENTICATION_FAILED', message: 'peer identity mismatch' } };
  ns[1]!.status!.peers![0] = { node: 'node-a', state: 'connecting' };
  const st = computeMeshStatus(mesh(), inputs(ns), T0);
  assert.deepEqual([st.pairsEstablished, st.pairsExpected], [2, 3]);
  assert.deepEqual(st.worstPairs, [{ nodes: ['node-a', 'node-b'], state: 'failed', message: 'node-a: AUTHENTICATION_FAILED: peer identity mismatch; node-b: connecting', since: '2026-01-01T00:00:00Z' }]);
  const ready = findCondition(st.conditions, 'Ready'); const deg = findCondition(st.conditions, 'Degraded');
  assert.deepEqual([ready?.status, ready?.reason, deg?.status, deg?.reason], ['False', 'PairsNotEstablished', 'True', 'PairsNotEstablished']);
  assert.equal(deg?.message, '1 of 3 pairs not established; worst: node-a <-> node-b failed: node-a: AUTHENTICATION_FAILED: peer identity mismatch; node-b: connecting');
});

test('mesh: a pair\'s since comes from the operator\'s memory, else from the previous status (stable across reconciles), else now', () => {
  const ns = [node('a', true), node('b', true)];
  const s1 = computeMeshStatus(mesh(), inputs(ns), T0);
  assert.equal(s1.worstPairs?.[0]?.since, '2026-01-01T00:00:00Z');
  const s2 = computeMeshStatus({ ...mesh(), status: s1 }, inputs(ns), T0 + 60_000);
  assert.equal(s2.worstPairs?.[0]?.since, '2026-01-01T00:00:00Z');
  assert.ok(sameMeshStatus(s1, s2));
  const s3 = computeMeshStatus(mesh(), { ...inputs(ns), since: () => Date.UTC(2025, 5, 1) }, T0);
  assert.equal(s3.worstPairs?.[0]?.since, '2025-06-01T00:00:00Z');
});

test('mesh: a node whose status is stale (no update for 3 minutes) does not count as ready although its Ready says True, and the message says so', () => {
  const ns = fullMesh([node('a', true), node('b', true)]);
  ns[0]!.status!.lastUpdateTime = '2025-12-31T23:50:00Z';
  const st = computeMeshStatus(mesh(), inputs(ns), T0);
  const ready = findCondition(st.conditions, 'Ready');
  assert.deepEqual([st.nodesReady, ready?.reason, st.worstPairs?.[0]?.state], [1, 'NodesNotReady', 'half']);
  assert.match(ready?.message ?? '', /not ready: a \(last heard from 2025-12-31T23:50:00Z by its status\); 0\/1 pairs established/);
});

test('mesh: an unverified node identity is Degraded (UnknownCertificate, also counting pairs down); CA rotation is reported but not Degraded', () => {
  const d = computeMeshStatus(mesh(), inputs([node('a', true, false), node('b', true)]), T0);
  assert.deepEqual([findCondition(d.conditions, 'Degraded')?.status, findCondition(d.conditions, 'Degraded')?.reason, findCondition(d.conditions, 'Degraded')?.message], ['True', 'UnknownCertificate', '1 node(s) without a verified identity: a; 1 pair(s) not established']);
  const caRotation: CaRotationStatus = { phase: 'Trusting', newCaFingerprint: 'n', nodesDone: 0, nodesTotal: 1, waitingFor: ['a'], message: 'Trusting: 0/1 nodes trust the new CA; waiting for a (a does not trust the new CA yet)' };
  const r = computeMeshStatus(mesh(), inputs([node('a', true)], { caRotation }), T0);
  assert.deepEqual([findCondition(r.conditions, 'Degraded')?.status, findCondition(r.conditions, 'Degraded')?.reason, r.rotationInProgress, r.caRotation], ['False', 'CARotating', true, caRotation]);
  assert.equal(findCondition(r.conditions, 'Degraded')?.message, `CA rotation: ${caRotation.message!}`);
  const ok = computeMeshStatus(mesh(), inputs(fullMesh([node('a', true), node('b', true)])), T0);
  assert.deepEqual([findCondition(ok.conditions, 'Degraded')?.status, findCondition(ok.conditions, 'Degraded')?.reason], ['False', 'AsExpected']);
});

test('mesh status recomputed from the same inputs is the same (no write), even later in time', () => {
  const m = mesh();
  const ns = fullMesh([node('a', true), node('b', true)]);
  const s1 = computeMeshStatus(m, inputs(ns), T0);
  const s2 = computeMeshStatus({ ...m, status: s1 }, inputs(ns), T0 + 60_000);
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
