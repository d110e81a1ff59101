// Restarting the apiserver (etcd keeps its data) under a running operator: the informers relist or
// resume, signing continues, and there is still exactly one CA. The test restarts the lane's own
// kube-apiserver process with its original command line; it is skipped when the lane's pid file
// is not ours to use (e.g. a shared apiserver run by someone else).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { systemClock } from '../../src/common/time.js';
import { KubeClient, RESOURCES, resourcePath } from '../../src/api/kube/client.js';
import { IdentityClient } from '../../src/api/identity-client.js';
import { identityCrypto } from '../../src/pki/identity-crypto.js';
import { parseBundle, parseCertificate, verifyCertificate } from '../../src/pki/index.js';
import { Operator } from '../../src/operator/operator.js';
import { eventually, kubeconfigPath, uniqueName } from '../lib/kube.js';
import { adminClient, applyDeployFile, cleanupNamespace, createNode, deleteQuietly, ensureNamespace, installKipsecCrds, serviceAccountUser, testLogger } from './support.js';
import { scratchDir } from '../../test/lib/tmp.js';

const laneDir = dirname(kubeconfigPath());
const pidFile = join(laneDir, 'apiserver.pid');
const skip = !existsSync(pidFile) || process.env['KIPSEC_NO_APISERVER_RESTART'] === '1';

let admin: KubeClient; let ns: string; let op: Operator;
const cleanups: (() => Promise<void>)[] = [];
const quiet = { info: () => undefined, warn: () => undefined };

async function restartApiserver(): Promise<void> {
  const pid = Number(readFileSync(pidFile, 'utf8').trim());
  const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((x) => x !== '');
  process.kill(pid, 'SIGTERM');
  // Gone, or a zombie nobody reaps (the lane script's shell has exited; PID 1 may not reap).
  const exited = (): boolean => { try { return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.startsWith('Z') ?? true; } catch { return true; } };
  // Like e2e/apiserver.sh stop: SIGTERM, then SIGKILL if graceful shutdown lingers.
  await eventually(async () => (exited() ? true : undefined), 10_000, 100).catch(async () => {
    process.kill(pid, 'SIGKILL');
    await eventually(async () => (exited() ? true : undefined), 10_000, 100);
  });
  const log = openSync(join(laneDir, 'apiserver.log'), 'a');
  const child = spawn(argv[0]!, argv.slice(1), { detached: true, stdio: ['ignore', log, log] });
  child.unref();
  writeFileSync(pidFile, `${child.pid}\n`);
  await eventually(async () => (await admin.getText('/readyz').catch(() => '')).startsWith('ok') ? true : undefined, 60_000, 250);
}

before(async () => {
  if (skip) return;
  admin = adminClient();
  ns = uniqueName('kipsec-rs');
  await installKipsecCrds(admin);
  await ensureNamespace(admin, ns);
  cleanups.push(await applyDeployFile(admin, 'rbac.yaml', ns));
  op = new Operator({ kube: admin.as(serviceAccountUser(ns, 'kipsec-operator')), namespace: ns, identity: 'op-rs', clock: systemClock, log: testLogger(), csrLabelSelector: `kipsec.io/test=${ns}`, meshName: `mesh-${ns}`, leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 500 });
  await op.start();
  await eventually(async () => (op.isLeader && op.ctx.ca.state ? true : undefined), 10_000);
});
after(async () => { if (skip) return; await op.stop(); for (const c of cleanups.reverse()) await c(); await cleanupNamespace(admin, ns, ns); admin.close(); });

test('restarting the apiserver under a running operator: signing resumes, still one CA', { skip }, async () => {
  const agentFor = async (ip: string): Promise<string> => {
    const node = uniqueName('rs-node');
    await createNode(admin, node, ip);
    cleanups.push(() => deleteQuietly(admin, resourcePath(RESOURCES.nodes, { name: node })));
    const c = new IdentityClient({ kube: admin.as(serviceAccountUser(ns, 'kipsec-agent', node)), crypto: identityCrypto, nodeName: node, dir: scratchDir('kipsec-rs-'), clock: systemClock, log: quiet, namespace: ns, labels: { 'kipsec.io/test': ns }, issueTimeoutMs: 60_000 });
    try { return (await c.start()).pem; } finally { c.stop(); }
  };
  await agentFor('192.0.2.80');
  const caBefore = op.ctx.ca.state!.fingerprint;
  await restartApiserver();
  const pem = await agentFor('192.0.2.81');
  const bundle = await admin.get<{ data: Record<string, string> }>(resourcePath(RESOURCES.configMaps, { namespace: ns, name: 'kipsec-trust-bundle' }));
  await verifyCertificate(parseCertificate(pem), parseBundle(bundle.data['ca.crt'] ?? ''), Date.now());
  assert.equal(op.ctx.ca.state!.fingerprint, caBefore);
  assert.equal(op.ctx.ca.created, 1, 'the CA was created once, at first start');
  assert.ok(op.isLeader);
  assert.ok(op.caches.csrs.stats.watches >= 2, 'the CSR informer re-watched after the restart');
});
