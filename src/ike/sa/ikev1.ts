// IKEv1 requests (RFC 2408 §3.1 ISAKMP header, major version 1). RFC 9395 deprecates IKEv1 and we
// speak only IKEv2, so such a datagram gets no state and no answer: RFC 7296 §1.5 defines an
// INVALID_MAJOR_VERSION reply only for a *higher* major version, and an IKEv1 peer would not
// read an IKEv2 notify anyway. What it does get is a clear report, because a peer left on IKEv1
// otherwise looks like a peer that never answers: a warning naming its address and, when a
// configured tunnel's remote is that address, the tunnel's lastError. Both at most once per
// source address per IKEV1_NOTICE_INTERVAL_MS, since IKEv1 peers retransmit and retry forever.
import type { Endpoint } from '../ports.js';
import { ikeFailure, type Ctx } from './context.js';
import type { PeerRuntime } from './ike-sa.js';

/** A report per source address per minute; a peer retrying every few seconds gets one line. */
export const IKEV1_NOTICE_INTERVAL_MS = 60_000;
/** Addresses remembered for the rate limit; spoofed floods evict the oldest instead of growing it. */
export const IKEV1_NOTICE_ADDRESSES = 1_024;

/** RFC 2408 §3.1 octet 18 (the same offset as IKEv2's): RFC 2409 §5/§5.4 and RFC 2408 §4.8 names. */
const EXCHANGES: Readonly<Record<number, string>> = { 2: 'Main Mode', 4: 'Aggressive Mode', 5: 'Informational', 32: 'Quick Mode', 33: 'New Group Mode' };

export function ikev1ExchangeName(datagram: Uint8Array): string {
  const t = datagram[18] ?? 0;
  return EXCHANGES[t] ?? `exchange ${t}`;
}

export class Ikev1Notices {
  readonly #lastMs = new Map<string, number>();

  /**
   * Report an IKEv1 datagram from `from` (rate-limited). `peers` are the configured peers whose
   * remote address is exactly `from`'s (not %any responders: those name no particular peer).
   */
  note(ctx: Ctx, datagram: Uint8Array, from: Endpoint, to: Endpoint, peers: readonly PeerRuntime[]): void {
    const now = ctx.clock.now();
    const last = this.#lastMs.get(from.address);
    if (last !== undefined && now - last < IKEV1_NOTICE_INTERVAL_MS) return;
    this.#lastMs.delete(from.address); // re-insert: Map order is then oldest first
    const oldest = this.#lastMs.keys().next();
    if (this.#lastMs.size >= IKEV1_NOTICE_ADDRESSES && oldest.done !== true) this.#lastMs.delete(oldest.value);
    this.#lastMs.set(from.address, now);
    const exchange = ikev1ExchangeName(datagram);
    const message = `${from.address}:${from.port} sent an IKEv1 ${exchange} request, dropped: IKEv1 is not supported (RFC 9395), configure the peer for IKEv2`;
    if (peers.length === 0) {
      ctx.log?.warn({ remote: `${from.address}:${from.port}`, local: `${to.address}:${to.port}`, exchange }, message);
      return;
    }
    // failure() logs it through the `error` event (agent: one warn line with the tunnel) and keeps it as lastError.
    for (const p of peers) ctx.failure(p, ikeFailure({ code: 'ERR_IKE_V1_UNSUPPORTED', origin: 'remote', message }));
  }
}
