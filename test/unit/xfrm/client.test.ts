// XfrmClient behaviour over a fake kernel: typed errors naming the SA/policy, multi-step install
// with rollback (DESIGN.md §9: never half-installed state), spec ↔ wire round trips, events.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writer } from '../../../src/common/bytes.js';
import { SecretBytes } from '../../../src/common/secret.js';
import { XfrmClient } from '../../../src/xfrm/client.js';
import * as C from '../../../src/xfrm/constants.js';
import { XfrmExistsError, XfrmInstallError, XfrmInvalidError, XfrmNotFoundError, XfrmUnsupportedError } from '../../../src/xfrm/errors.js';
import { decodeXfrmEvent } from '../../../src/xfrm/events.js';
import { decodeXfrmMessage, encodeXfrmPayload } from '../../../src/xfrm/messages.js';
import { buildNlmsg, splitNlmsgs, type NlMessage } from '../../../src/xfrm/netlink/nlmsghdr.js';
import { decodeSa, encodeSa, type SaSpec } from '../../../src/xfrm/sa.js';
import { decodePolicy, encodePolicy, type PolicySpec } from '../../../src/xfrm/policy.js';
import { addressBytes } from '../../../src/xfrm/structs/address.js';
import { FakeTransport, ack, reply, concatDatagram, done } from './fake-transport.js';

const key = (n: number, len: number): SecretBytes => new SecretBytes(new Uint8Array(len).fill(n));
const inSa: SaSpec = { src: '192.0.2.2', dst: '192.0.2.1', spi: 0xc0000001, reqid: 1, aead: { name: 'rfc4106(gcm(aes))', key: key(1, 36), icvBits: 128 }, replayWindow: 64, esn: true };
const outSa: SaSpec = { ...inSa, src: '192.0.2.1', dst: '192.0.2.2', spi: 0xc0000002 };
const pol = (dir: 'in' | 'out' | 'fwd'): PolicySpec => {
  const [l, r] = dir === 'out' ? ['10.1.0.0/16', '10.2.0.0/16'] : ['10.2.0.0/16', '10.1.0.0/16'];
  const [ts, td] = dir === 'out' ? ['192.0.2.1', '192.0.2.2'] : ['192.0.2.2', '192.0.2.1'];
  return { selector: { src: l, dst: r }, dir, priority: 100, templates: [{ src: ts, dst: td, reqid: 1 }] };
};

/** A tiny in-memory kernel: SAs by (dst,spi,proto), policies by (selector,dir); failure injection by predicate. */
class FakeKernel {
  sas = new Map<string, Uint8Array>();
  policies = new Map<string, Uint8Array>();
  failOn: (m: NlMessage) => number = () => 0;
  log: string[] = [];
  readonly transport = new FakeTransport((m) => this.handle(m));

  static saKey(daddr: Uint8Array, spi: number, proto: number): string { return `${Buffer.from(daddr).toString('hex')}/${spi}/${proto}`; }
  static polKey(selBytes: Uint8Array, dir: number): string { return `${Buffer.from(selBytes).toString('hex')}/${dir}`; }

  handle(m: NlMessage): Uint8Array[] {
    const errno = this.failOn(m);
    const t = m.hdr.nlmsg_type;
    if (t !== 1) this.log.push(C.XFRM_MSG_NAMES[t] ?? String(t)); // NLMSG_NOOP: ackBatch's barrier, not a request
    if (errno) return [ack(m, errno)];
    if (m.hdr.nlmsg_flags & 0x300) {
      const all = t === C.XFRM_MSG_GETSA ? [...this.sas.values()].map((p) => reply(m, C.XFRM_MSG_NEWSA, p, 2)) : [...this.policies.values()].map((p) => reply(m, C.XFRM_MSG_NEWPOLICY, p, 2));
      return [concatDatagram(...all, done(m))];
    }
    const d = decodeXfrmMessage(t, m.payload);
    switch (d.body.struct) {
      case 'xfrm_usersa_info': {
        const k = FakeKernel.saKey(d.body.value.id.daddr, d.body.value.id.spi, d.body.value.id.proto);
        if (t === C.XFRM_MSG_NEWSA && this.sas.has(k)) return [ack(m, 17)];
        if (t === C.XFRM_MSG_UPDSA && !this.sas.has(k)) return [ack(m, 2)];
        this.sas.set(k, m.payload.slice()); return [ack(m)];
      }
      case 'xfrm_usersa_id': {
        const k = FakeKernel.saKey(d.body.value.daddr, d.body.value.spi, d.body.value.proto);
        const sa = this.sas.get(k);
        if (!sa) return [ack(m, 3)]; // ESRCH, as the kernel answers for a missing SA
        if (t === C.XFRM_MSG_DELSA) { this.sas.delete(k); return [ack(m)]; }
        return [reply(m, C.XFRM_MSG_NEWSA, sa)];
      }
      case 'xfrm_userpolicy_info': {
        const k = FakeKernel.polKey(m.payload.subarray(0, 56), d.body.value.dir);
        if (t === C.XFRM_MSG_NEWPOLICY && this.policies.has(k)) return [ack(m, 17)];
        this.policies.set(k, m.payload.slice()); return [ack(m)];
      }
      case 'xfrm_userpolicy_id': {
        const k = FakeKernel.polKey(m.payload.subarray(0, 56), d.body.value.dir);
        const p = this.policies.get(k);
        if (!p) return [ack(m, 2)];
        if (t === C.XFRM_MSG_DELPOLICY) { this.policies.delete(k); return [ack(m)]; }
        return [reply(m, C.XFRM_MSG_NEWPOLICY, p)];
      }
      default:
        return [ack(m)];
    }
  }
}

test('addSa then getSa/listSas returns the same SA (keys, ESN, replay window, reqid)', async () => {
  const k = new FakeKernel();
  const c = new XfrmClient(k.transport);
  await c.addSa(outSa);
  const got = await c.getSa({ dst: outSa.dst, spi: outSa.spi });
  assert.equal(got.src, '192.0.2.1'); assert.equal(got.spi, 0xc0000002); assert.equal(got.esn, true); assert.equal(got.replayWindow, 64);
  assert.deepEqual(got.aead?.key.expose(), outSa.aead!.key.expose());
  assert.equal((await c.listSas()).length, 1);
});

test('an outbound ESN SA (replay window 0 asked) is encoded with XFRMA_REPLAY_ESN_VAL window 1, which Linux accepts; a non-ESN one keeps 0 (xfrm_init_replay: EINVAL for ESN with window 0)', () => {
  const esnAttr = (spec: SaSpec) => { const a = encodeSa(spec).attrs.find((x) => x.kind === 'XFRMA_REPLAY_ESN_VAL'); return a?.kind === 'XFRMA_REPLAY_ESN_VAL' ? a : undefined; };
  const esnOut = encodeSa({ ...outSa, replayWindow: 0 });
  assert.equal(esnOut.info.replay_window, 0, 'the u8 field stays 0 with an ESN state');
  assert.deepEqual(esnAttr({ ...outSa, replayWindow: 0 })?.value, { bmp_len: 1, oseq: 0, seq: 0, oseq_hi: 0, seq_hi: 0, replay_window: 1, bmp: [] });
  assert.equal(esnAttr({ ...outSa, replayWindow: 64 })?.value.replay_window, 64, 'a window that is asked for is kept');
  const plainOut = encodeSa({ ...outSa, esn: false, replayWindow: 0 });
  assert.equal(plainOut.info.replay_window, 0);
  assert.equal(esnAttr({ ...outSa, esn: false, replayWindow: 0 }), undefined, 'no ESN state without ESN');
});

test('EEXIST on add names the SA: proto, SPI, src → dst', async () => {
  const k = new FakeKernel();
  const c = new XfrmClient(k.transport);
  await c.addSa(outSa);
  await assert.rejects(c.addSa(outSa), (e: unknown) => {
    assert.ok(e instanceof XfrmExistsError);
    assert.equal(e.code, 'ERR_XFRM_EXISTS');
    assert.match(e.message, /add SA esp spi 0xc0000002 192\.0\.2\.1 → 192\.0\.2\.2: EEXIST/);
    assert.deepEqual(e.target, { kind: 'sa', dst: '192.0.2.2', spi: 0xc0000002, src: '192.0.2.1' });
    return true;
  });
});

test('ESRCH/ENOENT → XfrmNotFoundError; EINVAL → XfrmInvalidError; EPROTONOSUPPORT/ENOSYS → XfrmUnsupportedError, each naming the object', async () => {
  const k = new FakeKernel();
  const c = new XfrmClient(k.transport);
  await assert.rejects(c.deleteSa({ dst: '192.0.2.9', spi: 5 }), XfrmNotFoundError);
  await assert.rejects(c.deletePolicy({ selector: { src: '10.1.0.0/16', dst: '10.2.0.0/16' }, dir: 'out' }),
    (e: unknown) => e instanceof XfrmNotFoundError && /policy 10\.1\.0\.0\/16 → 10\.2\.0\.0\/16 dir out: ENOENT/.test(e.message));
  k.failOn = () => 22;
  await assert.rejects(c.addSa(outSa), (e: unknown) => e instanceof XfrmInvalidError && e.code === 'ERR_XFRM_INVALID');
  k.failOn = () => 93;
  await assert.rejects(c.addSa(outSa), (e: unknown) => e instanceof XfrmUnsupportedError && e.errnoName === 'EPROTONOSUPPORT');
  k.failOn = () => 38;
  await assert.rejects(c.addPolicy(pol('out')), (e: unknown) => e instanceof XfrmUnsupportedError && e.errnoName === 'ENOSYS');
});

test('installChild: inbound SA + outbound SA + out/in/fwd policies, then removeChild leaves nothing', async () => {
  const k = new FakeKernel();
  const c = new XfrmClient(k.transport);
  const child = await c.installChild({ sas: [inSa, outSa], policies: [pol('out'), pol('in'), pol('fwd')] });
  assert.equal(k.sas.size, 2); assert.equal(k.policies.size, 3);
  await c.removeChild(child);
  assert.equal(k.sas.size, 0); assert.equal(k.policies.size, 0);
});

test('installChild failing at the fwd policy rolls back the other four steps, newest first', async () => {
  const k = new FakeKernel();
  const c = new XfrmClient(k.transport);
  k.failOn = (m) => (m.hdr.nlmsg_type === C.XFRM_MSG_NEWPOLICY && m.payload[160] === C.XFRM_POLICY_FWD ? 22 : 0);
  await assert.rejects(c.installChild({ sas: [inSa, outSa], policies: [pol('out'), pol('in'), pol('fwd')] }), (e: unknown) => {
    assert.ok(e instanceof XfrmInstallError);
    assert.equal(e.code, 'ERR_XFRM_INSTALL');
    assert.match(e.message, /install failed at policy 10\.2\.0\.0\/16 → 10\.1\.0\.0\/16 dir fwd: .*EINVAL/);
    assert.equal(e.rolledBack.length, 4);
    assert.match(e.rolledBack[0]!, /dir in/);
    return true;
  });
  assert.equal(k.sas.size, 0); assert.equal(k.policies.size, 0);
  assert.deepEqual(k.log.slice(-4), ['XFRM_MSG_DELPOLICY', 'XFRM_MSG_DELPOLICY', 'XFRM_MSG_DELSA', 'XFRM_MSG_DELSA']);
});

test('installChild failing at the second SA (EEXIST) removes the first and leaves the pre-existing SA alone', async () => {
  const k = new FakeKernel();
  const c = new XfrmClient(k.transport);
  await c.addSa(outSa); // someone else's SA with the same id
  await assert.rejects(c.installChild({ sas: [inSa, outSa], policies: [pol('out')] }), XfrmInstallError);
  assert.equal(k.sas.size, 1);
  assert.ok((await c.getSa({ dst: outSa.dst, spi: outSa.spi })).spi === outSa.spi);
});

test('installChild with replacePolicies restores the policy it replaced when a later step fails', async () => {
  const k = new FakeKernel();
  const c = new XfrmClient(k.transport);
  const trap: PolicySpec = { ...pol('out'), priority: 999 };
  await c.addPolicy(trap);
  // The in policy is new (NEWPOLICY), the out policy replaces the trap (EEXIST, then UPDPOLICY).
  k.failOn = (m) => ((m.hdr.nlmsg_type === C.XFRM_MSG_NEWPOLICY || m.hdr.nlmsg_type === C.XFRM_MSG_UPDPOLICY) && m.payload[160] === C.XFRM_POLICY_IN ? 12 : 0);
  await assert.rejects(c.installChild({ sas: [inSa], policies: [pol('out'), pol('in')], replacePolicies: true }), XfrmInstallError);
  k.failOn = () => 0;
  const back = await c.getPolicy({ selector: trap.selector, dir: 'out' });
  assert.equal(back.priority, 999);
  assert.equal(k.sas.size, 0);
});

test('installChild pipelines: the SAs in one datagram, the policies in the next (2 netlink round trips, not 5)', async () => {
  const k = new FakeKernel();
  const c = new XfrmClient(k.transport);
  const child = await c.installChild({ sas: [inSa, outSa], policies: [pol('out'), pol('in'), pol('fwd')], replacePolicies: true });
  const types = k.transport.sent.map((d) => splitNlmsgs(d).map((m) => C.XFRM_MSG_NAMES[m.hdr.nlmsg_type] ?? String(m.hdr.nlmsg_type)));
  assert.deepEqual(types, [['XFRM_MSG_NEWSA', 'XFRM_MSG_NEWSA', '1'], ['XFRM_MSG_NEWPOLICY', 'XFRM_MSG_NEWPOLICY', 'XFRM_MSG_NEWPOLICY', '1']]);
  k.transport.sent.length = 0;
  await c.removeChild(child);
  assert.equal(k.transport.sent.length, 1, 'removal is one datagram');
  assert.deepEqual(k.log.slice(-5), ['XFRM_MSG_DELPOLICY', 'XFRM_MSG_DELPOLICY', 'XFRM_MSG_DELPOLICY', 'XFRM_MSG_DELSA', 'XFRM_MSG_DELSA'], 'policies before SAs');
  assert.equal(k.sas.size + k.policies.size, 0);
});

test('installChild: a policy failing in the middle of a datagram rolls back the ones after it too (the kernel applied them)', async () => {
  const k = new FakeKernel();
  const c = new XfrmClient(k.transport);
  k.failOn = (m) => (m.hdr.nlmsg_type === C.XFRM_MSG_NEWPOLICY && m.payload[160] === C.XFRM_POLICY_IN ? 22 : 0);
  await assert.rejects(c.installChild({ sas: [inSa, outSa], policies: [pol('out'), pol('in'), pol('fwd')] }), (e: unknown) => {
    assert.ok(e instanceof XfrmInstallError);
    assert.match(e.message, /install failed at policy 10\.2\.0\.0\/16 → 10\.1\.0\.0\/16 dir in: .*EINVAL/);
    assert.equal(e.rolledBack.length, 4); // both SAs, the out and the fwd policy
    return true;
  });
  assert.equal(k.sas.size, 0); assert.equal(k.policies.size, 0);
});

test('installChild replacing an existing policy (EEXIST on NEWPOLICY) falls back to GETPOLICY + UPDPOLICY for that one', async () => {
  const k = new FakeKernel();
  const c = new XfrmClient(k.transport);
  await c.addPolicy({ ...pol('out'), priority: 999 });
  await c.installChild({ sas: [inSa], policies: [pol('out'), pol('in')], replacePolicies: true });
  assert.deepEqual(k.log.slice(-4), ['XFRM_MSG_NEWPOLICY', 'XFRM_MSG_NEWPOLICY', 'XFRM_MSG_GETPOLICY', 'XFRM_MSG_UPDPOLICY']);
  assert.equal((await c.getPolicy({ selector: pol('out').selector, dir: 'out' })).priority, 100);
  assert.equal(k.policies.size, 2);
});

test('installChild uses UPDSA for SPIs from allocSpi (the kernel holds a larval SA)', async () => {
  const k = new FakeKernel();
  const c = new XfrmClient(k.transport);
  await c.addSa(inSa); // stands in for the larval SA
  await c.installChild({ sas: [{ ...inSa, allocated: true }], policies: [] });
  assert.deepEqual(k.log.slice(-1), ['XFRM_MSG_UPDSA']);
});

test('installChild adds the SA (NEWSA) when the larval SA from allocSpi has expired (ESRCH on UPDSA after xfrm_acq_expires), as strongSwan does', async () => {
  // Seen in the VM lane: charon took 33 s to answer IKE_AUTH (first GCM install loading modules),
  // the kernel had dropped our larval SA after 30 s, and UPDSA failed with ESRCH.
  const k = new FakeKernel();
  const c = new XfrmClient(k.transport);
  k.failOn = (m) => (m.hdr.nlmsg_type === C.XFRM_MSG_UPDSA ? 3 : 0);
  const child = await c.installChild({ sas: [{ ...inSa, allocated: true }, outSa], policies: [pol('out')] });
  assert.deepEqual(k.log, ['XFRM_MSG_UPDSA', 'XFRM_MSG_NEWSA', 'XFRM_MSG_NEWSA', 'XFRM_MSG_NEWPOLICY']);
  assert.equal(k.sas.size, 2);
  await c.removeChild(child);
  // Any other UPDSA failure is not papered over, and the install still rolls back.
  k.failOn = (m) => (m.hdr.nlmsg_type === C.XFRM_MSG_UPDSA ? 22 : 0);
  await assert.rejects(c.installChild({ sas: [{ ...inSa, allocated: true }], policies: [] }), (e: unknown) => e instanceof XfrmInstallError && /EINVAL/.test(e.message));
  assert.equal(k.sas.size, 0);
  assert.equal(k.log.filter((x) => x === 'XFRM_MSG_NEWSA').length, 2, 'no NEWSA after EINVAL');
});

test('SaSpec → wire → SaSpec keeps every field (marks, if_id, encap, lifetimes, extra flags, selector)', () => {
  const s: SaSpec = {
    src: '2001:db8::1', dst: '2001:db8::2', spi: 7, proto: 'esp', mode: 'transport', reqid: 3,
    crypt: { name: 'cbc(aes)', key: key(2, 32) }, auth: { name: 'hmac(sha512)', key: key(3, 64), truncBits: 256 },
    encap: { sport: 4500, dport: 4501, oa: '::' }, mark: { value: 1, mask: 0xff }, setMark: { value: 2 }, ifId: 9,
    replayWindow: 1024, esn: false, extraFlags: C.XFRM_SA_XFLAG_OSEQ_MAY_WRAP,
    soft: { bytes: 10n, packets: 20n, addExpiresSec: 30, useExpiresSec: 40 }, hard: { bytes: 11n, addExpiresSec: 60 },
    selector: { src: '2001:db8::1/128', dst: '2001:db8::2/128', proto: 6, dport: 22 },
  };
  const { info, attrs } = encodeSa(s);
  assert.equal(info.replay_window, 0, 'windows > 32 go in XFRMA_REPLAY_ESN_VAL');
  const w = new Writer(); encodeXfrmPayload(w, { struct: 'xfrm_usersa_info', value: info }, attrs);
  const d = decodeXfrmMessage(C.XFRM_MSG_NEWSA, w.finish());
  assert.equal(d.body.struct, 'xfrm_usersa_info');
  if (d.body.struct !== 'xfrm_usersa_info') return;
  const back = decodeSa(d.body.value, d.attrs);
  const { current: _c, stats: _s, ...spec } = back;
  assert.deepEqual(JSON.parse(JSON.stringify(spec, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v))),
    JSON.parse(JSON.stringify(s, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v))));
  assert.deepEqual(back.auth?.key.expose(), s.auth!.key.expose());
});

test('PolicySpec → wire → PolicySpec keeps selector, ports, templates, mark, if_id, action', () => {
  const p: PolicySpec = {
    selector: { src: '10.1.0.0/16', dst: '10.2.0.0/24', proto: 17, sport: 53 }, dir: 'in', action: 'allow', priority: 5,
    templates: [{ src: '192.0.2.2', dst: '192.0.2.1', proto: 'esp', reqid: 4, mode: 'tunnel' }], mark: { value: 3, mask: 0xffffffff }, ifId: 8,
  };
  const { info, attrs } = encodePolicy(p);
  const back = decodePolicy(info, attrs);
  assert.deepEqual(back.selector, p.selector);
  assert.deepEqual(back.templates, p.templates);
  assert.deepEqual(back.mark, p.mark);
  assert.equal(back.ifId, 8);
  assert.equal(back.dir, 'in');
});

test('replay windows: up to 32 in xfrm_usersa_info, above that in XFRMA_REPLAY_ESN_VAL (the kernel clamps the legacy field to 32)', () => {
  assert.equal(encodeSa({ ...outSa, esn: false, replayWindow: 32 }).info.replay_window, 32);
  assert.equal(encodeSa({ ...outSa, esn: false, replayWindow: 32 }).attrs.some((a) => a.kind === 'XFRMA_REPLAY_ESN_VAL'), false);
  const big = encodeSa({ ...outSa, esn: false, replayWindow: 64 });
  assert.equal(big.info.replay_window, 0);
  assert.equal(big.info.flags & C.XFRM_STATE_ESN, 0);
  assert.ok(big.attrs.some((a) => a.kind === 'XFRMA_REPLAY_ESN_VAL'));
});

test('rejects specs the kernel would misread: AEAD plus separate auth, mixed families, SPI out of range', () => {
  assert.throws(() => encodeSa({ ...outSa, auth: { name: 'hmac(sha256)', key: key(1, 32), truncBits: 128 } }), { code: 'ERR_CONFIG' });
  assert.throws(() => encodeSa({ ...outSa, dst: '2001:db8::2' }), { code: 'ERR_CONFIG' });
  assert.throws(() => encodeSa({ ...outSa, spi: 2 ** 32 }), { code: 'ERR_CONFIG' });
  assert.throws(() => encodePolicy({ selector: { src: '10.0.0.0/33', dst: '10.1.0.0/16' }, dir: 'out' }), { code: 'ERR_CONFIG' });
});

test('events: EXPIRE (soft), ACQUIRE with its template, MAPPING decode from kernel-shaped messages', () => {
  const { info, attrs } = encodeSa({ ...outSa, soft: { addExpiresSec: 2 } });
  const exp = buildNlmsg(C.XFRM_MSG_EXPIRE, 0, 0, 0, (w) => { encodeXfrmPayload(w, { struct: 'xfrm_user_expire', value: { state: info, hard: 0 } }, attrs); });
  const e = decodeXfrmEvent(splitNlmsgs(exp)[0]!);
  assert.equal(e.kind, 'expire');
  if (e.kind === 'expire') { assert.equal(e.hard, false); assert.equal(e.sa.spi, outSa.spi); }

  const p = encodePolicy(pol('out'));
  const acq = buildNlmsg(C.XFRM_MSG_ACQUIRE, 0, 0, 0, (w) => {
    encodeXfrmPayload(w, { struct: 'xfrm_user_acquire', value: { id: { daddr: addressBytes('192.0.2.2'), spi: 0, proto: 50 }, saddr: addressBytes('192.0.2.1'), sel: p.info.sel, policy: { ...p.info, index: 0x81 }, aalgos: 0, ealgos: 0, calgos: 0, seq: 77 } }, p.attrs);
  });
  const a = decodeXfrmEvent(splitNlmsgs(acq)[0]!);
  assert.equal(a.kind, 'acquire');
  if (a.kind === 'acquire') {
    assert.equal(a.seq, 77); assert.equal(a.dst, '192.0.2.2'); assert.equal(a.policyIndex, 0x81); assert.equal(a.dir, 'out');
    assert.deepEqual(a.selector, { src: '10.1.0.0/16', dst: '10.2.0.0/16' });
    assert.equal(a.templates[0]?.reqid, 1);
  }

  const map = buildNlmsg(C.XFRM_MSG_MAPPING, 0, 0, 0, (w) => {
    encodeXfrmPayload(w, { struct: 'xfrm_user_mapping', value: { id: { daddr: addressBytes('192.0.2.1'), spi: 9, family: 2, proto: 50 }, reqid: 1, old_saddr: addressBytes('198.51.100.1'), new_saddr: addressBytes('198.51.100.2'), old_sport: 4500, new_sport: 40000 } }, []);
  });
  const mp = decodeXfrmEvent(splitNlmsgs(map)[0]!);
  assert.deepEqual(mp, { kind: 'mapping', dst: '192.0.2.1', spi: 9, reqid: 1, oldSrc: '198.51.100.1', oldSport: 4500, newSrc: '198.51.100.2', newSport: 40000 });
});

test('events(): joins the asked groups on its own socket and reports undecodable messages via onError', () => {
  const req = new FakeKernel();
  const ev = new FakeTransport(() => []);
  const c = new XfrmClient(req.transport, { eventTransport: () => ev });
  const seen: string[] = []; const errs: string[] = [];
  const sub = c.events(['acquire', 'expire', 'mapping'], (e) => seen.push(e.kind));
  sub.onError((e) => errs.push((e as { code?: string }).code ?? e.message));
  assert.deepEqual(ev.groups, [C.XFRMNLGRP_ACQUIRE, C.XFRMNLGRP_EXPIRE, C.XFRMNLGRP_MAPPING]);
  ev.inject(buildNlmsg(C.XFRM_MSG_EXPIRE, 0, 0, 0, (w) => { w.zeros(10); })); // truncated
  const { info, attrs } = encodeSa(outSa);
  ev.inject(buildNlmsg(C.XFRM_MSG_EXPIRE, 0, 0, 0, (w) => { encodeXfrmPayload(w, { struct: 'xfrm_user_expire', value: { state: info, hard: 1 } }, attrs); }));
  assert.deepEqual(errs, ['ERR_XFRM_SHORT']);
  assert.deepEqual(seen, ['expire']);
  sub.close();
  assert.equal(ev.closed, true);
});

test('batched addPolicies: one datagram, per-policy typed errors', async () => {
  const k = new FakeKernel();
  const c = new XfrmClient(k.transport);
  const res = await c.addPolicies([pol('out'), pol('out'), pol('in')]);
  assert.equal(k.transport.sent.length, 1);
  assert.deepEqual(res.map((e) => (e ? (e as XfrmExistsError).code : null)), [null, 'ERR_XFRM_EXISTS', null]);
});
