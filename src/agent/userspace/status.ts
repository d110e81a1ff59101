// What `kipsec status` and the metrics show of the userspace ESP engine: the kernel offloads it
// probed and uses (UDP GSO/GRO, TUN checksum and TSO — a throughput difference of several times,
// so an operator asking "why is this node slow" sees it), its engine-wide counters that are not
// zero, and its SAs' drops summed by reason (the userspace counterpart of /proc/net/xfrm_stat).
import type { EspStats } from '../../esp/index.js';

export interface EspStatusView {
  /** The offloads in use, by the engine's names (udpGso, udpGro, tunVnetHdr, tunCsum, tunTso). */
  readonly offloads: readonly string[];
  /** Engine-wide counters that are not zero (rxDatagrams, noSa, gsoSends, …). */
  readonly counters: Readonly<Record<string, number>>;
  /** Drops of the SAs the engine holds now, by reason (auth, replay, …; `dummy` counts RFC 4303 dummy packets). */
  readonly drops: Readonly<Record<string, number>>;
}

export function espStatusView(s: EspStats): EspStatusView {
  const offloads = Object.entries(s.offloads).filter(([, on]) => on).map(([name]) => name);
  const counters: Record<string, number> = {};
  for (const [k, v] of Object.entries(s.counters)) if (v > 0n) counters[k] = Number(v);
  const drops: Record<string, number> = {};
  for (const sa of s.sas) for (const [k, v] of Object.entries(sa.drops)) if (v > 0n) drops[k] = (drops[k] ?? 0) + Number(v);
  return { offloads, counters, drops };
}
