// Where the Kubernetes credentials come from: a kubeconfig file (KUBECONFIG, --kubeconfig,
// ~/.kube/config) or the pod's service account (in-cluster). Our own loader, not
// @kubernetes/client-node's KubeConfig: loading that library cost ~50 MiB of RSS and 25 MiB of
// heap (the operator idle at 10 nodes: 135 → 81–85 MiB, bench/operator-scale) for what is here
// under 300 lines. What kubectl supports and we do not
// (exec and auth-provider plugins, basic auth, impersonation, proxies) is refused with an error
// naming the file and field, never ignored. Errors name fields and files, never their values: no
// token or key reaches a log. The files (token, certificates) are read again on each
// applyToHTTPSOptions call, so rotated service-account tokens and certificates are picked up.
import { existsSync, readFileSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import { homedir } from 'node:os';
import { delimiter, dirname, isAbsolute, join, resolve } from 'node:path';
import type { RequestOptions } from 'node:https';
import { parse as parseYaml } from 'yaml';
import { KipsecError } from '../../common/errors.js';

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/**
 * What KubeClient needs of a credential source: the server and, refreshed when it asks, TLS
 * material and headers. @kubernetes/client-node's KubeConfig has the same two methods, so tests
 * may pass either.
 */
export interface KubeCredentialSource {
  getCurrentCluster(): { readonly server: string } | null;
  applyToHTTPSOptions(opts: RequestOptions): Promise<void>;
}

/** Bytes given inline (…-data, base64 in the file) or read from a file each time. */
type Material = { readonly data: Buffer } | { readonly file: string };
type Token = { readonly value: string } | { readonly file: string };

/** A kubeconfig or service account that cannot be used; the message names the file and field. */
export class KubeconfigError extends KipsecError {
  constructor(message: string) { super('ERR_KUBECONFIG', message); }
}

/** Loaded credentials: the token and key stay in private fields (not printed by inspect or JSON). */
export class KubeCredentials implements KubeCredentialSource {
  readonly server: string;
  /** The context's namespace (in-cluster: the service account's), if any. */
  readonly namespace: string | undefined;
  /** Where they came from, for messages: a file path or "in-cluster service account". */
  readonly source: string;
  readonly #ca: Material | undefined;
  readonly #cert: Material | undefined;
  readonly #key: Material | undefined;
  readonly #token: Token | undefined;
  readonly #insecureSkipTlsVerify: boolean;
  readonly #tlsServerName: string | undefined;

  constructor(c: { server: string; namespace?: string | undefined; source: string; ca?: Material | undefined; cert?: Material | undefined; key?: Material | undefined; token?: Token | undefined; insecureSkipTlsVerify?: boolean; tlsServerName?: string | undefined }) {
    this.server = c.server; this.namespace = c.namespace; this.source = c.source;
    this.#ca = c.ca; this.#cert = c.cert; this.#key = c.key; this.#token = c.token;
    this.#insecureSkipTlsVerify = c.insecureSkipTlsVerify ?? false; this.#tlsServerName = c.tlsServerName;
    this.#check();
  }

  getCurrentCluster(): { readonly server: string } { return { server: this.server }; }

  /** Sets ca, cert, key, rejectUnauthorized, servername and the Authorization header, reading the files now. */
  applyToHTTPSOptions(opts: RequestOptions): Promise<void> {
    try { this.#fill(opts); return Promise.resolve(); } catch (e) { return Promise.reject(e as Error); }
  }

  #fill(opts: RequestOptions): void {
    try { this.#read(opts); } catch (e) { throw new KubeconfigError(`${this.source}: ${(e as Error).message}`); }
  }

  #read(opts: RequestOptions): void {
    if (this.#ca) opts.ca = readMaterial(this.#ca, 'certificate-authority');
    if (this.#cert) opts.cert = readMaterial(this.#cert, 'client-certificate');
    if (this.#key) opts.key = readMaterial(this.#key, 'client-key');
    opts.rejectUnauthorized = !this.#insecureSkipTlsVerify;
    if (this.#tlsServerName !== undefined) opts.servername = this.#tlsServerName;
    if (this.#token) {
      const headers = (opts.headers ?? {}) as Record<string, string>;
      headers['authorization'] = `Bearer ${readToken(this.#token)}`;
      opts.headers = headers;
    }
  }

  /** The files exist and hold what they should, once at load, so a bad config fails at start. */
  #check(): void {
    const probe: RequestOptions = {};
    this.#fill(probe);
    const pem = (b: Buffer | undefined, what: string, re: RegExp, where: Material | undefined): void => {
      if (b && !re.test(b.toString('latin1'))) throw new KubeconfigError(`${this.source}: ${describe(where, what)} holds no PEM ${what === 'client-key' ? 'private key' : 'certificate'}`);
    };
    pem(probe.ca as Buffer | undefined, 'certificate-authority', /-----BEGIN CERTIFICATE-----/, this.#ca);
    pem(probe.cert as Buffer | undefined, 'client-certificate', /-----BEGIN CERTIFICATE-----/, this.#cert);
    pem(probe.key as Buffer | undefined, 'client-key', /-----BEGIN [A-Z ]*PRIVATE KEY-----/, this.#key);
  }
}

function describe(m: Material | undefined, field: string): string {
  return m && 'file' in m ? `${field} file ${m.file}` : `${field}-data`;
}

function readMaterial(m: Material, field: string): Buffer {
  if ('data' in m) return m.data;
  try { return readFileSync(m.file); } catch (e) { throw new KubeconfigError(`${field}: cannot read ${m.file}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`); }
}

function readToken(t: Token): string {
  if ('value' in t) return t.value;
  let text: string;
  try { text = readFileSync(t.file, 'utf8'); } catch (e) { throw new KubeconfigError(`token file ${t.file}: cannot read: ${(e as NodeJS.ErrnoException).code ?? 'error'}`); }
  const token = text.trim();
  if (token === '' || /\s/.test(token)) throw new KubeconfigError(`token file ${t.file}: ${token === '' ? 'empty' : 'not a single token (holds whitespace)'}`);
  return token;
}

// -----------------------------------------------------------------------------------------------
// In-cluster: the service account kubelet projects into every pod.

/** The pod's service account, as client-go's rest.InClusterConfig: https to KUBERNETES_SERVICE_HOST:PORT. */
export function loadInCluster(env: NodeJS.ProcessEnv = process.env, dir = SERVICE_ACCOUNT_DIR): KubeCredentials {
  const host = env['KUBERNETES_SERVICE_HOST'] ?? '';
  const port = env['KUBERNETES_SERVICE_PORT'] ?? '';
  if (host === '' || port === '') throw new KubeconfigError('in-cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must both be set (not running in a pod?)');
  if (!/^\d{1,5}$/.test(port) || Number(port) > 65535) throw new KubeconfigError(`in-cluster: KUBERNETES_SERVICE_PORT is not a port number: ${JSON.stringify(port)}`);
  const tokenFile = join(dir, 'token');
  if (!existsSync(tokenFile)) throw new KubeconfigError(`in-cluster: no service-account token at ${tokenFile} (automountServiceAccountToken off?)`);
  const nsFile = join(dir, 'namespace');
  const namespace = existsSync(nsFile) ? readFileSync(nsFile, 'utf8').trim() : undefined;
  return new KubeCredentials({
    server: `https://${isIPv6(host) ? `[${host}]` : host}:${port}`, source: `in-cluster service account (${dir})`,
    ca: { file: join(dir, 'ca.crt') }, token: { file: tokenFile }, namespace: namespace || undefined,
  });
}

// -----------------------------------------------------------------------------------------------
// Kubeconfig files (kubectl's format, clientcmd/api/v1).

type Obj = Record<string, unknown>;
interface Named { readonly name: string; readonly body: Obj; readonly file: string }
export interface Merged { currentContext: string | undefined; readonly clusters: Map<string, Named>; readonly users: Map<string, Named>; readonly contexts: Map<string, Named> }

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Parses one file's text into `into`; entries already there win (kubectl's merge: first file first). */
export function mergeKubeconfigText(text: string, file: string, into: Merged = { currentContext: undefined, clusters: new Map(), users: new Map(), contexts: new Map() }): Merged {
  let doc: unknown;
  // Only the position and code: yaml's message quotes the line, which may hold a token.
  try { doc = parseYaml(text); } catch (e) {
    const p = e as { code?: string; linePos?: { line: number; col: number }[] };
    throw new KubeconfigError(`${file}: not valid YAML (${p.code ?? 'error'}${p.linePos?.[0] ? ` at line ${p.linePos[0].line}, column ${p.linePos[0].col}` : ''})`);
  }
  if (doc === null || doc === undefined) return into;   // an empty file, as kubectl
  if (!isObj(doc)) throw new KubeconfigError(`${file}: not a kubeconfig (want a mapping with clusters, users, contexts)`);
  const cc = doc['current-context'];
  if (cc !== undefined && cc !== null && typeof cc !== 'string') throw new KubeconfigError(`${file}: current-context: want a string`);
  if (into.currentContext === undefined && typeof cc === 'string' && cc !== '') into.currentContext = cc;
  const lists = [['clusters', 'cluster', into.clusters], ['users', 'user', into.users], ['contexts', 'context', into.contexts]] as const;
  for (const [list, key, map] of lists) {
    const items = doc[list];
    if (items === undefined || items === null) continue;
    if (!Array.isArray(items)) throw new KubeconfigError(`${file}: ${list}: want a list`);
    items.forEach((it: unknown, i) => {
      if (!isObj(it) || typeof it['name'] !== 'string' || it['name'] === '') throw new KubeconfigError(`${file}: ${list}[${i}]: want a mapping with a name`);
      const body = it[key] ?? {};
      if (!isObj(body)) throw new KubeconfigError(`${file}: ${list}[${i}] (${it['name']}).${key}: want a mapping`);
      if (!map.has(it['name'])) map.set(it['name'], { name: it['name'], body, file });
    });
  }
  return into;
}

/** One or more kubeconfig files, merged as kubectl does; `context` overrides current-context. */
export function loadKubeconfigFiles(files: readonly string[], opts: { context?: string } = {}): KubeCredentials {
  if (files.length === 0) throw new KubeconfigError('no kubeconfig file given');
  let merged: Merged | undefined;
  for (const f of files) {
    let text: string;
    try { text = readFileSync(f, 'utf8'); } catch (e) { throw new KubeconfigError(`kubeconfig ${f}: cannot read: ${(e as NodeJS.ErrnoException).code ?? 'error'}`); }
    merged = mergeKubeconfigText(text, resolve(f), merged);
  }
  return resolveContext(merged!, files.join(delimiter), opts.context);
}

export function loadKubeconfigFile(file: string, opts: { context?: string } = {}): KubeCredentials { return loadKubeconfigFiles([file], opts); }

/** kubectl's order: $KUBECONFIG (a path list), ~/.kube/config, then the pod's service account. */
export function loadDefaultKubeconfig(env: NodeJS.ProcessEnv = process.env, home = homedir()): KubeCredentials {
  const list = (env['KUBECONFIG'] ?? '').split(delimiter).filter((f) => f !== '');
  if (list.length > 0) return loadKubeconfigFiles(list);
  const file = join(home, '.kube', 'config');
  if (existsSync(file)) return loadKubeconfigFile(file);
  if (env['KUBERNETES_SERVICE_HOST']) return loadInCluster(env);
  throw new KubeconfigError(`no kubeconfig: $KUBECONFIG is unset, ${file} does not exist, and not in a pod (KUBERNETES_SERVICE_HOST unset)`);
}

/** Credentials for a context of parsed (merged) kubeconfig text; `source` names it in errors. */
export function resolveContext(m: Merged, source: string, context?: string): KubeCredentials {
  const name = context ?? m.currentContext;
  if (name === undefined) throw new KubeconfigError(`${source}: current-context is not set`);
  const ctx = m.contexts.get(name);
  if (!ctx) throw new KubeconfigError(`${source}: context "${name}" is not in contexts`);
  const at = (n: Named, kind: string, field: string): string => `${n.file}: ${kind}s[name=${n.name}].${kind}.${field}`;
  const str = (n: Named, kind: string, field: string): string | undefined => {
    const v = n.body[field];
    if (v === undefined || v === null || v === '') return undefined;
    if (typeof v !== 'string') throw new KubeconfigError(`${at(n, kind, field)}: want a string`);
    return v;
  };
  const clusterName = str(ctx, 'context', 'cluster');
  if (clusterName === undefined) throw new KubeconfigError(`${at(ctx, 'context', 'cluster')}: not set`);
  const cluster = m.clusters.get(clusterName);
  if (!cluster) throw new KubeconfigError(`${at(ctx, 'context', 'cluster')}: cluster "${clusterName}" is not in clusters`);
  const userName = str(ctx, 'context', 'user');
  const user = userName === undefined ? undefined : m.users.get(userName);
  if (userName !== undefined && !user) throw new KubeconfigError(`${at(ctx, 'context', 'user')}: user "${userName}" is not in users`);

  const server = str(cluster, 'cluster', 'server');
  if (server === undefined) throw new KubeconfigError(`${at(cluster, 'cluster', 'server')}: not set`);
  let url: URL;
  try { url = new URL(server); } catch { throw new KubeconfigError(`${at(cluster, 'cluster', 'server')}: not a URL: ${JSON.stringify(server)}`); }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new KubeconfigError(`${at(cluster, 'cluster', 'server')}: want an https:// (or http://) URL, got ${url.protocol}`);
  for (const f of ['proxy-url', 'disable-compression']) {
    if (cluster.body[f] !== undefined && cluster.body[f] !== false && cluster.body[f] !== '') throw new KubeconfigError(`${at(cluster, 'cluster', f)}: not supported by kipsec's client`);
  }
  const insecure = cluster.body['insecure-skip-tls-verify'] ?? false;
  if (typeof insecure !== 'boolean') throw new KubeconfigError(`${at(cluster, 'cluster', 'insecure-skip-tls-verify')}: want true or false`);
  const ca = material(cluster, 'cluster', 'certificate-authority', at, str);
  // Honoured as written (kubectl does too), but never together with a CA: which one is meant?
  if (insecure && ca) throw new KubeconfigError(`${at(cluster, 'cluster', 'insecure-skip-tls-verify')}: true together with a certificate-authority; remove one`);

  let cert: Material | undefined; let key: Material | undefined; let token: Token | undefined;
  if (user) {
    const unsupported: Record<string, string> = {
      exec: 'exec credential plugins are not supported; use a token, tokenFile or client certificate (e.g. a service-account token), or run in the cluster',
      'auth-provider': 'auth-provider plugins are not supported; use a token, tokenFile or client certificate',
      username: 'basic auth is not supported (kube-apiserver dropped it in v1.19)',
      password: 'basic auth is not supported (kube-apiserver dropped it in v1.19)',
      as: 'impersonation in the kubeconfig is not supported', 'as-groups': 'impersonation in the kubeconfig is not supported',
      'as-uid': 'impersonation in the kubeconfig is not supported', 'as-user-extra': 'impersonation in the kubeconfig is not supported',
    };
    for (const [f, why] of Object.entries(unsupported)) {
      const v = user.body[f];
      if (v !== undefined && v !== null && v !== '') throw new KubeconfigError(`${at(user, 'user', f)}: ${why}`);
    }
    cert = material(user, 'user', 'client-certificate', at, str);
    key = material(user, 'user', 'client-key', at, str);
    if ((cert === undefined) !== (key === undefined)) throw new KubeconfigError(`${at(user, 'user', cert ? 'client-key' : 'client-certificate')}: not set, but its pair is (a client certificate needs both)`);
    const value = str(user, 'user', 'token');
    const tokenFile = str(user, 'user', 'tokenFile');
    if (value !== undefined && tokenFile !== undefined) throw new KubeconfigError(`${at(user, 'user', 'token')}: both token and tokenFile are set; keep one`);
    if (value !== undefined && /\s/.test(value)) throw new KubeconfigError(`${at(user, 'user', 'token')}: holds whitespace`);
    token = value !== undefined ? { value } : tokenFile !== undefined ? { file: relativeTo(user.file, tokenFile) } : undefined;
    // In clear text only to this machine (kubectl proxy, a test server), never across a network.
    if (token && url.protocol === 'http:' && !isLoopback(url.hostname)) throw new KubeconfigError(`${at(user, 'user', value !== undefined ? 'token' : 'tokenFile')}: refusing to send a bearer token to an http:// server not on this machine (${at(cluster, 'cluster', 'server')})`);
  }
  const ns = str(ctx, 'context', 'namespace');
  const tlsServerName = str(cluster, 'cluster', 'tls-server-name');
  return new KubeCredentials({ server, source: source, namespace: ns, ca, cert, key, token, insecureSkipTlsVerify: insecure, tlsServerName });
}

/** `field` (a path, relative to the file) or `field-data` (base64), not both. */
function material(n: Named, kind: string, field: string, at: (n: Named, k: string, f: string) => string, str: (n: Named, k: string, f: string) => string | undefined): Material | undefined {
  const path = str(n, kind, field);
  const b64 = str(n, kind, `${field}-data`);
  if (path !== undefined && b64 !== undefined) throw new KubeconfigError(`${at(n, kind, field)}: both ${field} and ${field}-data are set; keep one`);
  if (b64 !== undefined) {
    const clean = b64.replace(/\s/g, '');
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(clean) || clean.length % 4 !== 0) throw new KubeconfigError(`${at(n, kind, `${field}-data`)}: not base64`);
    return { data: Buffer.from(clean, 'base64') };
  }
  if (path !== undefined) {
    const file = relativeTo(n.file, path);
    if (!existsSync(file)) throw new KubeconfigError(`${at(n, kind, field)}: ${file} does not exist`);
    return { file };
  }
  return undefined;
}

const relativeTo = (kubeconfigFile: string, p: string): string => (isAbsolute(p) ? p : resolve(dirname(kubeconfigFile), p));

const isLoopback = (host: string): boolean => host === 'localhost' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host);
