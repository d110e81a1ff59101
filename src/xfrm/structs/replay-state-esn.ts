// struct xfrm_replay_state_esn (include/uapi/linux/xfrm.h), 24 bytes + bmp_len u32 words:
//   struct xfrm_replay_state_esn {
//     unsigned int bmp_len;       /* words in bmp[] */
//     __u32 oseq, seq, oseq_hi, seq_hi;
//     __u32 replay_window;        /* packets; bmp_len = ceil(replay_window / 32) */
//     __u32 bmp[];
//   };
// XFRMA_REPLAY_ESN_VAL: required for ESN (RFC 4303 §2.2.1) and for windows above 255.
// iproute2 (and the kernel, which accepts nla_len == sizeof(struct)) sends the header alone with
// bmp_len set and no bitmap words; `bmp` holds the words actually present so both forms re-encode.
import type { Reader, Writer } from '../../common/bytes.js';
import { ParseError } from '../../common/errors.js';
import { getU32, putU32 } from './host.js';

export const XFRM_REPLAY_STATE_ESN_SIZE = 24;

export interface XfrmReplayStateEsn {
  readonly bmp_len: number;
  readonly oseq: number; readonly seq: number; readonly oseq_hi: number; readonly seq_hi: number;
  readonly replay_window: number;
  readonly bmp: readonly number[];
}

export function decodeXfrmReplayStateEsn(r: Reader): XfrmReplayStateEsn {
  const bmp_len = getU32(r);
  const oseq = getU32(r); const seq = getU32(r); const oseq_hi = getU32(r); const seq_hi = getU32(r);
  const replay_window = getU32(r);
  if (r.remaining !== 0 && bmp_len * 4 > r.remaining)
    throw new ParseError('ERR_XFRM_REPLAY_ESN', `bmp_len ${bmp_len} words but ${r.remaining} bytes`, r.offset);
  const bmp: number[] = [];
  while (r.remaining >= 4 && bmp.length < bmp_len) bmp.push(getU32(r));
  return { bmp_len, oseq, seq, oseq_hi, seq_hi, replay_window, bmp };
}

export function encodeXfrmReplayStateEsn(w: Writer, v: XfrmReplayStateEsn): void {
  putU32(w, v.bmp_len); putU32(w, v.oseq); putU32(w, v.seq); putU32(w, v.oseq_hi); putU32(w, v.seq_hi);
  putU32(w, v.replay_window);
  for (const word of v.bmp) putU32(w, word);
}

/** A fresh state for a window of `replayWindow` packets, header only (as iproute2 and strongSwan send it). */
export function freshReplayStateEsn(replayWindow: number): XfrmReplayStateEsn {
  return { bmp_len: Math.ceil(replayWindow / 32), oseq: 0, seq: 0, oseq_hi: 0, seq_hi: 0, replay_window: replayWindow, bmp: [] };
}
