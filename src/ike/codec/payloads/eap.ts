// RFC 7296 §3.16 EAP payload: one EAP message (RFC 3748). kipsec does not implement EAP; the
// payload is carried opaquely so a message containing it decodes and re-encodes unchanged.
import type { Reader, Writer } from '../../../common/bytes.js';
import type { PayloadFlags } from './base.js';

export interface EapPayload extends PayloadFlags { readonly kind: 'eap'; readonly data: Uint8Array }

export function decodeEap(r: Reader): EapPayload { return { kind: 'eap', data: r.rest() }; }
export function encodeEap(w: Writer, p: EapPayload): void { w.bytes(p.data); }
