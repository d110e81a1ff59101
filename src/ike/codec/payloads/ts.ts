// RFC 7296 §3.13 Traffic Selector payloads TSi (44) and TSr (45): Number of TSs (1), RESERVED (3),
// then Traffic Selectors (§3.13.1): TS Type (1), IP Protocol ID (1, 0 = any), Selector Length (2),
// Start Port (2), End Port (2), Starting Address, Ending Address — 4 octets each for
// TS_IPV4_ADDR_RANGE (7), 16 for TS_IPV6_ADDR_RANGE (8). Other TS types (e.g. RFC 4595 Fibre
// Channel) are rejected: a selector we cannot interpret cannot be narrowed safely.
import type { Reader, Writer } from '../../../common/bytes.js';
import { TsType } from '../../constants.js';
import { fail, skipReserved, type PayloadFlags } from './base.js';

export interface TrafficSelector {
  readonly tsType: number;
  readonly ipProtocol: number;
  readonly startPort: number;
  readonly endPort: number;
  readonly start: Uint8Array;
  readonly end: Uint8Array;
}

export interface TsPayload extends PayloadFlags { readonly kind: 'tsi' | 'tsr'; readonly selectors: readonly TrafficSelector[] }

function addressBytes(tsType: number): number | undefined {
  return tsType === TsType.TS_IPV4_ADDR_RANGE ? 4 : tsType === TsType.TS_IPV6_ADDR_RANGE ? 16 : undefined;
}

export function decodeTs(r: Reader, kind: 'tsi' | 'tsr'): TsPayload {
  const count = r.u8('TS count');
  skipReserved(r, 3);
  if (count === 0) fail(r, 'ERR_IKE_TS_COUNT', `${kind === 'tsi' ? 'TSi' : 'TSr'} has no traffic selectors`);
  const selectors: TrafficSelector[] = [];
  for (let i = 0; i < count; i++) {
    const tsType = r.u8('TS type');
    const ipProtocol = r.u8('TS protocol');
    const len = r.u16('TS length');
    const n = addressBytes(tsType);
    if (n === undefined) fail(r, 'ERR_IKE_TS_TYPE', `traffic selector type is ${tsType}, want 7 (IPv4) or 8 (IPv6)`);
    if (len !== 8 + 2 * n) fail(r, 'ERR_IKE_TS_LENGTH', `traffic selector length is ${len}, want ${8 + 2 * n}`);
    const startPort = r.u16('TS start port');
    const endPort = r.u16('TS end port');
    selectors.push({ tsType, ipProtocol, startPort, endPort, start: r.bytes(n, 'TS start'), end: r.bytes(n, 'TS end') });
  }
  if (!r.done) fail(r, 'ERR_IKE_TS_LENGTH', `${r.remaining} bytes follow the ${count} traffic selectors`);
  return { kind, selectors };
}

export function encodeTs(w: Writer, p: TsPayload): void {
  w.u8(p.selectors.length).zeros(3);
  for (const s of p.selectors) {
    w.u8(s.tsType).u8(s.ipProtocol).u16(8 + s.start.length + s.end.length).u16(s.startPort).u16(s.endPort).bytes(s.start).bytes(s.end);
  }
}
