// src/api/kube/kubeconfig.ts: kubectl's kubeconfig format (client-go clientcmd/api/v1) and the
// in-cluster service account (client-go rest.InClusterConfig), against a real TLS server that
// checks the client certificate and bearer token as kube-apiserver does. Bad input must fail at
// load with the file and field named, and no message may quote a token or key.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { KubeClient } from '../../../src/api/kube/client.js';
import { KubeApiError } from '../../../src/api/kube/errors.js';
import { KubeconfigError, type KubeCredentialSource, loadDefaultKubeconfig, loadInCluster, loadKubeconfigFile } from '../../../src/api/kube/kubeconfig.js';
import { createCa, createCsr, exportPrivateKeyPem, generateKeyPair, issueNodeCertificate, parseCsr } from '../../../src/pki/index.js';

const TOKEN = 's3cr3t-token-value';
let dir = '';
let pki: { ca: string; serverCert: string; serverKey: string; clientCert: string; clientKey: string };
let server: Server;
let port = 0;
let acceptedToken = TOKEN;
const b64 = (s: string): string => Buffer.from(s).toString('base64');
const write = (name: string, text: string): string => { const p = join(dir, name); writeFileSync(p, text); return p; };

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kipsec-kubeconfig-'));
  const now = Date.now();
  const ca = await createCa(await generateKeyPair(), 'test-ca', now);
  const leaf = async (name: string, ips: string[]): Promise<{ cert: string; key: string }> => {
    const keys = await generateKeyPair();
    const csr = await parseCsr(await createCsr(keys, name, ips));
    return { cert: issueNodeCertificate(ca, csr, { nowMs: now, dnsNames: [name], ipAddresses: ips }).pem, key: await exportPrivateKeyPem(keys) };
  };
  const s = await leaf('apiserver', ['127.0.0.1']);
  const c = await leaf('client-user', []);
  pki = { ca: ca.cert.toString('pem'), serverCert: s.cert, serverKey: s.key, clientCert: c.cert, clientKey: c.key };
  // As kube-apiserver: a client certificate is optional, a bearer token is checked if sent.
  server = createServer({ cert: pki.serverCert, key: pki.serverKey, ca: pki.ca, requestCert: true, rejectUnauthorized: false }, (req, res) => {
    const sock = req.socket as TLSSocket;
    const peer = sock.authorized ? sock.getPeerCertificate().subject.CN : undefined;
    const auth = req.headers.authorization;
    if (auth !== undefined && auth !== `Bearer ${acceptedToken}`) { res.writeHead(401, { 'content-type': 'application/json' }); res.end('{"kind":"Status","reason":"Unauthorized","message":"Unauthorized"}'); return; }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ peer: peer ?? null, bearer: auth !== undefined }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as { port: number }).port;
});

after(async () => {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
  rmSync(dir, { recursive: true, force: true });
});

function config(cluster: string, user: string, extra = ''): string {
  return `apiVersion: v1\nkind: Config\ncurrent-context: ctx\ncontexts:\n- name: ctx\n  context: {cluster: c, user: u${extra}}\nclusters:\n- name: c\n  cluster:\n${cluster}\nusers:\n- name: u\n  user:\n${user}\n`;
}
const server_ = (): string => `    server: https://127.0.0.1:${port}`;

async function whoami(kc: KubeCredentialSource): Promise<{ peer: string | null; bearer: boolean }> {
  const kube = new KubeClient(kc);
  try { return await kube.get('/whoami'); } finally { kube.close(); }
}

test('a kubeconfig with certificate-authority, client-certificate and client-key files, relative to it, authenticates over TLS (clientcmd: paths relative to the file)', async () => {
  write('ca.crt', pki.ca); write('client.crt', pki.clientCert); write('client.key', pki.clientKey);
  const file = write('files.kubeconfig', config(`${server_()}\n    certificate-authority: ca.crt`, '    client-certificate: client.crt\n    client-key: client.key', ', namespace: kipsec'));
  const kc = loadKubeconfigFile(file);
  assert.equal(kc.server, `https://127.0.0.1:${port}`);
  assert.equal(kc.namespace, 'kipsec');
  assert.deepEqual(await whoami(kc), { peer: 'client-user', bearer: false });
});

test('the -data fields (base64) and a token: the server sees the bearer token; the token is not printed by inspect or JSON', async () => {
  const file = write('data.kubeconfig', config(`${server_()}\n    certificate-authority-data: ${b64(pki.ca)}`, `    client-certificate-data: ${b64(pki.clientCert)}\n    client-key-data: ${b64(pki.clientKey)}\n    token: ${TOKEN}`));
  const kc = loadKubeconfigFile(file);
  assert.deepEqual(await whoami(kc), { peer: 'client-user', bearer: true });
  assert.ok(!inspect(kc, { depth: 5 }).includes(TOKEN) && !JSON.stringify(kc).includes(TOKEN));
  assert.ok(!inspect(kc, { depth: 5 }).includes('PRIVATE KEY'));
});

test('without a CA the server certificate is rejected; insecure-skip-tls-verify: true is honoured as written', async () => {
  const strict = loadKubeconfigFile(write('noca.kubeconfig', config(server_(), `    token: ${TOKEN}`)));
  await assert.rejects(whoami(strict), /certificate/);
  const insecure = loadKubeconfigFile(write('insecure.kubeconfig', config(`${server_()}\n    insecure-skip-tls-verify: true`, `    token: ${TOKEN}`)));
  assert.deepEqual(await whoami(insecure), { peer: null, bearer: true });
});

test('in-cluster (rest.InClusterConfig): https to KUBERNETES_SERVICE_HOST:PORT with the service account CA, namespace and token; a rotated token is read again after a 401', async () => {
  const sa = join(dir, 'serviceaccount');
  mkdirSync(sa, { recursive: true });
  writeFileSync(join(sa, 'ca.crt'), pki.ca); writeFileSync(join(sa, 'namespace'), 'kipsec-system'); writeFileSync(join(sa, 'token'), `${TOKEN}\n`);
  const kc = loadInCluster({ KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: String(port) }, sa);
  assert.equal(kc.namespace, 'kipsec-system');
  assert.equal(loadInCluster({ KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '443' }, sa).server, 'https://[fd00::1]:443');
  const kube = new KubeClient(kc);
  try {
    assert.deepEqual(await kube.get('/whoami'), { peer: null, bearer: true });
    // kubelet rotates the projected token; the apiserver stops accepting the old one.
    acceptedToken = 'rotated-token'; writeFileSync(join(sa, 'token'), 'rotated-token\n');
    await assert.rejects(kube.get('/whoami'), (e: unknown) => e instanceof KubeApiError && e.status === 401);
    assert.deepEqual(await kube.get('/whoami'), { peer: null, bearer: true });
  } finally { kube.close(); acceptedToken = TOKEN; }
});

test('KUBECONFIG lists files merged as kubectl: the first file that sets current-context or an entry wins', async () => {
  write('ca.crt', pki.ca);
  const first = write('first.kubeconfig', `current-context: ctx\nclusters:\n- name: c\n  cluster: {server: "https://127.0.0.1:${port}", certificate-authority: ca.crt}\n`);
  const second = write('second.kubeconfig', `current-context: other\nclusters:\n- name: c\n  cluster: {server: "https://192.0.2.1:6443"}\ncontexts:\n- name: ctx\n  context: {cluster: c, user: u}\nusers:\n- name: u\n  user: {token: ${TOKEN}}\n`);
  const kc = loadDefaultKubeconfig({ KUBECONFIG: `${first}:${second}` }, dir);
  assert.equal(kc.server, `https://127.0.0.1:${port}`);
  assert.deepEqual(await whoami(kc), { peer: null, bearer: true });
  assert.throws(() => loadDefaultKubeconfig({}, join(dir, 'no-home')), (e: unknown) => e instanceof KubeconfigError && /\$KUBECONFIG is unset.*not in a pod/.test(e.message));
});

test('bad kubeconfigs fail at load naming the file and field, never quoting a token or key', () => {
  write('ca.crt', pki.ca); write('client.crt', pki.clientCert); write('client.key', pki.clientKey); write('empty-token', '\n');
  const srv = server_();
  const cases: [string, string, RegExp][] = [
    ['not YAML (the bad line holds the token)', `users:\n- name: u\n  user: {token: ${TOKEN}\n`, /not valid YAML \(\w+ at line \d+, column \d+\)/],
    ['a list, not a mapping', '- a\n- b\n', /not a kubeconfig/],
    ['no current-context', config(srv, '    {}').replace('current-context: ctx\n', ''), /current-context is not set/],
    ['current-context not in contexts', config(srv, '    {}').replace('current-context: ctx', 'current-context: nope'), /context "nope" is not in contexts/],
    ['clusters not a list', 'current-context: x\nclusters: {}\n', /clusters: want a list/],
    ['context names a missing cluster', config(srv, '    {}').replace('{cluster: c,', '{cluster: gone,'), /contexts\[name=ctx\]\.context\.cluster: cluster "gone" is not in clusters/],
    ['context names a missing user', config(srv, '    {}').replace('user: u}', 'user: gone}'), /contexts\[name=ctx\]\.context\.user: user "gone" is not in users/],
    ['no server', config('    certificate-authority: ca.crt', '    {}'), /clusters\[name=c\]\.cluster\.server: not set/],
    ['server not a URL', config('    server: "not a url"', '    {}'), /cluster\.server: not a URL/],
    ['server ftp://', config('    server: ftp://127.0.0.1', '    {}'), /cluster\.server: want an https:\/\//],
    ['certificate-authority file missing', config(`${srv}\n    certificate-authority: missing.crt`, '    {}'), /cluster\.certificate-authority: .*missing\.crt does not exist/],
    ['certificate-authority and -data both', config(`${srv}\n    certificate-authority: ca.crt\n    certificate-authority-data: ${b64(pki.ca)}`, '    {}'), /both certificate-authority and certificate-authority-data/],
    ['certificate-authority-data not base64', config(`${srv}\n    certificate-authority-data: "%%%"`, '    {}'), /certificate-authority-data: not base64/],
    ['certificate-authority-data not a certificate', config(`${srv}\n    certificate-authority-data: ${b64('hello')}`, '    {}'), /certificate-authority-data holds no PEM certificate/],
    ['insecure-skip-tls-verify a string', config(`${srv}\n    insecure-skip-tls-verify: "yes"`, '    {}'), /insecure-skip-tls-verify: want true or false/],
    ['insecure-skip-tls-verify with a CA', config(`${srv}\n    insecure-skip-tls-verify: true\n    certificate-authority: ca.crt`, '    {}'), /insecure-skip-tls-verify: true together with a certificate-authority/],
    ['proxy-url', config(`${srv}\n    proxy-url: http://192.0.2.1:3128`, '    {}'), /cluster\.proxy-url: not supported/],
    ['client-certificate without client-key', config(srv, '    client-certificate: client.crt'), /users\[name=u\]\.user\.client-key: not set, but its pair is/],
    ['client-key-data not a private key', config(srv, `    client-certificate: client.crt\n    client-key-data: ${b64(pki.clientCert)}`), /client-key-data holds no PEM private key/],
    ['exec plugin', config(srv, '    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: aws\n      args: [eks, get-token]'), /user\.exec: exec credential plugins are not supported/],
    ['auth-provider', config(srv, '    auth-provider: {name: oidc}'), /user\.auth-provider: auth-provider plugins are not supported/],
    ['basic auth', config(srv, `    username: admin\n    password: ${TOKEN}`), /user\.username: basic auth is not supported/],
    ['impersonation', config(srv, '    as: system:admin'), /user\.as: impersonation/],
    ['token and tokenFile both', config(srv, `    token: ${TOKEN}\n    tokenFile: empty-token`), /user\.token: both token and tokenFile/],
    ['tokenFile empty', config(srv, '    tokenFile: empty-token'), /token file .*empty-token: empty/],
    ['a token to an http:// server elsewhere', config('    server: http://192.0.2.1:8080', `    token: ${TOKEN}`), /refusing to send a bearer token to an http:\/\/ server not on this machine/],
  ];
  for (const [what, text, want] of cases) {
    const file = write('bad.kubeconfig', text);
    assert.throws(() => loadKubeconfigFile(file), (e: unknown) => {
      assert.ok(e instanceof KubeconfigError, `${what}: ${String(e)}`);
      assert.match(e.message, want, what);
      assert.ok(e.message.includes(file), `${what}: the message names the file: ${e.message}`);
      assert.ok(!e.message.includes(TOKEN) && !e.message.includes('PRIVATE KEY') && !e.message.includes(b64(pki.clientKey).slice(0, 20)), `${what}: the message quotes a secret`);
      return true;
    });
  }
  assert.equal(loadKubeconfigFile(write('loopback.kubeconfig', config('    server: http://127.0.0.1:8001', `    token: ${TOKEN}`))).server, 'http://127.0.0.1:8001', 'kubectl proxy: a token in clear only to this machine');
  assert.throws(() => loadKubeconfigFile(join(dir, 'missing.kubeconfig')), /kubeconfig .*missing\.kubeconfig: cannot read: ENOENT/);
});

test('in-cluster without the environment, with a bad port or without a token fails with the reason', () => {
  const sa = join(dir, 'serviceaccount-empty');
  assert.throws(() => loadInCluster({}, sa), /KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must both be set/);
  assert.throws(() => loadInCluster({ KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: 'https' }, sa), /KUBERNETES_SERVICE_PORT is not a port number/);
  assert.throws(() => loadInCluster({ KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' }, sa), /no service-account token at .*serviceaccount-empty\/token/);
});
