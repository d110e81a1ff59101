// TypeScript twins of the Kubernetes CEL network library (isIP, isCIDR, cidr().masked()) and of
// the duration checks, used by the standalone validator. Same answers as the apiserver for the
// inputs that matter: IPv4 without leading zeros, IPv6 without zones, prefix within the family.
import { isIP as nodeIsIP } from 'node:net';

export function isIp(s: string): boolean {
  if (s.includes('%')) return false;
  const fam = nodeIsIP(s);
  if (fam === 4) return s.split('.').every((o) => o === '0' || !o.startsWith('0'));
  return fam === 6;
}

export function isCidr(s: string): boolean {
  const slash = s.indexOf('/');
  if (slash < 0) return false;
  const ip = s.slice(0, slash); const bits = s.slice(slash + 1);
  if (!/^(0|[1-9][0-9]{0,2})$/.test(bits) || !isIp(ip)) return false;
  return Number(bits) <= (nodeIsIP(ip) === 4 ? 32 : 128);
}

function ipToBigInt(ip: string): { v: bigint; width: number } {
  if (nodeIsIP(ip) === 4) return { v: ip.split('.').reduce((a, o) => (a << 8n) | BigInt(Number(o)), 0n), width: 32 };
  const [head = '', tail = ''] = ip.includes('::') ? ip.split('::') : [ip, ''];
  const parse = (p: string): string[] => (p === '' ? [] : p.split(':'));
  let hs = parse(head); let ts = parse(tail);
  const expand = (xs: string[]): string[] => xs.flatMap((x) => (x.includes('.') ? (() => { const n = ipToBigInt(x).v; return [(n >> 16n).toString(16), (n & 0xffffn).toString(16)]; })() : [x]));
  hs = expand(hs); ts = expand(ts);
  const groups = ip.includes('::') ? [...hs, ...Array<string>(8 - hs.length - ts.length).fill('0'), ...ts] : hs;
  return { v: groups.reduce((a, g) => (a << 16n) | BigInt(parseInt(g, 16)), 0n), width: 128 };
}

/** True when the address part has no host bits set beyond the prefix (10.1.0.0/16, not 10.1.0.1/16). */
export function isMaskedCidr(s: string): boolean {
  const [ip = '', bits = '0'] = s.split('/');
  const { v, width } = ipToBigInt(ip);
  const host = width - Number(bits);
  return (v & ((1n << BigInt(host)) - 1n)) === 0n;
}

/** Go time.ParseDuration's shape without negative values or "d", which CEL's duration() refuses. */
export const DURATION_PATTERN = '^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$';

/** Lower-case DNS name whose last label starts with a letter (so "300.1.1.1" is not a name). */
export const DNS_NAME_PATTERN = '^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\\.)*[a-z]([-a-z0-9]{0,61}[a-z0-9])?$';
