// The agent: the IKE engine in the middle, XFRM and UDP sockets around it, a control socket for
// the CLI. Its peers come as snapshots from a source (source.ts): the config file in standalone
// mode (file-source.ts), the Kubernetes watches in cluster mode (mesh/). Lifecycle:
//   start(s)   the first complete snapshot → reqids and strict-mode blocks in place, sockets bound
//              → resume the IKE SAs checkpointed in the state directory (their Child SAs stay as
//              they are) → adopt our other Child SAs, remove orphans → XFRM expire/acquire/mapping
//              events (kernel-events.ts) → control socket → engine.start (unless the caller starts
//              initiating later)
//   apply(s)   a later snapshot: peers added, updated, renegotiated, removed (applier.ts)
//   reload()   standalone: the config file again; on any problem the running config stays
//   shutdown() everything of ours out of the kernel (Delete notifies, SAs, policies, blocks), close
//   abandon()  close sockets only, kernel state untouched: what a crash leaves, and what cluster
//              mode does on SIGTERM while its mesh stays (a restart or an upgrade drops nothing)
import { KipsecError, errorMessage } from '../common/errors.js';
import { cryptoRandom, type Clock, type Random } from '../common/time.js';
import { deadlineClock } from './deadline-clock.js';
import { IkeEngine, type ChildSaStatus, type EngineOptions, type PeerConfig } from '../ike/engine.js';
import { cryptoWorkersFromEnv } from '../ike/crypto/pool.js';
import type { ChildSaCounters, EnginePorts, Transport } from '../ike/ports.js';
import type { PolicyState, SaState, XfrmEvent, XfrmEventGroup, XfrmEvents } from '../xfrm/index.js';
import { removeReqids, scanAndClean, stateKey, type KernelUnit } from './adopt.js';
import { PeerApplier, type ApplyResult } from './applier.js';
import { FileCheckpoints } from './checkpoints.js';
import { stillCarried } from './gateway/moved-selectors.js';
import { inertPorts } from './inert-ports.js';
import { KernelEvents } from './kernel-events.js';
import { nodeFs, type ConfigFs } from './config.js';
import { ControlServer } from './control/server.js';
import type { ControlRequest, RekeyResult, RenewResult } from './control/protocol.js';
import type { EngineLike } from './engine-like.js';
import { ConfigLoadError, loadFileSnapshot, type FileSnapshot } from './file-source.js';
import { XfrmKernel, hex, type RoutePort, type XfrmPort } from './kernel.js';
import type { Logger } from './log.js';
import type { SocketTuning } from './native.js';
import { ReqidTable, fileReqidStore } from './reqids.js';
import type { DesiredPeer, PeerSnapshot } from './source.js';
import { StatusBook } from './status-book.js';
import type { AgentStatus, ClusterInfo, IkeCounters, TunnelStatus } from './status.js';
import { StrictPolicies } from './strict.js';
import { IkeSockets, type DatagramSockets } from './udp.js';
import type { TunnelLinks } from './xfrm-interfaces.js';
import type { EspStatusView } from './userspace/status.js';

export { ConfigLoadError } from './file-source.js';
export type { EngineLike } from './engine-like.js';

export interface AgentXfrm extends XfrmPort {
  events(groups: readonly XfrmEventGroup[], handler: (e: XfrmEvent) => void): XfrmEvents;
  close(): void;
}

export interface ClusterHooks {
  info(): ClusterInfo;
  renewIdentity(): Promise<RenewResult>;
}

export interface AgentOptions {
  readonly log: Logger;
  /** Standalone: the config file read by start() without a snapshot, by reload() and on SIGHUP. */
  readonly configFile?: string;
  readonly controlSocket: string;
  /**
   * Where IKE SA checkpoints (checkpoints.ts) and the reqid table (reqids.ts) live, so a crash or
   * `kill -9` resumes the IKE SAs instead of re-negotiating them; undefined: none of that.
   */
  readonly stateDir?: string;
  readonly xfrm: AgentXfrm;
  readonly tuning: SocketTuning;
  readonly routes?: RoutePort;
  readonly ikePort?: number;
  readonly nattPort?: number;
  readonly clock?: Clock;
  readonly random?: Random;
  readonly fs?: ConfigFs;
  /** Defaults to real UDP sockets on ikePort/nattPort. */
  readonly sockets?: DatagramSockets;
  readonly engineFactory?: (ports: EnginePorts, peers: readonly PeerConfig[]) => EngineLike;
  /** The IKE retransmission schedule (src/cli/retransmit.ts); unset fields keep the engine's defaults. */
  readonly retransmit?: Pick<EngineOptions, 'retransmitTimeoutMs' | 'retransmitBase' | 'retransmitTries'>;
  /** RFC 3948 §2.3 suggests 20 s. */
  readonly keepaliveMs?: number;
  readonly shutdownTimeoutMs?: number;
  /** Cluster mode: the mesh part of the status answer, and a certificate renewal on request. */
  readonly cluster?: ClusterHooks;
  /** Where ESP runs (status); 'userspace': `xfrm` and `sockets` are the ESP engine's (src/agent/userspace). */
  readonly datapath?: 'kernel' | 'userspace';
  /** Why this data path (--datapath auto, the mesh): shown by `kipsec status`. */
  readonly datapathReason?: string;
  /** Userspace: the ESP engine's offloads, counters and drops for `kipsec status` (undefined before it opens). */
  readonly espStatus?: () => EspStatusView | undefined;
  /** Standalone, kernel data path: the XFRM interfaces of route-mode tunnels (xfrm-interfaces.ts). */
  readonly links?: TunnelLinks;
  /** Standalone: what the data path makes of each tunnel's peer config (userspace: ESP in UDP, AEAD only). */
  readonly adaptPeer?: (p: PeerConfig) => PeerConfig;
}

export class Agent {
  readonly #o: AgentOptions;
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #startedAt: string;
  #configLoadedAt = '';
  readonly #sockets: DatagramSockets;
  readonly #kernel: XfrmKernel;
  readonly #applier: PeerApplier;
  readonly #strict: StrictPolicies;
  readonly #book: StatusBook;
  #engine: EngineLike | undefined;
  #events: XfrmEvents | undefined;
  #control: ControlServer | undefined;
  #keepalive: NodeJS.Timeout | undefined;
  #stopping = false;
  #store: FileCheckpoints | undefined;

  constructor(o: AgentOptions) {
    this.#o = o;
    this.#log = o.log;
    this.#clock = o.clock ?? deadlineClock();
    this.#startedAt = new Date(this.#clock.now()).toISOString();
    this.#sockets = o.sockets ?? new IkeSockets({ ikePort: o.ikePort ?? 500, nattPort: o.nattPort ?? 4500, log: o.log.child({ part: 'udp' }), tuning: o.tuning });
    this.#strict = new StrictPolicies(o.xfrm);
    this.#applier = new PeerApplier({
      log: o.log.child({ part: 'peers' }), strict: this.#strict, reqids: new ReqidTable(o.stateDir === undefined ? undefined : fileReqidStore(FileCheckpoints.open(o.stateDir).dir)),
      ...(o.routes ? { routes: o.routes } : {}),
      bind: (a) => this.#sockets.bind(a),
      removeKernelState: (reqids) => removeReqids(o.xfrm, reqids),
      releaseMoved: async (peer, carried) => { await this.#kernel.releasePolicies(peer, (child, p) => stillCarried(carried, child, p)); },
    });
    this.#kernel = new XfrmKernel({
      xfrm: o.xfrm, log: o.log.child({ part: 'kernel' }),
      reqidOf: (peer, child) => this.#applier.reqidOf(peer, child),
      wantsRoutes: (peer) => this.#applier.peers.get(peer)?.installRoutes ?? false,
      ...(o.routes ? { routes: o.routes } : {}),
      now: () => this.#clock.now(),
    });
    this.#book = new StatusBook({ log: o.log.child({ part: 'ike' }), now: () => this.#clock.now(), peerOf: (n) => this.#applier.peers.get(n) });
    this.#book.observe({ down: (peer, what, reason) => { if (what === 'ike' && reason === 'peer-deleted') this.#keepUp(peer); } });
  }

  get peers(): readonly DesiredPeer[] { return [...this.#applier.peers.values()]; }
  get sockets(): DatagramSockets { return this.#sockets; }
  get book(): StatusBook { return this.#book; }
  get strictBlocks(): number { return this.#strict.count; }

  #newEngine(ports: EnginePorts, peers: readonly PeerConfig[]): EngineLike {
    return this.#o.engineFactory ? this.#o.engineFactory(ports, peers) : new IkeEngine(ports, peers, { ...this.#o.retransmit, cryptoWorkers: cryptoWorkersFromEnv() });
  }

  /** The engine's own check of a peer config, on an engine that can do nothing else. */
  validatePeer(p: PeerConfig): void { this.#newEngine(inertPorts(), []).addPeer(p); }

  #loadFile(): FileSnapshot {
    if (this.#o.configFile === undefined) throw new KipsecError('ERR_NO_CONFIG', 'this agent takes its peers from the cluster, not from a config file');
    return loadFileSnapshot(this.#o.configFile, (p) => this.validatePeer(p), this.#o.fs ?? nodeFs, this.#o.adaptPeer);
  }

  /**
   * Start with the first complete snapshot (standalone: the config file). `initiate: false` leaves
   * initiation to startInitiating() — cluster mode first publishes its IPsecNode, so peers know it
   * before it knocks.
   */
  async start(first?: PeerSnapshot, o: { readonly initiate?: boolean } = {}): Promise<void> {
    const file = first === undefined ? this.#loadFile() : undefined;
    const snapshot = first ?? file!;
    if (!snapshot.synced) throw new Error('agent start needs a complete (synced) peer snapshot');
    // Route-mode interfaces before any SA: their if_id must exist when the SAs land. On failure
    // none of ours stays (the agent does not start).
    if (file && this.#o.links) {
      try { await this.#o.links.sync(file.tunnels); } catch (e) { await this.#o.links.removeAll().catch(() => 0); throw e; }
    }
    this.#configLoadedAt = new Date(this.#clock.now()).toISOString();
    const store = this.#o.stateDir === undefined ? undefined : FileCheckpoints.open(this.#o.stateDir);
    this.#store = store;
    const view = { sas: await this.#o.xfrm.listSas(), policies: await this.#o.xfrm.listPolicies() };
    const peers = await this.#applier.prepare(snapshot);
    const transport: Transport = { send: (d, to, from) => this.#sockets.send(d, from, to) };
    const engine = this.#newEngine({
      transport, kernel: this.#kernel, clock: this.#clock, random: this.#o.random ?? cryptoRandom,
      events: { emit: (e) => this.#book.onEvent(e) },
      log: this.#log.child({ part: 'ike' }),
      ...(store ? { checkpoints: store } : {}),
    }, peers.map((p) => p.config));
    this.#engine = engine;
    this.#applier.attach(engine);
    this.#sockets.onDatagram((d) => { void engine.receive(d.data, d.remote, d.local); });
    const claimed = store ? await this.#resume(engine, store, view) : new Set<string>();
    const units: KernelUnit[] = peers.flatMap((p) => p.config.children.map((c) => ({ peer: p.name, child: c.name, reqid: this.#applier.reqidOf(p.name, c.name), local: p.config.local.address })));
    const scan = await scanAndClean(this.#o.xfrm, units, { view, claimed });
    if (scan.removed > 0) this.#log.info({ removed: scan.removed }, 'removed kernel state of peers no longer configured');
    this.#applier.releaseUnused();
    for (const [name, children] of scan.adopt) {
      if (children.length === 0) continue;
      this.#log.info({ tunnel: name, spis: children.map((c) => `${hex(c.ref.inboundSpi)}/${hex(c.ref.outboundSpi)}`) }, 'adopting child SAs from the kernel');
      engine.adopt(name, children);
    }
    // mapping: an authenticated ESP-in-UDP packet from a new NAT mapping (RFC 7296 §2.23).
    const kernelEvents = new KernelEvents({ kernel: this.#kernel, log: this.#log, engine: () => this.#engine, stopping: () => this.#stopping });
    this.#events = this.#o.xfrm.events(['expire', 'acquire', 'mapping'], (e) => kernelEvents.onEvent(e));
    this.#events.onError((e) => kernelEvents.onError(e));
    if (o.initiate !== false) this.startInitiating();
    this.#control = await ControlServer.listen(this.#o.controlSocket, (r) => this.#handle(r), this.#log.child({ part: 'control' }));
    const every = this.#o.keepaliveMs ?? 20_000;
    this.#keepalive = setInterval(() => this.#sendKeepalives(), every);
    this.#keepalive.unref();
    this.#log.info({ tunnels: peers.map((t) => t.name), blocks: this.#strict.count, control: this.#o.controlSocket, tuning: this.#o.tuning.description, ikePort: this.#sockets.ikePort, nattPort: this.#sockets.nattPort }, 'agent started');
  }

  /** Begin initiating: peers with startAction initiate connect now, and so do peers added later. */
  startInitiating(): void {
    if (!this.#engine) return;
    this.#applier.startInitiating();
    this.#engine.start();
  }

  /** A later snapshot from the source. */
  async apply(s: PeerSnapshot): Promise<ApplyResult> {
    if (!this.#engine) throw new KipsecError('ERR_NOT_STARTED', 'agent not started');
    const r = await this.#applier.apply(s);
    for (const n of r.removed) this.#book.forget(n);
    return r;
  }

  /** Resume checkpointed IKE SAs; returns the kernel states (stateKey) they took over. */
  async #resume(engine: EngineLike, store: FileCheckpoints, view: { readonly sas: readonly SaState[]; readonly policies: readonly PolicyState[] }): Promise<Set<string>> {
    const loaded = store.load();
    for (const r of loaded.refused) this.#log.warn({ file: r.file, reason: r.reason }, 'state directory entry not used');
    const claimed = new Set<string>();
    if (loaded.items.length === 0) return claimed;
    this.#kernel.useKernelView(view);
    let results;
    try { results = await engine.restore(loaded.items); } finally { this.#kernel.useKernelView(null); }
    for (const r of results) {
      if (r.outcome === 'refused') { this.#log.warn({ tunnel: r.peer, checkpoint: r.id, reason: r.reason }, 'IKE SA checkpoint not resumed'); continue; }
      for (const c of [...r.children, ...r.lingering]) { claimed.add(stateKey(c.local, c.inboundSpi)); claimed.add(stateKey(c.remote, c.outboundSpi)); }
      for (const x of r.reserved) claimed.add(stateKey(x.local, x.spi));
      this.#log.info({
        tunnel: r.peer, ikeSpis: r.ikeSpis, state: r.state, children: r.children.map((c) => `${hex(c.inboundSpi)}/${hex(c.outboundSpi)}`),
        ...(r.lost.length > 0 ? { lostChildren: r.lost.map((c) => `${hex(c.inboundSpi)}/${hex(c.outboundSpi)}`) } : {}),
      }, 'IKE SA resumed from checkpoint');
    }
    return claimed;
  }

  /**
   * A keep-up peer (mesh) deleted the IKE SA: if we are the side that initiates and no other IKE SA
   * with it is live a moment later, connect again. (The engine restarts on its own after DPD or
   * retransmission failures, not after a Delete, which normally means "down for good".)
   */
  #keepUp(name: string): void {
    const p = this.#applier.peers.get(name);
    if (!p?.keepUp || p.config.startAction !== 'initiate' || this.#stopping) return;
    const t = setTimeout(() => {
      const engine = this.#engine;
      if (!engine || this.#stopping || this.#applier.peers.get(name) !== p) return;
      const live = engine.status().peers.find((x) => x.name === name)?.ike;
      if (live && live.state !== 'down') return;
      this.#log.info({ tunnel: name }, 'the peer deleted the IKE SA of a pair that must stay up; connecting again');
      engine.initiate(name);
    }, 1_000);
    t.unref();
  }

  #sendKeepalives(): void {
    if (!this.#engine) return;
    for (const p of this.#engine.status().peers) {
      const ike = p.ike;
      if (ike && ike.state === 'established' && ike.natDetected.local) this.#sockets.keepalive(ike.local.address, ike.remote);
    }
  }

  async #handle(r: ControlRequest): Promise<unknown> {
    switch (r.cmd) {
      case 'ping': return 'pong';
      case 'status': return this.status();
      case 'reload': return this.reload();
      case 'initiate': this.initiate(this.#need(r)); return { initiated: r.name };
      case 'terminate': await this.terminate(this.#need(r)); return { terminated: r.name };
      case 'rekey': return this.rekey(this.#need(r), { ike: r.ike ?? false, child: r.child ?? false, reauth: r.reauth ?? false });
      case 'renew':
        if (!this.#o.cluster) throw new KipsecError('ERR_NO_NODE_IDENTITY', 'a standalone agent takes its certificates from its config file; renew is for cluster mode');
        return this.#o.cluster.renewIdentity();
    }
  }

  /** The peer a request names: its full name, or for mesh peers the node name alone. */
  #need(r: ControlRequest): string {
    if (r.name === undefined) throw new KipsecError('ERR_CONTROL_REQUEST', `${r.cmd} needs a tunnel name`);
    const peers = this.#applier.peers;
    if (peers.has(r.name)) return r.name;
    const byNode = [...peers.values()].find((p) => p.kind.type === 'mesh' && p.kind.node === r.name);
    if (byNode) return byNode.name;
    throw new KipsecError('ERR_UNKNOWN_TUNNEL', `no tunnel named "${r.name}" (configured: ${[...peers.keys()].join(', ') || 'none'})`);
  }

  initiate(name: string): void {
    this.#log.info({ tunnel: name }, 'initiate requested');
    this.#engine?.initiate(name);
  }

  async terminate(name: string): Promise<void> {
    this.#log.info({ tunnel: name }, 'terminate requested');
    await this.#engine?.terminate(name);
  }

  /** `kipsec rekey`: start a rekey of the IKE SA and/or the Child SAs now (engine errors pass through). */
  rekey(name: string, what: { ike: boolean; child: boolean; reauth?: boolean }): RekeyResult {
    const engine = this.#engine;
    if (!engine) throw new KipsecError('ERR_NOT_STARTED', 'agent not started');
    const r = engine.rekey(name, what.reauth ? { reauth: true } : { ike: what.ike, child: what.child });
    this.#log.info({ tunnel: name, ike: r.ike, reauth: r.reauth === true, children: r.children.map((c) => c.child), ikeSpis: r.ikeSpis }, r.reauth ? 'reauthentication requested' : 'rekey requested');
    return { tunnel: name, ikeSpis: r.ikeSpis, ike: r.ike, ...(r.reauth ? { reauth: true } : {}), children: r.children.map((c) => ({ name: c.child, spiIn: hex(c.inboundSpi), spiOut: hex(c.outboundSpi) })) };
  }

  /** Standalone: re-read the config; on problems keep the running one and throw ConfigLoadError. */
  async reload(): Promise<{ added: string[]; removed: string[]; changed: string[]; unchanged: string[] }> {
    let next: FileSnapshot;
    try { next = this.#loadFile(); } catch (e) {
      if (e instanceof ConfigLoadError) {
        for (const p of e.problems) this.#log.warn({ path: p.path, problem: p.message }, 'config problem');
        this.#log.warn({ problems: e.problems.length }, 'config reload refused; running config kept');
      }
      throw e;
    }
    // New and changed tunnels' interfaces before their SAs; a removed tunnel's goes now too.
    await this.#o.links?.sync(next.tunnels);
    const r = await this.apply(next);
    this.#configLoadedAt = new Date(this.#clock.now()).toISOString();
    this.#log.info({ added: r.added, removed: r.removed, changed: r.changed, unchanged: r.unchanged.length }, 'config reloaded');
    return { added: r.added, removed: r.removed, changed: r.changed, unchanged: r.unchanged };
  }

  /** Per-peer status, for `kipsec status`, the IPsecNode status and the metrics. */
  async peerStatuses(): Promise<TunnelStatus[]> {
    const es = this.#engine?.status();
    const byName = new Map((es?.peers ?? []).map((p) => [p.name, p] as const));
    // One dump of the SA table for every counter, rather than two requests per Child SA.
    const sas = new Map((await this.#o.xfrm.listSas().catch(() => [])).map((x) => [stateKey(x.dst, x.spi), x.current] as const));
    const counters = async (c: ChildSaStatus): Promise<ChildSaCounters> => {
      const inn = sas.get(stateKey(c.ref.local, c.ref.inboundSpi)); const out = sas.get(stateKey(c.ref.remote, c.ref.outboundSpi));
      return { inboundBytes: inn?.bytes ?? 0n, inboundPackets: inn?.packets ?? 0n, outboundBytes: out?.bytes ?? 0n, outboundPackets: out?.packets ?? 0n, lastInboundMs: null };
    };
    const out: TunnelStatus[] = [];
    for (const p of this.#applier.peers.values()) out.push(await this.#book.peerStatus(p, byName.get(p.name), counters));
    return out;
  }

  async status(): Promise<AgentStatus> {
    const cluster = this.#o.cluster?.info();
    const ike = this.ikeCounters();
    const esp = this.espStatus();
    return {
      pid: process.pid, startedAt: this.#startedAt, datapath: this.#o.datapath ?? 'kernel', ...(this.#o.datapathReason ? { datapathReason: this.#o.datapathReason } : {}), configFile: this.#o.configFile ?? 'cluster', configLoadedAt: this.#configLoadedAt,
      ...(cluster ? { cluster } : {}),
      engine: 'kipsec IKEv2', ports: { ike: this.#sockets.ikePort, natt: this.#sockets.nattPort }, ...(ike ? { ike } : {}), ...(esp ? { esp } : {}), tunnels: await this.peerStatuses(),
    };
  }

  /** Userspace: the ESP engine's offloads, counters and drops; undefined on the kernel data path or before it opens. */
  espStatus(): EspStatusView | undefined { return this.#o.espStatus?.(); }

  /** What the engine and the sockets turned away (status, metrics); undefined before the engine runs. */
  ikeCounters(): IkeCounters | undefined {
    const es = this.#engine?.status();
    if (!es) return undefined;
    const u = this.#sockets.counters;
    return { halfOpen: es.halfOpen, cookiesActive: es.cookiesActive, drops: { ...es.drops }, udp: { received: u.received, invalid: u.invalid, espInUdpDropped: u.espInUdpDropped } };
  }

  /** Everything of ours out of the kernel, bounded in time, then close (standalone SIGTERM; cluster: the mesh is gone). */
  async shutdown(): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    this.#log.info({}, 'shutting down: deleting SAs');
    const engine = this.#engine;
    const names = [...this.#applier.peers.keys()];
    if (engine) {
      const deadline = this.#clock.now() + (this.#o.shutdownTimeoutMs ?? 5_000);
      await Promise.allSettled(names.map((n) => engine.terminate(n)));
      // terminate() queues the Delete exchanges; the SAs go once the peer answers. Wait for that
      // (bounded), so the peer hears from us and the kernel state leaves through the engine.
      const live = (): boolean => engine.status().peers.some((p) => (p.ike !== null && p.ike.state !== 'down') || p.adoptedChildren.length > 0);
      while (live() && this.#clock.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      if (live()) this.#log.warn({}, 'some tunnels did not finish deleting in time; removing their kernel state directly');
      await engine.close();
    }
    // Whatever is still ours in the kernel (a peer that never answered, adopted SAs) goes now:
    // after this nothing of ours may stay behind (a crash, by contrast, leaves everything).
    const left = await scanAndClean(this.#o.xfrm, []).catch((e: unknown) => { this.#log.warn({ err: errorMessage(e) }, 'kernel cleanup failed'); return undefined; });
    if (left && left.removed > 0) this.#log.info({ removed: left.removed }, 'removed remaining kernel SAs and policies');
    const blocks = await this.#strict.removeAll().catch((e: unknown) => { this.#log.warn({ err: errorMessage(e) }, 'removing strict-mode block policies failed'); return 0; });
    if (blocks > 0) this.#log.info({ removed: blocks }, 'removed strict-mode block policies');
    for (const n of names) await this.#o.routes?.remove(n).catch(() => { /* already gone */ });
    const links = await this.#o.links?.removeAll().catch((e: unknown) => { this.#log.warn({ err: errorMessage(e) }, 'removing XFRM interfaces failed'); return 0; });
    if (links) this.#log.info({ removed: links }, 'removed XFRM interfaces of route-mode tunnels');
    // Every SA is gone: nothing may be resumed from a stale checkpoint, no reqid is in use.
    try { this.#store?.clear(); } catch (e) { this.#log.warn({ err: errorMessage(e) }, 'state directory cleanup failed'); }
    this.#applier.releaseAll();
    await this.#closeAll();
    this.#log.info({}, 'agent stopped');
  }

  /** Close everything but touch no kernel state (a crash; cluster mode's SIGTERM while its mesh stays). */
  async abandon(): Promise<void> {
    this.#stopping = true;
    await this.#engine?.close();
    await this.#closeAll();
  }

  async #closeAll(): Promise<void> {
    this.#applier.close();
    if (this.#keepalive) clearInterval(this.#keepalive);
    this.#events?.close();
    this.#sockets.close();
    await this.#control?.close();
    this.#o.xfrm.close();
  }
}
