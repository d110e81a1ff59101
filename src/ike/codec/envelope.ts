// Building and opening the SK (RFC 7296 §3.14) and SKF (RFC 7383 §2.5) envelopes around the crypto
// module, which the codec never calls itself: it is handed a Sealer / Opener.
//
// Sending:  inner payloads --encodePayloadChain--> plaintext --sealer.encrypt(plaintext, prefix)--> body
//           message = prefix || body, where prefix = IKE header || outer payloads || SK header
//           (|| fragment number/total for SKF), with every Length field already final. For AEAD the
//           prefix is exactly the associated data (RFC 5282 §5.1, RFC 7383 §2.5.3); for AES-CBC +
//           HMAC the ICV is computed over prefix || IV || ciphertext (RFC 7296 §3.14).
// Receiving: decodeMessage(datagram) -> envelope = message.encrypted(); prefix = sealedPrefix(...);
//           plaintext = opener.decrypt(body, prefix); inner = decodePayloadChain(plaintext, envelope.innerNext).
import { concatBytes, Writer } from '../../common/bytes.js';
import { PayloadType } from '../constants.js';
import { encodePayloadChain, decodePayloadChain, GENERIC_HEADER_BYTES, writeChain } from './chain.js';
import { IkeCodecError, IkeEncodeError } from './errors.js';
import { encodeHeader, type IkeHeader } from './header.js';
import { MAX_INNER_BYTES, MAX_MESSAGE_BYTES } from './limits.js';
import { decodeMessage, IkeMessage, selfCheck, type ReceivedSk } from './message.js';
import type { IkePayload } from './payload.js';
import type { SkPayload } from './payloads/sk.js';
import type { SkfPayload } from './payloads/skf.js';

/**
 * What the crypto module provides to build an SK/SKF body. Shaped so src/ike/crypto's outbound
 * SkCipher fits as is.
 */
export interface Sealer {
  /** Length of IV || ciphertext || ICV for `innerLength` bytes of inner payloads (padding included). */
  encryptedLength(innerLength: number): number;
  /** Pad, encrypt, authenticate; must return exactly encryptedLength(inner.length) bytes. */
  encrypt(inner: Uint8Array, aad: Uint8Array): Uint8Array;
}

/** What the crypto module provides to open one (src/ike/crypto's inbound SkCipher fits). */
export interface Opener {
  /** Verify and decrypt IV || ciphertext || ICV; return the inner payloads without padding. */
  decrypt(body: Uint8Array, aad: Uint8Array): Uint8Array;
}

export interface FragmentInfo { readonly fragmentNumber: number; readonly totalFragments: number }

/**
 * The bytes of an encrypted message that precede the SK/SKF body — IKE header, outer payloads,
 * SK (or SKF) header — with every Length field final for a body of `bodyLength` bytes. This is the
 * AEAD associated data and the start of the HMAC input; message = prefix || body.
 */
export function encryptedPrefix(header: IkeHeader, outer: readonly IkePayload[], innerNext: number, bodyLength: number,
  fragment?: FragmentInfo): Uint8Array {
  const w = new Writer(256);
  const lenAt = encodeHeader(w, header, 0);
  const firstOuter = writeChain(w, outer);
  const envType = fragment === undefined ? PayloadType.SK : PayloadType.SKF;
  const fixed = GENERIC_HEADER_BYTES + (fragment === undefined ? 0 : 4);
  w.u8(innerNext).u8(0).u16(0);
  if (fragment !== undefined) w.u16(fragment.fragmentNumber).u16(fragment.totalFragments);
  const total = w.length + bodyLength;
  if (total > MAX_MESSAGE_BYTES) throw new IkeEncodeError('ERR_IKE_MESSAGE_TOO_LONG', `message would be ${total} bytes, want at most ${MAX_MESSAGE_BYTES}`);
  w.setU32(lenAt, total);
  const prefix = w.finish();
  new DataView(prefix.buffer).setUint16(prefix.length - fixed + 2, fixed + bodyLength);
  // Point the header's Next Payload (or the last outer payload's) at the envelope.
  prefix[16] = outer.length === 0 ? envType : firstOuter;
  if (outer.length > 0) prefix[lastOuterHeaderAt(prefix, outer.length)] = envType;
  return prefix;
}

function sealOne(header: IkeHeader, outer: readonly IkePayload[], innerNext: number, plaintext: Uint8Array,
  sealer: Sealer, fragment: FragmentInfo | undefined): Uint8Array {
  const bodyLength = sealer.encryptedLength(plaintext.length);
  const prefix = encryptedPrefix(header, outer, innerNext, bodyLength, fragment);
  const body = sealer.encrypt(plaintext, prefix);
  if (body.length !== bodyLength) throw new IkeEncodeError('ERR_IKE_SEALED_LENGTH', `sealer returned ${body.length} bytes, promised ${bodyLength}`);
  const out = concatBytes(prefix, body);
  selfCheck(() => decodeMessage(out));
  return out;
}

/** Offset of the generic header of outer payload number `count - 1` (walks the written lengths). */
function lastOuterHeaderAt(prefix: Uint8Array, count: number): number {
  const v = new DataView(prefix.buffer, prefix.byteOffset, prefix.byteLength);
  let at = 28;
  for (let i = 0; i < count - 1; i++) at += v.getUint16(at + 2);
  return at;
}

/**
 * HDR, [outer payloads,] SK { inner } — one datagram. Outer payloads before SK are rare (none in
 * RFC 7296's exchanges) but allowed by §3.14; they are covered by the AAD / ICV like the header.
 */
export function encodeEncryptedMessage(header: IkeHeader, inner: readonly IkePayload[], sealer: Sealer,
  outer: readonly IkePayload[] = []): Uint8Array {
  const { firstType, bytes } = encodePayloadChain(inner);
  return sealOne(header, outer, firstType, bytes, sealer, undefined);
}

/**
 * RFC 7383 §2.5: the same inner chain split into SKF fragments of at most `maxPlaintextBytes`
 * plaintext each. Only fragment 1 names the first inner payload; the others carry Next Payload 0.
 */
export function encodeEncryptedFragments(header: IkeHeader, inner: readonly IkePayload[], sealer: Sealer,
  maxPlaintextBytes: number): Uint8Array[] {
  if (!Number.isInteger(maxPlaintextBytes) || maxPlaintextBytes < 1) throw new RangeError(`maxPlaintextBytes is ${maxPlaintextBytes}`);
  const { firstType, bytes } = encodePayloadChain(inner);
  const total = Math.max(1, Math.ceil(bytes.length / maxPlaintextBytes));
  if (total > 0xffff) throw new IkeEncodeError('ERR_IKE_TOO_MANY_FRAGMENTS', `${total} fragments, want at most 65535`);
  const out: Uint8Array[] = [];
  for (let i = 0; i < total; i++) {
    const piece = bytes.subarray(i * maxPlaintextBytes, (i + 1) * maxPlaintextBytes);
    out.push(sealOne(header, [], i === 0 ? firstType : PayloadType.NONE, piece, sealer, { fragmentNumber: i + 1, totalFragments: total }));
  }
  return out;
}

/**
 * The bytes that precede the envelope's body in the datagram it was decoded from: the AEAD
 * associated data, or the first part of the HMAC input. `datagram` is the IKE message without
 * the non-ESP marker, exactly as passed to decodeMessage.
 */
export function sealedPrefix(datagram: Uint8Array, envelope: SkPayload | SkfPayload): Uint8Array {
  if (envelope.body.length > datagram.length) throw new IkeCodecError('ERR_IKE_ENVELOPE', 'envelope is not from this datagram', 0);
  return datagram.subarray(0, datagram.length - envelope.body.length);
}

/** Open an SK message: returns the same header with the decoded inner payloads. */
export function openEncryptedMessage(message: IkeMessage, datagram: Uint8Array, opener: Opener): IkeMessage {
  const env = message.encrypted();
  if (env === undefined || env.kind !== 'sk') throw new IkeCodecError('ERR_IKE_NO_SK', `${message.exchangeName} message has no SK payload`, 0);
  const prefix = sealedPrefix(datagram, env);
  const plaintext = opener.decrypt(env.body, prefix);
  return message.withPayloads(decodePayloadChain(plaintext, env.innerNext), { prefix, plaintext });
}

/**
 * joinFragments as a message: the inner payloads, and the received octets as if unfragmented
 * (RFC 9242 §3.1 computes IntAuth over the message before fragmentation): this fragment's header
 * and outer payloads, the envelope named SK, fragment 1's Next Payload, the plaintexts in order.
 * `message`/`datagram`: one fragment of the set, whichever, as decoded and as received.
 */
export function joinFragmentsMessage(message: IkeMessage, datagram: Uint8Array,
  fragments: ReadonlyArray<{ readonly envelope: SkfPayload; readonly plaintext: Uint8Array }>): IkeMessage {
  const env = message.encrypted();
  if (env === undefined || env.kind !== 'skf') throw new IkeCodecError('ERR_IKE_NO_SKF', `${message.exchangeName} message has no SKF payload`, 0);
  const inner = joinFragments(fragments);
  const first = fragments.find((f) => f.envelope.fragmentNumber === 1)!;
  const skf = sealedPrefix(datagram, env);
  // The SKF generic header (4) and Fragment Number/Total (4) end the prefix; SK has only the first.
  const envAt = skf.length - GENERIC_HEADER_BYTES - 4;
  const prefix = concatBytes(skf.subarray(0, envAt), Uint8Array.of(first.envelope.innerNext, skf[envAt + 1]!, 0, GENERIC_HEADER_BYTES));
  prefix[envelopePointerAt(prefix, envAt)] = PayloadType.SK;
  const plaintext = concatBytes(...[...fragments].sort((a, b) => a.envelope.fragmentNumber - b.envelope.fragmentNumber)
    .filter((f, i, all) => i === 0 || all[i - 1]!.envelope.fragmentNumber !== f.envelope.fragmentNumber).map((f) => f.plaintext));
  const received: ReceivedSk = { prefix, plaintext };
  return message.withPayloads(inner, received);
}

/** Offset of the Next Payload octet that names the payload at `envAt` (the header's, or the last outer payload's). */
function envelopePointerAt(prefix: Uint8Array, envAt: number): number {
  const v = new DataView(prefix.buffer, prefix.byteOffset, prefix.byteLength);
  let pointer = 16;
  for (let at = 28; at < envAt; at += v.getUint16(at + 2)) pointer = at;
  return pointer;
}

/**
 * RFC 7383 §2.6 reassembly of decrypted fragments: all of 1..total present, same total, first
 * innerNext from fragment 1, bounded size. Returns the inner payloads.
 */
export function joinFragments(fragments: ReadonlyArray<{ readonly envelope: SkfPayload; readonly plaintext: Uint8Array }>): IkePayload[] {
  const first = fragments.find((f) => f.envelope.fragmentNumber === 1);
  if (first === undefined) throw new IkeCodecError('ERR_IKE_SKF_MISSING', 'fragment 1 is missing', 0);
  const total = first.envelope.totalFragments;
  const byNumber = new Map<number, Uint8Array>();
  let size = 0;
  for (const f of fragments) {
    if (f.envelope.totalFragments !== total)
      throw new IkeCodecError('ERR_IKE_SKF_TOTAL', `fragment ${f.envelope.fragmentNumber} says ${f.envelope.totalFragments} total, fragment 1 says ${total}`, 0);
    if (!byNumber.has(f.envelope.fragmentNumber)) { byNumber.set(f.envelope.fragmentNumber, f.plaintext); size += f.plaintext.length; }
    if (size > MAX_INNER_BYTES) throw new IkeCodecError('ERR_IKE_INNER_TOO_LONG', `reassembled message exceeds ${MAX_INNER_BYTES} bytes`, 0);
  }
  const parts: Uint8Array[] = [];
  for (let n = 1; n <= total; n++) {
    const p = byNumber.get(n);
    if (p === undefined) throw new IkeCodecError('ERR_IKE_SKF_MISSING', `fragment ${n} of ${total} is missing`, 0);
    parts.push(p);
  }
  return decodePayloadChain(concatBytes(...parts), first.envelope.innerNext);
}
