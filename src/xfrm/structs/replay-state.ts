// struct xfrm_replay_state (include/uapi/linux/xfrm.h), 12 bytes — XFRMA_REPLAY_VAL for non-ESN SAs:
//   struct xfrm_replay_state { __u32 oseq; __u32 seq; __u32 bitmap; };
import type { Reader, Writer } from '../../common/bytes.js';
import { getU32, putU32 } from './host.js';

export const XFRM_REPLAY_STATE_SIZE = 12;

export interface XfrmReplayState { readonly oseq: number; readonly seq: number; readonly bitmap: number }

export function decodeXfrmReplayState(r: Reader): XfrmReplayState { return { oseq: getU32(r), seq: getU32(r), bitmap: getU32(r) }; }
export function encodeXfrmReplayState(w: Writer, v: XfrmReplayState): void { putU32(w, v.oseq); putU32(w, v.seq); putU32(w, v.bitmap); }
