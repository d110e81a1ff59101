// Two operators against the real apiserver, one Lease: only the leader signs; killing it (no lease
// release, like SIGKILL) hands over within the lease period; a graceful stop (SIGTERM path)
// releases the lease and hands over at once; no CSR is ever signed twice.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { systemClock } from '../../src/common/time.js';
import { KubeClient, RESOURCES, resourcePath, type WatchEvent } from '../../src/api/kube/client.js';
import { IdentityClient } from '../../src/api/identity-client.js';
import { identityCrypto } from '../../src/pki/identity-crypto.js';
import { Operator } from '../../src/operator/operator.js';
import { eventually, uniqueName } from '../lib/kube.js';
import { adminClient, applyDeployFile, cleanupNamespace, createNode, deleteQuietly, ensureNamespace, installKipsecCrds, serviceAccountUser, testLogger } from './support.js';

const LEASE_MS = 3000; const RENEW_MS = 2000; const RETRY_MS = 300;
let admin: KubeClient;
let ns: string;
const cleanups: (() => Promise<void>)[] = [];
const certWrites = new Map<string, string[]>();
const watchAbort = new AbortController();

function operator(id: string): Operator {
  return new Operator({ kube: admin.as(serviceAccountUser(ns, 'kipsec-operator')), namespace: ns, identity: id, clock: systemClock, log: testLogger(), csrLabelSelector: `kipsec.io/test=${ns}`, meshName: `mesh-${ns}`, leaseDurationMs: LEASE_MS, renewDeadlineMs: RENEW_MS, retryPeriodMs: RETRY_MS });
}

async function agentsFor(count: number, tag: string): Promise<Promise<unknown>[]> {
  const out: Promise<unknown>[] = [];
  for (let i = 0; i < count; i++) {
    const name = uniqueName(`le-${tag}`);
    await createNode(admin, name, `192.0.2.${100 + i}`);
    cleanups.push(() => deleteQuietly(admin, resourcePath(RESOURCES.nodes, { name })));
    const c = new IdentityClient({ kube: admin.as(serviceAccountUser(ns, 'kipsec-agent', name)), crypto: identityCrypto, nodeName: name, dir: mkdtempSync(join(tmpdir(), 'kipsec-le-')), clock: systemClock, log: { info: () => undefined, warn: () => undefined }, namespace: ns, labels: { 'kipsec.io/test': ns }, issueTimeoutMs: 30_000 });
    out.push(c.start().finally(() => c.stop()));
  }
  return out;
}

before(async () => {
  admin = adminClient();
  ns = uniqueName('kipsec-le');
  await installKipsecCrds(admin);
  await ensureNamespace(admin, ns);
  cleanups.push(await applyDeployFile(admin, 'rbac.yaml', ns));
  // Record every certificate value each CSR ever had, from the apiserver's own event stream.
  void admin.watch<{ metadata: { name: string; labels?: Record<string, string> }; status?: { certificate?: string } }>(resourcePath(RESOURCES.csrs), { labelSelector: `kipsec.io/test=${ns}` }, (e: WatchEvent<{ metadata: { name: string }; status?: { certificate?: string } }>) => {
    const cert = e.object.status?.certificate;
    if (!cert) return;
    const seen = certWrites.get(e.object.metadata.name) ?? [];
    if (!seen.includes(cert)) seen.push(cert);
    certWrites.set(e.object.metadata.name, seen);
  }, watchAbort.signal).catch(() => undefined);
});

after(async () => {
  watchAbort.abort();
  for (const c of cleanups.reverse()) await c();
  await cleanupNamespace(admin, ns, ns);
  admin.close();
});

test('killing the leader hands signing over within the lease period; no CSR is signed twice', async () => {
  const a = operator('op-a'); const b = operator('op-b');
  await a.start(); await b.start();
  const leader = await eventually(async () => (a.isLeader ? a : b.isLeader ? b : undefined), 10_000, 50);
  const standby = leader === a ? b : a;
  await Promise.all(await agentsFor(5, 'x'));
  assert.equal(standby.isLeader, false);

  const killedAt = Date.now();
  leader.abandon(); // SIGKILL: the lease stays held until it expires
  const pending = await agentsFor(10, 'y');
  await eventually(async () => (standby.isLeader ? true : undefined), LEASE_MS + 5_000, 50);
  const handoverMs = Date.now() - killedAt;
  assert.ok(handoverMs <= LEASE_MS + 2 * RETRY_MS + 1500, `handover took ${handoverMs} ms, lease is ${LEASE_MS} ms`);
  assert.ok(handoverMs >= LEASE_MS - RETRY_MS - 500, `standby must wait for the lease to expire (took ${handoverMs} ms)`);
  await Promise.all(pending);

  const issued = (await a.metrics.certificatesIssued.get()).values.reduce((s, v) => s + v.value, 0) + (await b.metrics.certificatesIssued.get()).values.reduce((s, v) => s + v.value, 0);
  await eventually(async () => (certWrites.size >= 15 ? true : undefined), 5_000);
  assert.equal(certWrites.size, 15);
  for (const [csr, certs] of certWrites) assert.equal(certs.length, 1, `CSR ${csr} got ${certs.length} different certificates`);
  assert.equal(issued, 15, 'the two operators together issued exactly one certificate per CSR');
  await standby.stop();
});

test('a graceful stop releases the lease: the standby takes over within a retry period or two', async () => {
  const a = operator('op-c'); const b = operator('op-d');
  await a.start(); await b.start();
  const leader = await eventually(async () => (a.isLeader ? a : b.isLeader ? b : undefined), LEASE_MS + 5_000, 50);
  const standby = leader === a ? b : a;
  const t0 = Date.now();
  await leader.stop();
  await eventually(async () => (standby.isLeader ? true : undefined), LEASE_MS + 5_000, 20);
  const ms = Date.now() - t0;
  assert.ok(ms < LEASE_MS, `handover after release took ${ms} ms`);
  await Promise.all(await agentsFor(2, 'z'));
  await standby.stop();
});
