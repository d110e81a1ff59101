// What the operator's caches keep (src/operator/trim.ts through the Informer's transform): at
// 5,000 kubelet-shaped Nodes the whole objects were most of the operator's heap (issue 16).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../../src/common/time.js';
import { resourceOf, type WatchEvent } from '../../../src/api/kube/client.js';
import { Informer, type ListWatcher, type WatchStatus } from '../../../src/api/kube/informer.js';
import type { Csr, KNode } from '../../../src/operator/kinds.js';
import { dropManagedFields, trimCsr, trimNode } from '../../../src/operator/trim.js';
import { IdentityIndex } from '../../../src/operator/identity-index.js';

const kubeletNode = (name: string, rv: string, address: string): KNode => JSON.parse(JSON.stringify({
  metadata: { name, uid: `uid-${name}`, resourceVersion: rv, labels: { 'kipsec.io/mesh': 'on' }, annotations: { 'node.alpha.kubernetes.io/ttl': '0' }, managedFields: [{ manager: 'kubelet', fieldsV1: { 'f:status': {} } }] },
  spec: { podCIDRs: ['10.244.0.0/24'], providerID: 'aws:///x' },
  status: { addresses: [{ type: 'InternalIP', address }], images: [{ names: ['a@sha256:00'], sizeBytes: 1 }], conditions: [{ type: 'Ready', status: 'True' }], nodeInfo: { kubeletVersion: 'v1.36.3' } },
})) as KNode;

test('a cached Node keeps its name, uid, resourceVersion, labels and addresses, nothing else', () => {
  assert.deepEqual(trimNode(kubeletNode('n1', '7', '10.0.0.1')), {
    metadata: { name: 'n1', uid: 'uid-n1', resourceVersion: '7', labels: { 'kipsec.io/mesh': 'on' } },
    status: { addresses: [{ type: 'InternalIP', address: '10.0.0.1' }] },
  });
  assert.deepEqual(trimNode({ metadata: { name: 'bare' } }), { metadata: { name: 'bare' } });
  const csr = { metadata: { name: 'c', managedFields: [{ manager: 'x' }] }, spec: { request: 'r' } };
  assert.deepEqual(dropManagedFields(csr), { metadata: { name: 'c' }, spec: { request: 'r' } });
});

test('a cached CSR keeps everything but managedFields until it carries a certificate, then name, uid, resourceVersion, labels, signer and certificate only (the signer never reads a signed request)', () => {
  const csr = (certificate?: string): Csr => ({
    apiVersion: 'certificates.k8s.io/v1', kind: 'CertificateSigningRequest',
    metadata: { name: 'c', uid: 'u-1', resourceVersion: '9', creationTimestamp: '2026-12-07T12:00:00Z', labels: { 'kipsec.io/node': 'n' }, managedFields: [{ manager: 'kube-controller-manager' }] } as Csr['metadata'],
    spec: { request: 'UkVR', signerName: 'kipsec.io/node-identity', username: 'u', groups: ['system:authenticated'], extra: { 'authentication.kubernetes.io/node-name': ['n'] }, usages: ['client auth'] },
    status: { conditions: [{ type: 'Approved', status: 'True', reason: 'KipsecNodeIdentity', message: 'node n exists' }], ...(certificate ? { certificate } : {}) },
  });
  const unsigned = csr();
  delete (unsigned.metadata as { managedFields?: unknown }).managedFields;
  assert.deepEqual(trimCsr(csr()), unsigned);
  assert.deepEqual(trimCsr(csr('Q0VSVA==')), { metadata: { name: 'c', uid: 'u-1', resourceVersion: '9', labels: { 'kipsec.io/node': 'n' } }, spec: { request: '', signerName: 'kipsec.io/node-identity' }, status: { certificate: 'Q0VSVA==' } });
});

test('the informer transforms listed and watched objects before caching and handlers, and leaves bookmarks alone', async () => {
  let release: () => void = () => undefined;
  const lw: ListWatcher<KNode> = {
    list: async () => ({ items: [kubeletNode('a', '1', '10.0.0.1')], metadata: { resourceVersion: '1' } }),
    watch: async (_rv, onEvent: (e: WatchEvent<KNode | WatchStatus>) => void, signal) => {
      onEvent({ type: 'MODIFIED', object: kubeletNode('a', '2', '10.0.0.2') });
      onEvent({ type: 'BOOKMARK', object: { metadata: { resourceVersion: '3' } } });
      onEvent({ type: 'DELETED', object: kubeletNode('a', '4', '10.0.0.2') });
      await new Promise<void>((r) => { release = r; signal.addEventListener('abort', () => r()); });
    },
  };
  const seenByTransform: string[] = [];
  const inf = new Informer<KNode>(lw, new ManualClock(), () => undefined, { transform: (n) => { seenByTransform.push(n.metadata.resourceVersion ?? '?'); return trimNode(n); } });
  const got: unknown[] = [];
  inf.addHandlers({ onAdd: (x) => got.push(['add', x]), onUpdate: (_o, x) => got.push(['update', x]), onDelete: (x) => got.push(['delete', x.metadata.resourceVersion]) });
  const run = inf.run();
  await inf.waitForSync();
  for (let i = 0; i < 20 && inf.resourceVersion !== '4'; i++) await new Promise((r) => setImmediate(r));
  assert.deepEqual(seenByTransform, ['1', '2', '4'], 'the bookmark is not an object to transform');
  assert.deepEqual(got[0], ['add', trimNode(kubeletNode('a', '1', '10.0.0.1'))]);
  assert.deepEqual(got[1], ['update', trimNode(kubeletNode('a', '2', '10.0.0.2'))]);
  assert.deepEqual(got[2], ['delete', '2'], 'the delete hands over the cached (trimmed) object');
  assert.equal(inf.resourceVersion, '4');
  inf.stop(); release();
  await run;
});

test('approvals reserved but not yet in the cache are live identities of their node only, until forgotten', () => {
  const idx = new IdentityIndex(() => 86_400_000, async () => new Error('unused'));
  for (let i = 0; i < 1000; i++) idx.reserve(`csr-${i}`, `node-${i % 500}`, `fp-${i}`, 0);
  assert.deepEqual(idx.live('node-7').map((l) => l.csrName), ['csr-7', 'csr-507']);
  assert.deepEqual(idx.live('node-7', 'csr-7').map((l) => l.csrName), ['csr-507']);
  idx.reserve('csr-507', 'node-8', 'fp-x', 0); // decided again, for another node
  assert.deepEqual(idx.live('node-7').map((l) => l.csrName), ['csr-7']);
  idx.forget('csr-7');
  assert.deepEqual(idx.live('node-7'), []);
  assert.deepEqual(idx.live('node-8').map((l) => l.csrName), ['csr-8', 'csr-508', 'csr-507']);
});

test('request counters name the resource and subresource of a path', () => {
  assert.equal(resourceOf('/apis/certificates.k8s.io/v1/certificatesigningrequests/n-1-csr/approval'), 'certificatesigningrequests/approval');
  assert.equal(resourceOf('/apis/kipsec.io/v1alpha1/ipsecnodes/n-1/status'), 'ipsecnodes/status');
  assert.equal(resourceOf('/api/v1/namespaces/kipsec-system/configmaps/kipsec-trust-bundle'), 'configmaps');
  assert.equal(resourceOf('/apis/events.k8s.io/v1/namespaces/default/events'), 'events');
  assert.equal(resourceOf('/api/v1/nodes'), 'nodes');
  assert.equal(resourceOf('/api/v1/namespaces/x/status'), 'namespaces/status');
  assert.equal(resourceOf('/metrics'), '/metrics');
});
