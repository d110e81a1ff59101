// struct xfrm_userpolicy_id (include/uapi/linux/xfrm.h), 64 bytes — body of GETPOLICY/DELPOLICY:
//   struct xfrm_userpolicy_id {
//     struct xfrm_selector sel;   /*  0 */
//     __u32 index;                /* 56: if non-zero, selects by index instead of sel */
//     __u8  dir;                  /* 60, 3 bytes padding */
//   };
import type { Reader, Writer } from '../../common/bytes.js';
import { getU32, putU32 } from './host.js';
import { decodeXfrmSelector, encodeXfrmSelector, type XfrmSelector } from './selector.js';

export const XFRM_USERPOLICY_ID_SIZE = 64;

export interface XfrmUserpolicyId { readonly sel: XfrmSelector; readonly index: number; readonly dir: number }

export function decodeXfrmUserpolicyId(r: Reader): XfrmUserpolicyId {
  const sel = decodeXfrmSelector(r); const index = getU32(r); const dir = r.u8(); r.advance(3);
  return { sel, index, dir };
}
export function encodeXfrmUserpolicyId(w: Writer, v: XfrmUserpolicyId): void {
  encodeXfrmSelector(w, v.sel); putU32(w, v.index); w.u8(v.dir).zeros(3);
}
