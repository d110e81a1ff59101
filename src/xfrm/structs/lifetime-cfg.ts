// struct xfrm_lifetime_cfg (include/uapi/linux/xfrm.h), 64 bytes, host order; XFRM_INF = no limit:
//   struct xfrm_lifetime_cfg {
//     __u64 soft_byte_limit, hard_byte_limit;
//     __u64 soft_packet_limit, hard_packet_limit;
//     __u64 soft_add_expires_seconds, hard_add_expires_seconds;
//     __u64 soft_use_expires_seconds, hard_use_expires_seconds;
//   };
import type { Reader, Writer } from '../../common/bytes.js';
import { XFRM_INF } from '../constants.js';
import { getU64, putU64 } from './host.js';

export const XFRM_LIFETIME_CFG_SIZE = 64;

export interface XfrmLifetimeCfg {
  readonly soft_byte_limit: bigint; readonly hard_byte_limit: bigint;
  readonly soft_packet_limit: bigint; readonly hard_packet_limit: bigint;
  readonly soft_add_expires_seconds: bigint; readonly hard_add_expires_seconds: bigint;
  readonly soft_use_expires_seconds: bigint; readonly hard_use_expires_seconds: bigint;
}

/** What `ip xfrm` sends when no limit is given: byte/packet limits infinite, times 0 (= none). */
export const LIFETIME_CFG_UNLIMITED: XfrmLifetimeCfg = {
  soft_byte_limit: XFRM_INF, hard_byte_limit: XFRM_INF, soft_packet_limit: XFRM_INF, hard_packet_limit: XFRM_INF,
  soft_add_expires_seconds: 0n, hard_add_expires_seconds: 0n, soft_use_expires_seconds: 0n, hard_use_expires_seconds: 0n,
};

export function decodeXfrmLifetimeCfg(r: Reader): XfrmLifetimeCfg {
  return {
    soft_byte_limit: getU64(r), hard_byte_limit: getU64(r), soft_packet_limit: getU64(r), hard_packet_limit: getU64(r),
    soft_add_expires_seconds: getU64(r), hard_add_expires_seconds: getU64(r),
    soft_use_expires_seconds: getU64(r), hard_use_expires_seconds: getU64(r),
  };
}
export function encodeXfrmLifetimeCfg(w: Writer, v: XfrmLifetimeCfg): void {
  for (const x of [v.soft_byte_limit, v.hard_byte_limit, v.soft_packet_limit, v.hard_packet_limit,
    v.soft_add_expires_seconds, v.hard_add_expires_seconds, v.soft_use_expires_seconds, v.hard_use_expires_seconds]) putU64(w, x);
}
