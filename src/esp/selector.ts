// Traffic selectors for the ESP engine from the forms the control plane holds: a CIDR
// ("10.1.0.0/24", "2001:db8::/64") or an IKE range (RFC 7296 §3.13.1: start/end address, protocol,
// port range). The engine matches inclusive ranges; a CIDR is just the range it covers.
import { isIP } from 'node:net';
import { ConfigError } from '../common/errors.js';
import type { RawSelector } from './native.js';

export type EspSelector = RawSelector;

/** The IKE-side shape (src/ike/ports.ts TrafficSelector), structurally: src/esp may not import ike. */
export interface RangeLike {
  readonly startAddress: string;
  readonly endAddress: string;
  readonly protocol: number;
  readonly startPort: number;
  readonly endPort: number;
}

export function rangeSelector(ts: RangeLike): EspSelector {
  return { start: ts.startAddress, end: ts.endAddress, protocol: ts.protocol, startPort: ts.startPort, endPort: ts.endPort };
}

function toBigInt(addr: string, family: 4 | 6): bigint {
  if (family === 4) return addr.split('.').reduce((n, o) => (n << 8n) | BigInt(Number(o)), 0n);
  const [head = '', tail] = addr.split('::');
  const parts = (s: string): string[] => (s === '' ? [] : s.split(':'));
  const h = parts(head);
  const t = tail === undefined ? [] : parts(tail);
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return groups.reduce((n, g) => (n << 16n) | BigInt(parseInt(g, 16)), 0n);
}

function fromBigInt(n: bigint, family: 4 | 6): string {
  if (family === 4) return [24n, 16n, 8n, 0n].map((s) => String((n >> s) & 0xffn)).join('.');
  const groups: string[] = [];
  for (let s = 112n; s >= 0n; s -= 16n) groups.push(((n >> s) & 0xffffn).toString(16));
  return groups.join(':');
}

/** The inclusive range of a CIDR, all protocols and ports. Throws ConfigError on a bad CIDR. */
export function cidrSelector(cidr: string, path = 'cidr'): EspSelector {
  const [addr = '', lenText] = cidr.split('/');
  const ip = isIP(addr);
  if (ip !== 4 && ip !== 6) throw new ConfigError(path, `${JSON.stringify(cidr)} is not an IPv4 or IPv6 CIDR`);
  if (addr.includes('.') && ip === 6) throw new ConfigError(path, `${JSON.stringify(cidr)}: IPv4-mapped IPv6 addresses are not supported`);
  const family: 4 | 6 = ip;
  const bits = family === 4 ? 32 : 128;
  const len = lenText === undefined ? bits : Number(lenText);
  if (!Number.isInteger(len) || len < 0 || len > bits) throw new ConfigError(path, `${JSON.stringify(cidr)}: prefix length must be 0..${bits}`);
  const host = (1n << BigInt(bits - len)) - 1n;
  const base = toBigInt(addr, family) & ~host & ((1n << BigInt(bits)) - 1n);
  return { start: fromBigInt(base, family), end: fromBigInt(base | host, family) };
}
