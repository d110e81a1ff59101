// struct xfrm_userpolicy_info (include/uapi/linux/xfrm.h), 168 bytes:
//   struct xfrm_userpolicy_info {
//     struct xfrm_selector     sel;       /*   0 */
//     struct xfrm_lifetime_cfg lft;       /*  56 */
//     struct xfrm_lifetime_cur curlft;    /* 120 */
//     __u32 priority;                     /* 152 */
//     __u32 index;                        /* 156 */
//     __u8  dir;                          /* 160: XFRM_POLICY_IN/OUT/FWD */
//     __u8  action;                       /* 161: XFRM_POLICY_ALLOW/BLOCK */
//     __u8  flags;                        /* 162: XFRM_POLICY_LOCALOK/ICMP */
//     __u8  share;                        /* 163: XFRM_SHARE_*, then 4 bytes padding */
//   };
import type { Reader, Writer } from '../../common/bytes.js';
import { getU32, putU32 } from './host.js';
import { decodeXfrmLifetimeCfg, encodeXfrmLifetimeCfg, type XfrmLifetimeCfg } from './lifetime-cfg.js';
import { decodeXfrmLifetimeCur, encodeXfrmLifetimeCur, type XfrmLifetimeCur } from './lifetime-cur.js';
import { decodeXfrmSelector, encodeXfrmSelector, type XfrmSelector } from './selector.js';

export const XFRM_USERPOLICY_INFO_SIZE = 168;

export interface XfrmUserpolicyInfo {
  readonly sel: XfrmSelector;
  readonly lft: XfrmLifetimeCfg;
  readonly curlft: XfrmLifetimeCur;
  readonly priority: number;
  readonly index: number;
  readonly dir: number;
  readonly action: number;
  readonly flags: number;
  readonly share: number;
}

export function decodeXfrmUserpolicyInfo(r: Reader): XfrmUserpolicyInfo {
  const sel = decodeXfrmSelector(r); const lft = decodeXfrmLifetimeCfg(r); const curlft = decodeXfrmLifetimeCur(r);
  const priority = getU32(r); const index = getU32(r);
  const dir = r.u8(); const action = r.u8(); const flags = r.u8(); const share = r.u8(); r.advance(4);
  return { sel, lft, curlft, priority, index, dir, action, flags, share };
}

export function encodeXfrmUserpolicyInfo(w: Writer, v: XfrmUserpolicyInfo): void {
  encodeXfrmSelector(w, v.sel); encodeXfrmLifetimeCfg(w, v.lft); encodeXfrmLifetimeCur(w, v.curlft);
  putU32(w, v.priority); putU32(w, v.index);
  w.u8(v.dir).u8(v.action).u8(v.flags).u8(v.share).zeros(4);
}
