// What exchange steps get from the engine core: ports, resolved options, and the few services
// that touch engine-wide state (events, last-error bookkeeping, SA registration). Kept narrow so
// each exchange module can be read on its own.
import type { Clock, Random } from '../../common/time.js';
import type { CryptoPool } from '../crypto/pool.js';
import type { EngineLogger, IkeEvent, IkeFailure, KernelIpsec } from '../ports.js';
import type { IkeSa, PeerRuntime } from './ike-sa.js';
import type { LimitOptions } from './limits.js';

export interface ResolvedOptions extends LimitOptions {
  readonly retransmitTimeoutMs: number;
  readonly retransmitBase: number;
  readonly retransmitTries: number;
  readonly cookieThreshold: number;
  readonly halfOpenLimit: number;
  readonly halfOpenTimeoutMs: number;
  readonly rekeyDeleteDelayMs: number;
  readonly rekeyJitterMs: number | null;
  readonly retryIntervalMs: number;
}

export interface Ctx {
  readonly clock: Clock;
  readonly random: Random;
  readonly kernel: KernelIpsec;
  readonly options: ResolvedOptions;
  readonly log: EngineLogger | undefined;
  /** Where public-key work runs (worker threads, or this thread with size 0). */
  readonly crypto: CryptoPool;
  emit(event: IkeEvent): void;
  /** Record as the peer's lastError and emit an `error` event. */
  failure(peer: PeerRuntime, f: IkeFailure): void;
  /** A fresh IKE SA SPI (8 random non-zero octets, unique in this engine). */
  newIkeSpi(): bigint;
  /** Make `sa` reachable by its SPI (after SPIs change or a rekey creates it). */
  register(sa: IkeSa): void;
  newSerial(): number;
  /** Whether IKE_AUTH may say INITIAL_CONTACT (RFC 7296 §2.4): we hold no other state with this peer. */
  initialContact(sa: IkeSa): boolean;
}

/** Shorthand for building failures with every field present. */
export function ikeFailure(f: Partial<IkeFailure> & Pick<IkeFailure, 'code' | 'message'>): IkeFailure {
  return {
    notify: null, origin: 'local', exchange: null, proposals: null, trafficSelectors: null,
    ...f,
  };
}
