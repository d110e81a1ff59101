// The cluster lane's wire probe (e2e/lib/capture.ts): the pcap classifier that decides "no
// plaintext between pods". Why these tests: a probe that silently misses a case passes a lane that
// leaks, so each way plaintext can look on the wire (outer, inside VXLAN/Geneve, IPv6 behind
// extension headers, fragments, AH) and each way ESP and IKE look (proto 50, ESP-in-UDP, the
// non-ESP marker, keepalives) is a synthesised frame here with the classification it must get.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Writer } from '../../../src/common/bytes.js';
import { ParseError } from '../../../src/common/errors.js';
import { classifyPcap, formatIp, readPcap, type ClassifyOptions } from '../../../e2e/lib/capture.js';
import { repoPath } from '../../lib/paths.js';

// ---- frame builders (headers as RFC 791/768/8200/7348/8926/4303 lay them out; checksums zero) ----

const MAC_A = [0x02, 0, 0, 0, 0, 0x0a];
const MAC_B = [0x02, 0, 0, 0, 0, 0x0b];

function ip4(s: string): number[] { return s.split('.').map(Number); }

function eth(payload: Uint8Array, ethertype = 0x0800, vlan?: number): Uint8Array {
  const w = new Writer().bytes(Uint8Array.from(MAC_B)).bytes(Uint8Array.from(MAC_A));
  if (vlan !== undefined) w.u16(0x8100).u16(vlan);
  return w.u16(ethertype).bytes(payload).finish();
}

function ipv4(src: string, dst: string, proto: number, payload: Uint8Array, o: { fragOffset8?: number } = {}): Uint8Array {
  return new Writer().u8(0x45).u8(0).u16(20 + payload.length).u16(1).u16(o.fragOffset8 ?? 0x4000)
    .u8(64).u8(proto).u16(0).bytes(Uint8Array.from(ip4(src))).bytes(Uint8Array.from(ip4(dst))).bytes(payload).finish();
}

function v6(s: string): Uint8Array {
  const [head = '', tail = ''] = s.split('::');
  const h = head ? head.split(':') : [], t = tail ? tail.split(':') : [];
  const groups = [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t].map((g) => parseInt(g, 16));
  const w = new Writer();
  for (const g of groups) w.u16(g);
  return w.finish();
}

function ipv6(src: string, dst: string, next: number, payload: Uint8Array): Uint8Array {
  return new Writer().u32(0x60000000).u16(payload.length).u8(next).u8(64).bytes(v6(src)).bytes(v6(dst)).bytes(payload).finish();
}

function udp(sport: number, dport: number, payload: Uint8Array): Uint8Array {
  return new Writer().u16(sport).u16(dport).u16(8 + payload.length).u16(0).bytes(payload).finish();
}

function icmpEcho(type = 8, id = 7, seq = 1): Uint8Array {
  return new Writer().u8(type).u8(0).u16(0).u16(id).u16(seq).bytes(new Uint8Array(56).fill(0x61)).finish();
}

function tcpSyn(sport: number, dport: number): Uint8Array {
  return new Writer().u16(sport).u16(dport).u32(1).u32(0).u16(0x5002).u16(65535).u16(0).u16(0).finish();
}

/** RFC 4303 §2: SPI, sequence number, then (opaque here) IV, ciphertext, ICV. */
function esp(spi: number, seq = 1, len = 80): Uint8Array {
  return new Writer().u32(spi).u32(seq).bytes(new Uint8Array(len).fill(0xa5)).finish();
}

/** RFC 7348 §5: flags with the I bit, reserved, VNI, reserved; then the inner Ethernet frame. */
function vxlan(vni: number, inner: Uint8Array, flags = 0x08): Uint8Array {
  return new Writer().u8(flags).zeros(3).u32(vni << 8).bytes(inner).finish();
}

/** RFC 8926 §3.4: version 0, no options, protocol type 0x6558 (Ethernet), VNI. */
function geneve(vni: number, inner: Uint8Array): Uint8Array {
  return new Writer().u8(0).u8(0).u16(0x6558).u32(vni << 8).bytes(inner).finish();
}

function pcap(frames: readonly Uint8Array[], o: { be?: boolean; nano?: boolean; linktype?: number } = {}): Uint8Array {
  const w = new Writer();
  const u32 = (v: number): void => { if (o.be) w.u32(v); else w.u32le(v); };
  const u16 = (v: number): void => { if (o.be) w.u16(v); else w.u16le(v); };
  u32(o.nano ? 0xa1b23c4d : 0xa1b2c3d4); u16(2); u16(4); u32(0); u32(0); u32(262144); u32(o.linktype ?? 1);
  frames.forEach((f, i) => { u32(1_700_000_000 + i); u32(o.nano ? 1000 * i : i); u32(f.length); u32(f.length); w.bytes(f); });
  return w.finish();
}

const PODS: ClassifyOptions['podCidrs'] = [
  { node: 'node-a', cidr: '10.244.1.0/24' }, { node: 'node-b', cidr: '10.244.2.0/24' },
  { node: 'node-a', cidr: 'fd00:10:244:1::/64' }, { node: 'node-b', cidr: 'fd00:10:244:2::/64' },
];
const NODE_A = '192.0.2.11', NODE_B = '192.0.2.12';
const podPing = (src = '10.244.1.2', dst = '10.244.2.2'): Uint8Array => eth(ipv4(src, dst, 1, icmpEcho()));
const classify = (frames: readonly Uint8Array[], o: Partial<ClassifyOptions> = {}): ReturnType<typeof classifyPcap> =>
  classifyPcap(pcap(frames), { podCidrs: PODS, ...o });

// ---- plaintext between pods ----

test('counts an ICMP echo between pod CIDRs of two nodes as plaintext, with the packet as the example', () => {
  const r = classify([podPing(), eth(ipv4('10.244.2.2', '10.244.1.2', 1, icmpEcho(0)))]);
  assert.equal(r.packets, 2);
  assert.equal(r.plaintextBetweenPods, 2);
  assert.deepEqual(r.plaintextByProtocol, { icmp: 2 });
  assert.equal(r.esp, 0);
  assert.match(r.examples.plaintextBetweenPods[0]!, /^#0 \+0\.000000s 10\.244\.1\.2 > 10\.244\.2\.2 ICMP echo request id 7 seq 1 \(node-a → node-b\)$/);
});

test('does not count traffic between pods of one node, or between a pod and a node address (only pod CIDR ↔ pod CIDR across nodes is in scope)', () => {
  const r = classify([podPing('10.244.1.2', '10.244.1.3'), podPing('10.244.1.2', NODE_B), podPing(NODE_A, '10.244.2.2')]);
  assert.equal(r.plaintextBetweenPods, 0);
});

test('counts a TCP segment between IPv6 pod CIDRs behind a hop-by-hop header as plaintext (RFC 8200 §4.3)', () => {
  const hopByHop = new Writer().u8(6).u8(0).zeros(6).bytes(tcpSyn(40000, 5201)).finish();
  const r = classify([eth(ipv6('fd00:10:244:1::2', 'fd00:10:244:2::2', 0, hopByHop), 0x86dd)]);
  assert.equal(r.plaintextBetweenPods, 1);
  assert.deepEqual(r.plaintextByProtocol, { tcp: 1 });
  assert.match(r.examples.plaintextBetweenPods[0]!, /fd00:10:244:1::2:40000 > fd00:10:244:2::2:5201 TCP \[S\]/);
});

test('counts a non-first IPv4 fragment between pods as plaintext: its payload is the plain packet\'s (RFC 791 §2.3)', () => {
  const r = classify([eth(ipv4('10.244.1.2', '10.244.2.2', 6, new Uint8Array(64), { fragOffset8: 185 }))]);
  assert.equal(r.plaintextBetweenPods, 1);
  assert.deepEqual(r.plaintextByProtocol, { fragment: 1 });
});

test('counts AH between pods as plaintext: AH authenticates, it does not encrypt (RFC 4302 §1)', () => {
  const ah = new Writer().u8(1).u8(4).u16(0).u32(0x1000).u32(1).zeros(12).bytes(icmpEcho()).finish();
  const r = classify([eth(ipv4('10.244.1.2', '10.244.2.2', 51, ah))]);
  assert.equal(r.plaintextBetweenPods, 1);
  assert.deepEqual(r.plaintextByProtocol, { ah: 1 });
});

test('reads through an 802.1Q tag to the IP packet (IEEE 802.1Q: TPID 0x8100, TCI, then the ethertype)', () => {
  const r = classify([eth(ipv4('10.244.1.2', '10.244.2.2', 1, icmpEcho()), 0x0800, 100)]);
  assert.equal(r.undecodable, 0);
  assert.equal(r.plaintextBetweenPods, 1);
});

// ---- ESP, IKE, keepalives ----

test('counts IP protocol 50 as ESP and never as plaintext, even between pod addresses (RFC 4303 §2)', () => {
  const r = classify([eth(ipv4(NODE_A, NODE_B, 50, esp(0xc0000001))), eth(ipv4('10.244.1.2', '10.244.2.2', 50, esp(0xc0000002)))]);
  assert.equal(r.esp, 2);
  assert.equal(r.espInUdp, 0);
  assert.equal(r.plaintextBetweenPods, 0);
});

test('counts UDP 4500 with a non-zero first word as ESP in UDP (RFC 3948 §2.1)', () => {
  const r = classify([eth(ipv4(NODE_A, NODE_B, 17, udp(4500, 4500, esp(0xc0000003))))]);
  assert.equal(r.esp, 1);
  assert.equal(r.espInUdp, 1);
  assert.equal(r.ike, 0);
  assert.equal(r.plaintextBetweenPods, 0);
});

test('sums the original length of outer ESP-in-UDP packets (a UDP GSO super-packet counts all its bytes), not IKE and not ESP inside an overlay', () => {
  const big = eth(ipv4(NODE_A, NODE_B, 17, udp(4500, 4500, esp(0xc0000006, 1, 2000))));
  const small = eth(ipv4(NODE_B, NODE_A, 17, udp(4500, 4500, esp(0xc0000007, 1, 40))));
  const ike = eth(ipv4(NODE_A, NODE_B, 17, udp(4500, 4500, new Uint8Array(40))));
  const r = classify([big, small, ike, vxlanFrame(eth(ipv4('10.244.1.2', '10.244.2.2', 17, udp(4500, 4500, esp(0xc0000008)))))], { overlay: { kind: 'vxlan', port: 4789 } });
  assert.equal(r.espInUdp, 3);
  assert.equal(r.espInUdpBytes, big.length + small.length);
});

test('counts UDP 4500 with the four-zero-byte non-ESP marker as IKE, not ESP (RFC 3948 §2.2)', () => {
  const ike = new Writer().u32(0).bytes(new Uint8Array(28).fill(1)).finish();
  const r = classify([eth(ipv4(NODE_A, NODE_B, 17, udp(4500, 4500, ike))), eth(ipv4(NODE_A, NODE_B, 17, udp(500, 500, new Uint8Array(28))))]);
  assert.equal(r.ike, 2);
  assert.equal(r.esp, 0);
});

test('counts the one-byte 0xff NAT-keepalive as a keepalive, neither ESP nor plaintext (RFC 3948 §2.3)', () => {
  const r = classify([eth(ipv4(NODE_A, NODE_B, 17, udp(4500, 4500, Uint8Array.of(0xff))))]);
  assert.equal(r.nattKeepalive, 1);
  assert.equal(r.esp, 0);
  assert.equal(r.ike, 0);
  assert.equal(r.plaintextBetweenPods, 0);
  assert.equal(r.undecodable, 0);
});

test('classifies the recorded strongSwan exchange (test/golden/ike/psk-gcm.pcap) as IKE only: IKE_SA_INIT on 500, the rest on 4500 behind the marker', () => {
  const bytes = readFileSync(repoPath('test/golden/ike/psk-gcm.pcap'));
  const r = classifyPcap(bytes, { podCidrs: PODS });
  assert.ok(r.packets >= 4, `${r.packets} packets`);
  assert.equal(r.ike, r.packets);
  assert.equal(r.esp + r.plaintextBetweenPods + r.plaintextOverlay + r.undecodable, 0);
});

// ---- overlays ----

const vxlanFrame = (inner: Uint8Array, port = 4789, flags = 0x08): Uint8Array => eth(ipv4(NODE_A, NODE_B, 17, udp(34601, port, vxlan(1, inner, flags))));

test('counts an ICMP echo between pod CIDRs inside VXLAN as plaintext (RFC 7348 §5 inner frame), and the VXLAN datagram as overlay plaintext', () => {
  const r = classify([vxlanFrame(podPing())], { overlay: { kind: 'vxlan', port: 4789 } });
  assert.equal(r.overlayFrames, 1);
  assert.equal(r.plaintextOverlay, 1);
  assert.equal(r.plaintextBetweenPods, 1);
  assert.equal(r.plaintextBetweenPodsInOverlay, 1);
  assert.deepEqual(r.plaintextByProtocol, { icmp: 1 });
  assert.match(r.examples.plaintextBetweenPods[0]!, /10\.244\.1\.2 > 10\.244\.2\.2 ICMP echo request .*\(inside VXLAN vni 1, 192\.0\.2\.11:34601 > 192\.0\.2\.12:4789\)$/);
  assert.match(r.examples.plaintextOverlay[0]!, /192\.0\.2\.11:34601 > 192\.0\.2\.12:4789 UDP/);
});

test('decodes VXLAN on the configured port 8472 (flannel\'s default) and watches only that port for overlay plaintext', () => {
  const r = classify([vxlanFrame(podPing(), 8472), eth(ipv4(NODE_A, NODE_B, 17, udp(1, 4789, new Uint8Array(8))))], { overlay: { kind: 'vxlan', port: 8472 } });
  assert.equal(r.plaintextBetweenPods, 1);
  assert.equal(r.plaintextOverlay, 1);
  const custom = classify([vxlanFrame(podPing(), 9999)], { overlay: { kind: 'vxlan', port: 9999 } });
  assert.equal(custom.plaintextBetweenPodsInOverlay, 1);
});

test('without an overlay given, looks inside VXLAN on the well-known ports and counts UDP to them (4789 IANA, 8472 Linux, 6081 Geneve)', () => {
  const r = classify([vxlanFrame(podPing(), 4789), vxlanFrame(podPing(), 8472)]);
  assert.equal(r.plaintextBetweenPodsInOverlay, 2);
  assert.equal(r.plaintextOverlay, 2);
});

test('counts UDP to the overlay port as overlay plaintext even when it is not valid VXLAN (I flag clear)', () => {
  const r = classify([vxlanFrame(podPing(), 4789, 0x00)], { overlay: { kind: 'vxlan', port: 4789 } });
  assert.equal(r.plaintextOverlay, 1);
  assert.equal(r.overlayFrames, 0);
  assert.equal(r.plaintextBetweenPods, 0);
});

test('counts ESP carrying the overlay between node addresses as ESP, with no overlay plaintext (transport mode for the overlay port, DESIGN.md §5)', () => {
  const r = classify([eth(ipv4(NODE_A, NODE_B, 50, esp(0xc0000004, 1, 160)))], { overlay: { kind: 'vxlan', port: 4789 } });
  assert.equal(r.esp, 1);
  assert.equal(r.plaintextOverlay + r.plaintextBetweenPods, 0);
});

test('counts ESP inside VXLAN as ESP, not plaintext', () => {
  const r = classify([vxlanFrame(eth(ipv4('10.244.1.2', '10.244.2.2', 50, esp(0xc0000005))))], { overlay: { kind: 'vxlan', port: 4789 } });
  assert.equal(r.esp, 1);
  assert.equal(r.plaintextBetweenPods, 0);
  assert.equal(r.plaintextOverlay, 1);
});

test('counts a TCP segment between pods inside Geneve as plaintext (RFC 8926 §3.4, protocol type 0x6558)', () => {
  const inner = eth(ipv4('10.244.2.2', '10.244.1.2', 6, tcpSyn(5201, 40000)));
  const r = classify([eth(ipv4(NODE_B, NODE_A, 17, udp(40000, 6081, geneve(7, inner))))]);
  assert.equal(r.plaintextBetweenPodsInOverlay, 1);
  assert.deepEqual(r.plaintextByProtocol, { tcp: 1 });
  assert.match(r.examples.plaintextBetweenPods[0]!, /inside GENEVE vni 7/);
});

// ---- the file format ----

test('reads big-endian and nanosecond pcaps alike (pcap file format: magic in the writer\'s byte order)', () => {
  for (const o of [{ be: true }, { nano: true }, { be: true, nano: true }]) {
    const r = classifyPcap(pcap([podPing(), podPing()], o), { podCidrs: PODS });
    assert.equal(r.plaintextBetweenPods, 2, JSON.stringify(o));
  }
  const f = readPcap(pcap([podPing(), podPing()], { nano: true }));
  assert.equal(f.records[1]!.tsUs - f.records[0]!.tsUs, 1_000_001);
});

test('keeps the whole records of a file whose last record was cut short, and says so', () => {
  const bytes = pcap([podPing(), podPing()]);
  const r = classifyPcap(bytes.subarray(0, bytes.length - 10), { podCidrs: PODS });
  assert.equal(r.packets, 1);
  assert.equal(r.truncatedFile, true);
});

test('rejects pcapng and unknown magics with their own codes', () => {
  const ng = new Writer().u32(0x0a0d0d0a).zeros(28).finish();
  assert.throws(() => readPcap(ng), (e: unknown) => e instanceof ParseError && e.code === 'ERR_PCAP_NG');
  assert.throws(() => readPcap(new Uint8Array(24).fill(7)), (e: unknown) => e instanceof ParseError && e.code === 'ERR_PCAP_MAGIC');
});

test('reads raw-IP captures (LINKTYPE_RAW 101) and Linux cooked ones (LINKTYPE_LINUX_SLL 113)', () => {
  const raw = classifyPcap(pcap([ipv4('10.244.1.2', '10.244.2.2', 1, icmpEcho())], { linktype: 101 }), { podCidrs: PODS });
  assert.equal(raw.plaintextBetweenPods, 1);
  const sll = new Writer().u16(0).u16(1).u16(6).bytes(new Uint8Array(8)).u16(0x0800).bytes(ipv4('10.244.1.2', '10.244.2.2', 1, icmpEcho())).finish();
  assert.equal(classifyPcap(pcap([sll], { linktype: 113 }), { podCidrs: PODS }).plaintextBetweenPods, 1);
});

test('reports a frame cut inside its IP header as undecodable, with the frame in hex, instead of passing it', () => {
  const r = classify([podPing().subarray(0, 14 + 12)]);
  assert.equal(r.undecodable, 1);
  assert.equal(r.plaintextBetweenPods, 0);
  assert.match(r.examples.undecodable[0]!, /need 4 bytes/);
});

test('formats IPv6 addresses as RFC 5952 §4.2 says (longest zero run as ::)', () => {
  assert.equal(formatIp(v6('fd00:0:0:1::2')), 'fd00:0:0:1::2');
  assert.equal(formatIp(v6('2001:db8::1')), '2001:db8::1');
  assert.equal(formatIp(Uint8Array.of(10, 244, 1, 2)), '10.244.1.2');
});
