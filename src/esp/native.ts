// Loader and raw types of the userspace ESP addon (native/esp, built as kipsec_esp.node next to
// kipsec_native.node). Why a second addon with its own loader: src/esp may import only src/common
// (DESIGN.md §7), and the ESP engine's threads and OpenSSL use stay apart from the netlink code.
// Nothing here does per-packet work: the addon's threads do; this is the control-plane surface.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { KipsecError } from '../common/errors.js';

/** An engine inside the addon (a JS external: only the addon can use it). */
export interface RawEngineHandle { readonly __espEngine: unique symbol }

/** A traffic selector as the addon takes it: inclusive address range, protocol 0 = all protocols. */
export interface RawSelector {
  readonly start: string;
  readonly end: string;
  readonly protocol?: number;
  readonly startPort?: number;
  readonly endPort?: number;
}

export interface RawPeer { readonly address: string; readonly port: number }

export interface RawSa {
  readonly direction: 'in' | 'out';
  readonly spi: number;
  readonly reqid: number;
  /** 1 AES-GCM-16 (RFC 4106), 2 ChaCha20-Poly1305 (RFC 7634), 3/4/5 AES-CBC with HMAC-SHA2-256-128/384-192/512-256. */
  readonly algorithm: 1 | 2 | 3 | 4 | 5;
  /** AEAD: key followed by the 4-byte salt; AES-CBC: the AES key. */
  readonly key: Uint8Array;
  /** AES-CBC suites: the HMAC key. */
  readonly integrityKey?: Uint8Array;
  /** 64-bit extended sequence numbers (RFC 4303 §2.2.1). */
  readonly esn?: boolean;
  readonly replayWindow?: number;
  readonly active?: boolean;
  /** Outbound: the last sequence number already sent (0 for a new SA; 64-bit with esn). */
  readonly seq?: bigint;
  readonly softPackets?: bigint;
  readonly hardPackets?: bigint;
  readonly softBytes?: bigint;
  readonly hardBytes?: bigint;
  readonly peer?: RawPeer;
  readonly sources?: readonly RawSelector[];
  readonly destinations?: readonly RawSelector[];
}

export interface RawPolicy {
  readonly id: number;
  readonly reqid: number;
  readonly priority?: number;
  readonly source: RawSelector;
  readonly destination: RawSelector;
}

export type RawEvent =
  | { readonly kind: 'ike' | 'inner'; readonly data: Buffer; readonly address: string; readonly port: number }
  | { readonly kind: 'expire'; readonly direction: 'in' | 'out'; readonly spi: number; readonly reqid: number; readonly hard: boolean; readonly reason: string }
  | { readonly kind: 'mapping'; readonly direction: 'in' | 'out'; readonly spi: number; readonly reqid: number; readonly address: string; readonly port: number };

export interface RawSaStats {
  readonly direction: 'in' | 'out';
  readonly spi: number;
  readonly reqid: number;
  readonly active: boolean;
  readonly packets: bigint;
  readonly bytes: bigint;
  /** Outbound: last sequence number sent; inbound: highest verified. */
  readonly seq: bigint;
  readonly softExpired: boolean;
  readonly hardExpired: boolean;
  readonly lastUseMs: number | null;
  readonly drops: Readonly<Record<string, bigint>>;
}

/** What native/esp/esp_offload.c's run-time probes switched on. */
export interface RawOffloads {
  /** UDP_SEGMENT: runs of equal-size ESP datagrams leave as one send (false again if the kernel refused one with EIO). */
  readonly udpGso: boolean;
  /** UDP_GRO: a receive may hold several datagrams, cut apart by their gso_size. */
  readonly udpGro: boolean;
  /** The TUN fd has IFF_VNET_HDR (a struct virtio_net_hdr before every packet). */
  readonly tunVnetHdr: boolean;
  /** TUNSETOFFLOAD took TUN_F_CSUM: packets may come with a partial checksum, completed in the engine. */
  readonly tunCsum: boolean;
  /** TUNSETOFFLOAD took TUN_F_TSO4/TSO6: TCP super-packets come in, cut into segments in the engine. */
  readonly tunTso: boolean;
}

export interface RawStats {
  readonly counters: Readonly<Record<string, bigint>>;
  /** Absent only from stand-ins of the addon in tests. */
  readonly offloads?: RawOffloads;
  readonly sas: readonly RawSaStats[];
}

/** Which offloads an engine may probe for and use (each true when absent). */
export interface RawOffloadWish { readonly udpGso?: boolean; readonly udpGro?: boolean; readonly tunTso?: boolean }

export interface EspNative {
  espCreate(o: {
    tunFd: number; address: string; port: number; onEvent: (e: RawEvent) => void;
    ikeQueue?: number; eventQueue?: number; bypass?: boolean; offloads?: RawOffloadWish;
  }): RawEngineHandle;
  /** A TUN device (IFF_TUN | IFF_NO_PI, non-blocking) for espCreate's tunFd; with IFF_VNET_HDR when asked and the kernel takes it. Optional for stand-ins in tests. */
  espOpenTun?(name?: string, o?: { vnetHdr?: boolean }): { fd: number; name: string; vnetHdr: boolean };
  espLocalPort(h: RawEngineHandle): number;
  espClose(h: RawEngineHandle): void;
  espAddSa(h: RawEngineHandle, sa: RawSa): void;
  espUpdateSa(h: RawEngineHandle, direction: 'in' | 'out', spi: number, reqid: number, u: { active?: boolean; peer?: RawPeer }): void;
  espRemoveSa(h: RawEngineHandle, direction: 'in' | 'out', spi: number, reqid: number): boolean;
  espAddPolicy(h: RawEngineHandle, p: RawPolicy): void;
  espRemovePolicy(h: RawEngineHandle, id: number): boolean;
  espStats(h: RawEngineHandle): RawStats;
  /** One SA's entry of espStats(h).sas, or null. */
  espSaStats(h: RawEngineHandle, direction: 'in' | 'out', spi: number, reqid: number): RawSaStats | null;
  espSendIke(h: RawEngineHandle, datagram: Uint8Array, address: string, port: number): number;
  /** 'sent' or the drop reason / engine counter that took the packet. */
  espInject(h: RawEngineHandle, packet: Uint8Array): string;
}

export class EspNativeError extends KipsecError {}

// From the checkout (src/esp under tsx) or compiled (dist/src/esp); built in the package's native/.
const ADDON_PATHS = ['../../native/build/Release/kipsec_esp.node', '../../../native/build/Release/kipsec_esp.node']
  .map((p) => fileURLToPath(new URL(p, import.meta.url)));
// KIPSEC_ESP_ADDON: another build of the same addon (a sanitizer build for tests).
const ADDON = process.env['KIPSEC_ESP_ADDON'] ?? ADDON_PATHS.find((p) => existsSync(p)) ?? ADDON_PATHS[0] ?? '';
let cached: EspNative | undefined;

/** Load (once) the ESP addon; throws EspNativeError ERR_ESP_NOT_BUILT with the fix. */
export function loadEspNative(): EspNative {
  if (cached) return cached;
  if (!existsSync(ADDON))
    throw new EspNativeError('ERR_ESP_NOT_BUILT', `ESP addon not built: ${ADDON} is missing; run \`npm run build:native\` (needs gcc, make and Node headers)`);
  try {
    cached = createRequire(import.meta.url)(ADDON) as EspNative;
  } catch (e) {
    throw new EspNativeError('ERR_ESP_LOAD', `ESP addon ${ADDON} failed to load (rebuild with \`npm run build:native\` for this Node version): ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
  return cached;
}
