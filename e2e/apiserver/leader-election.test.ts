// Two operators against the real apiserver, one Lease: only the leader signs; killing it (no lease
// release, like SIGKILL) hands over within the lease period; a graceful stop (SIGTERM path)
// releases the lease and hands over at once; a leader cut off from the apiserver (its requests
// hang) steps down before the standby may take over; no CSR is ever signed twice.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { systemClock } from '../../src/common/time.js';
import { KubeClient, RESOURCES, resourcePath, type WatchEvent } from '../../src/api/kube/client.js';
import { IdentityClient } from '../../src/api/identity-client.js';
import { identityCrypto } from '../../src/pki/identity-crypto.js';
import { Operator } from '../../src/operator/operator.js';
import { eventually, kubeconfigPath, loadKubeConfig, uniqueName } from '../lib/kube.js';
import { adminClient, applyDeployFile, cleanupNamespace, createNode, deleteQuietly, ensureNamespace, installKipsecCrds, serviceAccountUser, testLogger } from './support.js';
import { scratchDir } from '../../test/lib/tmp.js';

const LEASE_MS = 3000; const RENEW_MS = 2000; const RETRY_MS = 300;
let admin: KubeClient;
let ns: string;
const cleanups: (() => Promise<void>)[] = [];
const certWrites = new Map<string, string[]>();
const watchAbort = new AbortController();

function operator(id: string, via: KubeClient = admin): Operator {
  return new Operator({ kube: via.as(serviceAccountUser(ns, 'kipsec-operator')), namespace: ns, identity: id, clock: systemClock, log: testLogger(), csrLabelSelector: `kipsec.io/test=${ns}`, meshName: `mesh-${ns}`, leaseDurationMs: LEASE_MS, renewDeadlineMs: RENEW_MS, retryPeriodMs: RETRY_MS });
}

async function agentsFor(count: number, tag: string): Promise<Promise<unknown>[]> {
  const out: Promise<unknown>[] = [];
  for (let i = 0; i < count; i++) {
    const name = uniqueName(`le-${tag}`);
    await createNode(admin, name, `192.0.2.${100 + i}`);
    cleanups.push(() => deleteQuietly(admin, resourcePath(RESOURCES.nodes, { name })));
    const c = new IdentityClient({ kube: admin.as(serviceAccountUser(ns, 'kipsec-agent', name)), crypto: identityCrypto, nodeName: name, dir: scratchDir('kipsec-le-'), clock: systemClock, log: { info: () => undefined, warn: () => undefined }, namespace: ns, labels: { 'kipsec.io/test': ns }, issueTimeoutMs: 30_000 });
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

/**
 * A TCP relay to the apiserver that can be made to stop passing bytes (both ways, existing and new
 * connections alike) and later deliver what it held, in order: a partition that drops packets, so
 * requests neither fail nor return.
 */
class Partition {
  blocked = false;
  readonly #held: (() => void)[] = [];
  readonly #sockets = new Set<Socket>();
  readonly #server: Server;
  constructor(upstream: URL) {
    this.#server = createServer((down) => {
      const up = connect(Number(upstream.port), upstream.hostname);
      for (const [from, to] of [[down, up], [up, down]] as const) {
        this.#sockets.add(from);
        from.on('data', (d: Buffer) => { if (this.blocked) this.#held.push(() => to.write(d)); else to.write(d); });
        from.on('close', () => { to.destroy(); this.#sockets.delete(from); });
        from.on('error', () => to.destroy());
      }
    });
  }
  async listen(): Promise<number> {
    await new Promise<void>((r) => this.#server.listen(0, '127.0.0.1', r));
    return (this.#server.address() as { port: number }).port;
  }
  heal(): void { this.blocked = false; for (const f of this.#held.splice(0)) f(); }
  async close(): Promise<void> { for (const s of this.#sockets) s.destroy(); await new Promise((r) => this.#server.close(r)); }
}

test('a leader cut off from the apiserver (its lease renewals hang, no error) stops leading before the standby may take over, and signs nothing after; the standby signs (client-go leaderelection renewDeadline)', async (t) => {
  const partition = new Partition(new URL(loadKubeConfig().getCurrentCluster()!.server));
  const port = await partition.listen();
  // The lane's kubeconfig names its certificate files by absolute path: only the server changes.
  const relayed = loadKubeConfig();
  relayed.loadFromString(readFileSync(kubeconfigPath(), 'utf8').replace(/server: https:\/\/\S+/, `server: https://127.0.0.1:${port}`));
  const viaRelay = new KubeClient(relayed);
  const a = operator('op-e', viaRelay);
  // Stopped however the test ends: an assertion failing with both running left the file hanging.
  const standby: Operator[] = [];
  t.after(async () => { partition.heal(); await a.stop(); for (const o of standby) await o.stop(); viaRelay.close(); await partition.close(); });
  await a.start();
  await eventually(async () => (a.isLeader ? true : undefined), LEASE_MS + 5_000, 50);
  const b = operator('op-f');
  standby.push(b);
  await b.start();
  await Promise.all(await agentsFor(2, 'p')); // a signs these
  const issued = async (o: Operator): Promise<number> => (await o.metrics.certificatesIssued.get()).values.reduce((s, v) => s + v.value, 0);
  // The agents can hold their certificates before the leader's own write has come back through
  // the relay and counted.
  const aBefore = await eventually(async () => ((await issued(a)) >= 2 ? issued(a) : undefined), 10_000, 50);
  assert.equal(aBefore, 2, 'the leader signed while connected');

  partition.blocked = true;
  const cutAt = Date.now();
  let aStoppedAt: number | undefined;
  const bLeadsAt = await eventually(async () => {
    if (aStoppedAt === undefined && !a.isLeader) aStoppedAt = Date.now();
    return b.isLeader ? Date.now() : undefined;
  }, LEASE_MS + RENEW_MS + 10_000, 20);
  t.diagnostic(`cut at 0: op-e stopped leading at ${aStoppedAt === undefined ? 'never' : `${aStoppedAt - cutAt} ms`}, op-f leads at ${bLeadsAt - cutAt} ms (renewDeadline ${RENEW_MS} ms, lease ${LEASE_MS} ms)`);
  assert.ok(aStoppedAt !== undefined && aStoppedAt < bLeadsAt, 'the cut-off leader stopped leading before the standby took over');
  assert.ok(aStoppedAt - cutAt <= RENEW_MS + RETRY_MS + 500, `stepped down within renewDeadline of its last renewal (${aStoppedAt - cutAt} ms after the cut)`);

  await Promise.all(await agentsFor(3, 'q')); // the new leader signs these
  partition.heal(); // what op-e sent meanwhile arrives now, and its answers
  await new Promise((r) => setTimeout(r, 2 * RETRY_MS + 500));
  assert.equal(a.isLeader, false, 'healed, op-e finds op-f holding the lease');
  assert.equal(await issued(a), aBefore, 'op-e signed nothing after the cut');
  assert.equal(await eventually(async () => ((await issued(b)) >= 3 ? issued(b) : undefined), 10_000, 50), 3);
  for (const [csr, certs] of certWrites) assert.equal(certs.length, 1, `CSR ${csr} got ${certs.length} different certificates`);
});
