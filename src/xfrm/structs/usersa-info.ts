// struct xfrm_usersa_info (include/uapi/linux/xfrm.h), 224 bytes (8-aligned for the u64s):
//   struct xfrm_usersa_info {
//     struct xfrm_selector      sel;            /*   0 */
//     struct xfrm_id            id;             /*  56 */
//     xfrm_address_t            saddr;          /*  80 */
//     struct xfrm_lifetime_cfg  lft;            /*  96 */
//     struct xfrm_lifetime_cur  curlft;         /* 160 */
//     struct xfrm_stats         stats;          /* 192 */
//     __u32 seq;                                /* 204 */
//     __u32 reqid;                              /* 208 */
//     __u16 family;                             /* 212 */
//     __u8  mode;                               /* 214: XFRM_MODE_* */
//     __u8  replay_window;                      /* 215 */
//     __u8  flags;                              /* 216: XFRM_STATE_*, then 7 bytes padding */
//   };
// Body of NEWSA/UPDSA requests and of NEWSA dump replies.
import type { Reader, Writer } from '../../common/bytes.js';
import { getAddress, putAddress } from './address.js';
import { getU16, getU32, putU16, putU32 } from './host.js';
import { decodeXfrmId, encodeXfrmId, type XfrmId } from './id.js';
import { decodeXfrmLifetimeCfg, encodeXfrmLifetimeCfg, type XfrmLifetimeCfg } from './lifetime-cfg.js';
import { decodeXfrmLifetimeCur, encodeXfrmLifetimeCur, type XfrmLifetimeCur } from './lifetime-cur.js';
import { decodeXfrmSelector, encodeXfrmSelector, type XfrmSelector } from './selector.js';
import { decodeXfrmStats, encodeXfrmStats, type XfrmStats } from './stats.js';

export const XFRM_USERSA_INFO_SIZE = 224;

export interface XfrmUsersaInfo {
  readonly sel: XfrmSelector;
  readonly id: XfrmId;
  readonly saddr: Uint8Array;
  readonly lft: XfrmLifetimeCfg;
  readonly curlft: XfrmLifetimeCur;
  readonly stats: XfrmStats;
  readonly seq: number;
  readonly reqid: number;
  readonly family: number;
  readonly mode: number;
  readonly replay_window: number;
  readonly flags: number;
}

export function decodeXfrmUsersaInfo(r: Reader): XfrmUsersaInfo {
  const sel = decodeXfrmSelector(r); const id = decodeXfrmId(r); const saddr = getAddress(r);
  const lft = decodeXfrmLifetimeCfg(r); const curlft = decodeXfrmLifetimeCur(r); const stats = decodeXfrmStats(r);
  const seq = getU32(r); const reqid = getU32(r); const family = getU16(r);
  const mode = r.u8(); const replay_window = r.u8(); const flags = r.u8(); r.advance(7);
  return { sel, id, saddr, lft, curlft, stats, seq, reqid, family, mode, replay_window, flags };
}

export function encodeXfrmUsersaInfo(w: Writer, v: XfrmUsersaInfo): void {
  encodeXfrmSelector(w, v.sel); encodeXfrmId(w, v.id); putAddress(w, v.saddr);
  encodeXfrmLifetimeCfg(w, v.lft); encodeXfrmLifetimeCur(w, v.curlft); encodeXfrmStats(w, v.stats);
  putU32(w, v.seq); putU32(w, v.reqid); putU16(w, v.family);
  w.u8(v.mode).u8(v.replay_window).u8(v.flags).zeros(7);
}
