// struct xfrm_stats (include/uapi/linux/xfrm.h), 12 bytes, host order:
//   struct xfrm_stats { __u32 replay_window; __u32 replay; __u32 integrity_failed; };
import type { Reader, Writer } from '../../common/bytes.js';
import { getU32, putU32 } from './host.js';

export const XFRM_STATS_SIZE = 12;

export interface XfrmStats { readonly replay_window: number; readonly replay: number; readonly integrity_failed: number }
export const STATS_ZERO: XfrmStats = { replay_window: 0, replay: 0, integrity_failed: 0 };

export function decodeXfrmStats(r: Reader): XfrmStats {
  return { replay_window: getU32(r), replay: getU32(r), integrity_failed: getU32(r) };
}
export function encodeXfrmStats(w: Writer, v: XfrmStats): void {
  putU32(w, v.replay_window); putU32(w, v.replay); putU32(w, v.integrity_failed);
}
