// The facade's value types: status snapshots, adopted Child SAs, rekey requests. They live below
// the engine (engine.ts re-exports them) so the core in sa/ can use them without importing the
// facade that imports it.
import type { Endpoint, IkeFailure, KernelChildSaRef, EspAlgorithms, IpsecMode, UdpEncap } from './ports.js';

/** IKE SA states as status() reports them (the internal state unions are finer-grained). */
export type IkeSaStateName =
  | 'idle' // configured, nothing sent
  | 'connecting' // IKE_SA_INIT / IKE_AUTH in flight
  | 'established'
  | 'rekeying'
  | 'deleting'
  | 'down'; // failed or deleted; `lastError` says why when it failed

export type ChildSaStateName = 'installing' | 'installed' | 'rekeying' | 'deleting';

export interface ChildSaStatus {
  readonly name: string;
  readonly state: ChildSaStateName;
  readonly ref: KernelChildSaRef;
  readonly mode: IpsecMode;
  /** ESP suite in strongSwan syntax, e.g. "aes256gcm16" (with "-x25519" when PFS was used). */
  readonly suite: string;
  readonly localTs: readonly string[];
  readonly remoteTs: readonly string[];
  readonly encap: boolean;
  readonly installedAtMs: number;
  readonly rekeyAtMs: number;
  readonly expiresAtMs: number;
  /** True for SAs adopted from the kernel after a restart (no keys known to this engine). */
  readonly adopted: boolean;
}

export interface IkeSaStatus {
  readonly state: IkeSaStateName;
  readonly role: 'initiator' | 'responder';
  /** "0123456789abcdef_i fedcba9876543210_r" (hex SPIs as strongSwan prints them). */
  readonly ikeSpis: string;
  readonly suite: string | null;
  readonly local: Endpoint;
  readonly remote: Endpoint;
  readonly localId: string;
  readonly remoteId: string | null;
  readonly natDetected: { readonly local: boolean; readonly remote: boolean };
  readonly establishedAtMs: number | null;
  readonly rekeyAtMs: number | null;
  /** When a restarted engine resumed this SA from a checkpoint (restore()); null if negotiated by this process. */
  readonly resumedAtMs: number | null;
  readonly children: readonly ChildSaStatus[];
}

export interface PeerStatus {
  readonly name: string;
  /** The live IKE SA, or null (during an IKE rekey: the newest one). */
  readonly ike: IkeSaStatus | null;
  /** Child SAs kept from a previous process (adopt()) until a new IKE SA replaces them. */
  readonly adoptedChildren: readonly ChildSaStatus[];
  readonly lastError: (IkeFailure & { readonly atMs: number }) | null;
}

export interface EngineStatus {
  readonly peers: readonly PeerStatus[];
  readonly halfOpen: number;
  readonly cookiesActive: boolean;
  /** Dropped datagrams by reason (e.g. "decode", "unknown-spi", "integrity", "window", "half-open-limit"). */
  readonly drops: Readonly<Record<string, number>>;
}

/**
 * How much the engine holds right now, for checks that hostile input cannot make it grow without
 * bound (test/unit/ike/fuzz): every IKE SA in its table (half-open, established,
 * rekeyed, deleting), their Child SA records, and the bytes of partial RFC 7383 messages.
 */
export interface EngineSizes {
  readonly ikeSas: number;
  readonly halfOpen: number;
  readonly childSas: number;
  readonly reassemblyBytes: number;
}

/**
 * A Child SA the daemon found in the kernel at startup (by reqid → peer/child mapping it keeps).
 * The engine does not know its keys: it keeps it running, reports it, and once a new IKE SA is
 * up and has installed a fresh Child SA for the same child, deletes the adopted one
 * (make-before-break across a restart; nothing is flushed).
 */
export interface AdoptedChildSa {
  readonly ref: KernelChildSaRef;
  readonly mode: IpsecMode;
  readonly encap: UdpEncap | null;
  readonly algorithms: Pick<EspAlgorithms, 'kind'> & { readonly suite: string };
  readonly localTs: readonly string[];
  readonly remoteTs: readonly string[];
  /** When it was installed (from XFRM's curlft.add_time), for expiry bookkeeping. */
  readonly installedAtMs: number;
}

/** What to rekey now; neither flag set means the Child SAs (strongSwan's `swanctl --rekey` default). */
export interface RekeyRequest {
  readonly ike?: boolean;
  readonly child?: boolean;
  /**
   * Reauthenticate instead (`swanctl --rekey --reauth`, RFC 7296 §2.8.3), make-before-break: a new
   * IKE SA with the credentials the peer config holds now, and new Child SAs for every child
   * config, while the old IKE SA and its Child SAs carry traffic; then the old IKE SA is deleted
   * (its Child SAs with it). `ike` and `child` are ignored: everything is replaced.
   */
  readonly reauth?: boolean;
}

/** What rekey() queued on the peer's established IKE SA; the outcome follows as events. */
export interface RekeyStarted {
  /** The IKE SA the rekeys start on (the one being replaced, for an IKE rekey). */
  readonly ikeSpis: string;
  /** An IKE SA rekey is queued (or already in flight). */
  readonly ike: boolean;
  /** Child SAs whose rekey is queued (for a reauthentication: the ones the new IKE SA replaces). */
  readonly children: readonly KernelChildSaRef[];
  /** A reauthentication was started (RekeyRequest.reauth); `ike` is true then too. */
  readonly reauth?: boolean;
}
