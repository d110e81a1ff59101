// The engine's KernelIpsec port (src/ike/ports.ts) on Linux XFRM through src/xfrm's client.
//
// Why a reqid translation: the engine numbers Child SAs itself, but after a restart the agent
// must recognise the SAs and policies it installed before (DESIGN.md §5: never flush). So every
// XFRM object carries the tunnel's stable reqid (tunnel.ts reqidFor), derived from the peer name;
// the engine's own reqid is kept only to answer acquires.
//
// Make-before-break: a Child SA's policies reference the reqid, not an SPI, so a rekey installs
// the new inbound and outbound states next to the old ones (XFRM picks the newest outbound state
// for a template), and the engine deletes the old pair later with keepPolicies. A rekey responder
// gets outboundActive=false: its outbound state waits until updateChildSa({activateOutbound}).
// The policy records, and which reqid holds each policy now: kernel-policies.ts.
import { errorMessage } from '../common/errors.js';
import type { ChildSaCounters, KernelChildSa, KernelChildSaRef, KernelChildSaUpdate, KernelIpsec, KernelSa, KernelTrap, RestoredChildSa } from '../ike/ports.js';
import type { AllocSpiRequest, InstalledChild, PolicyId, PolicySpec, PolicyState, SaAe, SaId, SaSpec, SaState } from '../xfrm/index.js';
import { XfrmInstallError, XfrmNotFoundError } from '../xfrm/index.js';
import type { ChildInstall, ChildSa } from '../xfrm/install.js';
import type { Logger } from './log.js';
import { PolicyOwners, policyId, policyKey, policySpecOf, toPolicySpecs } from './kernel-policies.js';
import { SpiTable } from './kernel-spi-table.js';
import { encapOf, limits } from './kernel-sa-parts.js';
export { toPolicySpec, tsCidr } from './kernel-policies.js';

/** The part of XfrmClient the port uses (a fake in unit tests). */
export interface XfrmPort {
  allocSpi(q: AllocSpiRequest): Promise<number>;
  addSa(sa: SaSpec): Promise<void>;
  updateSa(sa: SaSpec): Promise<void>;
  deleteSa(id: SaId): Promise<void>;
  getAe(id: SaId & { src: string; reqid?: number }): Promise<SaAe>;
  listSas(): Promise<SaState[]>;
  updatePolicy(p: PolicySpec): Promise<void>;
  deletePolicy(id: PolicyId): Promise<void>;
  listPolicies(): Promise<PolicyState[]>;
  installChild(c: ChildInstall): Promise<InstalledChild>;
  /** Policies, then SAs; missing ones are fine (XfrmClient: one datagram). */
  removeChild(c: InstalledChild): Promise<void>;
}

/** Routes to remote subnets (strongSwan's install_routes); absent = installRoutes false. */
export interface RoutePort {
  ensure(peer: string, remoteSubnets: readonly string[], localSubnets: readonly string[], remoteGateway: string): Promise<void>;
  remove(peer: string): Promise<void>;
}

export interface KernelPortOptions {
  readonly xfrm: XfrmPort;
  readonly log: Logger;
  /** Stable reqid of a peer's child; the tunnel name maps to its reqid (tunnel.ts). */
  readonly reqidOf: (peer: string, child: string) => number;
  /** Whether this peer wants routes (spec.installRoutes). */
  readonly wantsRoutes: (peer: string) => boolean;
  readonly routes?: RoutePort;
  readonly now?: () => number;
}

interface Tracked {
  readonly peer: string;
  readonly child: string;
  readonly reqid: number;
  /** The local address it was installed (or resumed) for: with the inbound SPI, its key. */
  readonly at: string;
  /** As installed: the object the XFRM port got (allocated: UPDSA completed the larval SA), not a copy. */
  inbound: ChildSa;
  outbound: SaSpec;
  outboundInstalled: boolean;
  /** Fewer once releasePolicies took some away before the Child SA went. */
  policies: readonly PolicySpec[];
  lastInboundBytes: bigint;
  lastInboundMs: number | null;
}

/** XFRM's algorithm triple for one KernelSa. */
function algorithms(a: KernelSa['algorithms']): Pick<SaSpec, 'aead' | 'crypt' | 'auth'> {
  if (a.kind === 'aead') return { aead: { name: a.name, key: a.key, icvBits: a.icvBits } };
  return { crypt: { name: a.encryption.name, key: a.encryption.key }, auth: { name: a.integrity.name, key: a.integrity.key, truncBits: a.integrity.truncBits } };
}

/** `allocated`: the SPI came from ALLOCSPI, so the install completes the larval SA (UPDSA). */
export function toSaSpec(sa: KernelSa, c: Pick<KernelChildSa, 'mode' | 'ifId' | 'mark'>, reqid: number, allocated = false): ChildSa {
  return {
    src: sa.source, dst: sa.destination, spi: sa.spi >>> 0, proto: 'esp', mode: c.mode, reqid,
    ...algorithms(sa.algorithms), ...limits(sa.lifetimes),
    replayWindow: sa.replayWindow, esn: sa.esn,
    ...(sa.encap ? { encap: encapOf(sa.encap.sourcePort, sa.encap.destinationPort) } : {}),
    ...(c.mark ? { mark: c.mark } : {}), ...(c.ifId !== null ? { ifId: c.ifId } : {}),
    ...(allocated ? { allocated: true } : {}),
  };
}

const ignoreMissing = (e: unknown): void => { if (!(e instanceof XfrmNotFoundError)) throw e; };

export class XfrmKernel implements KernelIpsec {
  readonly #o: KernelPortOptions;
  /** By local address and inbound SPI. */
  readonly #children = new SpiTable<Tracked>((t) => t.at);
  /** How many tracked children use each reqid, so "does another child still need these policies" is one lookup. */
  readonly #reqidUse = new Map<number, number>();
  /** Children whose SAs are being moved to new addresses (for a while both or neither SA may show). */
  readonly #moving = new Set<Tracked>();
  readonly #traps = new Map<string, { readonly policies: readonly PolicySpec[]; readonly engineReqid: number; readonly reqid: number }>();
  /** peer/child → policies a removed Child SA left for its successor (dpd.action restart or hold), until one is installed. */
  readonly #kept = new Map<string, { readonly policies: readonly PolicySpec[]; readonly reqid: number }>();
  /** Which reqid holds each policy in the kernel now (kernel-policies.ts says why). */
  readonly #owners = new PolicyOwners();
  /** Stable reqid → the engine's reqid, to answer kernel acquires (engine.acquire takes its own). */
  readonly #engineReqid = new Map<number, number>();
  readonly #now: () => number;

  constructor(o: KernelPortOptions) { this.#o = o; this.#now = o.now ?? Date.now; }

  /** Inbound SPIs of the Child SAs installed by this process (for expire events). */
  isInboundSpi(local: string, spi: number): boolean { return this.#children.get(local, spi) !== undefined; }

  /**
   * The inbound SPI of the Child SA whose installed outbound state this is. The sender's outbound
   * state is the one that counts toward the sequence-number limit, and with one-way traffic only it
   * reaches its soft expire (a few hundred children: a scan per expire event is cheap).
   */
  inboundSpiOfOutbound(remote: string, spi: number): number | undefined {
    for (const t of this.#children.values()) {
      if (t.outboundInstalled && t.outbound.spi >>> 0 === spi >>> 0 && t.outbound.dst === remote) return t.inbound.spi;
    }
    return undefined;
  }

  engineReqidFor(stableReqid: number): number | undefined { return this.#engineReqid.get(stableReqid); }

  /**
   * Child SAs of this reqid whose states are gone from the kernel although nothing of ours removed
   * them (`ip xfrm state flush` by hand, another daemon). The kernel asks for an SA (ACQUIRE) when
   * a policy of ours has none; this answers which of ours to replace. Returns inbound SPIs.
   */
  async lostChildren(stableReqid: number): Promise<number[]> {
    const lost: number[] = [];
    for (const t of [...this.#children.values()]) {
      if (t.reqid !== stableReqid || this.#moving.has(t)) continue;
      const present = async (sa: SaSpec): Promise<boolean> => {
        try { await this.#o.xfrm.getAe({ dst: sa.dst, spi: sa.spi >>> 0, src: sa.src, proto: 'esp' }); return true; } catch (e) {
          if (e instanceof XfrmNotFoundError) return false;
          throw e;
        }
      };
      if (!(await present(t.inbound)) || (t.outboundInstalled && !(await present(t.outbound)))) lost.push(t.inbound.spi);
    }
    return lost;
  }

  async allocSpi(req: { readonly local: string; readonly remote: string; readonly reqid: number }): Promise<number> {
    return this.#o.xfrm.allocSpi({ src: req.remote, dst: req.local, proto: 'esp', mode: 'tunnel', reqid: req.reqid });
  }

  async releaseSpi(req: { readonly local: string; readonly remote: string; readonly spi: number }): Promise<void> {
    await this.#o.xfrm.deleteSa({ dst: req.local, spi: req.spi >>> 0, src: req.remote, proto: 'esp' }).catch(ignoreMissing);
  }

  async installChildSa(sa: KernelChildSa): Promise<void> {
    const reqid = this.#o.reqidOf(sa.peer, sa.child);
    this.#engineReqid.set(reqid, sa.reqid);
    // Tracked keeps the specs the XFRM port got (the userspace port keeps them too): one object each.
    const inbound = toSaSpec(sa.inbound, sa, reqid, true);
    const outbound = toSaSpec(sa.outbound, sa, reqid);
    const policies = toPolicySpecs(sa.policies, sa, reqid);
    const sas = sa.outboundActive ? [inbound, outbound] : [inbound];
    // replacePolicies: a rekey, an adopted predecessor or an on-demand trap already holds these
    // selectors with the same reqid; UPDPOLICY swaps without a moment of clear text.
    await this.#o.xfrm.installChild({ sas, policies, replacePolicies: true });
    this.#owners.own(policies, reqid);
    this.#track({
      peer: sa.peer, child: sa.child, reqid, at: sa.inbound.destination, inbound, outbound, outboundInstalled: sa.outboundActive, policies,
      lastInboundBytes: 0n, lastInboundMs: null,
    });
    // Debug: the daemon logs the same event at info ("child SA up", with SPIs and selectors).
    this.#o.log.debug({ peer: sa.peer, child: sa.child, reqid, spiIn: hex(sa.inbound.spi), spiOut: hex(sa.outbound.spi), outboundActive: sa.outboundActive, encap: sa.inbound.encap !== null }, 'child SA installed');
    if (this.#o.routes && this.#o.wantsRoutes(sa.peer)) {
      const remote = [...new Set(policies.filter((p) => p.dir === 'out').map((p) => p.selector.dst))];
      const local = [...new Set(policies.filter((p) => p.dir === 'out').map((p) => p.selector.src))];
      // A route failure leaves the Child SA working for traffic that already uses the tunnel's
      // addresses; it is logged, not fatal (strongSwan behaves the same).
      await this.#o.routes.ensure(sa.peer, remote, local, sa.outbound.destination).catch((e: unknown) => {
        this.#o.log.warn({ peer: sa.peer, err: errorMessage(e) }, 'route install failed');
      });
    }
  }

  async updateChildSa(ref: KernelChildSaRef, u: KernelChildSaUpdate): Promise<void> {
    const t = this.#children.get(ref.local, ref.inboundSpi);
    if (!t) return;
    if (u.encap !== undefined || u.local !== undefined || u.remote !== undefined) {
      const encap = u.encap === undefined ? undefined : u.encap === null ? null : { sport: u.encap.sourcePort, dport: u.encap.destinationPort };
      // The moved SA is added (NEWSA) or updated, never completed from a larval one: no `allocated`.
      const patch = (s: ChildSa, inbound: boolean): SaSpec => {
        const { allocated: _a, encap: was, ...rest } = s;
        const src = inbound ? (u.remote ?? s.src) : (u.local ?? s.src);
        const dst = inbound ? (u.local ?? s.dst) : (u.remote ?? s.dst);
        const e = encap === undefined ? was : encap === null ? undefined : inbound ? encapOf(encap.dport, encap.sport) : encapOf(encap.sport, encap.dport);
        return e === undefined ? { ...rest, src, dst } : { ...rest, src, dst, encap: e };
      };
      const nin = patch(t.inbound, true); const nout = patch(t.outbound, false);
      // Address changes move the SA (its identity includes dst): add the new one, then drop the old.
      this.#moving.add(t);
      try {
        for (const [old, next, installed] of [[t.inbound, nin, true], [t.outbound, nout, t.outboundInstalled]] as const) {
          if (!installed) continue;
          if (old.dst === next.dst) await this.#o.xfrm.updateSa(next);
          else { await this.#o.xfrm.addSa(next); await this.#o.xfrm.deleteSa({ dst: old.dst, spi: old.spi, src: old.src, proto: 'esp' }).catch(ignoreMissing); }
        }
        t.inbound = nin; t.outbound = nout;
      } finally {
        this.#moving.delete(t);
      }
    }
    if (u.activateOutbound && !t.outboundInstalled) {
      await this.#o.xfrm.addSa(t.outbound);
      t.outboundInstalled = true;
      this.#o.log.info({ peer: t.peer, child: t.child, spiOut: hex(t.outbound.spi) }, 'outbound SA activated');
    }
  }

  async deleteChildSa(ref: KernelChildSaRef, opts: { readonly keepPolicies: boolean }): Promise<void> {
    const t = this.#children.get(ref.local, ref.inboundSpi);
    if (t) this.#untrack(t);
    const errors: string[] = [];
    const reqid = t?.reqid ?? this.#o.reqidOf(ref.peer, ref.child);
    // Policies first when they go for good, so no packet leaves in clear while the SAs vanish.
    const dropPolicies = !opts.keepPolicies && !this.#stillUsed(reqid);
    // Not tracked (not installed by this process): the kernel says which policies are this reqid's.
    const policies = !dropPolicies ? [] : t ? this.#owners.disown(t.policies, reqid) : (await this.#o.xfrm.listPolicies()).filter((p) => p.templates?.some((x) => x.reqid === reqid)).map(policyId);
    if (dropPolicies && !t) this.#owners.forget(policies);
    const sas: SaId[] = [{ dst: ref.local, spi: ref.inboundSpi >>> 0, src: ref.remote, proto: 'esp' }];
    if (!t || t.outboundInstalled) sas.push({ dst: ref.remote, spi: ref.outboundSpi >>> 0, src: ref.local, proto: 'esp' });
    await this.#o.xfrm.removeChild({ policies, sas }).catch((e: unknown) => { errors.push(...(e instanceof XfrmInstallError ? e.leftover : [errorMessage(e)])); });
    if (!dropPolicies && t && !this.#stillUsed(reqid)) this.#kept.set(`${ref.peer}/${ref.child}`, { policies: t.policies, reqid });
    if (dropPolicies && this.#o.routes) await this.#o.routes.remove(ref.peer).catch((e: unknown) => { errors.push(errorMessage(e)); });
    this.#o.log.debug({ peer: ref.peer, child: ref.child, spiIn: hex(ref.inboundSpi), spiOut: hex(ref.outboundSpi), keepPolicies: opts.keepPolicies }, 'child SA removed');
    if (errors.length) throw new Error(`removing child SA ${ref.peer}/${ref.child}: ${errors.join('; ')}`);
  }

  /**
   * The peer is negotiated again or removed (its IKE SA's Delete sent, maybe never answered): the policies of
   * its Child SAs that `keep` rejects go now rather than with the SAs (gateway/moved-selectors.ts
   * says why), unless another reqid took them over. Returns how many went.
   */
  async releasePolicies(peer: string, keep: (child: string, p: PolicySpec) => boolean): Promise<number> {
    const gone = new Map<string, PolicyId>();
    for (const t of this.#children.values()) {
      if (t.peer !== peer) continue;
      const drop = t.policies.filter((p) => !keep(t.child, p));
      if (drop.length === 0) continue;
      t.policies = t.policies.filter((p) => keep(t.child, p));
      // The old and the new Child SA of a rekey share their policies: one delete each.
      for (const id of this.#owners.disown(drop, t.reqid)) gone.set(policyKey(id), id);
    }
    for (const id of gone.values()) await this.#o.xfrm.deletePolicy(id).catch(ignoreMissing);
    if (gone.size > 0) this.#o.log.info({ peer, policies: gone.size }, 'policies the renegotiated or removed peer no longer carries removed before its old Child SAs go');
    return gone.size;
  }

  #stillUsed(reqid: number): boolean {
    return (this.#reqidUse.get(reqid) ?? 0) > 0;
  }

  #track(t: Tracked): void {
    const old = this.#children.get(t.at, t.inbound.spi);
    if (old) this.#untrack(old);
    this.#kept.delete(`${t.peer}/${t.child}`);
    this.#children.set(t.inbound.spi, t);
    this.#reqidUse.set(t.reqid, (this.#reqidUse.get(t.reqid) ?? 0) + 1);
  }

  #untrack(t: Tracked): void {
    if (!this.#children.delete(t.inbound.spi, t)) return;
    const n = (this.#reqidUse.get(t.reqid) ?? 1) - 1;
    if (n > 0) this.#reqidUse.set(t.reqid, n); else this.#reqidUse.delete(t.reqid);
  }

  /**
   * Expires the kernel sent while the event socket overran (ENOBUFS: it dropped messages for us)
   * are lost, and Child SA rekeys hang on the soft ones. This compares every Child SA we installed
   * with the kernel's SA table: an inbound SA that is gone was hard-expired (or removed by
   * someone else); one past a soft limit (add time, bytes, packets) was soft-expired. Children
   * installed, changed or removed while the dump ran are left out.
   */
  async missedExpires(): Promise<Array<{ readonly inboundSpi: number; readonly hard: boolean }>> {
    const before = [...this.#children.values()].map((t) => ({ t, inbound: t.inbound }));
    const kernel = new SpiTable<SaState>((s) => s.dst);
    for (const s of await this.#o.xfrm.listSas()) kernel.set(s.spi, s);
    const nowSec = BigInt(Math.floor(this.#now() / 1000)); // add_time is wall-clock seconds
    const out: Array<{ inboundSpi: number; hard: boolean }> = [];
    for (const { t, inbound } of before) {
      // Installed, removed or moved (NAT mapping, address change) while the dump ran, or still
      // moving (a move that ended meanwhile replaced t.inbound): not judged.
      if (this.#children.get(t.at, inbound.spi) !== t || t.inbound !== inbound || this.#moving.has(t)) continue;
      const s = kernel.get(inbound.dst, inbound.spi);
      if (!s) { out.push({ inboundSpi: inbound.spi, hard: true }); continue; }
      const soft = inbound.soft;
      const past = soft !== undefined && (
        (soft.addExpiresSec !== undefined && s.current.add_time > 0n && s.current.add_time + BigInt(soft.addExpiresSec) <= nowSec)
        || (soft.bytes !== undefined && s.current.bytes >= soft.bytes)
        || (soft.packets !== undefined && s.current.packets >= soft.packets));
      if (past) out.push({ inboundSpi: inbound.spi, hard: false });
    }
    return out;
  }

  async queryCounters(ref: KernelChildSaRef): Promise<ChildSaCounters> {
    const inn = await this.#o.xfrm.getAe({ dst: ref.local, spi: ref.inboundSpi >>> 0, src: ref.remote, proto: 'esp' });
    const t = this.#children.get(ref.local, ref.inboundSpi);
    const out = !t || t.outboundInstalled
      ? await this.#o.xfrm.getAe({ dst: ref.remote, spi: ref.outboundSpi >>> 0, src: ref.local, proto: 'esp' }).catch((e: unknown) => { ignoreMissing(e); return undefined; })
      : undefined;
    const inBytes = inn.current?.bytes ?? 0n;
    let last: number | null = null;
    if (t) {
      if (inBytes !== t.lastInboundBytes) { t.lastInboundBytes = inBytes; t.lastInboundMs = this.#now(); }
      last = t.lastInboundMs;
    }
    return {
      inboundBytes: inBytes, inboundPackets: inn.current?.packets ?? 0n,
      outboundBytes: out?.current?.bytes ?? 0n, outboundPackets: out?.current?.packets ?? 0n,
      lastInboundMs: last,
    };
  }

  /**
   * Kernel state read once for the restoreChildSa calls of a restart (the daemon's start-up scan),
   * so resuming N Child SAs does not dump the SA table N times. null: each call reads the kernel.
   */
  useKernelView(view: { readonly sas: readonly SaState[]; readonly policies: readonly PolicyState[] } | null): void { this.#view = view; }
  #view: { readonly sas: readonly SaState[]; readonly policies: readonly PolicyState[] } | null = null;

  async restoreChildSa(r: RestoredChildSa): Promise<boolean> {
    const view = this.#view ?? { sas: await this.#o.xfrm.listSas(), policies: await this.#o.xfrm.listPolicies() };
    const reqid = this.#o.reqidOf(r.ref.peer, r.ref.child);
    // Keyed ESP states of this tunnel only: a larval ALLOCSPI state or someone else's SA is not it.
    const find = (src: string, dst: string, spi: number): SaState | undefined => view.sas.find((x) =>
      x.spi === spi >>> 0 && x.src === src && x.dst === dst && (x.proto ?? 'esp') === 'esp' && x.reqid === reqid && (x.aead !== undefined || x.crypt !== undefined));
    const inbound = find(r.ref.remote, r.ref.local, r.ref.inboundSpi);
    const outbound = find(r.ref.local, r.ref.remote, r.ref.outboundSpi);
    if (!inbound) return false;
    let out: SaSpec;
    if (outbound) out = specOf(outbound);
    else if (r.pendingOutbound) out = toSaSpec(r.pendingOutbound, r, reqid);
    else return false;
    const policies = view.policies.filter((p) => p.templates?.some((t) => t.reqid === reqid)).map(policySpecOf);
    this.#owners.own(policies, reqid);
    this.#engineReqid.set(reqid, r.ref.reqid);
    this.#track({
      peer: r.ref.peer, child: r.ref.child, reqid, at: r.ref.local, inbound: specOf(inbound), outbound: out, outboundInstalled: outbound !== undefined, policies,
      lastInboundBytes: inbound.current.bytes, lastInboundMs: null,
    });
    this.#o.log.info({ peer: r.ref.peer, child: r.ref.child, reqid, spiIn: hex(r.ref.inboundSpi), spiOut: hex(r.ref.outboundSpi), outboundActive: outbound !== undefined }, 'child SA resumed from the kernel');
    return true;
  }

  async installTrap(trap: KernelTrap): Promise<void> {
    const reqid = this.#o.reqidOf(trap.peer, trap.child);
    this.#engineReqid.set(reqid, trap.reqid);
    const c = { mode: trap.mode, ifId: null, mark: null } as const;
    const policies = toPolicySpecs(trap.policies, c, reqid);
    for (const p of policies) await this.#o.xfrm.updatePolicy(p);
    this.#owners.own(policies, reqid);
    this.#traps.set(`${trap.peer}/${trap.child}`, { policies, engineReqid: trap.reqid, reqid });
  }

  async removeTrap(trap: { readonly peer: string; readonly child: string; readonly reqid: number }): Promise<void> {
    const k = `${trap.peer}/${trap.child}`;
    const t = this.#traps.get(k);
    this.#traps.delete(k);
    // An installed Child SA of the same reqid took these selectors over; leave them to it.
    if (t && !this.#stillUsed(t.reqid)) for (const id of this.#owners.disown(t.policies, t.reqid)) await this.#o.xfrm.deletePolicy(id).catch(ignoreMissing);
    const kept = this.#kept.get(k);
    this.#kept.delete(k);
    if (!kept || this.#stillUsed(kept.reqid)) return;
    for (const id of this.#owners.disown(kept.policies, kept.reqid)) await this.#o.xfrm.deletePolicy(id).catch(ignoreMissing);
    if (this.#o.routes) await this.#o.routes.remove(trap.peer);
  }
}

/** The spec part of a dumped state (what updateSa needs), without counters. */
function specOf(x: SaState): SaSpec {
  const { current: _c, stats: _s, ...spec } = x;
  return spec;
}

export function hex(spi: number): string { return (spi >>> 0).toString(16).padStart(8, '0'); }
