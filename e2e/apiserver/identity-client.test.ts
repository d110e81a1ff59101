// The agent-side identity client: renews at 2/3 of the certificate's lifetime with the same key,
// and keeps the current certificate while the apiserver is unreachable (retrying with backoff),
// including across an agent restart.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { KubeConfig } from '@kubernetes/client-node';
import { ManualClock, systemClock } from '../../src/common/time.js';
import { KubeClient, RESOURCES, resourcePath } from '../../src/api/kube/client.js';
import { KubeUnavailableError } from '../../src/api/kube/errors.js';
import { IdentityClient } from '../../src/api/identity-client.js';
import { identityCrypto } from '../../src/pki/identity-crypto.js';
import { Operator } from '../../src/operator/operator.js';
import { eventually, loadKubeConfig, uniqueName } from '../lib/kube.js';
import { adminClient, applyDeployFile, cleanupNamespace, createNode, deleteQuietly, ensureNamespace, installKipsecCrds, serviceAccountUser, testLogger } from './support.js';
import { scratchDir } from '../../test/lib/tmp.js';

let admin: KubeClient; let ns: string; let op: Operator;
const cleanups: (() => Promise<void>)[] = [];
const quiet = { info: () => undefined, warn: () => undefined };

before(async () => {
  admin = adminClient();
  ns = uniqueName('kipsec-ic');
  await installKipsecCrds(admin);
  await ensureNamespace(admin, ns);
  cleanups.push(await applyDeployFile(admin, 'rbac.yaml', ns));
  op = new Operator({ kube: admin.as(serviceAccountUser(ns, 'kipsec-operator')), namespace: ns, identity: 'op-ic', clock: systemClock, log: testLogger(), csrLabelSelector: `kipsec.io/test=${ns}`, meshName: `mesh-${ns}`, leaseDurationMs: 3000, renewDeadlineMs: 2000, retryPeriodMs: 300 });
  await op.start();
  await eventually(async () => (op.isLeader && op.ctx.ca.state ? true : undefined), 10_000);
});
after(async () => { await op.stop(); for (const c of cleanups.reverse()) await c(); await cleanupNamespace(admin, ns, ns); admin.close(); });

/** A client for an apiserver that is not there (nothing listens on port 1). */
function deadKube(): KubeClient {
  const c = loadKubeConfig().getCurrentCluster()!;
  const kc = new KubeConfig();
  kc.loadFromOptions({ clusters: [{ name: 'x', server: 'https://127.0.0.1:1', caFile: c.caFile ?? '', skipTLSVerify: false }], users: [{ name: 'u', token: 'none' }], contexts: [{ name: 'x', cluster: 'x', user: 'u' }], currentContext: 'x' });
  return new KubeClient(kc);
}

test('renews at 2/3 of the lifetime with the same key; while the apiserver is away it keeps the current certificate and retries with backoff', async () => {
  const node = uniqueName('ic-node');
  await createNode(admin, node, '192.0.2.70');
  cleanups.push(() => deleteQuietly(admin, resourcePath(RESOURCES.nodes, { name: node })));
  const dir = scratchDir('kipsec-ic-');
  const live = new IdentityClient({ kube: admin.as(serviceAccountUser(ns, 'kipsec-agent', node)), crypto: identityCrypto, nodeName: node, dir, clock: systemClock, log: quiet, namespace: ns, labels: { 'kipsec.io/test': ns } });
  const first = await live.start();
  live.stop();
  assert.ok(Math.abs(first.renewAtMs - (first.notBeforeMs + (2 / 3) * (first.notAfterMs - first.notBeforeMs))) < 1000);

  // Agent restarts while the apiserver is unreachable: it comes up with the certificate on disk.
  const clock = new ManualClock(Date.now());
  const warnings: string[] = [];
  const offline = new IdentityClient({ kube: deadKube(), crypto: identityCrypto, nodeName: node, dir, clock, log: { info: () => undefined, warn: (_o, m) => warnings.push(m) }, namespace: ns });
  const again = await offline.start();
  assert.equal(again.fingerprint, first.fingerprint, 'same certificate, loaded from disk, no apiserver needed');
  // At 2/3 of the lifetime the renewal fires, fails (apiserver away), and is retried; the certificate stays.
  clock.advance(first.renewAtMs - clock.now() + 1);
  await eventually(async () => (warnings.length >= 1 ? true : undefined), 5000, 20);
  assert.equal(offline.certificate?.fingerprint, first.fingerprint);
  await assert.rejects(offline.renew(), (e: unknown) => e instanceof KubeUnavailableError);
  clock.advance(1000);
  await eventually(async () => (warnings.length >= 2 ? true : undefined), 5000, 20);
  assert.equal(offline.certificate?.fingerprint, first.fingerprint);
  offline.stop();

  // The apiserver is back: the same key gets a fresh certificate.
  const back = new IdentityClient({ kube: admin.as(serviceAccountUser(ns, 'kipsec-agent', node)), crypto: identityCrypto, nodeName: node, dir, clock: systemClock, log: quiet, namespace: ns, labels: { 'kipsec.io/test': ns } });
  await back.start();
  const renewed = await back.renew();
  back.stop();
  assert.equal(renewed.publicKeyFingerprint, first.publicKeyFingerprint);
  assert.notEqual(renewed.fingerprint, first.fingerprint);
});
