// struct xfrm_userpolicy_type (include/uapi/linux/xfrm.h), 4 bytes — XFRMA_POLICY_TYPE:
//   struct xfrm_userpolicy_type { __u8 type; __u16 reserved1; __u8 reserved2; };
import type { Reader, Writer } from '../../common/bytes.js';

export const XFRM_USERPOLICY_TYPE_SIZE = 4;

export interface XfrmUserpolicyType { readonly type: number }

export function decodeXfrmUserpolicyType(r: Reader): XfrmUserpolicyType { const type = r.u8(); r.advance(3); return { type }; }
export function encodeXfrmUserpolicyType(w: Writer, v: XfrmUserpolicyType): void { w.u8(v.type).zeros(3); }
