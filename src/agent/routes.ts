// Routes to remote subnets (spec.installRoutes, default true), the way strongSwan installs them:
// table 220 behind an `ip rule` of priority 220, each remote subnet routed like the peer itself
// (same device and next hop) with a preferred source address from our local subnets, so packets
// this host originates carry an address the outbound policy matches.
import { networkInterfaces } from 'node:os';
import { isIPv4 } from 'node:net';
import type { RouteSpec, RtnlClient } from '../xfrm/index.js';
import { XfrmExistsError, XfrmNotFoundError } from '../xfrm/index.js';
import type { RoutePort } from './kernel.js';
import type { Logger } from './log.js';

function inCidr(ip: string, cidr: string): boolean {
  const [net = '', bits = '32'] = cidr.split('/');
  if (!isIPv4(ip) || !isIPv4(net)) return false;
  const n = (a: string): number => a.split('.').reduce((x, o) => ((x << 8) | Number(o)) >>> 0, 0);
  const b = Number(bits);
  const mask = b === 0 ? 0 : (0xffffffff << (32 - b)) >>> 0;
  return ((n(ip) & mask) >>> 0) === ((n(net) & mask) >>> 0);
}

/** This host's IPv4 addresses, re-read at most once a second: every Child SA asks, addresses rarely change. */
let addresses: { readonly atMs: number; readonly list: readonly string[] } | undefined;
function localIpv4(nowMs: number): readonly string[] {
  if (addresses && nowMs - addresses.atMs < 1_000 && nowMs >= addresses.atMs) return addresses.list;
  const list = Object.values(networkInterfaces()).flatMap((l) => (l ?? []).filter((a) => a.family === 'IPv4').map((a) => a.address));
  addresses = { atMs: nowMs, list };
  return list;
}

/** A local interface address inside one of the local subnets, if this host has one. */
export function sourceIn(localSubnets: readonly string[], nowMs = Date.now()): string | undefined {
  return localIpv4(nowMs).find((a) => localSubnets.some((c) => inCidr(a, c)));
}

export class TableRoutes implements RoutePort {
  readonly #rtnl: RtnlClient;
  readonly #log: Logger;
  readonly #installed = new Map<string, RouteSpec[]>();
  /** One ensureRule for all tunnels: children installed at once must not race to add the rule. */
  #rule: Promise<void> | undefined;

  constructor(rtnl: RtnlClient, log: Logger) { this.#rtnl = rtnl; this.#log = log; }

  async ensure(peer: string, remoteSubnets: readonly string[], localSubnets: readonly string[], remoteGateway: string): Promise<void> {
    this.#rule ??= this.#rtnl.ensureRule().catch((e: unknown) => { this.#rule = undefined; throw e; });
    await this.#rule;
    // In-process RTM_GETROUTE: spawning `ip route get` per Child SA forked the whole agent each
    // time, which dominated the responder's handshake cost (bench/handshake-vs-strongswan).
    const via = await this.#rtnl.routeGet(remoteGateway).catch(() => ({ oif: undefined, gateway: undefined }));
    const src = sourceIn(localSubnets);
    const routes: RouteSpec[] = remoteSubnets.filter((d) => isIPv4(d.split('/')[0] ?? '')).map((dst) => ({
      dst, ...(src ? { src } : {}), ...(via.gateway ? { gateway: via.gateway } : {}), ...(via.oif !== undefined ? { dev: via.oif } : {}),
    }));
    for (const r of routes) {
      await this.#rtnl.addRoute(r, true).catch((e: unknown) => { if (!(e instanceof XfrmExistsError)) throw e; });
    }
    this.#installed.set(peer, routes);
    if (this.#log.isLevelEnabled('debug')) this.#log.debug({ peer, routes: routes.map((r) => `${r.dst}${r.src ? ` src ${r.src}` : ''}${r.dev ? ` dev ${r.dev}` : ''}`) }, 'routes installed (table 220)');
  }

  async remove(peer: string): Promise<void> {
    const routes = this.#installed.get(peer) ?? [];
    this.#installed.delete(peer);
    for (const r of routes) await this.#rtnl.deleteRoute(r).catch((e: unknown) => { if (!(e instanceof XfrmNotFoundError)) throw e; });
  }
}
