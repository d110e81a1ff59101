// rtnetlink requests for route-based tunnels and strongSwan-style routes, checked field by field
// over a fake kernel (the real kernel checks are e2e/netns/xfrm-policy.test.ts "routes" and the
// VM ping tests). Why: a wrong nest or table byte is silently a different route or link.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Reader } from '../../../src/common/bytes.js';
import { attrString, attrU32, parseAttrs, putAttr, putAttrU32 } from '../../../src/xfrm/netlink/attr.js';
import type { NlMessage } from '../../../src/xfrm/netlink/nlmsghdr.js';
import { RtnlClient } from '../../../src/xfrm/rtnl/client.js';
import * as R from '../../../src/xfrm/rtnl/constants.js';
import { decodeIfinfomsg, encodeIfinfomsg } from '../../../src/xfrm/rtnl/ifinfomsg.js';
import { decodeRtmsg, encodeRtmsg } from '../../../src/xfrm/rtnl/rtmsg.js';
import { Writer } from '../../../src/common/bytes.js';
import { FakeTransport, ack, reply, concatDatagram, done } from './fake-transport.js';

function linkReply(req: NlMessage, index: number): Uint8Array {
  const w = new Writer(); encodeIfinfomsg(w, { ifi_family: 0, ifi_type: 1, ifi_index: index, ifi_flags: 1, ifi_change: 0 });
  return reply(req, R.RTM_NEWLINK, w.finish());
}

function kernel(): { t: FakeTransport; reqs: NlMessage[] } {
  const reqs: NlMessage[] = [];
  const t = new FakeTransport((m) => {
    reqs.push({ hdr: m.hdr, payload: m.payload.slice() });
    if (m.hdr.nlmsg_type === R.RTM_GETLINK) return [linkReply(m, 7)];
    if (m.hdr.nlmsg_type === R.RTM_GETRULE) return [concatDatagram(done(m))];
    return [ack(m)];
  });
  return { t, reqs };
}

test('addRoute: table 220, proto static, scope universe via a gateway, RTA_DST/PREFSRC/GATEWAY (strongSwan install_routes)', async () => {
  const { t, reqs } = kernel();
  const r = new RtnlClient(t);
  await r.addRoute({ dst: '10.2.0.0/16', src: '10.1.0.1', gateway: '192.0.2.2' });
  const m = reqs[0]!;
  assert.equal(m.hdr.nlmsg_type, R.RTM_NEWROUTE);
  assert.equal(m.hdr.nlmsg_flags, 0x1 | 0x4 | 0x400 | 0x200); // REQUEST|ACK|CREATE|EXCL
  const h = decodeRtmsg(new Reader(m.payload, 0, 12));
  assert.deepEqual([h.rtm_family, h.rtm_dst_len, h.rtm_table, h.rtm_protocol, h.rtm_scope, h.rtm_type], [2, 16, 220, R.RTPROT_STATIC, R.RT_SCOPE_UNIVERSE, R.RTN_UNICAST]);
  const attrs = parseAttrs(m.payload.subarray(12));
  assert.deepEqual(attrs.map((a) => [a.type, [...a.data].join('.')]), [[R.RTA_DST, '10.2.0.0'], [R.RTA_PREFSRC, '10.1.0.1'], [R.RTA_GATEWAY, '192.0.2.2']]);
});

test('addRoute over an interface: RTA_OIF from the name, scope link; tables above 255 go in RTA_TABLE', async () => {
  const { t, reqs } = kernel();
  const r = new RtnlClient(t);
  await r.addRoute({ dst: '10.2.0.0/16', src: '10.1.0.1', dev: 'ipsec0', table: 1000 });
  assert.equal(reqs[0]!.hdr.nlmsg_type, R.RTM_GETLINK);
  const m = reqs[1]!;
  const h = decodeRtmsg(new Reader(m.payload, 0, 12));
  assert.equal(h.rtm_scope, R.RT_SCOPE_LINK);
  assert.equal(h.rtm_table, 252);
  const attrs = parseAttrs(m.payload.subarray(12));
  assert.equal(attrU32(attrs.find((a) => a.type === R.RTA_TABLE)!), 1000);
  assert.equal(attrU32(attrs.find((a) => a.type === R.RTA_OIF)!), 7);
});

test('addXfrmInterface: IFLA_IFNAME + IFLA_LINKINFO{ KIND "xfrm", DATA{ IFLA_XFRM_LINK, IFLA_XFRM_IF_ID } }, up', async () => {
  const { t, reqs } = kernel();
  const r = new RtnlClient(t);
  assert.equal(await r.addXfrmInterface({ name: 'ipsec0', ifId: 0x20, link: 3, up: true }), 7);
  const m = reqs[0]!;
  assert.equal(m.hdr.nlmsg_type, R.RTM_NEWLINK);
  const info = decodeIfinfomsg(new Reader(m.payload, 0, 16));
  assert.deepEqual([info.ifi_flags, info.ifi_change], [R.IFF_UP, R.IFF_UP]);
  const attrs = parseAttrs(m.payload.subarray(16));
  assert.equal(attrString(attrs.find((a) => a.type === R.IFLA_IFNAME)!), 'ipsec0');
  const li = parseAttrs(attrs.find((a) => a.type === R.IFLA_LINKINFO)!.data);
  assert.equal(attrString(li.find((a) => a.type === R.IFLA_INFO_KIND)!), 'xfrm');
  const data = parseAttrs(li.find((a) => a.type === R.IFLA_INFO_DATA)!.data);
  assert.deepEqual(data.map((a) => [a.type, attrU32(a)]), [[R.IFLA_XFRM_LINK, 3], [R.IFLA_XFRM_IF_ID, 0x20]]);
  await assert.rejects(r.addXfrmInterface({ name: 'x', ifId: 0 }), { code: 'ERR_CONFIG' });
});

test('ensureRule adds "priority 220 lookup 220" (FR_ACT_TO_TBL) when no such rule exists', async () => {
  const { t, reqs } = kernel();
  const r = new RtnlClient(t);
  await r.ensureRule();
  const add = reqs.find((m) => m.hdr.nlmsg_type === R.RTM_NEWRULE)!;
  assert.equal(add.payload[4], 220);
  assert.equal(add.payload[7], R.FR_ACT_TO_TBL);
  const attrs = parseAttrs(add.payload.subarray(12));
  assert.deepEqual(attrs.map((a) => [a.type, attrU32(a)]), [[R.FRA_PRIORITY, 220], [R.FRA_TABLE, 220]]);
});

test('addRule "priority 219 from 10.244.2.0/24 to 10.244.1.0/24 blackhole" and "priority 218 … iif kipsec0 lookup main": selectors as FRA_SRC/FRA_DST with their lengths, FR_ACT_BLACKHOLE without a table', async () => {
  const { t, reqs } = kernel();
  const r = new RtnlClient(t);
  await r.addRule({ priority: 219, src: '10.244.2.0/24', dst: '10.244.1.0/24', action: 'blackhole' });
  await r.addRule({ priority: 218, src: '10.244.2.0/24', dst: '10.244.1.0/24', iif: 'kipsec0', action: { table: 254 } });
  const [drop, pass] = reqs.filter((m) => m.hdr.nlmsg_type === R.RTM_NEWRULE);
  assert.deepEqual([...drop!.payload.subarray(0, 8)], [2, 24, 24, 0, 0, 0, 0, R.FR_ACT_BLACKHOLE]);
  const da = parseAttrs(drop!.payload.subarray(12));
  assert.deepEqual(da.map((a) => a.type), [R.FRA_PRIORITY, R.FRA_SRC, R.FRA_DST]);
  assert.deepEqual([...da[1]!.data], [10, 244, 2, 0]);
  assert.equal(pass!.payload[4], 254);
  assert.equal(pass!.payload[7], R.FR_ACT_TO_TBL);
  const pa = parseAttrs(pass!.payload.subarray(12));
  assert.equal(attrString(pa.find((a) => a.type === R.FRA_IIFNAME)!), 'kipsec0');
  assert.equal(attrU32(pa.find((a) => a.type === R.FRA_TABLE)!), 254);
});

test('addRoute type blackhole: RTN_BLACKHOLE, no device or next hop (one given is refused)', async () => {
  const { t, reqs } = kernel();
  const r = new RtnlClient(t);
  await r.addRoute({ dst: '10.244.2.0/24', type: 'blackhole', table: 221, metric: 4096 });
  const add = reqs.find((m) => m.hdr.nlmsg_type === R.RTM_NEWROUTE)!;
  assert.equal(add.payload[7], R.RTN_BLACKHOLE);
  assert.equal(add.payload[4], 221);
  await assert.rejects(r.addRoute({ dst: '10.244.2.0/24', type: 'blackhole', gateway: '192.0.2.1' }), { code: 'ERR_CONFIG' });
});

test('routeGet: RTM_GETROUTE for one address (RTA_DST, /32, no dump) answered with OIF, GATEWAY and PREFSRC, like `ip route get`', async () => {
  const reqs: NlMessage[] = [];
  const t = new FakeTransport((m) => {
    reqs.push({ hdr: m.hdr, payload: m.payload.slice() });
    const w = new Writer();
    encodeRtmsg(w, { rtm_family: 2, rtm_dst_len: 32, rtm_src_len: 0, rtm_tos: 0, rtm_table: 254, rtm_protocol: 0, rtm_scope: 0, rtm_type: R.RTN_UNICAST, rtm_flags: 0x200 });
    putAttrU32(w, R.RTA_TABLE, 254);
    putAttr(w, R.RTA_DST, Uint8Array.of(10, 64, 0, 1));
    putAttrU32(w, R.RTA_OIF, 3);
    putAttr(w, R.RTA_PREFSRC, Uint8Array.of(198, 51, 100, 1));
    putAttr(w, R.RTA_GATEWAY, Uint8Array.of(198, 51, 100, 2));
    return [reply(m, R.RTM_NEWROUTE, w.finish())];
  });
  const r = new RtnlClient(t);
  assert.deepEqual(await r.routeGet('10.64.0.1'), { oif: 3, gateway: '198.51.100.2', prefsrc: '198.51.100.1' });
  const m = reqs[0]!;
  assert.equal(m.hdr.nlmsg_type, R.RTM_GETROUTE);
  assert.equal(m.hdr.nlmsg_flags, 0x1); // REQUEST only: a lookup, not a dump
  const h = decodeRtmsg(new Reader(m.payload, 0, 12));
  assert.deepEqual([h.rtm_family, h.rtm_dst_len], [2, 32]);
  assert.deepEqual(parseAttrs(m.payload.subarray(12)).map((a) => [a.type, [...a.data].join('.')]), [[R.RTA_DST, '10.64.0.1']]);
});
