// reconcileCsr (src/operator/csr-controller.ts) against fake caches and a recording apiserver: a
// request the policy approves is approved, then signed on the approved version the cache shows; a
// reconcile that finds that version again costs no second write; the certificate is an issued
// identity before its CSR event arrives; a certificate write that fails is retried from the cache. And the
// IPsecNode side: a fingerprint published before the operator knows the certificate it is issuing
// for that node costs no IdentityVerified=False write, and a reconcile before our write's event
// arrives does not write again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../../src/common/time.js';
import { SIGNER_NAME, agentUsername } from '../../../src/api/names.js';
import { KubeApiError } from '../../../src/api/kube/errors.js';
import { createCa, createCsr, generateKeyPair } from '../../../src/pki/index.js';
import type { Ctx } from '../../../src/operator/context.js';
import { parsedCsr, reconcileCsr } from '../../../src/operator/csr-controller.js';
import { IdentityIndex } from '../../../src/operator/identity-index.js';
import type { Csr, KNode } from '../../../src/operator/kinds.js';
import { OperatorMetrics } from '../../../src/operator/metrics.js';
import { silentLogger } from '../../../src/operator/logger.js';
import { certFacts } from '../../../src/operator/cert-facts.js';
import { reconcileIpsecNode } from '../../../src/operator/resource-controllers.js';
import type { IPsecNode } from '../../../src/api/types.js';

const NS = 'kipsec-system';

class Cache<T extends { metadata: { name: string } }> {
  readonly m = new Map<string, T>();
  get(name: string): T | undefined { return this.m.get(name); }
  list(): T[] { return [...this.m.values()]; }
  put(x: T): void { this.m.set(x.metadata.name, x); }
}

interface Write { readonly path: string; readonly resourceVersion: string | undefined; readonly body: { status: Csr['status'] } }

async function fake(opts: { failCertificateWrites?: number } = {}) {
  const clock = new ManualClock(Date.UTC(2026, 0, 1));
  const csrs = new Cache<Csr>(); const nodes = new Cache<KNode>(); const meshes = new Cache<{ metadata: { name: string } }>();
  const ipsecNodes = new Cache<IPsecNode>();
  const writes: Write[] = [];
  const applies: { path: string; body: IPsecNode }[] = [];
  // The apiserver's copy of each CSR: a merge patch with a stale resourceVersion is a 409.
  const server = new Map<string, Csr>();
  let rv = 10; let failCertificateWrites = opts.failCertificateWrites ?? 0;
  const identities = new IdentityIndex(() => 24 * 3_600_000, parsedCsr);
  const ca = await createCa(await generateKeyPair(), 'test CA', clock.now());
  const ctx = {
    clock, log: silentLogger(), metrics: new OperatorMetrics(), identities, agentUsername: agentUsername(NS), namespace: NS,
    defaultCertLifetimeMs: 24 * 3_600_000, csrsIssued: new Set<string>(), identityWritten: new Map(), meshMemory: new Map(),
    caches: { csrs, nodes, meshes, ipsecNodes },
    ca: { state: { signer: ca, fingerprint: 'f', rotation: { phase: 'Idle' }, resourceVersion: '1' } },
    events: { emit: () => undefined },
    kube: {
      apply: (path: string, body: IPsecNode) => { applies.push({ path, body }); return Promise.resolve(body); },
      mergePatch: (path: string, body: { metadata: { resourceVersion?: string }; status: Csr['status'] }) => {
        const name = decodeURIComponent(path.split('/')[5]!);
        const have = server.get(name)!;
        writes.push({ path, resourceVersion: body.metadata.resourceVersion, body });
        if (body.metadata.resourceVersion !== have.metadata.resourceVersion) return Promise.reject(new KubeApiError(409, 'Conflict', 'the object has been modified'));
        if (path.endsWith('/status') && body.status?.certificate && failCertificateWrites > 0) { failCertificateWrites--; return Promise.reject(new KubeApiError(500, 'InternalError', 'etcd hiccup')); }
        const next: Csr = { ...have, metadata: { ...have.metadata, resourceVersion: String(++rv) }, status: { ...have.status, ...body.status } };
        server.set(name, next);
        return Promise.resolve(structuredClone(next));
      },
    },
  } as unknown as Ctx;
  /** The CSR informer delivering the apiserver's current version of `name`. */
  const sync = (name: string): void => { csrs.put(structuredClone(server.get(name)!)); identities.observe(csrs.get(name)!, clock.now()); };
  const submit = async (node: string): Promise<string> => {
    nodes.put({ metadata: { name: node }, status: { addresses: [] } });
    const name = `${node}-csr`;
    const pem = await createCsr(await generateKeyPair(), node);
    server.set(name, { metadata: { name, uid: `uid-${name}`, resourceVersion: String(++rv) }, spec: { request: Buffer.from(pem).toString('base64'), signerName: SIGNER_NAME, username: agentUsername(NS), usages: ['digital signature', 'client auth', 'server auth'] } });
    sync(name);
    return name;
  };
  return { ctx, writes, server, sync, submit, identities, csrs, nodes, ipsecNodes, applies };
}

test('csr-controller: a reconcile approves; the next, on the approval\'s version from the cache, signs; a reconcile on that version again writes nothing; the certificate is an issued identity before its event', async () => {
  const f = await fake();
  const name = await f.submit('node-a');
  const submitted = f.server.get(name)!.metadata.resourceVersion;
  assert.equal(await reconcileCsr(f.ctx, name), undefined);
  assert.deepEqual(f.writes.map((w) => w.path.split('/').pop()), ['approval']);
  assert.equal(f.writes[0]!.resourceVersion, submitted);
  assert.ok(f.server.get(name)!.status?.conditions?.some((c) => c.type === 'Approved' && c.status === 'True'));
  f.sync(name); // the approval's event
  const approvedVersion = f.csrs.get(name)!;
  assert.equal(await reconcileCsr(f.ctx, name), undefined);
  assert.deepEqual(f.writes.map((w) => w.path.split('/').pop()), ['approval', 'status']);
  assert.equal(f.writes[1]!.resourceVersion, approvedVersion.metadata.resourceVersion, 'the certificate is written on the approved version');
  assert.ok(f.server.get(name)!.status?.certificate, 'the apiserver holds the certificate');

  // The identity is known as issued before the CSR event: an agent's publish that arrives first verifies.
  const fp = certFacts(Buffer.from(f.server.get(name)!.status!.certificate!, 'base64').toString('utf8')).certFingerprint;
  assert.deepEqual(f.identities.issued('node-a').map((i) => i.certFingerprint), [fp]);

  // Woken again while the cache still shows the approved version (another event): no second certificate write.
  assert.equal(await reconcileCsr(f.ctx, name), undefined);
  assert.equal(f.writes.length, 2, 'no second certificate write on the stale version');
  // Then the certificate's version: done, and forgotten.
  f.sync(name);
  assert.equal(await reconcileCsr(f.ctx, name), undefined);
  assert.equal(f.writes.length, 2);
  assert.equal(f.ctx.csrsIssued.size, 0);
  assert.deepEqual(f.identities.issued('node-a').map((i) => i.certFingerprint), [fp]);
});

test('csr-controller: a certificate write that fails is retried from the cache, without a second approval', async () => {
  const f = await fake({ failCertificateWrites: 1 });
  const name = await f.submit('node-b');
  assert.equal(await reconcileCsr(f.ctx, name), undefined);
  f.sync(name); // the approval's event
  await assert.rejects(reconcileCsr(f.ctx, name), (e: unknown) => e instanceof KubeApiError && e.status === 500);
  assert.deepEqual(f.writes.map((w) => w.path.split('/').pop()), ['approval', 'status']);
  assert.equal(f.server.get(name)!.status?.certificate, undefined);
  assert.equal(await reconcileCsr(f.ctx, name), undefined);
  assert.deepEqual(f.writes.map((w) => w.path.split('/').pop()), ['approval', 'status', 'status'], 'no second approval');
  assert.ok(f.server.get(name)!.status?.certificate);
});

test('csr-controller: a denied request costs one write and is not signed', async () => {
  const f = await fake();
  const name = await f.submit('node-c');
  f.nodes.m.delete('node-c');
  assert.equal(await reconcileCsr(f.ctx, name), undefined);
  assert.deepEqual(f.writes.map((w) => w.path.split('/').pop()), ['approval']);
  assert.ok(f.server.get(name)!.status?.conditions?.some((c) => c.type === 'Denied' && c.reason === 'NodeNotFound'));
  assert.equal(f.server.get(name)!.status?.certificate, undefined);
});

test('ipsecnode: a fingerprint published while the node\'s certificate is being issued is not reported unknown (no False write); once issued, one True write', async () => {
  const f = await fake();
  const name = await f.submit('node-d');
  // The approval is written and the certificate write is on its way (the reservation stands).
  const parsed = await parsedCsr(f.csrs.get(name)!);
  if (parsed instanceof Error) throw parsed;
  f.identities.reserve(name, 'node-d', parsed.publicKeyFingerprint, f.ctx.clock.now());
  f.ipsecNodes.put({ apiVersion: 'kipsec.io/v1alpha1', kind: 'IPsecNode', metadata: { name: 'node-d', resourceVersion: '5' }, spec: { endpoint: { address: '192.0.2.4' }, identity: { certFingerprint: 'ab'.repeat(32) } } });
  const again = await reconcileIpsecNode(f.ctx, 'node-d');
  assert.equal(f.applies.length, 0, 'no UnknownCertificate write while a certificate for the node is pending');
  assert.ok(again !== undefined && again > 0, 'looked at again later');
  // Approved and signed: the published fingerprint is now one we issued.
  assert.equal(await reconcileCsr(f.ctx, name), undefined);
  f.sync(name);
  assert.equal(await reconcileCsr(f.ctx, name), undefined);
  const fp = certFacts(Buffer.from(f.server.get(name)!.status!.certificate!, 'base64').toString('utf8')).certFingerprint;
  f.ipsecNodes.put({ ...f.ipsecNodes.get('node-d')!, spec: { endpoint: { address: '192.0.2.4' }, identity: { certFingerprint: fp } } });
  await reconcileIpsecNode(f.ctx, 'node-d');
  assert.deepEqual(f.applies.map((a) => a.body.status?.conditions?.map((c) => `${c.type}=${c.status}/${c.reason}`)), [['IdentityVerified=True/CertificateMatches']]);
  // Woken again (the CSR's certificate event) while the cache still shows the version our write was based on.
  await reconcileIpsecNode(f.ctx, 'node-d');
  assert.equal(f.applies.length, 1, 'compared with our own write, not written again on the older version');
});

test('ipsecnode: an unknown fingerprint with no certificate pending for the node is reported at once (UnknownCertificate)', async () => {
  const f = await fake();
  f.nodes.put({ metadata: { name: 'node-e' }, status: { addresses: [] } });
  f.ipsecNodes.put({ apiVersion: 'kipsec.io/v1alpha1', kind: 'IPsecNode', metadata: { name: 'node-e', resourceVersion: '5' }, spec: { endpoint: { address: '192.0.2.5' }, identity: { certFingerprint: 'cd'.repeat(32) } } });
  await reconcileIpsecNode(f.ctx, 'node-e');
  assert.deepEqual(f.applies.map((a) => a.body.status?.conditions?.map((c) => `${c.type}=${c.status}/${c.reason}`)), [['IdentityVerified=False/UnknownCertificate']]);
});
