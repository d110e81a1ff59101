// struct xfrm_id (include/uapi/linux/xfrm.h), 24 bytes:
//   struct xfrm_id {
//     xfrm_address_t daddr;  /*  0 */
//     __be32 spi;            /* 16 */
//     __u8   proto;          /* 20, 3 bytes padding */
//   };
import type { Reader, Writer } from '../../common/bytes.js';
import { getAddress, putAddress } from './address.js';

export const XFRM_ID_SIZE = 24;

export interface XfrmId { readonly daddr: Uint8Array; readonly spi: number; readonly proto: number }

export function decodeXfrmId(r: Reader): XfrmId {
  const daddr = getAddress(r); const spi = r.u32('spi'); const proto = r.u8(); r.advance(3);
  return { daddr, spi, proto };
}
export function encodeXfrmId(w: Writer, v: XfrmId): void {
  putAddress(w, v.daddr); w.u32(v.spi >>> 0).u8(v.proto).zeros(3);
}
