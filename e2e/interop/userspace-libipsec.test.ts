// Interop lane (host kernel, which has no ESP): kipsec's userspace ESP data path (`kipsec agent
// --standalone --datapath userspace`: ESP in UDP 4500 over the TUN device kipsec0, RFC 4303 +
// RFC 3948) against strongSwan's charon with kernel-libipsec (userspace ESP over its own TUN,
// always UDP-encapsulated), each in its own namespace. Both roles for each of AES-GCM-16-256
// (RFC 4106), ChaCha20-Poly1305 (RFC 7634), AES-CBC-128 + HMAC-SHA2-256-128 (RFC 3602, RFC 4868)
// with PFS on rekey; one role each for AES-CBC-256 with HMAC-SHA2-384 and -512. Per scenario:
// IKE up, the SPIs agree (our status vs `swanctl --list-sas`), ping both ways (small and at each
// side's TUN MTU), a 2 MiB TCP transfer each way arrives byte for byte, a Child SA rekey initiated
// by each side (RFC 7296 §2.8) under a 10/s ping loses nothing, and the wire carries only UDP
// (IKE on 500/4500, ESP-in-UDP on 4500). charon needs no `encap = yes`: kipsec's userspace path
// fakes NAT detection, so charon sees "remote host is behind NAT" and encapsulates. Then NAT-T
// (RFC 7296 §2.23, RFC 3948) through a third namespace doing nftables masquerade with random UDP
// ports, each side once behind the NAT. ESN is not covered: libipsec refuses it (libipsec.so:
// "IPsec SA: ESN not supported"); the last test shows charon choosing an ESN proposal, failing to
// install it and answering NO_PROPOSAL_CHOSEN.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { classifyPcapFile, formatReport, WireCapture } from '../lib/capture.js';
import { NAT_INSIDE, NAT_OUTSIDE, NAT_PUBLIC, natTopology } from '../lib/nat.js';
import { Netns, pair, type Scope } from '../lib/netns.js';
import { StrongSwan, type SwanChild } from '../lib/strongswan.js';
import { socatTransfer } from '../lib/traffic.js';
import { AgentProcess, ContinuousPing, pollUntil, tunnelYaml } from '../vm/agent-harness.js';

const PSK = 'kipsec interop userspace-libipsec: correct horse battery staple';
const IKE = 'aes256gcm16-prfsha384-x25519';
const K_NET = '10.1.0.0/24';
const S_NET = '10.2.0.0/24';
const K_IP = '10.1.0.1';
const S_IP = '10.2.0.1';
const PODS = [{ node: 'kipsec', cidr: K_NET }, { node: 'charon', cidr: S_NET }];
const TRANSFER_BYTES = 2 << 20;
const NAME = 'us';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** swanctl.conf for one PSK connection, ids given apart from addresses (NAT: the id is the inside address). */
function swanConf(o: { local: string; remoteAddrs: string; localId: string; remoteId: string; esp: string; start: boolean }): string {
  return `connections {
  ${NAME} {
    version = 2
    local_addrs = ${o.local}
    remote_addrs = ${o.remoteAddrs}
    proposals = ${IKE}
    local {
      auth = psk
      id = ${o.localId}
    }
    remote {
      auth = psk
      id = ${o.remoteId}
    }
    children {
      ${NAME} {
        local_ts = ${S_NET}
        remote_ts = ${K_NET}
        esp_proposals = ${o.esp}
        start_action = ${o.start ? 'start' : 'none'}
      }
    }
  }
}
secrets {
  ike-${NAME} {
    id-a = ${o.localId}
    id-b = ${o.remoteId}
    secret = "${PSK}"
  }
}
`;
}

interface Topology {
  readonly k: Netns; readonly s: Netns;
  /** Where each side reaches the other, and the address it binds. */
  readonly kLocal: string; readonly kRemote: string; readonly sLocal: string; readonly sRemote: string;
  /** The NAT router, when there is one. */
  readonly router?: Netns;
}

/** kipsec (192.0.2.1) and charon (192.0.2.2) on one veth. */
async function direct(t: Scope): Promise<Topology> {
  const [k, s] = await pair(t, { a: '192.0.2.1/24', b: '192.0.2.2/24' });
  return { k, s, kLocal: '192.0.2.1', kRemote: '192.0.2.2', sLocal: '192.0.2.2', sRemote: '192.0.2.1' };
}

/** One side inside, behind a NAPT router, the other outside (e2e/lib/nat.ts). */
async function natted(t: Scope, behind: 'kipsec' | 'charon'): Promise<Topology> {
  const { inside, outside, router } = await natTopology(t);
  return behind === 'kipsec'
    ? { k: inside, s: outside, kLocal: NAT_INSIDE, kRemote: NAT_OUTSIDE, sLocal: NAT_OUTSIDE, sRemote: NAT_INSIDE, router }
    : { k: outside, s: inside, kLocal: NAT_OUTSIDE, kRemote: NAT_PUBLIC, sLocal: NAT_INSIDE, sRemote: NAT_OUTSIDE, router };
}

const installed = async (swan: StrongSwan): Promise<SwanChild[]> => (await swan.childSas()).filter((c) => c.state === 'INSTALLED');

interface Scenario {
  /** What charon is told in esp_proposals and kipsec in spec.esp.proposals. */
  readonly esp: string;
  /** The suite kipsec's status names for the IKE_AUTH Child SA (no key exchange of its own). */
  readonly suite: RegExp;
  /** The suite after a rekey, when it differs (PFS: the rekey runs a key exchange of its own, RFC 7296 §1.3.1). */
  readonly rekeyed?: RegExp;
  readonly initiator: 'kipsec' | 'charon';
  readonly nat?: 'kipsec' | 'charon';
}

/** One scenario, start to end; returns lines for t.diagnostic. */
async function run(t: Scope, sc: Scenario): Promise<string[]> {
  const started = Date.now();
  const notes: string[] = [];
  const topo = sc.nat ? await natted(t, sc.nat) : await direct(t);
  const { k, s } = topo;
  await k.run('ip', ['addr', 'add', `${K_IP}/24`, 'dev', 'lo']);
  await s.run('ip', ['addr', 'add', `${S_IP}/24`, 'dev', 'lo']);
  const dir = mkdtempSync(join(tmpdir(), 'kipsec-us-swan-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  // The wire as the kipsec side's uplink sees it (behind a NAT: before translation).
  const wire = await WireCapture.start(t, k, { iface: 'eth0', filter: ['ip'] });

  // IDs are the binding (inside) addresses; charon accepts kipsec from any address when kipsec is NATed.
  const swan = await StrongSwan.start(t, s, {
    mode: 'libipsec', logIkeName: true,
    swanctl: swanConf({ local: topo.sLocal, remoteAddrs: sc.nat === 'kipsec' ? '%any' : topo.sRemote, localId: topo.sLocal, remoteId: topo.kLocal, esp: sc.esp, start: false }),
  });
  const config = tunnelYaml({ name: NAME, local: topo.kLocal, remote: topo.kRemote, localSubnets: [K_NET], remoteSubnets: [S_NET], esp: [sc.esp],
    startAction: sc.initiator === 'kipsec' ? 'initiate' : 'respond', remoteId: topo.sLocal, ike: [IKE] });
  const agent = await AgentProcess.start(t, k, { config, files: { psk: `${PSK}\n` }, args: ['--datapath', 'userspace'] });
  if (sc.initiator === 'charon') {
    const r = await swan.initiate(NAME);
    assert.equal(r.code, 0, `charon initiate:\n${r.stdout}\n${swan.log().slice(-3000)}\n${agent.log().slice(-3000)}`);
  }
  const up = await agent.waitEstablished(NAME, 30_000);
  assert.equal(up.role, sc.initiator === 'kipsec' ? 'initiator' : 'responder');
  assert.equal(up.natDetected, true, 'both userspace data paths force UDP encapsulation (a NAT is faked when there is none)');
  assert.match(up.children[0]!.suite, sc.suite, `negotiated ESP suite ${up.children[0]!.suite}`);
  assert.equal(up.children[0]!.encap, true);

  // SPIs agree (RFC 4303 §2.1: each side picks its inbound SPI): our in is charon's out.
  const theirs = await pollUntil('charon lists the Child SA', 10_000, async () => { const c = await installed(swan); return c.length === 1 ? c[0] : undefined; }, () => swan.listSas());
  assert.equal(theirs.spiIn, up.children[0]!.spiOut, 'charon inbound = kipsec outbound');
  assert.equal(theirs.spiOut, up.children[0]!.spiIn, 'charon outbound = kipsec inbound');
  const ike = (await swan.ikeSas())[0];
  assert.ok(ike && up.ikeSpis, 'IKE SPIs on both sides');
  assert.deepEqual([ike.spiI, ike.spiR], [up.ikeSpis.initiator, up.ikeSpis.responder], 'IKE SA SPIs agree');
  if (!sc.nat) assert.match(swan.log(), /remote host is behind NAT/, 'no NAT here: charon encapsulates because kipsec fakes its NAT_DETECTION_SOURCE_IP (RFC 7296 §2.23)');
  if (sc.nat) {
    // charon sees its peer at a translated port (behind NAT: kipsec) or is itself translated.
    const remote = /^\s+remote\s+'[^']*' @ (\S+)\[(\d+)\]/m.exec(ike.block);
    notes.push(`NAT (${sc.nat} behind): charon sees ${remote?.[1]}[${remote?.[2]}], kipsec sees remote port ${up.remotePort}`);
    if (sc.nat === 'kipsec') {
      assert.equal(remote?.[1], '203.0.113.1', `charon sees the NAT's public address:\n${ike.block}`);
      assert.ok(Number(remote?.[2]) >= 20000 && Number(remote?.[2]) <= 29999, `charon sees a translated port:\n${ike.block}`);
      assert.equal(up.remotePort, 4500);
    } else {
      assert.ok((up.remotePort ?? 0) >= 20000 && (up.remotePort ?? 0) <= 29999, `kipsec sends to charon's translated port: ${up.remotePort}`);
    }
  }

  // Pings both ways, small and as large as the sender's TUN MTU allows (kipsec0 1406, charon's ipsec0
  // 1400): the larger ones from kipsec exceed charon's TUN MTU on the way back, and still arrive.
  const mtu = async (ns: Netns, args: readonly string[]): Promise<number> => Number(/ mtu (\d+)/.exec((await ns.run('ip', ['-o', 'link', 'show', ...args])).stdout)?.[1]);
  const kMtu = await mtu(k, ['kipsec0']);
  const sMtu = await mtu(s, ['type', 'tun']);
  notes.push(`TUN MTU: kipsec0 ${kMtu}, charon ${sMtu}`);
  for (const [from, src, dst, full] of [[k, K_IP, S_IP, kMtu], [s, S_IP, K_IP, sMtu]] as const) {
    for (const size of [56, full - 28]) {
      const ping = await from.run('ping', ['-c', '3', '-i', '0.2', '-W', '2', '-s', String(size), '-I', src, dst], { timeoutMs: 20_000, check: false });
      assert.match(ping.stdout, /3 received/, `${src} → ${dst}, ${size}-byte payload: ${ping.stdout}${ping.stderr}\n${await agent.table()}\n${await swan.listSas()}`);
    }
  }
  await socatTransfer(dir, k, s, S_IP, 5001, TRANSFER_BYTES);
  await socatTransfer(dir, s, k, K_IP, 5002, TRANSFER_BYTES);

  // Child SA rekeys (RFC 7296 §2.8) under a 10/s ping: kipsec first, then charon.
  const ping = new ContinuousPing(k, K_IP, S_IP, { intervalMs: 100 });
  await sleep(1_000);
  let current = (await agent.tunnel(NAME)).children[0]!;
  for (const who of ['kipsec', 'charon'] as const) {
    const before = current.spiIn;
    if (who === 'kipsec') {
      const r = await agent.kipsec(['rekey', NAME, '--child']);
      assert.equal(r.code, 0, r.stderr);
    } else {
      const r = await swan.swanctl(['--rekey', '--child', NAME], false);
      assert.equal(r.code, 0, `swanctl --rekey: ${r.stdout}${r.stderr}`);
    }
    current = (await pollUntil(`the Child SA rekeyed by ${who}, alone on both sides`, 20_000, async () => {
      const st = await agent.tunnel(NAME);
      const c = st.children;
      if (c.length !== 1 || c[0]!.spiIn === before || c[0]!.state !== 'installed') return undefined;
      const sw = await installed(swan);
      return sw.length === 1 && sw[0]!.spiIn === c[0]!.spiOut && sw[0]!.spiOut === c[0]!.spiIn ? st : undefined;
    }, async () => `${JSON.stringify(await agent.tunnel(NAME))}\n${await swan.listSas()}`)).children[0]!;
    assert.match(current.suite, sc.rekeyed ?? sc.suite, `suite after the rekey by ${who}`);
    notes.push(`rekey by ${who}: kipsec in ${before} → ${current.spiIn}, suite ${current.suite}`);
    await sleep(1_200);
  }
  const pr = await ping.stop();
  const after = (await agent.tunnel(NAME)).children[0]!;
  const sw = (await installed(swan))[0];
  const counters = `kipsec child in ${after.spiIn} ${after.packetsIn} pkts / out ${after.spiOut} ${after.packetsOut} pkts; charon in ${sw?.spiIn} ${sw?.packetsIn} / out ${sw?.spiOut} ${sw?.packetsOut}`;
  assert.ok(pr.sent >= 30, `pings sent: ${pr.sent}`);
  assert.deepEqual(pr.lost, [], `lost across the rekeys: ${pr.lost.join(', ')}\n${pr.tail}\n${counters}\n${notes.join('\n')}\ncharon log:\n${swan.log().slice(-4000)}`);
  assert.ok(after.packetsIn > 0 && after.packetsOut > 0, `the newest SAs carry the ping: ${counters}`);
  notes.push(`ping across two rekeys ${pr.received}/${pr.sent}, longest gap ${pr.longestGapMs} ms; ${counters}`);

  const cap = await wire.stop();
  assert.ok(cap.complete, `capture incomplete: ${cap.stderr}`);
  const report = classifyPcapFile(cap.file, { podCidrs: PODS });
  assert.equal(report.plaintextBetweenPods, 0, formatReport(report));
  assert.ok(report.espInUdp > 2000, `ESP-in-UDP packets: ${report.espInUdp}`);
  assert.equal(report.esp, report.espInUdp, 'no raw ESP (protocol 50)');
  assert.equal(report.packets, report.espInUdp + report.ike + report.nattKeepalive, `only IKE, NAT-keepalives and ESP in UDP on the wire: ${formatReport(report)}`);
  notes.push(`wire: ${report.espInUdp} ESP-in-UDP, ${report.ike} IKE, ${report.nattKeepalive} keepalives of ${report.packets}`);

  assert.equal(await agent.stop(), 0);
  assert.ok(!agent.log().includes(PSK), 'the PSK never reaches the log');
  notes.push(`wall time ${Date.now() - started} ms`);
  return notes;
}

const BOTH = ['kipsec', 'charon'] as const;
const SUITES = [
  { esp: 'aes256gcm16', suite: /^aes256gcm16$/, label: 'AES-GCM-16-256 (RFC 4106)', roles: BOTH },
  { esp: 'chacha20poly1305', suite: /^chacha20poly1305$/, label: 'ChaCha20-Poly1305 (RFC 7634)', roles: BOTH },
  { esp: 'aes128-sha256-x25519', suite: /^aes128-sha256$/, rekeyed: /^aes128-sha256-x25519$/, label: 'AES-CBC-128 + HMAC-SHA2-256-128 with PFS on rekey (RFC 3602, RFC 4868)', roles: BOTH },
  // The other two RFC 4868 truncations, one role each (wall time): SHA-512's 32-byte ICV is the
  // largest overhead kipsec's TUN MTU is sized for (1406), charon's TUN MTU is 1400.
  { esp: 'aes256-sha384', suite: /^aes256-sha384$/, label: 'AES-CBC-256 + HMAC-SHA2-384-192 (RFC 3602, RFC 4868)', roles: ['charon'] },
  { esp: 'aes256-sha512', suite: /^aes256-sha512$/, label: 'AES-CBC-256 + HMAC-SHA2-512-256 (RFC 3602, RFC 4868)', roles: ['kipsec'] },
] as const;

for (const { roles, ...s } of SUITES) {
  for (const initiator of roles) {
    test(`kipsec userspace ↔ strongSwan kernel-libipsec, ${initiator} initiates, ${s.label}: SPIs agree, ping both ways, 2 MiB each way byte for byte, Child SA rekeys by each side under 10/s ping lose nothing (RFC 7296 §2.8), only UDP on the wire (RFC 3948)`, async (t) => {
      for (const n of await run(t, { ...s, initiator })) t.diagnostic(n);
    });
  }
}

for (const behind of ['kipsec', 'charon'] as const) {
  test(`kipsec userspace ↔ strongSwan kernel-libipsec through a masquerading NAT, ${behind} behind it and initiating (RFC 7296 §2.23, RFC 3948): translated ports followed, ping, transfers, rekeys by each side without loss`, async (t) => {
    for (const n of await run(t, { esp: 'aes256gcm16', suite: /^aes256gcm16/, initiator: behind, nat: behind })) t.diagnostic(n);
  });
}

test('ESN (RFC 4303 §2.2.1) cannot be negotiated with kernel-libipsec: charon picks the aes128-sha256-esn kipsec offers, libipsec refuses the SA ("ESN not supported"), charon answers NO_PROPOSAL_CHOSEN and keeps the IKE SA; kipsec reports it and installs nothing', async (t) => {
  const topo = await direct(t);
  await topo.k.run('ip', ['addr', 'add', `${K_IP}/24`, 'dev', 'lo']);
  await topo.s.run('ip', ['addr', 'add', `${S_IP}/24`, 'dev', 'lo']);
  const swan = await StrongSwan.start(t, topo.s, { mode: 'libipsec', swanctl: swanConf({ local: topo.sLocal, remoteAddrs: topo.sRemote, localId: topo.sLocal, remoteId: topo.kLocal, esp: 'aes128-sha256-esn', start: false }) });
  const config = tunnelYaml({ name: NAME, local: topo.kLocal, remote: topo.kRemote, localSubnets: [K_NET], remoteSubnets: [S_NET], esp: ['aes128-sha256-esn'], ike: [IKE] });
  const agent = await AgentProcess.start(t, topo.k, { config, files: { psk: `${PSK}\n` }, args: ['--datapath', 'userspace'] });
  const st = await agent.waitFor(NAME, (x) => x.ikeState === 'established' && x.lastError !== undefined, 30_000, 'IKE up with the Child SA refused');
  assert.equal(st.lastError?.notify, 'NO_PROPOSAL_CHOSEN', JSON.stringify(st.lastError));
  assert.deepEqual(st.children, [], 'no Child SA installed on our side');
  assert.match(swan.log(), /IPsec SA: ESN not supported/, 'libipsec refused the ESN SA');
  assert.match(swan.log(), /IKE_AUTH response 1 \[ IDr AUTH N\(NO_PROP\) \]/, 'charon answered NO_PROPOSAL_CHOSEN in IKE_AUTH');
  assert.deepEqual(await swan.ikeStates(), { [NAME]: 'ESTABLISHED' }, 'the IKE SA stays');
  assert.deepEqual(await swan.childSas(), []);
});
