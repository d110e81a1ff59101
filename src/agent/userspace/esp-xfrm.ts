// The agent's XFRM port (AgentXfrm) on the userspace ESP engine, the way strongSwan's
// kernel-libipsec implements its kernel_ipsec interface on libipsec: XfrmKernel, adoption, strict
// blocks and the daemon run unchanged on top, and only this file knows that no kernel holds the
// states (DESIGN.md §5 "userspace").
//
// What XFRM does and this does instead:
//   ALLOCSPI     a random unused SPI ≥ 256, picked here; an SPI we allocated marks an inbound SA
//   NEWSA        engine.addSa; inbound selectors from the child's in policies, outbound peer from
//                the SA's destination and its UDP encapsulation port (ESP in UDP only)
//   UPDPOLICY    out policies with a reqid become engine policies; in/fwd/block ones are only
//                remembered (the engine checks inbound selectors per SA, and drops what has no SA)
//   lifetimes    packet/byte limits in the engine ('expire' events); time limits here (one timer for all: deadlines.ts);
//                a hard expire removes the SA, as the kernel does, then reports it
//   dumps        what this process installed, counters from engine.stats(); one SA's (getAe,
//                expiry reports) from engine.saStats(), which copies no other SA's
// Nothing outlives the process: a restarted agent finds no SAs to adopt or resume.
import { randomInt } from 'node:crypto';
import { boundedMemo } from '../../common/bounded-memo.js';
import { KipsecError } from '../../common/errors.js';
import type { SecretBytes } from '../../common/secret.js';
import { DEFAULT_REPLAY_WINDOW, cidrSelector, type EspAlgorithm, type EspDirection, type EspEvent, type EspSelector } from '../../esp/index.js';
import {
  NetlinkErrnoError, XfrmExistsError, XfrmNotFoundError,
  type AllocSpiRequest, type PolicyId, type PolicySpec, type PolicyState, type SaAe, type SaId, type SaSpec, type SaState,
  type TrafficSelector, type XfrmEvent, type XfrmEventGroup, type XfrmEvents,
} from '../../xfrm/index.js';
import type { ChildInstall, InstalledChild } from '../../xfrm/install.js';
import type { AgentXfrm } from '../daemon.js';
import { SpiTable } from '../kernel-spi-table.js';
import type { UserspaceDatapath } from './datapath.js';
import { Deadlines, type Deadline } from './deadlines.js';

const ENOENT = 2;
const EEXIST = 17;
const ZERO_STATS = { replay_window: 0, replay: 0, integrity_failed: 0 } as const;

/** XFRM's AEAD names (src/ike/sa/esp.ts) → the engine's. */
const AEAD: Readonly<Record<string, EspAlgorithm>> = { 'rfc4106(gcm(aes))': 'aes-gcm-16', 'rfc7539esp(chacha20,poly1305)': 'chacha20-poly1305' };
/** cbc(aes) with XFRM's HMAC name and truncation (RFC 4868 §2.3) → the engine's suite. */
const CBC_HMAC: Readonly<Record<string, EspAlgorithm>> = {
  'hmac(sha256)/128': 'aes-cbc-hmac-sha2-256-128', 'hmac(sha384)/192': 'aes-cbc-hmac-sha2-384-192', 'hmac(sha512)/256': 'aes-cbc-hmac-sha2-512-256',
};

const SUITES = 'AES-GCM-16, ChaCha20-Poly1305, or AES-CBC with HMAC-SHA2-256/384/512';

/** The engine's suite and keys for an XFRM state, or an EspSuiteError naming what it cannot key. */
export function engineSuite(sa: SaSpec): { algorithm: EspAlgorithm; key: SecretBytes; integrityKey?: SecretBytes } {
  const spi = sa.spi.toString(16);
  if (sa.aead) {
    const algorithm = AEAD[sa.aead.name];
    if (algorithm === undefined) throw new EspSuiteError('ERR_ESP_SUITE', `--datapath userspace does ${SUITES}; SA ${spi} asks for ${sa.aead.name}`);
    return { algorithm, key: sa.aead.key };
  }
  if (sa.crypt?.name === 'cbc(aes)' && sa.auth) {
    const algorithm = CBC_HMAC[`${sa.auth.name}/${sa.auth.truncBits}`];
    if (algorithm === undefined) throw new EspSuiteError('ERR_ESP_SUITE', `--datapath userspace does ${SUITES}; SA ${spi} asks for cbc(aes) with ${sa.auth.name} truncated to ${sa.auth.truncBits} bits`);
    return { algorithm, key: sa.crypt.key, integrityKey: sa.auth.key };
  }
  throw new EspSuiteError('ERR_ESP_SUITE', `--datapath userspace does ${SUITES}; SA ${spi} asks for ${sa.crypt?.name ?? 'no cipher'}${sa.auth ? ` with ${sa.auth.name}` : ' without integrity'}`);
}

export class EspSuiteError extends KipsecError {}

interface Held {
  /** The spec as given (the kernel port holds the same object): never copied here. */
  spec: SaSpec;
  readonly direction: EspDirection;
  readonly reqid: number;
  /** Wall-clock seconds (a number: a BigInt per SA cost more; XFRM's add_time is made of it when read). */
  readonly addedSec: number;
  /**
   * Its next add-expire in #limits: the soft one, then (added when the soft one fires) the hard one.
   * One entry at a time, not one per limit: an entry is ~90 bytes with its time.
   */
  limit: Deadline<Held> | null;
  /** Whether `limit` is the soft add-expire. */
  softDue: boolean;
}

type SaCounters = { readonly bytes: bigint; readonly packets: bigint; readonly lastUseMs: number | null } | undefined;

interface HeldPolicy { readonly spec: PolicySpec; readonly index: number; readonly engine: boolean }

const policyKey = (p: PolicyId): string => JSON.stringify([p.selector.src, p.selector.dst, p.selector.proto ?? 0, p.selector.sport ?? 0, p.selector.dport ?? 0, p.dir, p.mark?.value ?? 0, p.ifId ?? 0]);
const notFound = (op: string, id: SaId): XfrmNotFoundError => new XfrmNotFoundError(op, { kind: 'sa', dst: id.dst, spi: id.spi, ...(id.src ? { src: id.src } : {}) }, new NetlinkErrnoError(ENOENT, 0));

/** Outbound: where the SA sends (its destination and encap dport); inbound: where its packets come from (source, encap sport). */
function peerOf(sa: SaSpec, direction: EspDirection): { address: string; port: number } {
  return direction === 'out' ? { address: sa.dst, port: sa.encap?.dport ?? 0 } : { address: sa.src, port: sa.encap?.sport ?? 0 };
}

/**
 * A CIDR's inclusive range, remembered: every Child SA install converts its policies' selectors
 * (the same few prefixes over and over), and cidrSelector's BigInt arithmetic was ~40 µs of main
 * thread per handshake in the rate bench's profile. Bounded: cleared when full.
 */
const RANGES = new Map<string, ReturnType<typeof cidrSelector>>();
function cidrRange(cidr: string): ReturnType<typeof cidrSelector> {
  return boundedMemo(RANGES, cidr, () => cidrSelector(cidr)); // a bad CIDR throws and is not kept
}

/** An XFRM selector side as the engine's inclusive range, with the selector's protocol and port. */
export function espSelector(cidr: string, proto: number | undefined, port: number | undefined): EspSelector {
  const { start, end } = cidrRange(cidr);
  return { start, end, protocol: proto ?? 0, startPort: port ?? 0, endPort: port ?? 0xffff };
}

/** Inbound SA selectors: inner source in the remote side of the in policies, destination in ours. */
export function inboundSelectors(policies: readonly PolicySpec[], reqid: number): { sources: EspSelector[]; destinations: EspSelector[] } | undefined {
  const ins = policies.filter((p) => p.dir === 'in' && p.templates?.some((t) => t.reqid === reqid)).slice(0, 8);
  if (ins.length === 0) return undefined;
  const sel = (s: TrafficSelector, which: 'src' | 'dst'): EspSelector => espSelector(s[which], s.proto, which === 'src' ? s.sport : s.dport);
  return { sources: ins.map((p) => sel(p.selector, 'src')), destinations: ins.map((p) => sel(p.selector, 'dst')) };
}

export class EspXfrm implements AgentXfrm {
  readonly #dp: UserspaceDatapath;
  readonly #now: () => number;
  /** Inbound SPIs handed out by allocSpi (larval until installed): SPI as an int32 (a small integer, not a heap number) → local address. */
  readonly #allocated = new Map<number, string>();
  /**
   * By destination and SPI, as XFRM knows them. #add looks for an SA to move by SPI and reqid
   * among the SAs with its SPI (a scan of all SAs per install was n² over a burst).
   */
  readonly #sas = new SpiTable<Held>((h) => h.spec.dst);
  readonly #policies = new Map<string, HeldPolicy>();
  readonly #handlers = new Set<(e: XfrmEvent) => void>();
  /** SA time limits: one timer for all of them (an entry names its SA, nothing more). */
  readonly #limits: Deadlines<Held>;
  #nextPolicy = 1;
  #unsubscribe: (() => void) | undefined;

  constructor(dp: UserspaceDatapath, o: { readonly now?: () => number } = {}) {
    this.#dp = dp; this.#now = o.now ?? Date.now;
    this.#limits = new Deadlines((h) => this.#limitDue(h), this.#now);
  }

  async allocSpi(q: AllocSpiRequest): Promise<number> {
    const min = Math.max(q.min ?? 256, 256); const max = Math.min(q.max ?? 0xffffffff, 0xffffffff);
    for (let i = 0; i < 64; i++) {
      // randomInt's range is below 2^48; SPIs are 32-bit.
      const spi = randomInt(min, max + 1) >>> 0;
      if (this.#allocated.has(spi | 0)) continue;
      this.#allocated.set(spi | 0, q.dst);
      return spi;
    }
    throw new KipsecError('ERR_ESP_SPI', 'no unused SPI found in 64 tries');
  }

  async addSa(sa: SaSpec): Promise<void> { this.#add(sa, undefined); }

  #add(sa: SaSpec, selectors: { sources: EspSelector[]; destinations: EspSelector[] } | undefined): void {
    if (this.#sas.get(sa.dst, sa.spi)) throw new XfrmExistsError('add', { kind: 'sa', dst: sa.dst, spi: sa.spi, src: sa.src }, new NetlinkErrnoError(EEXIST, 0));
    const suite = engineSuite(sa);
    const reqid = sa.reqid ?? 0;
    const prior = this.#sas.find(sa.spi, (h) => h.reqid === reqid);
    if (prior) { this.#move(prior, sa); return; }
    // An SPI we allocated is an inbound one (the peer picks outbound SPIs; one equal to ours is
    // told apart by the local address it was allocated for).
    const direction: EspDirection = this.#allocated.get(sa.spi | 0) === sa.dst ? 'in' : 'out';
    if (direction === 'out' && !sa.encap) throw new EspSuiteError('ERR_ESP_ENCAP', `--datapath userspace sends ESP in UDP only; SA ${sa.spi.toString(16)} to ${sa.dst} has no UDP encapsulation`);
    // The selectors go to the engine only: a move changes the SA's peer in place (#move), so
    // nothing here needs them again (keeping them cost ~0.7 KiB per inbound SA).
    const sel = selectors;
    const limits = {
      ...(sa.soft?.packets ? { softPackets: sa.soft.packets } : {}), ...(sa.hard?.packets ? { hardPackets: sa.hard.packets } : {}),
      ...(sa.soft?.bytes ? { softBytes: sa.soft.bytes } : {}), ...(sa.hard?.bytes ? { hardBytes: sa.hard.bytes } : {}),
    };
    const engine = this.#dp.engine;
    this.#unsubscribe ??= engine.on((e) => this.#onEngine(e));
    engine.addSa({
      direction, spi: sa.spi, reqid, ...suite, ...(sa.esn ? { esn: true } : {}), limits,
      replayWindow: direction === 'in' ? Math.max(sa.replayWindow ?? 0, DEFAULT_REPLAY_WINDOW) : 0,
      ...(sa.encap ? { peer: peerOf(sa, direction) } : {}),
      ...(direction === 'in' && sel ? sel : {}),
    });
    const now = this.#now();
    const held: Held = { spec: sa, direction, reqid, addedSec: Math.floor(now / 1000), limit: null, softDue: false };
    const soft = sa.soft?.addExpiresSec ?? 0; const hard = sa.hard?.addExpiresSec ?? 0;
    // A soft limit past the hard one never fires: the hard expire removes the SA first.
    if (soft > 0 && (hard === 0 || soft <= hard)) { held.limit = this.#limits.add(now + soft * 1000, held); held.softDue = true; }
    else if (hard > 0) held.limit = this.#limits.add(now + hard * 1000, held);
    this.#sas.set(sa.spi, held);
  }

  /**
   * An add-expire came. After the soft one, the hard one is due where it was from the add (the
   * kernel port never changes an SA's limits after the install).
   */
  #limitDue(h: Held): void {
    const d = h.limit;
    h.limit = null;
    if (!h.softDue) { this.#expire(h, true); return; }
    h.softDue = false;
    const soft = h.spec.soft?.addExpiresSec ?? 0; const hard = h.spec.hard?.addExpiresSec ?? 0;
    // Before the report: a handler that deletes the SA takes this entry out with it.
    if (d && hard > 0) h.limit = this.#limits.add(d.atMs + (hard - soft) * 1000, h);
    this.#expire(h, false);
  }

  /**
   * XFRM moves an SA to new addresses by adding it there and deleting the old one; the engine
   * knows an SA by (direction, SPI, reqid), so here the SA stays and only its peer changes.
   */
  #move(h: Held, sa: SaSpec): void {
    if (sa.encap) this.#dp.engine.updateSa({ direction: h.direction, spi: sa.spi, reqid: h.reqid }, { peer: peerOf(sa, h.direction) });
    this.#sas.delete(h.spec.spi, h);
    h.spec = sa;
    this.#sas.set(sa.spi, h);
    if (h.direction === 'in') this.#allocated.set(sa.spi | 0, sa.dst);
  }

  async updateSa(sa: SaSpec): Promise<void> {
    const h = this.#sas.get(sa.dst, sa.spi);
    if (!h) throw notFound('update', sa);
    const next = peerOf(sa, h.direction); const was = peerOf(h.spec, h.direction);
    if (sa.encap && (!h.spec.encap || next.address !== was.address || next.port !== was.port)) {
      this.#dp.engine.updateSa({ direction: h.direction, spi: sa.spi, reqid: h.reqid }, { peer: next });
    }
    h.spec = sa;
  }

  async deleteSa(id: SaId): Promise<void> {
    const h = this.#sas.get(id.dst, id.spi);
    if (!h) {
      // A larval SPI (allocSpi without an install: a failed or refused exchange) is released here.
      if (this.#allocated.get(id.spi | 0) === id.dst) { this.#allocated.delete(id.spi | 0); return; }
      throw notFound('delete', id);
    }
    this.#drop(h);
  }

  #drop(h: Held): void {
    if (h.limit) this.#limits.remove(h.limit);
    h.limit = null;
    this.#sas.delete(h.spec.spi, h);
    if (h.direction === 'in') this.#allocated.delete(h.spec.spi | 0);
    if (this.#dp.isOpen) this.#dp.engine.removeSa({ direction: h.direction, spi: h.spec.spi, reqid: h.reqid });
  }

  /** One SA's counters from the engine (espSaStats: the others are not copied). */
  #counters(h: Held): SaCounters {
    return this.#dp.isOpen ? this.#dp.engine.saStats({ direction: h.direction, spi: h.spec.spi, reqid: h.reqid }) : undefined;
  }

  #state(h: Held, c: SaCounters): SaState {
    const use = c?.lastUseMs ? BigInt(Math.floor(c.lastUseMs / 1000)) : 0n;
    return { ...h.spec, current: { bytes: c?.bytes ?? 0n, packets: c?.packets ?? 0n, add_time: BigInt(h.addedSec), use_time: use }, stats: ZERO_STATS };
  }

  async getAe(id: SaId & { src: string; reqid?: number }): Promise<SaAe> {
    const h = this.#sas.get(id.dst, id.spi);
    if (!h) throw notFound('get', id);
    return { current: this.#state(h, this.#counters(h)).current, replay: undefined, replayEsn: undefined, replayThresh: undefined, etimerThresh: undefined };
  }

  async listSas(): Promise<SaState[]> {
    const all = new Map<string, SaCounters>();
    if (this.#dp.isOpen) for (const c of this.#dp.engine.stats().sas) all.set(`${c.direction}|${c.spi >>> 0}|${c.reqid >>> 0}`, c);
    return [...this.#sas.values()].map((h) => this.#state(h, all.get(`${h.direction}|${h.spec.spi >>> 0}|${h.reqid >>> 0}`)));
  }

  async updatePolicy(p: PolicySpec): Promise<void> {
    const k = policyKey(p);
    const old = this.#policies.get(k);
    const reqid = p.templates?.find((t) => t.reqid !== undefined)?.reqid;
    const engine = p.dir === 'out' && p.action !== 'block' && reqid !== undefined;
    const index = old?.index ?? this.#nextPolicy++;
    if (engine) {
      const s = p.selector;
      this.#dp.engine.addPolicy({ id: index, reqid, ...(p.priority !== undefined ? { priority: p.priority } : {}), source: espSelector(s.src, s.proto, s.sport), destination: espSelector(s.dst, s.proto, s.dport) });
    } else if (old?.engine) this.#dp.engine.removePolicy(index);
    this.#policies.set(k, { spec: p, index, engine });
  }

  async deletePolicy(id: PolicyId): Promise<void> {
    const k = policyKey(id);
    const p = this.#policies.get(k);
    if (!p) throw new XfrmNotFoundError('delete', { kind: 'policy', selector: id.selector, dir: id.dir }, new NetlinkErrnoError(ENOENT, 0));
    this.#policies.delete(k);
    if (p.engine && this.#dp.isOpen) this.#dp.engine.removePolicy(p.index);
  }

  async listPolicies(): Promise<PolicyState[]> {
    return [...this.#policies.values()].map((p) => ({ ...p.spec, index: p.index, current: { bytes: 0n, packets: 0n, add_time: 0n, use_time: 0n } }));
  }

  /** SAs, then policies; on a failure everything this call added is taken out again. */
  async installChild(c: ChildInstall): Promise<InstalledChild> {
    const sas: SaId[] = []; const policies: PolicyId[] = [];
    try {
      for (const sa of c.sas) {
        this.#add(sa, sa.reqid !== undefined && this.#allocated.get(sa.spi | 0) === sa.dst ? inboundSelectors(c.policies, sa.reqid) : undefined);
        sas.push({ dst: sa.dst, spi: sa.spi, src: sa.src, proto: 'esp' });
      }
      for (const p of c.policies) {
        if (!c.replacePolicies && this.#policies.has(policyKey(p))) throw new XfrmExistsError('add', { kind: 'policy', selector: p.selector, dir: p.dir }, new NetlinkErrnoError(EEXIST, 0));
        await this.updatePolicy(p);
        policies.push({ selector: p.selector, dir: p.dir, ...(p.mark ? { mark: p.mark } : {}), ...(p.ifId !== undefined ? { ifId: p.ifId } : {}) });
      }
    } catch (e) {
      await this.removeChild({ sas, policies }).catch(() => { /* best effort: the first error is the one to report */ });
      throw e;
    }
    return { sas, policies };
  }

  /** Policies, then SAs; missing ones are fine. */
  async removeChild(c: InstalledChild): Promise<void> {
    const missing = (e: unknown): void => { if (!(e instanceof XfrmNotFoundError)) throw e; };
    for (const p of c.policies) await this.deletePolicy(p).catch(missing);
    for (const s of c.sas) await this.deleteSa(s).catch(missing);
  }

  events(_groups: readonly XfrmEventGroup[], handler: (e: XfrmEvent) => void): XfrmEvents {
    this.#handlers.add(handler);
    return { onError: () => { /* no socket to overrun: events are direct calls */ }, close: () => { this.#handlers.delete(handler); } };
  }

  #onEngine(e: EspEvent): void {
    if (e.kind === 'mapping') { this.#mapping(e); return; }
    if (e.kind !== 'expire') return;
    const h = this.#sas.find(e.spi, (x) => x.direction === e.direction && x.reqid === e.reqid >>> 0);
    if (h) this.#expire(h, e.hard);
  }

  /** The engine saw an inbound SA's packets from a new source: XFRM_MSG_MAPPING's report, same fields. */
  #mapping(e: Extract<EspEvent, { kind: 'mapping' }>): void {
    const h = this.#sas.find(e.spi, (x) => x.direction === 'in' && x.reqid === e.reqid >>> 0);
    if (!h) return;
    const ev: XfrmEvent = {
      kind: 'mapping', dst: h.spec.dst, spi: h.spec.spi >>> 0, reqid: h.reqid,
      oldSrc: h.spec.src, oldSport: h.spec.encap?.sport ?? 0, newSrc: e.address, newSport: e.port,
    };
    for (const fn of this.#handlers) fn(ev);
  }

  /** Soft: report (rekey now). Hard: the SA goes first, as the kernel deletes it, then the report. */
  #expire(h: Held, hard: boolean): void {
    if (this.#sas.get(h.spec.dst, h.spec.spi) !== h) return;
    const state = this.#state(h, this.#counters(h));
    if (hard) this.#drop(h);
    for (const fn of this.#handlers) fn({ kind: 'expire', hard, sa: state });
  }

  close(): void {
    this.#limits.clear();
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    this.#handlers.clear();
  }
}
