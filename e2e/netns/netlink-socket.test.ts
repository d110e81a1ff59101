// The addon's netlink socket (native/kipsec_native.c) against the host kernel: what the XFRM and
// route clients rely on, and the failure modes that crashed processes with the npm `netlink`
// binding it replaced (a socket closed inside its own read callback; a JS exception or a
// process exit while datagrams are arriving). Scenarios that change XFRM state or must die run
// in a fresh namespace, re-executing this file there (see e2e/lib/scenario.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { XFRMNLGRP_POLICY, XFRM_MSG_GETPOLICY, XFRM_MSG_NEWPOLICY } from '../../src/xfrm/constants.js';
import { NETLINK_XFRM, NLMSG_DONE, NLMSG_ERROR, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST } from '../../src/xfrm/netlink/constants.js';
import { NetlinkSocketError } from '../../src/xfrm/netlink/errors.js';
import { buildNlmsg, splitNlmsgs } from '../../src/xfrm/netlink/nlmsghdr.js';
import { RawNetlinkTransport } from '../../src/xfrm/netlink/raw-transport.js';
import { loadNative, type NetlinkHandle } from '../../src/xfrm/native.js';
import { Netns } from '../lib/netns.js';
import { runScenario, scenarioChild } from '../lib/scenario.js';

const SELF = fileURLToPath(import.meta.url);

/** A request the kernel always answers with NLMSG_ERROR: an empty GETPOLICY lacks its body (EINVAL). */
const badRequest = (seq: number, pid: number): Uint8Array => buildNlmsg(XFRM_MSG_GETPOLICY, NLM_F_REQUEST | NLM_F_ACK, seq, pid, () => { /* no body */ });

/** `ip -batch` lines adding n policies 10.a.b.0/24 → 10.200.0.0/16 (each one XFRM_MSG_NEWPOLICY event). */
function policyBatch(n: number, from = 0): string {
  const lines: string[] = [];
  for (let i = from; i < from + n; i++) lines.push(`xfrm policy add src 10.${1 + (i >> 8)}.${i & 255}.0/24 dst 10.200.0.0/16 dir out priority 100`);
  return lines.join('\n') + '\n';
}

function ipBatch(text: string): void {
  const f = join(tmpdir(), `kt-nl-${process.pid}.batch`);
  writeFileSync(f, text);
  execFileSync('ip', ['-batch', f], { timeout: 60_000 });
}

/** How many of this process's descriptors are netlink sockets (their inodes listed in /proc/net/netlink). */
function netlinkFds(): number {
  const netlink = new Set(readFileSync('/proc/net/netlink', 'utf8').trim().split('\n').slice(1).map((l) => l.trim().split(/\s+/).pop()));
  let n = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    try { if (netlink.has(/^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/self/fd/${fd}`))?.[1])) n++; } catch { /* closed meanwhile */ }
  }
  return n;
}

const scenarios: Record<string, () => Promise<unknown>> = {
  // A dump of 600 policies spans many datagrams; the reader closes the socket on the first wake-up.
  async closeInsideRead() {
    ipBatch(policyBatch(600));
    const native = loadNative();
    let wakeups = 0, datagrams = 0;
    const h: NetlinkHandle = native.netlinkOpen(NETLINK_XFRM, 0, 0, (_err, ds) => {
      wakeups++;
      datagrams += ds.length;
      native.netlinkClose(h);
      native.netlinkClose(h); // idempotent
    });
    native.netlinkRef(h, true);
    native.netlinkSend(h, buildNlmsg(XFRM_MSG_GETPOLICY, NLM_F_REQUEST | NLM_F_DUMP, 1, native.netlinkPort(h), () => { /* empty body: every policy */ }));
    await sleep(500);
    let sendAfter = '';
    try { native.netlinkSend(h, badRequest(2, 0)); } catch (e) { sendAfter = (e as { code?: string }).code ?? String(e); }
    return { wakeups, datagrams, sendAfter };
  },

  // A JS throw in the reader must surface as Node's uncaught exception (with its message), not
  // std::terminate or a signal; this child is expected to exit 1.
  async throwInRead() {
    const native = loadNative();
    const h = native.netlinkOpen(NETLINK_XFRM, 0, 0, () => { throw new Error('reader-threw-on-purpose'); });
    native.netlinkRef(h, true);
    native.netlinkSend(h, badRequest(1, native.netlinkPort(h)));
    await sleep(10_000);
    return 'still alive';
  },

  // With an uncaughtException handler the process lives on and the socket keeps delivering.
  async throwInReadHandled() {
    const caught: string[] = [];
    process.on('uncaughtException', (e) => caught.push(e.message));
    const native = loadNative();
    let calls = 0;
    const h = native.netlinkOpen(NETLINK_XFRM, 0, 0, () => { calls++; throw new Error(`reader-threw-${calls}`); });
    native.netlinkRef(h, true);
    native.netlinkSend(h, badRequest(1, native.netlinkPort(h)));
    await sleep(300);
    native.netlinkSend(h, badRequest(2, native.netlinkPort(h)));
    await sleep(300);
    native.netlinkClose(h);
    return { caught, calls };
  },

  // A receive buffer overrun (the kernel drops multicast messages) is reported as ENOBUFS, and
  // the socket keeps reading afterwards.
  async overrun() {
    const errors: Error[] = [];
    let events = 0;
    const t = new RawNetlinkTransport(NETLINK_XFRM, { recvBufferSize: 4096 });
    t.setReceiver((d) => { events += splitNlmsgs(d).filter((m) => m.hdr.nlmsg_type === XFRM_MSG_NEWPOLICY).length; }, (e) => errors.push(e));
    t.addMembership(XFRMNLGRP_POLICY);
    ipBatch(policyBatch(1000)); // the event loop is blocked: nobody reads while the kernel sends
    await sleep(300);
    const afterOverrun = events;
    ipBatch(policyBatch(1, 5000));
    await sleep(300);
    t.close();
    return { errors: errors.map((e) => (e instanceof NetlinkSocketError ? e.errnoName : e.message)), afterOverrun, afterMore: events };
  },
  // A dump of 600 policies, read whole.
  async dump() {
    ipBatch(policyBatch(600));
    const t = new RawNetlinkTransport(NETLINK_XFRM);
    t.setRef(true);
    const types: number[] = [];
    let datagrams = 0;
    const done = new Promise<void>((resolve, reject) => t.setReceiver((d) => {
      datagrams++;
      for (const m of splitNlmsgs(d)) { types.push(m.hdr.nlmsg_type); if (m.hdr.nlmsg_type === NLMSG_DONE || m.hdr.nlmsg_type === NLMSG_ERROR) resolve(); }
    }, reject));
    t.send(buildNlmsg(XFRM_MSG_GETPOLICY, NLM_F_REQUEST | NLM_F_DUMP, 9, t.portId, () => { /* empty body: every policy */ }));
    await done;
    t.close();
    return { policies: types.filter((x) => x === XFRM_MSG_NEWPOLICY).length, datagrams, last: types[types.length - 1] };
  },

  // 50 sockets nobody closes or references: their finalizers must close them (run with --expose-gc).
  async finalizer() {
    const native = loadNative();
    const gc = (globalThis as { gc?: () => void }).gc;
    if (!gc) throw new Error('run with --expose-gc');
    const before = netlinkFds();
    (() => { for (let i = 0; i < 50; i++) native.netlinkRef(native.netlinkOpen(NETLINK_XFRM, 0, 0, () => { /* none */ }), false); })();
    const open = netlinkFds();
    for (let i = 0; i < 10 && netlinkFds() > before; i++) { gc(); await sleep(50); }
    return { before, open, after: netlinkFds() };
  },
};

/**
 * Events pour in (another process adds policies) while this process ends without closing its
 * socket: Node's teardown must close it quietly. Not a scenarioChild() scenario, because that one
 * ends with process.exit; here the module finishes, the loop has nothing ref'd, and Node tears
 * down while `ip` is still generating events for us. The parent runs it repeatedly.
 */
async function exitWhileEventsArrive(): Promise<void> {
  const events = new RawNetlinkTransport(NETLINK_XFRM);
  let n = 0;
  events.setReceiver(() => { n++; }, () => { /* overruns are fine here */ });
  events.addMembership(XFRMNLGRP_POLICY);
  const f = join(tmpdir(), `kt-nl-${process.pid}.batch`);
  writeFileSync(f, policyBatch(2000) + 'xfrm policy flush\n' + policyBatch(2000));
  spawn('ip', ['-batch', f], { stdio: 'ignore' }).unref();
  const t0 = Date.now();
  while (n === 0 && Date.now() - t0 < 20_000) await sleep(5);
  console.log(JSON.stringify({ eventsBeforeExit: n }));
}

if (process.env['XFRM_SCENARIO'] === 'exitWhileEventsArrive') await exitWhileEventsArrive();
else if (!(await scenarioChild(scenarios))) {
  test('a NETLINK_XFRM socket gets a kernel-chosen port and receives the NLMSG_ERROR answering its request, netlink(7)', async () => {
    const t = new RawNetlinkTransport(NETLINK_XFRM);
    const other = new RawNetlinkTransport(NETLINK_XFRM);
    assert.ok(t.portId > 0);
    assert.notEqual(t.portId, other.portId);
    other.close();
    t.setRef(true);
    const got = new Promise<Uint8Array>((resolve, reject) => t.setReceiver(resolve, reject));
    t.send(badRequest(77, t.portId));
    const msgs = splitNlmsgs(await got);
    t.close();
    assert.equal(msgs.length, 1);
    assert.equal(msgs[0]?.hdr.nlmsg_type, NLMSG_ERROR);
    assert.equal(msgs[0]?.hdr.nlmsg_seq, 77);
    assert.equal(msgs[0]?.hdr.nlmsg_pid, t.portId);
  });

  test('a multi-part dump arrives whole and in order, ending in NLMSG_DONE, netlink(7) NLM_F_MULTI', async (t) => {
    const r = await runScenario(await Netns.create(t, 'nldump'), SELF, 'dump') as { policies: number; datagrams: number; last: number };
    assert.equal(r.policies, 600);
    assert.ok(r.datagrams > 1, `a 600-policy dump spans several datagrams (got ${r.datagrams})`);
    assert.equal(r.last, NLMSG_DONE);
  });

  test('closing the socket inside its own read callback ends delivery there; sends after close are ERR_NETLINK_CLOSED', async (t) => {
    const r = await runScenario(await Netns.create(t, 'nlclose'), SELF, 'closeInsideRead') as { wakeups: number; datagrams: number; sendAfter: string };
    assert.equal(r.wakeups, 1, 'no read callback after close');
    assert.ok(r.datagrams >= 1);
    assert.equal(r.sendAfter, 'ERR_NETLINK_CLOSED');
  });

  test('a throw in the read callback is the process\'s uncaughtException (exit 1 with the message), never an abort', async (t) => {
    const ns = await Netns.create(t, 'nlthrow');
    const r = await ns.run('env', ['XFRM_SCENARIO=throwInRead', process.execPath, '--import', 'tsx', SELF], { check: false, timeoutMs: 60_000 });
    assert.equal(r.code, 1, `exit ${r.code}; stderr: ${r.stderr}`);
    assert.match(r.stderr, /reader-threw-on-purpose/);
    assert.doesNotMatch(r.stderr, /terminate called|Napi::Error/);
  });

  test('with an uncaughtException handler the process lives on and the socket keeps delivering', async (t) => {
    const r = await runScenario(await Netns.create(t, 'nlthrow2'), SELF, 'throwInReadHandled') as { caught: string[]; calls: number };
    assert.deepEqual(r.caught, ['reader-threw-1', 'reader-threw-2']);
    assert.equal(r.calls, 2);
  });

  test('a process whose unref\'d event socket is still receiving ends cleanly (exit 0, 8 runs): teardown closes the socket', async (t) => {
    for (let i = 0; i < 8; i++) {
      const ns = await Netns.create(t, `nlexit${i}`);
      const r = await ns.run('env', ['XFRM_SCENARIO=exitWhileEventsArrive', process.execPath, '--import', 'tsx', SELF], { check: false, timeoutMs: 60_000 });
      assert.equal(r.code, 0, `run ${i}: exit ${r.code}; stderr: ${r.stderr}`);
      const { eventsBeforeExit } = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as { eventsBeforeExit?: number };
      assert.ok((eventsBeforeExit ?? 0) > 0, `run ${i}: events were arriving (${r.stdout})`);
      await ns.destroy();
    }
  });

  test('a receive buffer overrun is NetlinkSocketError ENOBUFS, and reading goes on after it', async (t) => {
    const r = await runScenario(await Netns.create(t, 'nlenobufs'), SELF, 'overrun') as { errors: string[]; afterOverrun: number; afterMore: number };
    assert.ok(r.errors.includes('ENOBUFS'), `errors: ${JSON.stringify(r.errors)}`);
    assert.ok(r.afterOverrun < 1000, `some of the 1000 events were dropped (got ${r.afterOverrun})`);
    assert.equal(r.afterMore, r.afterOverrun + 1, 'the event after the overrun still arrives');
  });

  test('an unclosed socket whose handle is collected is closed by its finalizer (no descriptor leak)', () => {
    const out = execFileSync(process.execPath, ['--expose-gc', '--import', 'tsx', SELF], { env: { ...process.env, XFRM_SCENARIO: 'finalizer' }, encoding: 'utf8', timeout: 60_000 });
    const r = JSON.parse(out.trim().split('\n').pop() ?? 'null') as { before: number; open: number; after: number };
    assert.equal(r.open, r.before + 50);
    assert.equal(r.after, r.before, `sockets: before ${r.before}, with 50 open ${r.open}, after gc ${r.after}`);
  });

  test('bad arguments are TypeErrors naming the call; a bad protocol is EPROTONOSUPPORT', () => {
    const native = loadNative();
    assert.throws(() => native.netlinkSend({} as NetlinkHandle, new Uint8Array(16)), { name: 'TypeError', message: /netlinkSend\(socket, datagram\): the first argument must be a socket/ });
    const h = native.netlinkOpen(NETLINK_XFRM, 0, 0, () => { /* none */ });
    assert.throws(() => native.netlinkSend(h, 'x' as unknown as Uint8Array), { name: 'TypeError', message: /datagram must be a Uint8Array/ });
    assert.throws(() => native.netlinkAddMembership(h, -1), { name: 'TypeError' });
    native.netlinkClose(h);
    assert.throws(() => new RawNetlinkTransport(31), (e: unknown) => e instanceof NetlinkSocketError && e.errnoName === 'EPROTONOSUPPORT' && /protocol 31/.test(e.message));
  });
}

