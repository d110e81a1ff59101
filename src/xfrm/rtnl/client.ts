// rtnetlink for route-based tunnels: XFRM interfaces (link kind "xfrm", IFLA_XFRM_IF_ID /
// IFLA_XFRM_LINK) and routes to remote subnets. Routes follow strongSwan's install_routes:
// table 220 (looked up by a rule of priority 220), protocol static, a preferred source address
// from the local traffic selector so locally generated packets match the policy, and either the
// next hop toward the peer or the XFRM interface as the device.
import { Reader, type Writer } from '../../common/bytes.js';
import { ConfigError } from '../../common/errors.js';
import { AF_INET, AF_UNSPEC } from '../constants.js';
import { XfrmExistsError, xfrmError } from '../errors.js';
import { attrString, attrU32, parseAttrs, putAttr, putAttrString, putAttrU32, putAttrWith } from '../netlink/attr.js';
import { NetlinkConnection } from '../netlink/connection.js';
import { NETLINK_ROUTE, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE, nlAlign } from '../netlink/constants.js';
import { RawNetlinkTransport } from '../netlink/raw-transport.js';
import type { NetlinkTransport } from '../netlink/transport.js';
import { addressBytes, addressText, familyOf } from '../structs/address.js';
import { parseCidr } from '../selector.js';
import * as R from './constants.js';
import { decodeFibRuleHdr, encodeFibRuleHdr, FIB_RULE_HDR_SIZE } from './fib-rule-hdr.js';
import { decodeIfinfomsg, encodeIfinfomsg, IFINFOMSG_SIZE, type Ifinfomsg } from './ifinfomsg.js';
import { decodeRtmsg, encodeRtmsg, RTMSG_SIZE, type Rtmsg } from './rtmsg.js';

export interface XfrmInterfaceSpec {
  readonly name: string;
  /** Matches XFRMA_IF_ID on SAs and policies (must be non-zero). */
  readonly ifId: number;
  /** Underlying device (name or index) for PMTU/neighbour lookups; optional on newer kernels. */
  readonly link?: string | number;
  readonly mtu?: number;
  readonly up?: boolean;
}

export interface RouteSpec {
  /** Remote subnet (CIDR). */
  readonly dst: string;
  /** Preferred source: a local address inside the local traffic selector. */
  readonly src?: string;
  readonly gateway?: string;
  /** Output device by name or index (an XFRM interface for route-based tunnels). */
  readonly dev?: string | number;
  readonly table?: number;
  readonly metric?: number;
  /** 'blackhole': no device or next hop, the packet is dropped (default 'unicast'). */
  readonly type?: 'unicast' | 'blackhole';
}

/** `ip rule` with selectors: `from SRC to DST iif DEV`, then look up a table or drop (blackhole). */
export interface RuleSpec {
  readonly priority: number;
  readonly src?: string;
  readonly dst?: string;
  readonly iif?: string;
  readonly action: { readonly table: number } | 'blackhole';
}

export interface RouteState extends RouteSpec { readonly protocol: number }

/** One network interface as `ip -d link` shows it: what the agent needs of it. */
export interface LinkInfo {
  readonly index: number;
  readonly name: string;
  readonly mtu: number;
  readonly up: boolean;
  /** IFLA_INFO_KIND: "vxlan", "geneve", "bridge", "veth", "xfrm"…; undefined for plain devices. */
  readonly kind?: string;
  /** The UDP destination port of a vxlan or geneve device (IFLA_VXLAN_PORT / IFLA_GENEVE_PORT). */
  readonly udpPort?: number;
}

const ifinfo = (v: Partial<Ifinfomsg>): Ifinfomsg => ({ ifi_family: AF_UNSPEC, ifi_type: 0, ifi_index: 0, ifi_flags: 0, ifi_change: 0, ...v });

function pad(w: Writer, n: number): void { w.zeros(nlAlign(n) - n); }

export class RtnlClient {
  readonly #conn: NetlinkConnection;

  constructor(transport: NetlinkTransport, timeoutMs?: number) {
    this.#conn = new NetlinkConnection(transport, timeoutMs ? { timeoutMs } : {});
  }

  static open(): RtnlClient { return new RtnlClient(new RawNetlinkTransport(NETLINK_ROUTE)); }

  close(): void { this.#conn.close(); }

  /** Interface index by name (RTM_GETLINK with IFLA_IFNAME). */
  async linkIndex(name: string): Promise<number> {
    try {
      const m = await this.#conn.get(R.RTM_GETLINK, 0, (w) => { encodeIfinfomsg(w, ifinfo({})); putAttrString(w, R.IFLA_IFNAME, name); });
      return decodeIfinfomsg(new Reader(m.payload, 0, IFINFOMSG_SIZE)).ifi_index;
    } catch (e) { throw xfrmError(e, 'look up link', { kind: 'other', text: name }); }
  }

  async #index(dev: string | number): Promise<number> { return typeof dev === 'number' ? dev : this.linkIndex(dev); }

  /** `ip link add NAME type xfrm dev LINK if_id IFID` (+ up). */
  async addXfrmInterface(s: XfrmInterfaceSpec): Promise<number> {
    if (!s.ifId) throw new ConfigError('xfrmInterface.ifId', 'if_id must be non-zero');
    const link = s.link !== undefined ? await this.#index(s.link) : undefined;
    const target = { kind: 'other', text: `xfrm interface ${s.name} if_id ${s.ifId}` } as const;
    try {
      await this.#conn.ack(R.RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, (w) => {
        encodeIfinfomsg(w, ifinfo(s.up ? { ifi_flags: R.IFF_UP, ifi_change: R.IFF_UP } : {}));
        putAttrString(w, R.IFLA_IFNAME, s.name);
        if (s.mtu) putAttrU32(w, R.IFLA_MTU, s.mtu);
        putAttrWith(w, R.IFLA_LINKINFO, (li) => {
          putAttrString(li, R.IFLA_INFO_KIND, 'xfrm');
          putAttrWith(li, R.IFLA_INFO_DATA, (d) => {
            if (link !== undefined) putAttrU32(d, R.IFLA_XFRM_LINK, link);
            putAttrU32(d, R.IFLA_XFRM_IF_ID, s.ifId);
          });
        });
      });
    } catch (e) { throw xfrmError(e, 'add', target); }
    return this.linkIndex(s.name);
  }

  /** Every interface (RTM_GETLINK dump), with MTU and, for overlay devices, their UDP port. */
  async listLinks(): Promise<LinkInfo[]> {
    const msgs = await this.#conn.dump(R.RTM_GETLINK, (w) => { encodeIfinfomsg(w, ifinfo({})); })
      .catch((e: unknown) => { throw xfrmError(e, 'list links', { kind: 'other', text: 'links' }); });
    const out: LinkInfo[] = [];
    for (const m of msgs) {
      const hdr = decodeIfinfomsg(new Reader(m.payload, 0, IFINFOMSG_SIZE));
      let name = ''; let mtu = 0; let kind: string | undefined; let udpPort: number | undefined;
      for (const a of parseAttrs(m.payload.subarray(IFINFOMSG_SIZE))) {
        if (a.type === R.IFLA_IFNAME) name = attrString(a);
        else if (a.type === R.IFLA_MTU) mtu = attrU32(a);
        else if (a.type === R.IFLA_LINKINFO) {
          const info = parseAttrs(a.data);
          const k = info.find((x) => x.type === R.IFLA_INFO_KIND);
          kind = k ? attrString(k) : undefined;
          const data = info.find((x) => x.type === R.IFLA_INFO_DATA);
          const portType = kind === 'vxlan' ? R.IFLA_VXLAN_PORT : kind === 'geneve' ? R.IFLA_GENEVE_PORT : undefined;
          const port = portType === undefined || !data ? undefined : parseAttrs(data.data).find((x) => x.type === portType);
          if (port && port.data.length >= 2) udpPort = ((port.data[0]! << 8) | port.data[1]!) >>> 0; // __be16
        }
      }
      out.push({ index: hdr.ifi_index, name, mtu, up: (hdr.ifi_flags & R.IFF_UP) !== 0, ...(kind !== undefined ? { kind } : {}), ...(udpPort !== undefined ? { udpPort } : {}) });
    }
    return out;
  }

  /** The if_id of an existing XFRM interface (IFLA_LINKINFO / IFLA_INFO_DATA / IFLA_XFRM_IF_ID). */
  async xfrmInterfaceIfId(name: string): Promise<number | undefined> {
    const m = await this.#conn.get(R.RTM_GETLINK, 0, (w) => { encodeIfinfomsg(w, ifinfo({})); putAttrString(w, R.IFLA_IFNAME, name); })
      .catch((e: unknown) => { throw xfrmError(e, 'look up link', { kind: 'other', text: name }); });
    for (const a of parseAttrs(m.payload.subarray(IFINFOMSG_SIZE))) {
      if (a.type !== R.IFLA_LINKINFO) continue;
      const info = parseAttrs(a.data);
      const kind = info.find((x) => x.type === R.IFLA_INFO_KIND);
      const data = info.find((x) => x.type === R.IFLA_INFO_DATA);
      if (!kind || attrString(kind) !== 'xfrm' || !data) return undefined;
      const id = parseAttrs(data.data).find((x) => x.type === R.IFLA_XFRM_IF_ID);
      return id ? attrU32(id) : undefined;
    }
    return undefined;
  }

  async setLinkUp(dev: string | number, up = true): Promise<void> {
    const index = await this.#index(dev);
    try {
      await this.#conn.ack(R.RTM_NEWLINK, 0, (w) => { encodeIfinfomsg(w, ifinfo({ ifi_index: index, ifi_flags: up ? R.IFF_UP : 0, ifi_change: R.IFF_UP })); });
    } catch (e) { throw xfrmError(e, up ? 'set up' : 'set down', { kind: 'other', text: `link ${dev}` }); }
  }

  /** `ip link set DEV mtu MTU` (the userspace data path's TUN device). */
  async setLinkMtu(dev: string | number, mtu: number): Promise<void> {
    const index = await this.#index(dev);
    try {
      await this.#conn.ack(R.RTM_NEWLINK, 0, (w) => { encodeIfinfomsg(w, ifinfo({ ifi_index: index })); putAttrU32(w, R.IFLA_MTU, mtu); });
    } catch (e) { throw xfrmError(e, 'set mtu', { kind: 'other', text: `link ${dev}` }); }
  }

  async deleteLink(dev: string | number): Promise<void> {
    const index = await this.#index(dev);
    try { await this.#conn.ack(R.RTM_DELLINK, 0, (w) => { encodeIfinfomsg(w, ifinfo({ ifi_index: index })); }); } catch (e) { throw xfrmError(e, 'delete', { kind: 'other', text: `link ${dev}` }); }
  }

  async #routeBody(r: RouteSpec): Promise<(w: Writer) => void> {
    const dst = parseCidr(r.dst, 'route.dst');
    const table = r.table ?? R.STRONGSWAN_ROUTING_TABLE;
    const oif = r.dev !== undefined ? await this.#index(r.dev) : undefined;
    if (r.src && familyOf(r.src) !== dst.family) throw new ConfigError('route.src', `family differs from ${r.dst}`);
    const blackhole = r.type === 'blackhole';
    if (blackhole && (oif !== undefined || r.gateway)) throw new ConfigError('route.type', `a blackhole route to ${r.dst} has no device or next hop`);
    const alen = dst.family === AF_INET ? 4 : 16;
    const msg: Rtmsg = {
      rtm_family: dst.family, rtm_dst_len: dst.prefix, rtm_src_len: 0, rtm_tos: 0,
      rtm_table: table < 256 ? table : 252 /* RT_TABLE_COMPAT */, rtm_protocol: R.RTPROT_STATIC,
      // Like iproute2: a device route without next hop is on-link (scope link), otherwise universe.
      rtm_scope: !r.gateway && oif !== undefined ? R.RT_SCOPE_LINK : R.RT_SCOPE_UNIVERSE, rtm_type: blackhole ? R.RTN_BLACKHOLE : R.RTN_UNICAST, rtm_flags: 0,
    };
    return (w) => {
      encodeRtmsg(w, msg); pad(w, RTMSG_SIZE);
      if (table >= 256) putAttrU32(w, R.RTA_TABLE, table);
      putAttr(w, R.RTA_DST, dst.addr.subarray(0, alen));
      if (r.src) putAttr(w, R.RTA_PREFSRC, addressBytes(r.src).subarray(0, alen));
      if (r.gateway) putAttr(w, R.RTA_GATEWAY, addressBytes(r.gateway).subarray(0, alen));
      if (oif !== undefined) putAttrU32(w, R.RTA_OIF, oif);
      if (r.metric !== undefined) putAttrU32(w, R.RTA_PRIORITY, r.metric);
    };
  }

  /** `ip route add DST [via GW] [dev DEV] proto static [src SRC] table 220`; replace=true for `ip route replace`. */
  async addRoute(r: RouteSpec, replace = false): Promise<void> {
    const body = await this.#routeBody(r);
    try { await this.#conn.ack(R.RTM_NEWROUTE, NLM_F_CREATE | (replace ? NLM_F_REPLACE : NLM_F_EXCL), body); } catch (e) { throw xfrmError(e, 'add', { kind: 'other', text: `route ${r.dst} table ${r.table ?? R.STRONGSWAN_ROUTING_TABLE}` }); }
  }

  async deleteRoute(r: RouteSpec): Promise<void> {
    const body = await this.#routeBody(r);
    try { await this.#conn.ack(R.RTM_DELROUTE, 0, body); } catch (e) { throw xfrmError(e, 'delete', { kind: 'other', text: `route ${r.dst} table ${r.table ?? R.STRONGSWAN_ROUTING_TABLE}` }); }
  }

  /**
   * `ip route get ADDR`: the route the kernel would use toward one address (rules included), as
   * output interface index, next hop and preferred source. One netlink round trip, no process.
   */
  async routeGet(address: string): Promise<{ readonly oif?: number; readonly gateway?: string; readonly prefsrc?: string }> {
    const family = familyOf(address);
    const alen = family === AF_INET ? 4 : 16;
    let m;
    try {
      m = await this.#conn.get(R.RTM_GETROUTE, 0, (w) => {
        encodeRtmsg(w, { rtm_family: family, rtm_dst_len: alen * 8, rtm_src_len: 0, rtm_tos: 0, rtm_table: 0, rtm_protocol: 0, rtm_scope: 0, rtm_type: 0, rtm_flags: 0 });
        pad(w, RTMSG_SIZE);
        putAttr(w, R.RTA_DST, addressBytes(address).subarray(0, alen));
      });
    } catch (e) { throw xfrmError(e, 'look up', { kind: 'other', text: `route to ${address}` }); }
    const attrs = parseAttrs(m.payload.subarray(nlAlign(RTMSG_SIZE)));
    const addr = (type: number): string | undefined => {
      const a = attrs.find((x) => x.type === type);
      if (!a) return undefined;
      const b = new Uint8Array(16); b.set(a.data.subarray(0, 16));
      return addressText(b, family);
    };
    const oif = attrs.find((x) => x.type === R.RTA_OIF);
    const gateway = addr(R.RTA_GATEWAY); const prefsrc = addr(R.RTA_PREFSRC);
    return { ...(oif ? { oif: attrU32(oif) } : {}), ...(gateway ? { gateway } : {}), ...(prefsrc ? { prefsrc } : {}) };
  }

  /** Routes in one table (dump of RTM_GETROUTE filtered here). */
  async listRoutes(family: number = AF_INET, table: number = R.STRONGSWAN_ROUTING_TABLE): Promise<RouteState[]> {
    const msgs = await this.#conn.dump(R.RTM_GETROUTE, (w) => { encodeRtmsg(w, { rtm_family: family, rtm_dst_len: 0, rtm_src_len: 0, rtm_tos: 0, rtm_table: 0, rtm_protocol: 0, rtm_scope: 0, rtm_type: 0, rtm_flags: 0 }); });
    const out: RouteState[] = [];
    for (const m of msgs) {
      if (m.hdr.nlmsg_type !== R.RTM_NEWROUTE) continue;
      const h = decodeRtmsg(new Reader(m.payload, 0, RTMSG_SIZE));
      const attrs = parseAttrs(m.payload.subarray(nlAlign(RTMSG_SIZE)));
      const t = attrs.find((a) => a.type === R.RTA_TABLE);
      const tbl = t ? attrU32(t) : h.rtm_table;
      if (tbl !== table) continue;
      const addr = (type: number): string | undefined => {
        const a = attrs.find((x) => x.type === type);
        if (!a) return undefined;
        const b = new Uint8Array(16); b.set(a.data.subarray(0, 16));
        return addressText(b, h.rtm_family);
      };
      const dst = addr(R.RTA_DST) ?? (h.rtm_family === AF_INET ? '0.0.0.0' : '::');
      const oif = attrs.find((x) => x.type === R.RTA_OIF);
      const src = addr(R.RTA_PREFSRC); const gw = addr(R.RTA_GATEWAY);
      const prio = attrs.find((x) => x.type === R.RTA_PRIORITY);
      out.push({
        dst: `${dst}/${h.rtm_dst_len}`, table: tbl, protocol: h.rtm_protocol, ...(src ? { src } : {}), ...(gw ? { gateway: gw } : {}), ...(oif ? { dev: attrU32(oif) } : {}),
        ...(prio ? { metric: attrU32(prio) } : {}), ...(h.rtm_type === R.RTN_BLACKHOLE ? { type: 'blackhole' as const } : {}),
      });
    }
    return out;
  }

  #ruleBody(r: RuleSpec): (w: Writer) => void {
    const src = r.src === undefined ? undefined : parseCidr(r.src, 'rule.src');
    const dst = r.dst === undefined ? undefined : parseCidr(r.dst, 'rule.dst');
    if (src && dst && src.family !== dst.family) throw new ConfigError('rule.dst', `family differs from ${r.src ?? ''}`);
    const family = src?.family ?? dst?.family ?? AF_INET;
    const alen = family === AF_INET ? 4 : 16;
    const table = r.action === 'blackhole' ? 0 : r.action.table;
    return (w) => {
      encodeFibRuleHdr(w, { family, dst_len: dst?.prefix ?? 0, src_len: src?.prefix ?? 0, tos: 0, table: table < 256 ? table : 0, action: r.action === 'blackhole' ? R.FR_ACT_BLACKHOLE : R.FR_ACT_TO_TBL, flags: 0 });
      putAttrU32(w, R.FRA_PRIORITY, r.priority);
      if (r.action !== 'blackhole') putAttrU32(w, R.FRA_TABLE, table);
      if (src) putAttr(w, R.FRA_SRC, src.addr.subarray(0, alen));
      if (dst) putAttr(w, R.FRA_DST, dst.addr.subarray(0, alen));
      if (r.iif !== undefined) putAttrString(w, R.FRA_IIFNAME, r.iif);
    };
  }

  /** `ip rule add priority P [from SRC] [to DST] [iif DEV] lookup T | blackhole`; EEXIST is fine. */
  async addRule(r: RuleSpec): Promise<void> {
    try { await this.#conn.ack(R.RTM_NEWRULE, NLM_F_CREATE | NLM_F_EXCL, this.#ruleBody(r)); } catch (e) {
      const err = xfrmError(e, 'add', { kind: 'other', text: `rule priority ${r.priority}` });
      if (!(err instanceof XfrmExistsError)) throw err;
    }
  }

  async deleteRule(r: RuleSpec): Promise<void> {
    try { await this.#conn.ack(R.RTM_DELRULE, 0, this.#ruleBody(r)); } catch (e) { throw xfrmError(e, 'delete', { kind: 'other', text: `rule priority ${r.priority}` }); }
  }

  /** Rules of one family at these priorities, with their selectors (`ip rule show`, filtered here). */
  async listRules(family: number, priorities: readonly number[]): Promise<RuleSpec[]> {
    const rules = await this.#conn.dump(R.RTM_GETRULE, (w) => { encodeFibRuleHdr(w, { family, dst_len: 0, src_len: 0, tos: 0, table: 0, action: 0, flags: 0 }); });
    const out: RuleSpec[] = [];
    for (const m of rules) {
      if (m.hdr.nlmsg_type !== R.RTM_NEWRULE) continue;
      const h = decodeFibRuleHdr(new Reader(m.payload, 0, FIB_RULE_HDR_SIZE));
      const attrs = parseAttrs(m.payload.subarray(FIB_RULE_HDR_SIZE));
      const prio = attrs.find((a) => a.type === R.FRA_PRIORITY);
      if (h.family !== family || !prio || !priorities.includes(attrU32(prio))) continue;
      const cidr = (type: number, len: number): string | undefined => {
        const a = attrs.find((x) => x.type === type);
        if (!a) return undefined;
        const b = new Uint8Array(16); b.set(a.data.subarray(0, 16));
        return `${addressText(b, family)}/${len}`;
      };
      const src = cidr(R.FRA_SRC, h.src_len); const dst = cidr(R.FRA_DST, h.dst_len);
      const iif = attrs.find((a) => a.type === R.FRA_IIFNAME); const tbl = attrs.find((a) => a.type === R.FRA_TABLE);
      out.push({
        priority: attrU32(prio), ...(src ? { src } : {}), ...(dst ? { dst } : {}), ...(iif ? { iif: attrString(iif) } : {}),
        action: h.action === R.FR_ACT_BLACKHOLE ? 'blackhole' : { table: tbl ? attrU32(tbl) : h.table },
      });
    }
    return out;
  }

  /** `ip rule add priority 220 table 220` (strongSwan's rule); EEXIST is fine, so it is idempotent. */
  async ensureRule(family: number = AF_INET, table: number = R.STRONGSWAN_ROUTING_TABLE, priority: number = R.STRONGSWAN_ROUTING_TABLE_PRIO): Promise<void> {
    const rules = await this.#conn.dump(R.RTM_GETRULE, (w) => { encodeFibRuleHdr(w, { family, dst_len: 0, src_len: 0, tos: 0, table: 0, action: 0, flags: 0 }); });
    for (const m of rules) {
      if (m.hdr.nlmsg_type !== R.RTM_NEWRULE) continue;
      const h = decodeFibRuleHdr(new Reader(m.payload, 0, FIB_RULE_HDR_SIZE));
      const attrs = parseAttrs(m.payload.subarray(FIB_RULE_HDR_SIZE));
      const prio = attrs.find((a) => a.type === R.FRA_PRIORITY);
      const tbl = attrs.find((a) => a.type === R.FRA_TABLE);
      if (h.family === family && prio && attrU32(prio) === priority && (tbl ? attrU32(tbl) : h.table) === table) return;
    }
    try {
      await this.#conn.ack(R.RTM_NEWRULE, NLM_F_CREATE | NLM_F_EXCL, (w) => {
        encodeFibRuleHdr(w, { family, dst_len: 0, src_len: 0, tos: 0, table: table < 256 ? table : 0, action: R.FR_ACT_TO_TBL, flags: 0 });
        putAttrU32(w, R.FRA_PRIORITY, priority);
        putAttrU32(w, R.FRA_TABLE, table);
      });
    } catch (e) {
      const err = xfrmError(e, 'add', { kind: 'other', text: `rule priority ${priority} table ${table}` });
      // Another process (or a concurrent call) added it between our dump and our add: it exists.
      if (err instanceof XfrmExistsError) return;
      throw err;
    }
  }
}
