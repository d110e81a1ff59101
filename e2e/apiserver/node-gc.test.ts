// IPsecNodes of Nodes that are gone, against the real apiserver: the operator (in-process, as its
// own service account with deploy/rbac.yaml, so the RBAC for the delete is tested too) deletes them
// itself — this lane has no kube-controller-manager, and agents set no ownerReferences anyway.
// Every wait is bounded.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { systemClock } from '../../src/common/time.js';
import { KubeClient, RESOURCES, resourcePath } from '../../src/api/kube/client.js';
import { isNotFound } from '../../src/api/kube/errors.js';
import { Operator } from '../../src/operator/operator.js';
import { eventually, uniqueName } from '../lib/kube.js';
import { adminClient, applyDeployFile, cleanupNamespace, createNode, deleteQuietly, ensureNamespace, installKipsecCrds, serviceAccountUser, testLogger } from './support.js';

const GONE_WITHIN_MS = 15_000;

let admin: KubeClient;
let ns: string;
let op: Operator | undefined;
const cleanups: (() => Promise<void>)[] = [];

before(async () => {
  admin = adminClient();
  ns = uniqueName('kipsec-gc');
  await installKipsecCrds(admin);
  await ensureNamespace(admin, ns);
  cleanups.push(await applyDeployFile(admin, 'rbac.yaml', ns));
});

after(async () => {
  await op?.stop();
  for (const c of cleanups.reverse()) await c();
  await cleanupNamespace(admin, ns, ns);
  admin.close();
});

async function startOperator(): Promise<Operator> {
  const o = new Operator({
    kube: admin.as(serviceAccountUser(ns, 'kipsec-operator')), namespace: ns, identity: 'op-gc', clock: systemClock, log: testLogger(),
    csrLabelSelector: `kipsec.io/test=${ns}`, meshName: `mesh-${ns}`, leaseDurationMs: 3000, renewDeadlineMs: 2000, retryPeriodMs: 300,
  });
  await o.start();
  await eventually(async () => (o.isLeader ? true : undefined), 15_000);
  return o;
}

async function ipsecNode(name: string, ip: string): Promise<string> {
  const created = await admin.create<{ metadata: { uid: string } }>(resourcePath(RESOURCES.ipsecNodes), { apiVersion: 'kipsec.io/v1alpha1', kind: 'IPsecNode', metadata: { name }, spec: { endpoint: { address: ip } } });
  cleanups.push(() => deleteQuietly(admin, resourcePath(RESOURCES.ipsecNodes, { name })));
  return created.metadata.uid;
}

async function node(name: string, ip: string): Promise<void> {
  await createNode(admin, name, ip);
  cleanups.push(() => deleteQuietly(admin, resourcePath(RESOURCES.nodes, { name })));
}

const exists = (name: string): Promise<boolean> => admin.get(resourcePath(RESOURCES.ipsecNodes, { name })).then(() => true, (e: unknown) => { if (isNotFound(e)) return false; throw e; });
const gone = (name: string): Promise<true> => eventually(async () => ((await exists(name)) ? undefined : true), GONE_WITHIN_MS, 100);

async function nodeGoneEvent(name: string): Promise<{ type: string; note: string; regarding: { kind: string; uid?: string } }> {
  return eventually(async () => {
    const l = await admin.get<{ items: { reason: string; type: string; note: string; regarding: { kind: string; name: string; uid?: string } }[] }>(resourcePath(RESOURCES.events, { namespace: 'default' }));
    return l.items.find((e) => e.reason === 'NodeGone' && e.regarding.name === name);
  }, 10_000);
}

test('on start, after its caches synced, the operator deletes an IPsecNode whose Node never existed and keeps the one whose Node exists', async () => {
  const never = uniqueName('gc-never');
  const kept = uniqueName('gc-kept');
  await node(kept, '192.0.2.81');
  await ipsecNode(kept, '192.0.2.81');
  await ipsecNode(never, '192.0.2.82');
  op = await startOperator();
  await gone(never);
  const ev = await nodeGoneEvent(never);
  assert.equal(ev.type, 'Normal');
  assert.equal(ev.regarding.kind, 'IPsecNode');
  assert.match(ev.note, new RegExp(`Node ${never} does not exist`));
  // The start-up pass has long finished by now: the IPsecNode with a Node is still there.
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(await exists(kept), true);
});

test('deleting a Node deletes its IPsecNode within seconds (Event NodeGone, metric counted); an IPsecNode created for no Node is deleted too', async (t) => {
  assert.ok(op, 'the operator of the previous test runs');
  const name = uniqueName('gc-node');
  await node(name, '192.0.2.83');
  const uid = await ipsecNode(name, '192.0.2.83');
  await eventually(async () => (op!.caches.ipsecNodes.get(name) ? true : undefined), 10_000);
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(await exists(name), true, 'an IPsecNode whose Node exists is left alone');
  const t0 = Date.now();
  await admin.delete(resourcePath(RESOURCES.nodes, { name }));
  await gone(name);
  const tookMs = Date.now() - t0;
  const ev = await nodeGoneEvent(name);
  assert.equal(ev.regarding.uid, uid);
  assert.match(await op!.metrics.registry.metrics(), /kipsec_operator_ipsecnodes_collected_total [1-9]/);
  t.diagnostic(`IPsecNode deleted ${tookMs} ms after its Node`);

  const stray = uniqueName('gc-stray');
  await ipsecNode(stray, '192.0.2.84');
  await gone(stray);
});
