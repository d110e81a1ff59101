// The engine core behind the IkeEngine facade: peer registry, the SA table keyed by our SPI,
// datagram intake (decode, then the SA's own checks in intake.ts), per-SA serialisation, and
// status (status-view.ts). Tunnel configs are parsed in peer-runtime.ts; initiated exchanges
// are in tasks.ts, answered ones in responder.ts, SA lifecycle in lifecycle.ts, the kernel's
// Child SA events in kernel-events.ts.
import { ConfigError, errorMessage, KipsecError, ParseError } from '../../common/errors.js';
import type { SecretBytes } from '../../common/secret.js';
import type { Clock, Random } from '../../common/time.js';
import { ExchangeType } from '../constants.js';
import { decodeMessage, type IkeMessage } from '../codec/message.js';
import { InvalidMajorVersionError } from '../codec/errors.js';
import type { AdoptedChildSa, EngineSizes, EngineStatus, RekeyRequest, RekeyStarted } from '../types.js';
import type { Endpoint, EnginePorts, EngineLogger, IkeEvent, IkeFailure, KernelIpsec } from '../ports.js';
import { CookieJar } from '../exchanges/cookie.js';
import type { EngineOptions, PeerConfig } from './config.js';
import type { ResolvedOptions } from './context.js';
import type { EngineHost } from './host.js';
import * as D from './defaults.js';
import { CheckpointWriter } from './checkpoint-writer.js';
import { ikeSpisText, ourSpi, spiHex, upOf, type ChildSa, type IkeSa, type PeerRuntime, type Task } from './ike-sa.js';
import { restoreSas, type RestoreResult } from './restore.js';
import { linkReauth } from './reauth.js';
import { isLive, teardown } from './lifecycle.js';
import { answerUndecodableInit, handleInitRequest } from './responder.js';
import { onMessage } from './intake.js';
import { buildPeerRuntime } from './peer-runtime.js';
import { peerStatus } from './status-view.js';
import { childExpired, natMappingChanged } from './kernel-events.js';
import { queueTask, startInitiator } from './tasks.js';
import { toPortTs } from './ts.js';
import { admitDatagram, EngineLimits, resolveLimits } from './limits.js';
import { pooledRandom } from './random-pool.js';
import { Ikev1Notices } from './ikev1.js';
import { ByPeer } from './by-peer.js';
import { acquireCryptoPool, CryptoPool, cryptoWorkersFromEnv, releaseCryptoPool } from '../crypto/pool.js';

export class EngineCore implements EngineHost {
  readonly clock: Clock;
  readonly random: Random;
  readonly kernel: KernelIpsec;
  readonly options: ResolvedOptions;
  readonly log: EngineLogger | undefined;
  readonly crypto: CryptoPool;
  readonly ports: EnginePorts;
  readonly peers = new Map<string, PeerRuntime>();
  /** Every IKE SA by the SPI we chose for it. */
  readonly sas = new Map<bigint, IkeSa>();
  /** The same SAs by peer name, so per-peer questions do not scan every SA (mesh: O(nodes) peers). */
  readonly #byPeer = new ByPeer<IkeSa>();
  /** Peers by "local|remote" address (remote "%any" under "local|%any"), for IKE_SA_INIT lookup. */
  readonly #byAddress = new Map<string, PeerRuntime[]>();
  /** Responder half-open SAs by initiator address + SPIi, to answer retransmitted IKE_SA_INIT. */
  readonly initIndex = new Map<string, IkeSa>();
  /** Each SA's initIndex key, so removing an SA is one lookup rather than a scan of every SA's. */
  readonly #initKeyOf = new Map<IkeSa, string>();
  readonly cookies: CookieJar;
  readonly drops: Record<string, number> = {};
  readonly lastErrors = new Map<string, IkeFailure & { atMs: number }>();
  readonly adopted = new Map<string, AdoptedChildSa[]>();
  halfOpen = 0;
  readonly limits = new EngineLimits(this); // datagram size, reassembly, half-open per address
  readonly #ikev1 = new Ikev1Notices();
  #serial = 0; #reqid = 1;
  readonly #work = new Set<Promise<void>>();
  readonly #checkpoints = new CheckpointWriter(this);
  #closed = false;

  constructor(ports: EnginePorts, o: EngineOptions) {
    this.ports = ports;
    this.clock = ports.clock; this.random = pooledRandom(ports.random); this.kernel = ports.kernel; this.log = ports.log;
    this.options = {
      retransmitTimeoutMs: o.retransmitTimeoutMs ?? D.RETRANSMIT_TIMEOUT_MS,
      retransmitBase: o.retransmitBase ?? D.RETRANSMIT_BASE,
      retransmitTries: o.retransmitTries ?? D.RETRANSMIT_TRIES,
      cookieThreshold: o.cookieThreshold ?? D.COOKIE_THRESHOLD,
      halfOpenLimit: o.halfOpenLimit ?? D.HALF_OPEN_LIMIT,
      halfOpenTimeoutMs: o.halfOpenTimeoutMs ?? D.HALF_OPEN_TIMEOUT_MS,
      rekeyDeleteDelayMs: o.rekeyDeleteDelayMs ?? D.REKEY_DELETE_DELAY_MS,
      rekeyJitterMs: o.rekeyJitterMs ?? null,
      ...resolveLimits(o),
      retryIntervalMs: o.retryIntervalMs ?? D.RETRY_INTERVAL_MS,
    };
    this.cookies = new CookieJar(this.random, this.clock);
    // KIPSEC_IKE_CRYPTO_WORKERS, when set, is the default for every engine in the process.
    const workers = o.cryptoWorkers ?? (process.env['KIPSEC_IKE_CRYPTO_WORKERS'] ? cryptoWorkersFromEnv() : 0);
    this.crypto = workers > 0 ? acquireCryptoPool(workers) : new CryptoPool({ size: 0 });
    const why = this.crypto.stats().fallbackReason;
    if (why) this.log?.warn({ cryptoWorkers: workers }, `IKE crypto workers unavailable: ${why}`);
  }

  // ───────────── Ctx services ─────────────

  emit(event: IkeEvent): void {
    try { this.ports.events.emit(event); } catch { /* a sink must not break the engine */ }
  }

  failure(peer: PeerRuntime, f: IkeFailure): void {
    this.lastErrors.set(peer.config.name, { ...f, atMs: this.clock.now() });
    this.emit({ type: 'error', peer: peer.config.name, error: f });
  }

  newIkeSpi(): bigint {
    for (;;) {
      const b = this.random.bytes(8);
      const spi = new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0);
      if (spi !== 0n && !this.sas.has(spi)) return spi;
    }
  }

  register(sa: IkeSa): void {
    this.sas.set(ourSpi(sa), sa);
    this.#byPeer.add(sa.peer.config.name, sa);
  }
  /** The responder switched `sa` to another peer config after IKE_AUTH identified the peer. */
  rehome(sa: IkeSa, previousPeer: string): void {
    this.#byPeer.delete(previousPeer, sa);
    this.register(sa);
  }
  unregister(sa: IkeSa): void {
    if (this.sas.get(ourSpi(sa)) === sa) { this.sas.delete(ourSpi(sa)); this.#checkpoints.forget(spiHex(ourSpi(sa))); }
    this.#byPeer.delete(sa.peer.config.name, sa);
    const k = this.#initKeyOf.get(sa);
    if (k !== undefined) {
      this.#initKeyOf.delete(sa);
      if (this.initIndex.get(k) === sa) this.initIndex.delete(k);
    }
  }
  indexInit(key: string, sa: IkeSa): void {
    this.initIndex.set(key, sa);
    this.#initKeyOf.set(sa, key);
  }
  newSerial(): number { return ++this.#serial; }
  /**
   * RFC 7296 §2.4: INITIAL_CONTACT tells the peer we hold no other state with it. Not true while
   * another IKE SA with it is up, nor while Child SAs adopted from a previous process still carry
   * traffic: the peer must keep its side of those until their successors are installed.
   */
  initialContact(sa: IkeSa): boolean {
    if (this.liveSas(sa.peer.config.name).some((s) => s !== sa && s.state.tag === 'established')) return false;
    return (this.adopted.get(sa.peer.config.name)?.length ?? 0) === 0;
  }

  // ───────────── checkpoints (checkpoint.ts) ─────────────

  /**
   * Save `sa`'s checkpoint if it changed (or remove it once the SA is not resumable). Called before
   * any of its datagrams leave, so the stored message IDs are never behind the wire.
   */
  persist(sa: IkeSa): void { this.#checkpoints.persist(sa); }

  /** persist() every SA of the peer: an exchange can change two of them (IKE rekey). */
  persistPeer(peer: string): void {
    if (!this.ports.checkpoints) return;
    for (const sa of this.#byPeer.of(peer)) this.persist(sa);
  }

  /** See IkeEngine.restore. */
  async restore(items: readonly { readonly id: string; readonly data: SecretBytes }[]): Promise<RestoreResult[]> {
    const results = await restoreSas(this, items);
    for (const r of results) if (r.outcome === 'resumed') this.persistPeer(r.peer);
    return results;
  }

  drop(reason: string): void { this.drops[reason] = (this.drops[reason] ?? 0) + 1; }

  get closed(): boolean { return this.#closed; }

  /** Keep a promise for idle(); never let it reject unobserved. */
  track(p: Promise<void>): Promise<void> {
    const q = p.catch((e: unknown) => { this.log?.warn({ err: errorMessage(e) }, 'engine task failed'); this.drop('internal-error'); });
    this.#work.add(q);
    void q.finally(() => this.#work.delete(q));
    return q;
  }

  /** Run `fn` after everything already queued for `sa`. */
  enqueue(sa: IkeSa, fn: () => Promise<void> | void): Promise<void> {
    const next = sa.queue.then(async () => { if (!this.#closed) await fn(); });
    sa.queue = next.catch(() => undefined);
    return this.track(next);
  }

  queueTask(sa: IkeSa, task: Task): void { queueTask(this, sa, task); }

  ownerOf(child: ChildSa): IkeSa | undefined {
    for (const sa of this.sas.values()) if (sa.children.get(child.ref.inboundSpi) === child) return sa;
    return undefined;
  }

  /** The Child SA with this inbound SPI and the IKE SA holding it (kernel events name only the SPI). */
  #childByInbound(inboundSpi: number): { readonly sa: IkeSa; readonly child: ChildSa } | undefined {
    for (const sa of this.sas.values()) {
      const child = sa.children.get(inboundSpi);
      if (child) return { sa, child };
    }
    return undefined;
  }

  // ───────────── peers ─────────────

  addPeer(config: PeerConfig): void {
    const existing = this.peers.get(config.name);
    const rt = buildPeerRuntime(config, existing, () => this.#reqid++);
    const children = rt.children;
    if (existing) this.#indexAddress(existing, false);
    this.peers.set(config.name, rt);
    this.#indexAddress(rt, true);
    // SAs of a replaced config keep running with the old settings until they are rekeyed or deleted;
    // their successors follow the new config (a child whose name is gone keeps its old one).
    const byName = new Map(children.map((c) => [c.config.name, c]));
    for (const sa of this.sas.values()) {
      if (sa.peer.config.name !== config.name) continue;
      sa.peer = rt;
      for (const c of sa.children.values()) c.runtime = byName.get(c.runtime.config.name) ?? c.runtime;
    }
  }

  async removePeer(name: string, o: { readonly keepHalfOpen?: boolean } = {}): Promise<void> {
    if (!this.peers.has(name)) return;
    await this.terminate(name, o);
    const p = this.peers.get(name);
    if (p) this.#indexAddress(p, false);
    // Trap policies (on-demand), and policies a dead peer's Child SAs left for a successor.
    if (p)
      for (const c of p.children) await this.kernel.removeTrap({ peer: name, child: c.config.name, reqid: c.reqid }).catch(() => undefined);
    this.peers.delete(name);
  }

  peer(name: string): PeerRuntime {
    const p = this.peers.get(name);
    if (!p) throw new ConfigError('peer', `no peer named "${name}"`);
    return p;
  }

  /** Peers an incoming IKE_SA_INIT to `to` from `from` may belong to (address match, %any last). */
  candidates(from: Endpoint, to: Endpoint): PeerRuntime[] {
    return [...(this.#byAddress.get(`${to.address}|${from.address}`) ?? []), ...(this.#byAddress.get(`${to.address}|%any`) ?? [])];
  }

  #indexAddress(rt: PeerRuntime, add: boolean): void {
    const key = `${rt.config.local.address}|${rt.config.remote.address}`;
    const list = (this.#byAddress.get(key) ?? []).filter((p) => p.config.name !== rt.config.name);
    if (add) list.push(rt);
    if (list.length > 0) this.#byAddress.set(key, list); else this.#byAddress.delete(key);
  }

  liveSas(peer: string): IkeSa[] { return this.#byPeer.of(peer).filter(isLive); }

  start(): void {
    for (const p of this.peers.values()) {
      if (p.config.startAction === 'initiate') this.initiate(p.config.name);
      else if (p.config.startAction === 'on-demand') this.installTraps(p);
    }
  }

  installTraps(p: PeerRuntime): void {
    for (const c of p.children) {
      const sa = { local: p.local, remote: p.remote } as const;
      const policies = c.localTs.flatMap((l) => c.remoteTs.filter((r) => r.family === l.family).map((r) => [l, r] as const));
      void this.track(this.kernel.installTrap({
        peer: p.config.name, child: c.config.name, reqid: c.reqid, mode: c.config.mode,
        policies: policies.map(([l, r]) => ({ direction: 'out' as const, source: toPortTs(l), destination: toPortTs(r), tunnelSource: sa.local.address, tunnelDestination: sa.remote.address, priority: 2_000 })),
      }));
    }
  }

  initiate(name: string): void {
    const p = this.peer(name);
    p.terminated = false;
    if (this.liveSas(name).length > 0) return;
    if (p.config.remote.address === '%any') throw new ConfigError(`peers[${name}].remote.address`, 'cannot initiate to %any');
    startInitiator(this, p);
  }

  async terminate(name: string, o: { readonly keepHalfOpen?: boolean } = {}): Promise<void> {
    const p = this.peer(name);
    p.terminated = true;
    p.retryTimer?.cancel();
    // keepHalfOpen: the peer's own new IKE_SA_INIT, answered, awaits its IKE_AUTH (addPeer rehomes it).
    const sas = this.#byPeer.of(name).filter((sa) => !(o.keepHalfOpen && sa.role === 'responder' && sa.state.tag === 'init-done'));
    await Promise.all(sas.map((sa) => this.enqueue(sa, async () => {
      if (sa.state.tag === 'established') queueTask(this, sa, { kind: 'ike-delete', reason: 'terminated' });
      else await teardown(this, sa, 'terminated');
    })));
    // Adopted SAs from a previous process belong to the peer too: down means down.
    for (const a of this.adopted.get(name) ?? []) {
      await this.kernel.deleteChildSa(a.ref, { keepPolicies: false }).catch(() => undefined);
      this.emit({ type: 'child-down', peer: name, child: a.ref.child, ref: a.ref, reason: 'terminated' });
    }
    this.adopted.delete(name);
    await this.idle();
  }

  /** Operator-requested rekey (IkeEngine.rekey): the same tasks the rekey timers queue. */
  rekey(name: string, what: RekeyRequest): RekeyStarted {
    this.peer(name);
    const ike = what.ike === true;
    const child = what.child === true || !ike;
    const live = this.liveSas(name);
    const sa = live.filter((s) => s.state.tag === 'established').sort((a, b) => (upOf(b)?.upSerial ?? 0) - (upOf(a)?.upSerial ?? 0))[0];
    if (sa === undefined) {
      const state = live.length > 0 ? 'still connecting' : 'down';
      throw new KipsecError('ERR_IKE_NOT_ESTABLISHED', `tunnel "${name}" has no established IKE SA to rekey (it is ${state})`);
    }
    const children = [...sa.children.values()].filter((c) => c.state.tag === 'installed');
    if (what.reauth === true) return this.#reauthenticate(sa, children);
    if (child && children.length === 0) {
      if ([...sa.children.values()].some((c) => c.state.tag === 'rekeying'))
        throw new KipsecError('ERR_IKE_REKEY_IN_PROGRESS', `tunnel "${name}": a rekey of every Child SA is already in progress`);
      throw new KipsecError('ERR_IKE_NO_CHILD_SA', `tunnel "${name}" has no installed Child SA to rekey`);
    }
    const queued = child ? children : [];
    void this.enqueue(sa, () => {
      // IKE first: the child rekeys then move with the other pending work to the new IKE SA (§2.18).
      if (ike) queueTask(this, sa, { kind: 'ike-rekey' });
      for (const c of queued) if (c.state.tag === 'installed') queueTask(this, sa, { kind: 'child-rekey', old: c });
    });
    return { ikeSpis: ikeSpisText(sa), ike, children: queued.map((c) => c.ref) };
  }

  /**
   * Make-before-break reauthentication of `old` (reauth.ts): a new IKE SA with the current
   * credentials and all child configs; `old` is deleted once the new one has its Child SAs.
   */
  #reauthenticate(old: IkeSa, children: readonly ChildSa[]): RekeyStarted {
    const name = old.peer.config.name;
    if (old.reauth !== null || this.liveSas(name).some((s) => s.state.tag !== 'established'))
      throw new KipsecError('ERR_IKE_REKEY_IN_PROGRESS', `tunnel "${name}": a reauthentication or another IKE SA is already being negotiated`);
    const fresh = startInitiator(this, old.peer, (sa) => linkReauth(old, sa, true));
    this.log?.info({ peer: name, ikeSpis: ikeSpisText(old), serial: fresh.serial }, 'reauthenticating: new IKE SA started, the old one stays until it is complete');
    return { ikeSpis: ikeSpisText(old), ike: true, reauth: true, children: children.map((c) => c.ref) };
  }

  acquire(reqid: number): void {
    for (const p of this.peers.values()) if (p.children.some((c) => c.reqid === reqid)) {
      if (this.liveSas(p.config.name).length === 0) startInitiator(this, p);
      return;
    }
    this.drop('acquire-unknown-reqid');
  }

  expired(inboundSpi: number, hard: boolean): void {
    const found = this.#childByInbound(inboundSpi);
    if (found) childExpired(this, found.sa, found.child, hard);
  }

  natMapping(inboundSpi: number, from: Endpoint): void {
    const found = this.#childByInbound(inboundSpi);
    if (!found) { this.drop('mapping-unknown-spi'); return; }
    natMappingChanged(this, found.sa, found.child, from);
  }

  adopt(peer: string, children: readonly AdoptedChildSa[]): void {
    this.peer(peer);
    this.adopted.set(peer, [...(this.adopted.get(peer) ?? []), ...children]);
  }

  // ───────────── intake ─────────────

  receive(datagram: Uint8Array, from: Endpoint, to: Endpoint): Promise<void> {
    if (this.#closed || !admitDatagram(this, datagram)) return Promise.resolve();
    // Copy first: the caller may reuse its buffer, and decoded payloads are views into it.
    const copy = new Uint8Array(datagram);
    let m: IkeMessage;
    try { m = decodeMessage(copy); } catch (e) {
      if (e instanceof InvalidMajorVersionError && e.majorVersion === 1) {
        // RFC 9395: no IKEv1. Named in logs/status (rate-limited) instead of a silent decode drop.
        this.drop('ikev1');
        this.#ikev1.note(this, copy, from, to, this.candidates(from, to).filter((p) => p.config.remote.address === from.address));
        return Promise.resolve();
      }
      this.drop('decode');
      if (e instanceof ParseError) answerUndecodableInit(this, copy, e, from, to);
      return Promise.resolve();
    }
    const h = m.header;
    if (h.exchangeType === ExchangeType.IKE_SA_INIT && !h.response) {
      return this.track(handleInitRequest(this, m, copy, from, to).catch((e: unknown) => { this.log?.warn({ err: errorMessage(e) }, 'IKE_SA_INIT request failed'); this.drop('internal-error'); }));
    }
    // The I flag marks the original initiator's messages: then the responder SPI is ours.
    const spi = h.initiator ? h.responderSpi : h.initiatorSpi;
    const sa = this.sas.get(spi);
    if (sa === undefined || (h.initiator ? sa.role !== 'responder' : sa.role !== 'initiator')) { this.drop('unknown-spi'); return Promise.resolve(); }
    return this.enqueue(sa, () => onMessage(this, sa, m, copy, from, to));
  }

  // ───────────── status ─────────────

  status(): EngineStatus {
    const peers = [...this.peers.values()].map(({ config: { name } }) => peerStatus(name, this.#byPeer.of(name), this.adopted.get(name) ?? [], this.lastErrors.get(name) ?? null));
    return { peers, halfOpen: this.halfOpen, cookiesActive: this.halfOpen >= this.options.cookieThreshold, drops: { ...this.drops } };
  }

  sizes(): EngineSizes {
    let childSas = 0; let reassemblyBytes = 0;
    for (const sa of this.sas.values()) { childSas += sa.children.size; reassemblyBytes += sa.fragments?.bytes ?? 0; }
    return { ikeSas: this.sas.size, halfOpen: this.halfOpen, childSas, reassemblyBytes };
  }

  /** Resolves once no receive, timer work or kernel call is pending. */
  async idle(): Promise<void> {
    for (let i = 0; i < 1_000 && this.#work.size > 0; i++) await Promise.all([...this.#work]);
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const sa of this.sas.values()) {
      for (const t of Object.values(sa.timers)) t?.cancel();
      sa.outstanding?.timer?.cancel();
      for (const c of sa.children.values()) for (const t of c.timers) t.cancel();
    }
    for (const p of this.peers.values()) p.retryTimer?.cancel();
    await this.idle();
    await releaseCryptoPool(this.crypto);
  }
}

