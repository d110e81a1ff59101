// struct xfrm_usersa_id (include/uapi/linux/xfrm.h), 24 bytes — body of GETSA/DELSA:
//   struct xfrm_usersa_id {
//     xfrm_address_t daddr;   /*  0 */
//     __be32 spi;             /* 16 */
//     __u16  family;          /* 20 */
//     __u8   proto;           /* 22, 1 byte padding */
//   };
import type { Reader, Writer } from '../../common/bytes.js';
import { getAddress, putAddress } from './address.js';
import { getU16, putU16 } from './host.js';

export const XFRM_USERSA_ID_SIZE = 24;

export interface XfrmUsersaId { readonly daddr: Uint8Array; readonly spi: number; readonly family: number; readonly proto: number }

export function decodeXfrmUsersaId(r: Reader): XfrmUsersaId {
  const daddr = getAddress(r); const spi = r.u32('spi'); const family = getU16(r); const proto = r.u8(); r.advance(1);
  return { daddr, spi, family, proto };
}
export function encodeXfrmUsersaId(w: Writer, v: XfrmUsersaId): void {
  putAddress(w, v.daddr); w.u32(v.spi >>> 0); putU16(w, v.family); w.u8(v.proto).zeros(1);
}
