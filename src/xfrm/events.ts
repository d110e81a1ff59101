// XFRM multicast events (XFRMNLGRP_*) on a socket of their own: soft/hard EXPIRE drives rekey,
// ACQUIRE starts an on-demand negotiation from a trap policy, MAPPING reports a NAT change,
// POLEXPIRE a policy lifetime. Undecodable messages go to onError, never crash the reader.
import { KipsecError } from '../common/errors.js';
import { findAttr } from './attrs.js';
import * as C from './constants.js';
import { decodeXfrmMessage, type XfrmMessage } from './messages.js';
import { NetlinkConnection } from './netlink/connection.js';
import type { NlMessage } from './netlink/nlmsghdr.js';
import type { NetlinkTransport } from './netlink/transport.js';
import { decodePolicy, dirName, type PolicyDir, type PolicyState, type PolicyTemplate } from './policy.js';
import { decodeSa, protoName, type SaState } from './sa.js';
import { decodeSelector, type TrafficSelector } from './selector.js';
import { addressText } from './structs/address.js';

export type XfrmEventGroup = 'acquire' | 'expire' | 'sa' | 'policy' | 'aevents' | 'mapping';

const GROUP_NUMBER: Readonly<Record<XfrmEventGroup, number>> = {
  acquire: C.XFRMNLGRP_ACQUIRE, expire: C.XFRMNLGRP_EXPIRE, sa: C.XFRMNLGRP_SA,
  policy: C.XFRMNLGRP_POLICY, aevents: C.XFRMNLGRP_AEVENTS, mapping: C.XFRMNLGRP_MAPPING,
};

export type XfrmEvent =
  /** hard=false: soft limit reached, rekey now; hard=true: the kernel deleted the SA. */
  | { readonly kind: 'expire'; readonly hard: boolean; readonly sa: SaState }
  | {
    readonly kind: 'acquire';
    /** Echo as acquireSeq in allocSpi/addSa so the kernel matches the SA to this acquire. */
    readonly seq: number;
    readonly src: string; readonly dst: string; readonly proto: string;
    readonly selector: TrafficSelector;
    readonly policyIndex: number; readonly dir: PolicyDir; readonly priority: number;
    readonly templates: readonly PolicyTemplate[];
    readonly ifId?: number;
  }
  | {
    readonly kind: 'mapping';
    readonly dst: string; readonly spi: number; readonly reqid: number;
    readonly oldSrc: string; readonly oldSport: number; readonly newSrc: string; readonly newSport: number;
  }
  | { readonly kind: 'polexpire'; readonly hard: boolean; readonly policy: PolicyState }
  | { readonly kind: 'sa'; readonly type: number; readonly sa: SaState }
  | { readonly kind: 'other'; readonly type: number; readonly message: XfrmMessage };

export type XfrmEventHandler = (e: XfrmEvent) => void;

export interface XfrmEvents {
  onError(fn: (e: Error) => void): void;
  close(): void;
}

export function decodeXfrmEvent(m: NlMessage): XfrmEvent {
  const d = decodeXfrmMessage(m.hdr.nlmsg_type, m.payload);
  switch (d.body.struct) {
    case 'xfrm_user_expire':
      return { kind: 'expire', hard: d.body.value.hard !== 0, sa: decodeSa(d.body.value.state, d.attrs) };
    case 'xfrm_user_acquire': {
      const a = d.body.value;
      const fam = a.policy.sel.family || a.sel.family;
      const pol = decodePolicy(a.policy, d.attrs);
      const ifId = findAttr(d.attrs, 'XFRMA_IF_ID');
      return {
        kind: 'acquire', seq: a.seq, src: addressText(a.saddr, fam), dst: addressText(a.id.daddr, fam), proto: protoName(a.id.proto),
        selector: decodeSelector(a.sel), policyIndex: a.policy.index, dir: dirName(a.policy.dir), priority: a.policy.priority,
        templates: pol.templates ?? [], ...(ifId !== undefined ? { ifId } : {}),
      };
    }
    case 'xfrm_user_mapping': {
      const v = d.body.value;
      return {
        kind: 'mapping', dst: addressText(v.id.daddr, v.id.family), spi: v.id.spi, reqid: v.reqid,
        oldSrc: addressText(v.old_saddr, v.id.family), oldSport: v.old_sport, newSrc: addressText(v.new_saddr, v.id.family), newSport: v.new_sport,
      };
    }
    case 'xfrm_user_polexpire':
      return { kind: 'polexpire', hard: d.body.value.hard !== 0, policy: decodePolicy(d.body.value.pol, d.attrs) };
    case 'xfrm_usersa_info':
      return { kind: 'sa', type: d.type, sa: decodeSa(d.body.value, d.attrs) };
    default:
      return { kind: 'other', type: d.type, message: d };
  }
}

export function openXfrmEvents(transport: NetlinkTransport, groups: readonly XfrmEventGroup[], handler: XfrmEventHandler): XfrmEvents {
  const conn = new NetlinkConnection(transport);
  let onError: (e: Error) => void = () => { /* set by caller */ };
  conn.onError((e) => onError(e));
  conn.onEvent((m) => {
    let ev: XfrmEvent;
    try { ev = decodeXfrmEvent(m); } catch (e) {
      onError(e instanceof Error ? e : new KipsecError('ERR_XFRM_EVENT', String(e)));
      return;
    }
    handler(ev);
  });
  for (const g of groups) conn.subscribe(GROUP_NUMBER[g]);
  return { onError(fn) { onError = fn; }, close() { conn.close(); } };
}
