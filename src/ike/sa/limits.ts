// Engine-wide bounds on what a peer can make us hold before it has proven much: datagram size at
// intake (strongSwan charon.max_packet), bytes held in RFC 7383 reassembly across all SAs and how
// long a partial message may wait, and half-open IKE SAs per source address (RFC 8019 §4.6,
// strongSwan charon.block_threshold). Per-SA bounds (maxFragments, MAX_INNER_BYTES) are in wire.ts.
import type { EngineOptions } from './config.js';
import * as D from './defaults.js';
import type { FragmentBuffer, IkeSa } from './ike-sa.js';

export interface LimitOptions {
  readonly maxFragments: number;
  readonly maxDatagramBytes: number;
  readonly reassemblyBytesLimit: number;
  readonly reassemblyTimeoutMs: number;
  readonly halfOpenPerAddress: number;
}

export function resolveLimits(o: EngineOptions): LimitOptions {
  return {
    maxFragments: o.maxFragments ?? D.MAX_FRAGMENTS,
    maxDatagramBytes: o.maxDatagramBytes ?? D.MAX_DATAGRAM_BYTES,
    reassemblyBytesLimit: o.reassemblyBytesLimit ?? D.REASSEMBLY_BYTES_LIMIT,
    reassemblyTimeoutMs: o.reassemblyTimeoutMs ?? D.REASSEMBLY_TIMEOUT_MS,
    halfOpenPerAddress: o.halfOpenPerAddress ?? D.HALF_OPEN_PER_ADDRESS,
  };
}

/** What the limits need from the engine: its options, clock and drop counter. */
export interface LimitsHost {
  readonly options: LimitOptions;
  readonly clock: { now(): number };
  drop(reason: string): void;
}

/** Datagram intake: false (and a drop) when it is larger than any IKE message we accept. */
export function admitDatagram(e: LimitsHost, datagram: Uint8Array): boolean {
  if (datagram.length <= e.options.maxDatagramBytes) return true;
  e.drop('datagram-too-large');
  return false;
}

/**
 * Engine-wide state behind the limits. Both registries are pruned as they are read, from the SAs
 * themselves (state, sa.fragments), so no lifecycle path has to remember to release anything.
 */
export class EngineLimits {
  readonly #e: LimitsHost;
  /** Responder half-open SAs by the initiator's address. */
  readonly #halfOpen = new Map<string, Set<IkeSa>>();
  /** SAs that may hold a partial RFC 7383 message. */
  readonly #reassembling = new Set<IkeSa>();

  constructor(e: LimitsHost) { this.#e = e; }

  get maxFragments(): number { return this.#e.options.maxFragments; }

  /** Half-open IKE SAs from `address` (those that left init-done are forgotten here). */
  halfOpenFrom(address: string): number {
    const set = this.#halfOpen.get(address);
    if (set === undefined) return 0;
    for (const sa of set) if (sa.state.tag !== 'init-done') set.delete(sa);
    if (set.size === 0) this.#halfOpen.delete(address);
    return set.size;
  }

  /** RFC 8019 §4.6 / block_threshold: the drop reason when `address` already holds its share. */
  blockInit(address: string): string | null {
    return this.halfOpenFrom(address) >= this.#e.options.halfOpenPerAddress ? 'half-open-per-address' : null;
  }

  /**
   * At the engine-wide half-open limit (RFC 8019 §4.6): the oldest half-open SA of the address
   * holding the most, when that is at least two more than `address` holds, so addresses that
   * answer COOKIEs cannot keep a newcomer out by holding every slot. Forgotten here at once (the
   * caller tears it down), so two requests never pick the same one.
   */
  evictFor(address: string): IkeSa | null {
    const mine = this.halfOpenFrom(address);
    let worst: { address: string; count: number; set: Set<IkeSa> } | undefined;
    for (const [a, set] of [...this.#halfOpen]) {
      const count = this.halfOpenFrom(a);
      if (count > 0 && (worst === undefined || count > worst.count)) worst = { address: a, count, set };
    }
    if (worst === undefined || worst.count < mine + 2) return null;
    let oldest: IkeSa | undefined;
    for (const sa of worst.set) if (oldest === undefined || sa.createdAtMs < oldest.createdAtMs) oldest = sa;
    if (oldest === undefined) return null;
    worst.set.delete(oldest);
    if (worst.set.size === 0) this.#halfOpen.delete(worst.address);
    return oldest;
  }

  addHalfOpen(address: string, sa: IkeSa): void {
    let set = this.#halfOpen.get(address);
    if (set === undefined) { set = new Set(); this.#halfOpen.set(address, set); }
    set.add(sa);
  }

  /** Discard partial messages older than reassemblyTimeoutMs, on every SA; forget finished ones. */
  sweepReassembly(): void {
    const now = this.#e.clock.now();
    for (const s of this.#reassembling) {
      const buf = s.fragments;
      if (buf !== null && s.state.tag !== 'dead' && now - buf.startedAtMs < this.#e.options.reassemblyTimeoutMs) continue;
      if (buf !== null && s.state.tag !== 'dead') this.#e.drop('reassembly-timeout');
      s.fragments = null;
      this.#reassembling.delete(s);
    }
  }

  /**
   * Before `bytes` more of `sa`'s message are buffered (after sweepReassembly): the drop reason if
   * the engine-wide total would pass reassemblyBytesLimit, else null, and `sa` is counted from now.
   */
  reserveFragment(sa: IkeSa, bytes: number): string | null {
    let total = 0;
    for (const s of this.#reassembling) total += s.fragments?.bytes ?? 0;
    if (total + bytes > this.#e.options.reassemblyBytesLimit) return 'reassembly-engine-limit';
    this.#reassembling.add(sa);
    return null;
  }

  /** A fresh buffer for `messageId`, stamped for the time limit. */
  newBuffer(messageId: number, total: number): FragmentBuffer {
    return { messageId, total, parts: new Map(), bytes: 0, startedAtMs: this.#e.clock.now() };
  }
}
