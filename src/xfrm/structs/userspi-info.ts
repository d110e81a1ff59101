// struct xfrm_userspi_info (include/uapi/linux/xfrm.h), 232 bytes — body of XFRM_MSG_ALLOCSPI:
//   struct xfrm_userspi_info {
//     struct xfrm_usersa_info info;   /*   0: id.daddr/saddr/proto/family/mode/reqid name the larval SA */
//     __u32 min;                      /* 224 */
//     __u32 max;                      /* 228 */
//   };
import type { Reader, Writer } from '../../common/bytes.js';
import { getU32, putU32 } from './host.js';
import { decodeXfrmUsersaInfo, encodeXfrmUsersaInfo, type XfrmUsersaInfo } from './usersa-info.js';

export const XFRM_USERSPI_INFO_SIZE = 232;

export interface XfrmUserspiInfo { readonly info: XfrmUsersaInfo; readonly min: number; readonly max: number }

export function decodeXfrmUserspiInfo(r: Reader): XfrmUserspiInfo {
  const info = decodeXfrmUsersaInfo(r);
  return { info, min: getU32(r), max: getU32(r) };
}
export function encodeXfrmUserspiInfo(w: Writer, v: XfrmUserspiInfo): void {
  encodeXfrmUsersaInfo(w, v.info); putU32(w, v.min); putU32(w, v.max);
}
