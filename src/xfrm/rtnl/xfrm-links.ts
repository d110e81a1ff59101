// What route-based tunnels need of rtnetlink beyond RtnlClient (client.ts): every XFRM interface
// with its if_id, underlying link and alias in one dump, the alias that marks an interface as
// kipsec's (`ip link set DEV alias kipsec:<tunnel>`), and interface addresses (the inside /30 of a
// cloud tunnel: `ip addr add 169.254.10.2/30 dev xfrm42`). Its own NETLINK_ROUTE socket.
import { Reader, type Writer } from '../../common/bytes.js';
import { AF_INET, AF_UNSPEC } from '../constants.js';
import { xfrmError } from '../errors.js';
import { attrString, attrU32, parseAttrs, putAttr, putAttrString } from '../netlink/attr.js';
import { NetlinkConnection } from '../netlink/connection.js';
import { NETLINK_ROUTE, NLM_F_CREATE, NLM_F_REPLACE } from '../netlink/constants.js';
import { RawNetlinkTransport } from '../netlink/raw-transport.js';
import type { NetlinkTransport } from '../netlink/transport.js';
import { addressText } from '../structs/address.js';
import { parseCidr } from '../selector.js';
import * as R from './constants.js';
import { decodeIfaddrmsg, encodeIfaddrmsg, IFADDRMSG_SIZE } from './ifaddrmsg.js';
import { decodeIfinfomsg, encodeIfinfomsg, IFINFOMSG_SIZE } from './ifinfomsg.js';

// include/uapi/linux/rtnetlink.h, if_addr.h, if_link.h
export const RTM_NEWADDR = 20;
export const RTM_DELADDR = 21;
export const RTM_GETADDR = 22;
export const IFA_ADDRESS = 1;
export const IFA_LOCAL = 2;
export const IFLA_IFALIAS = 20;
/** RT_SCOPE_UNIVERSE: what `ip addr add` gives a non-loopback address. */
const RT_SCOPE_UNIVERSE = 0;

/** One XFRM interface as `ip -d link show type xfrm` shows it. */
export interface XfrmLinkState {
  readonly index: number;
  readonly name: string;
  readonly mtu: number;
  readonly up: boolean;
  /** IFLA_XFRM_IF_ID; 0 when the kernel reports none. */
  readonly ifId: number;
  /** IFLA_XFRM_LINK: the underlying device's index, 0 for none. */
  readonly link: number;
  readonly alias?: string;
}

export interface LinkAddress { readonly index: number; readonly cidr: string }

export class XfrmLinks {
  readonly #conn: NetlinkConnection;

  constructor(transport: NetlinkTransport, timeoutMs?: number) {
    this.#conn = new NetlinkConnection(transport, timeoutMs ? { timeoutMs } : {});
  }

  static open(): XfrmLinks { return new XfrmLinks(new RawNetlinkTransport(NETLINK_ROUTE)); }

  close(): void { this.#conn.close(); }

  /** Every interface of kind "xfrm" (RTM_GETLINK dump; IFLA_LINKINFO / IFLA_INFO_DATA). */
  async list(): Promise<XfrmLinkState[]> {
    const msgs = await this.#conn.dump(R.RTM_GETLINK, (w) => { encodeIfinfomsg(w, { ifi_family: AF_UNSPEC, ifi_type: 0, ifi_index: 0, ifi_flags: 0, ifi_change: 0 }); })
      .catch((e: unknown) => { throw xfrmError(e, 'list', { kind: 'other', text: 'links' }); });
    const out: XfrmLinkState[] = [];
    for (const m of msgs) {
      if (m.hdr.nlmsg_type !== R.RTM_NEWLINK) continue;
      const hdr = decodeIfinfomsg(new Reader(m.payload, 0, IFINFOMSG_SIZE));
      let name = ''; let mtu = 0; let alias: string | undefined; let xfrm = false; let ifId = 0; let link = 0;
      for (const a of parseAttrs(m.payload.subarray(IFINFOMSG_SIZE))) {
        if (a.type === R.IFLA_IFNAME) name = attrString(a);
        else if (a.type === R.IFLA_MTU) mtu = attrU32(a);
        else if (a.type === IFLA_IFALIAS) alias = attrString(a);
        else if (a.type === R.IFLA_LINKINFO) {
          const info = parseAttrs(a.data);
          const kind = info.find((x) => x.type === R.IFLA_INFO_KIND);
          xfrm = kind !== undefined && attrString(kind) === 'xfrm';
          const data = info.find((x) => x.type === R.IFLA_INFO_DATA);
          for (const d of data ? parseAttrs(data.data) : []) {
            if (d.type === R.IFLA_XFRM_IF_ID) ifId = attrU32(d);
            else if (d.type === R.IFLA_XFRM_LINK) link = attrU32(d);
          }
        }
      }
      if (xfrm) out.push({ index: hdr.ifi_index, name, mtu, up: (hdr.ifi_flags & R.IFF_UP) !== 0, ifId, link, ...(alias ? { alias } : {}) });
    }
    return out;
  }

  /** `ip link set DEV alias TEXT` (IFLA_IFALIAS). */
  async setAlias(index: number, alias: string): Promise<void> {
    try {
      await this.#conn.ack(R.RTM_NEWLINK, 0, (w) => {
        encodeIfinfomsg(w, { ifi_family: AF_UNSPEC, ifi_type: 0, ifi_index: index, ifi_flags: 0, ifi_change: 0 });
        putAttrString(w, IFLA_IFALIAS, alias);
      });
    } catch (e) { throw xfrmError(e, 'set alias of', { kind: 'other', text: `link ${index}` }); }
  }

  #addrBody(index: number, cidr: string): (w: Writer) => void {
    const c = parseCidr(cidr, 'xfrmInterface.insideAddress');
    const alen = c.family === AF_INET ? 4 : 16;
    return (w) => {
      encodeIfaddrmsg(w, { ifa_family: c.family, ifa_prefixlen: c.prefix, ifa_flags: 0, ifa_scope: RT_SCOPE_UNIVERSE, ifa_index: index });
      putAttr(w, IFA_LOCAL, c.addr.subarray(0, alen));
      putAttr(w, IFA_ADDRESS, c.addr.subarray(0, alen));
    };
  }

  /** `ip addr replace CIDR dev INDEX`: idempotent, so a restarted agent can re-apply it. */
  async addAddress(index: number, cidr: string): Promise<void> {
    try { await this.#conn.ack(RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE, this.#addrBody(index, cidr)); } catch (e) { throw xfrmError(e, 'add', { kind: 'other', text: `address ${cidr} on link ${index}` }); }
  }

  async deleteAddress(index: number, cidr: string): Promise<void> {
    try { await this.#conn.ack(RTM_DELADDR, 0, this.#addrBody(index, cidr)); } catch (e) { throw xfrmError(e, 'delete', { kind: 'other', text: `address ${cidr} on link ${index}` }); }
  }

  /** Addresses of one link (RTM_GETADDR dump, filtered here), as CIDRs with the host part. */
  async addresses(index: number): Promise<LinkAddress[]> {
    const msgs = await this.#conn.dump(RTM_GETADDR, (w) => { encodeIfaddrmsg(w, { ifa_family: AF_UNSPEC, ifa_prefixlen: 0, ifa_flags: 0, ifa_scope: 0, ifa_index: 0 }); })
      .catch((e: unknown) => { throw xfrmError(e, 'list', { kind: 'other', text: 'addresses' }); });
    const out: LinkAddress[] = [];
    for (const m of msgs) {
      if (m.hdr.nlmsg_type !== RTM_NEWADDR) continue;
      const h = decodeIfaddrmsg(new Reader(m.payload, 0, IFADDRMSG_SIZE));
      if (h.ifa_index !== index) continue;
      const attrs = parseAttrs(m.payload.subarray(IFADDRMSG_SIZE));
      const a = attrs.find((x) => x.type === IFA_LOCAL) ?? attrs.find((x) => x.type === IFA_ADDRESS);
      if (!a) continue;
      const b = new Uint8Array(16); b.set(a.data.subarray(0, 16));
      out.push({ index, cidr: `${addressText(b, h.ifa_family)}/${h.ifa_prefixlen}` });
    }
    return out;
  }
}
