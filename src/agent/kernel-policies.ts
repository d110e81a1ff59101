// The kernel port's XFRM policy records (kernel.ts): the engine's KernelPolicy as a PolicySpec, and
// which reqid holds each policy in the kernel now.
//
// Why the owner map: the kernel keeps one policy per selector, direction, mark and if_id, the later
// UPDPOLICY's. Two peers' Child SAs can share a selector (the mesh pairs with the old and the new
// gateway of a tunnel, both with its remote subnets, until the old pair is negotiated again), so a
// Child SA that goes must not delete what another reqid's install took over since.
//
// What every Child SA holds for as long as it is up, it shares where the values are equal: a CIDR's
// text (a hub's local subnet is in every tunnel's selectors) and a selector (tunnels to the old and
// the new gateway of the same subnets); the owner map's keys are flat strings (a template literal's
// result is a tree of concatenations, ~130 bytes more per policy kept as a Map key).
import type { KernelChildSa, KernelPolicy, TrafficSelector as IkeTs } from '../ike/ports.js';
import type { PolicyId, PolicySpec, PolicyState } from '../xfrm/index.js';
import { boundedMemo, flatString } from '../common/bounded-memo.js';

/** Bounded tables of read-only values (common/bounded-memo.ts). */
const MAX_SHARED = 1_024;
const CIDRS = new Map<string, string>();
const SELECTORS = new Map<string, PolicySpec['selector']>();

/** The engine's selector as an XFRM CIDR; ranges that are not one CIDR are not expressible in one policy. */
export function tsCidr(ts: IkeTs): string {
  const max = ts.family === 'ipv4' ? 32 : 128;
  if (ts.prefixLength === null) throw new TypeError(`traffic selector ${ts.startAddress}-${ts.endAddress} is not a CIDR block`);
  const s = `${ts.startAddress}/${ts.prefixLength ?? max}`;
  const known = CIDRS.get(s);
  if (known !== undefined) return known;
  const f = flatString(s); // the key is kept too: not a concatenation's tree
  return boundedMemo(CIDRS, f, () => f, MAX_SHARED);
}

export function toPolicySpec(p: KernelPolicy, c: Pick<KernelChildSa, 'mode' | 'ifId' | 'mark'>, reqid: number, parts: SharedParts = new SharedParts()): PolicySpec {
  const proto = p.source.protocol || p.destination.protocol;
  const port = (t: IkeTs): number | undefined => (t.startPort === t.endPort && t.startPort !== 0 ? t.startPort : undefined);
  const sport = port(p.source); const dport = port(p.destination);
  return {
    selector: parts.selector({ src: tsCidr(p.source), dst: tsCidr(p.destination), ...(proto ? { proto } : {}), ...(sport !== undefined ? { sport } : {}), ...(dport !== undefined ? { dport } : {}) }),
    dir: p.direction, priority: p.priority,
    templates: parts.templates([{ src: p.tunnelSource, dst: p.tunnelDestination, proto: 'esp', reqid, mode: c.mode }]),
    ...(c.mark ? { mark: c.mark } : {}), ...(c.ifId !== null ? { ifId: c.ifId } : {}),
  };
}

/**
 * One Child SA's policies in, out and fwd name two selectors and two templates between them (in and
 * fwd the same): equal ones are one object, held by each (never changed), not a copy per policy.
 * Selectors are shared between Child SAs too (SELECTORS); templates name the tunnel's reqid and
 * addresses, so only a tunnel's own Child SAs could share them, and they overlap only in a rekey.
 */
class SharedParts {
  readonly #templates = new Map<string, NonNullable<PolicySpec['templates']>>();
  selector(s: PolicySpec['selector']): PolicySpec['selector'] { return boundedMemo(SELECTORS, JSON.stringify([s.src, s.dst, s.proto, s.sport, s.dport]), () => s, MAX_SHARED); }
  templates(t: NonNullable<PolicySpec['templates']>): NonNullable<PolicySpec['templates']> { return once(this.#templates, JSON.stringify(t), t); }
}
function once<T>(m: Map<string, T>, k: string, x: T): T { const known = m.get(k); if (known !== undefined) return known; m.set(k, x); return x; }

/** A Child SA's (or trap's) policies, sharing their equal selectors and templates. */
export function toPolicySpecs(ps: readonly KernelPolicy[], c: Pick<KernelChildSa, 'mode' | 'ifId' | 'mark'>, reqid: number): PolicySpec[] {
  const parts = new SharedParts();
  return ps.map((p) => toPolicySpec(p, c, reqid, parts));
}

export function policyId(p: PolicySpec): PolicyId {
  return { selector: p.selector, dir: p.dir, ...(p.mark ? { mark: p.mark } : {}), ...(p.ifId !== undefined ? { ifId: p.ifId } : {}) };
}

/** What the kernel tells policies apart by (PolicyId), as one flat string (JSON's is one; a template literal's a tree). */
export function policyKey(p: PolicyId): string {
  const s = p.selector;
  return JSON.stringify([p.dir, s.src, s.dst, s.proto ?? 0, s.sport ?? 0, s.dport ?? 0, p.mark?.value ?? 0, p.mark?.mask ?? 0, p.ifId ?? 0]);
}

/** The spec part of a dumped policy (what a later delete or UPDPOLICY needs), without counters. */
export function policySpecOf(p: PolicyState): PolicySpec {
  const { current: _c, index: _i, ...spec } = p;
  return spec;
}

/** Policy (policyKey) → the reqid whose install put it in the kernel last. */
export class PolicyOwners {
  readonly #owner = new Map<string, number>();

  /** These policies were just installed (or found in the kernel) with this reqid. */
  own(policies: readonly PolicySpec[], reqid: number): void {
    for (const p of policies) this.#owner.set(policyKey(p), reqid);
  }

  /** Of `policies`, those this reqid still holds in the kernel (no other install replaced them since), forgotten as they go. */
  disown(policies: readonly PolicySpec[], reqid: number): PolicyId[] {
    const out: PolicyId[] = [];
    for (const p of policies) {
      const k = policyKey(p);
      const owner = this.#owner.get(k);
      if (owner !== undefined && owner !== reqid) continue;
      this.#owner.delete(k);
      out.push(policyId(p));
    }
    return out;
  }

  /** These policies go whoever holds them (the kernel said they are the going reqid's). */
  forget(ids: readonly PolicyId[]): void {
    for (const id of ids) this.#owner.delete(policyKey(id));
  }
}
