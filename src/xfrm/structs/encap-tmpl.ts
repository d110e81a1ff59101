// struct xfrm_encap_tmpl (include/uapi/linux/xfrm.h), 24 bytes — ESP-in-UDP (RFC 3948):
//   struct xfrm_encap_tmpl {
//     __u16          encap_type;   /*  0: UDP_ENCAP_ESPINUDP, host order */
//     __be16         encap_sport;  /*  2 */
//     __be16         encap_dport;  /*  4, 2 bytes padding */
//     xfrm_address_t encap_oa;     /*  8: original address for NAT-T checksum fixups */
//   };
import type { Reader, Writer } from '../../common/bytes.js';
import { getAddress, putAddress } from './address.js';
import { getU16, putU16 } from './host.js';

export const XFRM_ENCAP_TMPL_SIZE = 24;

export interface XfrmEncapTmpl { readonly encap_type: number; readonly encap_sport: number; readonly encap_dport: number; readonly encap_oa: Uint8Array }

export function decodeXfrmEncapTmpl(r: Reader): XfrmEncapTmpl {
  const encap_type = getU16(r); const encap_sport = r.u16(); const encap_dport = r.u16(); r.advance(2);
  return { encap_type, encap_sport, encap_dport, encap_oa: getAddress(r) };
}
export function encodeXfrmEncapTmpl(w: Writer, v: XfrmEncapTmpl): void {
  putU16(w, v.encap_type); w.u16(v.encap_sport).u16(v.encap_dport).zeros(2); putAddress(w, v.encap_oa);
}
