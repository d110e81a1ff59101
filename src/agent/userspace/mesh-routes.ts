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
// mesh going) removes it. The inbound half (the kernel's in/fwd blocks): plaintext from a peer's
// pod CIDR to ours is dropped unless it came out of the TUN device, by two rules per pair that
// outlive the agent too (a rule naming an absent device matches nothing):
//     priority 218: from <peer cidr> to <our cidr> iif kipsec0 lookup main
//     priority 219: from <peer cidr> to <our cidr> blackhole
// Without strict the engine still drops while it runs (there is no way around the TUN for a known
// peer's pods), and with the agent gone the CNI route carries them.
import { isIPv6 } from 'node:net';
import { errorMessage } from '../../common/errors.js';
import { AF_INET, AF_INET6 } from '../../xfrm/constants.js';
import { XfrmExistsError, XfrmNotFoundError, type RouteSpec, type RtnlClient, type RuleSpec } from '../../xfrm/index.js';
import type { Logger } from '../log.js';
import type { DesiredPeer } from '../source.js';
import { sourceIn } from '../routes.js';
import type { UserspaceDatapath } from './datapath.js';

export const MESH_TUN_TABLE = 221;
export const MESH_TUN_RULE_PRIORITY = 221;
export const TUN_ROUTE_METRIC = 100;
export const BLACKHOLE_METRIC = 4096;
/** The inbound pair: decrypted packets (from the TUN) pass, the same selector from anywhere else is dropped. */
export const INBOUND_PASS_PRIORITY = 218;
export const INBOUND_DROP_PRIORITY = 219;
const RT_TABLE_MAIN = 254;

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

type Item = { readonly kind: 'route'; readonly spec: RouteSpec } | { readonly kind: 'rule'; readonly spec: RuleSpec };

function key(i: Item): string {
  if (i.kind === 'route') return `route|${i.spec.type ?? 'unicast'}|${i.spec.dst}|${i.spec.metric ?? 0}`;
  const r = i.spec;
  return `rule|${r.priority}|${r.src ?? ''}|${r.dst ?? ''}|${r.iif ?? ''}|${r.action === 'blackhole' ? 'blackhole' : r.action.table}`;
}
const family = (cidr: string): number => (isIPv6(cidr.split('/')[0] ?? '') ? AF_INET6 : AF_INET);

export class MeshTunRoutes implements MeshRoutePort {
  readonly #rtnl: RtnlClient;
  readonly #dp: UserspaceDatapath;
  readonly #log: Logger;
  readonly #table: number;
  /** Routes and rules of ours, by key; filled from the kernel on the first call (earlier runs' blackholes). */
  #have: Map<string, Item> | undefined;
  readonly #lookupRules = new Set<number>();

  constructor(o: { rtnl: RtnlClient; datapath: UserspaceDatapath; log: Logger; table?: number }) {
    this.#rtnl = o.rtnl; this.#dp = o.datapath; this.#log = o.log; this.#table = o.table ?? MESH_TUN_TABLE;
  }

  #want(peers: readonly PeerRoutes[], strict: boolean, tun: boolean): Map<string, Item> {
    const out = new Map<string, Item>();
    const put = (i: Item): void => { out.set(key(i), i); };
    const dev = this.#dp.tunName;
    for (const p of peers) {
      const src = sourceIn(p.local);
      for (const dst of p.remote) {
        if (strict) {
          put({ kind: 'route', spec: { dst, type: 'blackhole', table: this.#table, metric: BLACKHOLE_METRIC } });
          for (const local of p.local.filter((l) => family(l) === family(dst))) {
            put({ kind: 'rule', spec: { priority: INBOUND_PASS_PRIORITY, src: dst, dst: local, iif: dev, action: { table: RT_TABLE_MAIN } } });
            put({ kind: 'rule', spec: { priority: INBOUND_DROP_PRIORITY, src: dst, dst: local, action: 'blackhole' } });
          }
        }
        if (tun) put({ kind: 'route', spec: { dst, dev, table: this.#table, metric: TUN_ROUTE_METRIC, ...(src && family(dst) === AF_INET ? { src } : {}) } });
      }
    }
    return out;
  }

  async #current(): Promise<Map<string, Item>> {
    if (this.#have) return this.#have;
    const have = new Map<string, Item>();
    const put = (i: Item): void => { have.set(key(i), i); };
    for (const fam of [AF_INET, AF_INET6]) {
      // Unreadable (no such table yet, an old kernel): start from nothing; adds are idempotent.
      const quiet = (e: unknown): [] => { this.#log.debug({ err: errorMessage(e) }, 'cannot list the mesh routes and rules'); return []; };
      for (const r of await this.#rtnl.listRoutes(fam, this.#table).catch(quiet)) {
        put({ kind: 'route', spec: { dst: r.dst, table: this.#table, ...(r.metric !== undefined ? { metric: r.metric } : {}), ...(r.type ? { type: r.type } : {}), ...(r.dev !== undefined ? { dev: r.dev } : {}) } });
      }
      for (const r of await this.#rtnl.listRules(fam, [INBOUND_PASS_PRIORITY, INBOUND_DROP_PRIORITY]).catch(quiet)) put({ kind: 'rule', spec: r });
    }
    this.#have = have;
    return have;
  }

  async #addOne(i: Item): Promise<void> {
    if (i.kind === 'rule') { await this.#rtnl.addRule(i.spec); return; }
    const fam = family(i.spec.dst);
    if (!this.#lookupRules.has(fam)) { await this.#rtnl.ensureRule(fam, this.#table, MESH_TUN_RULE_PRIORITY); this.#lookupRules.add(fam); }
    await this.#rtnl.addRoute(i.spec, true).catch((e: unknown) => { if (!(e instanceof XfrmExistsError)) throw e; });
  }

  async #deleteOne(i: Item): Promise<void> {
    const gone = (e: unknown): void => { if (!(e instanceof XfrmNotFoundError)) throw e; };
    if (i.kind === 'rule') await this.#rtnl.deleteRule(i.spec).catch(gone);
    else await this.#rtnl.deleteRoute(i.spec).catch(gone);
  }

  async #install(want: ReadonlyMap<string, Item>): Promise<void> {
    const have = await this.#current();
    // Drops first: a pass rule or TUN route without its blackhole behind it would be a gap.
    const order = [...want].sort(([a], [b]) => Number(b.includes('blackhole')) - Number(a.includes('blackhole')));
    for (const [k, i] of order) {
      if (have.has(k)) continue;
      await this.#addOne(i);
      have.set(k, i);
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
    for (const [k, i] of [...have]) {
      if (want.has(k)) continue;
      await this.#deleteOne(i);
      have.delete(k);
      removed++;
    }
    if (removed > 0) this.#log.info({ removed }, 'mesh routes and rules of departed peers removed');
  }

  async removeAll(): Promise<number> {
    this.#have = undefined;
    const have = await this.#current();
    const n = have.size;
    for (const i of have.values()) await this.#deleteOne(i).catch(() => { /* gone with the device, or already */ });
    have.clear();
    return n;
  }
}
