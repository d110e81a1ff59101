// RFC 7296 §3.1 IKE Header (28 octets): IKE SA Initiator's SPI (8), Responder's SPI (8),
// Next Payload (1), MjVer (4 bits) | MnVer (4 bits), Exchange Type (1), Flags (1), Message ID (4),
// Length (4, the whole message including the header).
// §2.5: a major version above 2 gets INVALID_MAJOR_VERSION; the minor version is ignored on
// receipt (kept for faithful re-encoding). Flags: I (0x08) set by the original initiator, V (0x10)
// "can speak a higher major version", R (0x20) on responses; other bits are ignored on receipt.
import type { Reader, Writer } from '../../common/bytes.js';
import { HeaderFlag } from '../constants.js';
import { IkeCodecError, InvalidMajorVersionError } from './errors.js';

export const IKE_HEADER_BYTES = 28;
export const IKE_MAJOR_VERSION = 2;

export interface IkeHeader {
  readonly initiatorSpi: bigint;
  readonly responderSpi: bigint;
  /** RFC 7296 §3.1 Exchange Type number (ExchangeType in constants.ts). */
  readonly exchangeType: number;
  /** I flag: sent by the original initiator of the IKE SA. */
  readonly initiator: boolean;
  /** R flag: this message is a response. */
  readonly response: boolean;
  /** V flag: the sender can speak a higher major version. */
  readonly higherVersion: boolean;
  readonly minorVersion: number;
  readonly messageId: number;
}

/** The header fields plus the chain start and the length field, as read off the wire. */
export interface DecodedHeader extends IkeHeader { readonly nextPayload: number; readonly length: number }

export function decodeHeader(r: Reader): DecodedHeader {
  if (r.remaining < IKE_HEADER_BYTES)
    throw new IkeCodecError('ERR_IKE_HEADER_TRUNCATED', `IKE header needs ${IKE_HEADER_BYTES} bytes, have ${r.remaining}`, r.offset);
  const initiatorSpi = r.u64('initiator SPI');
  const responderSpi = r.u64('responder SPI');
  const nextPayload = r.u8('next payload');
  const version = r.u8('version');
  const major = version >> 4;
  if (major !== IKE_MAJOR_VERSION) throw new InvalidMajorVersionError(major, r.offset - 1);
  const exchangeType = r.u8('exchange type');
  const flags = r.u8('flags');
  const messageId = r.u32('message id');
  const length = r.u32('length');
  return {
    initiatorSpi, responderSpi, exchangeType, messageId, nextPayload, length,
    initiator: (flags & HeaderFlag.INITIATOR) !== 0,
    response: (flags & HeaderFlag.RESPONSE) !== 0,
    higherVersion: (flags & HeaderFlag.VERSION) !== 0,
    minorVersion: version & 0x0f,
  };
}

export function headerFlags(h: IkeHeader): number {
  return (h.initiator ? HeaderFlag.INITIATOR : 0) | (h.response ? HeaderFlag.RESPONSE : 0) | (h.higherVersion ? HeaderFlag.VERSION : 0);
}

/** Write the header with a placeholder length; returns the length field's offset. */
export function encodeHeader(w: Writer, h: IkeHeader, nextPayload: number): number {
  w.u64(h.initiatorSpi).u64(h.responderSpi).u8(nextPayload)
    .u8((IKE_MAJOR_VERSION << 4) | (h.minorVersion & 0x0f)).u8(h.exchangeType).u8(headerFlags(h)).u32(h.messageId);
  return w.reserve(4);
}
