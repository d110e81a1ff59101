// Engine defaults, named after the strongSwan settings they mirror (strongswan.conf(5), charon.*)
// or the RFC that motivates them, so a reader can compare behaviour with a charon peer.

/** charon.retransmit_timeout / retransmit_base / retransmit_tries: 4 s × 1.8^n, 5 retransmits (≈165 s). */
export const RETRANSMIT_TIMEOUT_MS = 4_000;
export const RETRANSMIT_BASE = 1.8;
export const RETRANSMIT_TRIES = 5;

/** charon.cookie_threshold: half-open IKE SAs before COOKIEs are demanded (RFC 7296 §2.6, RFC 8019 §4.6). */
export const COOKIE_THRESHOLD = 10;
/** Hard bound on half-open IKE SAs; beyond it IKE_SA_INIT requests are dropped (RFC 8019 §4.6). */
export const HALF_OPEN_LIMIT = 1_000;
/** charon.half_open_timeout. */
export const HALF_OPEN_TIMEOUT_MS = 30_000;
/** charon.delete_rekeyed_delay: the old inbound SA lives this long after a Child rekey. */
export const REKEY_DELETE_DELAY_MS = 5_000;
/** RFC 7383 §2.6.1 bounded reassembly: fragments per message. */
export const MAX_FRAGMENTS = 64;
/** charon.max_packet (strongswan.conf(5); libstrongswan packet.h PACKET_MAX_DEFAULT): larger datagrams are dropped at intake. */
export const MAX_DATAGRAM_BYTES = 10_000;
/**
 * RFC 7383 reassembly, all IKE SAs together (no charon counterpart: charon bounds each message by
 * max_packet). 1 MiB holds ~100 certificate IKE_AUTH messages in flight at once, yet caps what
 * up to HALF_OPEN_LIMIT anonymous half-open SAs (each can send SKF under its IKE_SA_INIT keys) hold.
 */
export const REASSEMBLY_BYTES_LIMIT = 1_048_576;
/**
 * A partial RFC 7383 message is discarded this long after its first fragment: by then a live peer
 * has resent all fragments three times (charon's 4 s × 1.8^n schedule), like charon.half_open_timeout.
 */
export const REASSEMBLY_TIMEOUT_MS = 30_000;
/**
 * A cached response is resent at most this often per IKE SA (RFC 7296 §2.1): a retransmitted
 * request verifies whoever replays it, from any source. charon retransmits after 4 s, Libreswan
 * after 0.5 s then doubling, so a genuine peer loses at most one early retransmission to it.
 */
export const RESEND_INTERVAL_MS = 1_000;
/** charon.block_threshold: half-open IKE SAs one source address may hold (RFC 8019 §4.6). */
export const HALF_OPEN_PER_ADDRESS = 5;
/** charon.fragment_size default: IP packet size used when a peer sets no fragmentMtu. */
export const FRAGMENT_MTU = 1_280;
/** Give up after this many COOKIE / INVALID_KE_PAYLOAD round trips in one IKE_SA_INIT. */
export const MAX_INIT_RETRIES = 5;
/** Nonce length we send (RFC 7296 §2.10: at least half the PRF key size; 32 covers SHA-512's 256 bits / 2). */
export const NONCE_BYTES = 32;
/**
 * Hard packet limit of a Child SA without ESN when its config sets none (soft expire, and so the
 * rekey, at 90%): the 32-bit ESP sequence number must never wrap (RFC 4303 §3.3.3), and at the
 * kernel's limit it drops every packet until the time-based rekey. 2^31 leaves half the space.
 */
export const NON_ESN_LIFE_PACKETS = 2n ** 31n;
/** Retry a failed TEMPORARY_FAILURE rekey after this long (RFC 7296 §2.25). */
export const REKEY_RETRY_MS = 10_000;
/** startAction initiate: retry a failed connection after this long (charon keyingtries=%forever, with a pause). */
export const RETRY_INTERVAL_MS = 30_000;
/**
 * A peer re-authenticates (a new IKE SA without INITIAL_CONTACT): its new Child SAs are sent on from
 * the old IKE SA's Delete or the first ESP that arrives on them, or after this long at the latest —
 * the initiator installs its inbound state only when our IKE_AUTH (or CREATE_CHILD_SA) answer
 * reaches it, and sending on the new SA before that loses packets (strongSwan's responder has that
 * window). 2 s was too short for a loaded node verifying a new certificate chain (the cluster lane's
 * CA rotation lost pings to it); no longer than rekeyDeleteDelayMs's default, for which a
 * duplicate's Child SAs linger meanwhile.
 */
export const REAUTH_OUTBOUND_HOLD_MS = 5_000;
/** After a peer-initiated rekey, wait this long for the peer's Delete of the old SA before acting alone. */
export const REKEYED_SA_TIMEOUT_MS = 30_000;
