// Netlink framing and request/response matching over a fake transport: alignment, nested
// attributes, multipart dumps, ACK/NLMSG_ERROR → errno name, sequence matching, timeouts,
// interrupted dumps, batching (include/uapi/linux/netlink.h; Documentation/userspace-api/netlink/intro.rst).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writer } from '../../../src/common/bytes.js';
import { ManualClock } from '../../../src/common/time.js';
import { parseAttrs, putAttr, putAttrU32, putAttrWith, putAttrString, attrString, attrU32 } from '../../../src/xfrm/netlink/attr.js';
import { NetlinkConnection, decodeNlmsgerr } from '../../../src/xfrm/netlink/connection.js';
import { NLM_F_DUMP_INTR, NLM_F_MULTI, NLM_F_ACK_TLVS } from '../../../src/xfrm/netlink/constants.js';
import { errnoName } from '../../../src/xfrm/netlink/errno.js';
import { NetlinkErrnoError } from '../../../src/xfrm/netlink/errors.js';
import { buildNlmsg, splitNlmsgs, type NlMessage } from '../../../src/xfrm/netlink/nlmsghdr.js';
import { FakeTransport, PORT, ack, concatDatagram, done, reply } from './fake-transport.js';

test('attributes: nla_len excludes padding, next attribute starts 4-aligned', () => {
  const w = new Writer();
  putAttr(w, 1, Uint8Array.of(0xaa));            // len 5, padded to 8
  putAttrU32(w, 2, 0x01020304);                 // len 8
  const b = w.finish();
  assert.equal(b.length, 16);
  assert.deepEqual([...b.subarray(0, 8)], [5, 0, 1, 0, 0xaa, 0, 0, 0]);
  const attrs = parseAttrs(b);
  assert.equal(attrs.length, 2);
  assert.deepEqual([...attrs[0]!.data], [0xaa]);
  assert.equal(attrU32(attrs[1]!), 0x01020304);
});

test('attributes: nested (IFLA_LINKINFO style) lengths cover the nest, inner attrs parse', () => {
  const w = new Writer();
  putAttrWith(w, 18, (li) => { putAttrString(li, 1, 'xfrm'); putAttrWith(li, 2, (d) => { putAttrU32(d, 2, 42); }); });
  const [outer] = parseAttrs(w.finish());
  assert.equal(outer!.type, 18);
  const inner = parseAttrs(outer!.data);
  assert.equal(attrString(inner[0]!), 'xfrm');
  assert.equal(attrU32(parseAttrs(inner[1]!.data)[0]!), 42);
});

test('attributes: an nla_len past the buffer is a ParseError, not a RangeError', () => {
  assert.throws(() => parseAttrs(Uint8Array.of(64, 0, 1, 0, 0, 0, 0, 0)), { code: 'ERR_NETLINK_ATTR_LENGTH' });
  assert.throws(() => parseAttrs(Uint8Array.of(2, 0, 1, 0)), { code: 'ERR_NETLINK_ATTR_LENGTH' });
});

test('messages: several per datagram, each at NLMSG_ALIGN; bad nlmsg_len rejected', () => {
  const a = buildNlmsg(0x10, 5, 1, 0, (w) => { w.u8(7); });   // 17 bytes, like iproute2 FLUSHSA
  const b = buildNlmsg(0x11, 5, 2, 0, (w) => { w.u32(9); });
  assert.equal(a.length, 17);
  const ms = splitNlmsgs(concatDatagram(a, b));
  assert.deepEqual(ms.map((m) => [m.hdr.nlmsg_type, m.hdr.nlmsg_seq, m.payload.length]), [[0x10, 1, 1], [0x11, 2, 4]]);
  const bad = a.slice(); bad[0] = 200;
  assert.throws(() => splitNlmsgs(bad), { code: 'ERR_NETLINK_LENGTH' });
});

test('errno names come from the platform table: EEXIST, ENOENT, EINVAL, EPROTONOSUPPORT', () => {
  assert.equal(errnoName(-17), 'EEXIST');
  assert.equal(errnoName(2), 'ENOENT');
  assert.equal(errnoName(22), 'EINVAL');
  assert.equal(errnoName(93), 'EPROTONOSUPPORT');
  assert.equal(errnoName(95), 'EOPNOTSUPP');
  assert.equal(errnoName(11), 'EAGAIN');
});

test('ack(): zero-errno NLMSG_ERROR resolves; negative errno rejects with its name', async () => {
  const t = new FakeTransport((req) => [ack(req, req.hdr.nlmsg_type === 0x10 ? 0 : 17)]);
  const c = new NetlinkConnection(t);
  await c.ack(0x10, 0, () => {});
  await assert.rejects(c.ack(0x13, 0, () => {}), (e: unknown) => e instanceof NetlinkErrnoError && e.errnoName === 'EEXIST' && e.errno === 17);
});

test('ack(): requests carry our port id and increasing sequence numbers', async () => {
  const t = new FakeTransport();
  const c = new NetlinkConnection(t);
  await Promise.all([c.ack(0x10, 0, () => {}), c.ack(0x10, 0, () => {})]);
  const [m1, m2] = t.sent.map((d) => splitNlmsgs(d)[0]!);
  assert.equal(m1!.hdr.nlmsg_pid, PORT);
  assert.equal(m2!.hdr.nlmsg_seq, m1!.hdr.nlmsg_seq + 1);
  assert.equal(m1!.hdr.nlmsg_flags, 5); // NLM_F_REQUEST | NLM_F_ACK
});

test('replies for another sequence number or port are not taken as ours; they go to the event listener', async () => {
  const events: number[] = [];
  const t = new FakeTransport((req) => {
    const stray = ack({ ...req, hdr: { ...req.hdr, nlmsg_seq: req.hdr.nlmsg_seq + 1000 } });
    const foreign = reply(req, 0x18, new Uint8Array(4)); new DataView(foreign.buffer).setUint32(12, 999, true);
    return [stray, foreign, ack(req)];
  });
  const c = new NetlinkConnection(t);
  c.onEvent((m) => events.push(m.hdr.nlmsg_type));
  await c.ack(0x10, 0, () => {});
  assert.deepEqual(events, [2, 0x18]);
});

test('dump(): collects NLM_F_MULTI parts across datagrams until NLMSG_DONE', async () => {
  const t = new FakeTransport((req) => [
    concatDatagram(reply(req, 0x10, Uint8Array.of(1, 0, 0, 0), NLM_F_MULTI), reply(req, 0x10, Uint8Array.of(2, 0, 0, 0), NLM_F_MULTI)),
    concatDatagram(reply(req, 0x10, Uint8Array.of(3, 0, 0, 0), NLM_F_MULTI), done(req)),
  ]);
  const c = new NetlinkConnection(t);
  const msgs = await c.dump(0x12, () => {});
  assert.deepEqual(msgs.map((m) => m.payload[0]), [1, 2, 3]);
  assert.equal(splitNlmsgs(t.sent[0]!)[0]!.hdr.nlmsg_flags, 0x301); // REQUEST | DUMP
});

test('dump(): NLM_F_DUMP_INTR repeats the dump; an error mid-dump rejects', async () => {
  let n = 0;
  const t = new FakeTransport((req) => {
    n++;
    const flags = n === 1 ? NLM_F_MULTI | NLM_F_DUMP_INTR : NLM_F_MULTI;
    return [concatDatagram(reply(req, 0x10, Uint8Array.of(n, 0, 0, 0), flags), done(req))];
  });
  const c = new NetlinkConnection(t);
  const msgs = await c.dump(0x12, () => {});
  assert.equal(n, 2);
  assert.deepEqual(msgs.map((m) => m.payload[0]), [2]);
  const t2 = new FakeTransport((req) => [concatDatagram(reply(req, 0x10, new Uint8Array(4), NLM_F_MULTI), ack(req, 1))]);
  await assert.rejects(new NetlinkConnection(t2).dump(0x12, () => {}), { code: 'ERR_NETLINK_ERRNO' });
});

test('timeouts: a request without an answer fails after timeoutMs, late answers are ignored', async () => {
  const clock = new ManualClock();
  const t = new FakeTransport(() => []);
  const c = new NetlinkConnection(t, { clock, timeoutMs: 100 });
  const p = c.ack(0x10, 0, () => {});
  clock.advance(99);
  clock.advance(1);
  await assert.rejects(p, { code: 'ERR_NETLINK_TIMEOUT' });
  t.inject(ack(splitNlmsgs(t.sent[0]!)[0]!)); // late: no crash, no double settle
});

test('socket errors (ENOBUFS overflow) fail every outstanding request; close() fails later ones', async () => {
  const t = new FakeTransport(() => []);
  const c = new NetlinkConnection(t);
  const p = c.ack(0x10, 0, () => {});
  t.fail(new Error('ENOBUFS'));
  await assert.rejects(p, /ENOBUFS/);
  c.close();
  assert.equal(t.closed, true);
  await assert.rejects(c.ack(0x10, 0, () => {}), { code: 'ERR_NETLINK_CLOSED' });
});

test('ackBatch(): many requests in one datagram without NLM_F_ACK, closed by an NLMSG_NOOP barrier; one result per request', async () => {
  // Kernel behaviour (netlink_rcv_skb): errors are always reported, success only with NLM_F_ACK.
  const t = new FakeTransport((req) => (req.payload[0] === 2 ? [ack(req, 17)] : req.hdr.nlmsg_flags & 4 ? [ack(req)] : []));
  const c = new NetlinkConnection(t);
  const res = await c.ackBatch([1, 2, 3].map((v) => ({ type: 0x13, body: (w: Writer) => { w.u8(v); } })));
  assert.equal(t.sent.length, 1);
  const ms = splitNlmsgs(t.sent[0]!);
  assert.deepEqual(ms.map((m) => [m.hdr.nlmsg_type, m.hdr.nlmsg_flags]), [[0x13, 1], [0x13, 1], [0x13, 1], [1, 5]]);
  assert.deepEqual(res.map((e) => (e as NetlinkErrnoError | null)?.errnoName ?? null), [null, 'EEXIST', null]);
});

test('ackBatch(): splits into datagrams below the size limit', async () => {
  const t = new FakeTransport();
  const c = new NetlinkConnection(t);
  await c.ackBatch(Array.from({ length: 10 }, () => ({ type: 0x13, body: (w: Writer) => { w.zeros(100); } })), { maxDatagram: 300 });
  assert.equal(t.sent.length, 5);
});

test('ackBatch(): never more than maxInFlight requests unanswered (ACKs would overflow the receive buffer: ENOBUFS)', async () => {
  // A kernel that holds its ACKs until the test releases them.
  const held: NlMessage[] = [];
  const t = new FakeTransport((req) => { held.push(req); return []; });
  const c = new NetlinkConnection(t);
  const p = c.ackBatch(Array.from({ length: 1000 }, () => ({ type: 0x13, body: (w: Writer) => { w.zeros(8); } })), { maxInFlight: 50 });
  let acked = 0;
  while (acked < 1000) {
    await new Promise((r) => setImmediate(r));
    const unanswered = held.filter((m) => m.hdr.nlmsg_type !== 1).length;
    assert.ok(unanswered <= 50, `${unanswered} unanswered`);
    const batch = held.splice(0);
    if (!batch.length) continue;
    t.inject(concatDatagram(...batch.filter((m) => m.hdr.nlmsg_flags & 4).map((m) => ack(m))));
    acked += batch.filter((m) => m.hdr.nlmsg_type !== 1).length;
  }
  const res = await p;
  assert.equal(res.filter((e) => e).length, 0);
});

test('extended ACK text (NLMSGERR_ATTR_MSG) is surfaced with the errno', () => {
  const req = splitNlmsgs(buildNlmsg(0x10, 5, 9, PORT, (w) => { w.zeros(8); }))[0]!;
  const body = new Writer();
  body.u32le((-22) >>> 0);
  body.u32le(16).u16le(0x10).u16le(5).u32le(9).u32le(PORT);
  putAttrString(body, 1, 'Invalid key length');
  const m = buildNlmsg(2, 0x100 | NLM_F_ACK_TLVS, 9, PORT, (w) => { w.bytes(body.finish()); });
  void req;
  const e = decodeNlmsgerr(splitNlmsgs(m)[0]!);
  assert.equal(e.error, -22);
  assert.equal(e.extack, 'Invalid key length');
});
