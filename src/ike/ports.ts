// The IKE engine's ports (DESIGN.md §2): everything it needs from the outside world, as
// interfaces it is handed. The engine never opens a socket, never talks netlink, never reads the
// wall clock or /dev/urandom itself; the agent daemon (src/agent) implements these against
// node:dgram + the N-API UDP_ENCAP addon + src/xfrm, and the pair tests implement them with
// in-memory fakes (test/unit/ike/pair/harness.ts).
//
// Contract shared by every port:
//  - Key material crosses a port only inside SecretBytes; implementations must not log it.
//  - Kernel calls are async and may fail; the engine awaits them, and on failure rolls back what it
//    installed for that Child SA, reports an `error` event and tears the Child SA down. A port
//    must not half-apply one call: installChildSa either installs everything it was given or
//    removes what it added before rejecting (src/xfrm's client already rolls back).
//  - Sink callbacks are synchronous and must not throw (a throwing sink is caught and ignored).
import type { Clock, Random } from '../common/time.js';
import type { SecretBytes } from '../common/secret.js';

export type { Clock, Random } from '../common/time.js';

// ───────────────────────────── addresses ─────────────────────────────

/** A UDP endpoint. `address` is a literal IPv4 or IPv6 address (no DNS names at this layer). */
export interface Endpoint {
  readonly address: string;
  readonly port: number;
}

// ───────────────────────────── transport ─────────────────────────────

/**
 * Datagram transport for IKE (UDP 500 and 4500).
 *
 * Bytes in both directions are plain IKE messages (RFC 7296 §3.1 header first): the transport
 * adds the 4-octet non-ESP marker (RFC 3948 §2.2) when `from.port` or `to.port` is 4500, and
 * strips it on receive before calling `engine.receive` (see classifyPort4500 in
 * src/ike/codec/natt.ts; ESP-in-UDP and keepalives never reach the engine).
 *
 * The engine switches to port 4500 after IKE_SA_INIT when NAT is detected or when
 * the peer config says `natTraversal: 'always'` (RFC 7296 §2.23); `from` then names the local
 * 4500 socket, so the daemon must have one bound on every local address it serves.
 */
export interface Transport {
  /** Fire-and-forget: loss is handled by the engine's retransmission. Must not throw. */
  send(datagram: Uint8Array, to: Endpoint, from: Endpoint): void;
}

// ───────────────────────────── kernel IPsec ─────────────────────────────

/**
 * ESP transforms as Linux XFRM names them (`ip xfrm state … aead|enc|auth NAME KEY BITS`).
 * AEAD: `rfc4106(gcm(aes))` (key = AES key ‖ 4-byte salt, icvBits 128) and
 * `rfc7539esp(chacha20,poly1305)` (key = 32-byte key ‖ 4-byte salt, icvBits 128).
 * Non-AEAD: `cbc(aes)` with `hmac(sha256)` truncated to 128 bits (RFC 4868), `hmac(sha384)` → 192,
 * `hmac(sha512)` → 256, `hmac(sha1)` → 96.
 */
export type EspAlgorithms =
  | {
      readonly kind: 'aead';
      readonly name: 'rfc4106(gcm(aes))' | 'rfc7539esp(chacha20,poly1305)';
      /** Cipher key followed by the 4-octet salt, exactly as XFRM's alg_key wants it. */
      readonly key: SecretBytes;
      readonly icvBits: number;
    }
  | {
      readonly kind: 'cipher+auth';
      readonly encryption: { readonly name: 'cbc(aes)' | 'cbc(des3_ede)'; readonly key: SecretBytes };
      readonly integrity: { readonly name: 'hmac(sha1)' | 'hmac(sha256)' | 'hmac(sha384)' | 'hmac(sha512)'; readonly key: SecretBytes; readonly truncBits: number };
    };

/** RFC 3948 ESP-in-UDP encapsulation of one SA (XFRMA_ENCAP, UDP_ENCAP_ESPINUDP). */
export interface UdpEncap {
  readonly sourcePort: number;
  readonly destinationPort: number;
}

/** Soft limits trigger an `expire` (soft) event → rekey; hard limits delete the SA in the kernel. */
export interface SaLifetimes {
  readonly softSec: number;
  readonly hardSec: number;
  /** 0 = unlimited. */
  readonly softBytes: bigint;
  readonly hardBytes: bigint;
  readonly softPackets: bigint;
  readonly hardPackets: bigint;
}

/** One direction of a Child SA: an XFRM state. `source`/`destination` are the outer addresses. */
export interface KernelSa {
  /** Host-order 32-bit SPI (the wire value); inbound SPIs come from allocSpi. */
  readonly spi: number;
  readonly source: string;
  readonly destination: string;
  readonly algorithms: EspAlgorithms;
  /** RFC 4303 extended sequence numbers (XFRM_STATE_ESN + replay_esn). */
  readonly esn: boolean;
  /** Anti-replay window in packets (inbound); 0 on outbound. */
  readonly replayWindow: number;
  readonly encap: UdpEncap | null;
  readonly lifetimes: SaLifetimes;
}

/**
 * A traffic selector as plain data (RFC 7296 §3.13.1): an inclusive address range, an IP protocol
 * (0 = any) and an inclusive port range. A CIDR maps onto XFRM's (addr, prefixlen) when the range
 * is aligned; `prefixLength` is set in that case so implementations need no range arithmetic.
 */
export interface TrafficSelector {
  readonly family: 'ipv4' | 'ipv6';
  readonly startAddress: string;
  readonly endAddress: string;
  /** Set when [start, end] is exactly one CIDR block. */
  readonly prefixLength: number | null;
  readonly protocol: number;
  readonly startPort: number;
  readonly endPort: number;
}

/**
 * One XFRM policy: packets from `local` selector to `remote` selector (direction `out`), or the
 * reverse (`in`, `fwd`), go through the SA pair with `reqid` in `mode`.
 */
export interface KernelPolicy {
  readonly direction: 'out' | 'in' | 'fwd';
  readonly source: TrafficSelector;
  readonly destination: TrafficSelector;
  /** Outer tunnel endpoints (tunnel mode template); for transport mode the SA addresses. */
  readonly tunnelSource: string;
  readonly tunnelDestination: string;
  readonly priority: number;
}

export type IpsecMode = 'tunnel' | 'transport';

/** What the engine hands the kernel for one negotiated (or rekeyed) Child SA. */
export interface KernelChildSa {
  /** Peer config name + child name, for logs and for the daemon's bookkeeping. */
  readonly peer: string;
  readonly child: string;
  /** Stable per (peer, child) across rekeys, like strongSwan: policies reference it. */
  readonly reqid: number;
  readonly mode: IpsecMode;
  readonly inbound: KernelSa;
  readonly outbound: KernelSa;
  /**
   * Policies for this Child SA (out + in + fwd for each local×remote selector pair). On a rekey
   * they are the same as the old SA's (same reqid): implementations update-or-add them.
   */
  readonly policies: readonly KernelPolicy[];
  /**
   * Make-before-break (RFC 7296 §2.8, DESIGN.md §5): false on the rekey *responder*, which
   * installs the new inbound SA now but must keep sending on the old SA until the initiator has
   * moved; the engine calls updateChildSa({activateOutbound}) later. The kernel implementation
   * may defer adding the outbound XFRM state until then (XFRM uses the newest matching state).
   */
  readonly outboundActive: boolean;
  /** Route-based tunnels: XFRM mark / if_id of the XFRM interface; null for policy-based. */
  readonly ifId: number | null;
  readonly mark: { readonly value: number; readonly mask: number } | null;
}

/** Identifies an installed Child SA (both SPIs, so either direction's state can be found). */
export interface KernelChildSaRef {
  readonly peer: string;
  readonly child: string;
  readonly reqid: number;
  readonly inboundSpi: number;
  readonly outboundSpi: number;
  /** Outer addresses as installed (the inbound state lives at local, the outbound at remote). */
  readonly local: string;
  readonly remote: string;
}

export interface KernelChildSaUpdate {
  /** Start using the outbound SA installed with outboundActive: false. */
  readonly activateOutbound?: boolean;
  /** NAT port float / NAT appearing: new UDP encapsulation and outer addresses (RFC 7296 §2.23). */
  readonly encap?: UdpEncap | null;
  readonly local?: string;
  readonly remote?: string;
}

export interface ChildSaCounters {
  readonly inboundBytes: bigint;
  readonly inboundPackets: bigint;
  readonly outboundBytes: bigint;
  readonly outboundPackets: bigint;
  /** Epoch ms of the last inbound packet, null if none (used by DPD to skip idle checks). */
  readonly lastInboundMs: number | null;
}

/** A trap policy for `startAction: on-demand`: matching traffic raises an acquire in the kernel. */
export interface KernelTrap {
  readonly peer: string;
  readonly child: string;
  readonly reqid: number;
  readonly mode: IpsecMode;
  readonly policies: readonly KernelPolicy[];
}

/**
 * Kernel IPsec (Linux XFRM, or the userspace ESP datapath). Inbound SPIs are allocated by the
 * kernel (XFRM_MSG_ALLOCSPI) so they are unique among all SAs on the host, IKE or not.
 */
export interface KernelIpsec {
  /** Reserve an inbound ESP SPI for traffic from `remote` to `local` (a larval state in XFRM). */
  allocSpi(req: { readonly local: string; readonly remote: string; readonly reqid: number }): Promise<number>;
  /** Release an SPI that was allocated but never installed (failed or abandoned negotiation). */
  releaseSpi(req: { readonly local: string; readonly remote: string; readonly spi: number }): Promise<void>;
  /** Install inbound then outbound state, then policies (update-or-add). All or nothing. */
  installChildSa(sa: KernelChildSa): Promise<void>;
  updateChildSa(ref: KernelChildSaRef, update: KernelChildSaUpdate): Promise<void>;
  /**
   * Remove both states. `keepPolicies`: true on rekey (the successor uses the same reqid and
   * policies) and when the peer is found dead with `dpd.action` hold or restart (nothing leaves in
   * clear until a successor installs them); false when the Child SA goes away for good.
   */
  deleteChildSa(ref: KernelChildSaRef, opts: { readonly keepPolicies: boolean }): Promise<void>;
  queryCounters(ref: KernelChildSaRef): Promise<ChildSaCounters>;
  installTrap(trap: KernelTrap): Promise<void>;
  /** The tunnel goes: remove its trap policies, and the policies a dead peer's Child SA left (deleteChildSa keepPolicies). */
  removeTrap(trap: { readonly peer: string; readonly child: string; readonly reqid: number }): Promise<void>;
  /**
   * After a restart, take over a Child SA a previous process installed, so that updates, deletes,
   * counters and expire events work on it as if this process had installed it. `pendingOutbound`
   * is the outbound state of a rekey responder that was not activated yet (the kernel does not
   * have it; see KernelChildSa.outboundActive). Resolves false when the kernel no longer holds the
   * inbound state, or the outbound one when it is not pending: the Child SA is gone.
   */
  restoreChildSa(sa: RestoredChildSa): Promise<boolean>;
}

export interface RestoredChildSa {
  readonly ref: KernelChildSaRef;
  readonly mode: IpsecMode;
  readonly ifId: number | null;
  readonly mark: { readonly value: number; readonly mask: number } | null;
  readonly pendingOutbound: KernelSa | null;
}

// ───────────────────────────── checkpoints ─────────────────────────────

/**
 * Durable storage for IKE SA checkpoints (sa/checkpoint.ts): a daemon that crashed or was killed
 * resumes its IKE SAs from them instead of negotiating new ones, which the peer would switch to
 * before our side could receive on them (DESIGN.md §9). The engine calls save() synchronously
 * before any datagram of that IKE SA leaves, so the stored message IDs are never behind the wire.
 * The data holds key material: store it readable by the owner only and never log it.
 * Optional: without a store nothing is saved and a restarted daemon re-establishes IKE.
 */
export interface CheckpointStore {
  /** Replace checkpoint `id` (the IKE SA's own SPI, 16 hex digits) atomically. May throw: the engine reports it and goes on. */
  save(id: string, data: SecretBytes): void;
  remove(id: string): void;
}

// ───────────────────────────── events ─────────────────────────────

/** Why an IKE or Child SA went down (what `ike-down` / `child-down` carry). */
export type DownReason =
  | 'terminated' // local terminate()
  | 'peer-deleted' // INFORMATIONAL Delete from the peer
  | 'dpd-timeout' // liveness check or any request exhausted its retransmissions
  | 'retransmit-limit' // a request (not DPD) exhausted its retransmissions
  | 'hard-lifetime'
  | 'rekeyed' // superseded by a rekeyed SA
  | 'negotiation-failed' // see the accompanying `error` event
  | 'replaced' // INITIAL_CONTACT from the peer, or a duplicate IKE SA
  | 'reauthenticated'; // superseded by a new IKE SA with the same peer, make-before-break (RFC 7296 §2.8.3)

/** A protocol-level failure, as users see it in status and Kubernetes Events. */
export interface IkeFailure {
  /** Fixed code, e.g. ERR_IKE_NO_PROPOSAL_CHOSEN, ERR_IKE_AUTH_FAILED, ERR_IKE_TS_UNACCEPTABLE. */
  readonly code: string;
  /** The RFC 7296 notify that caused or reported it, by name, when there is one. */
  readonly notify: string | null;
  /** Which side detected it: 'local' (we refused) or 'remote' (the peer's notify). */
  readonly origin: 'local' | 'remote';
  readonly exchange: 'IKE_SA_INIT' | 'IKE_INTERMEDIATE' | 'IKE_FOLLOWUP_KE' | 'IKE_AUTH' | 'CREATE_CHILD_SA' | 'INFORMATIONAL' | null;
  readonly message: string;
  /**
   * NO_PROPOSAL_CHOSEN: both lists in strongSwan syntax. `remote` is what the peer offered when we
   * were the responder; when we initiated, the peer does not say what it wanted (RFC 7296
   * §2.7) and `remote` is null.
   */
  readonly proposals: { readonly local: readonly string[]; readonly remote: readonly string[] | null } | null;
  /** TS_UNACCEPTABLE: the selectors each side wanted. */
  readonly trafficSelectors: { readonly local: readonly string[]; readonly remote: readonly string[] } | null;
}

/**
 * What the engine reports. `ike-up` is emitted once per IKE SA negotiated by this process
 * (IKE_SA_INIT + IKE_AUTH): not for the successor of an IKE rekey (`ike-rekeyed`), nor for an SA
 * resumed from a checkpoint after a restart (restore(); its RestoreResult reports it).
 * `handshakeMs` is the negotiation's latency on the engine's clock (for a histogram):
 *  - initiator: from the first IKE_SA_INIT request (the engine creates the SA, generates the key
 *    share and sends it in one step) to the IKE_AUTH response that established it, so
 *    retransmissions, a COOKIE round trip and an INVALID_KE_PAYLOAD retry are included; a new
 *    attempt after a failed one (retryIntervalMs, dpd.action restart) is a new SA and counts anew;
 *  - responder: from the IKE_SA_INIT request that created the SA (the one carrying the cookie,
 *    when one was demanded) to the IKE_AUTH request that established it.
 */
export type IkeEvent =
  | { readonly type: 'ike-up'; readonly peer: string; readonly ikeSpis: string; readonly suite: string; readonly remote: Endpoint; readonly natDetected: boolean; readonly handshakeMs: number }
  | { readonly type: 'ike-rekeyed'; readonly peer: string; readonly oldIkeSpis: string; readonly ikeSpis: string; readonly suite: string }
  | { readonly type: 'ike-down'; readonly peer: string; readonly ikeSpis: string; readonly reason: DownReason }
  | { readonly type: 'child-up'; readonly peer: string; readonly child: string; readonly ref: KernelChildSaRef; readonly suite: string; readonly localTs: readonly string[]; readonly remoteTs: readonly string[] }
  | { readonly type: 'child-rekeyed'; readonly peer: string; readonly child: string; readonly old: KernelChildSaRef; readonly ref: KernelChildSaRef; readonly suite: string }
  | { readonly type: 'child-down'; readonly peer: string; readonly child: string; readonly ref: KernelChildSaRef; readonly reason: DownReason }
  | { readonly type: 'error'; readonly peer: string; readonly error: IkeFailure };

/** Receives engine events; synchronous, must not throw. */
export interface EventSink {
  emit(event: IkeEvent): void;
}

/** Optional structured debug log (pino-compatible shape: object first, fixed message). Never given key material. */
export interface EngineLogger {
  debug(obj: Record<string, unknown>, msg: string): void;
  info(obj: Record<string, unknown>, msg: string): void;
  warn(obj: Record<string, unknown>, msg: string): void;
}

/**
 * The keys of an IKE SA whose key schedule is RFC 9370's, once final: after its last
 * IKE_INTERMEDIATE (§2.2.1) or the last IKE_FOLLOWUP_KE of its rekey (§2.2.2). Like strongSwan's
 * save-keys plugin, for interop tests that compare keys with a peer's; the agent passes none.
 */
export interface IkeKeyLog {
  ikeKeys(e: { readonly spiI: bigint; readonly spiR: bigint; readonly keys: Readonly<Record<'skD' | 'skAi' | 'skAr' | 'skEi' | 'skEr' | 'skPi' | 'skPr', SecretBytes>> }): void;
}

/** Everything the engine is handed. */
export interface EnginePorts {
  readonly transport: Transport;
  readonly kernel: KernelIpsec;
  readonly clock: Clock;
  readonly random: Random;
  readonly events: EventSink;
  readonly log?: EngineLogger;
  readonly checkpoints?: CheckpointStore;
  /** Tests only (see IkeKeyLog). */
  readonly keyLog?: IkeKeyLog;
}
