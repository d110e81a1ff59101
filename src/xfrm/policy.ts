// Policies as the agent describes them ↔ XFRM_MSG_NEWPOLICY payloads (xfrm_userpolicy_info +
// XFRMA_TMPL array). Attribute order follows iproute2 (TMPL, MARK, IF_ID) for byte-identical requests.
import { ConfigError } from '../common/errors.js';
import { attr, findAttr, type XfrmAttr } from './attrs.js';
import * as C from './constants.js';
import { addressBytes, addressText, familyOf, ZERO_ADDRESS } from './structs/address.js';
import { LIFETIME_CFG_UNLIMITED } from './structs/lifetime-cfg.js';
import { LIFETIME_CUR_ZERO, type XfrmLifetimeCur } from './structs/lifetime-cur.js';
import type { XfrmUserTmpl } from './structs/user-tmpl.js';
import type { XfrmUserpolicyInfo } from './structs/userpolicy-info.js';
import type { XfrmUserpolicyId } from './structs/userpolicy-id.js';
import { decodeSelector, encodeSelector, selectorText, type TrafficSelector } from './selector.js';
import { MODE_NUMBER, modeName, PROTO_NUMBER, protoName, type IpsecProto, type Mark, type SaMode } from './sa.js';

export type PolicyDir = 'in' | 'out' | 'fwd';
export type PolicyAction = 'allow' | 'block';

export const DIR_NUMBER: Readonly<Record<PolicyDir, number>> = { in: C.XFRM_POLICY_IN, out: C.XFRM_POLICY_OUT, fwd: C.XFRM_POLICY_FWD };

export function dirName(n: number): PolicyDir {
  if (n === C.XFRM_POLICY_IN) return 'in';
  if (n === C.XFRM_POLICY_FWD) return 'fwd';
  return 'out';
}

/** One xfrm_user_tmpl: which SA (by addresses, proto, reqid, mode) a matching packet must use. */
export interface PolicyTemplate {
  /** Tunnel endpoints; empty for transport mode (the kernel takes the packet's addresses). */
  readonly src?: string;
  readonly dst?: string;
  readonly proto?: IpsecProto;
  readonly spi?: number;
  readonly reqid?: number;
  readonly mode?: SaMode;
  /** Allow packets without this transformation (IPComp's "optional" inbound template). */
  readonly optional?: boolean;
}

export interface PolicySpec {
  readonly selector: TrafficSelector;
  readonly dir: PolicyDir;
  readonly action?: PolicyAction;
  /** Lower wins; strongSwan's defaults start near 200000 and go down with specificity. */
  readonly priority?: number;
  readonly index?: number;
  readonly templates?: readonly PolicyTemplate[];
  readonly mark?: Mark;
  readonly ifId?: number;
  /** XFRM_POLICY_LOCALOK / XFRM_POLICY_ICMP */
  readonly flags?: number;
}

/** How the kernel identifies a policy: selector + direction (+ mark, if_id). */
export interface PolicyId {
  readonly selector: TrafficSelector;
  readonly dir: PolicyDir;
  readonly mark?: Mark;
  readonly ifId?: number;
}

export interface PolicyState extends PolicySpec {
  readonly index: number;
  readonly current: XfrmLifetimeCur;
}

function encodeTmpl(t: PolicyTemplate, selFamily: number): XfrmUserTmpl {
  const family = t.dst ? familyOf(t.dst) : t.src ? familyOf(t.src) : selFamily;
  if (t.src && t.dst && familyOf(t.src) !== familyOf(t.dst)) throw new ConfigError('policy.templates', `mixed families: ${t.src} → ${t.dst}`);
  return {
    id: { daddr: t.dst ? addressBytes(t.dst) : ZERO_ADDRESS, spi: t.spi ?? 0, proto: PROTO_NUMBER[t.proto ?? 'esp'] },
    family,
    saddr: t.src ? addressBytes(t.src) : ZERO_ADDRESS,
    reqid: t.reqid ?? 0,
    mode: MODE_NUMBER[t.mode ?? 'tunnel'],
    share: C.XFRM_SHARE_ANY,
    optional: t.optional ? 1 : 0,
    // All algorithms allowed: the SA, not the policy, fixes the algorithms (as iproute2 and strongSwan do).
    aalgos: 0xffffffff, ealgos: 0xffffffff, calgos: 0xffffffff,
  };
}

export function encodePolicy(p: PolicySpec): { info: XfrmUserpolicyInfo; attrs: XfrmAttr[] } {
  const sel = encodeSelector(p.selector);
  const info: XfrmUserpolicyInfo = {
    sel, lft: LIFETIME_CFG_UNLIMITED, curlft: LIFETIME_CUR_ZERO,
    priority: p.priority ?? 0, index: p.index ?? 0, dir: DIR_NUMBER[p.dir],
    action: p.action === 'block' ? C.XFRM_POLICY_BLOCK : C.XFRM_POLICY_ALLOW,
    flags: p.flags ?? 0, share: C.XFRM_SHARE_ANY,
  };
  const attrs: XfrmAttr[] = [];
  if (p.templates?.length) attrs.push(attr('XFRMA_TMPL', p.templates.map((t) => encodeTmpl(t, sel.family))));
  attrs.push(...idAttrs(p));
  return { info, attrs };
}

function idAttrs(p: { mark?: Mark; ifId?: number }): XfrmAttr[] {
  const out: XfrmAttr[] = [];
  if (p.mark) out.push(attr('XFRMA_MARK', { v: p.mark.value, m: p.mark.mask ?? 0xffffffff }));
  if (p.ifId !== undefined) out.push(attr('XFRMA_IF_ID', p.ifId));
  return out;
}

export function encodePolicyId(id: PolicyId): { body: XfrmUserpolicyId; attrs: XfrmAttr[] } {
  return { body: { sel: encodeSelector(id.selector), index: 0, dir: DIR_NUMBER[id.dir] }, attrs: idAttrs(id) };
}

export function decodePolicy(info: XfrmUserpolicyInfo, attrs: readonly XfrmAttr[]): PolicyState {
  const tmpls = findAttr(attrs, 'XFRMA_TMPL') ?? [];
  const mark = findAttr(attrs, 'XFRMA_MARK');
  const ifId = findAttr(attrs, 'XFRMA_IF_ID');
  return {
    selector: decodeSelector(info.sel),
    dir: dirName(info.dir),
    action: info.action === C.XFRM_POLICY_BLOCK ? 'block' : 'allow',
    priority: info.priority,
    index: info.index,
    ...(info.flags ? { flags: info.flags } : {}),
    templates: tmpls.map((t) => {
      const zero = t.id.daddr.every((b) => b === 0) && t.saddr.every((b) => b === 0);
      const proto = protoName(t.id.proto); const mode = modeName(t.mode);
      return {
        ...(zero ? {} : { src: addressText(t.saddr, t.family), dst: addressText(t.id.daddr, t.family) }),
        ...(proto.startsWith('proto-') ? {} : { proto: proto as IpsecProto }),
        ...(t.id.spi ? { spi: t.id.spi } : {}),
        reqid: t.reqid,
        ...(mode.startsWith('mode-') ? {} : { mode: mode as SaMode }),
        ...(t.optional ? { optional: true } : {}),
      };
    }),
    ...(mark ? { mark: { value: mark.v, mask: mark.m } } : {}),
    ...(ifId !== undefined ? { ifId } : {}),
    current: info.curlft,
  };
}

export function policyText(id: { selector: TrafficSelector; dir: PolicyDir }): string {
  return `${selectorText(id.selector)} dir ${id.dir}`;
}
