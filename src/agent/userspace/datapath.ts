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

/**
 * Routes to remote subnets into the TUN device, main table, with a source in our local subnets.
 * One kernel route per destination, shared: peers (or one peer's children and rekeys) naming the
 * same remote subnet hold it together and the last to go deletes it, so a rekey's ensure of routes
 * the peer holds costs no netlink message and one peer leaving cannot take another's route. The
 * device goes by its index, read once per TUN device (by name it cost an RTM_GETLINK per route
 * added or deleted, two of the four netlink round trips of each Child SA).
 */
export class TunRoutes implements RoutePort {
  readonly #rtnl: RtnlClient;
  readonly #dp: UserspaceDatapath;
  readonly #log: Logger;
  /** Destination → the route in the kernel and how many peers hold it. */
  readonly #routes = new Map<string, { spec: RouteSpec; users: number }>();
  /** Peer → the destinations it holds. */
  readonly #byPeer = new Map<string, Set<string>>();
  /** The TUN device the routes above are on: they went with an earlier one (engine closed). */
  #tun: { readonly engine: EspEngine; readonly dev: string | number } | undefined;
  /** Netlink operations in call order: a delete and a re-add of one destination must not cross. */
  #queue: Promise<void> = Promise.resolve();

  constructor(rtnl: RtnlClient, dp: UserspaceDatapath, log: Logger) { this.#rtnl = rtnl; this.#dp = dp; this.#log = log; }

  /** The device for new routes: the open TUN's index; a new device drops what the old one had. */
  async #dev(): Promise<string | number> {
    if (!this.#dp.isOpen) return this.#dp.tunName;
    const engine = this.#dp.engine;
    if (this.#tun?.engine === engine) return this.#tun.dev;
    const dev = await this.#rtnl.linkIndex(this.#dp.tunName).catch(() => this.#dp.tunName);
    if (this.#tun?.engine !== engine) {
      if (this.#tun) { this.#routes.clear(); this.#byPeer.clear(); }
      this.#tun = { engine, dev };
    }
    return this.#tun.dev;
  }

  #run(op: () => Promise<void>): Promise<void> {
    const p = this.#queue.then(op);
    this.#queue = p.catch(() => { /* reported to the caller of op */ });
    return p;
  }

  async ensure(peer: string, remoteSubnets: readonly string[], localSubnets: readonly string[]): Promise<void> {
    const dev = await this.#dev();
    const src = sourceIn(localSubnets);
    const held = this.#byPeer.get(peer) ?? new Set<string>();
    this.#byPeer.set(peer, held);
    const add: RouteSpec[] = []; const took: string[] = [];
    for (const dst of new Set(remoteSubnets)) {
      const spec: RouteSpec = { dst, dev, table: MAIN_TABLE, ...(src ? { src } : {}) };
      const r = this.#routes.get(dst);
      const fresh = !held.has(dst);
      if (fresh) { held.add(dst); took.push(dst); }
      if (!r) { this.#routes.set(dst, { spec, users: 1 }); add.push(spec); continue; }
      if (fresh) r.users++;
      // The same destination with another source: the latest install's route, as a replace did before.
      if (r.spec.src !== spec.src || r.spec.dev !== spec.dev) { r.spec = spec; add.push(spec); }
    }
    if (add.length === 0) return;
    try {
      await this.#run(async () => { for (const r of add) await this.#rtnl.addRoute(r, true); });
    } catch (e) {
      for (const dst of took) this.#release(peer, dst);
      throw e;
    }
    if (this.#log.isLevelEnabled('debug')) this.#log.debug({ peer, routes: add.map((r) => `${r.dst} dev ${this.#dp.tunName}${r.src ? ` src ${r.src}` : ''}`) }, 'routes installed (TUN)');
  }

  /** Drops the peer's hold on dst; the route if it was the last; the spec to delete then. */
  #release(peer: string, dst: string): RouteSpec | undefined {
    this.#byPeer.get(peer)?.delete(dst);
    const r = this.#routes.get(dst);
    if (!r || --r.users > 0) return undefined;
    this.#routes.delete(dst);
    return r.spec;
  }

  async remove(peer: string): Promise<void> {
    const held = this.#byPeer.get(peer);
    if (!held) return;
    this.#byPeer.delete(peer);
    const gone = [...held].map((dst) => this.#release(peer, dst)).filter((r): r is RouteSpec => r !== undefined);
    if (gone.length === 0) return;
    // Gone already when the TUN device went (engine closed): nothing to report then.
    await this.#run(async () => { for (const r of gone) await this.#rtnl.deleteRoute(r).catch(() => { /* already gone */ }); });
  }
}

/** RT_TABLE_MAIN: the TUN routes need no rule, and they go with the device. */
const MAIN_TABLE = 254;
