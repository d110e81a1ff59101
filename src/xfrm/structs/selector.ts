// struct xfrm_selector (include/uapi/linux/xfrm.h), 56 bytes:
//   struct xfrm_selector {
//     xfrm_address_t daddr;      /*  0 */
//     xfrm_address_t saddr;      /* 16 */
//     __be16 dport;              /* 32 */
//     __be16 dport_mask;         /* 34 */
//     __be16 sport;              /* 36 */
//     __be16 sport_mask;         /* 38 */
//     __u16  family;             /* 40 */
//     __u8   prefixlen_d;        /* 42 */
//     __u8   prefixlen_s;        /* 43 */
//     __u8   proto;              /* 44, 3 bytes padding */
//     int    ifindex;            /* 48 */
//     __kernel_uid32_t user;     /* 52 */
//   };
import type { Reader, Writer } from '../../common/bytes.js';
import { getAddress, putAddress, ZERO_ADDRESS } from './address.js';
import { getI32, getU16, getU32, putI32, putU16, putU32 } from './host.js';

export const XFRM_SELECTOR_SIZE = 56;

export interface XfrmSelector {
  readonly daddr: Uint8Array;
  readonly saddr: Uint8Array;
  readonly dport: number;
  readonly dport_mask: number;
  readonly sport: number;
  readonly sport_mask: number;
  readonly family: number;
  readonly prefixlen_d: number;
  readonly prefixlen_s: number;
  readonly proto: number;
  readonly ifindex: number;
  readonly user: number;
}

export const EMPTY_SELECTOR: XfrmSelector = {
  daddr: ZERO_ADDRESS, saddr: ZERO_ADDRESS, dport: 0, dport_mask: 0, sport: 0, sport_mask: 0,
  family: 0, prefixlen_d: 0, prefixlen_s: 0, proto: 0, ifindex: 0, user: 0,
};

export function decodeXfrmSelector(r: Reader): XfrmSelector {
  const daddr = getAddress(r); const saddr = getAddress(r);
  const dport = r.u16(); const dport_mask = r.u16(); const sport = r.u16(); const sport_mask = r.u16();
  const family = getU16(r); const prefixlen_d = r.u8(); const prefixlen_s = r.u8(); const proto = r.u8();
  r.advance(3);
  const ifindex = getI32(r); const user = getU32(r);
  return { daddr, saddr, dport, dport_mask, sport, sport_mask, family, prefixlen_d, prefixlen_s, proto, ifindex, user };
}

export function encodeXfrmSelector(w: Writer, s: XfrmSelector): void {
  putAddress(w, s.daddr); putAddress(w, s.saddr);
  w.u16(s.dport).u16(s.dport_mask).u16(s.sport).u16(s.sport_mask);
  putU16(w, s.family); w.u8(s.prefixlen_d).u8(s.prefixlen_s).u8(s.proto).zeros(3);
  putI32(w, s.ifindex); putU32(w, s.user);
}
