// IP address text <-> bytes for ID payloads (RFC 7296 §3.5), traffic selectors (§3.13.1) and
// NAT detection (§2.23). node:net validates; the conversions are ours because Node has no
// inet_pton that returns bytes.
import { isIPv4, isIPv6 } from 'node:net';
import { ConfigError } from '../../common/errors.js';

export function ipToBytes(text: string, path = 'address'): Uint8Array {
  if (isIPv4(text)) return new Uint8Array(text.split('.').map(Number));
  if (isIPv6(text)) {
    let s = text;
    const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
    let tail: number[] = [];
    if (v4 && v4[1] !== undefined) {
      tail = v4[1].split('.').map(Number);
      s = s.slice(0, s.length - v4[1].length) + '0:0';
    }
    const [head = '', rest] = s.split('::') as [string, string | undefined];
    const h = head === '' ? [] : head.split(':');
    const r = rest === undefined || rest === '' ? [] : rest.split(':');
    const fill = rest === undefined ? 0 : 8 - h.length - r.length;
    const groups = [...h, ...Array<string>(fill).fill('0'), ...r].map((g) => parseInt(g, 16));
    const out = new Uint8Array(16);
    groups.forEach((g, i) => { out[2 * i] = g >> 8; out[2 * i + 1] = g & 0xff; });
    if (tail.length === 4) out.set(tail, 12);
    return out;
  }
  throw new ConfigError(path, `"${text}" is not an IP address`);
}

export function bytesToIp(b: Uint8Array): string {
  // Not Array.from(b).join('.'): an iterator and an array per address, formatted for every kernel policy and event.
  if (b.length === 4) return `${b[0]!}.${b[1]!}.${b[2]!}.${b[3]!}`;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((((b[i] ?? 0) << 8) | (b[i + 1] ?? 0)).toString(16));
  // Compress the longest run of zero groups (RFC 5952 §4.2).
  let best = -1; let bestLen = 0;
  for (let i = 0; i < 8;) {
    if (groups[i] !== '0') { i++; continue; }
    let j = i; while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen && j - i > 1) { best = i; bestLen = j - i; }
    i = j;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}

export function isIp(text: string): boolean { return isIPv4(text) || isIPv6(text); }

/** memcmp order: addresses of one family compare as unsigned big-endian integers. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return (a[i] ?? 0) - (b[i] ?? 0);
  return a.length - b.length;
}

/**
 * The rule both ends of a pair share to settle two IKE SAs that neither asked to replace the other
 * (a simultaneous start, lifecycle.ts resolveDuplicates; crossed reauthentications, reauth.ts):
 * the one initiated by the end with the lower address stays. True when that end is us.
 */
export function localIsLower(sa: { readonly local: { readonly address: string }; readonly remote: { readonly address: string } }): boolean {
  return compareBytes(ipToBytes(sa.local.address), ipToBytes(sa.remote.address)) < 0;
}
