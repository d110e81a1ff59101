// Cluster mode: `kipsec agent --node-name NAME`. Joins the agent core (daemon.ts) to the cluster:
//   1. watches (mesh, IPsecNodes, Node labels, its own Node, trust bundle) and the metrics server;
//   2. its identity: key on the node, certificate through a CSR (identity.ts);
//   3. once the watches have listed everything (nothing is removed on a partial view): the desired
//      peers (desired.ts, peers.ts), strict-mode blocks and the engine (agent.start, no initiation yet);
//   4. its IPsecNode spec — only now, with key, certificate and policies in place, because peers
//      act on it at once — then initiation, and the status loop (publisher.ts);
//   5. every change in the cluster recomputes the peers (coalesced) and applies the difference.
// SIGTERM leaves the kernel state alone while the mesh still selects the node (a restart or an
// upgrade must not drop a packet; the next agent resumes from the checkpoints); when the mesh is
// gone or no longer selects the node, everything of ours leaves the kernel.
import { errorMessage } from '../../common/errors.js';
import type { Clock, TimerHandle } from '../../common/time.js';
import type { KubeClient } from '../../api/kube/client.js';
import type { IPsecNodeSpec, IPsecNodeStatus } from '../../api/types.js';
import type { LinkInfo } from '../../xfrm/index.js';
import type { Agent, ClusterHooks } from '../daemon.js';
import type { RenewResult } from '../control/protocol.js';
import type { Logger } from '../log.js';
import type { AgentMetrics } from '../metrics.js';
import { readXfrmStat } from '../metrics.js';
import { peerIsUp, type ClusterInfo, type TunnelStatus } from '../status.js';
import { pemBlocks } from '../peers.js';
import type { TunnelGateways } from '../gateway/gateways.js';
import { CaFollower, caView, type CaView } from './ca-follow.js';
import type { MeshRoutePort } from '../userspace/mesh-routes.js';
import type { GatewayRoutePort } from '../gateway/node-routes.js';
import { chooseNodeDatapath, type DatapathChoice, type DatapathFlag, type KernelEsp } from './datapath.js';
import { computeDesired, trafficOf, type Desired } from './desired.js';
import { activeMeshOf, resolveMesh, type MeshSettings } from './settings.js';
import type { ResolvedTraffic } from './traffic.js';
import { internalIps, type MeshWatch } from './watch.js';
import { caFields, localAddresses, mtuOf } from './host.js';
import type { NodeIdentity } from './identity.js';
import { clusterInfoOf, computeNodeStatus } from './node-status.js';
import type { NodePublisher } from './publisher.js';
import { reauthenticateAll } from './reauth.js';
import { peersUseOurSpec, Reconnector } from './reconnect.js';

export interface NodeAgentParts {
  readonly node: string;
  readonly meshName?: string;
  readonly nodeIp?: string;
  readonly ikePort: number;
  readonly nattPort: number;
  readonly kube: KubeClient;
  readonly watch: MeshWatch;
  readonly identity: (nodeIps: readonly string[]) => NodeIdentity;
  /** Builds the agent core on the data path chosen at start (datapath.ts). */
  readonly agent: (cluster: ClusterHooks, datapath: DatapathChoice) => Agent;
  /** --datapath, the kernel ESP probe, and the userspace TUN routes; absent: kernel, as before. */
  readonly datapath?: { readonly flag: DatapathFlag; readonly kernelEsp: () => Promise<KernelEsp>; readonly routes: (d: DatapathChoice) => MeshRoutePort | undefined };
  readonly publisher: NodePublisher;
  readonly metrics: AgentMetrics;
  readonly links: () => Promise<LinkInfo[]>;
  readonly clock: Clock;
  readonly log: Logger;
  readonly statusIntervalMs?: number;
  readonly trafficRecheckMs?: number;
  /** IPsecTunnels this node is a gateway of (src/agent/gateway): the active ones run in this engine. */
  readonly gateways?: TunnelGateways;
  /** Table 220: tunnels' remote subnets via their active gateway's address (gateway/node-routes.ts). */
  readonly gatewayRoutes?: GatewayRoutePort;
}

type Phase =
  | { readonly tag: 'waiting'; readonly why: string }
  | { readonly tag: 'running'; readonly agent: Agent; readonly identity: NodeIdentity; readonly address: string }
  | { readonly tag: 'stopped' };

const sleep = (clock: Clock, ms: number): Promise<void> => new Promise((r) => clock.setTimer(ms, r));

export class NodeAgent {
  readonly #p: NodeAgentParts;
  #phase: Phase = { tag: 'waiting', why: 'starting' };
  #desired: Desired | undefined;
  #links: LinkInfo[] = [];
  #recompute: 'idle' | 'running' | 'again' = 'idle';
  #debounce: TimerHandle | undefined;
  #statusTimer: NodeJS.Timeout | undefined;
  #trafficTimer: NodeJS.Timeout | undefined;
  #lastStatus: TunnelStatus[] = [];
  /** Re-authentication of the IKE SAs after a certificate change (reauth.ts). */
  #reauth: 'idle' | 'pending' | 'running' | 'pending-again' = 'idle';
  /** Our Node object was deleted (last time we looked): for logging the change once. */
  #nodeGone = false;
  /** Statuses older than the operator's trust horizon say nothing; look twice before acting. */
  readonly #reconnect = new Reconnector({ confirmMs: 4_000, retryMs: 20_000, staleMs: 180_000 });
  /** Our last Ready condition: its lastTransitionTime must not depend on how fresh the watch cache is. */
  #lastConditions: IPsecNodeStatus['conditions'];
  /** Renews the certificate when the cluster CA that signs changes (a CA rotation). */
  #caFollow: CaFollower | undefined;
  #caView: { readonly key: string; readonly view: CaView } | undefined;
  #datapath: DatapathChoice = { datapath: 'kernel', reason: 'the kernel data path (no choice offered)' };
  #esp: KernelEsp = { ok: true };
  /** Userspace: every known peer's pod CIDRs into the TUN device (strict mode there). */
  #routes: MeshRoutePort | undefined;

  constructor(p: NodeAgentParts) { this.#p = p; }

  get phase(): Phase { return this.#phase; }

  /** /readyz: the identity is valid and the node's policies are in the kernel. */
  ready(): { ok: boolean; why: string } {
    const ph = this.#phase;
    if (ph.tag !== 'running') return { ok: false, why: ph.tag === 'waiting' ? ph.why : 'stopped' };
    if (!ph.identity.valid) return { ok: false, why: 'the node certificate is not valid (expired, or not issued yet)' };
    return { ok: true, why: this.#desired?.inactive ? `idle: ${this.#desired.inactive.message}` : 'identity valid, policies in' };
  }

  #isStopped(): boolean { return this.#phase.tag === 'stopped'; }

  #wait(why: string): void {
    if (this.#phase.tag === 'waiting' && this.#phase.why === why) return;
    this.#phase = { tag: 'waiting', why };
    this.#p.log.info({ node: this.#p.node }, `waiting: ${why}`);
  }

  async start(): Promise<void> {
    const { watch, log, clock, node } = this.#p;
    watch.start();
    this.#p.gateways?.start();
    this.#wait('listing the cluster (IPsecMesh, IPsecNodes, Nodes, trust bundle)');
    await watch.waitForSync();
    // Our Node: its address and pod CIDRs. Without it there is nothing to be.
    let address: string | undefined;
    for (let i = 0; ; i++) {
      if (this.#isStopped()) return;
      const n = watch.node(node);
      address = this.#p.nodeIp ?? internalIps(n)[0];
      if (n && address) break;
      this.#wait(n ? `Node ${node} reports no InternalIP; pass --node-ip` : `no Node named ${node} (check --node-name)`);
      await sleep(clock, Math.min(10_000, 500 * 2 ** Math.min(i, 5)));
    }
    if (!localAddresses().includes(address)) log.warn({ address }, 'the node address is not configured on any interface of this host: binding the IKE sockets will fail');
    this.#links = await this.#p.links().catch(() => []);
    const identity = this.#p.identity([address]);
    this.#caFollow = new CaFollower({ renew: () => identity.renew(), recheck: () => this.#schedule(), clock, log });
    // A new certificate: publish it, give the engine the new credentials, then re-authenticate.
    identity.onChange(() => { this.#reauth = this.#reauth === 'running' || this.#reauth === 'pending-again' ? 'pending-again' : 'pending'; void this.#publishSpec(); this.#schedule(); });
    for (let i = 0; ; i++) {
      if (this.#isStopped()) return;
      this.#wait('waiting for the node certificate (a CSR to the kipsec operator\'s signer; is the operator running?)');
      try { await identity.start(); break; } catch (e) {
        log.warn({ err: errorMessage(e), attempt: i + 1 }, 'no node certificate yet; retrying');
        await sleep(clock, Math.min(60_000, 2_000 * 2 ** Math.min(i, 5)));
      }
    }
    await this.#chooseDatapath();
    let first = this.#compute(address, identity);
    for (let i = 0; !first.snapshot.synced; i++) {
      if (this.#isStopped()) return;
      this.#wait('waiting for the trust bundle (ConfigMap kipsec-trust-bundle, published by the operator)');
      await sleep(clock, Math.min(10_000, 500 * 2 ** Math.min(i, 5)));
      first = this.#compute(address, identity);
    }
    const agent: Agent = this.#p.agent({ info: () => this.#clusterInfo(agent), renewIdentity: () => this.#renew(identity) }, this.#datapath);
    await this.#routes?.add(first.routes, first.mesh?.strict ?? false);
    const engineStartMs = clock.now();
    await agent.start(first.snapshot, { initiate: false });
    await this.#routes?.sync(first.routes, first.mesh?.strict ?? false);
    await this.#p.gatewayRoutes?.sync(first.gatewayRoutes);
    if (this.#isStopped()) { await agent.abandon(); return; }
    this.#desired = first;
    this.#phase = { tag: 'running', agent, identity, address };
    // What the peers use for us: the spec our previous process wrote, if any.
    const known = watch.ipsecNodes.get(node)?.spec;
    for (let i = 0; ; i++) {
      try { await this.#publishSpec(); break; } catch (e) {
        if (this.#isStopped()) return;
        log.warn({ err: errorMessage(e), attempt: i + 1 }, 'cannot publish the IPsecNode; retrying');
        await sleep(clock, Math.min(30_000, 1_000 * 2 ** Math.min(i, 5)));
      }
    }
    if (peersUseOurSpec(known, this.#specNow())) {
      this.#reconnect.freshStart(engineStartMs);
      log.info({ node }, 'the peers already use this IPsecNode spec: a peer still holding an IKE SA with this node is connected to at the first look');
    }
    agent.startInitiating();
    agent.book.observe(this.#p.metrics);
    watch.onChange(() => this.#schedule());
    this.#p.gateways?.onChange(() => this.#schedule());
    this.#statusTimer = setInterval(() => { void this.#statusTick(); }, this.#p.statusIntervalMs ?? 5_000);
    this.#trafficTimer = setInterval(() => { void this.#recheckLinks(); }, this.#p.trafficRecheckMs ?? 30_000);
    this.#schedule(); // anything that changed while we started
    void this.#statusTick();
    log.info({ node, address, mesh: first.mesh?.name ?? null, inactive: first.inactive?.message, peers: first.snapshot.peers.length, skipped: first.peers.skipped.length, traffic: first.traffic.message }, 'cluster agent running');
  }

  /** Once, before the first peers: flag, mesh and kernel decide (datapath.ts); logged with the reason. */
  async #chooseDatapath(): Promise<void> {
    const dp = this.#p.datapath;
    if (!dp) return;
    this.#esp = await dp.kernelEsp();
    const chosen = activeMeshOf(this.#p.watch.meshes.list(), this.#p.meshName);
    this.#datapath = chooseNodeDatapath(dp.flag, chosen ? { name: chosen.metadata.name, datapath: resolveMesh(chosen).settings.datapath } : undefined, this.#esp);
    this.#routes = dp.routes(this.#datapath);
    this.#p.log.info({ datapath: this.#datapath.datapath, reason: this.#datapath.reason }, 'datapath chosen');
  }

  #traffic(mesh: MeshSettings | undefined): ResolvedTraffic { return trafficOf(mesh, this.#links, this.#datapath); }

  #compute(address: string, identity: NodeIdentity): Desired {
    const p = this.#p;
    return computeDesired({ node: p.node, meshName: p.meshName, watch: p.watch, gateways: p.gateways, flag: p.datapath?.flag ?? 'kernel', datapath: this.#datapath, esp: this.#esp, links: this.#links, previous: this.#desired }, address, identity);
  }

  /** Coalesce bursts of watch events into one recompute. */
  #schedule(): void {
    if (this.#phase.tag !== 'running' || this.#debounce) return;
    this.#debounce = this.#p.clock.setTimer(200, () => { this.#debounce = undefined; void this.#run(); });
  }

  async #run(): Promise<void> {
    if (this.#recompute !== 'idle') { this.#recompute = 'again'; return; }
    this.#recompute = 'running';
    try {
      do {
        const ph = this.#phase;
        if (ph.tag !== 'running') break;
        const d = this.#compute(ph.address, ph.identity);
        // Userspace strict mode: new peers' blackholes before the engine knows them, old ones' after their SAs went.
        const strict = d.mesh?.strict ?? false;
        await this.#routes?.add(d.routes, strict);
        const r = await ph.agent.apply(d.snapshot);
        if (d.snapshot.synced) await this.#routes?.sync(d.routes, strict);
        if (d.snapshot.synced) await this.#p.gatewayRoutes?.sync(d.gatewayRoutes);
        this.#desired = d;
        if (r.added.length + r.removed.length + r.changed.length > 0 || r.refused.size > 0)
          this.#p.log.info({ added: r.added, removed: r.removed, changed: r.changed, refused: Object.fromEntries(r.refused) }, 'mesh peers changed');
        await this.#publishSpec().catch((e: unknown) => this.#p.log.warn({ err: errorMessage(e) }, 'cannot publish the IPsecNode; will retry'));
        this.#caFollow?.check(this.#p.watch.signingCa(), this.#currentCaView());
      } while (this.#takeAgain());
      this.#startReauth();
    } catch (e) {
      this.#p.log.error({ err: errorMessage(e) }, 'applying mesh changes failed; will retry');
      this.#recompute = 'idle';
      this.#p.clock.setTimer(5_000, () => this.#schedule());
      return;
    }
    this.#recompute = 'idle';
  }

  /** After a recompute that carried a new certificate into the peer configs. */
  #startReauth(): void {
    const ph = this.#phase;
    if (this.#reauth !== 'pending' || ph.tag !== 'running') return;
    this.#reauth = 'running';
    void reauthenticateAll(ph.agent, { clock: this.#p.clock, log: this.#p.log, spacingMs: 1_000, stopped: () => this.#isStopped(), self: this.#p.node, sinceMs: this.#p.clock.now() })
      .catch((e: unknown) => this.#p.log.warn({ err: errorMessage(e) }, 're-authentication after the certificate change failed'))
      .finally(() => {
        // Another certificate arrived meanwhile: once more.
        const again = this.#reauth === 'pending-again';
        this.#reauth = again ? 'pending' : 'idle';
        if (again) this.#schedule();
      });
  }

  /** What the engine trusts (the last applied bundle) and which of those CAs issued our certificate now. */
  #currentCaView(): CaView | undefined {
    const ph = this.#phase;
    const c = ph.tag === 'running' ? ph.identity.certificate : undefined;
    const cas = this.#desired?.cas;
    if (!c || !cas) return undefined;
    const key = `${c.fingerprint}/${cas.digest}`;
    if (this.#caView?.key !== key) {
      const der = pemBlocks(c.pem)[0];
      this.#caView = { key, view: der ? caView(der, cas.der) : { trusted: [], issuer: undefined } };
    }
    return this.#caView.view;
  }

  #takeAgain(): boolean { const again = this.#recompute === 'again'; this.#recompute = 'running'; return again; }

  /** Our IPsecNode spec as it stands (undefined before the engine runs with a certificate). */
  #specNow(): IPsecNodeSpec | undefined {
    const ph = this.#phase;
    if (ph.tag !== 'running') return undefined;
    const c = ph.identity.certificate;
    const d = this.#desired;
    if (!c || !d) return undefined;
    const t = d.traffic.traffic;
    return {
      endpoint: { address: ph.address, ikePort: this.#p.ikePort, nattPort: this.#p.nattPort },
      podCIDRs: [...d.podCIDRs],
      traffic: { mode: t.mode, ...(t.overlay ? { overlay: t.overlay } : {}), ...(d.mesh?.hostToHost ? { hostToHost: true } : {}) },
      identity: { certFingerprint: c.fingerprint, publicKeyFingerprint: c.publicKeyFingerprint, san: this.#p.node, notAfter: new Date(c.notAfterMs).toISOString().replace(/\.\d{3}Z$/, 'Z'), ...caFields(this.#currentCaView()) },
    };
  }

  async #publishSpec(): Promise<void> {
    const spec = this.#specNow();
    if (!spec) return;
    // Our Node is gone: the operator deletes IPsecNodes of deleted Nodes, and writing ours again
    // would fight it until this pod goes too. The peers have dropped us already.
    const nodeGone = this.#p.watch.synced && !this.#p.watch.nodeExists(this.#p.node);
    if (nodeGone !== this.#nodeGone) {
      this.#nodeGone = nodeGone;
      if (nodeGone) this.#p.log.warn({ node: this.#p.node }, 'our Node object is gone: the IPsecNode and its Lease are not written until it is back');
      this.#p.publisher.lease?.hold(nodeGone);
    }
    if (nodeGone) return;
    // Someone deleted our IPsecNode (or the cache has not seen our first write yet): write it again.
    if (!this.#p.watch.ipsecNodes.get(this.#p.node)) this.#p.publisher.forget();
    await this.#p.publisher.publishSpec(spec);
  }

  async #recheckLinks(): Promise<void> {
    const before = JSON.stringify(this.#desired?.traffic.traffic);
    this.#links = await this.#p.links().catch(() => this.#links);
    const ph = this.#phase;
    if (ph.tag !== 'running' || !this.#desired) return;
    const now = this.#traffic(this.#desired.mesh);
    if (JSON.stringify(now.traffic) !== before) { this.#p.log.info({ traffic: now.message }, 'traffic mode changed'); this.#schedule(); }
  }

  async #statusTick(): Promise<void> {
    const ph = this.#phase;
    const d = this.#desired;
    if (ph.tag !== 'running' || !d) return;
    try {
      const all = await ph.agent.peerStatuses();
      const peers = all.filter((p) => p.node !== undefined);
      this.#lastStatus = peers;
      for (const name of await this.#reconnect.lookWithLeases({ self: this.#p.node, ours: peers, peerNodes: this.#p.watch.ipsecNodes.list(), meshSize: peers.length + d.peers.skipped.length + 1, nowMs: this.#p.clock.now() }, this.#p.publisher.peerLeases)) {
        this.#p.log.info({ peer: name }, 'the peer still holds an IKE SA with this node, which holds none (its state was lost): connecting now so that the peer replaces it');
        ph.agent.initiate(name);
      }
      const xfrmErrors = await this.#peerMetrics(ph.agent, peers);
      this.#p.metrics.strictBlocks.set(ph.agent.strictBlocks);
      const c = ph.identity.certificate;
      if (c) this.#p.metrics.certNotAfter.set(c.notAfterMs / 1000);
      const status = computeNodeStatus({
        nowMs: this.#p.clock.now(), datapath: this.#datapath.datapath, offloads: ph.agent.espStatus()?.offloads, inactive: d.inactive, peers, skipped: d.peers.skipped, traffic: d.traffic, strict: d.mesh?.strict ?? false,
        certNotAfterMs: c?.notAfterMs, identityValid: ph.identity.valid, policiesIn: true, mtu: mtuOf(this.#links, ph.address), xfrmErrors,
        existing: this.#lastConditions ?? this.#p.watch.ipsecNodes.get(this.#p.node)?.status?.conditions,
      });
      this.#lastConditions = status.conditions;
      this.#p.metrics.peersExpected.set(status.peersExpected ?? 0);
      this.#p.metrics.peersUp.set(status.peersUp ?? 0);
      const tunnels = this.#p.gateways?.reports(all);
      this.#p.publisher.offer(tunnels && tunnels.length > 0 ? { ...status, tunnels } : status);
    } catch (e) {
      this.#p.log.warn({ err: errorMessage(e) }, 'status update failed');
    }
  }

  /** Refresh the per-peer gauges (a Prometheus scrape). */
  async refreshMetrics(): Promise<void> {
    const ph = this.#phase;
    if (ph.tag !== 'running') return;
    await this.#peerMetrics(ph.agent, (await ph.agent.peerStatuses()).filter((p) => p.node !== undefined));
  }

  /** The per-peer, XFRM error and IKE gauges; returns the XFRM error counters read. */
  async #peerMetrics(agent: Agent, peers: readonly TunnelStatus[]): Promise<Record<string, number>> {
    const xfrmErrors = await readXfrmStat();
    this.#p.metrics.setPeers(peers);
    this.#p.metrics.setXfrmStat(xfrmErrors);
    const ike = agent.ikeCounters();
    if (ike) this.#p.metrics.setIke(ike);
    return xfrmErrors;
  }

  /** `kipsec renew`: a new certificate for the same key now; onChange then re-authenticates the IKE SAs with it. */
  async #renew(identity: NodeIdentity): Promise<RenewResult> {
    this.#p.log.info({ node: this.#p.node }, 'certificate renewal requested');
    const c = await identity.renew();
    return { fingerprint: c.fingerprint, publicKeyFingerprint: c.publicKeyFingerprint, notAfter: new Date(c.notAfterMs).toISOString() };
  }

  #clusterInfo(agent: Agent): ClusterInfo {
    const ph = this.#phase;
    return clusterInfoOf({
      node: this.#p.node, address: ph.tag === 'running' ? ph.address : '', desired: this.#desired, certificate: ph.tag === 'running' ? ph.identity.certificate : undefined,
      running: agent.peers.length, up: this.#lastStatus.filter(peerIsUp).length,
    });
  }

  /** SIGTERM. Returns what happened to the kernel state. */
  async stop(): Promise<'kept' | 'removed' | 'none'> {
    const ph = this.#phase;
    this.#phase = { tag: 'stopped' };
    this.#debounce?.cancel();
    if (this.#statusTimer) clearInterval(this.#statusTimer);
    if (this.#trafficTimer) clearInterval(this.#trafficTimer);
    this.#p.publisher.stop();
    // An active gateway hands its tunnels over: their SAs go first, then the Leases, so the
    // standby that takes over never overlaps with SAs left here.
    if (ph.tag === 'running' && this.#desired && this.#p.gateways && this.#p.gateways.active.length > 0) {
      await ph.agent.apply({ synced: true, peers: this.#desired.snapshot.peers.filter((p) => p.kind.type !== 'tunnel') })
        .catch((e: unknown) => this.#p.log.warn({ err: errorMessage(e) }, 'removing the tunnels before the hand-over failed'));
    }
    await this.#p.gateways?.stop(true);
    if (ph.tag === 'running') ph.identity.stop();
    this.#caFollow?.stop();
    await this.#p.watch.stop();
    if (ph.tag !== 'running') return 'none';
    // The mesh still wants this node: leave SAs, policies and blocks; the next agent resumes them.
    // Held out only by its data path, the node stays guarded (routes non-empty): keep that too.
    if (this.#desired && (!this.#desired.inactive || this.#desired.routes.length > 0)) { await ph.agent.abandon(); return 'kept'; }
    await ph.agent.shutdown();
    const routes = await this.#routes?.removeAll().catch((e: unknown) => { this.#p.log.warn({ err: errorMessage(e) }, 'removing the mesh routes failed'); return 0; });
    if (routes) this.#p.log.info({ removed: routes }, 'mesh routes and strict-mode blackholes removed');
    const toGateways = await this.#p.gatewayRoutes?.removeAll().catch((e: unknown) => { this.#p.log.warn({ err: errorMessage(e) }, 'removing the routes to tunnel gateways failed'); return 0; });
    if (toGateways) this.#p.log.info({ removed: toGateways }, 'routes to tunnel gateways removed');
    return 'removed';
  }
}
