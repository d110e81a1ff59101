// struct rtmsg (include/uapi/linux/rtnetlink.h), 12 bytes:
//   struct rtmsg {
//     unsigned char rtm_family, rtm_dst_len, rtm_src_len, rtm_tos;
//     unsigned char rtm_table;     /* RT_TABLE_*; tables > 255 go in RTA_TABLE */
//     unsigned char rtm_protocol;  /* RTPROT_* */
//     unsigned char rtm_scope;     /* RT_SCOPE_* */
//     unsigned char rtm_type;      /* RTN_* */
//     unsigned      rtm_flags;
//   };
import type { Reader, Writer } from '../../common/bytes.js';
import { getU32, putU32 } from '../structs/host.js';

export const RTMSG_SIZE = 12;

export interface Rtmsg {
  readonly rtm_family: number; readonly rtm_dst_len: number; readonly rtm_src_len: number; readonly rtm_tos: number;
  readonly rtm_table: number; readonly rtm_protocol: number; readonly rtm_scope: number; readonly rtm_type: number;
  readonly rtm_flags: number;
}

export function decodeRtmsg(r: Reader): Rtmsg {
  return {
    rtm_family: r.u8(), rtm_dst_len: r.u8(), rtm_src_len: r.u8(), rtm_tos: r.u8(),
    rtm_table: r.u8(), rtm_protocol: r.u8(), rtm_scope: r.u8(), rtm_type: r.u8(), rtm_flags: getU32(r),
  };
}
export function encodeRtmsg(w: Writer, v: Rtmsg): void {
  w.u8(v.rtm_family).u8(v.rtm_dst_len).u8(v.rtm_src_len).u8(v.rtm_tos).u8(v.rtm_table).u8(v.rtm_protocol).u8(v.rtm_scope).u8(v.rtm_type);
  putU32(w, v.rtm_flags);
}
