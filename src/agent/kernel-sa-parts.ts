// Parts of the kernel port's SaSpecs (kernel.ts) that many SAs have equal: the soft and hard limits
// (a Child SA's lifetimes come from its config: every SA of a tunnel, and of all tunnels with the
// same lifetimes, has the same) and the UDP encapsulation ports (4500 to 4500 unless a NAT maps the
// peer elsewhere). One read-only object per distinct value, held by every SaSpec with it: four limit
// objects (and the soft limits' BigInts) and two port pairs were built per Child SA and kept for as
// long as it (docs/memory.md). Bounded tables (common/bounded-memo.ts).
import { boundedMemo } from '../common/bounded-memo.js';
import type { KernelSa } from '../ike/ports.js';
import type { Encap, SaLimits, SaSpec } from '../xfrm/index.js';

const MAX_ENTRIES = 1_024;

const LIMITS = new Map<string, Pick<SaSpec, 'soft' | 'hard'>>();

/** XFRM's soft and hard limits for these lifetimes (0 = none), shared by equal lifetimes. */
export function limits(l: KernelSa['lifetimes']): { readonly soft: SaLimits; readonly hard: SaLimits } {
  const k = `${l.softSec} ${l.hardSec} ${l.softBytes} ${l.hardBytes} ${l.softPackets} ${l.hardPackets}`;
  return boundedMemo(LIMITS, k, () => {
    // Built by adding properties: a literal starting with spreads got a hidden class of its own (2119ecd).
    const lim = (sec: number, bytes: bigint, packets: bigint): SaLimits => {
      const o: { addExpiresSec?: number; bytes?: bigint; packets?: bigint } = {};
      if (sec > 0) o.addExpiresSec = sec;
      if (bytes > 0n) o.bytes = bytes;
      if (packets > 0n) o.packets = packets;
      return Object.freeze(o);
    };
    return Object.freeze({ soft: lim(l.softSec, l.softBytes, l.softPackets), hard: lim(l.hardSec, l.hardBytes, l.hardPackets) });
  }, MAX_ENTRIES) as { readonly soft: SaLimits; readonly hard: SaLimits };
}

const ENCAPS = new Map<number, Encap>();

/** XFRM's UDP encapsulation (ESP in UDP, RFC 3948) with these ports (16 bits each), shared by equal ports. */
export function encapOf(sport: number, dport: number): Encap {
  if (sport >>> 16 !== 0 || dport >>> 16 !== 0) return Object.freeze({ sport, dport }); // not a port: not kept, the encoder refuses it
  return boundedMemo(ENCAPS, sport * 0x10000 + dport, () => Object.freeze({ sport, dport }), MAX_ENTRIES);
}
