// Each kernel struct encodes to exactly sizeof(struct …) as in include/uapi/linux/xfrm.h (x86_64),
// and decodes back to the same value. Why: a size off by one shifts every later field and the
// kernel answers EINVAL (or worse, accepts garbage).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Reader, Writer } from '../../../src/common/bytes.js';
import { SecretBytes } from '../../../src/common/secret.js';
import * as A from '../../../src/xfrm/structs/aevent-id.js';
import * as Al from '../../../src/xfrm/structs/algo.js';
import * as E from '../../../src/xfrm/structs/encap-tmpl.js';
import * as Id from '../../../src/xfrm/structs/id.js';
import * as Lc from '../../../src/xfrm/structs/lifetime-cfg.js';
import * as Lu from '../../../src/xfrm/structs/lifetime-cur.js';
import * as M from '../../../src/xfrm/structs/mark.js';
import * as Re from '../../../src/xfrm/structs/replay-state-esn.js';
import * as Rs from '../../../src/xfrm/structs/replay-state.js';
import * as S from '../../../src/xfrm/structs/selector.js';
import * as St from '../../../src/xfrm/structs/stats.js';
import * as Ua from '../../../src/xfrm/structs/user-acquire.js';
import * as Ue from '../../../src/xfrm/structs/user-expire.js';
import * as Um from '../../../src/xfrm/structs/user-mapping.js';
import * as Up from '../../../src/xfrm/structs/user-polexpire.js';
import * as Ut from '../../../src/xfrm/structs/user-tmpl.js';
import * as Pi from '../../../src/xfrm/structs/userpolicy-id.js';
import * as P from '../../../src/xfrm/structs/userpolicy-info.js';
import * as Pt from '../../../src/xfrm/structs/userpolicy-type.js';
import * as F from '../../../src/xfrm/structs/usersa-flush.js';
import * as Si from '../../../src/xfrm/structs/usersa-id.js';
import * as Sa from '../../../src/xfrm/structs/usersa-info.js';
import * as Sp from '../../../src/xfrm/structs/userspi-info.js';
import { IFINFOMSG_SIZE, encodeIfinfomsg, decodeIfinfomsg } from '../../../src/xfrm/rtnl/ifinfomsg.js';
import { RTMSG_SIZE, encodeRtmsg, decodeRtmsg } from '../../../src/xfrm/rtnl/rtmsg.js';
import { FIB_RULE_HDR_SIZE, encodeFibRuleHdr, decodeFibRuleHdr } from '../../../src/xfrm/rtnl/fib-rule-hdr.js';
import { NLMSG_HDRLEN, encodeNlmsghdr, decodeNlmsghdr } from '../../../src/xfrm/netlink/nlmsghdr.js';
import { addressBytes, addressText } from '../../../src/xfrm/structs/address.js';

// Distinct non-zero values so a swapped or misplaced field shows up.
const addr = (n: number): Uint8Array => Uint8Array.from({ length: 16 }, (_, i) => (n + i) & 0xff);
const sel: S.XfrmSelector = { daddr: addr(1), saddr: addr(2), dport: 443, dport_mask: 0xffff, sport: 1024, sport_mask: 0xff00, family: 10, prefixlen_d: 64, prefixlen_s: 48, proto: 6, ifindex: -3, user: 1000 };
const id: Id.XfrmId = { daddr: addr(3), spi: 0xc0ffee01, proto: 50 };
const lft: Lc.XfrmLifetimeCfg = { soft_byte_limit: 1n, hard_byte_limit: 2n, soft_packet_limit: 3n, hard_packet_limit: 4n, soft_add_expires_seconds: 5n, hard_add_expires_seconds: 6n, soft_use_expires_seconds: 7n, hard_use_expires_seconds: 0xffff_ffff_ffff_fff8n };
const cur: Lu.XfrmLifetimeCur = { bytes: 11n, packets: 12n, add_time: 13n, use_time: 14n };
const stats: St.XfrmStats = { replay_window: 21, replay: 22, integrity_failed: 23 };
const sa: Sa.XfrmUsersaInfo = { sel, id, saddr: addr(4), lft, curlft: cur, stats, seq: 31, reqid: 32, family: 2, mode: 1, replay_window: 33, flags: 0x80 };
const pol: P.XfrmUserpolicyInfo = { sel, lft, curlft: cur, priority: 41, index: 42, dir: 2, action: 1, flags: 3, share: 1 };
const tmpl: Ut.XfrmUserTmpl = { id, family: 2, saddr: addr(5), reqid: 51, mode: 1, share: 2, optional: 1, aalgos: 52, ealgos: 53, calgos: 54 };
const usid: Si.XfrmUsersaId = { daddr: addr(6), spi: 0x1234, family: 10, proto: 51 };

interface Case { name: string; size: number; value: unknown; enc: (w: Writer, v: never) => void; dec: (r: Reader) => unknown }
const CASES: Case[] = [
  { name: 'nlmsghdr', size: NLMSG_HDRLEN, value: { nlmsg_len: 1, nlmsg_type: 2, nlmsg_flags: 3, nlmsg_seq: 4, nlmsg_pid: 5 }, enc: encodeNlmsghdr, dec: decodeNlmsghdr },
  { name: 'xfrm_selector', size: S.XFRM_SELECTOR_SIZE, value: sel, enc: S.encodeXfrmSelector, dec: S.decodeXfrmSelector },
  { name: 'xfrm_id', size: Id.XFRM_ID_SIZE, value: id, enc: Id.encodeXfrmId, dec: Id.decodeXfrmId },
  { name: 'xfrm_lifetime_cfg', size: Lc.XFRM_LIFETIME_CFG_SIZE, value: lft, enc: Lc.encodeXfrmLifetimeCfg, dec: Lc.decodeXfrmLifetimeCfg },
  { name: 'xfrm_lifetime_cur', size: Lu.XFRM_LIFETIME_CUR_SIZE, value: cur, enc: Lu.encodeXfrmLifetimeCur, dec: Lu.decodeXfrmLifetimeCur },
  { name: 'xfrm_stats', size: St.XFRM_STATS_SIZE, value: stats, enc: St.encodeXfrmStats, dec: St.decodeXfrmStats },
  { name: 'xfrm_usersa_info', size: Sa.XFRM_USERSA_INFO_SIZE, value: sa, enc: Sa.encodeXfrmUsersaInfo, dec: Sa.decodeXfrmUsersaInfo },
  { name: 'xfrm_userpolicy_info', size: P.XFRM_USERPOLICY_INFO_SIZE, value: pol, enc: P.encodeXfrmUserpolicyInfo, dec: P.decodeXfrmUserpolicyInfo },
  { name: 'xfrm_user_tmpl', size: Ut.XFRM_USER_TMPL_SIZE, value: tmpl, enc: Ut.encodeXfrmUserTmpl, dec: Ut.decodeXfrmUserTmpl },
  { name: 'xfrm_encap_tmpl', size: E.XFRM_ENCAP_TMPL_SIZE, value: { encap_type: 2, encap_sport: 4500, encap_dport: 4501, encap_oa: addr(7) }, enc: E.encodeXfrmEncapTmpl, dec: E.decodeXfrmEncapTmpl },
  { name: 'xfrm_mark', size: M.XFRM_MARK_SIZE, value: { v: 1, m: 0xffffffff }, enc: M.encodeXfrmMark, dec: M.decodeXfrmMark },
  { name: 'xfrm_replay_state', size: Rs.XFRM_REPLAY_STATE_SIZE, value: { oseq: 1, seq: 2, bitmap: 3 }, enc: Rs.encodeXfrmReplayState, dec: Rs.decodeXfrmReplayState },
  { name: 'xfrm_replay_state_esn (no bitmap)', size: Re.XFRM_REPLAY_STATE_ESN_SIZE, value: { bmp_len: 4, oseq: 1, seq: 2, oseq_hi: 3, seq_hi: 4, replay_window: 128, bmp: [] }, enc: Re.encodeXfrmReplayStateEsn, dec: Re.decodeXfrmReplayStateEsn },
  { name: 'xfrm_replay_state_esn (bitmap)', size: Re.XFRM_REPLAY_STATE_ESN_SIZE + 8, value: { bmp_len: 2, oseq: 1, seq: 2, oseq_hi: 3, seq_hi: 4, replay_window: 64, bmp: [5, 6] }, enc: Re.encodeXfrmReplayStateEsn, dec: Re.decodeXfrmReplayStateEsn },
  { name: 'xfrm_userspi_info', size: Sp.XFRM_USERSPI_INFO_SIZE, value: { info: sa, min: 0x100, max: 0x200 }, enc: Sp.encodeXfrmUserspiInfo, dec: Sp.decodeXfrmUserspiInfo },
  { name: 'xfrm_usersa_id', size: Si.XFRM_USERSA_ID_SIZE, value: usid, enc: Si.encodeXfrmUsersaId, dec: Si.decodeXfrmUsersaId },
  { name: 'xfrm_userpolicy_id', size: Pi.XFRM_USERPOLICY_ID_SIZE, value: { sel, index: 9, dir: 1 }, enc: Pi.encodeXfrmUserpolicyId, dec: Pi.decodeXfrmUserpolicyId },
  { name: 'xfrm_userpolicy_type', size: Pt.XFRM_USERPOLICY_TYPE_SIZE, value: { type: 1 }, enc: Pt.encodeXfrmUserpolicyType, dec: Pt.decodeXfrmUserpolicyType },
  { name: 'xfrm_user_expire', size: Ue.XFRM_USER_EXPIRE_SIZE, value: { state: sa, hard: 1 }, enc: Ue.encodeXfrmUserExpire, dec: Ue.decodeXfrmUserExpire },
  { name: 'xfrm_user_polexpire', size: Up.XFRM_USER_POLEXPIRE_SIZE, value: { pol, hard: 0 }, enc: Up.encodeXfrmUserPolexpire, dec: Up.decodeXfrmUserPolexpire },
  { name: 'xfrm_user_acquire', size: Ua.XFRM_USER_ACQUIRE_SIZE, value: { id, saddr: addr(8), sel, policy: pol, aalgos: 1, ealgos: 2, calgos: 3, seq: 4 }, enc: Ua.encodeXfrmUserAcquire, dec: Ua.decodeXfrmUserAcquire },
  { name: 'xfrm_aevent_id', size: A.XFRM_AEVENT_ID_SIZE, value: { sa_id: usid, saddr: addr(9), flags: 6, reqid: 7 }, enc: A.encodeXfrmAeventId, dec: A.decodeXfrmAeventId },
  { name: 'xfrm_usersa_flush', size: F.XFRM_USERSA_FLUSH_SIZE, value: { proto: 50 }, enc: F.encodeXfrmUsersaFlush, dec: F.decodeXfrmUsersaFlush },
  { name: 'xfrm_user_mapping', size: Um.XFRM_USER_MAPPING_SIZE, value: { id: usid, reqid: 3, old_saddr: addr(10), new_saddr: addr(11), old_sport: 4500, new_sport: 31337 }, enc: Um.encodeXfrmUserMapping, dec: Um.decodeXfrmUserMapping },
  { name: 'ifinfomsg', size: IFINFOMSG_SIZE, value: { ifi_family: 0, ifi_type: 1, ifi_index: 7, ifi_flags: 1, ifi_change: 1 }, enc: encodeIfinfomsg, dec: decodeIfinfomsg },
  { name: 'rtmsg', size: RTMSG_SIZE, value: { rtm_family: 2, rtm_dst_len: 16, rtm_src_len: 0, rtm_tos: 0, rtm_table: 220, rtm_protocol: 4, rtm_scope: 0, rtm_type: 1, rtm_flags: 0 }, enc: encodeRtmsg, dec: decodeRtmsg },
  { name: 'fib_rule_hdr', size: FIB_RULE_HDR_SIZE, value: { family: 2, dst_len: 0, src_len: 0, tos: 0, table: 220, action: 1, flags: 0 }, enc: encodeFibRuleHdr, dec: decodeFibRuleHdr },
];

for (const c of CASES) {
  test(`struct ${c.name} is ${c.size} bytes and round-trips`, () => {
    const w = new Writer();
    (c.enc as (w: Writer, v: unknown) => void)(w, c.value);
    assert.equal(w.length, c.size);
    const bytes = w.finish();
    const r = new Reader(bytes);
    assert.deepEqual(c.dec(r), c.value);
    assert.equal(r.remaining, 0);
  });
}

test('xfrm_algo family: sizes 68/72/72 plus the key, alg_key_len in bits, key kept secret', () => {
  const key = new SecretBytes(Uint8Array.from({ length: 20 }, (_, i) => i));
  const w = new Writer();
  Al.encodeXfrmAlgoAead(w, { alg_name: 'rfc4106(gcm(aes))', alg_key_len: 160, alg_icv_len: 128, alg_key: key });
  assert.equal(w.length, Al.XFRM_ALGO_AEAD_SIZE + 20);
  const back = Al.decodeXfrmAlgoAead(new Reader(w.finish()));
  assert.equal(back.alg_name, 'rfc4106(gcm(aes))');
  assert.deepEqual(back.alg_key.expose(), key.expose());
  assert.equal(JSON.stringify(back), '{"alg_name":"rfc4106(gcm(aes))","alg_key_len":160,"alg_icv_len":128,"alg_key":"[redacted]"}');
  const w2 = new Writer(); Al.encodeXfrmAlgo(w2, { alg_name: 'cbc(aes)', alg_key_len: 128, alg_key: new SecretBytes(new Uint8Array(16)) });
  assert.equal(w2.length, Al.XFRM_ALGO_SIZE + 16);
  const w3 = new Writer(); Al.encodeXfrmAlgoAuth(w3, { alg_name: 'hmac(sha256)', alg_key_len: 256, alg_trunc_len: 128, alg_key: new SecretBytes(new Uint8Array(32)) });
  assert.equal(w3.length, Al.XFRM_ALGO_AUTH_SIZE + 32);
});

test('xfrm_algo rejects a key length the bytes cannot back (truncated kernel message)', () => {
  const w = new Writer(); Al.encodeXfrmAlgo(w, { alg_name: 'cbc(aes)', alg_key_len: 256, alg_key: new SecretBytes(new Uint8Array(16)) });
  assert.throws(() => Al.decodeXfrmAlgo(new Reader(w.finish())), { code: 'ERR_XFRM_ALGO_KEY' });
});

test('xfrm_address_t: IPv4 in the first 4 bytes, IPv6 in all 16, text round-trips (RFC 5952 form)', () => {
  assert.deepEqual([...addressBytes('192.0.2.1')], [192, 0, 2, 1, ...Array<number>(12).fill(0)]);
  for (const ip of ['2001:db8::1', '::', '2001:db8:0:1:1:1:1:1', 'fe80::1:2', '::ffff:c000:201'])
    assert.equal(addressText(addressBytes(ip), 10), ip);
  assert.equal(addressText(addressBytes('::ffff:192.0.2.1'), 10), '::ffff:c000:201');
});
