// KubeClient on the wire, against a local HTTP server: a request body is framed (Content-Length)
// whatever the verb. Node sends a DELETE body with no framing at all, so the apiserver ignored
// DeleteOptions (preconditions) and read the body as the start of the next request on the
// kept-alive connection, answering it with a bare 400 Bad Request.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage } from 'node:http';
import { KubeConfig } from '@kubernetes/client-node';
import { KubeClient } from '../../../src/api/kube/client.js';
import { KubeUnavailableError } from '../../../src/api/kube/errors.js';

test('a DELETE with DeleteOptions carries them with a Content-Length, and the next request on the connection is unharmed', async () => {
  const seen: { method: string; url: string; length: string | undefined; body: string }[] = [];
  const server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', length: req.headers['content-length'], body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(200, { 'content-type': 'application/json' }); res.end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  const kc = new KubeConfig();
  kc.loadFromOptions({ clusters: [{ name: 'c', server: `http://127.0.0.1:${port}`, skipTLSVerify: true }], users: [{ name: 'u' }], contexts: [{ name: 'c', cluster: 'c', user: 'u' }], currentContext: 'c' });
  const kube = new KubeClient(kc);
  try {
    const opts = { apiVersion: 'v1', kind: 'DeleteOptions', preconditions: { uid: 'u-1' } };
    await kube.request('DELETE', '/apis/kipsec.io/v1alpha1/ipsecnodes/n1', { body: opts });
    await kube.create('/apis/events.k8s.io/v1/namespaces/default/events', { kind: 'Event' });
    assert.deepEqual(seen.map((s) => [s.method, s.url]), [['DELETE', '/apis/kipsec.io/v1alpha1/ipsecnodes/n1'], ['POST', '/apis/events.k8s.io/v1/namespaces/default/events']]);
    assert.deepEqual(JSON.parse(seen[0]!.body), opts);
    assert.equal(seen[0]!.length, String(Buffer.byteLength(JSON.stringify(opts))));
  } finally {
    kube.close();
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  }
});

test('a response whose connection drops mid-body is a failure (KubeUnavailableError), never a truncated body; whole bodies in several chunks parse', async () => {
  const big = JSON.stringify({ items: Array.from({ length: 2000 }, (_, i) => ({ name: `n-${i}` })) });
  const server = createServer((req, res) => {
    if (req.url?.startsWith('/cut')) {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100' });
      res.write('{"kind":"Status"');
      setTimeout(() => res.socket?.destroy(), 20);
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.write(big.slice(0, 1000)); setTimeout(() => res.end(big.slice(1000)), 10);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  const kc = new KubeConfig();
  kc.loadFromOptions({ clusters: [{ name: 'c', server: `http://127.0.0.1:${port}`, skipTLSVerify: true }], users: [{ name: 'u' }], contexts: [{ name: 'c', cluster: 'c', user: 'u' }], currentContext: 'c' });
  const kube = new KubeClient(kc);
  try {
    await assert.rejects(kube.get('/cut'), (e: unknown) => e instanceof KubeUnavailableError);
    assert.equal((await kube.get<{ items: unknown[] }>('/whole')).items.length, 2000);
  } finally {
    kube.close();
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  }
});
