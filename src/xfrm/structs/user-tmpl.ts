// struct xfrm_user_tmpl (include/uapi/linux/xfrm.h), 64 bytes; XFRMA_TMPL carries an array:
//   struct xfrm_user_tmpl {
//     struct xfrm_id  id;        /*  0 */
//     __u16           family;    /* 24, 2 bytes padding */
//     xfrm_address_t  saddr;     /* 28 */
//     __u32           reqid;     /* 44 */
//     __u8            mode;      /* 48 */
//     __u8            share;     /* 49 */
//     __u8            optional;  /* 50, 1 byte padding */
//     __u32           aalgos;    /* 52 */
//     __u32           ealgos;    /* 56 */
//     __u32           calgos;    /* 60 */
//   };
import type { Reader, Writer } from '../../common/bytes.js';
import { getAddress, putAddress } from './address.js';
import { getU16, getU32, putU16, putU32 } from './host.js';
import { decodeXfrmId, encodeXfrmId, type XfrmId } from './id.js';

export const XFRM_USER_TMPL_SIZE = 64;

export interface XfrmUserTmpl {
  readonly id: XfrmId;
  readonly family: number;
  readonly saddr: Uint8Array;
  readonly reqid: number;
  readonly mode: number;
  readonly share: number;
  readonly optional: number;
  readonly aalgos: number;
  readonly ealgos: number;
  readonly calgos: number;
}

export function decodeXfrmUserTmpl(r: Reader): XfrmUserTmpl {
  const id = decodeXfrmId(r); const family = getU16(r); r.advance(2); const saddr = getAddress(r);
  const reqid = getU32(r); const mode = r.u8(); const share = r.u8(); const optional = r.u8(); r.advance(1);
  const aalgos = getU32(r); const ealgos = getU32(r); const calgos = getU32(r);
  return { id, family, saddr, reqid, mode, share, optional, aalgos, ealgos, calgos };
}

export function encodeXfrmUserTmpl(w: Writer, v: XfrmUserTmpl): void {
  encodeXfrmId(w, v.id); putU16(w, v.family); w.zeros(2); putAddress(w, v.saddr);
  putU32(w, v.reqid); w.u8(v.mode).u8(v.share).u8(v.optional).zeros(1);
  putU32(w, v.aalgos); putU32(w, v.ealgos); putU32(w, v.calgos);
}
