// struct fib_rule_hdr (include/uapi/linux/fib_rules.h), 12 bytes — body of RTM_NEWRULE:
//   struct fib_rule_hdr {
//     __u8 family, dst_len, src_len, tos;
//     __u8 table;
//     __u8 res1, res2;   /* reserved */
//     __u8 action;       /* FR_ACT_* */
//     __u32 flags;
//   };
import type { Reader, Writer } from '../../common/bytes.js';
import { getU32, putU32 } from '../structs/host.js';

export const FIB_RULE_HDR_SIZE = 12;

export interface FibRuleHdr {
  readonly family: number; readonly dst_len: number; readonly src_len: number; readonly tos: number;
  readonly table: number; readonly action: number; readonly flags: number;
}

export function decodeFibRuleHdr(r: Reader): FibRuleHdr {
  const family = r.u8(); const dst_len = r.u8(); const src_len = r.u8(); const tos = r.u8(); const table = r.u8();
  r.advance(2);
  return { family, dst_len, src_len, tos, table, action: r.u8(), flags: getU32(r) };
}
export function encodeFibRuleHdr(w: Writer, v: FibRuleHdr): void {
  w.u8(v.family).u8(v.dst_len).u8(v.src_len).u8(v.tos).u8(v.table).zeros(2).u8(v.action); putU32(w, v.flags);
}
