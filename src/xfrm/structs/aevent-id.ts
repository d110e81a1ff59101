// struct xfrm_aevent_id (include/uapi/linux/xfrm.h), 48 bytes — body of GETAE/NEWAE:
//   struct xfrm_aevent_id {
//     struct xfrm_usersa_id sa_id;   /*  0 */
//     xfrm_address_t        saddr;   /* 24 */
//     __u32 flags;                   /* 40: XFRM_AE_* */
//     __u32 reqid;                   /* 44 */
//   };
import type { Reader, Writer } from '../../common/bytes.js';
import { getAddress, putAddress } from './address.js';
import { getU32, putU32 } from './host.js';
import { decodeXfrmUsersaId, encodeXfrmUsersaId, type XfrmUsersaId } from './usersa-id.js';

export const XFRM_AEVENT_ID_SIZE = 48;

export interface XfrmAeventId { readonly sa_id: XfrmUsersaId; readonly saddr: Uint8Array; readonly flags: number; readonly reqid: number }

export function decodeXfrmAeventId(r: Reader): XfrmAeventId {
  const sa_id = decodeXfrmUsersaId(r); const saddr = getAddress(r);
  return { sa_id, saddr, flags: getU32(r), reqid: getU32(r) };
}
export function encodeXfrmAeventId(w: Writer, v: XfrmAeventId): void {
  encodeXfrmUsersaId(w, v.sa_id); putAddress(w, v.saddr); putU32(w, v.flags); putU32(w, v.reqid);
}
