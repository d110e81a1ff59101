// struct xfrm_lifetime_cur (include/uapi/linux/xfrm.h), 32 bytes, host order:
//   struct xfrm_lifetime_cur { __u64 bytes; __u64 packets; __u64 add_time; __u64 use_time; };
import type { Reader, Writer } from '../../common/bytes.js';
import { getU64, putU64 } from './host.js';

export const XFRM_LIFETIME_CUR_SIZE = 32;

export interface XfrmLifetimeCur { readonly bytes: bigint; readonly packets: bigint; readonly add_time: bigint; readonly use_time: bigint }

export const LIFETIME_CUR_ZERO: XfrmLifetimeCur = { bytes: 0n, packets: 0n, add_time: 0n, use_time: 0n };

export function decodeXfrmLifetimeCur(r: Reader): XfrmLifetimeCur {
  return { bytes: getU64(r), packets: getU64(r), add_time: getU64(r), use_time: getU64(r) };
}
export function encodeXfrmLifetimeCur(w: Writer, v: XfrmLifetimeCur): void {
  putU64(w, v.bytes); putU64(w, v.packets); putU64(w, v.add_time); putU64(w, v.use_time);
}
