// Apiserver lane smoke test: a real kube-apiserver + etcd. Create a CustomResourceDefinition, then
// create, get and watch a custom resource through @kubernetes/client-node.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as k8s from '@kubernetes/client-node';
import { eventually, loadKubeConfig, uniqueName, watchFor } from '../lib/kube.js';

const group = 'smoke.kipsec.io';

test('create a CRD, then create/get/watch a custom resource against the real apiserver', async (t) => {
  const kc = loadKubeConfig();
  const ext = kc.makeApiClient(k8s.ApiextensionsV1Api);
  const objs = kc.makeApiClient(k8s.CustomObjectsApi);
  const plural = `widgets${process.pid}`;
  const crdName = `${plural}.${group}`;
  await ext.createCustomResourceDefinition({ body: {
    metadata: { name: crdName },
    spec: {
      group, scope: 'Cluster',
      names: { plural, singular: `widget${process.pid}`, kind: `Widget${process.pid}` },
      versions: [{ name: 'v1', served: true, storage: true, schema: { openAPIV3Schema: {
        type: 'object',
        properties: { spec: { type: 'object', properties: { size: { type: 'integer', minimum: 1 } }, required: ['size'] } },
      } } }],
    },
  } });
  t.after(() => ext.deleteCustomResourceDefinition({ name: crdName }).catch(() => undefined));
  await eventually(async () => {
    const c = await ext.readCustomResourceDefinition({ name: crdName });
    return c.status?.conditions?.some((x) => x.type === 'Established' && x.status === 'True') ? true : undefined;
  });

  // Watch first, so the ADDED event for the object we create must arrive through the watch.
  const name = uniqueName('w');
  const w = await watchFor(kc, `/apis/${group}/v1/${plural}`, (o) => (o as { metadata?: { name?: string } }).metadata?.name === name);
  t.after(() => w.stop());
  await objs.createClusterCustomObject({ group, version: 'v1', plural, body: { apiVersion: `${group}/v1`, kind: `Widget${process.pid}`, metadata: { name }, spec: { size: 3 } } });
  assert.equal(await w.event, 'ADDED');
  const got = await objs.getClusterCustomObject({ group, version: 'v1', plural, name }) as { spec: { size: number } };
  assert.equal(got.spec.size, 3);

  // The schema is enforced by the real server: size must be >= 1.
  await assert.rejects(
    objs.createClusterCustomObject({ group, version: 'v1', plural, body: { apiVersion: `${group}/v1`, kind: `Widget${process.pid}`, metadata: { name: `${name}-bad` }, spec: { size: 0 } } }),
    (e: unknown) => e instanceof Error && /spec\.size/.test(e.message),
  );
});
