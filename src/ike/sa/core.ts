// The engine core behind the IkeEngine facade: peer registry, the SA table keyed by our SPI,
// datagram intake (decode → window/response-cache → decrypt/reassemble → payload rules →
// exchange step), per-SA serialisation, and status. Initiated exchanges are in tasks.ts,
// answered ones in responder.ts, SA lifecycle in lifecycle.ts.
import { createHash } from 'node:crypto';
import { ConfigError, errorMessage, KipsecError, ParseError } from '../../common/errors.js';
import { SecretBytes } from '../../common/secret.js';
import type { Clock, Random } from '../../common/time.js';
import { DhId, ExchangeType, TransformType } from '../constants.js';
import { checkInnerPayloads, checkOuterPayloads } from '../codec/rules.js';
import { decodeMessage, type IkeMessage } from '../codec/message.js';
import { IntegrityError } from '../crypto/errors.js';
import { InvalidMajorVersionError } from '../codec/errors.js';
import { parseProposals } from '../policy/proposal.js';
import { preferredDhGroup } from '../policy/convert.js';
import type { AdoptedChildSa, ChildSaStatus, EngineSizes, EngineStatus, IkeSaStatus, PeerStatus, RekeyRequest, RekeyStarted } from '../types.js';
import type { Endpoint, EnginePorts, EngineLogger, IkeEvent, IkeFailure, KernelIpsec } from '../ports.js';
import { CookieJar } from '../exchanges/cookie.js';
import { isIp } from './addr.js';
import type { EngineOptions, PeerConfig, PeerPins } from './config.js';
import type { ResolvedOptions } from './context.js';
import type { EngineHost } from './host.js';
import * as D from './defaults.js';
import { identityText } from './identity.js';
import { encodeCheckpoint, snapshotSa } from './checkpoint.js';
import { authenticated, ikeSpisText, ourSpi, spiHex, type ChildSa, type IkeSa, type PeerRuntime, type Task } from './ike-sa.js';
import { restoreSas, type RestoreResult } from './restore.js';
import { linkReauth } from './reauth.js';
import { isLive, removeChild, teardown } from './lifecycle.js';
import { answerMalformed, answerUndecodableInit, followPeer, handleInitRequest, handleRequest } from './responder.js';
import { handleResponse, queueTask, startInitiator } from './tasks.js';
import { formatTs, parseTs, toPortTs } from './ts.js';
import { openMessage, verifyRetransmission } from './wire.js';
import { admitDatagram, EngineLimits, resolveLimits } from './limits.js';
import { pooledRandom } from './random-pool.js';
import { Ikev1Notices } from './ikev1.js';
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
  readonly #byPeer = new Map<string, Set<IkeSa>>();
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
    const name = sa.peer.config.name;
    let set = this.#byPeer.get(name);
    if (!set) { set = new Set(); this.#byPeer.set(name, set); }
    set.add(sa);
  }
  /** The responder switched `sa` to another peer config after IKE_AUTH identified the peer. */
  rehome(sa: IkeSa, previousPeer: string): void {
    const set = this.#byPeer.get(previousPeer);
    if (set) { set.delete(sa); if (set.size === 0) this.#byPeer.delete(previousPeer); }
    this.register(sa);
  }
  unregister(sa: IkeSa): void {
    if (this.sas.get(ourSpi(sa)) === sa) { this.sas.delete(ourSpi(sa)); this.#forget(spiHex(ourSpi(sa))); }
    const set = this.#byPeer.get(sa.peer.config.name);
    if (set) { set.delete(sa); if (set.size === 0) this.#byPeer.delete(sa.peer.config.name); }
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

  /** Digest of what the store holds per checkpoint id, so an unchanged SA is not written again. */
  readonly #saved = new Map<string, string>();
  /** When each SA last resent its cached response (RFC 7296 §2.1 retransmissions). */
  readonly #resentAt = new WeakMap<IkeSa, number>();

  /**
   * Save `sa`'s checkpoint if it changed (or remove it once the SA is not resumable). Called before
   * any of its datagrams leave, so the stored message IDs are never behind the wire.
   */
  persist(sa: IkeSa): void {
    const store = this.ports.checkpoints;
    if (!store || this.#closed) return;
    const id = spiHex(ourSpi(sa));
    const cp = this.sas.get(ourSpi(sa)) === sa ? snapshotSa(sa) : null;
    if (cp === null) { this.#forget(id); return; }
    const data = encodeCheckpoint(cp);
    const digest = createHash('sha256').update(data).digest('base64');
    if (this.#saved.get(id) === digest) { data.fill(0); return; }
    try {
      store.save(id, new SecretBytes(data));
      this.#saved.set(id, digest);
    } catch (err) {
      this.#saved.delete(id);
      this.drop('checkpoint-failed');
      this.log?.warn({ peer: sa.peer.config.name, ikeSpis: ikeSpisText(sa), err: errorMessage(err) }, 'IKE SA checkpoint not saved: a restart will re-establish this SA');
    } finally { data.fill(0); }
  }

  /** persist() every SA of the peer: an exchange can change two of them (IKE rekey). */
  persistPeer(peer: string): void {
    if (!this.ports.checkpoints) return;
    for (const sa of this.#byPeer.get(peer) ?? []) this.persist(sa);
  }

  #forget(id: string): void {
    if (!this.#saved.delete(id) || this.#closed) return;
    try { this.ports.checkpoints?.remove(id); } catch (err) { this.log?.warn({ id, err: errorMessage(err) }, 'IKE SA checkpoint not removed'); }
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
    const path = `peers[${config.name}]`;
    if (!config.name) throw new ConfigError('peer.name', 'empty peer name');
    if (!isIp(config.local.address)) throw new ConfigError(`${path}.local.address`, `"${config.local.address}" is not an IP address`);
    if (config.remote.address !== '%any' && !isIp(config.remote.address)) throw new ConfigError(`${path}.remote.address`, `"${config.remote.address}" is not an IP address or %any`);
    if (config.auth.method === 'psk' && config.remote.id === undefined) throw new ConfigError(`${path}.remote.id`, 'PSK authentication needs the remote identity');
    if (config.auth.method === 'certificate' && config.auth.peerPins) checkPinsConfig(config.auth.peerPins, `${path}.auth.peerPins`);
    const allowWeak = config.ike.allowWeak ?? false;
    // RFC 9370 ADDKE run in IKE_INTERMEDIATE (IKE SA setup) and IKE_FOLLOWUP_KE (IKE rekey, and
    // Child SAs created or rekeyed with PFS in CREATE_CHILD_SA; IKE_AUTH's Child SA has none).
    const ikeProposals = parseProposals(config.ike.proposals, 'ike', { allowWeak, path: `${path}.ike.proposals`, additionalKeyExchanges: true });
    if (preferredDhGroup(ikeProposals) === null) throw new ConfigError(`${path}.ike.proposals`, 'IKE proposals need a key exchange method');
    const existing = this.peers.get(config.name);
    const children = config.children.map((c, i) => {
      const cp = `${path}.children[${i}]`;
      if (c.lifeTimeMs <= c.rekeyTimeMs) throw new ConfigError(`${cp}.lifeTimeMs`, 'must exceed rekeyTimeMs');
      const espProposals = parseProposals(c.espProposals, 'esp', { allowWeak, path: `${cp}.espProposals`, additionalKeyExchanges: true });
      const pfs = espProposals.flatMap((p) => p.transforms).find((t) => t.type === TransformType.DH && t.id !== DhId.NONE);
      const reqid = existing?.children.find((x) => x.config.name === c.name)?.reqid ?? this.#reqid++;
      return {
        config: c, reqid, espProposals, pfsGroup: pfs?.id ?? null,
        localTs: c.localTs.map((t, j) => parseTs(t, `${cp}.localTs[${j}]`)), remoteTs: c.remoteTs.map((t, j) => parseTs(t, `${cp}.remoteTs[${j}]`)),
      };
    });
    const rt: PeerRuntime = {
      config, ikeProposals, children, terminated: false, everEstablished: existing?.everEstablished ?? false, retryTimer: null,
      local: { address: config.local.address, port: config.local.port ?? 500 },
      remote: { address: config.remote.address, port: config.remote.port ?? 500 },
    };
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

  async removePeer(name: string): Promise<void> {
    if (!this.peers.has(name)) return;
    await this.terminate(name);
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

  liveSas(peer: string): IkeSa[] { return [...(this.#byPeer.get(peer) ?? [])].filter(isLive); }

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

  async terminate(name: string): Promise<void> {
    const p = this.peer(name);
    p.terminated = true;
    p.retryTimer?.cancel();
    const sas = [...(this.#byPeer.get(name) ?? [])];
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
    const sa = live.filter((s) => s.state.tag === 'established').sort((a, b) => (b.upSerial ?? 0) - (a.upSerial ?? 0))[0];
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
    if (!found) return;
    const { sa, child: c } = found;
    void this.enqueue(sa, async () => {
      if (!hard) { if (c.state.tag === 'installed') queueTask(this, sa, { kind: 'child-rekey', old: c }); return; }
      await removeChild(this, sa, c, 'hard-lifetime');
      if (sa.state.tag === 'established') {
        queueTask(this, sa, { kind: 'child-delete', child: c, reason: 'hard-lifetime' });
        if (!sa.peer.terminated) queueTask(this, sa, { kind: 'child-create', child: c.runtime });
      }
    });
  }

  natMapping(inboundSpi: number, from: Endpoint): void {
    const found = this.#childByInbound(inboundSpi);
    if (!found) { this.drop('mapping-unknown-spi'); return; }
    const { sa, child: c } = found;
    const moved = (): boolean => sa.remote.address === from.address && sa.remote.port === from.port;
    // The kernel reports every such packet until the SA moves: most of them find it moved.
    if (moved()) return;
    void this.enqueue(sa, async () => {
      // §2.23: only the side facing a NAT follows (as strongSwan: the peer must be behind one).
      if (sa.state.tag !== 'established' || !sa.natRemote || c.state.tag === 'deleted') { this.drop('mapping-ignored'); return; }
      if (moved()) return;
      sa.remote = from;
      await followPeer(this, sa);
      this.persistPeer(sa.peer.config.name);
    });
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
    return this.enqueue(sa, () => this.#onMessage(sa, m, copy, from, to));
  }

  async #onMessage(sa: IkeSa, m: IkeMessage, datagram: Uint8Array, from: Endpoint, to: Endpoint): Promise<void> {
    if (sa.state.tag === 'dead') { this.drop('dead-sa'); return; }
    const h = m.header;
    if (h.exchangeType === ExchangeType.IKE_SA_INIT) {
      if (sa.outstanding?.task.kind !== 'ike-init') { this.drop('unexpected-response'); return; }
      try { checkOuterPayloads(h.exchangeType, true, m.payloads); } catch { this.drop('payload-rules'); return; }
      await handleResponse(this, sa, m, datagram);
      return;
    }
    try { checkOuterPayloads(h.exchangeType, h.response, m.payloads); } catch { this.drop('payload-rules'); return; }
    // §1.4: INFORMATIONAL exchanges follow the initial ones; on an SA not yet authenticated, a
    // Delete or notify comes from whoever ran IKE_SA_INIT with us, so it is neither acted on nor answered.
    if (!h.response && h.exchangeType === ExchangeType.INFORMATIONAL && !authenticated(sa)) { this.drop('unauthenticated-informational'); return; }
    if (!h.response) {
      if (sa.lastResponse !== null && h.messageId === sa.lastResponse.messageId && h.messageId + 1 === sa.expectedRequestId) {
        // §2.1 retransmitted request: resend the cached response (RFC 7383 §2.6.1: on fragment 1
        // only), once the datagram verifies, so a forged one with a seen message ID gets nothing.
        const env = m.encrypted();
        if (env?.kind === 'sk' || (env?.kind === 'skf' && env.fragmentNumber === 1)) {
          try { verifyRetransmission(sa, m, datagram); } catch (e) { this.drop(e instanceof IntegrityError ? 'integrity' : 'malformed'); return; }
          // A captured request verifies however often it is replayed, from any source address:
          // one resend per D.RESEND_INTERVAL_MS bounds the reflection. Peers retransmit less often.
          const now = this.clock.now(); const last = this.#resentAt.get(sa);
          if (last !== undefined && now - last < D.RESEND_INTERVAL_MS) { this.drop('resend-rate'); return; }
          this.#resentAt.set(sa, now);
          for (const d of sa.lastResponse.datagrams) this.ports.transport.send(d, from, to);
        }
        this.drop('retransmitted-request');
        return;
      }
      if (h.messageId !== sa.expectedRequestId) { this.drop('window'); return; }
    } else if (sa.outstanding === null || sa.outstanding.messageId !== h.messageId) { this.drop('unexpected-response'); return; }
    let opened;
    try { opened = openMessage(sa, m, datagram, this.limits); } catch (e) {
      this.drop(e instanceof IntegrityError ? 'integrity' : 'malformed');
      // Decrypted fine but the inner payloads are bad: the peer is authentic, so tell it why.
      if (!h.response && e instanceof ParseError) answerMalformed(this, sa, h.exchangeType, h.messageId, e);
      return;
    }
    if (opened.kind === 'drop') { this.drop(opened.reason); return; }
    if (opened.kind === 'partial') return;
    const inner = opened.message;
    try { checkInnerPayloads(h.exchangeType, h.response, inner.payloads); } catch (e) {
      this.drop('payload-rules');
      if (!h.response && e instanceof ParseError) answerMalformed(this, sa, h.exchangeType, h.messageId, e);
      return;
    }
    sa.lastInboundMs = this.clock.now();
    if (h.response) await handleResponse(this, sa, inner, datagram);
    else await handleRequest(this, sa, inner, from, to);
  }

  // ───────────── status ─────────────

  status(): EngineStatus {
    const peers: PeerStatus[] = [...this.peers.values()].map((p) => {
      const sas = [...(this.#byPeer.get(p.config.name) ?? [])].filter((s) => s.state.tag !== 'dead');
      const best = sas.filter((s) => s.state.tag === 'established').sort((a, b) => b.serial - a.serial)[0] ?? sas.sort((a, b) => b.serial - a.serial)[0];
      const err = this.lastErrors.get(p.config.name) ?? null;
      return { name: p.config.name, ike: best ? saStatus(best) : null, adoptedChildren: (this.adopted.get(p.config.name) ?? []).map(adoptedStatus), lastError: err };
    });
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

/** Pins are lower-case hex SHA-256 digests, and a pin list that pins nothing is a mistake. */
function checkPinsConfig(pins: PeerPins, path: string): void {
  let n = 0;
  for (const kind of ['spkiSha256', 'certSha256'] as const) {
    (pins[kind] ?? []).forEach((pin, i) => {
      if (!/^[0-9a-f]{64}$/.test(pin)) throw new ConfigError(`${path}.${kind}[${i}]`, `"${pin}" is not a SHA-256 digest in lower-case hex (64 digits 0-9a-f)`);
      n++;
    });
  }
  if (n === 0) throw new ConfigError(path, 'no pins: list at least one spkiSha256 or certSha256, or leave peerPins out to accept any certificate the CAs vouch for');
}

const STATE_NAME = { 'init-sent': 'connecting', 'auth-sent': 'connecting', 'init-done': 'connecting', established: 'established', rekeyed: 'rekeying', deleting: 'deleting', dead: 'down' } as const;

function childStatus(c: ChildSa): ChildSaStatus {
  const state = c.state.tag === 'installed' ? 'installed' : c.state.tag === 'rekeying' ? 'rekeying' : c.state.tag === 'rekeyed' ? 'rekeying' : 'deleting';
  return { name: c.ref.child, state, ref: c.ref, mode: c.mode, suite: c.suiteText, localTs: c.localTs.map(formatTs), remoteTs: c.remoteTs.map(formatTs), encap: c.encap !== null, installedAtMs: c.installedAtMs, rekeyAtMs: c.rekeyAtMs, expiresAtMs: c.expiresAtMs, adopted: false };
}

function adoptedStatus(a: AdoptedChildSa): ChildSaStatus {
  return { name: a.ref.child, state: 'installed', ref: a.ref, mode: a.mode, suite: a.algorithms.suite, localTs: a.localTs, remoteTs: a.remoteTs, encap: a.encap !== null, installedAtMs: a.installedAtMs, rekeyAtMs: 0, expiresAtMs: 0, adopted: true };
}

function saStatus(sa: IkeSa): IkeSaStatus {
  return {
    state: STATE_NAME[sa.state.tag], role: sa.role, ikeSpis: ikeSpisText(sa), suite: sa.keys?.suiteText ?? null,
    local: sa.local, remote: sa.remote, localId: identityText(sa.peer.config.local.id), remoteId: sa.remoteId,
    natDetected: { local: sa.natLocal, remote: sa.natRemote }, establishedAtMs: sa.establishedAtMs, rekeyAtMs: sa.rekeyAtMs, resumedAtMs: sa.resumedAtMs,
    children: [...sa.children.values()].filter((c) => c.state.tag !== 'deleted').map(childStatus),
  };
}
