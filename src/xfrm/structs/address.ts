// xfrm_address_t (include/uapi/linux/xfrm.h), 16 bytes, network byte order:
//   typedef union { __be32 a4; __be32 a6[4]; struct in6_addr in6; } xfrm_address_t;
// IPv4 uses the first 4 bytes, the rest zero.
import { isIPv6 } from 'node:net';
import type { Reader, Writer } from '../../common/bytes.js';
import { ConfigError } from '../../common/errors.js';
import { AF_INET, AF_INET6 } from '../constants.js';

export const XFRM_ADDRESS_SIZE = 16;

export function getAddress(r: Reader, what = 'xfrm_address_t'): Uint8Array { return r.bytes(XFRM_ADDRESS_SIZE, what).slice(); }
export function putAddress(w: Writer, a: Uint8Array): void {
  if (a.length !== XFRM_ADDRESS_SIZE) throw new RangeError(`xfrm_address_t is 16 bytes, got ${a.length}`);
  w.bytes(a);
}

export const ZERO_ADDRESS: Uint8Array = new Uint8Array(16);

const scratch = new Uint8Array(16);
export function familyOf(ip: string): number {
  if (parseIPv4(ip, scratch)) return AF_INET;
  if (isIPv6(ip)) return AF_INET6;
  throw new ConfigError('address', `not an IP address: ${JSON.stringify(ip)}`);
}

/** Dotted quad → bytes without regexes or arrays (this runs for every SA and policy installed); null if not IPv4. */
function parseIPv4(ip: string, out: Uint8Array): boolean {
  let part = 0; let val = 0; let digits = 0;
  for (let i = 0; i < ip.length; i++) {
    const c = ip.charCodeAt(i);
    if (c === 46 /* . */) {
      if (!digits || part === 3) return false;
      out[part++] = val; val = 0; digits = 0;
    } else if (c >= 48 && c <= 57) {
      if (digits && val === 0) return false; // no leading zeros (octal ambiguity), like node:net
      val = val * 10 + (c - 48); digits++;
      if (val > 255) return false;
    } else return false;
  }
  if (!digits || part !== 3) return false;
  out[3] = val;
  return true;
}

/** Text address → the 16-byte union. */
export function addressBytes(ip: string): Uint8Array {
  const out = new Uint8Array(16);
  if (parseIPv4(ip, out)) return out;
  out.fill(0);
  if (!isIPv6(ip)) throw new ConfigError('address', `not an IP address: ${JSON.stringify(ip)}`);
  let s = ip;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (v4) {
    const b = v4[1]!.split('.').map(Number);
    s = s.slice(0, -v4[1]!.length) + `${((b[0]! << 8) | b[1]!).toString(16)}:${((b[2]! << 8) | b[3]!).toString(16)}`;
  }
  const [head, tail] = s.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail !== undefined ? (tail ? tail.split(':') : []) : [];
  const groups = tail !== undefined ? [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t] : h;
  groups.forEach((g, i) => { const v = parseInt(g, 16); out[2 * i] = v >> 8; out[2 * i + 1] = v & 0xff; });
  return out;
}

/** The 16-byte union → text, for the given family. */
export function addressText(a: Uint8Array, family: number): string {
  if (family === AF_INET) return `${a[0]}.${a[1]}.${a[2]}.${a[3]}`;
  if (family !== AF_INET6) return '';
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push((a[2 * i]! << 8) | a[2 * i + 1]!);
  // RFC 5952: compress the longest run (>= 2) of zero groups.
  let bestAt = -1; let bestLen = 0;
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) { i++; continue; }
    let j = i; while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) { bestAt = i; bestLen = j - i; }
    i = j;
  }
  const hex = g.map((x) => x.toString(16));
  if (bestAt < 0) return hex.join(':');
  return `${hex.slice(0, bestAt).join(':')}::${hex.slice(bestAt + bestLen).join(':')}`;
}
