// Strict mode (IPsecMesh spec.strict): once a peer is known, its traffic is ESP or dropped —
// before its SA exists, between an SA's failure and its successor, and while the agent is not
// running. Block policies (XFRM_POLICY_BLOCK) mirror every IPsec policy a peer's Child SAs would
// install (out, in, and fwd for tunnel mode) at a priority the IPsec policies beat (lower wins), so
// with an SA the packet takes the SA and without one it is dropped. They outlive the agent: only
// the peer leaving the mesh (or the mesh going away) removes them.
//
// The kernel knows a policy by selector, direction, mark and if_id (xfrm_policy_insert_list), so
// a block with the IPsec policy's exact selector would replace it. Each block is therefore two
// policies that differ from the IPsec one only in their mark: {value 0, mask M} and {value M,
// mask M} for one bit M. Together they match every packet whatever its mark (a packet's bit M is
// 0 or 1), and neither has the IPsec policy's mark (0/0), so all three coexist (Linux ≥ 5.8 compares
// mark value and mask exactly).
import { parseTs, toPortTs } from '../ike/sa/ts.js';
import type { PeerConfig } from '../ike/engine.js';
import { XfrmNotFoundError, type PolicyDir, type PolicySpec, type PolicyState } from '../xfrm/index.js';
import { tsCidr, type XfrmPort } from './kernel.js';

/** Lower wins: the IPsec policies (priority 2000, src/ike/exchanges/child-sa.ts) beat these. */
export const STRICT_PRIORITY = 0x4b4b;
/** The one mark bit the pair of block policies splits on (any single bit would do). */
export const STRICT_MARK_BIT = 0x00400000;

const MARKS = [{ value: 0, mask: STRICT_MARK_BIT }, { value: STRICT_MARK_BIT, mask: STRICT_MARK_BIT }] as const;

/** The block policies for a peer: one pair per policy its Child SAs would install. */
export function blockPolicies(config: PeerConfig): PolicySpec[] {
  const out: PolicySpec[] = [];
  for (const c of config.children) {
    const locals = c.localTs.map((t) => toPortTs(parseTs(t, `${config.name}/${c.name} localTs`)));
    const remotes = c.remoteTs.map((t) => toPortTs(parseTs(t, `${config.name}/${c.name} remoteTs`)));
    for (const l of locals) for (const r of remotes) {
      if (l.family !== r.family) continue;
      const proto = l.protocol || r.protocol;
      const port = (p: { startPort: number; endPort: number }): number | undefined => (p.startPort === p.endPort && p.startPort !== 0 ? p.startPort : undefined);
      const sel = (src: typeof l, dst: typeof l) => {
        const sport = port(src); const dport = port(dst);
        return { src: tsCidr(src), dst: tsCidr(dst), ...(proto ? { proto } : {}), ...(sport !== undefined ? { sport } : {}), ...(dport !== undefined ? { dport } : {}) };
      };
      const dirs: [PolicyDir, ReturnType<typeof sel>][] = [['out', sel(l, r)], ['in', sel(r, l)]];
      if (c.mode === 'tunnel') dirs.push(['fwd', sel(r, l)]);
      for (const [dir, selector] of dirs) for (const mark of MARKS) out.push({ selector, dir, action: 'block', priority: STRICT_PRIORITY, mark });
    }
  }
  return dedupe(out);
}

/** Identity of a block policy in the kernel (selector, direction, mark). */
export function blockKey(p: Pick<PolicySpec, 'selector' | 'dir' | 'mark'>): string {
  const s = p.selector;
  return `${p.dir}|${s.src}|${s.dst}|${s.proto ?? 0}|${s.sport ?? 0}|${s.dport ?? 0}|${p.mark?.value ?? 0}/${p.mark?.mask ?? 0}`;
}

function dedupe(ps: readonly PolicySpec[]): PolicySpec[] {
  const seen = new Map<string, PolicySpec>();
  for (const p of ps) seen.set(blockKey(p), p);
  return [...seen.values()];
}

/** A block policy this agent installed (found in a kernel dump after a restart). */
export function isStrictBlock(p: PolicyState): boolean {
  return p.action === 'block' && p.priority === STRICT_PRIORITY && p.mark !== undefined && p.mark.mask === STRICT_MARK_BIT;
}

const gone = (e: unknown): void => { if (!(e instanceof XfrmNotFoundError)) throw e; };

/** Installs and removes block policies; knows which key belongs to which peer. */
export class StrictPolicies {
  readonly #xfrm: Pick<XfrmPort, 'updatePolicy' | 'deletePolicy' | 'listPolicies'>;
  /** key → peers that want it (two peers can share a selector, e.g. overlapping pod CIDRs). */
  readonly #owners = new Map<string, Set<string>>();
  readonly #specs = new Map<string, PolicySpec>();

  constructor(xfrm: Pick<XfrmPort, 'updatePolicy' | 'deletePolicy' | 'listPolicies'>) { this.#xfrm = xfrm; }

  get count(): number { return this.#specs.size; }

  /** Make `peer`'s blocks exactly `want`: new ones in first, then the ones it no longer wants out. */
  async set(peer: string, want: readonly PolicySpec[]): Promise<void> {
    const keys = new Set(want.map(blockKey));
    for (const p of want) {
      const k = blockKey(p);
      let owners = this.#owners.get(k);
      if (!owners) { owners = new Set(); this.#owners.set(k, owners); }
      if (!this.#specs.has(k)) { await this.#xfrm.updatePolicy(p); this.#specs.set(k, p); }
      owners.add(peer);
    }
    for (const [k, owners] of [...this.#owners]) {
      if (keys.has(k) || !owners.has(peer)) continue;
      owners.delete(peer);
      if (owners.size === 0) await this.#drop(k);
    }
  }

  async remove(peer: string): Promise<void> { await this.set(peer, []); }

  /**
   * At start, with every peer's wanted blocks: those a previous run left in the kernel are taken
   * over (not re-added, so there is no gap), missing ones added, and ours that no peer wants any
   * more removed.
   */
  async reconcile(wanted: ReadonlyMap<string, readonly PolicySpec[]>): Promise<{ readonly added: number; readonly removed: number }> {
    const kernel = (await this.#xfrm.listPolicies()).filter(isStrictBlock);
    const want = new Set<string>();
    for (const ps of wanted.values()) for (const p of ps) want.add(blockKey(p));
    let removed = 0;
    for (const p of kernel) {
      const k = blockKey(p);
      if (want.has(k)) { this.#specs.set(k, p); continue; }
      await this.#xfrm.deletePolicy({ selector: p.selector, dir: p.dir, ...(p.mark ? { mark: p.mark } : {}) }).catch(gone);
      removed++;
    }
    const before = this.#specs.size;
    for (const [peer, ps] of wanted) await this.set(peer, ps);
    return { added: this.#specs.size - before, removed };
  }

  /** Every block policy of ours, gone (the mesh was removed). */
  async removeAll(): Promise<number> {
    const kernel = (await this.#xfrm.listPolicies()).filter(isStrictBlock);
    for (const p of kernel) await this.#xfrm.deletePolicy({ selector: p.selector, dir: p.dir, ...(p.mark ? { mark: p.mark } : {}) }).catch(gone);
    this.#owners.clear(); this.#specs.clear();
    return kernel.length;
  }

  async #drop(k: string): Promise<void> {
    const p = this.#specs.get(k);
    this.#owners.delete(k); this.#specs.delete(k);
    if (p) await this.#xfrm.deletePolicy({ selector: p.selector, dir: p.dir, ...(p.mark ? { mark: p.mark } : {}) }).catch(gone);
  }
}
