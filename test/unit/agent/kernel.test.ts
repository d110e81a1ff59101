// The engine's KernelIpsec port on XFRM (fake netlink): stable reqids in SAs and policies, larval
// inbound SAs completed with UPDSA, policies replaced in place (UPDPOLICY), make-before-break
// rekeys (the old pair deleted with keepPolicies leaves policies alone), deferred outbound SA on
// the rekey responder, counters, and policies removed only with the last SA of a reqid.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { XfrmKernel } from '../../../src/agent/kernel.js';
import { SecretBytes } from '../../../src/common/secret.js';
import type { KernelChildSa, KernelSa, TrafficSelector } from '../../../src/ike/ports.js';
import { FakeXfrm, logSink } from './fakes.js';

const STABLE = 0x4b123456;
const ts = (cidr: string): TrafficSelector => { const [a, p] = cidr.split('/'); return { family: 'ipv4', startAddress: a!, endAddress: a!, prefixLength: Number(p), protocol: 0, startPort: 0, endPort: 65535 }; };
const life = { softSec: 3000, hardSec: 3600, softBytes: 0n, hardBytes: 0n, softPackets: 0n, hardPackets: 0n };
const sa = (spi: number, src: string, dst: string): KernelSa => ({ spi, source: src, destination: dst, esn: false, replayWindow: 32, encap: null, lifetimes: life,
  algorithms: { kind: 'aead', name: 'rfc4106(gcm(aes))', key: new SecretBytes(new Uint8Array(36)), icvBits: 128 } });

function child(inSpi: number, outSpi: number, outboundActive = true): KernelChildSa {
  const pol = (direction: 'out' | 'in' | 'fwd') => direction === 'out'
    ? { direction, source: ts('10.1.0.0/24'), destination: ts('10.2.0.0/24'), tunnelSource: '192.0.2.1', tunnelDestination: '192.0.2.2', priority: 100 }
    : { direction, source: ts('10.2.0.0/24'), destination: ts('10.1.0.0/24'), tunnelSource: '192.0.2.2', tunnelDestination: '192.0.2.1', priority: 100 };
  return { peer: 'alpha', child: 'alpha', reqid: 7, mode: 'tunnel', inbound: sa(inSpi, '192.0.2.2', '192.0.2.1'), outbound: sa(outSpi, '192.0.2.1', '192.0.2.2'),
    policies: [pol('out'), pol('in'), pol('fwd')], outboundActive, ifId: null, mark: null };
}

function setup() {
  const xfrm = new FakeXfrm();
  const k = new XfrmKernel({ xfrm, log: logSink().log, reqidOf: () => STABLE, wantsRoutes: () => false });
  return { xfrm, k };
}
const ref = (c: KernelChildSa) => ({ peer: c.peer, child: c.child, reqid: c.reqid, inboundSpi: c.inbound.spi, outboundSpi: c.outbound.spi, local: '192.0.2.1', remote: '192.0.2.2' });

test('install: SPI from the kernel, larval SA completed by UPDSA, SAs and policies carry the stable reqid', async () => {
  const { xfrm, k } = setup();
  const spi = await k.allocSpi({ local: '192.0.2.1', remote: '192.0.2.2', reqid: 7 });
  const c = child(spi, 0xd0000001);
  await k.installChildSa(c);
  assert.deepEqual(xfrm.calls.slice(0, 3), [`allocspi 192.0.2.1`, `updsa ${spi.toString(16)}`, 'addsa d0000001']);
  assert.ok(xfrm.sas.every((s) => s.reqid === STABLE));
  assert.equal(xfrm.policies.length, 3);
  assert.ok(xfrm.policies.every((p) => p.templates?.[0]?.reqid === STABLE && p.templates[0].proto === 'esp'));
  assert.deepEqual(xfrm.policies.find((p) => p.dir === 'out')?.selector, { src: '10.1.0.0/24', dst: '10.2.0.0/24' });
  assert.ok(k.isInboundSpi('192.0.2.1', spi));
  assert.equal(k.engineReqidFor(STABLE), 7, 'acquires are translated back to the engine reqid');
});

test('make-before-break rekey: new pair next to the old, old deleted with keepPolicies, policies stay', async () => {
  const { xfrm, k } = setup();
  const old = child(0xc0000001, 0xd0000001);
  await k.installChildSa(old);
  const next = child(0xc0000002, 0xd0000002);
  await k.installChildSa(next);
  assert.equal(xfrm.sas.length, 4, 'both pairs installed at once');
  await k.deleteChildSa(ref(old), { keepPolicies: true });
  assert.deepEqual(xfrm.sas.map((s) => s.spi).sort(), [0xc0000002, 0xd0000002]);
  assert.equal(xfrm.policies.length, 3);
  await k.deleteChildSa(ref(next), { keepPolicies: false });
  assert.equal(xfrm.sas.length + xfrm.policies.length, 0, 'last child gone: policies removed first, then SAs');
  assert.ok(xfrm.calls.lastIndexOf('delpolicy fwd') < xfrm.calls.lastIndexOf('delsa c0000002'));
});

test('rekey responder: outbound SA added only when activated', async () => {
  const { xfrm, k } = setup();
  const c = child(0xc0000005, 0xd0000005, false);
  await k.installChildSa(c);
  assert.deepEqual(xfrm.sas.map((s) => s.spi), [0xc0000005]);
  await k.updateChildSa(ref(c), { activateOutbound: true });
  assert.deepEqual(xfrm.sas.map((s) => s.spi), [0xc0000005, 0xd0000005]);
});

test('NAT appearing: encapsulation set on both SAs (inbound with swapped ports)', async () => {
  const { xfrm, k } = setup();
  const c = child(0xc0000006, 0xd0000006);
  await k.installChildSa(c);
  await k.updateChildSa(ref(c), { encap: { sourcePort: 4500, destinationPort: 31337 } });
  assert.deepEqual(xfrm.sas.find((s) => s.spi === 0xd0000006)?.encap, { sport: 4500, dport: 31337 });
  assert.deepEqual(xfrm.sas.find((s) => s.spi === 0xc0000006)?.encap, { sport: 31337, dport: 4500 });
  assert.ok(xfrm.sas.every((s) => !('allocated' in s)), 'a moved SA is updated, not completed from a larval one');
});

test('two Child SAs with one inbound SPI on two local addresses are two children: each found, removed, by its own address', async () => {
  const { xfrm, k } = setup();
  const a = child(0xc0000007, 0xd0000007);
  const b = { ...child(0xc0000007, 0xd0000008), peer: 'beta', child: 'beta', inbound: sa(0xc0000007, '192.0.2.2', '192.0.2.9'), outbound: sa(0xd0000008, '192.0.2.9', '192.0.2.2') };
  await k.installChildSa(a); await k.installChildSa(b);
  assert.ok(k.isInboundSpi('192.0.2.1', 0xc0000007) && k.isInboundSpi('192.0.2.9', 0xc0000007));
  await k.deleteChildSa({ ...ref(b), local: '192.0.2.9' }, { keepPolicies: true });
  assert.ok(k.isInboundSpi('192.0.2.1', 0xc0000007) && !k.isInboundSpi('192.0.2.9', 0xc0000007));
  assert.deepEqual(xfrm.sas.map((s) => `${s.dst} ${s.spi.toString(16)}`).sort(), ['192.0.2.1 c0000007', '192.0.2.2 d0000007']);
  await k.updateChildSa(ref(a), { encap: { sourcePort: 4500, destinationPort: 4500 } });
  assert.deepEqual(xfrm.sas.find((s) => s.spi === 0xc0000007)?.encap, { sport: 4500, dport: 4500 }, 'the remaining one still moves');
});

test('counters come from the kernel; lastInbound moves only when inbound bytes grow', async () => {
  let now = 1000;
  const xfrm = new FakeXfrm();
  const k = new XfrmKernel({ xfrm, log: logSink().log, reqidOf: () => STABLE, wantsRoutes: () => false, now: () => now });
  const c = child(0xc0000007, 0xd0000007);
  await k.installChildSa(c);
  assert.equal((await k.queryCounters(ref(c))).lastInboundMs, null);
  const i = xfrm.sas.findIndex((s) => s.spi === 0xc0000007);
  xfrm.sas[i] = { ...xfrm.sas[i]!, current: { bytes: 840n, packets: 10n, add_time: 1n, use_time: 1n } };
  now = 2000;
  const cnt = await k.queryCounters(ref(c));
  assert.deepEqual([cnt.inboundBytes, cnt.inboundPackets, cnt.lastInboundMs], [840n, 10n, 2000]);
  now = 3000;
  assert.equal((await k.queryCounters(ref(c))).lastInboundMs, 2000);
});

test('after lost events (ENOBUFS): a Child SA whose inbound SA is gone counts as hard-expired, one past its soft add-expires as soft-expired, a fresh one not at all', async () => {
  const xfrm = new FakeXfrm();
  let nowMs = 0;
  const k = new XfrmKernel({ xfrm, log: logSink().log, reqidOf: () => STABLE, wantsRoutes: () => false, now: () => nowMs });
  const spis: number[] = [];
  for (let i = 0; i < 3; i++) {
    const spi = await k.allocSpi({ local: '192.0.2.1', remote: '192.0.2.2', reqid: 7 });
    await k.installChildSa(child(spi, 0xd0000001 + i));
    spis.push(spi);
  }
  const inbound = (spi: number) => xfrm.sas.find((s) => s.spi === spi && s.dst === '192.0.2.1')!;
  // Installed at wall-clock second 1000; soft add-expires is 3000 s (life.softSec).
  xfrm.sas = xfrm.sas.map((s) => ({ ...s, current: { ...s.current, add_time: 1000n } }));
  nowMs = 3999_000;
  assert.deepEqual(await k.missedExpires(), [], 'nothing is due 2999 s after install');
  xfrm.sas = xfrm.sas.filter((s) => s !== inbound(spis[0]!));
  xfrm.sas = xfrm.sas.map((s) => (s.spi === spis[1] ? { ...s, current: { ...s.current, add_time: 900n } } : s));
  assert.deepEqual(await k.missedExpires(), [{ inboundSpi: spis[0], hard: true }, { inboundSpi: spis[1], hard: false }]);
});

test('after lost events: a Child SA being moved to a new address while the SA table is read is not judged (its old SA may be gone already)', async () => {
  const xfrm = new FakeXfrm();
  const k = new XfrmKernel({ xfrm, log: logSink().log, reqidOf: () => STABLE, wantsRoutes: () => false, now: () => 1000_000 });
  const spi = await k.allocSpi({ local: '192.0.2.1', remote: '192.0.2.2', reqid: 7 });
  const c = child(spi, 0xd0000001);
  await k.installChildSa(c);
  // The dump runs while a NAT mapping change moves the SAs (new remote address) and answers in
  // the middle of the move: the inbound SA is missing, and the move is not finished (its kernel
  // update hangs until the check is over).
  const list = xfrm.listSas.bind(xfrm);
  const update = xfrm.updateSa.bind(xfrm);
  let release: () => void = () => { /* set below */ };
  const gate = new Promise<void>((r) => { release = r; });
  xfrm.updateSa = async (sa) => { await gate; return update(sa); };
  let move: Promise<void> | undefined;
  xfrm.listSas = async () => {
    move = k.updateChildSa(ref(c), { remote: '192.0.2.9' });
    return (await list()).filter((s) => s.spi !== spi);
  };
  assert.deepEqual(await k.missedExpires(), []);
  release();
  await move;
});

test('a dead peer\'s Child SA removed with keepPolicies leaves its policies (nothing in clear) until a successor installs them or the tunnel is removed (dpd.action restart/hold)', async () => {
  const { xfrm, k } = setup();
  const dead = child(0xc0000001, 0xd0000001);
  await k.installChildSa(dead);
  await k.deleteChildSa(ref(dead), { keepPolicies: true });
  assert.equal(xfrm.sas.length, 0);
  assert.equal(xfrm.policies.length, 3, 'the policies stay without states: the kernel drops and acquires');
  // The successor takes them over: removing the tunnel later is its own Child SA's business.
  const next = child(0xc0000002, 0xd0000002);
  await k.installChildSa(next);
  await k.removeTrap({ peer: 'alpha', child: 'alpha', reqid: 7 });
  assert.equal(xfrm.policies.length, 3, 'an installed Child SA keeps its policies');
  // Dead again, and then the tunnel is removed: nothing of it stays in the kernel.
  await k.deleteChildSa(ref(next), { keepPolicies: true });
  assert.equal(xfrm.policies.length, 3);
  await k.removeTrap({ peer: 'alpha', child: 'alpha', reqid: 7 });
  assert.equal(xfrm.policies.length, 0, 'removing the tunnel removes the kept policies');
});
