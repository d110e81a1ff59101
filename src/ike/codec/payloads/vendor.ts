// RFC 7296 §3.12 Vendor ID payload: opaque Vendor ID data, compared byte-wise by the receiver.
import type { Reader, Writer } from '../../../common/bytes.js';
import type { PayloadFlags } from './base.js';

export interface VendorPayload extends PayloadFlags { readonly kind: 'vendor'; readonly data: Uint8Array }

export function decodeVendor(r: Reader): VendorPayload { return { kind: 'vendor', data: r.rest() }; }
export function encodeVendor(w: Writer, p: VendorPayload): void { w.bytes(p.data); }
