// The IKE SA checkpoint's data model (checkpoint.ts says why checkpoints exist): the types a
// snapshot produces, the codec writes and reads, and restore.ts resumes from, with the format
// version and the error a checkpoint that cannot be used raises.
//
// Content: SPIs, endpoints and NAT state, the negotiated suite with SK_d/SK_a/SK_e (SK_p is only
// needed for AUTH), message IDs, the response cache, the request in flight with what its response
// needs (SPI, nonce, DH private value), queued tasks, and each Child SA's bookkeeping (SPIs,
// selectors, times; its keys stay in the kernel, except the outbound state a rekey responder has
// not activated yet), and a rekey collision we are in the middle of (RFC 7296 §2.8.1: the peer's
// new SA and its nonces, which decide whose SA goes once our own rekey's answer comes). Not kept:
// partial fragment reassembly, the peer's SIGNATURE_HASH list beyond the hashes; both are transient.
import type { SecretBytes } from '../../common/secret.js';
import { KipsecError } from '../../common/errors.js';
import type { IkeSuite } from '../crypto/keys.js';
import type { PolicyProposal } from '../policy/proposal.js';
import type { SelectedProposal } from '../policy/select.js';
import type { Endpoint, IpsecMode, KernelSa, UdpEncap } from '../ports.js';
import type { TsRange } from './ts.js';

export const CHECKPOINT_VERSION = 1;

/** A checkpoint that cannot be used; `field` names what was wrong ("children[0].ni"). */
export class CheckpointError extends KipsecError {
  readonly field: string;
  constructor(field: string, message: string) {
    super('ERR_IKE_CHECKPOINT', `checkpoint ${field}: ${message}`);
    this.field = field;
  }
}

export type ChildCheckpointState = 'installed' | 'rekeying' | 'rekeyed' | 'deleting' | 'deleted';

export interface ChildCheckpoint {
  /** The child config's name (PeerConfig.children[].name). */
  readonly name: string;
  readonly state: ChildCheckpointState;
  /** Inbound SPI of the successor of a `rekeyed` child, when known. */
  readonly successorSpi: number | null;
  readonly inboundSpi: number;
  readonly outboundSpi: number;
  readonly local: string;
  readonly remote: string;
  readonly mode: IpsecMode;
  readonly suite: string;
  readonly localTs: readonly TsRange[];
  readonly remoteTs: readonly TsRange[];
  readonly encap: UdpEncap | null;
  readonly ni: Uint8Array;
  readonly nr: Uint8Array;
  readonly installedAtMs: number;
  readonly rekeyAtMs: number;
  readonly expiresAtMs: number;
  readonly outboundPending: boolean;
  readonly pendingOutbound: KernelSa | null;
  /** ike-sa.ts ChildSa.collision, the peer's new SA by its inbound SPI; absent in older checkpoints. */
  readonly collision: CollisionCheckpoint<number> | null;
}

/** A rekeyed Child SA's states, deleted at untilMs (the child config by name: its reqid may differ after a restart). */
export interface LingeringCheckpoint {
  readonly name: string; readonly inboundSpi: number; readonly outboundSpi: number; readonly local: string; readonly remote: string; readonly untilMs: number;
}

/** RFC 7296 §2.8.1: we answered the peer's rekey while ours was in flight (`peer`: its new SA). */
export interface CollisionCheckpoint<Id> { readonly peer: Id; readonly nonces: readonly Uint8Array[] }

export interface ShareCheckpoint { readonly group: number; readonly privateValue: SecretBytes }

export interface ChildScratchCheckpoint {
  readonly spi: number;
  readonly ni: Uint8Array;
  readonly share: ShareCheckpoint | null;
  readonly proposals: readonly PolicyProposal[];
  readonly mode: IpsecMode;
  readonly localTs: readonly TsRange[];
  readonly remoteTs: readonly TsRange[];
}

/** Tasks refer to Child SAs by inbound SPI, with the child inline for one no longer attached. */
export type TaskCheckpoint =
  | { readonly kind: 'child-create'; readonly child: string; readonly group: number | null }
  | { readonly kind: 'child-rekey'; readonly old: ChildCheckpoint; readonly group: number | null }
  | { readonly kind: 'child-delete'; readonly child: ChildCheckpoint; readonly reason: 'rekeyed' | 'terminated' | 'redundant' | 'hard-lifetime' }
  | { readonly kind: 'ike-rekey'; readonly group: number | null }
  | { readonly kind: 'ike-delete'; readonly reason: 'terminated' | 'rekeyed' | 'redundant' | 'duplicate' | 'reauthenticated' }
  | { readonly kind: 'dpd' };

/**
 * The SA's side of a reauthentication (ike-sa.ts ReauthLink): `spi` is our SPI of the other IKE SA,
 * which has its own checkpoint (both are saved during the overlap).
 */
export interface ReauthCheckpoint {
  readonly tag: 'replacing' | 'superseded';
  readonly spi: bigint;
  readonly ours: boolean;
  readonly failed: readonly string[];
}

export interface OutstandingCheckpoint {
  readonly task: TaskCheckpoint;
  readonly messageId: number;
  readonly exchangeType: number;
  readonly datagrams: readonly Uint8Array[];
  readonly firstSentMs: number | null;
  readonly child: ChildScratchCheckpoint | null;
  readonly ikeRekey: { readonly spi: bigint; readonly ni: Uint8Array; readonly share: ShareCheckpoint } | null;
}

export interface IkeSaCheckpoint {
  readonly peer: string;
  readonly role: 'initiator' | 'responder';
  readonly spiI: bigint;
  readonly spiR: bigint;
  readonly state: 'established' | 'rekeyed';
  /** Our SPI of the successor of a `rekeyed` IKE SA, when known. */
  readonly successorSpi: bigint | null;
  readonly local: Endpoint;
  readonly remote: Endpoint;
  readonly natLocal: boolean;
  readonly natRemote: boolean;
  readonly fragmentation: boolean;
  readonly peerHashes: readonly number[] | null;
  readonly suite: IkeSuite;
  readonly suiteText: string;
  readonly dhGroup: number;
  readonly selected: SelectedProposal;
  readonly skD: SecretBytes;
  readonly skAi: SecretBytes;
  readonly skAr: SecretBytes;
  readonly skEi: SecretBytes;
  readonly skEr: SecretBytes;
  readonly remoteId: string | null;
  readonly nextRequestId: number;
  readonly expectedRequestId: number;
  readonly lastResponse: { readonly messageId: number; readonly datagrams: readonly Uint8Array[] } | null;
  readonly outstanding: OutstandingCheckpoint | null;
  readonly pending: readonly TaskCheckpoint[];
  readonly createdAtMs: number;
  readonly establishedAtMs: number | null;
  readonly rekeyAtMs: number | null;
  readonly children: readonly ChildCheckpoint[];
  /** ike-sa.ts IkeSa.lingering; absent in older checkpoints (read as none). */
  readonly lingering: readonly LingeringCheckpoint[];
  /** Absent in checkpoints written before reauthentication existed: read as null. */
  readonly reauth: ReauthCheckpoint | null;
  /** ike-sa.ts RequestScratch ike-rekey's collision, the peer's new IKE SA by our SPI; absent in older checkpoints. */
  readonly ikeCollision: CollisionCheckpoint<bigint> | null;
}
