// The IKE SA and Child SA records the exchanges operate on, with their explicit state unions.
// One IkeSa per IKE SA (a rekey creates a new one); message-ID bookkeeping lives here (RFC 7296
// §2.3 window of 1 in each direction, the response cache of §2.1) so every exchange module sees
// the same rules.
import type { SecretBytes } from '../../common/secret.js';
import type { TimerHandle } from '../../common/time.js';
import type { KeyShare } from '../crypto/dh.js';
import type { IkeSaKeys, IkeSuite } from '../crypto/keys.js';
import type { Prf } from '../crypto/prf.js';
import type { SkCipher } from '../crypto/sk.js';
import type { PolicyProposal } from '../policy/proposal.js';
import type { SelectedProposal } from '../policy/select.js';
import type { FollowupKe, FollowupRunView, RekeyedIkeInputs } from '../steps/followup-ke.js';
import type { Intermediate } from '../steps/intermediate.js';
import type { Endpoint, IpsecMode, KernelChildSaRef, KernelSa, UdpEncap } from '../ports.js';
import type { ChildConfig, PeerConfig } from './config.js';
import type { TsRange } from './ts.js';

/** A peer config with everything pre-parsed once at addPeer. */
export interface PeerRuntime {
  readonly config: PeerConfig;
  readonly ikeProposals: readonly PolicyProposal[];
  /** The first KE method of ikeProposals: the one IKE_SA_INIT's KEi uses until the peer asks for another. */
  readonly ikeGroup: number;
  readonly children: readonly ChildRuntime[];
  readonly local: Endpoint;
  readonly remote: Endpoint;
  /** Set by terminate(): no DPD restart, no retries. */
  terminated: boolean;
  /** Some IKE SA with this peer reached established (INITIAL_CONTACT is sent only before that). */
  everEstablished: boolean;
  retryTimer: TimerHandle | null;
}

export interface ChildRuntime {
  readonly config: ChildConfig;
  readonly reqid: number;
  readonly espProposals: readonly PolicyProposal[];
  readonly localTs: readonly TsRange[];
  readonly remoteTs: readonly TsRange[];
  /** The first KE method in the ESP proposals, i.e. PFS on CREATE_CHILD_SA; null = no PFS. */
  readonly pfsGroup: number | null;
}

/** Keys and ciphers of an established (or IKE_AUTH-pending) IKE SA. Never logged. */
export interface IkeKeys {
  readonly suite: IkeSuite;
  readonly suiteText: string;
  readonly dhGroup: number;
  readonly prf: Prf;
  readonly skD: SecretBytes;
  readonly skPi: SecretBytes;
  readonly skPr: SecretBytes;
  readonly out: SkCipher;
  readonly in: SkCipher;
  /** SK_a and SK_e of both directions, kept to checkpoint the SA (checkpoint.ts); `out`/`in` use them. */
  readonly sk: Pick<IkeSaKeys, 'skAi' | 'skAr' | 'skEi' | 'skEr'>;
}

/** Keys of an IKE SA once up: SK_pi and SK_pr are gone, they only enter IKE_AUTH's AUTH (RFC 7296 §2.15). */
export type IkeUpKeys = Omit<IkeKeys, 'skPi' | 'skPr'>;

/**
 * What IKE_SA_INIT settled, held until IKE_AUTH is done: the proposal chosen, the keys (updated by
 * each IKE_INTERMEDIATE key exchange, RFC 9370 §2.2.1), and the nonces, which AUTH (§2.15), the
 * first Child SA's KEYMAT (§2.17) and those key updates use.
 */
export interface PreAuthKeyed { readonly selected: SelectedProposal; readonly keys: IkeKeys; readonly ni: Uint8Array; readonly nr: Uint8Array }

/**
 * What an IKE SA that is up keeps of its negotiation: the proposal chosen (rekey offers keep the
 * suite) and the keys: SK_d for Child SA KEYMAT and the next rekey (§2.17, §2.18), the SK ciphers.
 */
export interface UpKeyed { readonly selected: SelectedProposal; readonly keys: IkeUpKeys }

/** The two IKE_SA_INIT messages, which AUTH covers (RFC 7296 §2.15): held only until IKE_AUTH is done. */
export interface InitMessages { readonly request: Uint8Array; readonly response: Uint8Array }

/**
 * What an IKE SA knows once IKE_AUTH has completed on it, or on the SA it descends from (rekey,
 * checkpoint): carried by the established state and handed to every later one (rekeyed, deleting,
 * dead), so a superseded or dead SA still shows what it was.
 */
export interface IkeSaUp {
  /** The peer's authenticated identity (IDi or IDr) as text; null only when resumed from a checkpoint that had none. */
  readonly remoteId: string | null;
  readonly establishedAtMs: number;
  /** Engine-wide order of establishment (ordering without relying on clock resolution). */
  readonly upSerial: number;
  /** When the IKE SA rekey is due (lifecycle.ts scheduleIkeTimers); null when none is scheduled. */
  rekeyAtMs: number | null;
  /** Set when a restarted engine resumed this SA from a checkpoint instead of negotiating it. */
  readonly resumedAtMs: number | null;
}

/**
 * IKE SA lifecycle. Initiator: idle → init-sent → auth-sent (IKE_INTERMEDIATE exchanges, then
 * IKE_AUTH) → established; responder: idle (answering the first message) → init-done (half-open)
 * → established. established → rekeyed (superseded, waiting for the old SA's Delete) | deleting → dead.
 */
export type IkeSaState =
  /** No IKE_SA_INIT outcome yet: an initiator's until its first request is built, a responder's while it answers the first message. */
  | { readonly tag: 'idle' }
  | { readonly tag: 'init-sent'; readonly share: KeyShare; readonly ni: Uint8Array; readonly request: Uint8Array; readonly cookie: Uint8Array | null; readonly retries: number }
  /**
   * `intermediate` (both): the RFC 9370 additional key exchanges in IKE_INTERMEDIATE
   * (steps/intermediate.ts) before IKE_AUTH, null when the chosen proposal has none; its IntAuth
   * chain goes into AUTH.
   */
  | { readonly tag: 'auth-sent'; readonly init: InitMessages; readonly intermediate: Intermediate | null; readonly keyed: PreAuthKeyed }
  | { readonly tag: 'init-done'; readonly init: InitMessages; readonly intermediate: Intermediate | null; readonly keyed: PreAuthKeyed }
  /**
   * A rekey's new IKE SA whose keys wait for IKE_FOLLOWUP_KE on the old SA (RFC 9370 §2.2.2; the
   * run there holds what they come from): not registered, not live; established once keyed.
   */
  | { readonly tag: 'keying'; readonly up: IkeSaUp }
  | { readonly tag: 'established'; readonly up: IkeSaUp; readonly keyed: UpKeyed }
  /**
   * `up`, `keyed`: null only for an SA superseded before it was ever up, or after it was torn
   * down (a crossed rekey may name any SA); nothing is sent on it then.
   */
  | { readonly tag: 'rekeyed'; readonly successor: IkeSa | null; readonly up: IkeSaUp | null; readonly keyed: UpKeyed | null }
  /**
   * `sendOn`: a duplicate's Delete is out; these Child SAs of the surviving IKE SA, held
   * receive-only, were answered before it, so the peer has them: send on them once it is gone.
   */
  | { readonly tag: 'deleting'; readonly sendOn?: readonly ChildSa[]; readonly up: IkeSaUp; readonly keyed: UpKeyed }
  /** `up`: what it knew if it ever was up. */
  | { readonly tag: 'dead'; readonly up: IkeSaUp | null };

export type ChildState =
  | { readonly tag: 'installed' }
  | { readonly tag: 'rekeying' }
  /** Superseded by `successor`; kept until the Delete exchange (or its timeout) completes. */
  | { readonly tag: 'rekeyed'; readonly successor: ChildSa | null }
  | { readonly tag: 'deleting' }
  | { readonly tag: 'deleted' };

/**
 * RFC 7296 §2.8.1: we answered the peer's rekey of a Child SA while our own rekey of it was in
 * flight; the peer's new SA and the nonces of its exchange, for the comparison. Recorded on our
 * request (RequestScratch child, then ChildSent rekey-sent through any IKE_FOLLOWUP_KE run), whose
 * answer settles it: the Child SA's own state may move on first (the peer's winning chain).
 */
export interface ChildCollision { readonly peerSa: ChildSa; readonly nonces: readonly Uint8Array[] }

export type ChildOutbound = { readonly tag: 'active' } | { readonly tag: 'pending'; readonly state: KernelSa | null };

export const OUTBOUND_ACTIVE: ChildOutbound = { tag: 'active' };

export interface ChildSa {
  /** Its config; core.addPeer re-points it when the peer's config is replaced (the next rekey follows it). */
  runtime: ChildRuntime;
  state: ChildState;
  /** Replaced (not mutated) when the peer's NAT mapping moves (RFC 7296 §2.23). */
  ref: KernelChildSaRef;
  readonly mode: IpsecMode;
  readonly suiteText: string;
  readonly localTs: readonly TsRange[];
  readonly remoteTs: readonly TsRange[];
  encap: UdpEncap | null;
  readonly ni: Uint8Array;
  readonly nr: Uint8Array;
  readonly installedAtMs: number;
  readonly rekeyAtMs: number;
  readonly expiresAtMs: number;
  /**
   * The outbound SA: sending, or installed with outboundActive: false (rekey responder,
   * reauthentication hold) and not yet activated; then `state` is the outbound state the kernel
   * has not been given yet, so a restarted daemon can still activate it (checkpoint.ts), null only
   * when resumed from a checkpoint that did not record it.
   */
  outbound: ChildOutbound;
  timers: TimerHandle[];
}

/** One request we initiated: what it is for, and its retransmission state. */
export type Task =
  | { readonly kind: 'ike-init' }
  /** RFC 9242 / RFC 9370: the next additional key exchange (the auth-sent state's `intermediate` says which). */
  | { readonly kind: 'ike-intermediate' }
  | { readonly kind: 'ike-auth' }
  /** `group`: the KE method the peer asked for with INVALID_KE_PAYLOAD (RFC 7296 §1.3), once. */
  | { readonly kind: 'child-create'; readonly child: ChildRuntime; readonly group?: number }
  | { readonly kind: 'child-rekey'; readonly old: ChildSa; readonly group?: number }
  | { readonly kind: 'child-delete'; readonly child: ChildSa; readonly reason: 'rekeyed' | 'terminated' | 'redundant' | 'hard-lifetime' }
  /** `group`: as for child-create, the KE method the peer asked for (RFC 7296 §1.3.2), once. */
  | { readonly kind: 'ike-rekey'; readonly group?: number }
  /** RFC 9370 §2.2.2: the next IKE_FOLLOWUP_KE of our IKE rekey (sa.followup says which). */
  | { readonly kind: 'ike-followup' }
  /**
   * `duplicate`: one of two IKE SAs from a simultaneous start (see lifecycle.ts resolveDuplicates);
   * `reauthenticated`: the old IKE SA once its reauthentication is complete (reauth.ts).
   */
  | { readonly kind: 'ike-delete'; readonly reason: 'terminated' | 'rekeyed' | 'redundant' | 'duplicate' | 'reauthenticated' }
  | { readonly kind: 'dpd' };

/** Per-request scratch the response handler needs (SPIs allocated, nonce, key share). */
export interface ChildRequestScratch {
  readonly spi: number;
  readonly ni: Uint8Array;
  readonly share: KeyShare | null;
  readonly proposals: readonly PolicyProposal[];
  readonly mode: IpsecMode;
  readonly localTs: readonly TsRange[];
  readonly remoteTs: readonly TsRange[];
}

/** What the responder chose for the request's child, before it has an inbound SPI. */
export interface ChildChoice {
  readonly runtime: ChildRuntime;
  readonly sel: SelectedProposal;
  readonly mode: IpsecMode;
  /** Narrowed (§2.9), from our point of view. */
  readonly localTs: readonly TsRange[];
  readonly remoteTs: readonly TsRange[];
  /** The initiator's nonce (CREATE_CHILD_SA) or IKE_SA_INIT's Ni (IKE_AUTH). */
  readonly ni: Uint8Array;
  /** Our KEr and g^ir when the chosen proposal has a KE method (PFS); the secret is wiped by acceptChild. */
  readonly share: KeyShare | null;
  readonly pfs: SecretBytes | null;
  readonly inIkeAuth: boolean;
}

/** A checked CREATE_CHILD_SA answer whose keys wait for IKE_FOLLOWUP_KE (RFC 9370 §2.2.2). */
export interface ChildReply {
  readonly sel: SelectedProposal;
  readonly localTs: readonly TsRange[];
  readonly remoteTs: readonly TsRange[];
  readonly nr: Uint8Array;
  readonly outboundSpi: number;
  readonly group: number | null;
}

/** Initiator: our CREATE_CHILD_SA request for a Child SA is out (steps/child.ts). */
export type ChildSent =
  /** A new Child SA; `offer` holds our SPI, Ni, KEi and selectors. */
  | { readonly tag: 'create-sent'; readonly runtime: ChildRuntime; readonly offer: ChildRequestScratch; readonly retried: boolean }
  /**
   * A rekey of `old`. `collision`: we answered the peer's rekey of `old` meanwhile (§2.8.1), null
   * while none crossed ours (child-tasks.ts records one here while our IKE_FOLLOWUP_KE run is on).
   */
  | { readonly tag: 'rekey-sent'; readonly old: ChildSa; readonly offer: ChildRequestScratch; readonly retried: boolean; collision: ChildCollision | null };

/** A Child SA whose keys wait for IKE_FOLLOWUP_KE (RFC 9370 §2.2.2), from either side. */
export type ChildFollowupPending =
  /** Initiator: the checked answer to `sent`. */
  | { readonly role: 'initiator'; readonly sent: ChildSent; readonly reply: ChildReply }
  /** Responder: what we chose, on our inbound SPI, and the Nr we answered with. */
  | { readonly role: 'responder'; readonly choice: ChildChoice; readonly rekey: { readonly old: ChildSa; readonly collision: boolean } | null; readonly inboundSpi: number; readonly nr: Uint8Array };

/** An IKE_FOLLOWUP_KE run (see IkeSa.followup): of an IKE rekey, or of a Child SA's CREATE_CHILD_SA. */
export type FollowupRun =
  | { readonly for: 'ike'; readonly fresh: IkeSa; readonly view: FollowupRunView; readonly keys: RekeyedIkeInputs; readonly selected: SelectedProposal; state: FollowupKe }
  | { readonly for: 'child'; readonly pending: ChildFollowupPending; readonly view: FollowupRunView; state: FollowupKe };

export interface IkeRekeyScratch {
  readonly spi: bigint;
  readonly ni: Uint8Array;
  readonly share: KeyShare;
}

/**
 * What a request in flight keeps for its answer: the offer of a Child SA request (or of IKE_AUTH's
 * first Child SA: its SPI, Ni, KEi and selectors), or of an IKE SA rekey; nothing for the others.
 */
export type RequestScratch =
  | { readonly kind: 'none' }
  /** `collision`: of a Child SA rekey, the peer's rekey of the same SA that crossed it (ChildCollision); null while none did, and for other requests. */
  | { readonly kind: 'child'; readonly offer: ChildRequestScratch; collision: ChildCollision | null }
  /** `collision`: the peer's rekey of this IKE SA that crossed ours and that we answered (§2.8.2); null while none did. */
  | { readonly kind: 'ike-rekey'; readonly offer: IkeRekeyScratch; collision: IkeCollision | null };

/** §2.8.2: the peer's new IKE SA of a rekey that crossed ours, and the nonces of its exchange (§2.8.1 compares them). */
export interface IkeCollision { readonly peerSa: IkeSa; readonly nonces: readonly Uint8Array[] }

export const NO_SCRATCH: RequestScratch = { kind: 'none' };

export interface Outstanding {
  readonly task: Task;
  readonly messageId: number;
  readonly exchangeType: number;
  readonly datagrams: readonly Uint8Array[];
  readonly scratch: RequestScratch;
  tries: number;
  timer: TimerHandle | null;
  /** When the request was first sent (DPD timeouts count from here). */
  firstSentMs?: number;
}

export interface FragmentBuffer {
  readonly messageId: number;
  readonly total: number;
  readonly parts: Map<number, { readonly innerNext: number; readonly plaintext: Uint8Array }>;
  bytes: number;
  /** When its first fragment arrived (limits.ts discards it reassemblyTimeoutMs later). */
  readonly startedAtMs: number;
}

/**
 * Make-before-break reauthentication (RFC 7296 §2.8.3, reauth.ts): the new IKE SA and the one it
 * replaces point at each other until the old one is gone (or the new one failed). `ours`: we
 * initiated the new SA, so we delete the old one once every child config has been tried on the
 * new one (`failed`: child configs the new SA could not get); otherwise the peer does.
 */
export type ReauthLink =
  | { readonly tag: 'replacing'; old: IkeSa; readonly ours: boolean; readonly failed: Set<string>; timer: TimerHandle | null }
  | { readonly tag: 'superseded'; successor: IkeSa; readonly ours: boolean }
  /**
   * The new IKE SA of a reauthentication that crossed the peer's and lost (reauth.ts
   * settleReauthCollision): nobody sends on its Child SAs; its initiator deletes it (`ours`), or
   * we do after `timer` if the peer does not.
   */
  | { readonly tag: 'redundant'; readonly ours: boolean; timer: TimerHandle | null };

/** lifecycle.ts removeChild with a delay: the kernel states go at untilMs. */
export interface LingeringChild { readonly ref: KernelChildSaRef; readonly untilMs: number }

export interface IkeSa {
  /** Local serial for logs and status ordering. */
  readonly serial: number;
  peer: PeerRuntime;
  /** Our role in *this* IKE SA (the rekey initiator becomes the original initiator of the new one). */
  readonly role: 'initiator' | 'responder';
  readonly spiI: bigint;
  spiR: bigint;
  state: IkeSaState;
  local: Endpoint;
  remote: Endpoint;
  natLocal: boolean;
  natRemote: boolean;
  /** Both sides announced IKEV2_FRAGMENTATION_SUPPORTED (RFC 7383 §2.3). */
  fragmentation: boolean;
  /** Hash IDs from the peer's SIGNATURE_HASH_ALGORITHMS, null when it sent none; shared between SAs (ike-init-tasks.ts). */
  peerHashes: readonly number[] | null;
  /**
   * RFC 9370 §2.2.2: an IKE rekey with additional key exchanges in IKE_FOLLOWUP_KE on this (old)
   * IKE SA, from either side: the new IKE SA (keying: no keys yet, not registered) and the steps'
   * state (steps/followup-ke.ts). Null when none is running.
   */
  followup: FollowupRun | null;
  // --- message IDs (RFC 7296 §2.1-2.3) ---
  nextRequestId: number;
  outstanding: Outstanding | null;
  readonly pending: Task[];
  expectedRequestId: number;
  /** `opener`: the keys the request came under when they have changed since (IKE_INTERMEDIATE, RFC 9370 §2.2.1). */
  lastResponse: { readonly messageId: number; readonly datagrams: readonly Uint8Array[]; readonly opener?: SkCipher } | null;
  fragments: FragmentBuffer | null;
  // --- Child SAs, by our inbound SPI ---
  readonly children: Map<number, ChildSa>;
  /**
   * Rekeyed Child SAs whose inbound state lingers (rekeyDeleteDelayMs) for packets still in flight
   * on the old SPI, by inbound SPI. Not Child SAs any more, but checkpointed, so a restart in that
   * window deletes them on time instead of adopting them until the next rekey. Null while there
   * are none (most of an SA's life: an empty Map is ~180 bytes).
   */
  lingering: Map<number, LingeringChild> | null;
  /** A reauthentication this SA is the new or the old side of; null otherwise. */
  reauth: ReauthLink | null;
  /**
   * When this process created the SA: as initiator, when it sent the first IKE_SA_INIT; as
   * responder, when that request arrived (the `ike-up` event's handshakeMs counts from here).
   */
  createdAtMs: number;
  lastInboundMs: number;
  timers: { rekey: TimerHandle | null; dpd: TimerHandle | null; halfOpen: TimerHandle | null; rekeyed: TimerHandle | null };
  /** Serialises everything that touches this SA (receive, timers, kernel awaits). */
  queue: Promise<void>;
}

/**
 * IKE_AUTH has completed on this IKE SA (or it came from one that had: rekey, checkpoint). Before
 * that the IKE_SA_INIT keys prove only that someone ran IKE_SA_INIT (RFC 7296 §1.2, §2.15).
 */
export function authenticated(sa: Pick<IkeSa, 'state'>): boolean {
  const t = sa.state.tag;
  return t === 'established' || t === 'rekeyed' || t === 'deleting';
}

/** What `sa` knows as an SA that was up (IkeSaUp); null before IKE_AUTH completed. */
export function upOf(sa: Pick<IkeSa, 'state'>): IkeSaUp | null {
  const s = sa.state;
  switch (s.tag) {
    case 'keying': case 'established': case 'rekeyed': case 'deleting': case 'dead': return s.up;
    case 'idle': case 'init-sent': case 'auth-sent': case 'init-done': return null;
  }
}

/** What an SA that is up keeps of its negotiation; null in other states. */
export function upKeyedOf(sa: Pick<IkeSa, 'state'>): UpKeyed | null {
  const s = sa.state;
  return s.tag === 'established' || s.tag === 'rekeyed' || s.tag === 'deleting' ? s.keyed : null;
}

/** `sa` superseded by `successor` (IKE SA rekey, RFC 7296 §2.8), keeping what it knew as an SA that was up. */
export function rekeyedState(sa: Pick<IkeSa, 'state'>, successor: IkeSa | null): Extract<IkeSaState, { tag: 'rekeyed' }> {
  return { tag: 'rekeyed', successor, up: upOf(sa), keyed: upKeyedOf(sa) };
}

/** `sa` gone, keeping what it knew as an SA that was up. */
export function deadState(sa: Pick<IkeSa, 'state'>): Extract<IkeSaState, { tag: 'dead' }> {
  return { tag: 'dead', up: upOf(sa) };
}

/** An IKE SPI as its 8 octets on the wire (§3.1), as prf+ and the SA payload take it. */
export function spiBytes(spi: bigint): Uint8Array {
  const out = new Uint8Array(8); new DataView(out.buffer).setBigUint64(0, spi); return out;
}

export function spiHex(spi: bigint): string { return spi.toString(16).padStart(16, '0'); }
export function ikeSpisText(sa: Pick<IkeSa, 'spiI' | 'spiR'>): string { return `${spiHex(sa.spiI)}_i ${spiHex(sa.spiR)}_r`; }
/** The SPI that identifies the SA for us (the one we chose). */
export function ourSpi(sa: Pick<IkeSa, 'role' | 'spiI' | 'spiR'>): bigint { return sa.role === 'initiator' ? sa.spiI : sa.spiR; }
