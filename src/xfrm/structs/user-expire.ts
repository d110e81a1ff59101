// struct xfrm_user_expire (include/uapi/linux/xfrm.h), 232 bytes — XFRM_MSG_EXPIRE on XFRMNLGRP_EXPIRE:
//   struct xfrm_user_expire {
//     struct xfrm_usersa_info state;  /*   0 */
//     __u8 hard;                      /* 224: 0 = soft (rekey now), 1 = hard (SA is gone), 7 bytes padding */
//   };
import type { Reader, Writer } from '../../common/bytes.js';
import { decodeXfrmUsersaInfo, encodeXfrmUsersaInfo, type XfrmUsersaInfo } from './usersa-info.js';

export const XFRM_USER_EXPIRE_SIZE = 232;

export interface XfrmUserExpire { readonly state: XfrmUsersaInfo; readonly hard: number }

export function decodeXfrmUserExpire(r: Reader): XfrmUserExpire {
  const state = decodeXfrmUsersaInfo(r); const hard = r.u8(); r.advance(Math.min(7, r.remaining));
  return { state, hard };
}
export function encodeXfrmUserExpire(w: Writer, v: XfrmUserExpire): void {
  encodeXfrmUsersaInfo(w, v.state); w.u8(v.hard).zeros(7);
}
