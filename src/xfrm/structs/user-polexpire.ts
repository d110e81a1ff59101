// struct xfrm_user_polexpire (include/uapi/linux/xfrm.h), 176 bytes — XFRM_MSG_POLEXPIRE:
//   struct xfrm_user_polexpire {
//     struct xfrm_userpolicy_info pol;  /*   0 */
//     __u8 hard;                        /* 168, 7 bytes padding */
//   };
import type { Reader, Writer } from '../../common/bytes.js';
import { decodeXfrmUserpolicyInfo, encodeXfrmUserpolicyInfo, type XfrmUserpolicyInfo } from './userpolicy-info.js';

export const XFRM_USER_POLEXPIRE_SIZE = 176;

export interface XfrmUserPolexpire { readonly pol: XfrmUserpolicyInfo; readonly hard: number }

export function decodeXfrmUserPolexpire(r: Reader): XfrmUserPolexpire {
  const pol = decodeXfrmUserpolicyInfo(r); const hard = r.u8(); r.advance(Math.min(7, r.remaining));
  return { pol, hard };
}
export function encodeXfrmUserPolexpire(w: Writer, v: XfrmUserPolexpire): void {
  encodeXfrmUserpolicyInfo(w, v.pol); w.u8(v.hard).zeros(7);
}
