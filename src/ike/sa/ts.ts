// Traffic selectors (RFC 7296 §2.9, §3.13.1): parsing the config's text form (strongSwan's
// "addresses[proto/port]"), narrowing (the responder answers with the intersection of what was
// proposed and what its policy allows), the subset check the initiator applies to the reply, and
// the conversions to the codec's payload form and to the kernel port's plain data.
import { ConfigError } from '../../common/errors.js';
import { TsType } from '../constants.js';
import type { TrafficSelector as WireTs } from '../codec/payloads/ts.js';
import type { TrafficSelector as PortTs } from '../ports.js';
import { bytesToIp, compareBytes, ipToBytes, isIp } from './addr.js';

export interface TsRange {
  readonly family: 'ipv4' | 'ipv6';
  readonly start: Uint8Array;
  readonly end: Uint8Array;
  readonly protocol: number;
  readonly startPort: number;
  readonly endPort: number;
}

function prefixRange(addr: Uint8Array, bits: number): { start: Uint8Array; end: Uint8Array } {
  const start = new Uint8Array(addr.length); const end = new Uint8Array(addr.length);
  for (let i = 0; i < addr.length; i++) {
    const keep = Math.max(0, Math.min(8, bits - 8 * i));
    const mask = keep === 0 ? 0 : (0xff << (8 - keep)) & 0xff;
    start[i] = (addr[i] ?? 0) & mask;
    end[i] = ((addr[i] ?? 0) & mask) | (~mask & 0xff);
  }
  // One address (a /32 or /128, as most remote subnets of a gateway's tunnels): start and end are
  // one array, read only like every selector's (an array and its buffer less, ~180 bytes).
  return bits === addr.length * 8 ? { start, end: start } : { start, end };
}

/** IP protocol names the selector text accepts (IANA protocol numbers), as strongSwan spells them. */
export const TS_PROTOCOLS = { icmp: 1, tcp: 6, udp: 17, 'ipv6-icmp': 58, sctp: 132 } as const;

const ANY_PORT = { startPort: 0, endPort: 0xffff } as const;

function parsePort(text: string, whole: string, path: string): number {
  if (!/^\d{1,5}$/.test(text) || Number(text) > 0xffff) throw new ConfigError(path, `"${whole}": port "${text}" is not a number 0..65535`);
  return Number(text);
}

/** The "[proto/port]" part: a protocol by number (0..255) or name, then an optional port or port range. */
function parseProtoPort(inner: string, whole: string, path: string): { protocol: number; startPort: number; endPort: number } {
  const slash = inner.indexOf('/');
  const protoText = (slash < 0 ? inner : inner.slice(0, slash)).toLowerCase();
  const names: Readonly<Record<string, number>> = TS_PROTOCOLS;
  const protocol = protoText === 'any' ? 0 : /^\d{1,3}$/.test(protoText) && Number(protoText) <= 255 ? Number(protoText) : names[protoText];
  if (protocol === undefined) {
    throw new ConfigError(path, `"${whole}": protocol "${protoText}" is neither a number 0..255 nor one of ${Object.keys(TS_PROTOCOLS).join(', ')}`);
  }
  const portText = slash < 0 ? 'any' : inner.slice(slash + 1);
  if (portText === 'any') return { protocol, ...ANY_PORT };
  // RFC 7296 §3.13.1: ports are undefined for protocol 0 ("any"), so the fields must cover all of them.
  if (protocol === 0) throw new ConfigError(path, `"${whole}": a port needs a protocol (0 means any protocol)`);
  const dash = portText.indexOf('-');
  const startPort = parsePort(dash < 0 ? portText : portText.slice(0, dash), whole, path);
  const endPort = dash < 0 ? startPort : parsePort(portText.slice(dash + 1), whole, path);
  if (startPort > endPort) throw new ConfigError(path, `"${whole}": port range ${startPort}-${endPort} is descending`);
  return { protocol, startPort, endPort };
}

/** The address part: "10.1.0.0/16", "192.0.2.7", "10.0.0.1-10.0.0.9", "0.0.0.0/0", "::/0". */
function parseAddresses(t: string, whole: string, path: string): Pick<TsRange, 'family' | 'start' | 'end'> {
  const dash = t.indexOf('-');
  if (dash > 0) {
    const a = t.slice(0, dash); const b = t.slice(dash + 1);
    if (!isIp(a) || !isIp(b)) throw new ConfigError(path, `"${whole}" is not an address range`);
    const start = ipToBytes(a, path); const end = ipToBytes(b, path);
    if (start.length !== end.length || compareBytes(start, end) > 0) throw new ConfigError(path, `"${whole}" is not an ascending range of one family`);
    return { family: start.length === 4 ? 'ipv4' : 'ipv6', start, end };
  }
  const slash = t.indexOf('/');
  const addrText = slash < 0 ? t : t.slice(0, slash);
  if (!isIp(addrText)) throw new ConfigError(path, `"${whole}" is not a CIDR, address or range`);
  const addr = ipToBytes(addrText, path);
  const max = addr.length * 8;
  const bitsText = slash < 0 ? String(max) : t.slice(slash + 1);
  const bits = Number(bitsText);
  if (!/^\d{1,3}$/.test(bitsText) || bits > max) throw new ConfigError(path, `"${whole}" has a bad prefix length`);
  return { family: addr.length === 4 ? 'ipv4' : 'ipv6', ...prefixRange(addr, bits) };
}

/**
 * One traffic selector of the config, in strongSwan's swanctl syntax (RFC 7296 §3.13.1): addresses,
 * optionally followed by "[proto/port]".
 *   "10.1.0.0/16", "192.0.2.7", "10.0.0.1-10.0.0.9", "::/0"    any protocol, any port
 *   "192.0.2.11/32[udp]", "10.0.0.0/8[6]"                      one protocol (number or name), any port
 *   "192.0.2.12/32[udp/4789]", "10.0.0.0/8[tcp/80-90]"          and one port or an inclusive range
 *   "[17/4789]", "[icmp]"                                        no addresses: 0.0.0.0/0 (IPv4 only;
 *                                                                write "::/0[…]" for IPv6)
 * "any" is accepted for the protocol and the port, as strongSwan does. Ports are the raw 16-bit
 * fields of the payload: for ICMP that is type × 256 + code (RFC 4301 §4.4.1.3), not strongSwan's
 * "below 256 is a type" shorthand. parseTs(formatTs(x)) equals x. ConfigError at `path`, quoting
 * the text, on anything else.
 */
export function parseTs(text: string, path = 'trafficSelector'): TsRange {
  const t = text.trim();
  const open = t.indexOf('[');
  let proto: { protocol: number; startPort: number; endPort: number } = { protocol: 0, ...ANY_PORT };
  let addrText = t;
  if (open >= 0) {
    if (t.indexOf(']') !== t.length - 1) throw new ConfigError(path, `"${text}": "[proto/port]" must end the selector`);
    const inner = t.slice(open + 1, -1);
    if (inner === '') throw new ConfigError(path, `"${text}": empty "[]" (write [proto] or [proto/port], or leave the brackets out)`);
    proto = parseProtoPort(inner, text, path);
    addrText = t.slice(0, open).trim();
    if (addrText === '') addrText = '0.0.0.0/0';
  }
  if (addrText === '') throw new ConfigError(path, 'empty traffic selector');
  // Named properties, not spreads: a literal starting with a spread got a hidden class of its own
  // per selector (Map, DescriptorArray, PropertyArray: ~300 bytes, two per configured tunnel).
  const { family, start, end } = parseAddresses(addrText, text, path);
  return { family, start, end, protocol: proto.protocol, startPort: proto.startPort, endPort: proto.endPort };
}

/** The prefix length when [start, end] is exactly one CIDR block, else null. */
export function prefixLengthOf(r: TsRange): number | null {
  // Only one length can fit: the bits start and end share; below it start must be all zeros and
  // end all ones. Read in place (the Child SA's kernel policies ask for it on every install).
  const { start, end } = r;
  if (start.length !== end.length) return null;
  let bits = 0;
  let i = 0;
  while (i < start.length && start[i] === end[i]) { i++; bits += 8; }
  if (i === start.length) return bits;
  const diff = start[i]! ^ end[i]!;
  const shared = Math.clz32(diff) - 24;
  const host = 0xff >> shared;
  if ((start[i]! & host) !== 0 || (end[i]! & host) !== host) return null;
  for (let j = i + 1; j < start.length; j++) if (start[j] !== 0 || end[j] !== 0xff) return null;
  return bits + shared;
}

export function formatTs(r: TsRange): string {
  const bits = prefixLengthOf(r);
  const base = bits === null ? `${bytesToIp(r.start)}-${bytesToIp(r.end)}` : `${bytesToIp(r.start)}/${bits}`;
  const anyPort = r.startPort === 0 && r.endPort === 0xffff;
  if (r.protocol === 0 && anyPort) return base;
  const port = anyPort ? '' : r.startPort === r.endPort ? `/${r.startPort}` : `/${r.startPort}-${r.endPort}`;
  return `${base}[${r.protocol}${port}]`;
}

/** Intersection of two selectors, or null (different family, disjoint addresses/ports/protocol). */
export function intersectTs(a: TsRange, b: TsRange): TsRange | null {
  if (a.family !== b.family) return null;
  if (a.protocol !== 0 && b.protocol !== 0 && a.protocol !== b.protocol) return null;
  const start = compareBytes(a.start, b.start) >= 0 ? a.start : b.start;
  const end = compareBytes(a.end, b.end) <= 0 ? a.end : b.end;
  if (compareBytes(start, end) > 0) return null;
  const startPort = Math.max(a.startPort, b.startPort); const endPort = Math.min(a.endPort, b.endPort);
  if (startPort > endPort) return null;
  const protocol = a.protocol || b.protocol;
  // One of the two when it is the intersection: a Child SA then holds the config's selector, not a copy.
  const is = (x: TsRange): boolean => x.start === start && x.end === end && x.protocol === protocol && x.startPort === startPort && x.endPort === endPort;
  if (is(b)) return b;
  if (is(a)) return a;
  return { family: a.family, start, end, protocol, startPort, endPort };
}

/**
 * RFC 7296 §2.9 narrowing: every non-empty intersection of a proposed selector with a configured
 * one, duplicates removed. Empty result = TS_UNACCEPTABLE.
 */
export function narrowTs(proposed: readonly TsRange[], configured: readonly TsRange[]): readonly TsRange[] {
  const out: TsRange[] = [];
  for (const p of proposed) for (const c of configured) {
    const i = intersectTs(p, c);
    if (i && !out.some((o) => sameTs(o, i))) out.push(i);
  }
  return sharedTs(out, configured);
}

/**
 * `list`, with each selector equal to one of `known` replaced by that one, and `known` itself when
 * the two are equal element by element: the Child SAs of a config share its selectors instead of
 * each holding copies (four small byte arrays per selector).
 */
export function sharedTs(list: readonly TsRange[], known: readonly TsRange[]): readonly TsRange[] {
  const out = list.map((t) => known.find((k) => k === t || sameTs(k, t)) ?? t);
  return out.length === known.length && out.every((t, i) => t === known[i]) ? known : out;
}

export function sameTs(a: TsRange, b: TsRange): boolean {
  return a.family === b.family && compareBytes(a.start, b.start) === 0 && compareBytes(a.end, b.end) === 0 &&
    a.protocol === b.protocol && a.startPort === b.startPort && a.endPort === b.endPort;
}

/** True when `inner` lies inside one of `outer` (the initiator's check of a narrowed reply). */
export function tsWithin(inner: TsRange, outer: readonly TsRange[]): boolean {
  return outer.some((o) => { const i = intersectTs(inner, o); return i !== null && sameTs(i, inner); });
}

export function toWireTs(r: TsRange): WireTs {
  return { tsType: r.family === 'ipv4' ? TsType.TS_IPV4_ADDR_RANGE : TsType.TS_IPV6_ADDR_RANGE, ipProtocol: r.protocol, startPort: r.startPort, endPort: r.endPort, start: r.start, end: r.end };
}

export function fromWireTs(s: WireTs): TsRange {
  return { family: s.start.length === 4 ? 'ipv4' : 'ipv6', start: new Uint8Array(s.start), end: new Uint8Array(s.end), protocol: s.ipProtocol, startPort: s.startPort, endPort: s.endPort };
}

export function toPortTs(r: TsRange): PortTs {
  return { family: r.family, startAddress: bytesToIp(r.start), endAddress: bytesToIp(r.end), prefixLength: prefixLengthOf(r), protocol: r.protocol, startPort: r.startPort, endPort: r.endPort };
}
