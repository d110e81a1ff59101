// Captures on the wire and what they prove. `WireCapture` runs tcpdump in the switch namespace on
// the bridge (a promiscuous bridge device sees every frame it forwards between its ports), writes a
// pcap, and is stopped by pid with SIGINT so the file is complete. `classifyPcap` reads that pcap
// itself — pcap file format (draft-ietf-opsawg-pcap), Ethernet II with 802.1Q tags, IPv4
// (RFC 791), IPv6 with extension headers (RFC 8200), UDP — and looks inside overlay frames
// (VXLAN, RFC 7348 §5; Geneve, RFC 8926 §3) at the inner packet too. It reports:
//   - ESP: IP protocol 50 (RFC 4303), and ESP in UDP on port 4500 whose first four bytes (the
//     SPI) are not zero (RFC 3948 §2.2; zero is the non-ESP marker before IKE, a lone 0xff byte
//     is a NAT-keepalive, §2.3);
//   - plaintextBetweenPods: packets, outer or inner, whose source and destination both lie in pod
//     CIDRs of two different nodes and that are not ESP (AH only authenticates: it counts);
//   - plaintextOverlay: every UDP datagram to the overlay port, whatever it carries.
import { readFileSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { Reader } from '../../src/common/bytes.js';
import { ParseError } from '../../src/common/errors.js';
import type { Netns, Scope } from './netns.js';

// ---------------------------------------------------------------------------------------------
// Constants, with the names of their sources.
// pcap file format: magic in the writer's byte order; 0xa1b2c3d4 microsecond, 0xa1b23c4d nanosecond.
const PCAP_MAGIC_US = 0xa1b2c3d4;
const PCAP_MAGIC_NS = 0xa1b23c4d;
const PCAPNG_MAGIC = 0x0a0d0d0a;
const PCAP_GLOBAL_HEADER_LEN = 24;
const PCAP_RECORD_HEADER_LEN = 16;
const PCAP_MAX_RECORD = 262_144;
// LINKTYPE_* values from the tcpdump.org link-layer header types registry.
const LINKTYPE_ETHERNET = 1;
const LINKTYPE_RAW = 101;
const LINKTYPE_LINUX_SLL = 113;
const LINKTYPE_LINUX_SLL2 = 276;
const ETH_P_IP = 0x0800;
const ETH_P_ARP = 0x0806;
const ETH_P_8021Q = 0x8100;
const ETH_P_8021AD = 0x88a8;
const ETH_P_QINQ = 0x9100;
const ETH_P_IPV6 = 0x86dd;
const ETH_P_TEB = 0x6558; // Transparent Ethernet Bridging, Geneve's protocol type for Ethernet
const IPPROTO_HOPOPTS = 0;
const IPPROTO_ICMP = 1;
const IPPROTO_TCP = 6;
const IPPROTO_UDP = 17;
const IPPROTO_ROUTING = 43;
const IPPROTO_FRAGMENT = 44;
const IPPROTO_ESP = 50;
const IPPROTO_AH = 51;
const IPPROTO_ICMPV6 = 58;
const IPPROTO_DSTOPTS = 60;
/** RFC 3948 §2: IKE and ESP share UDP port 4500. */
export const NAT_T_PORT = 4500;
export const VXLAN_IANA_PORT = 4789;
/** The Linux kernel's historical VXLAN port, flannel's default. */
export const VXLAN_LINUX_PORT = 8472;
export const GENEVE_PORT = 6081;
/** VXLAN header: flags (I bit 0x08 = VNI valid), 24 reserved bits, VNI, 8 reserved bits. */
const VXLAN_FLAG_I = 0x08;
const MAX_ENCAP_DEPTH = 3;

// ---------------------------------------------------------------------------------------------
// pcap reading

export interface PcapRecord {
  /** 0-based position in the file. */
  readonly index: number;
  /** Capture time in microseconds since the epoch. */
  readonly tsUs: number;
  readonly origLen: number;
  readonly data: Uint8Array;
}

export interface PcapFile {
  readonly linktype: number;
  readonly snaplen: number;
  readonly records: PcapRecord[];
  /** The last record was cut short (the writer died mid-record); it is left out. */
  readonly truncated: boolean;
}

/** Read a classic pcap file of either byte order and time resolution. */
export function readPcap(bytes: Uint8Array): PcapFile {
  const r = new Reader(bytes);
  if (bytes.length < PCAP_GLOBAL_HEADER_LEN) throw new ParseError('ERR_PCAP_SHORT', `pcap is ${bytes.length} bytes, shorter than its ${PCAP_GLOBAL_HEADER_LEN}-byte header`, 0);
  const magicBe = r.u32('pcap magic');
  let le: boolean;
  let nano: boolean;
  if (magicBe === PCAP_MAGIC_US || magicBe === PCAP_MAGIC_NS) { le = false; nano = magicBe === PCAP_MAGIC_NS; }
  else {
    const magicLe = new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0, true);
    if (magicLe === PCAP_MAGIC_US || magicLe === PCAP_MAGIC_NS) { le = true; nano = magicLe === PCAP_MAGIC_NS; }
    else if (magicBe === PCAPNG_MAGIC) throw new ParseError('ERR_PCAP_NG', 'pcapng is not read here; write classic pcap (tcpdump -w does)', 0);
    else throw new ParseError('ERR_PCAP_MAGIC', `pcap magic 0x${magicBe.toString(16)}, want 0xa1b2c3d4 or 0xa1b23c4d in either byte order`, 0);
  }
  const u32 = (what: string): number => (le ? r.u32le(what) : r.u32(what));
  r.advance(4 + 4 + 4, 'version, thiszone, sigfigs');
  const snaplen = u32('snaplen');
  const linktype = u32('linktype') & 0x0fffffff; // the top bits carry FCS information
  const records: PcapRecord[] = [];
  let truncated = false;
  while (!r.done) {
    if (r.remaining < PCAP_RECORD_HEADER_LEN) { truncated = true; break; }
    const at = r.offset;
    const sec = u32('ts_sec');
    const frac = u32('ts_frac');
    const incl = u32('incl_len');
    const orig = u32('orig_len');
    if (incl > PCAP_MAX_RECORD) throw new ParseError('ERR_PCAP_RECORD', `record ${records.length} claims ${incl} bytes, more than ${PCAP_MAX_RECORD}`, at);
    if (r.remaining < incl) { truncated = true; break; }
    records.push({ index: records.length, tsUs: sec * 1e6 + (nano ? Math.floor(frac / 1000) : frac), origLen: orig, data: r.bytes(incl, 'record') });
  }
  return { linktype, snaplen, records, truncated };
}

// ---------------------------------------------------------------------------------------------
// Address prefixes

interface Prefix { readonly text: string; readonly bytes: Uint8Array; readonly len: number }

function parseIpv4(s: string): Uint8Array | undefined {
  const parts = s.split('.');
  if (parts.length !== 4 || !parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255)) return undefined;
  return Uint8Array.from(parts.map(Number));
}

function parseIpv6(s: string): Uint8Array | undefined {
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const groups = (h: string): number[] | undefined => {
    if (h === '') return [];
    const out: number[] = [];
    for (const g of h.split(':')) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
      out.push(parseInt(g, 16));
    }
    return out;
  };
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  if (!head || !tail) return undefined;
  const fill = 8 - head.length - tail.length;
  if ((halves.length === 1 && fill !== 0) || fill < 0 || (halves.length === 2 && fill < 1)) return undefined;
  const all = [...head, ...Array<number>(halves.length === 2 ? fill : 0).fill(0), ...tail];
  const out = new Uint8Array(16);
  all.forEach((g, i) => { out[2 * i] = g >> 8; out[2 * i + 1] = g & 0xff; });
  return out;
}

function parsePrefix(cidr: string): Prefix {
  const [addr, lenText] = cidr.split('/');
  const bytes = addr === undefined ? undefined : addr.includes(':') ? parseIpv6(addr) : parseIpv4(addr);
  const len = lenText === undefined ? (bytes?.length ?? 0) * 8 : Number(lenText);
  if (!bytes || !Number.isInteger(len) || len < 0 || len > bytes.length * 8 || (lenText !== undefined && !/^\d+$/.test(lenText)))
    throw new Error(`not an IPv4 or IPv6 prefix: ${JSON.stringify(cidr)}`);
  return { text: cidr, bytes, len };
}

function inPrefix(p: Prefix, a: Uint8Array): boolean {
  if (a.length !== p.bytes.length) return false;
  const full = p.len >> 3;
  for (let i = 0; i < full; i++) if (a[i] !== p.bytes[i]) return false;
  const rest = p.len & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return ((a[full]! ^ p.bytes[full]!) & mask) === 0;
}

export function formatIp(a: Uint8Array): string {
  if (a.length === 4) return a.join('.');
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((a[i]! << 8) | a[i + 1]!);
  // RFC 5952 §4.2: the longest run of two or more zero groups becomes "::".
  let best = -1, bestLen = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) { best = i; bestLen = j - i; }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

// ---------------------------------------------------------------------------------------------
// Packet decoding

/** One IP packet found in a frame: the outer one, or one inside an overlay frame. */
export interface IpPacket {
  readonly family: 4 | 6;
  readonly src: Uint8Array;
  readonly dst: Uint8Array;
  /** The upper-layer protocol after IPv6 extension headers (50 ESP, 51 AH stop the walk). */
  readonly proto: number;
  /** false for a non-first fragment: no upper-layer header here. */
  readonly firstFragment: boolean;
  /** The bytes after the IP header(s), cut to the IP length and to what was captured. */
  readonly payload: Uint8Array;
}

export type EncapKind = 'vxlan' | 'geneve';

interface Encap { readonly kind: EncapKind; readonly vni: number; readonly outer: string }

export interface ClassifyOptions {
  /** Pod CIDRs by node; a node may appear several times (dual stack, several ranges). */
  readonly podCidrs: ReadonlyArray<{ readonly node: string; readonly cidr: string }>;
  /**
   * The cluster's overlay. Its port is the one `plaintextOverlay` watches; without it the
   * well-known ports (4789, 8472 VXLAN; 6081 Geneve) are. Frames to those ports are decoded either way.
   */
  readonly overlay?: { readonly kind: EncapKind; readonly port: number } | undefined;
  /** How many offending packets to keep as text per finding (default 5). */
  readonly maxExamples?: number;
}

export interface CaptureReport {
  /** Records in the file. */
  readonly packets: number;
  /** The file ended inside a record (the writer was killed). */
  readonly truncatedFile: boolean;
  /** ESP packets: IP protocol 50 plus ESP in UDP (outer or inside an overlay). */
  readonly esp: number;
  /** Of those, ESP in UDP on 4500 (RFC 3948). */
  readonly espInUdp: number;
  /**
   * Bytes of the outer ESP-in-UDP packets (their original length): unlike the packet count it does
   * not depend on UDP GSO, where up to 64 datagrams cross a veth as one packet of the capture.
   */
  readonly espInUdpBytes: number;
  /** UDP 4500 with the four-zero-byte non-ESP marker, and UDP 500: IKE. */
  readonly ike: number;
  /** UDP 4500 carrying the single byte 0xff (RFC 3948 §2.3). */
  readonly nattKeepalive: number;
  /** Overlay frames decoded (VXLAN or Geneve), on any of the overlay ports. */
  readonly overlayFrames: number;
  /** Not-ESP packets between pod CIDRs of two different nodes, outer or inner. */
  readonly plaintextBetweenPods: number;
  /** Of those, the ones found inside an overlay frame. */
  readonly plaintextBetweenPodsInOverlay: number;
  /** plaintextBetweenPods by upper-layer protocol ('icmp', 'tcp', 'udp', 'icmpv6', 'ah', 'fragment', 'proto-N'). */
  readonly plaintextByProtocol: Readonly<Record<string, number>>;
  /** UDP datagrams to the overlay port, whatever they carry. */
  readonly plaintextOverlay: number;
  /** Frames the decoder could not read far enough to classify (an error, not a pass). */
  readonly undecodable: number;
  readonly examples: {
    readonly plaintextBetweenPods: readonly string[];
    readonly plaintextOverlay: readonly string[];
    readonly undecodable: readonly string[];
  };
}

interface Counts {
  esp: number; espInUdp: number; espInUdpBytes: number; ike: number; nattKeepalive: number; overlayFrames: number;
  plaintextBetweenPods: number; plaintextBetweenPodsInOverlay: number; plaintextOverlay: number; undecodable: number;
  byProto: Record<string, number>;
  exPods: string[]; exOverlay: string[]; exBad: string[];
}

interface Ctx {
  readonly pods: ReadonlyArray<{ readonly node: string; readonly prefix: Prefix }>;
  readonly vxlanPorts: ReadonlySet<number>;
  readonly genevePorts: ReadonlySet<number>;
  readonly overlayWatch: ReadonlySet<number>;
  readonly maxExamples: number;
  readonly c: Counts;
}

function protoName(p: number, firstFragment: boolean): string {
  if (!firstFragment) return 'fragment';
  switch (p) {
    case IPPROTO_ICMP: return 'icmp';
    case IPPROTO_TCP: return 'tcp';
    case IPPROTO_UDP: return 'udp';
    case IPPROTO_ICMPV6: return 'icmpv6';
    case IPPROTO_ESP: return 'esp';
    case IPPROTO_AH: return 'ah';
    default: return `proto-${p}`;
  }
}

/** The node whose pod CIDR holds `a` (longest prefix), if any. */
function podNode(ctx: Ctx, a: Uint8Array): string | undefined {
  let best: { node: string; len: number } | undefined;
  for (const p of ctx.pods) if (inPrefix(p.prefix, a) && (!best || p.prefix.len > best.len)) best = { node: p.node, len: p.prefix.len };
  return best?.node;
}

/** Parse an IPv4 or IPv6 header (RFC 791 §3.1, RFC 8200 §3-4) from `r`, which holds the packet. */
function decodeIp(r: Reader, ethertype: number): IpPacket | undefined {
  if (ethertype === ETH_P_IP) {
    const vihl = r.u8('IPv4 version/IHL');
    if (vihl >> 4 !== 4) throw new ParseError('ERR_IPV4_VERSION', `IPv4 ethertype with IP version ${vihl >> 4}`, r.offset - 1);
    const ihl = (vihl & 0x0f) * 4;
    if (ihl < 20) throw new ParseError('ERR_IPV4_IHL', `IPv4 IHL ${ihl} bytes`, r.offset - 1);
    r.advance(1, 'TOS');
    const total = r.u16('total length');
    r.advance(2, 'identification');
    const frag = r.u16('flags/fragment offset');
    r.advance(1, 'TTL');
    const proto = r.u8('protocol');
    r.advance(2, 'checksum');
    const src = r.bytes(4, 'source');
    const dst = r.bytes(4, 'destination');
    r.advance(Math.min(ihl - 20, r.remaining), 'options');
    // Cut to the IP length (Ethernet pads short frames); keep what was captured if snaplen cut it.
    const body = Math.max(0, Math.min(r.remaining, total - ihl));
    return { family: 4, src, dst, proto, firstFragment: (frag & 0x1fff) === 0, payload: r.bytes(body, 'IPv4 payload') };
  }
  if (ethertype === ETH_P_IPV6) {
    const v = r.u32('IPv6 version/class/flow');
    if (v >>> 28 !== 6) throw new ParseError('ERR_IPV6_VERSION', `IPv6 ethertype with IP version ${v >>> 28}`, r.offset - 4);
    const payloadLen = r.u16('payload length');
    let next = r.u8('next header');
    r.advance(1, 'hop limit');
    const src = r.bytes(16, 'source');
    const dst = r.bytes(16, 'destination');
    const body = r.sub(Math.min(r.remaining, payloadLen), 'IPv6 payload');
    let firstFragment = true;
    // Walk the extension headers that precede the upper layer (RFC 8200 §4.1).
    for (let guard = 0; guard < 16 && firstFragment; guard++) {
      if (next === IPPROTO_HOPOPTS || next === IPPROTO_ROUTING || next === IPPROTO_DSTOPTS) {
        const nh = body.u8('extension next header');
        const len = (body.u8('extension length') + 1) * 8;
        body.advance(len - 2, 'extension header');
        next = nh;
      } else if (next === IPPROTO_FRAGMENT) {
        const nh = body.u8('fragment next header');
        body.advance(1, 'fragment reserved');
        const off = body.u16('fragment offset') >> 3;
        body.advance(4, 'fragment identification');
        next = nh;
        if (off !== 0) firstFragment = false;
      } else break;
    }
    return { family: 6, src, dst, proto: next, firstFragment, payload: body.rest() };
  }
  return undefined;
}

function hex(b: Uint8Array, n: number): string { return Buffer.from(b.subarray(0, n)).toString('hex'); }

/** Text for one IP packet, like tcpdump -nn would say it. */
function describeIp(p: IpPacket): string {
  const src = formatIp(p.src), dst = formatIp(p.dst);
  if (!p.firstFragment) return `${src} > ${dst} IPv${p.family} fragment (proto ${p.proto})`;
  const r = new Reader(p.payload);
  try {
    switch (p.proto) {
      case IPPROTO_ICMP: case IPPROTO_ICMPV6: {
        const type = r.u8(), code = r.u8();
        r.advance(2);
        const echo = p.proto === IPPROTO_ICMP ? (type === 8 ? 'echo request' : type === 0 ? 'echo reply' : undefined) : (type === 128 ? 'echo request' : type === 129 ? 'echo reply' : undefined);
        const tail = echo ? ` ${echo} id ${r.u16()} seq ${r.u16()}` : ` type ${type} code ${code}`;
        return `${src} > ${dst} ${p.proto === IPPROTO_ICMP ? 'ICMP' : 'ICMP6'}${tail}`;
      }
      case IPPROTO_TCP: {
        const sp = r.u16(), dp = r.u16();
        r.advance(8);
        const flags = r.u16() & 0x3f;
        const names = [[0x02, 'S'], [0x01, 'F'], [0x04, 'R'], [0x08, 'P'], [0x10, '.']] as const;
        return `${src}:${sp} > ${dst}:${dp} TCP [${names.filter(([bit]) => flags & bit).map(([, n]) => n).join('')}] ${p.payload.length} bytes`;
      }
      case IPPROTO_UDP: return `${src}:${r.u16()} > ${dst}:${r.u16()} UDP length ${r.u16()}`;
      case IPPROTO_ESP: return `${src} > ${dst} ESP spi 0x${r.u32().toString(16).padStart(8, '0')}`;
      default: return `${src} > ${dst} ${protoName(p.proto, true).toUpperCase()} ${p.payload.length} bytes`;
    }
  } catch {
    return `${src} > ${dst} ${protoName(p.proto, p.firstFragment)} (header cut short)`;
  }
}

function example(list: string[], ctx: Ctx, rec: PcapRecord, t0: number, text: string): void {
  if (list.length < ctx.maxExamples) list.push(`#${rec.index} +${((rec.tsUs - t0) / 1e6).toFixed(6)}s ${text}`);
}

/** Classify one frame starting with an Ethernet header (or a raw IP packet for LINKTYPE_RAW). */
function classifyFrame(ctx: Ctx, rec: PcapRecord, t0: number, r: Reader, ethertypeIn: number | undefined, encap: Encap | undefined, depth: number): void {
  let ethertype = ethertypeIn;
  if (ethertype === undefined) {
    r.advance(12, 'Ethernet addresses');
    ethertype = r.u16('ethertype');
    while (ethertype === ETH_P_8021Q || ethertype === ETH_P_8021AD || ethertype === ETH_P_QINQ) {
      r.advance(2, 'VLAN tag');
      ethertype = r.u16('ethertype');
    }
  }
  if (ethertype === ETH_P_ARP) return;
  const ip = decodeIp(r, ethertype);
  if (!ip) return;
  const where = encap ? ` (inside ${encap.kind.toUpperCase()} vni ${encap.vni}, ${encap.outer})` : '';
  const c = ctx.c;
  let isEsp = ip.proto === IPPROTO_ESP;
  let udp: { sport: number; dport: number; body: Uint8Array } | undefined;
  if (ip.proto === IPPROTO_UDP && ip.firstFragment) {
    // RFC 768: ports, length (header included), checksum.
    const u = new Reader(ip.payload);
    const sport = u.u16('UDP source port'), dport = u.u16('UDP destination port'), len = u.u16('UDP length');
    u.advance(2, 'UDP checksum');
    udp = { sport, dport, body: u.bytes(Math.max(0, Math.min(u.remaining, len - 8)), 'UDP payload') };
  }
  if (udp && (udp.sport === NAT_T_PORT || udp.dport === NAT_T_PORT)) {
    const b = udp.body;
    if (b.length === 1 && b[0] === 0xff) c.nattKeepalive++;
    else if (b.length >= 4) {
      if (new Reader(b).u32('non-ESP marker') === 0) c.ike++;
      else { isEsp = true; c.espInUdp++; if (depth === 0) c.espInUdpBytes += rec.origLen; }
    } else throw new ParseError('ERR_NATT_SHORT', `UDP 4500 payload of ${b.length} bytes is neither a keepalive nor ESP nor IKE`, 0);
  } else if (udp && (udp.sport === 500 || udp.dport === 500)) c.ike++;
  if (isEsp) c.esp++;
  if (udp && ctx.overlayWatch.has(udp.dport)) {
    c.plaintextOverlay++;
    example(c.exOverlay, ctx, rec, t0, `${describeIp(ip)}${where}`);
  }
  const srcNode = podNode(ctx, ip.src), dstNode = podNode(ctx, ip.dst);
  if (!isEsp && srcNode !== undefined && dstNode !== undefined && srcNode !== dstNode) {
    c.plaintextBetweenPods++;
    if (encap) c.plaintextBetweenPodsInOverlay++;
    const name = protoName(ip.proto, ip.firstFragment);
    c.byProto[name] = (c.byProto[name] ?? 0) + 1;
    example(c.exPods, ctx, rec, t0, `${describeIp(ip)} (${srcNode} → ${dstNode})${where}`);
  }
  if (!udp || depth >= MAX_ENCAP_DEPTH) return;
  const outer = `${formatIp(ip.src)}:${udp.sport} > ${formatIp(ip.dst)}:${udp.dport}`;
  if (ctx.vxlanPorts.has(udp.dport) && udp.body.length >= 8 && (udp.body[0]! & VXLAN_FLAG_I) !== 0) {
    // RFC 7348 §5: 8-byte VXLAN header, then the inner Ethernet frame.
    const b = new Reader(udp.body);
    b.advance(4, 'VXLAN flags');
    const vni = b.u32('VXLAN VNI') >>> 8;
    c.overlayFrames++;
    classifyFrame(ctx, rec, t0, b, undefined, { kind: 'vxlan', vni, outer }, depth + 1);
  } else if (ctx.genevePorts.has(udp.dport) && udp.body.length >= 8 && udp.body[0]! >> 6 === 0) {
    // RFC 8926 §3.4: version 0, option length in 4-byte words, protocol type, VNI; options follow.
    const b = new Reader(udp.body);
    const optWords = b.u8('Geneve version/opt len') & 0x3f;
    b.advance(1, 'Geneve flags');
    const protocol = b.u16('Geneve protocol type');
    const vni = b.u32('Geneve VNI') >>> 8;
    b.advance(optWords * 4, 'Geneve options');
    c.overlayFrames++;
    const inner = { kind: 'geneve' as const, vni, outer };
    if (protocol === ETH_P_TEB) classifyFrame(ctx, rec, t0, b, undefined, inner, depth + 1);
    else classifyFrame(ctx, rec, t0, b, protocol, inner, depth + 1);
  }
}

/** Classify every packet of a pcap (see the module comment for what is counted how). */
export function classifyPcap(bytes: Uint8Array, o: ClassifyOptions): CaptureReport {
  const pcap = readPcap(bytes);
  const ports = (kind: EncapKind, wellKnown: readonly number[]): Set<number> =>
    new Set(o.overlay?.kind === kind ? [o.overlay.port, ...wellKnown] : wellKnown);
  const c: Counts = {
    esp: 0, espInUdp: 0, espInUdpBytes: 0, ike: 0, nattKeepalive: 0, overlayFrames: 0,
    plaintextBetweenPods: 0, plaintextBetweenPodsInOverlay: 0, plaintextOverlay: 0, undecodable: 0,
    byProto: {}, exPods: [], exOverlay: [], exBad: [],
  };
  const ctx: Ctx = {
    pods: o.podCidrs.map((p) => ({ node: p.node, prefix: parsePrefix(p.cidr) })),
    vxlanPorts: ports('vxlan', [VXLAN_IANA_PORT, VXLAN_LINUX_PORT]),
    genevePorts: ports('geneve', [GENEVE_PORT]),
    overlayWatch: new Set(o.overlay ? [o.overlay.port] : [VXLAN_IANA_PORT, VXLAN_LINUX_PORT, GENEVE_PORT]),
    maxExamples: o.maxExamples ?? 5,
    c,
  };
  const t0 = pcap.records[0]?.tsUs ?? 0;
  for (const rec of pcap.records) {
    const r = new Reader(rec.data);
    try {
      switch (pcap.linktype) {
        case LINKTYPE_ETHERNET: classifyFrame(ctx, rec, t0, r, undefined, undefined, 0); break;
        case LINKTYPE_RAW: {
          const v = rec.data[0] === undefined ? 0 : rec.data[0] >> 4;
          classifyFrame(ctx, rec, t0, r, v === 6 ? ETH_P_IPV6 : ETH_P_IP, undefined, 0);
          break;
        }
        case LINKTYPE_LINUX_SLL: r.advance(14, 'SLL header'); classifyFrame(ctx, rec, t0, r, r.u16('SLL protocol'), undefined, 0); break;
        case LINKTYPE_LINUX_SLL2: { const proto = r.u16('SLL2 protocol'); r.advance(18, 'SLL2 header'); classifyFrame(ctx, rec, t0, r, proto, undefined, 0); break; }
        default: throw new ParseError('ERR_PCAP_LINKTYPE', `linktype ${pcap.linktype} is not Ethernet, raw IP or Linux cooked`, 20);
      }
    } catch (e) {
      if (!(e instanceof ParseError) || e.code === 'ERR_PCAP_LINKTYPE') throw e;
      c.undecodable++;
      example(c.exBad, ctx, rec, t0, `${e.message}; frame ${hex(rec.data, 64)}`);
    }
  }
  return {
    packets: pcap.records.length, truncatedFile: pcap.truncated,
    esp: c.esp, espInUdp: c.espInUdp, espInUdpBytes: c.espInUdpBytes, ike: c.ike, nattKeepalive: c.nattKeepalive, overlayFrames: c.overlayFrames,
    plaintextBetweenPods: c.plaintextBetweenPods, plaintextBetweenPodsInOverlay: c.plaintextBetweenPodsInOverlay,
    plaintextByProtocol: c.byProto, plaintextOverlay: c.plaintextOverlay, undecodable: c.undecodable,
    examples: { plaintextBetweenPods: c.exPods, plaintextOverlay: c.exOverlay, undecodable: c.exBad },
  };
}

export function classifyPcapFile(file: string, o: ClassifyOptions): CaptureReport {
  return classifyPcap(readFileSync(file), o);
}

/** One line for an assertion message: the counts and the first offending packets. */
export function formatReport(r: CaptureReport): string {
  const lines = [
    `${r.packets} packets${r.truncatedFile ? ' (file truncated)' : ''}: esp ${r.esp} (in UDP ${r.espInUdp}, ${r.espInUdpBytes} B), ike ${r.ike}, keepalive ${r.nattKeepalive}, overlay frames ${r.overlayFrames}, ` +
    `plaintext between pods ${r.plaintextBetweenPods} (in overlay ${r.plaintextBetweenPodsInOverlay}; ${JSON.stringify(r.plaintextByProtocol)}), overlay UDP ${r.plaintextOverlay}, undecodable ${r.undecodable}`,
  ];
  for (const [k, ex] of Object.entries(r.examples)) for (const e of ex) lines.push(`  ${k}: ${e}`);
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------
// tcpdump on the wire

export interface CaptureOptions {
  /** Interface in the namespace; default br0 (the wire bridge). */
  readonly iface?: string;
  /** Stop after this many packets (tcpdump -c); default 200,000. */
  readonly maxPackets?: number;
  /** Bytes kept per packet (tcpdump -s); default 256: enough for outer + VXLAN + inner headers. */
  readonly snaplen?: number;
  /** Where the pcap goes; default a temp folder removed at scope end (KIPSEC_KEEP_CAPTURES=1 keeps it). */
  readonly file?: string;
  /** A BPF filter (tcpdump expression words); default none: everything on the wire. */
  readonly filter?: readonly string[];
  /** How long to wait for tcpdump to report it is listening; default 20 s. */
  readonly startTimeoutMs?: number;
}

export interface CaptureStats {
  readonly file: string;
  /** tcpdump's own summary (undefined if it did not print one). */
  readonly captured: number | undefined;
  readonly receivedByFilter: number | undefined;
  readonly droppedByKernel: number | undefined;
  /** tcpdump had already exited before stop(): the packet limit was reached, or it failed. */
  readonly endedEarly: boolean;
  /**
   * Every packet the kernel matched is in the file: tcpdump ran until stop(), dropped nothing,
   * and captured what the filter received. A "no plaintext" verdict needs this.
   */
  readonly complete: boolean;
  readonly stderr: string;
}

/** tcpdump running in a namespace, confirmed listening before start() resolves. */
export class WireCapture {
  readonly file: string;
  readonly #child: ChildProcess;
  readonly #exit: Promise<void>;
  #stderr = '';
  #stats: CaptureStats | undefined;

  private constructor(file: string, child: ChildProcess) {
    this.file = file;
    this.#child = child;
    // 'close': exited and its stderr drained, so the summary counts are in #stderr.
    this.#exit = new Promise((r) => child.once('close', () => r()));
    child.stderr?.on('data', (d: Buffer) => { this.#stderr += d.toString(); });
  }

  get running(): boolean { return this.#child.exitCode === null && this.#child.signalCode === null; }
  get pid(): number | undefined { return this.#child.pid; }

  static async start(scope: Scope | null, ns: Netns, o: CaptureOptions = {}): Promise<WireCapture> {
    let file = o.file;
    if (!file) {
      const dir = mkdtempSync(join(tmpdir(), 'kipsec-capture-'));
      file = join(dir, 'wire.pcap');
      if (!process.env['KIPSEC_KEEP_CAPTURES']) scope?.after(() => rmSync(dir, { recursive: true, force: true }));
    }
    const iface = o.iface ?? 'br0';
    // --immediate-mode: hand each packet over as it arrives (TPACKET_V3 otherwise holds packets in
    // a ring block until it fills or times out, and SIGINT then loses them); -U: write each packet
    // as it comes (the file is whole up to the last packet even on a kill); -Z root: do not drop to
    // the tcpdump user (it could not write the file); -B: 8 MiB kernel buffer.
    const child = ns.spawn('tcpdump', ['-i', iface, '-nn', '--immediate-mode', '-U', '-Z', 'root', '-B', '8192', '-s', String(o.snaplen ?? 256),
      '-c', String(o.maxPackets ?? 200_000), '-w', file, ...(o.filter ?? [])]);
    const cap = new WireCapture(file, child);
    scope?.after(() => cap.kill());
    const deadline = Date.now() + (o.startTimeoutMs ?? 20_000);
    // tcpdump says "listening on br0, link-type EN10MB …" once the capture is active.
    while (!/listening on /.test(cap.#stderr)) {
      if (!cap.running) throw new Error(`tcpdump on ${iface} in ${ns.name} exited before listening: ${cap.#stderr.trim()}`);
      if (Date.now() > deadline) { await cap.kill(); throw new Error(`tcpdump on ${iface} in ${ns.name} did not start listening within ${o.startTimeoutMs ?? 20_000} ms: ${cap.#stderr.trim()}`); }
      await new Promise((r) => setTimeout(r, 20));
    }
    return cap;
  }

  /**
   * Wait until the file stops growing (packets still on their way are written: settleMs without
   * growth, at most 10 × settleMs), then SIGINT by pid (tcpdump prints its counts), bounded;
   * SIGKILL if it hangs.
   */
  async stop(o: { timeoutMs?: number; settleMs?: number } = {}): Promise<CaptureStats> {
    if (this.#stats) return this.#stats;
    const timeoutMs = o.timeoutMs ?? 15_000;
    const settleMs = o.settleMs ?? 200;
    const size = (): number => { try { return statSync(this.file).size; } catch { return -1; } };
    for (let last = size(), waited = 0; this.running && waited < 10 * settleMs; waited += settleMs) {
      await new Promise((r) => setTimeout(r, settleMs));
      const now = size();
      if (now === last) break;
      last = now;
    }
    const endedEarly = !this.running;
    if (!endedEarly && this.#child.pid) process.kill(this.#child.pid, 'SIGINT');
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([this.#exit.then(() => false), new Promise<boolean>((r) => { timer = setTimeout(() => r(true), timeoutMs); })]);
    clearTimeout(timer);
    if (timedOut) await this.kill();
    const num = (re: RegExp): number | undefined => { const m = re.exec(this.#stderr); return m ? Number(m[1]) : undefined; };
    const captured = num(/(\d+) packets? captured/);
    const receivedByFilter = num(/(\d+) packets? received by filter/);
    const droppedByKernel = num(/(\d+) packets? dropped by kernel/);
    const complete = !endedEarly && !timedOut && captured !== undefined && captured === receivedByFilter && droppedByKernel === 0;
    this.#stats = { file: this.file, captured, receivedByFilter, droppedByKernel, endedEarly, complete, stderr: this.#stderr };
    if (timedOut) throw new Error(`tcpdump did not exit within ${timeoutMs} ms of SIGINT: ${this.#stderr.trim()}`);
    return this.#stats;
  }

  async kill(): Promise<void> {
    if (this.running && this.#child.pid) try { process.kill(this.#child.pid, 'SIGKILL'); } catch { /* gone */ }
    await this.#exit;
  }
}
