// The routes that take traffic for IPsecTunnels' remote subnets from a node that is not the
// tunnel's active gateway to the node that is (the gateway forwards it into the tunnel, whose local
// subnets default to every pod CIDR of the cluster, compile.ts). One route per remote subnet,
// `<subnet> via <gateway node address>` in table 220 behind `ip rule` priority 220 (strongSwan's
// table, which the kernel data path uses for tunnel routes too), at a metric of its own so a
// tunnel's route on the same node (metric 0) wins and either can be removed alone.
//  - Kernel data path: every such subnet. When the mesh pair with the gateway carries it (the
//    routed pair's "pods" child, the overlay pair's "gateway-out" child, mesh/peers.ts), its XFRM
//    policy encrypts what the route sends; without a pair the leg goes in clear.
//  - Userspace data path: only the subnets no mesh pair carries; the carried ones go through the
//    TUN device (table 221), which this table, looked up first, must not bypass.
// A subnet holding either node's address, or of another family than the gateway's address, is
// left out (it would catch the traffic to the gateway itself).
import { isIP } from 'node:net';
import { errorMessage } from '../../common/errors.js';
import { AF_INET, AF_INET6 } from '../../xfrm/constants.js';
import { XfrmExistsError, XfrmNotFoundError, type RouteSpec, type RtnlClient } from '../../xfrm/index.js';
import type { Logger } from '../log.js';
import { cidrContains } from './routing.js';

export const GATEWAY_ROUTE_TABLE = 220;
export const GATEWAY_ROUTE_RULE_PRIORITY = 220;
export const GATEWAY_ROUTE_METRIC = 2048;

export interface GatewayRoute { readonly dst: string; readonly via: string; readonly node: string }

const hostCidr = (ip: string): string => `${ip}/${isIP(ip) === 6 ? 128 : 32}`;

/**
 * `viaNode`: per node, the remote subnets of the tunnels it is the active gateway of (routing.ts);
 * `addressOf`: a node's address (its IPsecNode endpoint); `throughTun`: the subnets the userspace
 * data path routes into its TUN device (undefined on the kernel data path).
 */
export function gatewayRoutes(viaNode: ReadonlyMap<string, readonly string[]>, self: string, addressOf: (node: string) => string | undefined, throughTun?: ReadonlySet<string>): GatewayRoute[] {
  const out = new Map<string, GatewayRoute>();
  for (const [node, subnets] of [...viaNode].sort(([a], [b]) => a.localeCompare(b))) {
    const via = addressOf(node);
    if (via === undefined || isIP(via) === 0 || via === self) continue;
    for (const dst of subnets) {
      if (out.has(dst) || throughTun?.has(dst)) continue;
      if (isIP(dst.split('/')[0] ?? '') !== isIP(via) || cidrContains(dst, hostCidr(via)) || (isIP(self) !== 0 && cidrContains(dst, hostCidr(self)))) continue;
      out.set(dst, { dst, via, node });
    }
  }
  return [...out.values()];
}

export interface GatewayRoutePort {
  /** Exactly these routes in the table (ours from an earlier run included), the others removed. */
  sync(routes: readonly GatewayRoute[]): Promise<void>;
  removeAll(): Promise<number>;
}

const key = (dst: string, via: string | undefined): string => `${dst}|${via ?? ''}`;
const familyOf = (cidr: string): number => (isIP(cidr.split('/')[0] ?? '') === 6 ? AF_INET6 : AF_INET);

export class GatewayRouteTable implements GatewayRoutePort {
  readonly #rtnl: RtnlClient;
  readonly #log: Logger;
  #have: Map<string, RouteSpec> | undefined;
  readonly #rules = new Set<number>();

  constructor(rtnl: RtnlClient, log: Logger) { this.#rtnl = rtnl; this.#log = log; }

  async #current(): Promise<Map<string, RouteSpec>> {
    if (this.#have) return this.#have;
    const have = new Map<string, RouteSpec>();
    for (const fam of [AF_INET, AF_INET6]) {
      const routes = await this.#rtnl.listRoutes(fam, GATEWAY_ROUTE_TABLE).catch((e: unknown) => { this.#log.debug({ err: errorMessage(e) }, 'cannot list table 220'); return []; });
      for (const r of routes) if (r.metric === GATEWAY_ROUTE_METRIC && r.type !== 'blackhole') have.set(key(r.dst, r.gateway), { dst: r.dst, table: GATEWAY_ROUTE_TABLE, metric: GATEWAY_ROUTE_METRIC, ...(r.gateway ? { gateway: r.gateway } : {}) });
    }
    this.#have = have;
    return have;
  }

  async sync(routes: readonly GatewayRoute[]): Promise<void> {
    const have = await this.#current();
    const want = new Map(routes.map((r) => [key(r.dst, r.via), r]));
    for (const [k, r] of have) {
      if (want.has(k)) continue;
      await this.#rtnl.deleteRoute(r).catch((e: unknown) => { if (!(e instanceof XfrmNotFoundError)) throw e; });
      have.delete(k);
      this.#log.info({ dst: r.dst, via: r.gateway }, 'route to a tunnel gateway removed');
    }
    for (const [k, r] of want) {
      if (have.has(k)) continue;
      const fam = familyOf(r.dst);
      if (!this.#rules.has(fam)) { await this.#rtnl.ensureRule(fam, GATEWAY_ROUTE_TABLE, GATEWAY_ROUTE_RULE_PRIORITY); this.#rules.add(fam); }
      // The device toward the gateway node, as `ip route get` finds it (main's connected route).
      const dev = (await this.#rtnl.routeGet(r.via).catch(() => ({ oif: undefined }))).oif;
      const spec: RouteSpec = { dst: r.dst, gateway: r.via, table: GATEWAY_ROUTE_TABLE, metric: GATEWAY_ROUTE_METRIC, ...(dev !== undefined ? { dev } : {}) };
      await this.#rtnl.addRoute(spec, true).catch((e: unknown) => { if (!(e instanceof XfrmExistsError)) throw e; });
      have.set(k, spec);
      this.#log.info({ dst: r.dst, via: r.via, gateway: r.node }, 'route to the tunnel\'s active gateway installed (table 220)');
    }
  }

  async removeAll(): Promise<number> {
    this.#have = undefined;
    const have = await this.#current();
    for (const r of have.values()) await this.#rtnl.deleteRoute(r).catch(() => { /* already gone */ });
    const n = have.size;
    have.clear();
    return n;
  }
}
