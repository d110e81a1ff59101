// The userspace data path's control plane without the addon (issue 12): the peer-config rules
// (ESP in UDP always, the engine's suites only, no on-demand), the TUN MTU arithmetic, and the XFRM port
// on the ESP engine (src/agent/userspace/esp-xfrm.ts) against a fake EspNative that records calls.
// Why: XfrmKernel, adoption and the daemon run unchanged on this port, so what it tells the engine
// and what it reports back (dumps, counters, expires) is the whole of the translation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError } from '../../../src/common/errors.js';
import { SecretBytes } from '../../../src/common/secret.js';
import { ESP_ALGORITHMS, ESP_COUNTERS, ESP_DROP_REASONS } from '../../../src/esp/index.js';
import type { EspNative, RawEvent, RawPolicy, RawSa, RawSaStats } from '../../../src/esp/native.js';
import { EspEngine } from '../../../src/esp/index.js';
import type { PeerConfig } from '../../../src/ike/engine.js';
import { tunMtu, UserspaceDatapath } from '../../../src/agent/userspace/datapath.js';
import { EspXfrm } from '../../../src/agent/userspace/esp-xfrm.js';
import { userspacePeer, USERSPACE_ESP_PROPOSALS } from '../../../src/agent/userspace/peer.js';
import type { RtnlClient, SaSpec, PolicySpec, XfrmEvent } from '../../../src/xfrm/index.js';
import { logSink } from './fakes.js';

function peer(esp: readonly string[], startAction: PeerConfig['startAction'] = 'initiate'): PeerConfig {
  return {
    name: 't', local: { address: '192.0.2.1', id: { type: 'ipv4', value: '192.0.2.1' } }, remote: { address: '192.0.2.2' },
    auth: { method: 'psk', secret: new SecretBytes(new Uint8Array(32)) }, ike: { proposals: [], rekeyTimeMs: 3_600_000 },
    children: [{ name: 't', localTs: ['10.1.0.0/24'], remoteTs: ['10.2.0.0/24'], espProposals: esp, mode: 'tunnel', rekeyTimeMs: 3_000_000, lifeTimeMs: 3_600_000 }],
    dpd: { intervalMs: 0, action: 'clear', timeoutMs: 0 }, startAction,
  } as PeerConfig;
}

test('userspace peers: UDP encapsulation forced, AEAD proposals kept, empty proposals become the AEAD defaults', () => {
  const p = userspacePeer(peer(['aes256gcm16-x25519', 'chacha20poly1305', 'aes128gcm16-noesn']));
  assert.equal(p.natTraversal, 'always');
  assert.deepEqual(p.children[0]!.espProposals, ['aes256gcm16-x25519', 'chacha20poly1305', 'aes128gcm16-noesn']);
  assert.deepEqual(userspacePeer(peer([])).children[0]!.espProposals, USERSPACE_ESP_PROPOSALS);
  assert.doesNotMatch(USERSPACE_ESP_PROPOSALS.join(), /sha|aes256-|aes128-/);
});

test('userspace peers: AES-CBC with HMAC-SHA2 and ESN are kept (RFC 3602, RFC 4868, RFC 4303 §2.2.1)', () => {
  const kept = ['aes256-sha256', 'aes128-sha512-esn', 'aes256gcm16-esn', 'aes256-sha384-modp2048'];
  assert.deepEqual(userspacePeer(peer(kept)).children[0]!.espProposals, kept);
});

test('userspace peers: 3DES, SHA-1, 192-bit AES and on-demand are config errors naming the field and the data path', () => {
  const refused = (p: PeerConfig, path: string, what: RegExp): void => {
    assert.throws(() => userspacePeer(p), (e: unknown) => e instanceof ConfigError && e.path === path && what.test(e.message) && /--datapath userspace/.test(e.message));
  };
  refused(peer(['aes256gcm16', 'aes256-sha1']), 'spec.esp.proposals[1]', /"aes256-sha1" has an integrity algorithm other than HMAC-SHA2/);
  refused({ ...peer(['3des-sha256']), ike: { allowWeak: true } } as PeerConfig, 'spec.esp.proposals[0]', /a cipher the userspace engine does not have/);
  refused(peer(['aes192gcm16']), 'spec.esp.proposals[0]', /AES-GCM with 192-bit keys/);
  refused(peer(['aes192-sha256']), 'spec.esp.proposals[0]', /AES-CBC with 192-bit keys/);
  refused(peer(['aes256gcm16'], 'on-demand'), 'spec.startAction', /ACQUIRE/);
});

test('TUN MTU: the outer MTU less IP, UDP, ESP header, IV, ICV and padded trailer of the largest suite, AES-CBC + HMAC-SHA2-512 (RFC 4303, 3948, 3602, 4868)', () => {
  assert.equal(tunMtu(1500, false), 1406); // 20 + 8 + 8 + 16 + (1406 + 2) + 32 = 1492 ≤ 1500, the next block would be 1508
  assert.equal(tunMtu(1500, true), 1390); // 40 + 8 + 8 + 16 + (1390 + 2) + 32 = 1496
  assert.equal(tunMtu(1400, false), 1310);
  for (const outer of [1280, 1400, 1499, 1500, 9000]) {
    const inner = tunMtu(outer, false);
    assert.equal((inner + 2) % 16, 0, `the padded payload is block aligned at ${outer}`);
    assert.ok(inner + 2 + 84 <= outer, `CBC + SHA-512 fits ${outer}`);
    assert.ok(inner + 2 + 16 + 84 > outer, `no larger block would fit ${outer}`);
  }
});

/** A fake addon: records SAs and policies, serves stats, lets the test raise events. */
function fakeNative(): { native: EspNative; sas: Map<string, RawSa>; policies: Map<number, RawPolicy>; sent: Array<{ port: number; data: Uint8Array }>; fire(e: RawEvent): void; counts: Map<string, bigint> } {
  const sas = new Map<string, RawSa>(); const policies = new Map<number, RawPolicy>(); const sent: Array<{ port: number; data: Uint8Array }> = [];
  const counts = new Map<string, bigint>();
  let onEvent: (e: RawEvent) => void = () => { /* set by espCreate */ };
  const k = (d: string, spi: number, reqid: number): string => `${d}|${spi >>> 0}|${reqid >>> 0}`;
  const handle = {} as ReturnType<EspNative['espCreate']>;
  const native: EspNative = {
    espCreate: (o) => { onEvent = o.onEvent; return handle; },
    espLocalPort: () => 4500, espClose: () => { /* nothing */ },
    espAddSa: (_h, sa) => { const key = k(sa.direction, sa.spi, sa.reqid); if (sas.has(key)) throw Object.assign(new Error('exists'), { code: 'EEXIST' }); sas.set(key, sa); },
    espUpdateSa: (_h, d, spi, reqid, u) => { const sa = sas.get(k(d, spi, reqid)); if (sa) sas.set(k(d, spi, reqid), { ...sa, ...(u.peer ? { peer: u.peer } : {}), ...(u.active !== undefined ? { active: u.active } : {}) }); },
    espRemoveSa: (_h, d, spi, reqid) => sas.delete(k(d, spi, reqid)),
    espAddPolicy: (_h, p) => { policies.set(p.id, p); },
    espRemovePolicy: (_h, id) => policies.delete(id),
    espStats: () => ({
      counters: Object.fromEntries(ESP_COUNTERS.map((c) => [c, 0n])),
      sas: [...sas.values()].map((sa): RawSaStats => ({
        direction: sa.direction, spi: sa.spi, reqid: sa.reqid, active: sa.active ?? true, packets: counts.get(k(sa.direction, sa.spi, sa.reqid)) ?? 0n,
        bytes: (counts.get(k(sa.direction, sa.spi, sa.reqid)) ?? 0n) * 100n, seq: 0n, softExpired: false, hardExpired: false, lastUseMs: null, drops: Object.fromEntries(ESP_DROP_REASONS.map((r) => [r, 0n])),
      })),
    }),
    espSaStats: (h, d, spi, reqid) => native.espStats(h).sas.find((x) => x.direction === d && x.spi === spi && x.reqid === reqid) ?? null,
    espSendIke: (_h, data, _a, port) => { sent.push({ port, data }); return data.length; },
    espInject: () => 'sent',
  };
  return { native, sas, policies, sent, counts, fire: (e) => onEvent(e) };
}

async function openPort(): Promise<{ x: EspXfrm; f: ReturnType<typeof fakeNative> }> {
  const f = fakeNative();
  const rtnl = { setLinkMtu: async () => { /* none */ }, setLinkUp: async () => { /* none */ }, routeGet: async () => ({}), listLinks: async () => [] } as unknown as RtnlClient;
  const dp = new UserspaceDatapath({ rtnl, log: logSink().log, openTun: (n) => ({ fd: -1, name: n }), openEngine: (fd, address, port) => EspEngine.open({ tunFd: fd, address, port, native: f.native }) });
  await dp.open('192.0.2.1', 4500);
  return { x: new EspXfrm(dp), f };
}

const REQID = 0x4b000001;
const key = (): SecretBytes => new SecretBytes(new Uint8Array(36).fill(7));
const inSa = (spi: number, o: Partial<SaSpec> = {}): SaSpec => ({ src: '192.0.2.2', dst: '192.0.2.1', spi, proto: 'esp', mode: 'tunnel', reqid: REQID, aead: { name: 'rfc4106(gcm(aes))', key: key(), icvBits: 128 }, replayWindow: 32, encap: { sport: 4500, dport: 4500 }, ...o });
const outSa = (spi: number, o: Partial<SaSpec> = {}): SaSpec => ({ src: '192.0.2.1', dst: '192.0.2.2', spi, proto: 'esp', mode: 'tunnel', reqid: REQID, aead: { name: 'rfc4106(gcm(aes))', key: key(), icvBits: 128 }, encap: { sport: 4500, dport: 4501 }, ...o });
const policy = (dir: 'in' | 'out' | 'fwd'): PolicySpec => ({
  selector: dir === 'out' ? { src: '10.1.0.0/24', dst: '10.2.0.0/24' } : { src: '10.2.0.0/24', dst: '10.1.0.0/24' }, dir, priority: 1000,
  templates: [{ src: dir === 'out' ? '192.0.2.1' : '192.0.2.2', dst: dir === 'out' ? '192.0.2.2' : '192.0.2.1', proto: 'esp', reqid: REQID, mode: 'tunnel' }],
});

test('EspXfrm: a child install puts the inbound SA (selectors from the in policy), the outbound SA (peer = destination and encap port) and the out policy into the engine; removeChild takes them out', async () => {
  const { x, f } = await openPort();
  const spi = await x.allocSpi({ src: '192.0.2.2', dst: '192.0.2.1', proto: 'esp', mode: 'tunnel', reqid: REQID });
  assert.ok(spi >= 256);
  const installed = await x.installChild({ sas: [{ ...inSa(spi), allocated: true }, outSa(0xc0000001)], policies: [policy('out'), policy('in'), policy('fwd')], replacePolicies: true });
  const ins = f.sas.get(`in|${spi}|${REQID}`)!;
  assert.equal(ins.algorithm, 1);
  assert.deepEqual(ins.sources, [{ start: '10.2.0.0', end: '10.2.0.255', protocol: 0, startPort: 0, endPort: 0xffff }]);
  assert.deepEqual(ins.destinations, [{ start: '10.1.0.0', end: '10.1.0.255', protocol: 0, startPort: 0, endPort: 0xffff }]);
  assert.ok((ins.replayWindow ?? 0) >= 1024);
  assert.deepEqual(f.sas.get(`out|${0xc0000001}|${REQID}`)!.peer, { address: '192.0.2.2', port: 4501 });
  assert.deepEqual([...f.policies.values()].map((p) => [p.reqid, p.source.start, p.destination.start]), [[REQID, '10.1.0.0', '10.2.0.0']], 'only the out policy goes to the engine');
  assert.equal((await x.listPolicies()).length, 3);
  assert.deepEqual((await x.listSas()).map((s) => s.spi).sort(), [spi, 0xc0000001].sort());
  await x.removeChild(installed);
  assert.equal(f.sas.size, 0);
  assert.equal(f.policies.size, 0);
  assert.deepEqual(await x.listSas(), []);
});

test('EspXfrm: cbc(aes) with hmac(sha256/384/512) at RFC 4868 truncation and ESN reach the engine as its suites', async () => {
  const { x, f } = await openPort();
  const { aead: _a, ...bare } = outSa(0x1000);
  const keys = { enc: new SecretBytes(new Uint8Array(32).fill(7)), integ: new SecretBytes(new Uint8Array(64).fill(9)) };
  await x.addSa({ ...bare, crypt: { name: 'cbc(aes)', key: keys.enc }, auth: { name: 'hmac(sha512)', key: keys.integ, truncBits: 256 }, esn: true });
  const sa = f.sas.get(`out|${0x1000}|${REQID}`)!;
  assert.equal(sa.esn, true);
  assert.equal(sa.algorithm, ESP_ALGORITHMS['aes-cbc-hmac-sha2-512-256']);
  assert.deepEqual(sa.integrityKey, new Uint8Array(64).fill(9), 'the HMAC key goes to the engine');
});

test('EspXfrm: what the engine cannot do is refused (3DES, SHA-1, a non-RFC 4868 truncation, outbound without UDP encapsulation)', async () => {
  const { x } = await openPort();
  const { aead: _a, ...cbc } = outSa(0x1000);
  await assert.rejects(x.addSa({ ...cbc, crypt: { name: 'cbc(aes)', key: key() }, auth: { name: 'hmac(sha1)', key: key(), truncBits: 96 } }), /cbc\(aes\) with hmac\(sha1\) truncated to 96 bits/);
  await assert.rejects(x.addSa({ ...cbc, crypt: { name: 'cbc(aes)', key: key() }, auth: { name: 'hmac(sha256)', key: key(), truncBits: 96 } }), /hmac\(sha256\) truncated to 96 bits/);
  await assert.rejects(x.addSa({ ...cbc, crypt: { name: 'cbc(des3_ede)', key: key() }, auth: { name: 'hmac(sha256)', key: key(), truncBits: 128 } }), /asks for cbc\(des3_ede\)/);
  const { encap: _e, ...plain } = outSa(0x1002);
  await assert.rejects(x.addSa(plain), /ESP in UDP only/);
});

test('EspXfrm: counters come from engine stats; an engine hard expire removes the SA and reports it like the kernel; a time lifetime fires as a soft expire', async (t) => {
  const { x, f } = await openPort();
  const events: XfrmEvent[] = [];
  x.events(['expire'], (e) => events.push(e));
  const spi = await x.allocSpi({ src: '192.0.2.2', dst: '192.0.2.1', reqid: REQID });
  await x.addSa(inSa(spi));
  f.counts.set(`in|${spi}|${REQID}`, 5n);
  const ae = await x.getAe({ dst: '192.0.2.1', spi, src: '192.0.2.2' });
  assert.deepEqual([ae.current?.packets, ae.current?.bytes], [5n, 500n]);

  f.fire({ kind: 'expire', direction: 'in', spi, reqid: REQID, hard: true, reason: 'packets' });
  assert.equal(events.length, 1);
  assert.ok(events[0]!.kind === 'expire' && events[0]!.hard && events[0]!.sa.spi === spi && events[0]!.sa.dst === '192.0.2.1');
  assert.equal(f.sas.size, 0, 'hard expire: the SA is gone, as the kernel deletes it');

  t.mock.timers.enable({ apis: ['setTimeout'] });
  await x.addSa(outSa(0x2000, { soft: { addExpiresSec: 30 }, hard: { addExpiresSec: 60 } }));
  t.mock.timers.tick(30_000);
  assert.ok(events[1]?.kind === 'expire' && !events[1].hard && events[1].sa.spi === 0x2000);
  t.mock.timers.tick(30_000);
  assert.ok(events[2]?.kind === 'expire' && events[2].hard);
  assert.equal(f.sas.size, 0);
  await x.addSa(outSa(0x2001, { soft: { addExpiresSec: 90 }, hard: { addExpiresSec: 60 } }));
  t.mock.timers.tick(60_000);
  t.mock.timers.tick(60_000);
  assert.deepEqual(events.slice(3).map((e) => e.kind === 'expire' && e.hard), [true], 'a soft limit past the hard one: only the hard expire, as in the kernel');
  x.close();
});

test('EspXfrm: an address move (XFRM: add at the new address, delete the old) keeps the engine SA and moves its peer', async () => {
  const { x, f } = await openPort();
  await x.addSa(outSa(0x3000));
  await x.addSa(outSa(0x3000, { dst: '192.0.2.9', encap: { sport: 4500, dport: 40000 } }));
  await assert.rejects(x.deleteSa({ dst: '192.0.2.2', spi: 0x3000, src: '192.0.2.1' }), /not installed/);
  assert.deepEqual(f.sas.get(`out|${0x3000}|${REQID}`)!.peer, { address: '192.0.2.9', port: 40000 });
  await x.updateSa(outSa(0x3000, { dst: '192.0.2.9', encap: { sport: 4500, dport: 40001 } }));
  assert.deepEqual(f.sas.get(`out|${0x3000}|${REQID}`)!.peer, { address: '192.0.2.9', port: 40001 });
  await x.deleteSa({ dst: '192.0.2.9', spi: 0x3000 });
  assert.equal(f.sas.size, 0);
});

test('EspXfrm: two peers\' outbound SAs with one SPI (each peer picks its own) are two SAs: each updated, listed and deleted by its destination', async () => {
  const { x, f } = await openPort();
  await x.addSa(outSa(0x5000));
  await x.addSa(outSa(0x5000, { dst: '192.0.2.3', reqid: REQID + 1, encap: { sport: 4500, dport: 4600 } }));
  assert.equal(f.sas.size, 2);
  await x.updateSa(outSa(0x5000, { encap: { sport: 4500, dport: 4502 } }));
  assert.deepEqual(f.sas.get(`out|${0x5000}|${REQID}`)!.peer, { address: '192.0.2.2', port: 4502 });
  assert.deepEqual(f.sas.get(`out|${0x5000}|${REQID + 1}`)!.peer, { address: '192.0.2.3', port: 4600 });
  assert.deepEqual((await x.listSas()).map((s) => s.dst).sort(), ['192.0.2.2', '192.0.2.3']);
  await x.deleteSa({ dst: '192.0.2.3', spi: 0x5000 });
  assert.deepEqual([...f.sas.keys()], [`out|${0x5000}|${REQID}`]);
  assert.equal((await x.getAe({ dst: '192.0.2.2', spi: 0x5000, src: '192.0.2.1' })).current?.packets, 0n);
});

test('EspXfrm: an inbound SA expects its peer (source, encap sport); the engine\'s mapping report becomes XFRM_MSG_MAPPING\'s event, and moving the SA moves what the engine expects (RFC 7296 §2.23)', async () => {
  const { x, f } = await openPort();
  const events: XfrmEvent[] = [];
  x.events(['mapping'], (e) => events.push(e));
  const spi = await x.allocSpi({ src: '192.0.2.2', dst: '192.0.2.1', reqid: REQID });
  await x.addSa(inSa(spi, { encap: { sport: 4501, dport: 4500 } }));
  assert.deepEqual(f.sas.get(`in|${spi}|${REQID}`)!.peer, { address: '192.0.2.2', port: 4501 });
  f.fire({ kind: 'mapping', direction: 'in', spi, reqid: REQID, address: '198.51.100.7', port: 40001 });
  assert.deepEqual(events, [{ kind: 'mapping', dst: '192.0.2.1', spi, reqid: REQID, oldSrc: '192.0.2.2', oldSport: 4501, newSrc: '198.51.100.7', newSport: 40001 }]);
  f.fire({ kind: 'mapping', direction: 'in', spi: spi + 1, reqid: REQID, address: '198.51.100.7', port: 40001 });
  assert.equal(events.length, 1, 'an SA we do not hold reports nothing');
  await x.updateSa(inSa(spi, { src: '198.51.100.7', encap: { sport: 40001, dport: 4500 } }));
  assert.deepEqual(f.sas.get(`in|${spi}|${REQID}`)!.peer, { address: '198.51.100.7', port: 40001 }, 'the engine now expects the new source');
});

test('UserspaceDatapath.statusView (`kipsec status`): the offloads the engine uses, its non-zero counters, and its SAs\' drops summed by reason; nothing before open()', async () => {
  const f = fakeNative();
  const stats = f.native.espStats;
  f.native = {
    ...f.native,
    espStats: (h) => {
      const s = stats(h);
      const drops = (auth: bigint, replay: bigint) => Object.fromEntries(ESP_DROP_REASONS.map((r) => [r, r === 'auth' ? auth : r === 'replay' ? replay : 0n]));
      const sa = (spi: number, auth: bigint, replay: bigint): RawSaStats => ({ direction: 'in', spi, reqid: REQID, active: true, packets: 0n, bytes: 0n, seq: 0n, softExpired: false, hardExpired: false, lastUseMs: null, drops: drops(auth, replay) });
      return { ...s, counters: { ...s.counters, rxDatagrams: 7n, noSa: 2n }, offloads: { udpGso: true, udpGro: true, tunVnetHdr: true, tunCsum: false, tunTso: false }, sas: [sa(0x100, 3n, 0n), sa(0x200, 1n, 4n)] };
    },
  };
  const rtnl = { setLinkMtu: async () => { /* none */ }, setLinkUp: async () => { /* none */ }, routeGet: async () => ({}), listLinks: async () => [] } as unknown as RtnlClient;
  const dp = new UserspaceDatapath({ rtnl, log: logSink().log, openTun: (n) => ({ fd: -1, name: n }), openEngine: (fd, address, port) => EspEngine.open({ tunFd: fd, address, port, native: f.native }) });
  assert.equal(dp.statusView(), undefined);
  await dp.open('192.0.2.1', 4500);
  assert.deepEqual(dp.statusView(), { offloads: ['udpGso', 'udpGro', 'tunVnetHdr'], counters: { rxDatagrams: 7, noSa: 2 }, drops: { auth: 4, replay: 4 } });
  dp.close();
  assert.equal(dp.statusView(), undefined);
});
