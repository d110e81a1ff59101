// Route-mode IPsecTunnels on a gateway node: the tunnel's XFRM interface (its if_id, the inside
// address, the profile's MTU, the remote subnets routed over it) exists exactly while this node is
// the tunnel's active gateway. The interfaces themselves are the standalone agent's
// (../xfrm-interfaces.ts: alias "kipsec:<tunnel>", adopted after a restart, never half-installed);
// this decides which tunnels want one and when the tunnel's SAs may go in: only once its interface
// is up, since the SAs and policies carry its if_id and traffic routed over it must find them.
//
// Standby, a lost Lease, a deleted or deselected tunnel: the interface goes (with its routes), so
// the remote subnets stop being routed here. After a restart an interface of a tunnel this node
// holds again is adopted (same name and if_id), not recreated; a leftover of a tunnel it no longer
// holds is removed, but only once every held route-mode tunnel is known (a held one whose config
// is not compiled yet would otherwise lose its interface for a moment).
import { errorMessage } from '../../common/errors.js';
import type { Logger } from '../log.js';
import type { TunnelConfig } from '../tunnel.js';
import type { XfrmInterfaces } from '../xfrm-interfaces.js';

export type LinkPort = Pick<XfrmInterfaces, 'syncEach' | 'removeAll'>;

/** What the SAs are bound to: a new name or if_id needs the new interface before the SAs. */
const boundTo = (t: TunnelConfig): string => `${t.xfrmInterface?.name ?? ''}/${t.xfrmInterface?.ifId ?? 0}`;
/** Everything the interface is made of: a change is applied to the interface in place. */
const madeOf = (t: TunnelConfig): string => JSON.stringify([t.name, t.remoteAddress, t.xfrmInterface, t.interfaceRoutes, t.remoteSubnets, t.localSubnets]);

export class GatewayLinks {
  readonly #port: LinkPort | undefined;
  readonly #log: Logger;
  /** Per tunnel: its interface's config (active, route mode) or null (known to want none); absent: not known yet. */
  readonly #wanted = new Map<string, TunnelConfig | null>();
  /** Per tunnel: what the interface that is up was made of (madeOf), and what its SAs bind to. */
  readonly #ready = new Map<string, { readonly made: string; readonly bound: string }>();
  readonly #errors = new Map<string, string>();
  /** The kernel may differ from #wanted: the first round (leftovers of a previous agent) and every change. */
  #dirty = true;
  #listError: string | undefined;

  constructor(port: LinkPort | undefined, log: Logger) { this.#port = port; this.#log = log; }

  /** This node runs `name` as its active gateway with this compiled config; null: it wants no interface (policy mode, not active, cannot run). */
  want(name: string, t: TunnelConfig | null): void {
    const next = t && t.mode === 'route' && t.xfrmInterface ? t : null;
    const was = this.#wanted.get(name);
    if (was !== undefined && (was === null ? next === null : next !== null && madeOf(was) === madeOf(next))) return;
    this.#wanted.set(name, next);
    if (next === null) { this.#ready.delete(name); this.#errors.delete(name); }
    this.#dirty = true;
  }

  /** No longer a gateway of `name` (deselected, deleted): its interface goes at the next round. */
  drop(name: string): void {
    if (!this.#wanted.has(name)) return;
    this.#wanted.delete(name); this.#ready.delete(name); this.#errors.delete(name);
    this.#dirty = true;
  }

  /** The tunnel's SAs may go in: its interface is up with the name and if_id they bind to. */
  ready(t: TunnelConfig): boolean { return this.#ready.get(t.name)?.bound === boundTo(t); }

  /** Why the tunnel's interface could not be set up (the last attempt), if it failed. */
  error(name: string): string | undefined { return this.#errors.get(name); }

  get pending(): boolean { return this.#dirty; }

  /**
   * Bring the kernel in line when something changed. `held`: the route-mode tunnels this node holds
   * by the spec; while one of them is not known yet the round waits (see the top). Returns whether
   * a tunnel's readiness or error changed (its peer must be recomputed).
   */
  async sync(held: readonly string[]): Promise<boolean> {
    if (!this.#dirty || !this.#port) return false;
    if (held.some((n) => !this.#wanted.has(n))) return false;
    this.#dirty = false;
    const wanted = [...this.#wanted.values()].filter((t): t is TunnelConfig => t !== null);
    let failed: Map<string, string>;
    try { failed = await this.#port.syncEach(wanted); } catch (e) {
      // Listing the links failed: nothing is known to be up; the next round tries again (logged once).
      this.#dirty = true;
      const err = errorMessage(e);
      if (err !== this.#listError) this.#log.warn({ err }, 'XFRM interfaces of route-mode tunnels: cannot list the links; retrying');
      this.#listError = err;
      return false;
    }
    this.#listError = undefined;
    let changed = false;
    for (const t of wanted) {
      const err = failed.get(t.name);
      if (err !== undefined) {
        if (this.#errors.get(t.name) !== err) { this.#errors.set(t.name, err); changed = true; this.#log.warn({ tunnel: t.name, err }, 'XFRM interface of the tunnel: set-up failed (nothing of it left installed); retrying'); }
        if (this.#ready.delete(t.name)) changed = true;
        this.#dirty = true;
        continue;
      }
      if (this.#errors.delete(t.name)) changed = true;
      const r = { made: madeOf(t), bound: boundTo(t) };
      if (this.#ready.get(t.name)?.bound !== r.bound) changed = true;
      this.#ready.set(t.name, r);
    }
    return changed;
  }

  /** Shutdown with the Leases released: every interface of ours goes (the standby that takes over makes its own). */
  async removeAll(): Promise<void> {
    if (!this.#port) return;
    const n = await this.#port.removeAll().catch((e: unknown) => { this.#log.warn({ err: errorMessage(e) }, 'removing the XFRM interfaces of route-mode tunnels failed'); return 0; });
    if (n > 0) this.#log.info({ removed: n }, 'XFRM interfaces of route-mode tunnels removed (no longer their active gateway)');
    this.#ready.clear();
    this.#wanted.clear();
  }
}
