// Kernel lane (real ESP): NAT traversal through a real masquerading router (RFC 7296 §2.23,
// RFC 3948). A router namespace does nftables `masquerade … random` (NAPT) from 10.0.0.0/24 to
// its outside address 203.0.113.1, mapping UDP source ports into 20000-29999, so 500 and 4500 both
// leave as other ports (the mapped ports are read from the router's conntrack table and from
// charon's `--list-sas`, and printed). Two roles:
//  - the agent behind the NAT initiates to a public charon: NAT detected, float to 4500, kernel
//    ESP-in-UDP (UDP_ENCAP on the agent's 4500 socket), ping both ways, SPIs agree, status shows
//    NAT-T and port 4500; then the NAT mapping changes (new port range + conntrack flush): the
//    agent's next packets leave from a new port, charon follows (its kernel's mapping event),
//    the ping recovers without a new SA; the agent's NAT-keepalives (one 0xFF octet from its 4500
//    socket, RFC 3948 §2.3) are counted on the router;
//  - charon behind the NAT initiates to the agent (responder, remote.address = the NAT's public
//    address): the agent's kernel SAs encapsulate to the mapped port, status shows it; then the
//    mapping changes. charon runs no DPD (its default), so no IKE message comes from the new port:
//    the agent follows charon's first authenticated ESP packet from it (the kernel's
//    XFRM_MSG_MAPPING → engine.natMapping → followPeer → updateChildSa: the kernel SA's encap
//    port is updated), the ping recovers.
// Loss across each mapping change is printed as a diagnostic; recovery is asserted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Netns, link, type Scope } from '../lib/netns.js';
import { StrongSwan } from '../lib/strongswan.js';
import { AgentProcess, pingCounts, tunnelYaml } from './agent-harness.js';
import { swanctlConf } from './agent-swan.js';
import { prepareVm } from './agent-vm.js';

prepareVm();
const PSK = 'kipsec e2e: correct horse battery staple';
const INSIDE = '10.0.0.2';
const PUBLIC = '203.0.113.1';
const PEER = '203.0.113.2';
const FIRST_RANGE = { lo: 20000, hi: 29999 } as const;
const SECOND_RANGE = { lo: 40000, hi: 49999 } as const;
type Range = { readonly lo: number; readonly hi: number };

/** inside (10.0.0.2) — router (10.0.0.1 | 203.0.113.1, masquerading) — outside (203.0.113.2). */
async function natTopology(t: Scope): Promise<{ inside: Netns; router: Netns; outside: Netns }> {
  const inside = await Netns.create(t, 'natIn');
  const router = await Netns.create(t, 'natR');
  const outside = await Netns.create(t, 'natOut');
  await link(inside, `${INSIDE}/24`, router, '10.0.0.1/24', 'eth0', 'eth0');
  await link(router, `${PUBLIC}/24`, outside, `${PEER}/24`, 'eth1', 'eth0');
  await router.run('sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
  await inside.run('ip', ['route', 'add', 'default', 'via', '10.0.0.1']);
  await setMasquerade(router, FIRST_RANGE);
  return { inside, router, outside };
}

/**
 * NAPT on the router's outside interface, one nft transaction: UDP gets a random source port
 * from `range` (so 500 and 4500 never keep theirs), anything else plain masquerade.
 */
async function setMasquerade(router: Netns, range: Range): Promise<void> {
  const rules = `add table ip kipsec_nat
flush table ip kipsec_nat
add chain ip kipsec_nat postrouting { type nat hook postrouting priority srcnat; policy accept; }
add rule ip kipsec_nat postrouting oifname "eth1" ip saddr 10.0.0.0/24 meta l4proto udp masquerade to :${range.lo}-${range.hi} random
add rule ip kipsec_nat postrouting oifname "eth1" ip saddr 10.0.0.0/24 masquerade
`;
  await router.run('nft', ['-f', '-'], { input: rules });
}

/** A NAT mapping change as a rebooted or overloaded NAT makes one: new port range, table flushed. */
async function remap(router: Netns, range: Range): Promise<void> {
  await setMasquerade(router, range);
  await router.run('conntrack', ['-F'], { check: false }); // exits 1 with nothing to flush on some versions
}

interface Mapping { readonly insidePort: number; readonly peerPort: number; readonly publicPort: number }

/** The router's UDP translations of INSIDE → PEER, from `conntrack -L`: inside port → public port. */
async function mappings(router: Netns): Promise<{ list: Mapping[]; text: string }> {
  const text = (await router.run('conntrack', ['-L', '-p', 'udp'], { check: false })).stdout;
  const list: Mapping[] = [];
  const re = /src=(\S+) dst=(\S+) sport=(\d+) dport=(\d+) .*?src=(\S+) dst=(\S+) sport=(\d+) dport=(\d+)/g;
  for (const m of text.matchAll(re)) {
    if (m[1] !== INSIDE || m[2] !== PEER || m[6] !== PUBLIC) continue;
    list.push({ insidePort: Number(m[3]), peerPort: Number(m[4]), publicPort: Number(m[8]) });
  }
  return { list, text };
}

async function mappedPort(router: Netns, insidePort: number, peerPort: number): Promise<number | undefined> {
  return (await mappings(router)).list.find((m) => m.insidePort === insidePort && m.peerPort === peerPort)?.publicPort;
}

/** charon's view of the peer: `remote '<id>' @ <address>[<port>]`. */
function swanRemote(listSas: string): { address: string; port: number } | undefined {
  const m = /^\s+remote\s+'[^']*' @ (\S+)\[(\d+)\]/m.exec(listSas);
  return m ? { address: m[1]!, port: Number(m[2]) } : undefined;
}

/** `encap type espinudp sport S dport D` of the ESP state src → dst in `ip xfrm state`. */
function encapOf(xfrmState: string, src: string, dst: string): { sport: number; dport: number } | undefined {
  for (const block of xfrmState.split(/^(?=src )/m)) {
    if (!block.startsWith(`src ${src} dst ${dst}`)) continue;
    const m = /encap type espinudp sport (\d+) dport (\d+)/.exec(block);
    return m ? { sport: Number(m[1]), dport: Number(m[2]) } : undefined;
  }
  return undefined;
}

/** Count, on the router, the RFC 3948 §2.3 NAT-keepalives (one 0xFF octet) INSIDE sends from UDP 4500. */
async function countKeepalives(router: Netns): Promise<void> {
  await router.run('nft', ['-f', '-'], { input: `add table ip kipsec_count
add chain ip kipsec_count forward { type filter hook forward priority 0; policy accept; }
add rule ip kipsec_count forward ip saddr ${INSIDE} udp sport 4500 udp length 9 @th,64,8 0xff counter
` });
}

async function keepalivesSeen(router: Netns): Promise<number> {
  const out = (await router.run('nft', ['list', 'chain', 'ip', 'kipsec_count', 'forward'])).stdout;
  return Number(/counter packets (\d+)/.exec(out)?.[1] ?? 0);
}

function seqsOf(pingOut: string): Set<number> { return new Set([...pingOut.matchAll(/icmp_seq=(\d+)/g)].map((m) => Number(m[1]))); }

/** Loss report of a ping run across a mapping change, and whether its last `tail` echoes all came back. */
function lossReport(out: string, tail: number): { text: string; recovered: boolean } {
  const c = pingCounts(out);
  const seqs = seqsOf(out);
  const missing = [...Array(c.sent).keys()].map((i) => i + 1).filter((s) => !seqs.has(s));
  const recovered = c.sent > tail && [...Array(tail).keys()].every((i) => seqs.has(c.sent - i));
  return { text: `${c.received}/${c.sent} echoes; lost seq ${missing.length ? `${missing[0]}..${missing[missing.length - 1]} (${missing.length})` : 'none'}`, recovered };
}

async function ping(ns: Netns, from: string, to: string, count = 3): Promise<string> {
  return (await ns.run('ping', ['-c', String(count), '-i', '0.2', '-W', '3', '-I', from, to], { check: false })).stdout;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('agent behind a masquerading NAT initiates: NAT detected, float to 4500 (RFC 7296 §2.23), kernel ESP-in-UDP both ways (RFC 3948), ping; a NAT mapping change is followed by charon', async (t) => {
  const { inside: a, router: r, outside: b } = await natTopology(t);
  await countKeepalives(r);
  await a.run('ip', ['addr', 'add', '10.1.0.1/24', 'dev', 'lo']);
  await b.run('ip', ['addr', 'add', '10.2.0.1/24', 'dev', 'lo']);
  const swan = await StrongSwan.start(t, b, {
    mode: 'kernel',
    swanctl: swanctlConf([{ name: 'nat', local: PEER, remote: INSIDE, remoteAddrs: '%any', remotePskId: INSIDE,
      localTs: '10.2.0.0/24', remoteTs: '10.1.0.0/24', proposals: 'aes256gcm16-prfsha384-x25519', espProposals: 'aes256gcm16', auth: { psk: PSK } }]),
  });
  const config = tunnelYaml({ name: 'nat', local: INSIDE, remote: PEER, localSubnets: ['10.1.0.0/24'], remoteSubnets: ['10.2.0.0/24'] });
  const agent = await AgentProcess.start(t, a, { config, files: { psk: `${PSK}\n` } });
  const st = await agent.waitEstablished('nat', 120_000);
  assert.equal(st.role, 'initiator');
  assert.equal(st.natDetected, true, 'NAT detected');
  assert.equal(st.remotePort, 4500, 'floated to 4500 (the peer is not behind a NAT)');
  const child = st.children.find((c) => c.state === 'installed')!;
  assert.equal(child.encap, true, 'Child SA uses ESP-in-UDP');

  // The router translated both IKE ports into its range; charon sees the IKE SA at the 4500 mapping.
  const nat = await mappings(r);
  const m500 = nat.list.find((m) => m.insidePort === 500 && m.peerPort === 500)?.publicPort;
  const m4500 = nat.list.find((m) => m.insidePort === 4500 && m.peerPort === 4500)?.publicPort;
  t.diagnostic(`NAT mappings: ${INSIDE}:500 → ${PUBLIC}:${m500}, ${INSIDE}:4500 → ${PUBLIC}:${m4500}\n${nat.text}`);
  for (const p of [m500, m4500]) assert.ok(p !== undefined && p >= FIRST_RANGE.lo && p <= FIRST_RANGE.hi, `both IKE ports mapped into the range:\n${nat.text}`);
  const sas = await swan.listSas();
  assert.deepEqual(swanRemote(sas), { address: PUBLIC, port: m4500 }, `charon sees the agent at the mapped 4500:\n${sas}`);

  // Kernel ESP-in-UDP on both sides: ours 4500 ↔ 4500, charon's 4500 ↔ the mapped port.
  const ours = (await a.run('ip', ['xfrm', 'state'])).stdout;
  assert.deepEqual(encapOf(ours, INSIDE, PEER), { sport: 4500, dport: 4500 }, ours);
  assert.deepEqual(encapOf(ours, PEER, INSIDE), { sport: 4500, dport: 4500 }, ours);
  const theirsX = (await b.run('ip', ['xfrm', 'state'])).stdout;
  assert.deepEqual(encapOf(theirsX, PEER, PUBLIC), { sport: 4500, dport: m4500 }, theirsX);
  assert.deepEqual(encapOf(theirsX, PUBLIC, PEER), { sport: m4500, dport: 4500 }, theirsX);

  const out = await ping(a, '10.1.0.1', '10.2.0.1');
  assert.equal(pingCounts(out).received, 3, `ping from behind the NAT:\n${out}\n${await agent.table()}\n${sas}`);
  const back = await ping(b, '10.2.0.1', '10.1.0.1');
  assert.equal(pingCounts(back).received, 3, `ping towards the NAT:\n${back}`);
  const [theirs] = await swan.childSas();
  assert.ok(theirs && theirs.spiIn === child.spiOut && theirs.spiOut === child.spiIn, `SPIs agree:\n${await swan.listSas()}`);
  assert.ok(theirs.packetsIn >= 6 && theirs.packetsOut >= 6, `ESP both ways at charon:\n${await swan.listSas()}`);
  t.diagnostic(`kipsec status behind NAT:\n${await agent.table()}\ncharon:\n${sas}`);

  // Mapping change under a continuous ping from behind the NAT.
  const pinging = a.run('ping', ['-c', '80', '-i', '0.25', '-W', '2', '-I', '10.1.0.1', '10.2.0.1'], { check: false, timeoutMs: 120_000 });
  await sleep(3_000);
  await remap(r, SECOND_RANGE);
  const res = await pinging;
  const loss = lossReport(res.stdout, 20);
  const after = await mappings(r);
  const n4500 = after.list.find((m) => m.insidePort === 4500 && m.peerPort === 4500)?.publicPort;
  const sas2 = await swan.listSas();
  t.diagnostic(`mapping change ${PUBLIC}:${m4500} → ${PUBLIC}:${n4500}: ${loss.text}\n${after.text}\ncharon:\n${sas2}`);
  assert.ok(n4500 !== undefined && n4500 >= SECOND_RANGE.lo && n4500 <= SECOND_RANGE.hi, `a new mapping in the new range:\n${after.text}`);
  assert.ok(loss.recovered, `the ping recovered after the mapping change (${loss.text}):\n${res.stdout.split('\n').slice(-5).join('\n')}\n${sas2}\ncharon log:\n${swan.log().slice(-4000)}`);
  assert.deepEqual(swanRemote(sas2), { address: PUBLIC, port: n4500 }, `charon follows the new mapping:\n${sas2}`);
  const theirsX2 = (await b.run('ip', ['xfrm', 'state'])).stdout;
  assert.deepEqual(encapOf(theirsX2, PEER, PUBLIC), { sport: 4500, dport: n4500 }, `charon's kernel SA encapsulates to the new port:\n${theirsX2}`);
  const st2 = await agent.tunnel('nat');
  assert.equal(st2.ikeState, 'established');
  assert.deepEqual(st2.children.map((c) => [c.spiIn, c.spiOut]), [[child.spiIn, child.spiOut]], 'the same Child SA carries on: no new negotiation');
  // The side behind the NAT keeps its mapping alive: NAT-keepalives from its 4500 socket (every 20 s).
  let keepalives = 0;
  for (let i = 0; i < 60 && keepalives === 0; i++) { keepalives = await keepalivesSeen(r); if (keepalives === 0) await sleep(500); }
  t.diagnostic(`NAT-keepalives from ${INSIDE}:4500 through the router: ${keepalives}`);
  assert.ok(keepalives >= 1, 'the agent behind the NAT sends NAT-keepalives from UDP 4500 (RFC 3948 §2.3)');
  assert.equal(await agent.stop(), 0);
});

test('charon behind a masquerading NAT initiates to the agent: the agent encapsulates to the mapped port (RFC 3948), ping; after a NAT mapping change the agent follows the first authenticated ESP packet from the new port, with no IKE message (RFC 7296 §2.23)', async (t) => {
  const { inside: b, router: r, outside: a } = await natTopology(t);
  await a.run('ip', ['addr', 'add', '10.1.0.1/24', 'dev', 'lo']);
  await b.run('ip', ['addr', 'add', '10.2.0.1/24', 'dev', 'lo']);
  // No dpd_delay (strongSwan's default): after the mapping change charon sends ESP and keepalives, no IKE.
  const swan = await StrongSwan.start(t, b, {
    mode: 'kernel',
    swanctl: swanctlConf([{ name: 'nat', local: INSIDE, remote: PEER, localTs: '10.2.0.0/24', remoteTs: '10.1.0.0/24',
      proposals: 'aes256gcm16-prfsha384-x25519', espProposals: 'aes256gcm16', auth: { psk: PSK } }]),
  });
  const config = tunnelYaml({ name: 'nat', local: PEER, remote: PUBLIC, remoteId: INSIDE, localSubnets: ['10.1.0.0/24'], remoteSubnets: ['10.2.0.0/24'], startAction: 'respond' });
  const agent = await AgentProcess.start(t, a, { config, files: { psk: `${PSK}\n` } });
  const init = await swan.initiate('nat', 90);
  assert.equal(init.code, 0, `charon initiates through the NAT:\n${init.stdout}\n${swan.log().slice(-4000)}`);
  const st = await agent.waitEstablished('nat', 60_000);
  const nat = await mappings(r);
  const m500 = nat.list.find((m) => m.insidePort === 500 && m.peerPort === 500)?.publicPort;
  const m4500 = nat.list.find((m) => m.insidePort === 4500 && m.peerPort === 4500)?.publicPort;
  t.diagnostic(`NAT mappings: ${INSIDE}:500 → ${PUBLIC}:${m500}, ${INSIDE}:4500 → ${PUBLIC}:${m4500}\n${nat.text}`);
  for (const p of [m500, m4500]) assert.ok(p !== undefined && p >= FIRST_RANGE.lo && p <= FIRST_RANGE.hi, `both IKE ports mapped into the range:\n${nat.text}`);
  assert.equal(st.role, 'responder');
  assert.equal(st.natDetected, true, 'NAT detected');
  assert.equal(st.remotePort, m4500, 'the IKE SA talks to the mapped 4500');
  const child = st.children.find((c) => c.state === 'installed')!;
  assert.equal(child.encap, true);
  const ours = (await a.run('ip', ['xfrm', 'state'])).stdout;
  assert.deepEqual(encapOf(ours, PEER, PUBLIC), { sport: 4500, dport: m4500 }, ours);
  assert.deepEqual(encapOf(ours, PUBLIC, PEER), { sport: m4500, dport: 4500 }, ours);

  const out = await ping(a, '10.1.0.1', '10.2.0.1');
  assert.equal(pingCounts(out).received, 3, `ping into the NAT:\n${out}\n${await agent.table()}\n${await swan.listSas()}`);
  const back = await ping(b, '10.2.0.1', '10.1.0.1');
  assert.equal(pingCounts(back).received, 3, `ping from behind the NAT:\n${back}`);
  const [theirs] = await swan.childSas();
  assert.ok(theirs && theirs.spiIn === child.spiOut && theirs.spiOut === child.spiIn, `SPIs agree:\n${await swan.listSas()}`);
  t.diagnostic(`kipsec status, peer behind NAT:\n${await agent.table()}`);

  // Mapping change under a continuous ping from behind the NAT: charon's echo requests arrive
  // from a new port; our replies would go to the stale mapping, which the router drops, until we
  // follow the first authenticated ESP packet from the new one.
  const pinging = b.run('ping', ['-c', '100', '-i', '0.25', '-W', '2', '-I', '10.2.0.1', '10.1.0.1'], { check: false, timeoutMs: 120_000 });
  await sleep(3_000);
  await remap(r, SECOND_RANGE);
  const res = await pinging;
  const loss = lossReport(res.stdout, 20);
  const n4500 = await mappedPort(r, 4500, 4500);
  const st2 = await agent.tunnel('nat');
  const ours2 = (await a.run('ip', ['xfrm', 'state'])).stdout;
  t.diagnostic(`mapping change ${PUBLIC}:${m4500} → ${PUBLIC}:${n4500}: ${loss.text}\n${(await mappings(r)).text}\nkipsec status:\n${await agent.table()}`);
  assert.ok(n4500 !== undefined && n4500 >= SECOND_RANGE.lo && n4500 <= SECOND_RANGE.hi, `a new mapping in the new range:\n${(await mappings(r)).text}`);
  assert.ok(loss.recovered, `the ping recovered after the mapping change (${loss.text}):\n${res.stdout.split('\n').slice(-5).join('\n')}\nagent log:\n${agent.log().slice(-4000)}`);
  assert.equal(st2.remotePort, n4500, 'the IKE SA follows the new mapping');
  assert.match(agent.log(), /following the peer's new NAT mapping/, 'the engine moved the SAs (followPeer)');
  assert.deepEqual(encapOf(ours2, PEER, PUBLIC), { sport: 4500, dport: n4500 }, `our kernel SA encapsulates to the new port:\n${ours2}`);
  assert.deepEqual(encapOf(ours2, PUBLIC, PEER), { sport: n4500, dport: 4500 }, ours2);
  assert.deepEqual(st2.children.map((c) => [c.spiIn, c.spiOut]), [[child.spiIn, child.spiOut]], 'the same Child SA carries on: no new negotiation');
  assert.equal(await agent.stop(), 0);
});
