// struct xfrm_user_mapping (include/uapi/linux/xfrm.h), 64 bytes — XFRM_MSG_MAPPING on
// XFRMNLGRP_MAPPING: the peer's NAT mapping changed (ESP-in-UDP from a new address/port):
//   struct xfrm_user_mapping {
//     struct xfrm_usersa_id id;         /*  0 */
//     __u32          reqid;             /* 24 */
//     xfrm_address_t old_saddr;         /* 28 */
//     xfrm_address_t new_saddr;         /* 44 */
//     __be16         old_sport;         /* 60 */
//     __be16         new_sport;         /* 62 */
//   };
import type { Reader, Writer } from '../../common/bytes.js';
import { getAddress, putAddress } from './address.js';
import { getU32, putU32 } from './host.js';
import { decodeXfrmUsersaId, encodeXfrmUsersaId, type XfrmUsersaId } from './usersa-id.js';

export const XFRM_USER_MAPPING_SIZE = 64;

export interface XfrmUserMapping {
  readonly id: XfrmUsersaId; readonly reqid: number;
  readonly old_saddr: Uint8Array; readonly new_saddr: Uint8Array;
  readonly old_sport: number; readonly new_sport: number;
}

export function decodeXfrmUserMapping(r: Reader): XfrmUserMapping {
  const id = decodeXfrmUsersaId(r); const reqid = getU32(r);
  const old_saddr = getAddress(r); const new_saddr = getAddress(r);
  return { id, reqid, old_saddr, new_saddr, old_sport: r.u16(), new_sport: r.u16() };
}
export function encodeXfrmUserMapping(w: Writer, v: XfrmUserMapping): void {
  encodeXfrmUsersaId(w, v.id); putU32(w, v.reqid); putAddress(w, v.old_saddr); putAddress(w, v.new_saddr);
  w.u16(v.old_sport).u16(v.new_sport);
}
