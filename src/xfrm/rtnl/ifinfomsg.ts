// struct ifinfomsg (include/uapi/linux/rtnetlink.h), 16 bytes, host order:
//   struct ifinfomsg {
//     unsigned char  ifi_family;   /* 0, 1 byte padding */
//     unsigned short ifi_type;     /* 2: ARPHRD_* */
//     int            ifi_index;    /* 4 */
//     unsigned       ifi_flags;    /* 8: IFF_* */
//     unsigned       ifi_change;   /* 12: IFF_* change mask */
//   };
import type { Reader, Writer } from '../../common/bytes.js';
import { getI32, getU16, getU32, putI32, putU16, putU32 } from '../structs/host.js';

export const IFINFOMSG_SIZE = 16;

export interface Ifinfomsg { readonly ifi_family: number; readonly ifi_type: number; readonly ifi_index: number; readonly ifi_flags: number; readonly ifi_change: number }

export function decodeIfinfomsg(r: Reader): Ifinfomsg {
  const ifi_family = r.u8(); r.advance(1);
  return { ifi_family, ifi_type: getU16(r), ifi_index: getI32(r), ifi_flags: getU32(r), ifi_change: getU32(r) };
}
export function encodeIfinfomsg(w: Writer, v: Ifinfomsg): void {
  w.u8(v.ifi_family).zeros(1); putU16(w, v.ifi_type); putI32(w, v.ifi_index); putU32(w, v.ifi_flags); putU32(w, v.ifi_change);
}
