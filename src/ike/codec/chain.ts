// RFC 7296 §3.2 Generic Payload Header chain: Next Payload (1), C (critical, 1 bit) + RESERVED
// (7 bits), Payload Length (2, including this 4-octet header). Used for the outer chain of a
// message and for the inner chain inside SK/SKF after decryption.
// §2.5: an unknown payload with C set fails the message (UNSUPPORTED_CRITICAL_PAYLOAD carrying the
// type); an unknown payload without C is skipped (kept as `unknown`). SK and SKF must be last:
// their Next Payload names the first *inner* payload, so nothing can follow them in the outer chain.
import { Reader, Writer } from '../../common/bytes.js';
import { ParseError } from '../../common/errors.js';
import { PayloadType } from '../constants.js';
import { IkeCodecError, IkeEncodeError, UnsupportedCriticalPayloadError } from './errors.js';
import { MAX_INNER_BYTES, MAX_PAYLOADS } from './limits.js';
import { decodeBody, encodeBody, payloadKindOf, payloadTypeOf, type IkePayload } from './payload.js';

export const GENERIC_HEADER_BYTES = 4;
const CRITICAL = 0x80;

export interface ChainOptions {
  /** Whether SK/SKF may appear (outer chain: yes; inner chain: no, RFC 7296 §3.14). */
  readonly allowEncrypted: boolean;
}

/**
 * Decode a payload chain that starts with payload type `first` and must fill `r` exactly.
 * Throws IkeCodecError (a ParseError) for every malformation.
 */
export function decodeChain(r: Reader, first: number, opts: ChainOptions): IkePayload[] {
  const out: IkePayload[] = [];
  let next = first;
  while (next !== PayloadType.NONE) {
    if (out.length >= MAX_PAYLOADS) throw new IkeCodecError('ERR_IKE_PAYLOAD_COUNT', `more than ${MAX_PAYLOADS} payloads`, r.offset);
    const type = next;
    const at = r.offset;
    if (r.remaining < GENERIC_HEADER_BYTES)
      throw new IkeCodecError('ERR_IKE_PAYLOAD_TRUNCATED', `payload type ${type} header needs 4 bytes, ${r.remaining} left`, at);
    next = r.u8('next payload');
    const critical = (r.u8('flags') & CRITICAL) !== 0;
    const len = r.u16('payload length');
    if (len < GENERIC_HEADER_BYTES || len - GENERIC_HEADER_BYTES > r.remaining)
      throw new IkeCodecError('ERR_IKE_PAYLOAD_LENGTH', `payload type ${type} length is ${len}, have ${r.remaining + GENERIC_HEADER_BYTES}`, at);
    const body = r.sub(len - GENERIC_HEADER_BYTES, 'payload body');
    const kind = payloadKindOf(type);
    let p: IkePayload;
    if (kind === undefined) {
      if (critical) throw new UnsupportedCriticalPayloadError(type, at);
      p = { kind: 'unknown', type, data: body.rest() };
    } else {
      if ((kind === 'sk' || kind === 'skf') && !opts.allowEncrypted)
        throw new IkeCodecError('ERR_IKE_NESTED_SK', `${kind === 'sk' ? 'SK' : 'SKF'} payload inside an encrypted payload`, at);
      p = decodeBody(kind, body, next);
      if (!body.done) throw new IkeCodecError('ERR_IKE_PAYLOAD_LENGTH', `payload type ${type} has ${body.remaining} unread bytes`, body.offset);
      if (kind === 'sk' || kind === 'skf') {
        if (!r.done) throw new IkeCodecError('ERR_IKE_SK_NOT_LAST', `${r.remaining} bytes follow the ${kind === 'sk' ? 'SK' : 'SKF'} payload`, r.offset);
        next = PayloadType.NONE;
      }
    }
    out.push(critical ? { ...p, critical: true } : p);
  }
  if (!r.done) throw new IkeCodecError('ERR_IKE_TRAILING_BYTES', `${r.remaining} bytes after the last payload`, r.offset);
  return out;
}

/**
 * Decode the plaintext of an SK payload (or a reassembled SKF message): the inner payload chain
 * starting with `first` (the SK payload's innerNext). Nested SK/SKF are rejected.
 */
export function decodePayloadChain(plaintext: Uint8Array, first: number): IkePayload[] {
  if (plaintext.length > MAX_INNER_BYTES)
    throw new IkeCodecError('ERR_IKE_INNER_TOO_LONG', `inner payloads are ${plaintext.length} bytes, want at most ${MAX_INNER_BYTES}`, 0);
  return decodeChain(new Reader(plaintext), first, { allowEncrypted: false });
}

/** Write a chain; returns the type of its first payload (0 when empty) for the caller's Next Payload. */
export function writeChain(w: Writer, payloads: readonly IkePayload[]): number {
  payloads.forEach((p, i) => {
    const following = payloads[i + 1];
    let next = following === undefined ? PayloadType.NONE : payloadTypeOf(following);
    if (p.kind === 'sk' || p.kind === 'skf') {
      if (following !== undefined) throw new IkeEncodeError('ERR_IKE_SK_NOT_LAST', `${p.kind === 'sk' ? 'SK' : 'SKF'} must be the last payload`);
      next = p.innerNext;
    }
    const at = w.length;
    w.u8(next).u8(p.critical === true ? CRITICAL : 0).u16(0);
    encodeBody(w, p);
    const len = w.length - at;
    if (len > 0xffff) throw new IkeEncodeError('ERR_IKE_PAYLOAD_TOO_LONG', `payload type ${payloadTypeOf(p)} is ${len} bytes, want at most 65535`);
    w.setU16(at + 2, len);
  });
  const head = payloads[0];
  return head === undefined ? PayloadType.NONE : payloadTypeOf(head);
}

/** Encode an inner chain for encryption: the bytes plus the first payload's type (SK innerNext). */
export function encodePayloadChain(payloads: readonly IkePayload[]): { firstType: number; bytes: Uint8Array } {
  for (const p of payloads)
    if (p.kind === 'sk' || p.kind === 'skf') throw new IkeEncodeError('ERR_IKE_NESTED_SK', 'SK/SKF inside an encrypted payload');
  const w = new Writer(512);
  const firstType = writeChain(w, payloads);
  const bytes = w.finish();
  try { decodePayloadChain(bytes, firstType); } catch (e) {
    // Same rule as encodeMessage (message.ts selfCheck): never emit what we would reject.
    if (e instanceof ParseError) throw new IkeEncodeError('ERR_IKE_ENCODE_INVALID', `refusing to send what the decoder rejects: ${e.message}`, { cause: e });
    throw e;
  }
  return { firstType, bytes };
}
