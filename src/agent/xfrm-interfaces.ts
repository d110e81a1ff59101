// Route-based tunnels (mode: route): one XFRM interface per tunnel, the way cloud VPN gateways
// expect a peer to work — `ip link add xfrm42 type xfrm dev eth0 if_id 42`, the inside address
// (AWS: the customer side of a 169.254.x.y/30), the provider's MTU, and the remote subnets routed
// over the interface. The tunnel's SAs and policies carry the same if_id (peers.ts hands it to
// the engine, kernel.ts puts XFRMA_IF_ID on them) and its selectors are 0.0.0.0/0 both ways, so
// what the routing table sends into the interface is what gets encrypted; without an SA the
// interface drops it (never clear text).
//
// The interface lives as long as the tunnel is configured, not as long as its SAs: a rekey, a
// DPD restart or an agent restart keeps it and its routes (DESIGN.md §5, a restart drops no
// traffic). Each is marked with the alias "kipsec:<tunnel>" so a restarted agent adopts its own
// and removes those of tunnels no longer configured, and never touches anyone else's.
// Never half-installed: if a step of one tunnel's set-up fails, its interface is deleted (its
// addresses and routes go with it) and the error names the tunnel.
import { isIP } from 'node:net';
import { KipsecError, errorMessage } from '../common/errors.js';
import { XfrmUnsupportedError, type RouteSpec, type RtnlClient } from '../xfrm/index.js';
import type { XfrmLinkState, XfrmLinks } from '../xfrm/rtnl/xfrm-links.js';
import type { Logger } from './log.js';
import { sourceIn } from './routes.js';
import type { TunnelConfig } from './tunnel.js';

export const ALIAS_PREFIX = 'kipsec:';
/** RTPROT_STATIC (include/uapi/linux/rtnetlink.h): the protocol RtnlClient.addRoute gives our routes. */
const RTPROT_STATIC = 4;
/** RT_TABLE_MAIN: routes over the interface need no rule and leave with the interface. */
const MAIN_TABLE = 254;

/** The daemon's view: bring the kernel's interfaces in line with the configured tunnels. */
export interface TunnelLinks {
  sync(tunnels: readonly TunnelConfig[]): Promise<void>;
  removeAll(): Promise<number>;
}

export type RtnlPort = Pick<RtnlClient, 'addXfrmInterface' | 'deleteLink' | 'setLinkUp' | 'setLinkMtu' | 'addRoute' | 'deleteRoute' | 'listRoutes' | 'routeGet'>;
export type LinksPort = Pick<XfrmLinks, 'list' | 'setAlias' | 'addAddress' | 'deleteAddress' | 'addresses' | 'close'>;

export class XfrmInterfaceError extends KipsecError {
  constructor(message: string) { super('ERR_XFRM_INTERFACE', message); }
}

export function aliasOf(tunnel: string): string { return `${ALIAS_PREFIX}${tunnel}`; }

const familyOfCidr = (c: string): number => isIP(c.split('/')[0] ?? '');

export class XfrmInterfaces implements TunnelLinks {
  readonly #rtnl: RtnlPort;
  readonly #open: () => LinksPort;
  readonly #log: Logger;
  /** Open only while working: interfaces change at start, reload and stop, never in between. */
  #links: LinksPort | undefined;

  constructor(rtnl: RtnlPort, openLinks: () => LinksPort, log: Logger) { this.#rtnl = rtnl; this.#open = openLinks; this.#log = log; }

  get #l(): LinksPort { return this.#links ??= this.#open(); }

  async #with<T>(fn: () => Promise<T>): Promise<T> {
    try { return await fn(); } finally { this.#links?.close(); this.#links = undefined; }
  }

  /**
   * Interfaces for every route-mode tunnel, none for anything else of ours. Each tunnel is set up
   * on its own; the failures are reported together (tunnel by tunnel) after the others are done.
   */
  async sync(tunnels: readonly TunnelConfig[]): Promise<void> {
    const failed = [...await this.syncEach(tunnels)].map(([name, e]) => `${name}: ${e}`);
    if (failed.length > 0) throw new XfrmInterfaceError(`XFRM interface set-up failed (nothing of those tunnels was left installed): ${failed.join('; ')}`);
  }

  /** As sync, with each failing tunnel's error by name (an empty map: every interface is ready). */
  syncEach(tunnels: readonly TunnelConfig[]): Promise<Map<string, string>> { return this.#with(() => this.#sync(tunnels)); }

  async #sync(tunnels: readonly TunnelConfig[]): Promise<Map<string, string>> {
    const wanted = tunnels.filter((t) => t.mode === 'route' && t.xfrmInterface !== undefined);
    const byAlias = new Map(wanted.map((t) => [aliasOf(t.name), t] as const));
    for (const l of await this.#l.list()) {
      if (!l.alias?.startsWith(ALIAS_PREFIX)) continue;
      const t = byAlias.get(l.alias);
      if (t && t.xfrmInterface!.name === l.name && t.xfrmInterface!.ifId === l.ifId) continue;
      await this.#delete(l, t ? 'its name or if_id changed' : 'its tunnel is no longer configured');
    }
    const failed = new Map<string, string>();
    for (const t of wanted) {
      try { await this.#ensure(t); } catch (e) { failed.set(t.name, errorMessage(e)); }
    }
    return failed;
  }

  /** One tunnel's interface, address, MTU and routes; adopted when it already exists as ours. */
  ensure(t: TunnelConfig): Promise<void> { return this.#with(() => this.#ensure(t)); }

  async #ensure(t: TunnelConfig): Promise<void> {
    const x = t.xfrmInterface;
    if (t.mode !== 'route' || !x) return;
    const existing = (await this.#l.list()).find((l) => l.name === x.name);
    if (existing && existing.alias !== aliasOf(t.name)) {
      throw new XfrmInterfaceError(`spec.xfrmInterface.name: interface ${x.name} exists and is not this tunnel's (${existing.alias ? `alias "${existing.alias}"` : 'no kipsec alias'}); choose another name`);
    }
    let index: number;
    let adopted = false;
    if (existing && existing.ifId === x.ifId) { index = existing.index; adopted = true; } else {
      if (existing) await this.#delete(existing, 'its if_id changed');
      // IFLA_XFRM_LINK: the device toward the peer, for PMTU; the kernel works without it.
      const via = isIP(t.remoteAddress) ? await this.#rtnl.routeGet(t.remoteAddress).catch(() => ({ oif: undefined })) : { oif: undefined };
      index = await this.#rtnl.addXfrmInterface({ name: x.name, ifId: x.ifId, ...(via.oif !== undefined ? { link: via.oif } : {}), ...(x.mtu !== undefined ? { mtu: x.mtu } : {}) })
        .catch((e: unknown) => {
          // RTM_NEWLINK of an unknown kind: the kernel lacks CONFIG_XFRM_INTERFACE (module xfrm_interface).
          if (e instanceof XfrmUnsupportedError) throw new XfrmInterfaceError(`spec.mode: route needs XFRM interfaces, which this kernel does not have (CONFIG_XFRM_INTERFACE, module xfrm_interface; \`ip link add x type xfrm if_id 1\` fails the same way): ${e.message}`);
          throw e;
        });
    }
    try {
      // The alias first: an agent that dies from here on finds the interface as its own.
      await this.#l.setAlias(index, aliasOf(t.name));
      if (adopted && x.mtu !== undefined && existing?.mtu !== x.mtu) await this.#rtnl.setLinkMtu(index, x.mtu);
      const have = await this.#l.addresses(index);
      // Addresses someone set by hand or an old insideAddress go; the kernel's IPv6 link-local stays.
      for (const a of have) if (a.cidr !== x.insideAddress && !a.cidr.startsWith('fe80:')) await this.#l.deleteAddress(index, a.cidr);
      if (x.insideAddress !== undefined) await this.#l.addAddress(index, x.insideAddress);
      await this.#rtnl.setLinkUp(index);
      const routes = t.interfaceRoutes ? this.#routesOf(t, index) : [];
      await this.#pruneRoutes(index, routes);
      for (const r of routes) await this.#rtnl.addRoute(r, true);
      this.#log.info({ tunnel: t.name, dev: x.name, ifId: x.ifId, address: x.insideAddress, mtu: x.mtu, routes: routes.map((r) => r.dst), adopted }, 'XFRM interface ready');
    } catch (e) {
      await this.#rtnl.deleteLink(index).catch(() => { /* already gone */ });
      throw e;
    }
  }

  /** Remove every interface of ours (standalone shutdown: nothing of ours stays). */
  removeAll(): Promise<number> { return this.#with(() => this.#removeAll()); }

  async #removeAll(): Promise<number> {
    let n = 0;
    for (const l of await this.#l.list()) {
      if (!l.alias?.startsWith(ALIAS_PREFIX)) continue;
      await this.#delete(l, 'agent stopping');
      n++;
    }
    return n;
  }

  #routesOf(t: TunnelConfig, index: number): RouteSpec[] {
    const src = sourceIn(t.localSubnets);
    return t.remoteSubnets.map((dst) => ({
      dst, dev: index, table: MAIN_TABLE, ...(t.xfrmInterface?.routeMetric !== undefined ? { metric: t.xfrmInterface.routeMetric } : {}),
      ...(src !== undefined && familyOfCidr(`${src}/32`) === familyOfCidr(dst) ? { src } : {}),
    }));
  }

  /** Routes over this interface that the config no longer names (remote subnets changed). */
  async #pruneRoutes(index: number, keep: readonly RouteSpec[]): Promise<void> {
    for (const family of [4, 6] as const) {
      const listed = await this.#rtnl.listRoutes(family === 4 ? 2 : 10, MAIN_TABLE);
      for (const r of listed) {
        // Only routes of ours (proto static, as addRoute makes them): the kernel's prefix route of the
        // inside address (proto kernel), hand-made ones (proto boot) and a BGP daemon's (bird, zebra…) stay.
        if (r.dev !== index || r.protocol !== RTPROT_STATIC || keep.some((k) => k.dst === r.dst)) continue;
        await this.#rtnl.deleteRoute({ dst: r.dst, dev: index, table: MAIN_TABLE }).catch(() => { /* gone meanwhile */ });
      }
    }
  }

  async #delete(l: XfrmLinkState, why: string): Promise<void> {
    await this.#rtnl.deleteLink(l.index).catch((e: unknown) => { if (!/ENODEV|ENOENT/.test(errorMessage(e))) throw e; });
    this.#log.info({ dev: l.name, ifId: l.ifId, alias: l.alias, why }, 'XFRM interface removed');
  }
}
