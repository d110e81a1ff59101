// The payload union and the mapping between payload kinds and RFC 7296 §3.2 payload type numbers,
// plus the per-type body dispatch used by the chain codec. Unknown payload types that are not
// critical are kept as `unknown` entries (RFC 7296 §2.5: skip them) so re-encoding is byte-identical.
import type { Reader, Writer } from '../../common/bytes.js';
import { PayloadType } from '../constants.js';
import type { PayloadFlags } from './payloads/base.js';
import { decodeAuth, encodeAuth, type AuthPayload } from './payloads/auth.js';
import { decodeCert, encodeCert, type CertPayload } from './payloads/cert.js';
import { decodeCertReq, encodeCertReq, type CertReqPayload } from './payloads/certreq.js';
import { decodeCp, encodeCp, type CpPayload } from './payloads/cp.js';
import { decodeDelete, encodeDelete, type DeletePayload } from './payloads/delete.js';
import { decodeEap, encodeEap, type EapPayload } from './payloads/eap.js';
import { decodeId, encodeId, type IdPayload } from './payloads/id.js';
import { decodeKe, encodeKe, type KePayload } from './payloads/ke.js';
import { decodeNonce, encodeNonce, type NoncePayload } from './payloads/nonce.js';
import { decodeNotify, encodeNotify, type NotifyPayload } from './payloads/notify.js';
import { decodeSa, encodeSa, type SaPayload } from './payloads/sa.js';
import { decodeSk, encodeSk, type SkPayload } from './payloads/sk.js';
import { decodeSkf, encodeSkf, type SkfPayload } from './payloads/skf.js';
import { decodeTs, encodeTs, type TsPayload } from './payloads/ts.js';
import { decodeVendor, encodeVendor, type VendorPayload } from './payloads/vendor.js';

/** A payload type this codec does not know, not marked critical: carried, never interpreted. */
export interface UnknownPayload extends PayloadFlags { readonly kind: 'unknown'; readonly type: number; readonly data: Uint8Array }

export type IkePayload =
  | SaPayload | KePayload | IdPayload | CertPayload | CertReqPayload | AuthPayload | NoncePayload
  | NotifyPayload | DeletePayload | VendorPayload | TsPayload | SkPayload | SkfPayload | CpPayload
  | EapPayload | UnknownPayload;

export type PayloadKind = IkePayload['kind'];
export type KnownPayloadKind = Exclude<PayloadKind, 'unknown'>;
/** The payload type for one kind; IDi/IDr and TSi/TSr share an interface, narrowed here to the kind. */
type Narrow<P, K> = P extends { readonly kind: infer PK } ? (K extends PK ? P & { readonly kind: K } : never) : never;
export type PayloadOf<K extends PayloadKind> = Narrow<IkePayload, K>;

/** Payload kind -> RFC 7296 §3.2 type number. */
export const PAYLOAD_TYPE: Readonly<Record<KnownPayloadKind, number>> = {
  sa: PayloadType.SA, ke: PayloadType.KE, idi: PayloadType.IDi, idr: PayloadType.IDr,
  cert: PayloadType.CERT, certreq: PayloadType.CERTREQ, auth: PayloadType.AUTH, nonce: PayloadType.NONCE,
  notify: PayloadType.NOTIFY, delete: PayloadType.DELETE, vendor: PayloadType.VENDOR_ID,
  tsi: PayloadType.TSi, tsr: PayloadType.TSr, sk: PayloadType.SK, cp: PayloadType.CP, eap: PayloadType.EAP,
  skf: PayloadType.SKF,
};

const KIND_OF_TYPE: ReadonlyMap<number, KnownPayloadKind> = new Map(
  (Object.entries(PAYLOAD_TYPE) as Array<[KnownPayloadKind, number]>).map(([k, t]) => [t, k]),
);

export function payloadKindOf(type: number): KnownPayloadKind | undefined { return KIND_OF_TYPE.get(type); }

export function payloadTypeOf(p: IkePayload): number { return p.kind === 'unknown' ? p.type : PAYLOAD_TYPE[p.kind]; }

/** Names as in strongSwan's logs and RFC 7296 §1.2 message diagrams, for errors and logs. */
const LABEL: Readonly<Record<KnownPayloadKind, string>> = {
  sa: 'SA', ke: 'KE', idi: 'IDi', idr: 'IDr', cert: 'CERT', certreq: 'CERTREQ', auth: 'AUTH', nonce: 'Nonce',
  notify: 'Notify', delete: 'Delete', vendor: 'Vendor ID', tsi: 'TSi', tsr: 'TSr', sk: 'SK', skf: 'SKF',
  cp: 'CP', eap: 'EAP',
};

export function payloadLabel(kind: PayloadKind, type?: number): string {
  return kind === 'unknown' ? `payload type ${type ?? '?'}` : LABEL[kind];
}

/**
 * Decode one payload body. `next` is the generic header's Next Payload, which SK/SKF keep as the
 * type of their first inner payload.
 */
export function decodeBody(kind: KnownPayloadKind, r: Reader, next: number): IkePayload {
  switch (kind) {
    case 'sa': return decodeSa(r);
    case 'ke': return decodeKe(r);
    case 'idi': case 'idr': return decodeId(r, kind);
    case 'cert': return decodeCert(r);
    case 'certreq': return decodeCertReq(r);
    case 'auth': return decodeAuth(r);
    case 'nonce': return decodeNonce(r);
    case 'notify': return decodeNotify(r);
    case 'delete': return decodeDelete(r);
    case 'vendor': return decodeVendor(r);
    case 'tsi': case 'tsr': return decodeTs(r, kind);
    case 'sk': return decodeSk(r, next);
    case 'skf': return decodeSkf(r, next);
    case 'cp': return decodeCp(r);
    case 'eap': return decodeEap(r);
  }
}

export function encodeBody(w: Writer, p: IkePayload): void {
  switch (p.kind) {
    case 'sa': return encodeSa(w, p);
    case 'ke': return encodeKe(w, p);
    case 'idi': case 'idr': return encodeId(w, p);
    case 'cert': return encodeCert(w, p);
    case 'certreq': return encodeCertReq(w, p);
    case 'auth': return encodeAuth(w, p);
    case 'nonce': return encodeNonce(w, p);
    case 'notify': return encodeNotify(w, p);
    case 'delete': return encodeDelete(w, p);
    case 'vendor': return encodeVendor(w, p);
    case 'tsi': case 'tsr': return encodeTs(w, p);
    case 'sk': return encodeSk(w, p);
    case 'skf': return encodeSkf(w, p);
    case 'cp': return encodeCp(w, p);
    case 'eap': return encodeEap(w, p);
    case 'unknown': w.bytes(p.data); return;
  }
}
