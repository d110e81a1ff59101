// A whole IKE message (RFC 7296 §3.1 header + §3.2 payload chain) and its accessors.
// decodeMessage checks the framing (version, Length = datagram size, chain fills it exactly, SK/SKF
// last, critical unknown payloads) and every payload body; it does not decrypt and does not apply
// the per-exchange payload table (rules.ts: checkPayloads), which the exchanges layer runs on the
// outer chain and again on the decrypted inner chain before any handler sees the message.
import { Reader, Writer } from '../../common/bytes.js';
import { ParseError } from '../../common/errors.js';
import { ExchangeType, type ExchangeTypeName } from '../constants.js';
import { decodeChain, writeChain } from './chain.js';
import { IkeCodecError, IkeEncodeError } from './errors.js';
import { decodeHeader, encodeHeader, type IkeHeader } from './header.js';
import { MAX_MESSAGE_BYTES } from './limits.js';
import type { IkePayload, PayloadKind, PayloadOf } from './payload.js';
import type { NotifyPayload } from './payloads/notify.js';
import type { SkPayload } from './payloads/sk.js';
import type { SkfPayload } from './payloads/skf.js';

/**
 * An SK message's octets as they arrived, for what must cover them exactly rather than a
 * re-encoding (RFC 9242 §3.1 IntAuth: a peer may send reserved bits, the critical bit or lengths
 * our encoder would not, and the receiver's MAC must still match the sender's).
 */
export interface ReceivedSk {
  /**
   * IKE header, outer payloads and the Encrypted payload's generic header, Length fields as on the
   * wire; for a reassembled SKF message, as if it had not been fragmented (SK, fragment 1's Next
   * Payload, no fragment number/total).
   */
  readonly prefix: Uint8Array;
  /** The decrypted inner payloads (padding and Pad Length removed). */
  readonly plaintext: Uint8Array;
}

export class IkeMessage {
  readonly header: IkeHeader;
  /** Outer chain as received, or the decrypted inner chain (see withPayloads). */
  readonly payloads: readonly IkePayload[];
  /** Set on a decrypted SK/SKF message (envelope.ts); undefined on one built or not yet opened. */
  readonly received: ReceivedSk | undefined;

  constructor(header: IkeHeader, payloads: readonly IkePayload[], received?: ReceivedSk) {
    this.header = header;
    this.payloads = payloads;
    this.received = received;
  }

  get exchangeName(): ExchangeTypeName | `EXCHANGE_${number}` { return exchangeName(this.header.exchangeType); }
  get isResponse(): boolean { return this.header.response; }

  /** The same header with other payloads: the exchanges layer's view after decrypting SK. */
  withPayloads(payloads: readonly IkePayload[], received?: ReceivedSk): IkeMessage { return new IkeMessage(this.header, payloads, received); }

  first<K extends PayloadKind>(kind: K): PayloadOf<K> | undefined {
    for (const p of this.payloads) if (p.kind === kind) return p as PayloadOf<K>;
    return undefined;
  }

  all<K extends PayloadKind>(kind: K): PayloadOf<K>[] {
    return this.payloads.filter((p): p is PayloadOf<K> => p.kind === kind);
  }

  /** first(kind), or an IkeCodecError (INVALID_SYNTAX) naming the missing payload. */
  required<K extends PayloadKind>(kind: K): PayloadOf<K> {
    const p = this.first(kind);
    if (p === undefined) throw new IkeCodecError('ERR_IKE_PAYLOAD_MISSING', `${this.exchangeName} ${this.isResponse ? 'response' : 'request'} has no ${kind} payload`, 0);
    return p;
  }

  /** All Notify payloads, or those of one type (NotifyError / NotifyStatus numbers). */
  notifies(type?: number): NotifyPayload[] {
    return this.all('notify').filter((n) => type === undefined || n.type === type);
  }

  notify(type: number): NotifyPayload | undefined {
    // A scan, not notifies(type)[0]: asked many times per message (two arrays each otherwise).
    for (const p of this.payloads) if (p.kind === 'notify' && p.type === type) return p;
    return undefined;
  }
  has(type: number): boolean { return this.notify(type) !== undefined; }

  /** Error notifies (type < 16384), which make most other payloads optional. */
  errorNotifies(): NotifyPayload[] { return this.notifies().filter((n) => n.type < 16384); }

  /** The SK or SKF envelope, if the message is encrypted. */
  encrypted(): SkPayload | SkfPayload | undefined {
    const last = this.payloads[this.payloads.length - 1];
    return last !== undefined && (last.kind === 'sk' || last.kind === 'skf') ? last : undefined;
  }
}

// Built once: names are asked for on every message (payload rules, logs), not only on errors.
const EXCHANGE_NAMES: ReadonlyMap<number, ExchangeTypeName> = new Map((Object.entries(ExchangeType) as Array<[ExchangeTypeName, number]>).map(([k, v]) => [v, k]));

export function exchangeName(type: number): ExchangeTypeName | `EXCHANGE_${number}` {
  return EXCHANGE_NAMES.get(type) ?? `EXCHANGE_${type}`;
}

/**
 * Decode one IKE message (without the RFC 3948 non-ESP marker: see natt.ts). Payload bytes are
 * views into `datagram`, not copies. Throws only ParseError (IkeCodecError and subclasses, or
 * ERR_TRUNCATED from the Reader).
 */
export function decodeMessage(datagram: Uint8Array): IkeMessage {
  if (datagram.length > MAX_MESSAGE_BYTES)
    throw new IkeCodecError('ERR_IKE_MESSAGE_TOO_LONG', `message is ${datagram.length} bytes, want at most ${MAX_MESSAGE_BYTES}`, 0);
  const r = new Reader(datagram);
  const h = decodeHeader(r);
  if (h.length !== datagram.length)
    throw new IkeCodecError('ERR_IKE_LENGTH', `IKE header length is ${h.length}, datagram is ${datagram.length} bytes`, 24);
  const payloads = decodeChain(r, h.nextPayload, { allowEncrypted: true });
  const header: IkeHeader = {
    initiatorSpi: h.initiatorSpi, responderSpi: h.responderSpi, exchangeType: h.exchangeType,
    initiator: h.initiator, response: h.response, higherVersion: h.higherVersion,
    minorVersion: h.minorVersion, messageId: h.messageId,
  };
  return new IkeMessage(header, payloads);
}

/** Encode a message whose payloads are all in the clear, or whose SK/SKF body is already sealed. */
export function encodeMessage(header: IkeHeader, payloads: readonly IkePayload[]): Uint8Array {
  const w = new Writer(512);
  // The header's Next Payload is the first payload's type; writeChain returns it after writing.
  const lenAt = encodeHeader(w, header, 0);
  const firstType = writeChain(w, payloads);
  const out = w.finish();
  out[16] = firstType;
  if (out.length > MAX_MESSAGE_BYTES) throw new IkeEncodeError('ERR_IKE_MESSAGE_TOO_LONG', `message is ${out.length} bytes, want at most ${MAX_MESSAGE_BYTES}`);
  new DataView(out.buffer).setUint32(lenAt, out.length);
  selfCheck(() => decodeMessage(out));
  return out;
}

/**
 * Never emit what we would reject: encoders trust their input, so every encoded message or chain
 * is decoded once more (microseconds, next to the crypto of the same message) and a failure is a
 * caller bug, reported as IkeEncodeError with the decoder's reason.
 */
export function selfCheck(decode: () => unknown): void {
  try { decode(); } catch (e) {
    if (e instanceof ParseError) throw new IkeEncodeError('ERR_IKE_ENCODE_INVALID', `refusing to send what the decoder rejects: ${e.message}`, { cause: e });
    throw e;
  }
}

