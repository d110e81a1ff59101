// Upper bounds on everything a peer controls, so a hostile datagram costs at most linear time and
// memory in its own size. Generous next to what real peers send (strongSwan's largest IKE_AUTH with
// a certificate chain is a few KiB and a few dozen payloads).

/** An IKE message over UDP (or RFC 8229 TCP) fits a 16-bit length. */
export const MAX_MESSAGE_BYTES = 65_535;
/** A reassembled (RFC 7383) or decrypted inner payload chain. */
export const MAX_INNER_BYTES = 262_144;
/** Payloads in one chain (outer or inner). */
export const MAX_PAYLOADS = 128;
/** Proposals in one SA payload; RFC 7296 §3.3 numbers them in one octet. */
export const MAX_PROPOSALS = 64;
/** Transforms in one proposal. */
export const MAX_TRANSFORMS = 64;
/** Attributes in one transform (only KEY_LENGTH is defined). */
export const MAX_TRANSFORM_ATTRIBUTES = 8;
/** Configuration attributes in one CP payload. */
export const MAX_CP_ATTRIBUTES = 64;
/** SPIs in one Delete payload (each costs at least 4 bytes of the datagram anyway). */
export const MAX_DELETE_SPIS = 4_096;
