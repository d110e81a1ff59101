// The userspace ESP engine as the agent sees it (DESIGN.md §5 "userspace"): a typed
// handle on the addon's engine. JavaScript keeps the control plane only — SAs, policies,
// counters, expire handling, IKE — while the addon's threads move every packet (RFC 4303 ESP in
// RFC 3948 UDP between the TUN device and the UDP socket).
//
// The engine owns the UDP socket (it binds it): on the NAT-T port 4500 that socket is shared by
// IKE and ESP, and only one reader can tell them apart (RFC 3948 §2.2 non-ESP marker), so IKE
// datagrams come up here as 'ike' events and go out through sendIke(). Time-based lifetimes stay
// with the caller's timers; packet and byte limits are enforced in the engine and come up as
// 'expire' events. Events from a full queue are dropped and counted (stats().counters).
import { KipsecError } from '../common/errors.js';
import { decodeSaStats, decodeStats, encodeSa, type EspDirection, type EspPeer, type EspPolicySpec, type EspSaRef, type EspSaSpec, type EspSaStats, type EspStats } from './codec.js';
import { loadEspNative, type EspNative, type RawEngineHandle, type RawEvent, type RawOffloadWish } from './native.js';

export type EspEvent =
  /** A datagram on the shared socket that carries the non-ESP marker (four zero bytes, kept). */
  | { readonly kind: 'ike'; readonly data: Buffer; readonly address: string; readonly port: number }
  /** Without a TUN device (tunFd null): a verified, decapsulated inner packet. */
  | { readonly kind: 'inner'; readonly data: Buffer; readonly address: string; readonly port: number }
  /** A packet/byte limit was reached (soft: rekey now; hard: the SA no longer passes traffic), or the sequence number ran out. */
  | { readonly kind: 'expire'; readonly direction: EspDirection; readonly spi: number; readonly reqid: number; readonly hard: boolean; readonly reason: 'packets' | 'bytes' | 'sequence' }
  /**
   * An authenticated packet of an inbound SA came from another address or port than the SA's
   * `peer`: the NAT in front of the peer moved (RFC 7296 §2.23). At most one a second per SA;
   * nothing changes until the control plane moves the SAs (updateSa peer).
   */
  | { readonly kind: 'mapping'; readonly direction: 'in'; readonly spi: number; readonly reqid: number; readonly address: string; readonly port: number };

export type EspListener = (e: EspEvent) => void;

/** What inject() reports: sent, or the counter that took the packet. */
export type InjectResult = string;

export interface EspEngineOptions {
  /** A TUN device (IFF_TUN | IFF_NO_PI, non-blocking), owned by the engine from now on; null: none. */
  readonly tunFd: number | null;
  /** Where the engine binds its UDP socket; port 0 picks one (tests). */
  readonly address: string;
  readonly port: number;
  /** Bound of the IKE/inner event queue (default 256) and of the expire queue (default 4096). */
  readonly ikeQueue?: number;
  readonly eventQueue?: number;
  /** Per-socket XFRM bypass policies on the socket, as the IKE socket has (needs CAP_NET_ADMIN). */
  readonly bypass?: boolean;
  /** Kernel offloads the engine may use where probed present (default: KIPSEC_ESP_OFFLOADS, else all). */
  readonly offloads?: EspOffloadWish;
  readonly native?: EspNative;
}

export type EspOffloadWish = RawOffloadWish;
const OFFLOAD_NAMES = ['udpGso', 'udpGro', 'tunTso'] as const;

/**
 * KIPSEC_ESP_OFFLOADS: unset or "all" lets the engine use every offload the kernel offers; "none"
 * none; else a comma list of the ones allowed (udpGso, udpGro, tunTso) — to compare, or to step
 * around a kernel that mishandles one.
 */
export function offloadsFromEnv(value: string | undefined = process.env['KIPSEC_ESP_OFFLOADS']): EspOffloadWish {
  const v = (value ?? '').trim();
  if (v === '' || v === 'all') return {};
  const allowed = v === 'none' ? [] : v.split(',').map((x) => x.trim());
  for (const a of allowed) {
    if (!(OFFLOAD_NAMES as readonly string[]).includes(a)) throw new EspError('ERR_ESP_OFFLOADS', `KIPSEC_ESP_OFFLOADS: unknown offload ${JSON.stringify(a)}; want "all", "none" or a comma list of ${OFFLOAD_NAMES.join(', ')}`);
  }
  return { udpGso: allowed.includes('udpGso'), udpGro: allowed.includes('udpGro'), tunTso: allowed.includes('tunTso') };
}

/**
 * A TUN device for the engine (IFF_TUN | IFF_NO_PI, non-blocking), with IFF_VNET_HDR unless TUN TSO
 * is not wanted (or the kernel refuses it): the engine needs that header for TSO super-packets.
 */
export function openEspTun(name: string, o: { offloads?: EspOffloadWish; native?: EspNative } = {}): { fd: number; name: string; vnetHdr: boolean } {
  const native = o.native ?? loadEspNative();
  const vnetHdr = (o.offloads ?? offloadsFromEnv()).tunTso !== false;
  const open = native.espOpenTun;
  if (!open) throw new EspError('ERR_ESP_NOT_BUILT', 'this ESP addon has no espOpenTun: rebuild it with `npm run build:native`');
  return wrap(`openTun(${name})`, () => open(name, { vnetHdr }));
}

/** An engine call failed; `code` is ERR_ESP_<errno name or addon code>. */
export class EspError extends KipsecError {}

function wrap<T>(what: string, fn: () => T): T {
  try { return fn(); } catch (e) {
    if (e instanceof KipsecError) throw e;
    const code = (e as { code?: unknown }).code;
    const name = typeof code !== 'string' ? 'ERR_ESP_UNKNOWN' : code.startsWith('ERR_ESP_') ? code : `ERR_ESP_${code.replace(/^ERR_/, '')}`;
    throw new EspError(name, `${what}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
}

function toEvent(e: RawEvent): EspEvent {
  if (e.kind === 'mapping') return { kind: 'mapping', direction: 'in', spi: e.spi, reqid: e.reqid, address: e.address, port: e.port };
  if (e.kind !== 'expire') return e;
  const reason = e.reason === 'packets' || e.reason === 'bytes' ? e.reason : 'sequence';
  return { kind: 'expire', direction: e.direction, spi: e.spi, reqid: e.reqid, hard: e.hard, reason };
}

export class EspEngine {
  readonly port: number;
  readonly #native: EspNative;
  readonly #handle: RawEngineHandle;
  readonly #listeners: Set<EspListener>;
  #closed = false;

  private constructor(native: EspNative, handle: RawEngineHandle, listeners: Set<EspListener>) {
    this.#native = native;
    this.#handle = handle;
    this.#listeners = listeners;
    this.port = native.espLocalPort(handle);
  }

  /** Bind the socket, take over the TUN fd, start the worker threads. */
  static open(o: EspEngineOptions): EspEngine {
    const native = o.native ?? loadEspNative();
    const listeners = new Set<EspListener>();
    const handle = wrap('espCreate', () => native.espCreate({
      tunFd: o.tunFd ?? -1, address: o.address, port: o.port,
      // Events arrive on the event loop; listeners run in order, a throw is an uncaught exception.
      onEvent: (raw) => { const ev = toEvent(raw); for (const l of listeners) l(ev); },
      ...(o.ikeQueue !== undefined ? { ikeQueue: o.ikeQueue } : {}),
      ...(o.eventQueue !== undefined ? { eventQueue: o.eventQueue } : {}),
      ...(o.bypass !== undefined ? { bypass: o.bypass } : {}),
      offloads: o.offloads ?? offloadsFromEnv(),
    }));
    return new EspEngine(native, handle, listeners);
  }

  get closed(): boolean { return this.#closed; }

  /** Subscribe to events; returns the unsubscribe function. */
  on(listener: EspListener): () => void {
    this.#listeners.add(listener);
    return () => { this.#listeners.delete(listener); };
  }

  /** Install one direction of a Child SA. Throws EspError ERR_ESP_EEXIST for a duplicate. */
  addSa(sa: EspSaSpec): void {
    wrap(`addSa(${sa.direction} 0x${(sa.spi >>> 0).toString(16)})`, () => this.#native.espAddSa(this.#handle, encodeSa(sa)));
  }

  /** Start or stop using an outbound SA, or move its peer — where an outbound SA sends, where an inbound one expects packets from (NAT port float, RFC 7296 §2.23). */
  updateSa(ref: EspSaRef, u: { readonly active?: boolean; readonly peer?: EspPeer }): void {
    wrap(`updateSa(${ref.direction} 0x${(ref.spi >>> 0).toString(16)})`, () => this.#native.espUpdateSa(this.#handle, ref.direction, ref.spi >>> 0, ref.reqid >>> 0, {
      ...(u.active !== undefined ? { active: u.active } : {}), ...(u.peer ? { peer: u.peer } : {}),
    }));
  }

  /** The make-before-break step of a rekey responder (KernelChildSaUpdate.activateOutbound). */
  activateOutbound(spi: number, reqid: number): void { this.updateSa({ direction: 'out', spi, reqid }, { active: true }); }

  /** false when no such SA was installed. */
  removeSa(ref: EspSaRef): boolean {
    return wrap('removeSa', () => this.#native.espRemoveSa(this.#handle, ref.direction, ref.spi >>> 0, ref.reqid >>> 0));
  }

  /** Add, or replace the policy with the same id. */
  addPolicy(p: EspPolicySpec): void { wrap(`addPolicy(${p.id})`, () => this.#native.espAddPolicy(this.#handle, p)); }

  removePolicy(id: number): boolean { return wrap('removePolicy', () => this.#native.espRemovePolicy(this.#handle, id)); }

  stats(): EspStats { return decodeStats(wrap('stats', () => this.#native.espStats(this.#handle))); }

  /** One SA's counters (undefined: no such SA), without making every SA's as stats() does. */
  saStats(ref: EspSaRef): EspSaStats | undefined {
    const raw = wrap('saStats', () => this.#native.espSaStats(this.#handle, ref.direction, ref.spi >>> 0, ref.reqid >>> 0));
    return raw === null ? undefined : decodeSaStats(raw);
  }

  /** Send one IKE datagram from the shared socket; on 4500 the caller includes the non-ESP marker. */
  sendIke(datagram: Uint8Array, address: string, port: number): void {
    wrap('sendIke', () => this.#native.espSendIke(this.#handle, datagram, address, port));
  }

  /** Encapsulate and send one inner IP packet on this thread (tests and probes; traffic uses the TUN). */
  inject(packet: Uint8Array): InjectResult { return wrap('inject', () => this.#native.espInject(this.#handle, packet)); }

  /** Stop the threads, close the socket and the TUN fd, forget every SA (keys freed). Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#listeners.clear();
    this.#native.espClose(this.#handle);
  }
}
