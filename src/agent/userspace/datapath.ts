// The userspace data path's devices (DESIGN.md §5 "userspace"): one TUN device
// (`kipsec0`) and one ESP engine that owns the NAT-T socket (UDP 4500). The engine is opened when
// the IKE sockets bind, because it binds the local address the config names; the XFRM stand-in
// (esp-xfrm.ts) and the IKE sockets (sockets.ts) share it through this object. Routes to remote
// subnets point into the TUN device (TunRoutes); they vanish with the device when the engine
// closes its fd, so even a crash leaves no route behind.
import { closeSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import { KipsecError, errorMessage } from '../../common/errors.js';
import { EspEngine, openEspTun } from '../../esp/index.js';
import type { RouteSpec, RtnlClient } from '../../xfrm/index.js';
import type { RoutePort } from '../kernel.js';
import type { Logger } from '../log.js';
import { sourceIn } from '../routes.js';
import { espStatusView, type EspStatusView } from './status.js';

export const DEFAULT_TUN_NAME = 'kipsec0';

/**
 * IKE datagrams on port 4500 wait here between the engine's receive thread and the event loop.
 * The engine's default (256) dropped 2,888 of them when 5,000 peers started IKE at once (each a
 * retransmission timeout for its peer). 4,096 holds such a burst; a datagram is at most ~2 KiB
 * here (the engine's buffer), so a full queue is under 10 MiB.
 */
const IKE_EVENT_QUEUE = 4_096;

/**
 * The largest inner packet whose ESP-in-UDP datagram fits the outer MTU under every suite the
 * engine keys (RFC 4303 §2.4, RFC 3948): one TUN MTU serves all SAs, so it is sized for the
 * largest overhead, AES-CBC with HMAC-SHA2-512-256 — outer IP (20/40) + UDP 8 + SPI/sequence 8 +
 * IV 16 + payload padded with its 2-byte trailer to the 16-byte block + ICV 32 (RFC 3602 §3,
 * RFC 4868 §2.3). AEAD suites (IV 8, ICV 16, 4-byte alignment) lose 32 bytes of it.
 */
export function tunMtu(outerMtu: number, ipv6: boolean): number {
  const fixed = (ipv6 ? 40 : 20) + 8 + 8 + 16 + 32;
  const padded = Math.floor((outerMtu - fixed) / 16) * 16;
  return Math.max(68, padded - 2);
}

export interface DatapathOptions {
  readonly rtnl: RtnlClient;
  readonly log: Logger;
  readonly tunName?: string;
  /** Engine tests and probes; the agent uses the addons. */
  readonly openEngine?: (tunFd: number, address: string, port: number) => EspEngine;
  readonly openTun?: (name: string) => { fd: number; name: string };
}

export class UserspaceDatapath {
  readonly #o: DatapathOptions;
  #engine: EspEngine | undefined;
  #address: string | undefined;
  #tun = '';

  constructor(o: DatapathOptions) { this.#o = o; }

  get tunName(): string { return this.#tun || (this.#o.tunName ?? DEFAULT_TUN_NAME); }
  get address(): string | undefined { return this.#address; }

  /** The engine; throws before open() (nothing can be installed before the sockets bind). */
  get engine(): EspEngine {
    if (!this.#engine) throw new KipsecError('ERR_ESP_NOT_OPEN', 'the userspace ESP engine is not open yet (no local address bound)');
    return this.#engine;
  }

  get isOpen(): boolean { return this.#engine !== undefined; }

  /** For `kipsec status`: offloads, counters and SA drops; undefined before open(). */
  statusView(): EspStatusView | undefined { return this.#engine ? espStatusView(this.#engine.stats()) : undefined; }

  /** TUN device, engine on address:port, TUN MTU from the outer device's, link up. */
  async open(address: string, port: number): Promise<EspEngine> {
    if (this.#engine) {
      if (address !== this.#address) throw new KipsecError('ERR_ESP_ADDRESS', `the userspace data path is bound to ${this.#address ?? '?'}; it serves one local address (restart the agent to change it, not ${address})`);
      return this.#engine;
    }
    // IFF_VNET_HDR (unless KIPSEC_ESP_OFFLOADS leaves TUN TSO out): the engine probes TSO on it.
    const tun = (this.#o.openTun ?? ((n) => openEspTun(n)))(this.#o.tunName ?? DEFAULT_TUN_NAME);
    let engine: EspEngine;
    try {
      engine = (this.#o.openEngine ?? ((fd, a, p) => EspEngine.open({ tunFd: fd, address: a, port: p, bypass: true, ikeQueue: IKE_EVENT_QUEUE })))(tun.fd, address, port);
    } catch (e) { closeSync(tun.fd); throw e; }
    this.#engine = engine; this.#address = address; this.#tun = tun.name;
    try {
      const outer = await this.#outerMtu(address);
      const mtu = tunMtu(outer, isIPv6(address));
      await this.#o.rtnl.setLinkMtu(tun.name, mtu);
      await this.#o.rtnl.setLinkUp(tun.name);
      const offloads = Object.entries(engine.stats().offloads).filter(([, on]) => on).map(([name]) => name);
      this.#o.log.info({ tun: tun.name, mtu, outerMtu: outer, local: `${address}:${engine.port}`, offloads }, 'userspace ESP data path up');
    } catch (e) { this.close(); throw e; }
    return engine;
  }

  /** MTU of the device that holds our address (1500 when it cannot be read). */
  async #outerMtu(address: string): Promise<number> {
    try {
      const via = await this.#o.rtnl.routeGet(address);
      const link = (await this.#o.rtnl.listLinks()).find((l) => l.index === via.oif);
      // The local route's device is lo (MTU 65536) when the address is on lo: use 1500 then.
      return link && link.mtu > 0 && link.mtu <= 9000 ? link.mtu : 1500;
    } catch (e) {
      this.#o.log.debug({ err: errorMessage(e) }, 'outer MTU unknown; assuming 1500');
      return 1500;
    }
  }

  /** Close the engine: its threads stop, the socket and the TUN fd close (the device and its routes go). */
  close(): void {
    this.#engine?.close();
    this.#engine = undefined;
  }
}

/** Routes to remote subnets into the TUN device, main table, with a source in our local subnets. */
export class TunRoutes implements RoutePort {
  readonly #rtnl: RtnlClient;
  readonly #dp: UserspaceDatapath;
  readonly #log: Logger;
  readonly #installed = new Map<string, RouteSpec[]>();

  constructor(rtnl: RtnlClient, dp: UserspaceDatapath, log: Logger) { this.#rtnl = rtnl; this.#dp = dp; this.#log = log; }

  async ensure(peer: string, remoteSubnets: readonly string[], localSubnets: readonly string[]): Promise<void> {
    const src = sourceIn(localSubnets);
    const routes: RouteSpec[] = remoteSubnets.map((dst) => ({ dst, dev: this.#dp.tunName, table: MAIN_TABLE, ...(src ? { src } : {}) }));
    for (const r of routes) await this.#rtnl.addRoute(r, true);
    this.#installed.set(peer, routes);
    this.#log.debug({ peer, routes: routes.map((r) => `${r.dst} dev ${this.#dp.tunName}${r.src ? ` src ${r.src}` : ''}`) }, 'routes installed (TUN)');
  }

  async remove(peer: string): Promise<void> {
    const routes = this.#installed.get(peer) ?? [];
    this.#installed.delete(peer);
    // Gone already when the TUN device went (engine closed): nothing to report then.
    for (const r of routes) await this.#rtnl.deleteRoute(r).catch(() => { /* already gone */ });
  }
}

/** RT_TABLE_MAIN: the TUN routes need no rule, and they go with the device. */
const MAIN_TABLE = 254;
