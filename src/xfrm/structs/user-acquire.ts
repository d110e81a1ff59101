// struct xfrm_user_acquire (include/uapi/linux/xfrm.h), 280 bytes — XFRM_MSG_ACQUIRE on XFRMNLGRP_ACQUIRE,
// sent when a packet hits a policy whose template has no SA yet (a "trap"), followed by XFRMA_TMPL:
//   struct xfrm_user_acquire {
//     struct xfrm_id              id;      /*   0 */
//     xfrm_address_t              saddr;   /*  24 */
//     struct xfrm_selector        sel;     /*  40 */
//     struct xfrm_userpolicy_info policy;  /*  96 */
//     __u32 aalgos, ealgos, calgos;        /* 264 */
//     __u32 seq;                           /* 276: echo in the SA to resolve the acquire */
//   };
import type { Reader, Writer } from '../../common/bytes.js';
import { getAddress, putAddress } from './address.js';
import { getU32, putU32 } from './host.js';
import { decodeXfrmId, encodeXfrmId, type XfrmId } from './id.js';
import { decodeXfrmSelector, encodeXfrmSelector, type XfrmSelector } from './selector.js';
import { decodeXfrmUserpolicyInfo, encodeXfrmUserpolicyInfo, type XfrmUserpolicyInfo } from './userpolicy-info.js';

export const XFRM_USER_ACQUIRE_SIZE = 280;

export interface XfrmUserAcquire {
  readonly id: XfrmId; readonly saddr: Uint8Array; readonly sel: XfrmSelector; readonly policy: XfrmUserpolicyInfo;
  readonly aalgos: number; readonly ealgos: number; readonly calgos: number; readonly seq: number;
}

export function decodeXfrmUserAcquire(r: Reader): XfrmUserAcquire {
  const id = decodeXfrmId(r); const saddr = getAddress(r); const sel = decodeXfrmSelector(r);
  const policy = decodeXfrmUserpolicyInfo(r);
  return { id, saddr, sel, policy, aalgos: getU32(r), ealgos: getU32(r), calgos: getU32(r), seq: getU32(r) };
}
export function encodeXfrmUserAcquire(w: Writer, v: XfrmUserAcquire): void {
  encodeXfrmId(w, v.id); putAddress(w, v.saddr); encodeXfrmSelector(w, v.sel); encodeXfrmUserpolicyInfo(w, v.policy);
  putU32(w, v.aalgos); putU32(w, v.ealgos); putU32(w, v.calgos); putU32(w, v.seq);
}
