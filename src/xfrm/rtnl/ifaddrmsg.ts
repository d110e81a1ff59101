// struct ifaddrmsg (include/uapi/linux/if_addr.h), 8 bytes, host order:
//   struct ifaddrmsg {
//     __u8  ifa_family;     /* 0: AF_INET / AF_INET6 */
//     __u8  ifa_prefixlen;  /* 1 */
//     __u8  ifa_flags;      /* 2: IFA_F_* */
//     __u8  ifa_scope;      /* 3: RT_SCOPE_* */
//     __u32 ifa_index;      /* 4: link index */
//   };
// followed by IFA_* attributes (IFA_ADDRESS, IFA_LOCAL, …).
import type { Reader, Writer } from '../../common/bytes.js';
import { getU32, putU32 } from '../structs/host.js';

export const IFADDRMSG_SIZE = 8;

export interface Ifaddrmsg { readonly ifa_family: number; readonly ifa_prefixlen: number; readonly ifa_flags: number; readonly ifa_scope: number; readonly ifa_index: number }

export function decodeIfaddrmsg(r: Reader): Ifaddrmsg {
  return { ifa_family: r.u8(), ifa_prefixlen: r.u8(), ifa_flags: r.u8(), ifa_scope: r.u8(), ifa_index: getU32(r) };
}

export function encodeIfaddrmsg(w: Writer, v: Ifaddrmsg): void {
  w.u8(v.ifa_family).u8(v.ifa_prefixlen).u8(v.ifa_flags).u8(v.ifa_scope); putU32(w, v.ifa_index);
}
