// The typed shapes of the ESP engine's control plane and their translation to and from the
// addon's plain objects: encodeSa (EspSaSpec → what espAddSa takes) and decodeStats (espStats'
// record → typed counters). Why a codec: the addon names algorithms and counters by number and
// string; here they become unions the compiler checks, and a counter the addon stops reporting is
// an error rather than a silent undefined.
import { KipsecError } from '../common/errors.js';
import type { SecretBytes } from '../common/secret.js';
import type { RawOffloads, RawPeer, RawSa, RawSaStats, RawStats } from './native.js';
import type { EspSelector } from './selector.js';

/**
 * RFC 4106 AES-GCM with a 16-byte ICV; RFC 7634 ChaCha20-Poly1305; AES-CBC (RFC 3602) with
 * HMAC-SHA2 truncated to half its output (RFC 4868): SHA-256 → 128 bits, 384 → 192, 512 → 256.
 */
export const ESP_ALGORITHMS = {
  'aes-gcm-16': 1, 'chacha20-poly1305': 2,
  'aes-cbc-hmac-sha2-256-128': 3, 'aes-cbc-hmac-sha2-384-192': 4, 'aes-cbc-hmac-sha2-512-256': 5,
} as const;
export type EspAlgorithm = keyof typeof ESP_ALGORITHMS;

/**
 * Key lengths in bytes per suite. AEAD keys carry their 4-byte salt (RFC 4106 §8.1, RFC 7634 §2)
 * and have no integrity key; an HMAC key is as long as the hash output (RFC 4868 §2.1.1).
 */
export const ESP_KEY_BYTES: Readonly<Record<EspAlgorithm, { readonly key: readonly number[]; readonly integrityKey: number }>> = {
  'aes-gcm-16': { key: [20, 36], integrityKey: 0 },
  'chacha20-poly1305': { key: [36], integrityKey: 0 },
  'aes-cbc-hmac-sha2-256-128': { key: [16, 32], integrityKey: 32 },
  'aes-cbc-hmac-sha2-384-192': { key: [16, 32], integrityKey: 48 },
  'aes-cbc-hmac-sha2-512-256': { key: [16, 32], integrityKey: 64 },
};

export function isAead(a: EspAlgorithm): boolean { return ESP_KEY_BYTES[a].integrityKey === 0; }

/** The issue asks for a window of at least 1024 packets; XFRM's default is 32. */
export const DEFAULT_REPLAY_WINDOW = 1024;

/** Per-SA drop reasons, in the addon's order (native/esp/esp.h). `dummy` counts verified next-header-59 packets. */
export const ESP_DROP_REASONS = ['replay', 'auth', 'pad', 'nextHeader', 'selector', 'malformed', 'truncated', 'expired', 'seqExhausted', 'tooBig', 'io', 'dummy'] as const;
export type EspDropReason = (typeof ESP_DROP_REASONS)[number];

/** Engine-wide counters (no SA to charge), in the addon's order. */
export const ESP_COUNTERS = [
  'rxDatagrams', 'txDatagrams', 'ike', 'ikeDropped', 'keepalives', 'runts', 'unknownSpi', 'noPolicy', 'noSa',
  'malformedOutbound', 'tunReadErrors', 'tunWriteErrors', 'sendErrors', 'eventsDropped',
  // Offloads at work (native/esp/esp_offload.c): UDP GSO sends and the datagrams in them, UDP GRO
  // receives and the datagrams cut from them, TUN TSO super-packets and their TCP segments, GSO
  // sends the kernel refused (sent again one datagram at a time).
  'gsoSends', 'gsoDatagrams', 'groReceives', 'groDatagrams', 'tunSuperPackets', 'tunSegments', 'gsoFallbacks',
] as const;
export type EspCounter = (typeof ESP_COUNTERS)[number];

export type EspDirection = 'in' | 'out';
export type EspPeer = RawPeer;

export interface EspLimits {
  /** 0n or absent: no limit. Soft → an expire event (rekey); hard → the SA stops. */
  readonly softPackets?: bigint;
  readonly hardPackets?: bigint;
  readonly softBytes?: bigint;
  readonly hardBytes?: bigint;
}

export interface EspSaSpec {
  readonly direction: EspDirection;
  readonly spi: number;
  /** Policies reference SAs by reqid; the newest active outbound SA of a reqid is used. */
  readonly reqid: number;
  readonly algorithm: EspAlgorithm;
  /** Key material as IKE derives it (RFC 7296 §2.17): AEAD the key followed by the 4-byte salt; AES-CBC the AES key. */
  readonly key: SecretBytes;
  /** AES-CBC suites only: the HMAC key (32, 48 or 64 bytes). */
  readonly integrityKey?: SecretBytes;
  /** RFC 4303 §2.2.1 extended sequence numbers (64-bit; both ends must agree, as IKE negotiates). */
  readonly esn?: boolean;
  /** Inbound anti-replay window in packets (0: no replay check); default 1024. */
  readonly replayWindow?: number;
  /** Outbound: false installs it without using it yet (make-before-break rekey responder). */
  readonly active?: boolean;
  /** Outbound: the last sequence number already sent (an SA taken over after a restart). */
  readonly seq?: bigint;
  readonly limits?: EspLimits;
  /**
   * Outbound (required): where the ESP-in-UDP datagrams go (the peer's NAT-T address and port).
   * Inbound (optional): where they are expected from; an authenticated packet from elsewhere
   * raises a 'mapping' event.
   */
  readonly peer?: EspPeer;
  /** Inbound: inner source must be in one of these, destination in one of those (1..8 each). */
  readonly sources?: readonly EspSelector[];
  readonly destinations?: readonly EspSelector[];
}

export interface EspSaRef { readonly direction: EspDirection; readonly spi: number; readonly reqid: number }

export interface EspPolicySpec {
  readonly id: number;
  readonly reqid: number;
  /** Lower wins, as XFRM; default 0. */
  readonly priority?: number;
  readonly source: EspSelector;
  readonly destination: EspSelector;
}

/** The addon's per-SA stats (native.ts RawSaStats) with the drop reasons named. */
export type EspSaStats = Omit<RawStats['sas'][number], 'direction' | 'drops'> & {
  readonly direction: EspDirection;
  readonly drops: Readonly<Record<EspDropReason, bigint>>;
};

/** The kernel offloads the engine probed and uses (all false for an engine without them). */
export type EspOffloads = RawOffloads;

export const NO_OFFLOADS: EspOffloads = { udpGso: false, udpGro: false, tunVnetHdr: false, tunCsum: false, tunTso: false };

export interface EspStats {
  readonly counters: Readonly<Record<EspCounter, bigint>>;
  readonly offloads: EspOffloads;
  readonly sas: readonly EspSaStats[];
}

export class EspStatsError extends KipsecError {}

/** An SA spec the engine cannot take (ERR_ESP_ALGORITHM, ERR_ESP_KEY_LENGTH, ERR_ESP_SEQ); no key byte is in the message. */
export class EspSaSpecError extends KipsecError {}

/** Checks what the addon would refuse with a vaguer message: the suite, key lengths, ESN ranges. */
export function checkSa(s: EspSaSpec): void {
  const want = Object.hasOwn(ESP_KEY_BYTES, s.algorithm) ? ESP_KEY_BYTES[s.algorithm] : undefined;
  if (!want) throw new EspSaSpecError('ERR_ESP_ALGORITHM', `unknown ESP algorithm ${JSON.stringify(s.algorithm)}; want one of ${Object.keys(ESP_ALGORITHMS).join(', ')}`);
  if (!want.key.includes(s.key.length)) {
    const what = isAead(s.algorithm) ? 'key || 4-byte salt' : 'AES key (RFC 3602: 128 or 256 bits)';
    throw new EspSaSpecError('ERR_ESP_KEY_LENGTH', `${s.algorithm}: ${what} is ${s.key.length} bytes, want ${want.key.join(' or ')}`);
  }
  if (want.integrityKey === 0 && s.integrityKey !== undefined)
    throw new EspSaSpecError('ERR_ESP_KEY_LENGTH', `${s.algorithm} is AEAD: it takes no integrityKey`);
  if (want.integrityKey !== 0 && s.integrityKey?.length !== want.integrityKey) {
    const got = s.integrityKey === undefined ? 'missing' : `${s.integrityKey.length} bytes`;
    throw new EspSaSpecError('ERR_ESP_KEY_LENGTH', `${s.algorithm}: integrityKey is ${got}, want ${want.integrityKey} (RFC 4868 §2.1.1: the hash output length)`);
  }
  const maxSeq = s.esn ? 0xffff_ffff_ffff_ffffn : 0xffff_ffffn;
  if (s.seq !== undefined && (s.seq < 0n || s.seq > maxSeq))
    throw new EspSaSpecError('ERR_ESP_SEQ', `seq ${s.seq} is outside 0..${maxSeq}${s.esn ? '' : ' (32-bit without esn)'}`);
  if (s.esn && s.direction === 'in' && s.replayWindow === 0)
    throw new EspSaSpecError('ERR_ESP_SEQ', 'esn needs a replay window: the receiver infers the high 32 bits from it (RFC 4303 Appendix A2.2)');
}

export function encodeSa(s: EspSaSpec): RawSa {
  checkSa(s);
  const l = s.limits ?? {};
  return {
    direction: s.direction, spi: s.spi >>> 0, reqid: s.reqid >>> 0, algorithm: ESP_ALGORITHMS[s.algorithm], key: s.key.expose(),
    ...(s.integrityKey ? { integrityKey: s.integrityKey.expose() } : {}), esn: s.esn ?? false,
    replayWindow: s.replayWindow ?? DEFAULT_REPLAY_WINDOW, active: s.active ?? true, seq: s.seq ?? 0n,
    softPackets: l.softPackets ?? 0n, hardPackets: l.hardPackets ?? 0n, softBytes: l.softBytes ?? 0n, hardBytes: l.hardBytes ?? 0n,
    ...(s.peer ? { peer: s.peer } : {}),
    ...(s.sources ? { sources: s.sources } : {}),
    ...(s.destinations ? { destinations: s.destinations } : {}),
  };
}

function pick<K extends string>(names: readonly K[], rec: Readonly<Record<string, bigint>>, what: string): Record<K, bigint> {
  const out = {} as Record<K, bigint>;
  for (const n of names) {
    const v = rec[n];
    if (typeof v !== 'bigint') throw new EspStatsError('ERR_ESP_STATS', `${what}.${n} missing from the addon's stats (addon and src/esp out of step: rebuild it)`);
    out[n] = v;
  }
  return out;
}

export function decodeStats(raw: RawStats): EspStats {
  return {
    counters: pick(ESP_COUNTERS, raw.counters, 'counters'),
    offloads: raw.offloads ?? NO_OFFLOADS,
    sas: raw.sas.map(decodeSaStats),
  };
}

export function decodeSaStats(sa: RawSaStats): EspSaStats {
  return { ...sa, drops: pick(ESP_DROP_REASONS, sa.drops, `sa ${sa.direction} 0x${sa.spi.toString(16)}`) };
}
