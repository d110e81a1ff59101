// The CRDs as the real apiserver enforces them: each bad object (test/unit/api/cases.ts) is refused
// at apply time with a message naming the field — the same field the standalone validator names —
// and good objects come back with the schema's defaults; short names, category and printer columns
// are served.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { resourcePath, RESOURCES, type KubeClient } from '../../src/api/kube/client.js';
import { KubeApiError } from '../../src/api/kube/errors.js';
import { validateTunnel } from '../../src/api/config.js';
import { effectiveTunnel } from '../../src/api/profiles/index.js';
import type { IPsecMesh, IPsecTunnel } from '../../src/api/types.js';
import { uniqueName } from '../lib/kube.js';
import { BAD_MESHES, BAD_TUNNELS, goodMeshSpec, goodTunnelSpec } from '../../test/unit/api/cases.js';
import { adminClient, deleteQuietly, installKipsecCrds } from './support.js';

let kube: KubeClient;
before(async () => { kube = adminClient(); await installKipsecCrds(kube); });
after(() => kube.close());

const tunnelObj = (name: string, spec: unknown): unknown => ({ apiVersion: 'kipsec.io/v1alpha1', kind: 'IPsecTunnel', metadata: { name }, spec });

for (const c of BAD_TUNNELS) {
  test(`apiserver refuses an IPsecTunnel with ${c.name}, naming ${c.path}`, async () => {
    const spec = goodTunnelSpec();
    c.mutate(spec);
    const name = uniqueName('bad-t');
    const err = await kube.create(resourcePath(RESOURCES.ipsecTunnels), tunnelObj(name, spec), { dryRun: 'All' }).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof KubeApiError && err.status === 422, `expected 422, got ${String(err)}`);
    const line = err.message.split('\n').find((l) => l.includes(`${c.path}:`));
    assert.ok(line && c.message.test(line), `apiserver message should name ${c.path} ~ ${c.message}: ${err.message}`);
    // Same verdict from the TypeScript validator the standalone agent runs.
    assert.ok(validateTunnel(tunnelObj(name, spec), 'cluster').some((p) => p.path === c.path));
  });
}

for (const c of BAD_MESHES) {
  test(`apiserver refuses an IPsecMesh with ${c.name}, naming ${c.path}`, async () => {
    const spec = goodMeshSpec();
    c.mutate(spec);
    const err = await kube.create(resourcePath(RESOURCES.ipsecMeshes), { apiVersion: 'kipsec.io/v1alpha1', kind: 'IPsecMesh', metadata: { name: uniqueName('bad-m') }, spec }, { dryRun: 'All' }).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof KubeApiError && err.status === 422, `expected 422, got ${String(err)}`);
    assert.ok(err.message.split('\n').some((l) => l.includes(`${c.path}:`) && c.message.test(l)), err.message);
  });
}

test('a good IPsecTunnel is stored as written — no apiserver defaults for what a profile governs, the effective values come from the profile (strongswan without one) — and accepts a status write through the status subresource', async (t) => {
  const name = uniqueName('good-t');
  const path = resourcePath(RESOURCES.ipsecTunnels, { name });
  t.after(() => deleteQuietly(kube, path));
  const got = await kube.create<IPsecTunnel>(resourcePath(RESOURCES.ipsecTunnels), tunnelObj(name, goodTunnelSpec()));
  // A schema default would be stored in the object and hide the profile's value from the agent.
  assert.deepEqual([got.spec.ike?.rekeyTime, got.spec.esp?.rekeyTime, got.spec.esp?.lifeTime, got.spec.dpd, got.spec.startAction, got.spec.mode], [undefined, undefined, undefined, undefined, undefined, undefined]);
  const eff = effectiveTunnel(got.spec);
  assert.deepEqual([eff.profile, eff.ike.rekeyTime, eff.esp.rekeyTime, eff.esp.lifeTime, eff.dpd.interval, eff.dpd.timeout, eff.dpd.action, eff.startAction, eff.mode],
    ['strongswan', '4h', '1h', '1h6m', '30s', '2m30s', 'restart', 'initiate', 'policy']);
  assert.deepEqual(eff.ike.proposals, ['aes256gcm16-prfsha384-x25519', 'aes256gcm16-prfsha256-ecp256']);
  assert.deepEqual([got.spec.installRoutes, got.spec.highAvailability], [true, 'active-standby'], 'fields no profile sets keep their schema defaults');
  const st = await kube.mergePatch<IPsecTunnel>(`${path}/status`, { status: { negotiatedSuite: 'aes256gcm16-prfsha384-x25519', conditions: [{ type: 'Ready', status: 'False', reason: 'NoGatewayReports', message: 'x', lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, 'Z') }] } });
  assert.equal(st.status?.negotiatedSuite, 'aes256gcm16-prfsha384-x25519');
});

test('a good IPsecMesh gets identity and datapath defaults; short names and category are served', async (t) => {
  const name = uniqueName('good-m');
  const path = resourcePath(RESOURCES.ipsecMeshes, { name });
  t.after(() => deleteQuietly(kube, path));
  const got = await kube.create<IPsecMesh>(resourcePath(RESOURCES.ipsecMeshes), { apiVersion: 'kipsec.io/v1alpha1', kind: 'IPsecMesh', metadata: { name }, spec: {} });
  assert.deepEqual([got.spec.identity?.source, got.spec.identity?.certificateLifetime, got.spec.datapath, got.spec.natTraversal, got.spec.traffic?.hostToHost], ['builtin', '24h', 'kernel', 'auto', false]);
  const disc = await kube.get<{ resources: { name: string; shortNames?: string[]; categories?: string[] }[] }>('/apis/kipsec.io/v1alpha1');
  const short = Object.fromEntries(disc.resources.filter((r) => !r.name.includes('/')).map((r) => [r.name, [r.shortNames, r.categories]]));
  assert.deepEqual(short['ipsectunnels'], [['ipt'], ['kipsec']]);
  assert.deepEqual(short['ipsecmeshes'], [['ipm'], ['kipsec']]);
  assert.deepEqual(short['ipsecnodes'], [['ipn'], ['kipsec']]);
});
