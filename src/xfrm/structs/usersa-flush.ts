// struct xfrm_usersa_flush (include/uapi/linux/xfrm.h), 1 byte — body of XFRM_MSG_FLUSHSA:
//   struct xfrm_usersa_flush { __u8 proto; };   /* IPSEC_PROTO_ANY (255) = every protocol */
import type { Reader, Writer } from '../../common/bytes.js';

export const XFRM_USERSA_FLUSH_SIZE = 1;
export const IPSEC_PROTO_ANY = 255;

export interface XfrmUsersaFlush { readonly proto: number }

export function decodeXfrmUsersaFlush(r: Reader): XfrmUsersaFlush { return { proto: r.u8() }; }
export function encodeXfrmUsersaFlush(w: Writer, v: XfrmUsersaFlush): void { w.u8(v.proto); }
