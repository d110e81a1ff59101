// struct xfrm_mark (include/uapi/linux/xfrm.h), 8 bytes, host order:
//   struct xfrm_mark { __u32 v; /* value */ __u32 m; /* mask */ };
import type { Reader, Writer } from '../../common/bytes.js';
import { getU32, putU32 } from './host.js';

export const XFRM_MARK_SIZE = 8;

export interface XfrmMark { readonly v: number; readonly m: number }

export function decodeXfrmMark(r: Reader): XfrmMark { return { v: getU32(r), m: getU32(r) }; }
export function encodeXfrmMark(w: Writer, x: XfrmMark): void { putU32(w, x.v); putU32(w, x.m); }
