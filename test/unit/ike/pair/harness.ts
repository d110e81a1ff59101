// In-process pair harness (DESIGN.md §8 "ike-pair"): two IkeEngines joined by a fake network that
// can drop, duplicate and reorder datagrams, each with a fake kernel that records every call,
// fixed randomness (SeededRandom) and one shared ManualClock.
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { ManualClock, SeededRandom, type TimerHandle } from '../../../../src/common/time.js';
import { pskFrom } from '../../../../src/ike/crypto/auth.js';
import { decodeMessage } from '../../../../src/ike/codec/message.js';
import { IkeEngine, type ChildConfig, type EngineOptions, type PeerConfig, type RestoreResult } from '../../../../src/ike/engine.js';
import { SecretBytes } from '../../../../src/common/secret.js';
import type { CheckpointStore, ChildSaCounters, Endpoint, IkeEvent, KernelChildSa, KernelChildSaRef, KernelChildSaUpdate, KernelIpsec, KernelPolicy, KernelTrap, RestoredChildSa, TrafficSelector, Transport } from '../../../../src/ike/ports.js';
import { identityFromString } from '../../../../src/ike/sa/identity.js';
import { buildCert, dn } from '../crypto/cert-builder.js';

export interface Packet {
  readonly datagram: Uint8Array;
  readonly from: Endpoint;
  readonly to: Endpoint;
  /** Decoded header summary for assertions and filters. */
  readonly exchange: number;
  readonly response: boolean;
  readonly messageId: number;
  /** First payload type (53 = SKF fragment). */
  readonly firstPayload: number;
  /** Clock time when it was sent. */
  readonly atMs: number;
}

/** Decide per datagram: deliver, drop, or deliver twice. */
export type Fate = 'deliver' | 'drop' | 'duplicate' | 'hold';

export class FakeNet {
  readonly engines = new Map<string, IkeEngine>();
  queue: Packet[] = [];
  readonly log: Packet[] = [];
  /** Held back by a 'hold' fate; release with releaseHeld() (reordering). */
  held: Packet[] = [];
  fate: (p: Packet) => Fate = () => 'deliver';
  /** Sees each datagram as it is sent, before any delivery (checks of what the sender stored). */
  onSend: ((p: Packet) => void) | null = null;
  now: () => number = () => 0;
  /** A NAPT in front of `inside`: its packets leave from `outside` with mapped source ports. */
  nat: { readonly inside: string; readonly outside: string; readonly ports: Map<number, number> } | null = null;

  transportFor(): Transport {
    return { send: (datagram, to, from) => this.#push(datagram, from, to) };
  }

  #push(datagram: Uint8Array, from: Endpoint, to: Endpoint): void {
    const nat = this.nat;
    if (nat && from.address === nat.inside) {
      let mapped = nat.ports.get(from.port);
      if (mapped === undefined) { mapped = 40_000 + nat.ports.size; nat.ports.set(from.port, mapped); }
      from = { address: nat.outside, port: mapped };
    } else if (nat && to.address === nat.outside) {
      const inner = [...nat.ports].find(([, o]) => o === to.port)?.[0];
      if (inner === undefined) return; // no mapping: the NAT drops it
      to = { address: nat.inside, port: inner };
    }
    const copy = new Uint8Array(datagram);
    let exchange = 0; let response = false; let messageId = -1; let firstPayload = 0;
    try { const m = decodeMessage(copy); exchange = m.header.exchangeType; response = m.header.response; messageId = m.header.messageId; firstPayload = copy[16] ?? 0; } catch { /* garbage is delivered as is */ }
    const p: Packet = { datagram: copy, from, to, exchange, response, messageId, firstPayload, atMs: this.now() };
    this.onSend?.(p);
    this.log.push(p);
    this.queue.push(p);
  }

  /** Deliver everything (including what the deliveries cause) until quiet. */
  async pump(): Promise<void> {
    for (let guard = 0; guard < 10_000; guard++) {
      for (const e of this.engines.values()) await e.idle();
      const p = this.queue.shift();
      if (p === undefined) {
        let busy = false;
        for (const e of this.engines.values()) { await e.idle(); }
        if (this.queue.length > 0) busy = true;
        if (!busy) return;
        continue;
      }
      const f = this.fate(p);
      if (f === 'drop') continue;
      if (f === 'hold') { this.held.push(p); continue; }
      await this.deliver(p);
      if (f === 'duplicate') await this.deliver(p);
    }
    throw new Error('network did not settle');
  }

  async deliver(p: Packet): Promise<void> {
    const e = this.engines.get(p.to.address);
    if (e) await e.receive(new Uint8Array(p.datagram), p.from, p.to);
  }

  /** Put held datagrams back (in reverse order: reordering). */
  releaseHeld(reverse = true): void {
    const h = reverse ? this.held.reverse() : this.held;
    this.queue.unshift(...h);
    this.held = [];
  }
}

/**
 * ManualClock that also knows when its next timer is due, so the pair can jump from timer to
 * timer and let each callback's async work (and the traffic it causes) finish before the next:
 * retransmission times then come out exact instead of drifting by the step size.
 */
export class PairClock extends ManualClock {
  readonly #due = new Set<{ at: number }>();
  override setTimer(ms: number, fn: () => void): TimerHandle {
    const entry = { at: this.now() + Math.max(0, ms) };
    this.#due.add(entry);
    const h = super.setTimer(ms, () => { this.#due.delete(entry); fn(); });
    return { cancel: () => { this.#due.delete(entry); h.cancel(); } };
  }
  nextDue(): number | null {
    let best: number | null = null;
    for (const e of this.#due) if (best === null || e.at < best) best = e.at;
    return best;
  }
}

export interface KernelCall { readonly op: string; readonly arg: unknown }

function tsKey(t: TrafficSelector): string {
  const port = t.startPort === 0 && t.endPort === 0xffff ? '' : t.startPort === t.endPort ? `/${t.startPort}` : `/${t.startPort}-${t.endPort}`;
  const addr = t.prefixLength === null ? `${t.startAddress}-${t.endAddress}` : `${t.startAddress}/${t.prefixLength}`;
  return t.protocol === 0 && port === '' ? addr : `${addr}[${t.protocol}${port}]`;
}

/** How XFRM identifies a policy (direction + selector; mark and if_id are not used here). */
function policyKey(p: KernelPolicy): string { return `${p.direction} ${tsKey(p.source)} > ${tsKey(p.destination)}`; }

export class FakeKernel implements KernelIpsec {
  readonly calls: KernelCall[] = [];
  /** Installed Child SAs by inbound SPI. */
  readonly installed = new Map<number, KernelChildSa & { active: boolean }>();
  readonly traps: KernelTrap[] = [];
  /**
   * The policy table as XFRM keeps it: installChildSa updates-or-adds each policy (by policyKey)
   * pointing at the SA's reqid; deleteChildSa without keepPolicies removes that SA's policies.
   */
  readonly policies = new Map<string, { readonly reqid: number; readonly child: string }>();
  /** Every policy removal, in order (a gap in protection until something installs it again). */
  readonly removedPolicies: string[] = [];
  #next: number;
  failInstall = false;
  counters: ChildSaCounters = { inboundBytes: 0n, inboundPackets: 0n, outboundBytes: 0n, outboundPackets: 0n, lastInboundMs: null };

  constructor(base: number) { this.#next = base; }

  allocSpi(req: { local: string; remote: string; reqid: number }): Promise<number> {
    this.calls.push({ op: 'allocSpi', arg: req });
    return Promise.resolve(this.#next++);
  }
  releaseSpi(req: { local: string; remote: string; spi: number }): Promise<void> { this.calls.push({ op: 'releaseSpi', arg: req }); return Promise.resolve(); }
  installChildSa(sa: KernelChildSa): Promise<void> {
    this.calls.push({ op: 'install', arg: sa });
    if (this.failInstall) return Promise.reject(new Error('EINVAL'));
    this.installed.set(sa.inbound.spi, { ...sa, active: sa.outboundActive });
    for (const pol of sa.policies) this.policies.set(policyKey(pol), { reqid: sa.reqid, child: sa.child });
    return Promise.resolve();
  }
  updateChildSa(ref: KernelChildSaRef, update: KernelChildSaUpdate): Promise<void> {
    this.calls.push({ op: 'update', arg: { ref, update } });
    const s = this.installed.get(ref.inboundSpi);
    if (s && update.activateOutbound) s.active = true;
    return Promise.resolve();
  }
  deleteChildSa(ref: KernelChildSaRef, opts: { keepPolicies: boolean }): Promise<void> {
    this.calls.push({ op: 'delete', arg: { ref, opts } });
    if (!opts.keepPolicies) {
      for (const pol of this.installed.get(ref.inboundSpi)?.policies ?? []) { this.policies.delete(policyKey(pol)); this.removedPolicies.push(policyKey(pol)); }
    }
    this.installed.delete(ref.inboundSpi);
    return Promise.resolve();
  }
  queryCounters(ref: KernelChildSaRef): Promise<ChildSaCounters> { this.calls.push({ op: 'query', arg: ref }); return Promise.resolve(this.counters); }
  installTrap(trap: KernelTrap): Promise<void> { this.calls.push({ op: 'trap', arg: trap }); this.traps.push(trap); return Promise.resolve(); }
  removeTrap(trap: { peer: string; child: string; reqid: number }): Promise<void> { this.calls.push({ op: 'untrap', arg: trap }); return Promise.resolve(); }

  /** The kernel outlives the engine: a restarted engine finds what is still installed. */
  restoreChildSa(sa: RestoredChildSa): Promise<boolean> {
    this.calls.push({ op: 'restore', arg: sa });
    const s = this.installed.get(sa.ref.inboundSpi);
    return Promise.resolve(s !== undefined && (s.active || sa.pendingOutbound !== null));
  }

  ops(op: string): unknown[] { return this.calls.filter((c) => c.op === op).map((c) => c.arg); }
}

export const ALICE = '192.0.2.1';
export const BOB = '192.0.2.2';

export interface Side {
  readonly engine: IkeEngine;
  readonly kernel: FakeKernel;
  readonly events: IkeEvent[];
  readonly name: string;
  readonly checkpoints: MemoryCheckpoints;
  /** The peer config the engine was started with. */
  readonly config: PeerConfig;
  /** What the engine's key log (ports.keyLog) reported: RFC 9370 IKE SAs' final keys, hex. */
  readonly ikeKeys: Array<Record<string, string>>;
}

/** A CheckpointStore in memory; it outlives the engine like a state directory outlives a process. */
export class MemoryCheckpoints implements CheckpointStore {
  readonly data = new Map<string, Uint8Array>();
  saves = 0;
  save(id: string, data: SecretBytes): void { this.data.set(id, new Uint8Array(data.expose())); this.saves++; }
  remove(id: string): void { this.data.delete(id); }
  items(): { id: string; data: SecretBytes }[] { return [...this.data].map(([id, d]) => ({ id, data: new SecretBytes(new Uint8Array(d)) })); }
}

export const HOUR = 3_600_000;

export function child(over: Partial<ChildConfig> = {}, side: 'alice' | 'bob' = 'alice'): ChildConfig {
  const a = ['10.1.0.0/16']; const b = ['10.2.0.0/16'];
  return {
    name: 'net', localTs: side === 'alice' ? a : b, remoteTs: side === 'alice' ? b : a, espProposals: ['aes256gcm16'],
    mode: 'tunnel', rekeyTimeMs: HOUR, lifeTimeMs: 1.1 * HOUR, ...over,
  };
}

export interface PkiSet {
  readonly ca: Uint8Array;
  /** The CA's signing key, to issue more certificates (a renewal, a stranger's). */
  readonly caKey: KeyObject;
  readonly alice: { cert: Uint8Array; key: KeyObject };
  readonly bob: { cert: Uint8Array; key: KeyObject };
}

let pkiCache: PkiSet | undefined;
/** A CA and two ECDSA P-256 end entities with FQDN SANs (alice.example / bob.example). */
export function pki(nowMs: number): PkiSet {
  if (pkiCache) return pkiCache;
  const ec = () => generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const ca = ec(); const a = ec(); const b = ec();
  const base = { notBeforeMs: nowMs - 86_400_000, notAfterMs: nowMs + 3650 * 86_400_000 };
  const CA = dn('kipsec pair CA');
  const caDer = buildCert({ ...base, subject: CA, issuer: CA, publicKey: ca.publicKey, signingKey: ca.privateKey, ca: true, keyUsage: [5, 6] });
  const ee = (name: string, k: typeof a, serial: number) => buildCert({ ...base, serial, subject: dn(name), issuer: CA, publicKey: k.publicKey, signingKey: ca.privateKey, keyUsage: [0], dns: [name] });
  pkiCache = { ca: caDer, caKey: ca.privateKey, alice: { cert: ee('alice.example', a, 2), key: a.privateKey }, bob: { cert: ee('bob.example', b, 3), key: b.privateKey } };
  return pkiCache;
}

export interface PairOptions {
  readonly auth?: 'psk' | 'cert';
  readonly alicePsk?: string;
  readonly bobPsk?: string;
  readonly alice?: Partial<PeerConfig>;
  readonly bob?: Partial<PeerConfig>;
  readonly aliceChildren?: ChildConfig[];
  readonly bobChildren?: ChildConfig[];
  readonly aliceOptions?: EngineOptions;
  readonly bobOptions?: EngineOptions;
  readonly ike?: string[];
  readonly bobIke?: string[];
  /** SeededRandom seeds for alice and bob (nonce order decides §2.8.1 collisions). */
  readonly seeds?: readonly [number, number];
}

export class Pair {
  readonly clock = new PairClock(Date.UTC(2026, 10, 27, 12));
  readonly net = new FakeNet();
  alice: Side;
  bob: Side;
  /** Rebuilds a side's engine over its kernel and checkpoint store (what a restarted daemon does). */
  readonly #respawn: Record<'alice' | 'bob', (kernel: FakeKernel, checkpoints: MemoryCheckpoints, seed: number) => Side>;

  constructor(o: PairOptions = {}) {
    this.net.now = () => this.clock.now();
    const mk = (name: 'alice' | 'bob', seed: number, spiBase: number, kernel = new FakeKernel(spiBase), checkpoints = new MemoryCheckpoints()): Side => {
      const events: IkeEvent[] = [];
      const me = name === 'alice' ? ALICE : BOB; const them = name === 'alice' ? BOB : ALICE;
      const other = name === 'alice' ? 'bob' : 'alice';
      const auth: PeerConfig['auth'] = o.auth === 'cert'
        ? { method: 'certificate', certificate: pki(this.clock.now())[name].cert, privateKey: pki(this.clock.now())[name].key, cas: [pki(this.clock.now()).ca] }
        : { method: 'psk', secret: pskFrom((name === 'alice' ? o.alicePsk : o.bobPsk) ?? 'correct horse battery staple') };
      const cfg: PeerConfig = {
        name: `to-${other}`,
        local: { address: me, id: identityFromString(`${name}.example`) },
        remote: { address: them, id: identityFromString(`${other}.example`) },
        auth,
        ike: { proposals: (name === 'bob' ? o.bobIke : undefined) ?? o.ike ?? ['aes256gcm16-prfsha256-x25519'], rekeyTimeMs: 4 * HOUR },
        children: (name === 'alice' ? o.aliceChildren : o.bobChildren) ?? [child({}, name)],
        dpd: { intervalMs: 30_000, action: 'restart' },
        startAction: name === 'alice' ? 'initiate' : 'respond',
        ...(name === 'alice' ? o.alice : o.bob),
      };
      const ikeKeys: Array<Record<string, string>> = [];
      const keyLog = { ikeKeys: (e: { spiI: bigint; spiR: bigint; keys: Readonly<Record<string, { expose(): Uint8Array }>> }): void => {
        ikeKeys.push({ spis: `${e.spiI.toString(16)}_${e.spiR.toString(16)}`, ...Object.fromEntries(Object.entries(e.keys).map(([k, v]) => [k, Buffer.from(v.expose()).toString('hex')])) });
      } };
      const engine = new IkeEngine({ transport: this.net.transportFor(), kernel, clock: this.clock, random: new SeededRandom(seed), events: { emit: (e) => events.push(e) }, checkpoints, keyLog },
        [cfg], { rekeyJitterMs: 0, ...(name === 'alice' ? o.aliceOptions : o.bobOptions) });
      this.net.engines.set(me, engine);
      return { engine, kernel, events, name, checkpoints, config: cfg, ikeKeys };
    };
    this.alice = mk('alice', o.seeds?.[0] ?? 11, 0xa0000001);
    this.bob = mk('bob', o.seeds?.[1] ?? 22, 0xb0000001);
    this.#respawn = {
      alice: (k, c, seed) => mk('alice', seed, 0, k, c),
      bob: (k, c, seed) => mk('bob', seed, 0, k, c),
    };
  }

  /**
   * `kill -9` and start again: the old engine stops mid-air (close(): nothing sent, nothing removed
   * from the kernel or the store), a new engine over the same kernel and checkpoint store resumes
   * what the store holds (unless `restore: false`), then start() as a daemon would.
   */
  async restart(who: 'alice' | 'bob', opts: { readonly restore?: boolean; readonly seed?: number } = {}): Promise<readonly RestoreResult[]> {
    await this.crash(who);
    return this.revive(who, opts);
  }

  /** The engine stops mid-air; datagrams to it are lost until revive(). */
  async crash(who: 'alice' | 'bob'): Promise<void> { await this[who].engine.close(); }

  async revive(who: 'alice' | 'bob', opts: { readonly restore?: boolean; readonly seed?: number } = {}): Promise<readonly RestoreResult[]> {
    const old = this[who];
    const side = this.#respawn[who](old.kernel, old.checkpoints, opts.seed ?? (who === 'alice' ? 111 : 222));
    this[who] = side;
    const results = opts.restore === false ? [] : await side.engine.restore(side.checkpoints.items());
    // Like the agent: whatever no resumed SA took over is adopted (kept until replaced).
    const taken = new Set(results.flatMap((r) => (r.outcome === 'resumed' ? [...r.children, ...r.lingering].map((c) => c.inboundSpi) : [])));
    const adopt = [...side.kernel.installed.values()].filter((c) => !taken.has(c.inbound.spi)).map((c) => ({
      ref: { peer: c.peer, child: c.child, reqid: c.reqid, inboundSpi: c.inbound.spi, outboundSpi: c.outbound.spi, local: c.inbound.destination, remote: c.inbound.source },
      mode: c.mode, encap: c.outbound.encap, algorithms: { kind: c.inbound.algorithms.kind, suite: 'aes256gcm16' }, localTs: [], remoteTs: [], installedAtMs: this.clock.now(),
    }));
    const peer = who === 'alice' ? 'to-bob' : 'to-alice';
    if (adopt.length > 0) side.engine.adopt(peer, adopt);
    side.engine.start();
    return results;
  }

  async connect(): Promise<void> {
    this.alice.engine.initiate('to-bob');
    await this.net.pump();
  }

  /** Move time forward timer by timer, delivering the traffic each one causes before the next. */
  async advance(ms: number): Promise<void> {
    const target = this.clock.now() + ms;
    for (let guard = 0; guard < 1_000_000; guard++) {
      const due = this.clock.nextDue();
      if (due === null || due > target) break;
      this.clock.advance(Math.max(0, due - this.clock.now()));
      await this.net.pump();
    }
    this.clock.advance(Math.max(0, target - this.clock.now()));
    await this.net.pump();
  }

  events(side: Side, type: IkeEvent['type']): IkeEvent[] { return side.events.filter((e) => e.type === type); }
}

/** Installed SAs of one side must mirror the other's: my inbound SPI is your outbound SPI, same keys. */
export function mirrored(a: FakeKernel, b: FakeKernel): boolean {
  if (a.installed.size !== b.installed.size || a.installed.size === 0) return false;
  for (const sa of a.installed.values()) {
    const peer = [...b.installed.values()].find((x) => x.outbound.spi === sa.inbound.spi);
    if (!peer || peer.inbound.spi !== sa.outbound.spi) return false;
    const k1 = sa.inbound.algorithms; const k2 = peer.outbound.algorithms;
    if (k1.kind !== 'aead' || k2.kind !== 'aead') continue;
    if (Buffer.compare(Buffer.from(k1.key.expose()), Buffer.from(k2.key.expose())) !== 0) return false;
  }
  return true;
}

/**
 * Records every moment (after any kernel change on either side) at which one side has an active
 * outbound state whose SPI the other side has no inbound state for: a packet sent then is lost.
 * Stricter than the kernel, which sends on the newest of the active states only.
 */
export function watchLoss(p: Pair): string[] {
  const lost: string[] = [];
  const check = (op: string): void => {
    for (const [me, them] of [[p.alice, p.bob], [p.bob, p.alice]] as const) {
      for (const sa of me.kernel.installed.values()) {
        if (sa.active && !them.kernel.installed.has(sa.outbound.spi))
          lost.push(`${me.name} sends on ${sa.child} spi ${sa.outbound.spi.toString(16)} that ${them.name} cannot receive (after ${op})`);
      }
    }
  };
  for (const k of [p.alice.kernel, p.bob.kernel] ) {
    const install = k.installChildSa.bind(k); const update = k.updateChildSa.bind(k); const del = k.deleteChildSa.bind(k);
    k.installChildSa = async (sa) => { await install(sa); check('install'); };
    k.updateChildSa = async (ref, u) => { await update(ref, u); check('update'); };
    k.deleteChildSa = async (ref, o) => { await del(ref, o); check('delete'); };
  }
  return lost;
}
