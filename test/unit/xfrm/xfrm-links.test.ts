// XfrmLinks (src/xfrm/rtnl/xfrm-links.ts) over a fake kernel: the RTM_NEWADDR request of
// `ip addr replace 169.254.10.2/30 dev <7>` byte for byte, IFLA_IFALIAS of `ip link set dev <7>
// alias kipsec:to-aws-1`, and the parse of an RTM_NEWLINK dump entry of kind "xfrm" as the kernel's
// xfrmi_fill_info writes it (IFLA_XFRM_LINK, IFLA_XFRM_IF_ID). Why: a wrong nest or family byte is
// silently another interface or no address; the netns lane checks the same against a kernel.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Reader, Writer, toHex } from '../../../src/common/bytes.js';
import { attrString, parseAttrs, putAttrString, putAttrU32, putAttrWith } from '../../../src/xfrm/netlink/attr.js';
import type { NlMessage } from '../../../src/xfrm/netlink/nlmsghdr.js';
import * as R from '../../../src/xfrm/rtnl/constants.js';
import { IFADDRMSG_SIZE, decodeIfaddrmsg, encodeIfaddrmsg } from '../../../src/xfrm/rtnl/ifaddrmsg.js';
import { encodeIfinfomsg } from '../../../src/xfrm/rtnl/ifinfomsg.js';
import { IFLA_IFALIAS, RTM_NEWADDR, XfrmLinks } from '../../../src/xfrm/rtnl/xfrm-links.js';
import { FakeTransport, ack, concatDatagram, done, reply } from './fake-transport.js';

test('struct ifaddrmsg is 8 bytes: family, prefixlen, flags, scope, then a host-order u32 index', () => {
  const w = new Writer();
  encodeIfaddrmsg(w, { ifa_family: 2, ifa_prefixlen: 30, ifa_flags: 0, ifa_scope: 0, ifa_index: 7 });
  const b = w.finish();
  assert.equal(b.length, IFADDRMSG_SIZE);
  assert.equal(toHex(b), '021e000007000000');
  assert.deepEqual(decodeIfaddrmsg(new Reader(b, 0, IFADDRMSG_SIZE)), { ifa_family: 2, ifa_prefixlen: 30, ifa_flags: 0, ifa_scope: 0, ifa_index: 7 });
});

function kernel(dump: (req: NlMessage) => Uint8Array[] = () => []): { t: FakeTransport; reqs: NlMessage[] } {
  const reqs: NlMessage[] = [];
  const t = new FakeTransport((m) => {
    reqs.push({ hdr: m.hdr, payload: m.payload.slice() });
    if (m.hdr.nlmsg_type === R.RTM_GETLINK) return [concatDatagram(...dump(m), done(m))];
    return [ack(m)];
  });
  return { t, reqs };
}

test('addAddress = `ip addr replace 169.254.10.2/30 dev 7`: RTM_NEWADDR, CREATE|REPLACE, IFA_LOCAL and IFA_ADDRESS both the address', async () => {
  const { t, reqs } = kernel();
  await new XfrmLinks(t).addAddress(7, '169.254.10.2/30');
  const m = reqs[0]!;
  assert.equal(m.hdr.nlmsg_type, RTM_NEWADDR);
  assert.equal(m.hdr.nlmsg_flags, 0x1 | 0x4 | 0x400 | 0x100); // REQUEST|ACK|CREATE|REPLACE
  // ifaddrmsg, then IFA_LOCAL (type 2) and IFA_ADDRESS (type 1), each 4+4 bytes.
  assert.equal(toHex(m.payload), '021e000007000000' + '08000200a9fe0a02' + '08000100a9fe0a02');
});

test('setAlias = `ip link set dev 7 alias kipsec:to-aws-1`: RTM_NEWLINK on the index with IFLA_IFALIAS', async () => {
  const { t, reqs } = kernel();
  await new XfrmLinks(t).setAlias(7, 'kipsec:to-aws-1');
  const m = reqs[0]!;
  assert.equal(m.hdr.nlmsg_type, R.RTM_NEWLINK);
  const attrs = parseAttrs(m.payload.subarray(16));
  assert.deepEqual(attrs.map((a) => [a.type, attrString(a)]), [[IFLA_IFALIAS, 'kipsec:to-aws-1']]);
});

test('list: only links of kind xfrm, with IFLA_XFRM_IF_ID, IFLA_XFRM_LINK, MTU, IFF_UP and the alias', async () => {
  const link = (req: NlMessage, index: number, name: string, kind: string, alias?: string): Uint8Array => {
    const w = new Writer();
    encodeIfinfomsg(w, { ifi_family: 0, ifi_type: 0xfffe, ifi_index: index, ifi_flags: R.IFF_UP, ifi_change: 0 });
    putAttrString(w, R.IFLA_IFNAME, name);
    putAttrU32(w, R.IFLA_MTU, 1446);
    if (alias) putAttrString(w, IFLA_IFALIAS, alias);
    putAttrWith(w, R.IFLA_LINKINFO, (li) => {
      putAttrString(li, R.IFLA_INFO_KIND, kind);
      putAttrWith(li, R.IFLA_INFO_DATA, (d) => { putAttrU32(d, R.IFLA_XFRM_LINK, 2); putAttrU32(d, R.IFLA_XFRM_IF_ID, 41); });
    });
    return reply(req, R.RTM_NEWLINK, w.finish(), 2);
  };
  const { t } = kernel((m) => [link(m, 5, 'eth0', 'veth'), link(m, 9, 'xfrm41', 'xfrm', 'kipsec:to-aws-1')]);
  assert.deepEqual(await new XfrmLinks(t).list(), [{ index: 9, name: 'xfrm41', mtu: 1446, up: true, ifId: 41, link: 2, alias: 'kipsec:to-aws-1' }]);
});
