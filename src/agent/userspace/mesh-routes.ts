// Cluster mode on the userspace data path: the pod CIDRs of every known mesh peer are routed into
// the TUN device, so pod traffic to another node reaches the ESP engine, which encrypts it with the
// peer's SA or, without one, drops it. That is the userspace form of strict mode (IPsecMesh
// spec.strict, DESIGN.md §5), which the kernel path does with XFRM block policies — those cannot
// serve here: an XFRM block would also catch the packets the TUN device carries.
//
//   table 221 behind `ip rule priority 221` (ahead of main, where a routed CNI has its own route to
//   the peer's pods via the peer node, which stays untouched), per peer pod CIDR:
//     <cidr> dev kipsec0 metric 100 [src <ours>]   while the engine runs (it goes with the device)
//     blackhole <cidr> metric 4096                 strict only; outlives the agent
// So with the agent stopped or crashed the TUN route is gone with its device and the blackhole
// drops the traffic, as the kernel's block policies would; only the peer leaving the mesh (or the
// mesh going) removes it. Without strict the engine still drops while it runs (there is no way
// around the TUN for a known peer's pods), and with the agent gone the CNI route carries them.
import { isIPv6 } from 'node:net';
import { errorMessage } from '../../common/errors.js';
import { AF_INET, AF_INET6 } from '../../xfrm/constants.js';
import { XfrmExistsError, XfrmNotFoundError, type RouteSpec, type RtnlClient } from '../../xfrm/index.js';
import type { Logger } from '../log.js';
import type { DesiredPeer } from '../source.js';
import { sourceIn } from '../routes.js';
import type { UserspaceDatapath } from './datapath.js';

export const MESH_TUN_TABLE = 221;
export const MESH_TUN_RULE_PRIORITY = 221;
export const TUN_ROUTE_METRIC = 100;
export const BLACKHOLE_METRIC = 4096;

/** What one peer needs: its pod CIDRs, and ours (for the source address host traffic takes). */
export interface PeerRoutes { readonly peer: string; readonly remote: readonly string[]; readonly local: readonly string[] }

/** The port the cluster agent drives (node-agent.ts); absent on the kernel data path. */
export interface MeshRoutePort {
  /** Before the engine learns of new peers: their blackholes (strict), so nothing leaves in clear meanwhile. */
  add(peers: readonly PeerRoutes[], strict: boolean): Promise<void>;
  /** After the engine applied the peers: exactly these routed, the others' routes (and blackholes) gone. */
  sync(peers: readonly PeerRoutes[], strict: boolean): Promise<void>;
  /** The mesh is gone: every route of ours in the table, blackholes of earlier runs too. */
  removeAll(): Promise<number>;
}

/** The routes mesh peers need: each tunnel-mode child's remote selectors (pod CIDRs), with ours. */
export function meshPeerRoutes(peers: readonly DesiredPeer[]): PeerRoutes[] {
  return peers.map((p) => {
    const tunnel = p.config.children.filter((c) => c.mode !== 'transport');
    return { peer: p.name, remote: [...new Set(tunnel.flatMap((c) => c.remoteTs))], local: [...new Set(tunnel.flatMap((c) => c.localTs))] };
  });
}

const key = (r: RouteSpec): string => `${r.type ?? 'unicast'}|${r.dst}|${r.metric ?? 0}`;
const family = (cidr: string): number => (isIPv6(cidr.split('/')[0] ?? '') ? AF_INET6 : AF_INET);

export class MeshTunRoutes implements MeshRoutePort {
  readonly #rtnl: RtnlClient;
  readonly #dp: UserspaceDatapath;
  readonly #log: Logger;
  readonly #table: number;
  /** Routes of ours in the table, by key; filled from the kernel on the first call (earlier runs' blackholes). */
  #have: Map<string, RouteSpec> | undefined;
  readonly #rules = new Set<number>();

  constructor(o: { rtnl: RtnlClient; datapath: UserspaceDatapath; log: Logger; table?: number }) {
    this.#rtnl = o.rtnl; this.#dp = o.datapath; this.#log = o.log; this.#table = o.table ?? MESH_TUN_TABLE;
  }

  #want(peers: readonly PeerRoutes[], strict: boolean, tun: boolean): Map<string, RouteSpec> {
    const out = new Map<string, RouteSpec>();
    for (const p of peers) {
      const src = sourceIn(p.local);
      for (const dst of p.remote) {
        if (strict) { const b: RouteSpec = { dst, type: 'blackhole', table: this.#table, metric: BLACKHOLE_METRIC }; out.set(key(b), b); }
        if (tun) {
          const r: RouteSpec = { dst, dev: this.#dp.tunName, table: this.#table, metric: TUN_ROUTE_METRIC, ...(src && family(dst) === AF_INET ? { src } : {}) };
          out.set(key(r), r);
        }
      }
    }
    return out;
  }

  async #current(): Promise<Map<string, RouteSpec>> {
    if (this.#have) return this.#have;
    const have = new Map<string, RouteSpec>();
    for (const fam of [AF_INET, AF_INET6]) {
      const list = await this.#rtnl.listRoutes(fam, this.#table).catch((e: unknown) => { this.#log.debug({ err: errorMessage(e) }, 'cannot list the mesh route table'); return []; });
      for (const r of list) {
        const spec: RouteSpec = { dst: r.dst, table: this.#table, ...(r.metric !== undefined ? { metric: r.metric } : {}), ...(r.type ? { type: r.type } : {}), ...(r.dev !== undefined ? { dev: r.dev } : {}) };
        have.set(key(spec), spec);
      }
    }
    this.#have = have;
    return have;
  }

  async #ensureRule(dst: string): Promise<void> {
    const fam = family(dst);
    if (this.#rules.has(fam)) return;
    await this.#rtnl.ensureRule(fam, this.#table, MESH_TUN_RULE_PRIORITY);
    this.#rules.add(fam);
  }

  async #install(want: ReadonlyMap<string, RouteSpec>): Promise<void> {
    const have = await this.#current();
    for (const [k, r] of want) {
      if (have.has(k)) continue;
      await this.#ensureRule(r.dst);
      await this.#rtnl.addRoute(r, true).catch((e: unknown) => { if (!(e instanceof XfrmExistsError)) throw e; });
      have.set(k, r);
    }
  }

  async add(peers: readonly PeerRoutes[], strict: boolean): Promise<void> {
    await this.#install(this.#want(peers, strict, false));
  }

  async sync(peers: readonly PeerRoutes[], strict: boolean): Promise<void> {
    // The TUN exists once the engine bound the node address (the first peer did that).
    const want = this.#want(peers, strict, this.#dp.isOpen);
    await this.#install(want);
    const have = await this.#current();
    let removed = 0;
    for (const [k, r] of [...have]) {
      if (want.has(k)) continue;
      await this.#rtnl.deleteRoute(r).catch((e: unknown) => { if (!(e instanceof XfrmNotFoundError)) throw e; });
      have.delete(k);
      removed++;
    }
    if (removed > 0) this.#log.info({ removed }, 'mesh routes of departed peers removed');
  }

  async removeAll(): Promise<number> {
    this.#have = undefined;
    const have = await this.#current();
    const n = have.size;
    for (const r of have.values()) await this.#rtnl.deleteRoute(r).catch(() => { /* gone with the device, or already */ });
    have.clear();
    return n;
  }
}
