// A small Kubernetes REST client over node:https with a keep-alive agent. We use it instead of the
// generated @kubernetes/client-node APIs because we need, uniformly for built-in and custom
// resources: server-side apply (application/apply-patch+yaml with fieldManager/force), merge
// patches on subresources (/status, /approval), impersonation headers, streaming watches, and a
// request counter (bench/operator-scale reports apiserver requests per node).
// Credentials come from ./kubeconfig.ts (file or in-cluster); they are re-read every minute, and
// at once after a 401, so rotated service-account tokens are picked up.
import { Agent, request as httpsRequest, type RequestOptions } from 'node:https';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { createInterface } from 'node:readline';
import type { KubeCredentialSource } from './kubeconfig.js';
import { KubeApiError, KubeUnavailableError } from './errors.js';

export interface Impersonation { readonly user: string; readonly groups?: readonly string[]; readonly extra?: Readonly<Record<string, readonly string[]>> }

/** `byResource` keys are "VERB resource[/subresource]", e.g. "PATCH certificatesigningrequests/approval". */
export interface RequestStats { total: number; writes: number; byVerb: Record<string, number>; byResource: Record<string, number> }

export interface WatchEvent<T> { type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR'; object: T }

type Query = Record<string, string | number | boolean | undefined>;

const CREDENTIAL_TTL_MS = 60_000;

export class KubeClient {
  readonly #kc: KubeCredentialSource;
  readonly #server: URL;
  readonly #agent: Agent;
  readonly #impersonate: Impersonation | undefined;
  readonly #ownsAgent: boolean;
  #opts: RequestOptions | undefined;
  #optsAt = 0;
  readonly stats: RequestStats = { total: 0, writes: 0, byVerb: {}, byResource: {} };

  constructor(kc: KubeCredentialSource, opts: { impersonate?: Impersonation; maxSockets?: number; agent?: Agent } = {}) {
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new KubeUnavailableError('kubeconfig has no current cluster', undefined);
    this.#kc = kc;
    this.#server = new URL(cluster.server);
    this.#agent = opts.agent ?? new Agent({ keepAlive: true, maxSockets: opts.maxSockets ?? 64 });
    this.#ownsAgent = opts.agent === undefined;
    this.#impersonate = opts.impersonate;
  }

  /** A client that acts as another user (needs `impersonate` RBAC; tests use the admin). It shares
   * this client's connections; closing it is a no-op, closing this one closes both. */
  as(impersonate: Impersonation): KubeClient { return new KubeClient(this.#kc, { impersonate, agent: this.#agent }); }

  close(): void { if (this.#ownsAgent) this.#agent.destroy(); }

  async #options(): Promise<RequestOptions> {
    if (!this.#opts || Date.now() - this.#optsAt > CREDENTIAL_TTL_MS) {
      const o: RequestOptions = {};
      await this.#kc.applyToHTTPSOptions(o);
      this.#opts = o;
      this.#optsAt = Date.now();
    }
    return this.#opts;
  }

  #url(path: string, query?: Query): URL {
    const base = this.#server.pathname.replace(/\/$/, '');
    const u = new URL(base + path, this.#server);
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) u.searchParams.set(k, String(v));
    return u;
  }

  async #send(method: string, path: string, query: Query | undefined, body: string | undefined, contentType: string | undefined, signal?: AbortSignal, accept = 'application/json'): Promise<IncomingMessage> {
    const base = await this.#options();
    const url = this.#url(path, query);
    const headers: Record<string, string | string[]> = { accept };
    for (const [k, v] of Object.entries(base.headers ?? {})) if (typeof v === 'string') headers[k] = v;
    if (contentType) headers['content-type'] = contentType;
    // Explicit framing: for DELETE (a body carries DeleteOptions, e.g. preconditions) Node sends the
    // body with neither Content-Length nor chunking, so the server ignores it and reads it as the
    // start of the next request on the kept-alive connection (a bare 400 Bad Request).
    if (body !== undefined) headers['content-length'] = String(Buffer.byteLength(body));
    if (this.#impersonate) {
      headers['impersonate-user'] = this.#impersonate.user;
      if (this.#impersonate.groups) headers['impersonate-group'] = [...this.#impersonate.groups];
      for (const [k, vs] of Object.entries(this.#impersonate.extra ?? {})) headers[`impersonate-extra-${encodeURIComponent(k)}`] = [...vs];
    }
    this.stats.total++;
    this.stats.byVerb[method] = (this.stats.byVerb[method] ?? 0) + 1;
    if (method !== 'GET') this.stats.writes++;
    const rk = `${method} ${resourceOf(path)}`;
    this.stats.byResource[rk] = (this.stats.byResource[rk] ?? 0) + 1;
    const isHttps = url.protocol === 'https:';
    const reqOpts: RequestOptions = {
      method, headers, host: url.hostname, port: url.port, path: url.pathname + url.search,
      ...(isHttps ? { agent: this.#agent, ca: base.ca, cert: base.cert, key: base.key, rejectUnauthorized: base.rejectUnauthorized !== false } : {}),
      ...(base.servername !== undefined ? { servername: base.servername } : {}),
      ...(signal ? { signal } : {}),
    };
    return new Promise((resolve, reject) => {
      const req = (isHttps ? httpsRequest : httpRequest)(reqOpts, resolve);
      req.on('error', (e) => reject(signal?.aborted ? e : new KubeUnavailableError(`${method} ${url.pathname}: ${e.message}`, e)));
      if (body !== undefined) req.end(body); else req.end();
    });
  }

  async request<T>(method: string, path: string, opts: { query?: Query; body?: unknown; contentType?: string; accept?: string } = {}): Promise<T> {
    const body = opts.body === undefined ? undefined : typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body);
    const send = (): Promise<IncomingMessage> => this.#send(method, path, opts.query, body, opts.body === undefined ? undefined : (opts.contentType ?? 'application/json'), undefined, opts.accept);
    let res: IncomingMessage;
    try {
      res = await send();
    } catch (e) {
      // A keep-alive socket the server closed just as we reused it: retry once, except for POST
      // (a create may have happened; callers handle AlreadyExists, not duplicates).
      const code = (e as { cause?: { code?: string } }).cause?.code;
      if (method === 'POST' || !(e instanceof KubeUnavailableError) || (code !== 'ECONNRESET' && code !== 'EPIPE')) throw e;
      res = await send();
    }
    const text = await readBody(res);
    const status = res.statusCode ?? 0;
    if (status < 200 || status >= 300) {
      if (status === 401) this.#opts = undefined;   // a rotated token: read the credentials again next time
      let reason = 'Unknown'; let message = text.slice(0, 2000);
      try { const s = JSON.parse(text) as { reason?: string; message?: string }; reason = s.reason ?? reason; message = s.message ?? message; } catch { /* not a Status */ }
      throw new KubeApiError(status, reason, message);
    }
    return (text === '' ? undefined : JSON.parse(text)) as T;
  }

  /** GET a non-JSON endpoint (e.g. /metrics) as text. */
  async getText(path: string): Promise<string> {
    const res = await this.#send('GET', path, undefined, undefined, undefined);
    const chunks: Buffer[] = [];
    for await (const c of res) chunks.push(c as Buffer);
    if ((res.statusCode ?? 0) >= 300) throw new KubeApiError(res.statusCode ?? 0, 'Unknown', Buffer.concat(chunks).toString('utf8').slice(0, 500));
    return Buffer.concat(chunks).toString('utf8');
  }

  get<T>(path: string, query?: Query, accept?: string): Promise<T> { return this.request<T>('GET', path, { ...(query ? { query } : {}), ...(accept ? { accept } : {}) }); }
  create<T>(path: string, body: unknown, query?: Query): Promise<T> { return this.request<T>('POST', path, { body, ...(query ? { query } : {}) }); }
  update<T>(path: string, body: unknown): Promise<T> { return this.request<T>('PUT', path, { body }); }
  delete<T>(path: string, query?: Query): Promise<T> { return this.request<T>('DELETE', path, query ? { query } : {}); }
  mergePatch<T>(path: string, patch: unknown, fieldManager?: string): Promise<T> {
    return this.request<T>('PATCH', path, { body: patch, contentType: 'application/merge-patch+json', ...(fieldManager ? { query: { fieldManager } } : {}) });
  }
  jsonPatch<T>(path: string, ops: unknown[], fieldManager?: string): Promise<T> {
    return this.request<T>('PATCH', path, { body: ops, contentType: 'application/json-patch+json', ...(fieldManager ? { query: { fieldManager } } : {}) });
  }
  /** Server-side apply: we own exactly the fields in `obj`; force takes them from other managers. */
  apply<T>(path: string, obj: unknown, fieldManager: string, force = true): Promise<T> {
    return this.request<T>('PATCH', path, { body: obj, contentType: 'application/apply-patch+yaml', query: { fieldManager, force } });
  }

  /** Stream a watch; resolves when the server ends it, rejects on HTTP errors (410 → KubeApiError). */
  async watch<T>(path: string, query: Query, onEvent: (e: WatchEvent<T>) => void, signal: AbortSignal, accept?: string): Promise<void> {
    const res = await this.#send('GET', path, { ...query, watch: true }, undefined, undefined, signal, accept);
    const status = res.statusCode ?? 0;
    if (status !== 200) {
      const chunks: Buffer[] = [];
      for await (const c of res) chunks.push(c as Buffer);
      let reason = 'Unknown'; let message = '';
      try { const s = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { reason?: string; message?: string }; reason = s.reason ?? reason; message = s.message ?? ''; } catch { /* not JSON */ }
      throw new KubeApiError(status, reason, message);
    }
    const lines = createInterface({ input: res, crlfDelay: Infinity });
    // readline does not end when its input is destroyed, so close it too.
    const onAbort = (): void => { lines.close(); res.destroy(); };
    if (signal.aborted) onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    res.on('close', () => lines.close());
    // An error thrown by onEvent (e.g. the informer's "410 Gone, relist") ends the watch and
    // reaches the caller unchanged; stream errors become KubeUnavailableError.
    let handlerError: { e: unknown } | undefined;
    try {
      for await (const line of lines) {
        if (line.trim() === '') continue;
        try { onEvent(JSON.parse(line) as WatchEvent<T>); } catch (e) { handlerError = { e }; break; }
      }
    } catch (e) {
      if (!signal.aborted) throw new KubeUnavailableError(`watch ${path}: ${(e as Error).message}`, e);
    } finally {
      signal.removeEventListener('abort', onAbort);
      res.destroy();
    }
    if (handlerError) throw handlerError.e;
  }
}

/** A response's body as text. Events, not `for await`: the async iterator costs more than the
 * read itself for the small bodies of status writes, thousands a minute in the signer. */
function readBody(res: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    let ended = false;
    res.on('end', () => { ended = true; resolve(chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks).toString('utf8')); });
    res.on('error', (e) => reject(new KubeUnavailableError(`response body: ${e.message}`, e)));
    // A connection lost mid-body: as `for await` did, a failure, never a truncated body.
    res.on('close', () => { if (!ended) reject(new KubeUnavailableError('the response ended before its body', undefined)); });
  });
}

/**
 * Accept headers for metadata-only reads (PartialObjectMetadata): labels and names without specs
 * or statuses, for caches that only select by label (the apiserver's own projection).
 */
export const METADATA_LIST_ACCEPT = 'application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json';
export const METADATA_ACCEPT = 'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json';

/** "plural[/subresource]" of an API path (resourcePath's inverse, namespace and name dropped); other paths as they are. */
export function resourceOf(path: string): string {
  const p = path.split('/').filter((x) => x !== '');
  const rest = p[0] === 'api' ? p.slice(2) : p[0] === 'apis' ? p.slice(3) : undefined;
  if (!rest) return path;
  const r = rest[0] === 'namespaces' && rest.length > 2 && rest[2] !== 'status' && rest[2] !== 'finalize' ? rest.slice(2) : rest;
  return r.length >= 3 ? `${r[0]}/${r[2]}` : (r[0] ?? path);
}

/** Collection or object path for a resource. */
export function resourcePath(r: { group: string; version: string; plural: string }, opts: { namespace?: string; name?: string; sub?: string } = {}): string {
  const base = r.group === '' ? `/api/${r.version}` : `/apis/${r.group}/${r.version}`;
  const ns = opts.namespace ? `/namespaces/${opts.namespace}` : '';
  const name = opts.name ? `/${encodeURIComponent(opts.name)}` : '';
  const sub = opts.sub && opts.name ? `/${opts.sub}` : '';
  return `${base}${ns}/${r.plural}${name}${sub}`;
}

export const RESOURCES = {
  nodes: { group: '', version: 'v1', plural: 'nodes' },
  secrets: { group: '', version: 'v1', plural: 'secrets' },
  configMaps: { group: '', version: 'v1', plural: 'configmaps' },
  namespaces: { group: '', version: 'v1', plural: 'namespaces' },
  coreEvents: { group: '', version: 'v1', plural: 'events' },
  events: { group: 'events.k8s.io', version: 'v1', plural: 'events' },
  leases: { group: 'coordination.k8s.io', version: 'v1', plural: 'leases' },
  csrs: { group: 'certificates.k8s.io', version: 'v1', plural: 'certificatesigningrequests' },
  certificateRequests: { group: 'cert-manager.io', version: 'v1', plural: 'certificaterequests' },
  ipsecMeshes: { group: 'kipsec.io', version: 'v1alpha1', plural: 'ipsecmeshes' },
  ipsecTunnels: { group: 'kipsec.io', version: 'v1alpha1', plural: 'ipsectunnels' },
  ipsecNodes: { group: 'kipsec.io', version: 'v1alpha1', plural: 'ipsecnodes' },
} as const;
export type ResourceRef = (typeof RESOURCES)[keyof typeof RESOURCES];
