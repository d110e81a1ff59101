// Shared pieces of the payload modules: the optional critical flag every payload carries and the
// error helper. Each payload module decodes the body that follows the generic payload header
// (RFC 7296 §3.2) from a Reader bounded to exactly that body, and encodes it into a Writer.
import { IkeCodecError } from '../errors.js';
import type { Reader } from '../../../common/bytes.js';

/**
 * RFC 7296 §3.2: a sender sets the critical bit only on payloads it thinks the receiver may not
 * know; for known payloads it is ignored on receipt. Kept (only when set) so re-encoding is
 * byte-identical.
 */
export interface PayloadFlags { readonly critical?: boolean }

export function fail(r: Reader, code: string, message: string): never {
  throw new IkeCodecError(code, message, r.offset);
}

/** Reserved fields: RFC 7296 §3.2 says ignore on receipt, send as zero. */
export function skipReserved(r: Reader, n: number): void { r.advance(n, 'reserved'); }
