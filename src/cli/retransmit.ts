// `kipsec agent --retransmit-timeout D --retransmit-base B --retransmit-tries N`: the IKE request
// retransmission schedule, timeout × base^n for n = 0..tries (RFC 7296 §2.1 leaves it to the
// implementation). The names and defaults are charon's (retransmit_timeout 4 s, retransmit_base
// 1.8, retransmit_tries 5: the last try gives up ≈165 s after the first send), so a strongSwan
// operator's tuning carries over. A lossy or long-delay link wants a longer schedule; a link where
// a dead peer must be noticed sooner, a shorter one.
import { parseDurationMs } from '../common/duration.js';
import { errorMessage } from '../common/errors.js';
import type { EngineOptions } from '../ike/engine.js';
import { str, UsageError, type Parsed } from './args.js';

export const RETRANSMIT_FLAGS = ['retransmit-timeout', 'retransmit-base', 'retransmit-tries'] as const;

export type RetransmitOptions = Pick<EngineOptions, 'retransmitTimeoutMs' | 'retransmitBase' | 'retransmitTries'>;

/** Bounds that keep every schedule sane: the first retry after 0.5–60 s, growth 1–4×, 0–20 retries. */
const TIMEOUT_MS = { min: 500, max: 60_000 } as const;
const BASE = { min: 1, max: 4 } as const;
const TRIES = { min: 0, max: 20 } as const;

/** The flags given, checked; an unset flag keeps the engine's default. Throws UsageError naming the flag. */
export function retransmitOptions(p: Parsed): RetransmitOptions {
  const out: { retransmitTimeoutMs?: number; retransmitBase?: number; retransmitTries?: number } = {};
  const timeout = str(p, 'retransmit-timeout');
  if (timeout !== undefined) {
    let ms: number;
    try { ms = parseDurationMs(timeout, '--retransmit-timeout'); } catch (e) { throw new UsageError(errorMessage(e)); }
    if (ms < TIMEOUT_MS.min || ms > TIMEOUT_MS.max) throw new UsageError(`--retransmit-timeout ${timeout} is outside 500ms–60s`);
    out.retransmitTimeoutMs = ms;
  }
  const base = str(p, 'retransmit-base');
  if (base !== undefined) {
    const b = Number(base);
    if (!/^\d+(\.\d+)?$/.test(base) || b < BASE.min || b > BASE.max) throw new UsageError(`--retransmit-base ${base} is not a number from 1 to 4`);
    out.retransmitBase = b;
  }
  const tries = str(p, 'retransmit-tries');
  if (tries !== undefined) {
    const n = Number(tries);
    if (!/^\d+$/.test(tries) || n < TRIES.min || n > TRIES.max) throw new UsageError(`--retransmit-tries ${tries} is not a whole number from 0 to 20`);
    out.retransmitTries = n;
  }
  return out;
}
