// The operator process: informers always (a standby has warm caches), controllers and the signer
// only while holding the leader Lease. stop() is the SIGTERM path: stop taking work, let in-flight
// reconciles finish, release the lease so a standby takes over at once.
import type { Clock } from '../common/time.js';
import { errorMessage } from '../common/errors.js';
import type { KubeClient } from '../api/kube/client.js';
import { RESOURCES, resourcePath } from '../api/kube/client.js';
import { CA_SECRET, LEADER_LEASE, SIGNER_NAME, TRUST_BUNDLE_CONFIGMAP, agentUsername } from '../api/names.js';
import type { IPsecMesh, IPsecNode, IPsecTunnel } from '../api/types.js';
import { CaStore } from './ca-store.js';
import type { Caches, Ctx } from './context.js';
import { csrForCertificateRequest, forgetParsedCsr, parsedCsr, reconcileCsr, DEFAULT_NODE_CERT_LIFETIME_MS, certLifetimeMs } from './csr-controller.js';
import { EventRecorder } from './events.js';
import { isApproved, isFailed } from './csr-policy.js';
import { IdentityIndex } from './identity-index.js';
import { Informer, kubeListWatcher, type KubeObject } from '../api/kube/informer.js';
import type { CertificateRequest, ConfigMap, Csr, KNode, Secret } from './kinds.js';
import { DEFAULT_LEADER_TIMING, LeaderElector } from './leader.js';
import type { Logger } from './logger.js';
import { OperatorMetrics, startHealthServer } from './metrics.js';
import { WorkQueue } from './queue.js';
import { runController } from './controller.js';
import { fencedKube } from './fence.js';
import { collectIpsecNode } from './node-gc.js';
import { dropManagedFields, trimCsr, trimNode, trimNodeLease } from './trim.js';
import { NODE_LEASE_LABEL, isHeardStale, lastHeard, nodeOfLease, type NodeLease } from '../api/node-lease.js';
import { reconcileCa, reconcileIpsecNode, reconcileMesh, reconcileTunnel } from './resource-controllers.js';

export interface OperatorOptions {
  readonly kube: KubeClient;
  readonly namespace: string;
  readonly identity: string;
  readonly clock: Clock;
  readonly log: Logger;
  readonly leaseDurationMs?: number;
  readonly renewDeadlineMs?: number;
  readonly retryPeriodMs?: number;
  /** Workers of the CSR and IPsecNode controllers (default DEFAULT_WORKERS). */
  readonly workers?: number;
  /** Serve /metrics /healthz /readyz here (0 = any free port); absent = no server. */
  readonly healthPort?: number;
  readonly healthHost?: string;
  readonly certLifetimeMs?: number;
  /** Watch cert-manager CertificateRequests (needs its CRDs). */
  readonly certManager?: boolean;
  readonly defaultMetrics?: boolean;
  /** Only sign CSRs with these labels (label selector). Shards signers; tests use it for isolation. */
  readonly csrLabelSelector?: string;
  /** The IPsecMesh that configures identity (default: "default", else the oldest). */
  readonly meshName?: string;
}

/**
 * A CSR or IPsecNode reconcile is mostly waiting for one apiserver write, so the signer's rate is
 * workers ÷ (2 writes × write latency): at 5,000 nodes 8 workers signed in ~24 s and 24 in ~14 s
 * (bench/operator-scale). Keys are never processed twice at once whatever the count (queue.ts).
 */
export const DEFAULT_WORKERS = 16;

type ControllerName = 'csr' | 'ipsecnode' | 'ipsecnode-gc' | 'mesh' | 'tunnel' | 'ca';

export class Operator {
  readonly metrics: OperatorMetrics;
  readonly ctx: Ctx;
  readonly #o: OperatorOptions;
  readonly #leader: LeaderElector;
  readonly #queues: Record<ControllerName, WorkQueue<string>>;
  readonly #informers: Informer<KubeObject>[];
  #workers: Promise<void>[] = [];
  #running: Promise<void>[] = [];
  #healthServer: import('node:http').Server | undefined;
  healthPort: number | undefined;
  #stopped = false;

  constructor(o: OperatorOptions) {
    this.#o = o;
    this.metrics = new OperatorMetrics(o.defaultMetrics ?? false);
    const { kube, clock, log, namespace } = o;
    const onErr = (what: string) => (e: unknown): void => log.warn({ informer: what, err: errorMessage(e) }, 'informer list/watch failed; retrying');
    // Every cache drops managedFields; Nodes keep only what the operator reads (trim.ts). Nodes and
    // CSRs are listed 100 at a time: a page of 500 kubelet Nodes is ~7 MB of JSON, ~30 MB once
    // parsed, all garbage after the trim but all at once (500 CSRs with their managedFields ~2 MB),
    // and the heap V8 grows for such a page it keeps.
    const inf = <T extends KubeObject>(what: string, path: string, sel: { fieldSelector?: string; labelSelector?: string } = {}, transform: (o: T) => T = dropManagedFields, pageSize = 500): Informer<T> =>
      new Informer<T>(kubeListWatcher<T>(kube, path, sel, pageSize), clock, onErr(what), { transform });
    const caches: Caches = {
      nodes: inf<KNode>('nodes', resourcePath(RESOURCES.nodes), {}, trimNode, 100),
      csrs: inf<Csr>('csrs', resourcePath(RESOURCES.csrs), { fieldSelector: `spec.signerName=${SIGNER_NAME}`, ...(o.csrLabelSelector ? { labelSelector: o.csrLabelSelector } : {}) }, trimCsr, 100),
      ipsecNodes: inf<IPsecNode>('ipsecnodes', resourcePath(RESOURCES.ipsecNodes)),
      meshes: inf<IPsecMesh>('ipsecmeshes', resourcePath(RESOURCES.ipsecMeshes)),
      tunnels: inf<IPsecTunnel>('ipsectunnels', resourcePath(RESOURCES.ipsecTunnels)),
      caSecret: inf<Secret>('ca-secret', resourcePath(RESOURCES.secrets, { namespace }), { fieldSelector: `metadata.name=${CA_SECRET}` }),
      bundle: inf<ConfigMap>('trust-bundle', resourcePath(RESOURCES.configMaps, { namespace }), { fieldSelector: `metadata.name=${TRUST_BUNDLE_CONFIGMAP}` }),
      certificateRequests: o.certManager ? inf<CertificateRequest>('certificaterequests', resourcePath(RESOURCES.certificateRequests)) : undefined,
      nodeLeases: inf<NodeLease>('node-leases', resourcePath(RESOURCES.leases, { namespace }), { labelSelector: NODE_LEASE_LABEL }, trimNodeLease),
    };
    this.#informers = Object.values(caches).filter((x): x is Informer<KubeObject> => x !== undefined);
    let ctxRef: Ctx | undefined;
    const identities = new IdentityIndex(() => (ctxRef ? certLifetimeMs(ctxRef) : o.certLifetimeMs ?? DEFAULT_NODE_CERT_LIFETIME_MS), parsedCsr);
    // Controllers write only while this operator holds the lease, checked at each write (fence.ts).
    const fenced = fencedKube(kube, () => this.#leader.isLeader);
    this.ctx = ctxRef = {
      kube: fenced, namespace, clock, log, metrics: this.metrics, caches, identities,
      events: new EventRecorder(fenced, clock, log, o.identity),
      ca: new CaStore(fenced, namespace, clock, log),
      agentUsername: agentUsername(namespace),
      defaultCertLifetimeMs: o.certLifetimeMs ?? DEFAULT_NODE_CERT_LIFETIME_MS,
      ...(o.meshName !== undefined ? { meshName: o.meshName } : {}),
      meshMemory: new Map(),
      csrsIssued: new Set(),
      identityWritten: new Map(),
    };
    this.#queues = { csr: new WorkQueue(clock), ipsecnode: new WorkQueue(clock), 'ipsecnode-gc': new WorkQueue(clock), mesh: new WorkQueue(clock), tunnel: new WorkQueue(clock), ca: new WorkQueue(clock) };
    this.#wire(caches);
    this.#leader = new LeaderElector(kube, {
      namespace, name: LEADER_LEASE, identity: o.identity,
      leaseDurationMs: o.leaseDurationMs ?? DEFAULT_LEADER_TIMING.leaseDurationMs,
      renewDeadlineMs: o.renewDeadlineMs ?? DEFAULT_LEADER_TIMING.renewDeadlineMs,
      retryPeriodMs: o.retryPeriodMs ?? DEFAULT_LEADER_TIMING.retryPeriodMs,
    }, clock, log, {
      onStartedLeading: () => { this.metrics.isLeader.set(1); this.#lead(); },
      onStoppedLeading: () => { this.metrics.isLeader.set(0); this.#stopLeading(); },
      onNewLeader: (id) => log.info({ leader: id }, 'another operator leads'),
    });
  }

  get isLeader(): boolean { return this.#leader.isLeader; }
  get caches(): Caches { return this.ctx.caches; }

  /** Event handlers only enqueue keys; all work happens in the queues' workers. */
  #wire(c: Caches): void {
    const q = this.#queues;
    const now = (): number => this.#o.clock.now();
    // Mesh status aggregates every node: batch bursts of node changes into one reconcile per second,
    // or per ten times the last one's cost when that is more (context.ts, MeshMemory.costMs).
    const meshesSoon = (): void => { for (const m of c.meshes.list()) q.mesh.addAfter(m.metadata.name, meshBatchMs(this.ctx.meshMemory.get(m.metadata.name)?.costMs)); };
    // A CA rotation moves on when the nodes report what they trust and present (ca-rotation.ts).
    const caSoon = (): void => { if (this.ctx.ca.state?.rotation.phase !== 'Idle') q.ca.addAfter('ca', 1000); };
    c.csrs.addHandlers({
      onAdd: (x) => { this.ctx.identities.observe(x, now()); q.csr.add(x.metadata.name); },
      onUpdate: (_o, x) => {
        this.ctx.identities.observe(x, now());
        // Approved, not signed: signing goes ahead of the requests still waiting for a decision, so
        // certificates flow from the start of a join rather than after every approval.
        if (isApproved(x) && !isFailed(x) && !x.status?.certificate) q.csr.addFront(x.metadata.name); else q.csr.add(x.metadata.name);
        const n = nodeOfCsr(x); if (n) q.ipsecnode.add(n);
      },
      onDelete: (x) => { this.ctx.identities.forget(x.metadata.name); forgetParsedCsr(x); if (x.metadata.uid) this.ctx.csrsIssued.delete(x.metadata.uid); },
    });
    // A Node deleted: its IPsecNode goes too (node-gc.ts); so does an IPsecNode that arrives without one.
    c.nodes.addHandlers({ onAdd: (x) => q.ipsecnode.add(x.metadata.name), onDelete: (x) => { q.ipsecnode.add(x.metadata.name); q['ipsecnode-gc'].add(x.metadata.name); meshesSoon(); caSoon(); } });
    c.ipsecNodes.addHandlers({
      onAdd: (x) => { q.ipsecnode.add(x.metadata.name); q['ipsecnode-gc'].add(x.metadata.name); meshesSoon(); caSoon(); tunnelsOf(x).forEach((t) => q.tunnel.add(t)); },
      onUpdate: (o, x) => {
        q.ipsecnode.add(x.metadata.name); meshesSoon(); new Set([...tunnelsOf(o), ...tunnelsOf(x)]).forEach((t) => q.tunnel.add(t));
        if (JSON.stringify(o.spec.identity) !== JSON.stringify(x.spec.identity)) caSoon();
      },
      onDelete: (x) => { meshesSoon(); caSoon(); tunnelsOf(x).forEach((t) => q.tunnel.add(t)); },
    });
    // A spec change (new generation) may switch the identity source: revisit unsigned CSRs. Our own
    // status writes do not change the generation and must not fan out over every CSR.
    c.meshes.addHandlers({ onAdd: (x) => q.mesh.add(x.metadata.name), onUpdate: (o, x) => {
      q.mesh.add(x.metadata.name);
      if (o.metadata.generation !== x.metadata.generation) for (const cs of c.csrs.list()) if (!cs.status?.certificate) q.csr.add(cs.metadata.name);
    } });
    // A renewal changes nothing the mesh shows unless it brings a stale node back (going stale is
    // found by the mesh reconcile's own timer, nextStaleCheckMs): thousands of renewals a minute
    // must not each start an O(n²) pass.
    const staleNow = (l: NodeLease | undefined): boolean => {
      const node = l && nodeOfLease(l);
      return node !== undefined && isHeardStale(lastHeard(c.ipsecNodes.get(node)?.status, l), now());
    };
    c.nodeLeases.addHandlers({
      onAdd: () => meshesSoon(), onDelete: () => meshesSoon(),
      onUpdate: (o, x) => { if (staleNow(o) !== staleNow(x) || nodeOfLease(o) !== nodeOfLease(x)) meshesSoon(); },
    });
    c.tunnels.addHandlers({ onAdd: (x) => q.tunnel.add(x.metadata.name), onUpdate: (_o, x) => q.tunnel.add(x.metadata.name) });
    c.caSecret.addHandlers({ onAdd: () => q.ca.add('ca'), onUpdate: () => { q.ca.add('ca'); meshesSoon(); }, onDelete: () => q.ca.add('ca') });
    c.bundle.addHandlers({ onUpdate: () => q.ca.add('ca'), onDelete: () => q.ca.add('ca') });
    c.certificateRequests?.addHandlers({ onAdd: (x) => { const k = csrForCertificateRequest(x); if (k) q.csr.add(k); }, onUpdate: (_o, x) => { const k = csrForCertificateRequest(x); if (k) q.csr.add(k); } });
  }

  /** Start informers, leader election and the health server; resolves once caches synced. */
  async start(): Promise<void> {
    for (const i of this.#informers) this.#running.push(i.run());
    await Promise.all(this.#informers.map((i) => i.waitForSync()));
    this.#o.log.info({ identity: this.#o.identity, nodes: this.ctx.caches.nodes.size, csrs: this.ctx.caches.csrs.size }, 'caches synced');
    if (this.#o.healthPort !== undefined) {
      const h = await startHealthServer(this.metrics, { healthy: () => !this.#stopped, ready: () => this.#informers.every((i) => i.hasSynced) }, this.#o.healthPort, this.#o.healthHost ?? '0.0.0.0');
      this.#healthServer = h.server; this.healthPort = h.port;
    }
    this.#running.push(this.#leader.run());
  }

  #lead(): void {
    const q = this.#queues;
    // Re-elected after losing the lease: fresh queues. Handlers hold the same `q` object, so they
    // enqueue into the new ones.
    for (const name of Object.keys(q) as ControllerName[]) if (q[name].shuttingDown) q[name] = new WorkQueue(this.#o.clock);
    const c = this.ctx.caches;
    // What a previous term remembered of the meshes may be out of date: start again from their status.
    this.ctx.meshMemory.clear();
    q.ca.add('ca');
    for (const x of c.csrs.list()) q.csr.add(x.metadata.name);
    for (const x of c.ipsecNodes.list()) { q.ipsecnode.add(x.metadata.name); q['ipsecnode-gc'].add(x.metadata.name); }
    for (const x of c.meshes.list()) q.mesh.add(x.metadata.name);
    for (const x of c.tunnels.list()) q.tunnel.add(x.metadata.name);
    const workers = this.#o.workers ?? DEFAULT_WORKERS;
    const deps = { log: this.#o.log, metrics: this.metrics, isLeader: () => this.#leader.isLeader };
    const run = (name: ControllerName, n: number, fn: (k: string) => Promise<number | undefined>): Promise<void> => runController(name, q[name], n, fn, deps);
    // The CA goes first: signing waits for it (reconcileCsr requeues until it is loaded).
    this.#workers = [
      run('ca', 1, () => reconcileCa(this.ctx)),
      run('csr', workers, (k) => reconcileCsr(this.ctx, k)),
      run('ipsecnode', workers, (k) => reconcileIpsecNode(this.ctx, k)),
      run('ipsecnode-gc', 1, (k) => collectIpsecNode(this.ctx, k)),
      run('mesh', 1, (k) => reconcileMesh(this.ctx, k)),
      run('tunnel', 2, (k) => reconcileTunnel(this.ctx, k)),
    ];
  }

  #stopLeading(): void { for (const q of Object.values(this.#queues)) q.shutdown(); }

  /** Graceful shutdown (SIGTERM): finish in-flight work, release the lease, stop watching. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#stopLeading();
    await Promise.allSettled(this.#workers);
    await this.#leader.stop();
    for (const i of this.#informers) i.stop();
    await Promise.allSettled(this.#running);
    await new Promise<void>((r) => (this.#healthServer ? this.#healthServer.close(() => r()) : r()));
    this.#o.kube.close();
    this.#o.log.info({ identity: this.#o.identity }, 'operator stopped');
  }

  /** A crash, for tests: everything stops at once and the lease is NOT released. */
  abandon(): void {
    this.#stopped = true;
    this.#stopLeading();
    void this.#leader.abandon();
    for (const i of this.#informers) i.stop();
    this.#healthServer?.close();
    this.#o.kube.close();
  }
}

/** How long node changes are batched before a mesh reconcile, given the last one's cost. */
export function meshBatchMs(lastCostMs: number | undefined): number { return Math.max(1000, Math.ceil(10 * (lastCostMs ?? 0))); }

function nodeOfCsr(c: Csr): string | undefined { return c.metadata.labels?.['kipsec.io/node']; }
function tunnelsOf(n: IPsecNode): string[] { return (n.status?.tunnels ?? []).map((t) => t['name']).filter((x): x is string => typeof x === 'string'); }
