// The standalone agent: config in, IKE engine in the middle, XFRM and UDP sockets around it, a
// control socket for the CLI. Lifecycle:
//   start()    load config (all or nothing) → read the kernel → bind 500/4500 → resume the IKE SAs
//              checkpointed in the state directory (their Child SAs stay as they are) → adopt our
//              other Child SAs, remove orphans → engine.start → XFRM expire/acquire/mapping events → control socket
//   reload()   same checks; on any problem the running config stays and the problems are returned
//   shutdown() SIGTERM: terminate every tunnel (Delete notifies, kernel state removed), then close
//   abandon()  what a crash leaves: closes sockets only, kernel state untouched (tests use it)
import { KipsecError, errorMessage } from '../common/errors.js';
import { cryptoRandom, systemClock, type Clock, type Random } from '../common/time.js';
import type { Problem } from '../api/config.js';
import { IkeEngine, type PeerConfig, type PeerStatus, type ChildSaStatus } from '../ike/engine.js';
import type { EnginePorts, IkeEvent, IkeFailure, KernelIpsec, Transport } from '../ike/ports.js';
import { NetlinkSocketError, type PolicyState, type SaState, type XfrmEvent, type XfrmEventGroup, type XfrmEvents } from '../xfrm/index.js';
import { scanAndClean, stateKey } from './adopt.js';
import { FileCheckpoints } from './checkpoints.js';
import { loadConfigFile, nodeFs, type ConfigFs } from './config.js';
import { ControlServer } from './control/server.js';
import type { ControlRequest, RekeyResult } from './control/protocol.js';
import { XfrmKernel, hex, type RoutePort, type XfrmPort } from './kernel.js';
import type { Logger } from './log.js';
import type { SocketTuning } from './native.js';
import { peerConfigOf } from './peers.js';
import type { AgentStatus, ChildStatus, LastError, SaStateName, TunnelStatus } from './status.js';
import type { TunnelConfig } from './tunnel.js';
import { IkeSockets, type DatagramSockets } from './udp.js';

/** The engine surface the agent drives (IkeEngine; a fake in unit tests). */
export type EngineLike = Pick<IkeEngine, 'start' | 'addPeer' | 'removePeer' | 'initiate' | 'terminate' | 'rekey' | 'receive' | 'acquire' | 'expired' | 'natMapping' | 'adopt' | 'restore' | 'status' | 'close'>;

export interface AgentXfrm extends XfrmPort {
  events(groups: readonly XfrmEventGroup[], handler: (e: XfrmEvent) => void): XfrmEvents;
  close(): void;
}

export interface AgentOptions {
  readonly log: Logger;
  readonly configFile: string;
  readonly controlSocket: string;
  /**
   * Where IKE SA checkpoints live (checkpoints.ts), so a crash or `kill -9` resumes the IKE SAs
   * instead of re-negotiating them; undefined: no checkpoints (a restart re-establishes IKE).
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
  /** RFC 3948 §2.3 suggests 20 s. */
  readonly keepaliveMs?: number;
  readonly shutdownTimeoutMs?: number;
}

/** Config problems: printed one per line by the CLI (exit 2) or returned by reload. */
export class ConfigLoadError extends KipsecError {
  readonly problems: readonly Problem[];
  constructor(problems: readonly Problem[]) {
    super('ERR_CONFIG', problems.map((p) => `${p.path}: ${p.message}`).join('\n'));
    this.problems = problems;
  }
}

const IKE_STATE: Readonly<Record<string, SaStateName>> = { idle: 'none', connecting: 'connecting', established: 'established', rekeying: 'rekeying', deleting: 'deleting', down: 'none' };

const iso = (ms: number | null | undefined): string | undefined => (ms === null || ms === undefined || ms <= 0 ? undefined : new Date(ms).toISOString());

/** Inert ports: an engine built on them only validates peer configs (dry run before applying). */
const INERT_KERNEL: KernelIpsec = {
  allocSpi: () => Promise.reject(new Error('dry run')), releaseSpi: () => Promise.resolve(), installChildSa: () => Promise.reject(new Error('dry run')),
  updateChildSa: () => Promise.resolve(), deleteChildSa: () => Promise.resolve(),
  queryCounters: () => Promise.resolve({ inboundBytes: 0n, inboundPackets: 0n, outboundBytes: 0n, outboundPackets: 0n, lastInboundMs: null }),
  installTrap: () => Promise.resolve(), removeTrap: () => Promise.resolve(), restoreChildSa: () => Promise.resolve(false),
};

export class Agent {
  readonly #o: AgentOptions;
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #startedAt: string;
  #tunnels = new Map<string, TunnelConfig>();
  #configLoadedAt = '';
  readonly #sockets: DatagramSockets;
  #kernel: XfrmKernel;
  #engine: EngineLike | undefined;
  #events: XfrmEvents | undefined;
  #control: ControlServer | undefined;
  #keepalive: NodeJS.Timeout | undefined;
  readonly #lastError = new Map<string, LastError>();
  readonly #lastRekey = new Map<string, string>();
  #stopping = false;
  #store: FileCheckpoints | undefined;

  constructor(o: AgentOptions) {
    this.#o = o;
    this.#log = o.log;
    this.#clock = o.clock ?? systemClock;
    this.#startedAt = new Date(this.#clock.now()).toISOString();
    this.#sockets = o.sockets ?? new IkeSockets({ ikePort: o.ikePort ?? 500, nattPort: o.nattPort ?? 4500, log: o.log.child({ part: 'udp' }), tuning: o.tuning });
    this.#kernel = new XfrmKernel({
      xfrm: o.xfrm, log: o.log.child({ part: 'kernel' }),
      reqidOf: (peer) => this.#tunnels.get(peer)?.reqid ?? 0,
      wantsRoutes: (peer) => this.#tunnels.get(peer)?.installRoutes ?? false,
      ...(o.routes ? { routes: o.routes } : {}),
      now: () => this.#clock.now(),
    });
  }

  get tunnels(): readonly TunnelConfig[] { return [...this.#tunnels.values()]; }
  get sockets(): DatagramSockets { return this.#sockets; }

  /** Load the config and build peer configs; throws ConfigLoadError listing every problem. */
  #prepare(): { tunnels: TunnelConfig[]; peers: PeerConfig[] } {
    const res = loadConfigFile(this.#o.configFile, this.#o.fs ?? nodeFs);
    if (!res.ok) throw new ConfigLoadError(res.problems);
    const problems: Problem[] = [];
    const peers: PeerConfig[] = [];
    for (const t of res.tunnels) {
      try { peers.push(peerConfigOf(t)); } catch (e) { problems.push({ path: `${this.#o.configFile}: ${t.name} ${e instanceof KipsecError && 'path' in e ? String(e.path) : 'spec'}`, message: errorMessage(e).replace(/^[^:]*: /, '') }); }
    }
    if (problems.length === 0) {
      // The engine validates peers when they are added; do it on an inert engine first so a
      // config it refuses changes nothing in the running one.
      for (const p of peers) {
        try { this.#newEngine(inertPorts(), []).addPeer(p); } catch (e) {
          problems.push({ path: `${this.#o.configFile}: ${p.name} ${e instanceof KipsecError && 'path' in e ? String(e.path) : 'spec'}`, message: errorMessage(e).replace(/^[^:]*: /, '') });
        }
      }
    }
    if (problems.length > 0) throw new ConfigLoadError(problems);
    return { tunnels: [...res.tunnels], peers };
  }

  #newEngine(ports: EnginePorts, peers: readonly PeerConfig[]): EngineLike {
    return this.#o.engineFactory ? this.#o.engineFactory(ports, peers) : new IkeEngine(ports, peers);
  }

  async start(): Promise<void> {
    const { tunnels, peers } = this.#prepare();
    this.#tunnels = new Map(tunnels.map((t) => [t.name, t]));
    this.#configLoadedAt = new Date(this.#clock.now()).toISOString();
    const store = this.#o.stateDir === undefined ? undefined : FileCheckpoints.open(this.#o.stateDir);
    this.#store = store;
    const view = { sas: await this.#o.xfrm.listSas(), policies: await this.#o.xfrm.listPolicies() };
    await this.#sockets.bind([...new Set(tunnels.map((t) => t.localAddress))]);
    const transport: Transport = { send: (d, to, from) => this.#sockets.send(d, from, to) };
    const engine = this.#newEngine({
      transport, kernel: this.#kernel, clock: this.#clock, random: this.#o.random ?? cryptoRandom,
      events: { emit: (e) => this.#onEngineEvent(e) },
      log: this.#log.child({ part: 'ike' }),
      ...(store ? { checkpoints: store } : {}),
    }, peers);
    this.#engine = engine;
    this.#sockets.onDatagram((d) => { void engine.receive(d.data, d.remote, d.local); });
    const claimed = store ? await this.#resume(engine, store, view) : new Set<string>();
    const scan = await scanAndClean(this.#o.xfrm, tunnels, { view, claimed });
    if (scan.removed > 0) this.#log.info({ removed: scan.removed }, 'removed kernel state of tunnels no longer configured');
    for (const [name, children] of scan.adopt) {
      if (children.length === 0) continue;
      this.#log.info({ tunnel: name, spis: children.map((c) => `${hex(c.ref.inboundSpi)}/${hex(c.ref.outboundSpi)}`) }, 'adopting child SAs from the kernel');
      engine.adopt(name, children);
    }
    // mapping: an authenticated ESP-in-UDP packet from a new NAT mapping (RFC 7296 §2.23).
    this.#events = this.#o.xfrm.events(['expire', 'acquire', 'mapping'], (e) => this.#onXfrmEvent(e));
    this.#events.onError((e) => {
      if (this.#stopping) return;
      if (e instanceof NetlinkSocketError && e.errnoName === 'ENOBUFS') { this.#recheckExpires(); return; }
      this.#log.warn({ err: errorMessage(e) }, 'XFRM event socket error');
    });
    engine.start();
    this.#control = await ControlServer.listen(this.#o.controlSocket, (r) => this.#handle(r), this.#log.child({ part: 'control' }));
    const every = this.#o.keepaliveMs ?? 20_000;
    this.#keepalive = setInterval(() => this.#sendKeepalives(), every);
    this.#keepalive.unref();
    this.#log.info({ tunnels: tunnels.map((t) => t.name), control: this.#o.controlSocket, tuning: this.#o.tuning.description, ikePort: this.#sockets.ikePort, nattPort: this.#sockets.nattPort }, 'agent started');
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
      for (const c of r.children) { claimed.add(stateKey(c.local, c.inboundSpi)); claimed.add(stateKey(c.remote, c.outboundSpi)); }
      for (const x of r.reserved) claimed.add(stateKey(x.local, x.spi));
      this.#log.info({
        tunnel: r.peer, ikeSpis: r.ikeSpis, state: r.state, children: r.children.map((c) => `${hex(c.inboundSpi)}/${hex(c.outboundSpi)}`),
        ...(r.lost.length > 0 ? { lostChildren: r.lost.map((c) => `${hex(c.inboundSpi)}/${hex(c.outboundSpi)}`) } : {}),
      }, 'IKE SA resumed from checkpoint');
    }
    return claimed;
  }

  #recheck: 'idle' | 'running' | 'again' = 'idle';

  /** Another overrun came while a check ran: run once more (after its events were lost too). */
  #takeAgain(): boolean {
    const again = this.#recheck === 'again';
    this.#recheck = 'running';
    return again;
  }

  /** The event socket overran: some expires may be lost. Ask the kernel (one dump at a time). */
  #recheckExpires(): void {
    if (this.#recheck !== 'idle') { this.#recheck = 'again'; return; }
    this.#recheck = 'running';
    this.#log.warn('XFRM events lost (the event socket\'s receive buffer overran); checking Child SA lifetimes against the kernel');
    void (async () => {
      try {
        do {
          const missed = await this.#kernel.missedExpires();
          const engine = this.#engine;
          if (this.#stopping || !engine) break;
          for (const m of missed) {
            this.#log.info({ spi: hex(m.inboundSpi), hard: m.hard }, 'kernel SA expire (found after lost events)');
            engine.expired(m.inboundSpi, m.hard);
          }
        } while (this.#takeAgain());
      } catch (e) {
        this.#log.warn({ err: errorMessage(e) }, 'checking Child SA lifetimes after lost XFRM events failed');
      } finally {
        this.#recheck = 'idle';
      }
    })();
  }

  #onXfrmEvent(e: XfrmEvent): void {
    const engine = this.#engine;
    if (!engine) return;
    if (e.kind === 'expire') {
      if (!this.#kernel.isInboundSpi(e.sa.dst, e.sa.spi)) return;
      this.#log.info({ spi: hex(e.sa.spi), hard: e.hard }, 'kernel SA expire');
      engine.expired(e.sa.spi, e.hard);
    } else if (e.kind === 'acquire') {
      const stable = e.templates.find((t) => t.reqid !== undefined)?.reqid;
      const reqid = stable === undefined ? undefined : this.#kernel.engineReqidFor(stable);
      if (reqid !== undefined) engine.acquire(reqid);
    } else if (e.kind === 'mapping') {
      // Sent for every such packet until the SA moves: debug here, the engine logs the move once.
      if (!this.#kernel.isInboundSpi(e.dst, e.spi)) return;
      this.#log.debug({ spi: hex(e.spi), old: `${e.oldSrc}:${e.oldSport}`, new: `${e.newSrc}:${e.newSport}` }, 'kernel reports a new NAT mapping');
      engine.natMapping(e.spi, { address: e.newSrc, port: e.newSport });
    }
  }

  #onEngineEvent(e: IkeEvent): void {
    const at = new Date(this.#clock.now()).toISOString();
    switch (e.type) {
      case 'ike-up': this.#log.info({ tunnel: e.peer, ikeSpis: e.ikeSpis, suite: e.suite, remote: `${e.remote.address}:${e.remote.port}`, nat: e.natDetected }, 'IKE SA established'); this.#lastError.delete(e.peer); break;
      case 'ike-rekeyed': this.#log.info({ tunnel: e.peer, old: e.oldIkeSpis, ikeSpis: e.ikeSpis, suite: e.suite }, 'IKE SA rekeyed'); this.#lastRekey.set(e.peer, at); break;
      case 'ike-down': this.#log.info({ tunnel: e.peer, ikeSpis: e.ikeSpis, reason: e.reason }, 'IKE SA down'); break;
      case 'child-up': this.#log.info({ tunnel: e.peer, child: e.child, suite: e.suite, spiIn: hex(e.ref.inboundSpi), spiOut: hex(e.ref.outboundSpi), localTs: e.localTs, remoteTs: e.remoteTs }, 'child SA up'); break;
      case 'child-rekeyed': this.#log.info({ tunnel: e.peer, child: e.child, suite: e.suite, oldSpiIn: hex(e.old.inboundSpi), spiIn: hex(e.ref.inboundSpi), spiOut: hex(e.ref.outboundSpi) }, 'child SA rekeyed'); this.#lastRekey.set(e.peer, at); break;
      case 'child-down': this.#log.info({ tunnel: e.peer, child: e.child, spiIn: hex(e.ref.inboundSpi), reason: e.reason }, 'child SA down'); break;
      case 'error': {
        this.#log.warn({ tunnel: e.peer, code: e.error.code, notify: e.error.notify, origin: e.error.origin, exchange: e.error.exchange, proposals: e.error.proposals }, e.error.message);
        this.#lastError.set(e.peer, lastErrorOf(e.error, at, this.#tunnels.get(e.peer)));
        break;
      }
    }
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
      case 'rekey': return this.rekey(this.#need(r), { ike: r.ike ?? false, child: r.child ?? false });
    }
  }

  #need(r: ControlRequest): string {
    if (r.name === undefined) throw new KipsecError('ERR_CONTROL_REQUEST', `${r.cmd} needs a tunnel name`);
    if (!this.#tunnels.has(r.name)) throw new KipsecError('ERR_UNKNOWN_TUNNEL', `no tunnel named "${r.name}" (configured: ${[...this.#tunnels.keys()].join(', ') || 'none'})`);
    return r.name;
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
  rekey(name: string, what: { ike: boolean; child: boolean }): RekeyResult {
    const engine = this.#engine;
    if (!engine) throw new KipsecError('ERR_NOT_STARTED', 'agent not started');
    const r = engine.rekey(name, what);
    this.#log.info({ tunnel: name, ike: r.ike, children: r.children.map((c) => c.child), ikeSpis: r.ikeSpis }, 'rekey requested');
    return { tunnel: name, ikeSpis: r.ikeSpis, ike: r.ike, children: r.children.map((c) => ({ name: c.child, spiIn: hex(c.inboundSpi), spiOut: hex(c.outboundSpi) })) };
  }

  /** Re-read the config; on problems keep the running one and throw ConfigLoadError. */
  async reload(): Promise<{ added: string[]; removed: string[]; changed: string[]; unchanged: string[] }> {
    let next: { tunnels: TunnelConfig[]; peers: PeerConfig[] };
    try { next = this.#prepare(); } catch (e) {
      if (e instanceof ConfigLoadError) {
        for (const p of e.problems) this.#log.warn({ path: p.path, problem: p.message }, 'config problem');
        this.#log.warn({ problems: e.problems.length }, 'config reload refused; running config kept');
      }
      throw e;
    }
    const engine = this.#engine;
    if (!engine) throw new KipsecError('ERR_NOT_STARTED', 'agent not started');
    const old = this.#tunnels;
    const now = new Map(next.tunnels.map((t) => [t.name, t]));
    const added = next.tunnels.filter((t) => !old.has(t.name)).map((t) => t.name);
    const removed = [...old.keys()].filter((n) => !now.has(n));
    const changed = next.tunnels.filter((t) => old.has(t.name) && old.get(t.name)!.digest !== t.digest).map((t) => t.name);
    const unchanged = next.tunnels.filter((t) => old.get(t.name)?.digest === t.digest).map((t) => t.name);
    await this.#sockets.bind([...new Set([...old.values(), ...next.tunnels].map((t) => t.localAddress))]);
    for (const n of removed) await engine.removePeer(n);
    // Removed tunnels' reqids must still resolve while their SAs are deleted above; swap after.
    this.#tunnels = now;
    for (const p of next.peers) {
      if (!added.includes(p.name) && !changed.includes(p.name)) continue;
      engine.addPeer(p);
      if (p.startAction === 'initiate') engine.initiate(p.name);
    }
    await this.#sockets.bind([...new Set(next.tunnels.map((t) => t.localAddress))]);
    this.#configLoadedAt = new Date(this.#clock.now()).toISOString();
    this.#log.info({ added, removed, changed, unchanged: unchanged.length }, 'config reloaded');
    return { added, removed, changed, unchanged };
  }

  async status(): Promise<AgentStatus> {
    const es = this.#engine?.status();
    const byName = new Map((es?.peers ?? []).map((p) => [p.name, p] as const));
    const tunnels: TunnelStatus[] = [];
    for (const t of this.#tunnels.values()) tunnels.push(await this.#tunnelStatus(t, byName.get(t.name)));
    return {
      pid: process.pid, startedAt: this.#startedAt, datapath: 'kernel', configFile: this.#o.configFile, configLoadedAt: this.#configLoadedAt,
      engine: 'kipsec IKEv2', ports: { ike: this.#sockets.ikePort, natt: this.#sockets.nattPort }, tunnels,
    };
  }

  async #childStatus(c: ChildSaStatus): Promise<ChildStatus> {
    let cnt = { inboundBytes: 0n, inboundPackets: 0n, outboundBytes: 0n, outboundPackets: 0n };
    try { cnt = await this.#kernel.queryCounters(c.ref); } catch { /* SA vanished between snapshot and query */ }
    return {
      name: c.name, state: c.adopted ? 'adopted' : c.state === 'rekeying' ? 'rekeying' : 'installed', suite: c.suite,
      spiIn: hex(c.ref.inboundSpi), spiOut: hex(c.ref.outboundSpi), localTs: c.localTs, remoteTs: c.remoteTs,
      bytesIn: Number(cnt.inboundBytes), bytesOut: Number(cnt.outboundBytes), packetsIn: Number(cnt.inboundPackets), packetsOut: Number(cnt.outboundPackets),
      encap: c.encap,
      ...(iso(c.installedAtMs) ? { installedAt: iso(c.installedAtMs)! } : {}),
      ...(!c.adopted && iso(c.rekeyAtMs) ? { nextRekeyAt: iso(c.rekeyAtMs)! } : {}),
    };
  }

  async #tunnelStatus(t: TunnelConfig, p: PeerStatus | undefined): Promise<TunnelStatus> {
    const ike = p?.ike ?? null;
    const children: ChildStatus[] = [];
    for (const c of [...(ike?.children ?? []), ...(p?.adoptedChildren ?? [])]) children.push(await this.#childStatus(c));
    const engineErr = p?.lastError ? lastErrorOf(p.lastError, new Date(p.lastError.atMs).toISOString(), t) : undefined;
    const lastError = this.#lastError.get(t.name) ?? engineErr;
    let state: SaStateName = ike ? (IKE_STATE[ike.state] ?? 'none') : 'none';
    if (state === 'none' && lastError) state = 'failed';
    const spis = ike ? /^([0-9a-f]+)_i\s+([0-9a-f]+)_r$/.exec(ike.ikeSpis) : null;
    const lastRekeyAt = this.#lastRekey.get(t.name);
    return {
      name: t.name, local: t.localAddress, remote: t.remoteAddress, startAction: t.startAction, ikeState: state,
      ...(ike?.suite ? { ikeSuite: ike.suite } : {}),
      ...(spis ? { ikeSpis: { initiator: spis[1]!, responder: spis[2]! } } : {}),
      ...(ike ? { role: ike.role, natDetected: ike.natDetected.local || ike.natDetected.remote, remotePort: ike.remote.port } : {}),
      ...(iso(ike?.establishedAtMs) ? { establishedAt: iso(ike?.establishedAtMs)! } : {}),
      ...(iso(ike?.resumedAtMs) ? { resumedAt: iso(ike?.resumedAtMs)! } : {}),
      ...(iso(ike?.rekeyAtMs) ? { nextRekeyAt: iso(ike?.rekeyAtMs)! } : {}),
      ...(lastRekeyAt ? { lastRekeyAt } : {}),
      children,
      ...(lastError ? { lastError } : {}),
    };
  }

  /** SIGTERM: Delete notifies and kernel cleanup for every tunnel, bounded in time, then close. */
  async shutdown(): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    this.#log.info({}, 'shutting down: deleting SAs');
    const engine = this.#engine;
    if (engine) {
      const deadline = this.#clock.now() + (this.#o.shutdownTimeoutMs ?? 5_000);
      await Promise.allSettled([...this.#tunnels.keys()].map((n) => engine.terminate(n)));
      // terminate() queues the Delete exchanges; the SAs go once the peer answers. Wait for that
      // (bounded), so the peer hears from us and the kernel state leaves through the engine.
      const live = (): boolean => engine.status().peers.some((p) => (p.ike !== null && p.ike.state !== 'down') || p.adoptedChildren.length > 0);
      while (live() && this.#clock.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      if (live()) this.#log.warn({}, 'some tunnels did not finish deleting in time; removing their kernel state directly');
      await engine.close();
    }
    // Whatever is still ours in the kernel (a peer that never answered, adopted SAs) goes now:
    // after SIGTERM nothing of ours may stay behind (a crash, by contrast, leaves everything).
    const left = await scanAndClean(this.#o.xfrm, []).catch((e: unknown) => { this.#log.warn({ err: errorMessage(e) }, 'kernel cleanup failed'); return undefined; });
    if (left && left.removed > 0) this.#log.info({ removed: left.removed }, 'removed remaining kernel SAs and policies');
    for (const n of this.#tunnels.keys()) await this.#o.routes?.remove(n).catch(() => { /* already gone */ });
    // Every SA is gone (deleted or cleaned up above): nothing may be resumed from a stale checkpoint.
    try { this.#store?.clear(); } catch (e) { this.#log.warn({ err: errorMessage(e) }, 'state directory cleanup failed'); }
    await this.#closeAll();
    this.#log.info({}, 'agent stopped');
  }

  /** Close everything but touch no kernel state: what a crash leaves behind (for restart tests). */
  async abandon(): Promise<void> {
    this.#stopping = true;
    await this.#engine?.close();
    await this.#closeAll();
  }

  async #closeAll(): Promise<void> {
    if (this.#keepalive) clearInterval(this.#keepalive);
    this.#events?.close();
    this.#sockets.close();
    await this.#control?.close();
    this.#o.xfrm.close();
  }
}

function lastErrorOf(f: IkeFailure, time: string, t: TunnelConfig | undefined): LastError {
  const local = f.proposals?.local ?? (f.notify === 'NO_PROPOSAL_CHOSEN' && t ? (f.exchange === 'IKE_SA_INIT' ? t.ikeProposalText : t.espProposalText) : undefined);
  return {
    message: f.message, time,
    ...(f.notify ? { notify: f.notify } : {}),
    ...(local ? { localProposals: local } : {}),
    ...(f.proposals?.remote ? { remoteProposals: f.proposals.remote } : f.notify === 'NO_PROPOSAL_CHOSEN' ? { remoteProposals: [] } : {}),
  };
}

function inertPorts(): EnginePorts {
  return {
    transport: { send: () => { /* dry run */ } }, kernel: INERT_KERNEL, clock: { now: () => 0, setTimer: () => ({ cancel: () => { /* none */ } }) },
    random: cryptoRandom, events: { emit: () => { /* dry run */ } },
  };
}
