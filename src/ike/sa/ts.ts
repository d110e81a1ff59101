// Traffic selectors (RFC 7296 §2.9, §3.13.1): parsing the config's text form, narrowing (the
// responder answers with the intersection of what was proposed and what its policy allows), the
// subset check the initiator applies to the reply, and the conversions to the codec's payload form
// and to the kernel port's plain data.
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
  return { start, end };
}

/** "10.1.0.0/16", "192.0.2.7", "10.0.0.1-10.0.0.9", "0.0.0.0/0", "::/0". */
export function parseTs(text: string, path = 'trafficSelector'): TsRange {
  const t = text.trim();
  const any = { protocol: 0, startPort: 0, endPort: 0xffff };
  const dash = t.indexOf('-');
  if (dash > 0) {
    const a = t.slice(0, dash); const b = t.slice(dash + 1);
    if (!isIp(a) || !isIp(b)) throw new ConfigError(path, `"${text}" is not an address range`);
    const start = ipToBytes(a, path); const end = ipToBytes(b, path);
    if (start.length !== end.length || compareBytes(start, end) > 0) throw new ConfigError(path, `"${text}" is not an ascending range of one family`);
    return { family: start.length === 4 ? 'ipv4' : 'ipv6', start, end, ...any };
  }
  const slash = t.indexOf('/');
  const addrText = slash < 0 ? t : t.slice(0, slash);
  if (!isIp(addrText)) throw new ConfigError(path, `"${text}" is not a CIDR, address or range`);
  const addr = ipToBytes(addrText, path);
  const max = addr.length * 8;
  const bits = slash < 0 ? max : Number(t.slice(slash + 1));
  if (!Number.isInteger(bits) || bits < 0 || bits > max) throw new ConfigError(path, `"${text}" has a bad prefix length`);
  return { family: addr.length === 4 ? 'ipv4' : 'ipv6', ...prefixRange(addr, bits), ...any };
}

/** The prefix length when [start, end] is exactly one CIDR block, else null. */
export function prefixLengthOf(r: TsRange): number | null {
  const max = r.start.length * 8;
  for (let bits = 0; bits <= max; bits++) {
    const p = prefixRange(r.start, bits);
    if (compareBytes(p.start, r.start) === 0 && compareBytes(p.end, r.end) === 0) return bits;
  }
  return null;
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
  return { family: a.family, start, end, protocol: a.protocol || b.protocol, startPort, endPort };
}

/**
 * RFC 7296 §2.9 narrowing: every non-empty intersection of a proposed selector with a configured
 * one, duplicates removed. Empty result = TS_UNACCEPTABLE.
 */
export function narrowTs(proposed: readonly TsRange[], configured: readonly TsRange[]): TsRange[] {
  const out: TsRange[] = [];
  for (const p of proposed) for (const c of configured) {
    const i = intersectTs(p, c);
    if (i && !out.some((o) => sameTs(o, i))) out.push(i);
  }
  return out;
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
