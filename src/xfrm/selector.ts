// Traffic selectors as the agent speaks them (CIDRs, protocol, ports) ↔ struct xfrm_selector.
import { ConfigError } from '../common/errors.js';
import { addressBytes, addressText, familyOf, ZERO_ADDRESS } from './structs/address.js';
import { AF_INET, AF_INET6 } from './constants.js';
import type { XfrmSelector } from './structs/selector.js';

export interface TrafficSelector {
  /** Source and destination as CIDR ("10.1.0.0/16"); a bare address means a host (/32, /128). */
  readonly src: string;
  readonly dst: string;
  /** IP protocol number (6 TCP, 17 UDP, …); 0 or absent = any. */
  readonly proto?: number;
  readonly sport?: number;
  readonly dport?: number;
  /** Bind to an interface index (0 = any). */
  readonly ifindex?: number;
}

export interface Cidr { readonly family: number; readonly addr: Uint8Array; readonly prefix: number; readonly text: string }

export function parseCidr(s: string, path = 'cidr'): Cidr {
  const [ip = '', len] = s.split('/');
  const family = familyOf(ip);
  const max = family === AF_INET ? 32 : 128;
  const prefix = len === undefined ? max : Number(len);
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > max) throw new ConfigError(path, `bad prefix length in ${JSON.stringify(s)}`);
  return { family, addr: addressBytes(ip), prefix, text: `${ip}/${prefix}` };
}

export function encodeSelector(ts: TrafficSelector): XfrmSelector {
  const src = parseCidr(ts.src, 'selector.src');
  const dst = parseCidr(ts.dst, 'selector.dst');
  if (src.family !== dst.family) throw new ConfigError('selector', `mixed address families: ${ts.src} → ${ts.dst}`);
  return {
    daddr: dst.addr, saddr: src.addr,
    dport: ts.dport ?? 0, dport_mask: ts.dport ? 0xffff : 0,
    sport: ts.sport ?? 0, sport_mask: ts.sport ? 0xffff : 0,
    family: src.family, prefixlen_d: dst.prefix, prefixlen_s: src.prefix,
    proto: ts.proto ?? 0, ifindex: ts.ifindex ?? 0, user: 0,
  };
}

export function decodeSelector(s: XfrmSelector): TrafficSelector {
  const fam = s.family === AF_INET6 ? AF_INET6 : AF_INET;
  return {
    src: `${addressText(s.saddr, fam)}/${s.prefixlen_s}`,
    dst: `${addressText(s.daddr, fam)}/${s.prefixlen_d}`,
    ...(s.proto ? { proto: s.proto } : {}),
    ...(s.sport_mask ? { sport: s.sport } : {}),
    ...(s.dport_mask ? { dport: s.dport } : {}),
    ...(s.ifindex ? { ifindex: s.ifindex } : {}),
  };
}

export function selectorText(ts: TrafficSelector): string {
  const p = ts.proto ? ` proto ${ts.proto}` : '';
  const sp = ts.sport ? `:${ts.sport}` : '';
  const dp = ts.dport ? `:${ts.dport}` : '';
  return `${ts.src}${sp} → ${ts.dst}${dp}${p}`;
}

export { ZERO_ADDRESS };
