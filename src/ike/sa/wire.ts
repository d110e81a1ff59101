// From inner payloads to datagrams and back for one IKE SA: SK protection through the crypto
// module's SkCipher, RFC 7383 fragmentation when sending, and bounded reassembly when receiving.
import { IkeCodecError } from '../codec/errors.js';
import { encodeEncryptedFragments, encodeEncryptedMessage, joinFragmentsMessage, openEncryptedMessage, sealedPrefix } from '../codec/envelope.js';
import type { IkeHeader } from '../codec/header.js';
import type { IkeMessage } from '../codec/message.js';
import type { IkePayload } from '../codec/payload.js';
import { MAX_INNER_BYTES } from '../codec/limits.js';
import { ExchangeType } from '../constants.js';
import { FRAGMENT_MTU } from './defaults.js';
import type { IkeSa } from './ike-sa.js';
import { keysOf } from './ike-keys.js';
import type { EngineLimits } from './limits.js';

export function headerFor(sa: IkeSa, exchangeType: number, messageId: number, response: boolean): IkeHeader {
  return {
    initiatorSpi: sa.spiI, responderSpi: sa.spiR, exchangeType, messageId, response,
    initiator: sa.role === 'initiator', higherVersion: false, minorVersion: 0,
  };
}

/** IP + UDP (+ non-ESP marker on 4500) bytes around an IKE message. */
function overheadBytes(sa: IkeSa): number {
  return (sa.remote.address.includes(':') ? 40 : 20) + 8 + (sa.remote.port === 500 ? 0 : 4);
}

/**
 * Encrypt `inner` for `sa`; when fragmentation was negotiated and the datagram would exceed the
 * MTU, split it into SKF fragments (RFC 7383 §2.5), each within the MTU.
 */
export function sealMessage(sa: IkeSa, header: IkeHeader, inner: readonly IkePayload[], mtu: number): Uint8Array[] {
  const keys = keysOf(sa);
  if (keys === null) throw new IkeCodecError('ERR_IKE_NO_KEYS', 'no keys to protect the message', 0);
  const sealer = keys.out;
  const whole = encodeEncryptedMessage(header, inner, sealer);
  if (!sa.fragmentation || mtu <= 0 || whole.length + overheadBytes(sa) <= mtu) return [whole];
  // Per fragment: IKE header 28 + SKF header 8 + IV + ICV + up to one block of padding.
  const room = mtu - overheadBytes(sa) - 28 - 8 - keys.out.overhead - keys.out.encr.blockSize;
  return encodeEncryptedFragments(header, inner, sealer, Math.max(64, room));
}

/**
 * Why an unanswered request may never have arrived, for the timeout's message: it left as one
 * datagram above the fragment MTU because IKE fragmentation was not negotiated (RFC 7383 §2.3),
 * so IP fragmented it, and paths that drop IP fragments lose every copy (certificate IKE_AUTH
 * with RSA chains is the usual case). Empty when that does not apply; IKE_SA_INIT is never
 * fragmented (RFC 7383 §2.5) and gets no hint.
 */
export function unfragmentedHint(sa: IkeSa, exchangeType: number, datagrams: readonly Uint8Array[], mtu: number): string {
  const only = datagrams.length === 1 ? datagrams[0] : undefined;
  if (only === undefined || sa.fragmentation || exchangeType === ExchangeType.IKE_SA_INIT) return '';
  const limit = mtu > 0 ? mtu : FRAGMENT_MTU;
  const ipBytes = only.length + overheadBytes(sa);
  if (ipBytes <= limit) return '';
  const why = mtu > 0 ? 'the peer did not announce IKE fragmentation (RFC 7383)' : 'IKE fragmentation is disabled in our config';
  return `; it was one ${ipBytes}-byte IP packet (over ${limit}) because ${why}, so it crossed the path as IP fragments, which some paths drop`;
}

/**
 * Throws unless `message`, which carries the message ID of our cached response, verifies under
 * the peer's key (RFC 7296 §2.1: a retransmission is bitwise identical, so a genuine one does).
 * The header is visible on the wire: resending on it alone would let anyone reflect the response
 * at us or elsewhere. Only SK messages and SKF fragment 1 are checked (RFC 7383 §2.6.1: the other
 * fragments trigger nothing).
 */
export function verifyRetransmission(sa: IkeSa, message: IkeMessage, datagram: Uint8Array): void {
  const keys = keysOf(sa);
  const env = message.encrypted();
  if (keys === null || env === undefined) throw new IkeCodecError('ERR_IKE_NO_SK', 'retransmission without keys or SK payload', 0);
  (sa.lastResponse?.opener ?? keys.in).decrypt(env.body, sealedPrefix(datagram, env));
}

export type OpenResult =
  | { readonly kind: 'message'; readonly message: IkeMessage }
  | { readonly kind: 'partial' }
  | { readonly kind: 'drop'; readonly reason: string };

/**
 * Decrypt an SK message, or add an SKF fragment to the SA's buffer and return the whole message
 * once every fragment arrived. Integrity failures drop silently (RFC 7296 §2.21.1). Reassembly is
 * bounded per SA by maxFragments and the codec's MAX_INNER_BYTES, engine-wide in bytes and time
 * (limits.ts); a new message ID discards the buffer.
 */
export function openMessage(sa: IkeSa, message: IkeMessage, datagram: Uint8Array, limits: EngineLimits): OpenResult {
  const keys = keysOf(sa);
  if (keys === null) return { kind: 'drop', reason: 'no-keys' };
  const env = message.encrypted();
  if (env === undefined) return { kind: 'drop', reason: 'unencrypted' };
  if (env.kind === 'sk') return { kind: 'message', message: openEncryptedMessage(message, datagram, keys.in) };
  if (!sa.fragmentation) return { kind: 'drop', reason: 'fragment-not-negotiated' };
  if (env.totalFragments > limits.maxFragments) return { kind: 'drop', reason: 'too-many-fragments' };
  const plaintext = keys.in.decrypt(env.body, sealedPrefix(datagram, env));
  const id = message.header.messageId;
  limits.sweepReassembly();
  let buf = sa.fragments;
  if (buf === null || buf.messageId !== id || buf.total !== env.totalFragments) {
    buf = limits.newBuffer(id, env.totalFragments);
    sa.fragments = buf;
  }
  if (!buf.parts.has(env.fragmentNumber)) {
    const blocked = limits.reserveFragment(sa, plaintext.length);
    if (blocked !== null) return { kind: 'drop', reason: blocked };
    buf.bytes += plaintext.length;
    if (buf.bytes > MAX_INNER_BYTES) { sa.fragments = null; return { kind: 'drop', reason: 'reassembly-too-large' }; }
    buf.parts.set(env.fragmentNumber, { innerNext: env.innerNext, plaintext });
  }
  if (buf.parts.size < buf.total) return { kind: 'partial' };
  sa.fragments = null;
  const pieces = [...buf.parts.entries()].map(([n, p]) => ({
    envelope: { kind: 'skf' as const, innerNext: p.innerNext, fragmentNumber: n, totalFragments: buf.total, body: new Uint8Array(0) },
    plaintext: p.plaintext,
  }));
  return { kind: 'message', message: joinFragmentsMessage(message, datagram, pieces) };
}

