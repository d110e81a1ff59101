// Small bounded caches for pure conversions that a handshake repeats with the same inputs
// (suite names for status/events, address bytes for NAT detection and selectors). Profiling the
// handshake bench showed them at several percent of a PSK handshake.
import { formatProposal, type PolicyTransform } from '../policy/proposal.js';
import { boundedMemo as bounded } from '../../common/bounded-memo.js';
import { ipToBytes } from './addr.js';

const suites = new Map<string, string>();
/** formatProposal for a negotiated suite, memoised by its transform IDs. */
export function suiteText(protocol: 'ike' | 'esp', transforms: readonly PolicyTransform[]): string {
  const key = `${protocol}|${transforms.map((t) => `${t.type}.${t.id}.${t.keyLength ?? ''}`).join(',')}`;
  return bounded(suites, key, () => formatProposal({ protocol, transforms }));
}

const addrs = new Map<string, Uint8Array>();
/** ipToBytes, memoised; callers must not modify the result. */
export function addressBytes(text: string): Uint8Array {
  return bounded(addrs, text, () => ipToBytes(text));
}
