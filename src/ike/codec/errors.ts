// Errors of the IKEv2 codec. Every decode failure is a ParseError (src/common/errors.ts) with a
// fixed code; the subclasses here add the RFC 7296 §3.10.1 notify a responder should answer with,
// so the exchanges layer maps an error to a reply without parsing message text.
import { KipsecError, ParseError } from '../../common/errors.js';
import { NotifyError, type ExchangeTypeName } from '../constants.js';

/** A codec ParseError that names the notify to send back (INVALID_SYNTAX unless a subclass says otherwise). */
export class IkeCodecError extends ParseError {
  readonly notify: number;
  constructor(code: string, message: string, offset: number, notify: number = NotifyError.INVALID_SYNTAX) {
    super(code, message, offset);
    this.notify = notify;
  }
}

/** RFC 7296 §2.5: an unrecognised payload with the critical bit set; the reply carries its type. */
export class UnsupportedCriticalPayloadError extends IkeCodecError {
  readonly payloadType: number;
  constructor(payloadType: number, offset: number) {
    super('ERR_IKE_UNSUPPORTED_CRITICAL_PAYLOAD', `payload type ${payloadType} is unknown and marked critical`, offset,
      NotifyError.UNSUPPORTED_CRITICAL_PAYLOAD);
    this.payloadType = payloadType;
  }
}

/** RFC 7296 §2.5 / §3.1: a major version other than 2; the reply is INVALID_MAJOR_VERSION. */
export class InvalidMajorVersionError extends IkeCodecError {
  readonly majorVersion: number;
  constructor(majorVersion: number, offset: number) {
    super('ERR_IKE_MAJOR_VERSION', `IKE major version is ${majorVersion}, want 2`, offset, NotifyError.INVALID_MAJOR_VERSION);
    this.majorVersion = majorVersion;
  }
}

/** A payload that the per-exchange table (rules.ts) does not allow, or one that is missing. */
export class PayloadNotAllowedError extends IkeCodecError {
  /** The payload as RFC 7296 §1.2 names it: "KE", "IDi", "SK", "payload type 201". */
  readonly payload: string;
  readonly exchange: ExchangeTypeName | `EXCHANGE_${number}`;
  readonly response: boolean;
  /** Whether the outer chain or the decrypted chain inside SK/SKF was checked. */
  readonly where: 'outer' | 'encrypted';
  constructor(code: string, payload: string, exchange: ExchangeTypeName | `EXCHANGE_${number}`, response: boolean,
    where: 'outer' | 'encrypted', detail: string) {
    super(code, `${payload} ${detail} in ${exchange} ${response ? 'response' : 'request'}${where === 'encrypted' ? ' (inside SK)' : ''}`, 0);
    this.payload = payload;
    this.exchange = exchange;
    this.response = response;
    this.where = where;
  }
}

/** The notify type to answer a failed request with: the error's own, else INVALID_SYNTAX. */
export function notifyForError(e: ParseError): number {
  return e instanceof IkeCodecError ? e.notify : NotifyError.INVALID_SYNTAX;
}

/** The caller asked to encode something the wire format cannot carry (a bug, not peer input). */
export class IkeEncodeError extends KipsecError {}
