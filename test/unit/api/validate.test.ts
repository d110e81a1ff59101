// The TypeScript validator (the standalone agent's config check) refuses each bad spec naming the
// field the apiserver names (the same cases run against the real apiserver in
// e2e/apiserver/crd-validation.test.ts), accepts good ones, and fills in the CRD's defaults.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseTunnelConfig, validateTunnel, formatProblem } from '../../../src/api/config.js';
import { meshSpec } from '../../../src/api/resources.js';
import type { Node, Problem } from '../../../src/api/schema.js';
import { applyDefaults, validateNode } from '../../../src/api/validate.js';
import { effectiveTunnel } from '../../../src/api/profiles/index.js';
import { BAD_MESHES, BAD_TUNNELS, goodTunnelSpec } from './cases.js';

const tunnel = (spec: unknown): unknown => ({ apiVersion: 'kipsec.io/v1alpha1', kind: 'IPsecTunnel', metadata: { name: 't1' }, spec });

test('a good cluster tunnel has no problems', () => {
  assert.deepEqual(validateTunnel(tunnel(goodTunnelSpec()), 'cluster'), []);
});

for (const c of BAD_TUNNELS) {
  test(`refuses ${c.name}, naming ${c.path}`, () => {
    const s = goodTunnelSpec();
    c.mutate(s);
    const ps = validateTunnel(tunnel(s), 'cluster');
    assert.ok(ps.some((p) => p.path === c.path && c.message.test(p.message)), `want ${c.path} ~ ${c.message}, got ${JSON.stringify(ps)}`);
  });
}

for (const c of BAD_MESHES) {
  test(`refuses mesh with ${c.name}, naming ${c.path}`, () => {
    const s = {};
    c.mutate(s);
    const out: Problem[] = [];
    validateNode(meshSpec as Node<unknown>, applyDefaults(meshSpec as Node<unknown>, s), 'spec', 'cluster', out);
    assert.ok(out.some((p) => p.path === c.path && c.message.test(p.message)), `want ${c.path} ~ ${c.message}, got ${JSON.stringify(out)}`);
  });
}

test('standalone config: files required, Secret references refused, one problem per fault with its path', () => {
  const yaml = `
apiVersion: kipsec.io/v1alpha1
kind: IPsecTunnel
metadata: {name: to-aws-1}
spec:
  local: {address: 192.0.2.1, subnets: [10.1.0.0/16]}
  remote: {address: 203.0.113.10, id: 203.0.113.10, subnets: [172.31.0.0/16]}
  auth: {psk: {file: /etc/kipsec/psk}}
  ike: {proposals: [aes256gcm16-prfsha384-ecp384], rekeyTime: 4h}
  esp: {proposals: [aes256gcm16-ecp384], rekeyTime: 1h, lifeTime: 66m}
  dpd: {interval: 30s, timeout: 150s, action: restart}
  startAction: initiate
  profile: aws
  mode: policy
  installRoutes: true
---
apiVersion: kipsec.io/v1alpha1
kind: IPsecTunnel
metadata: {name: bad}
spec:
  local: {nodeSelector: {a: b}}
  remote: {address: 203.0.113.11, subnets: [172.32.0.0/16]}
  auth: {psk: {secretRef: {name: x, namespace: y}}}
  ike: {proposals: [aes257-sha256-x25519]}
  bogus: 1
`;
  const r = parseTunnelConfig(yaml);
  assert.equal(r.tunnels.length, 1);
  assert.equal(r.tunnels[0]!.spec.esp?.lifeTime, '66m');
  const lines = r.problems.map(formatProblem).sort();
  assert.deepEqual(lines, [
    'bad spec.auth.psk.secretRef: only valid in a cluster object, not in a standalone config',
    'bad spec.bogus: unknown field',
    'bad spec.ike.proposals[0]: unknown transform "aes257"',
    'bad spec.local.address: Required value',
    'bad spec.local.nodeSelector: only valid in a cluster object, not in a standalone config',
    'bad spec.local.subnets: Required value',
  ]);
});

// The schema no longer defaults what a profile sets (an apiserver-filled value would hide the
// profile's); without a profile the strongswan preset gives the values the schema used to.
test('without a profile the effective values are the strongswan preset: lifetimes, DPD, proposals, start action, mode', () => {
  const r = parseTunnelConfig(`apiVersion: kipsec.io/v1alpha1
kind: IPsecTunnel
metadata: {name: t}
spec:
  local: {address: 192.0.2.1, subnets: [10.1.0.0/16]}
  remote: {address: gw.example.com, id: gw.example.com, subnets: ['2001:db8::/32']}
  auth: {certificate: {certFile: a.crt, keyFile: a.key, caFile: ca.crt}}
`);
  assert.deepEqual(r.problems, []);
  const s = r.tunnels[0]!.spec;
  assert.deepEqual([s.ike, s.esp, s.dpd, s.startAction, s.mode, s.installRoutes], [undefined, undefined, undefined, undefined, undefined, true]);
  const e = effectiveTunnel(s);
  assert.deepEqual([e.ike.rekeyTime, e.esp.rekeyTime, e.esp.lifeTime, e.dpd.interval, e.dpd.timeout, e.dpd.action, e.startAction, e.mode], ['4h', '1h', '1h6m', '30s', '2m30s', 'restart', 'initiate', 'policy']);
  assert.deepEqual(e.ike.proposals, ['aes256gcm16-prfsha384-x25519', 'aes256gcm16-prfsha256-ecp256']);
  assert.deepEqual([e.localTs, e.remoteTs], [['10.1.0.0/16'], ['2001:db8::/32']]);
});

test('type errors are reported once at the field and skip the rules above them', () => {
  const s = goodTunnelSpec() as unknown as { remote: { subnets: unknown } };
  s.remote.subnets = '10.0.0.0/8';
  assert.deepEqual(validateTunnel(tunnel(s), 'cluster'), [{ path: 'spec.remote.subnets', message: 'must be an array, got string' }]);
});
