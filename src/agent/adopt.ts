// Restart without a dropped packet (DESIGN.md §5, §9): on start the agent reads the kernel's SAs
// and policies, recognises its own by reqid (reqids.ts); those a resumed IKE SA took over
// (checkpoints.ts) stay with it, and the others that still carry traffic go to the engine as
// adopted Child SAs (engine.adopt), kept until a new IKE SA has negotiated their successors.
// What is ours but no longer configured, and larval SAs a crash left behind
// (allocated SPIs never completed), is removed; nothing else is touched.
import type { AdoptedChildSa } from '../ike/engine.js';
import type { PolicyState, SaState } from '../xfrm/index.js';
import { XfrmNotFoundError } from '../xfrm/index.js';
import type { XfrmPort } from './kernel.js';
import { isOurReqid } from './tunnel.js';

/** One configured Child SA as the kernel knows it: its reqid and the local address of its SAs. */
export interface KernelUnit {
  readonly peer: string;
  readonly child: string;
  readonly reqid: number;
  readonly local: string;
}

export interface KernelScan {
  /** Per peer name, the Child SAs to adopt. */
  readonly adopt: ReadonlyMap<string, readonly AdoptedChildSa[]>;
  /** Our SAs and policies whose tunnel is gone from the config, plus larval SAs: to remove. */
  readonly orphanSas: readonly SaState[];
  readonly orphanPolicies: readonly PolicyState[];
}

/** strongSwan's name for an installed SA's algorithms ("aes256gcm16", "aes128-sha256"). */
export function suiteOfSa(sa: SaState): string {
  if (sa.aead) {
    const keyBits = (sa.aead.key.length - 4) * 8;
    if (sa.aead.name.startsWith('rfc7539esp')) return 'chacha20poly1305';
    return `aes${keyBits}gcm${sa.aead.icvBits / 8}`;
  }
  if (sa.crypt) {
    const enc = sa.crypt.name === 'cbc(aes)' ? `aes${sa.crypt.key.length * 8}` : sa.crypt.name;
    const integ = sa.auth ? `-${/hmac\((\w+)\)/.exec(sa.auth.name)?.[1] ?? sa.auth.name}` : '';
    return `${enc}${integ}`;
  }
  return 'unknown';
}

function isLarval(sa: SaState): boolean { return !sa.aead && !sa.crypt; }

function addedAtMs(sa: SaState): number { return Number(sa.current.add_time) * 1000; }

/** Identifies one XFRM state: SPIs are unique per destination. */
export function stateKey(dst: string, spi: number): string { return `${dst}|${spi >>> 0}`; }

/**
 * `claimed`: states (stateKey) a resumed IKE SA took over, and SPIs it reserved for a request in
 * flight: neither adopted nor cleaned up.
 */
export function scanKernel(sas: readonly SaState[], policies: readonly PolicyState[], units: readonly KernelUnit[], claimed: ReadonlySet<string> = new Set()): KernelScan {
  const byReqid = new Map(units.map((t) => [t.reqid, t] as const));
  const adopt = new Map<string, AdoptedChildSa[]>();
  const orphanSas: SaState[] = [];
  const orphanPolicies: PolicyState[] = [];
  const ours = sas.filter((s) => s.reqid !== undefined && isOurReqid(s.reqid) && (s.proto ?? 'esp') === 'esp' && !claimed.has(stateKey(s.dst, s.spi)));
  for (const s of ours) if (isLarval(s) || !byReqid.has(s.reqid!)) orphanSas.push(s);
  for (const p of policies) {
    const r = p.templates?.find((x) => x.reqid !== undefined && isOurReqid(x.reqid))?.reqid;
    if (r !== undefined && !byReqid.has(r)) orphanPolicies.push(p);
  }
  for (const t of units) {
    const mine = ours.filter((s) => s.reqid === t.reqid && !isLarval(s));
    const inbound = mine.filter((s) => s.dst === t.local).sort((a, b) => addedAtMs(a) - addedAtMs(b));
    const outbound = mine.filter((s) => s.src === t.local).sort((a, b) => addedAtMs(a) - addedAtMs(b));
    if (inbound.length === 0 || outbound.length === 0) {
      // Half a Child SA carries nothing both ways; the new IKE SA installs a whole one.
      orphanSas.push(...inbound, ...outbound);
      continue;
    }
    const pols = policies.filter((p) => p.dir === 'out' && p.templates?.some((x) => x.reqid === t.reqid));
    const localTs = [...new Set(pols.map((p) => p.selector.src))];
    const remoteTs = [...new Set(pols.map((p) => p.selector.dst))];
    // Pair the i-th newest inbound with the i-th newest outbound (a rekey in flight leaves two).
    const list = adopt.get(t.peer) ?? [];
    const n = Math.min(inbound.length, outbound.length);
    for (let i = 0; i < n; i++) {
      const inn = inbound[inbound.length - 1 - i]!;
      const out = outbound[outbound.length - 1 - i]!;
      list.push({
        ref: { peer: t.peer, child: t.child, reqid: t.reqid, inboundSpi: inn.spi, outboundSpi: out.spi, local: t.local, remote: inn.src },
        mode: inn.mode === 'transport' ? 'transport' : 'tunnel',
        encap: out.encap ? { sourcePort: out.encap.sport, destinationPort: out.encap.dport } : null,
        algorithms: { kind: inn.aead ? 'aead' : 'cipher+auth', suite: suiteOfSa(inn) },
        localTs, remoteTs, installedAtMs: addedAtMs(inn),
      });
    }
    adopt.set(t.peer, list);
  }
  return { adopt, orphanSas, orphanPolicies };
}

/** Read the kernel (or use `o.view`, read once at start) and remove orphans (policies first, so nothing leaks in clear). */
export async function scanAndClean(xfrm: XfrmPort, units: readonly KernelUnit[], o: {
  readonly view?: { readonly sas: readonly SaState[]; readonly policies: readonly PolicyState[] }; readonly claimed?: ReadonlySet<string>;
} = {}): Promise<KernelScan & { readonly removed: number }> {
  const scan = scanKernel(o.view?.sas ?? await xfrm.listSas(), o.view?.policies ?? await xfrm.listPolicies(), units, o.claimed);
  let removed = 0;
  const gone = (e: unknown): void => { if (!(e instanceof XfrmNotFoundError)) throw e; };
  for (const p of scan.orphanPolicies) {
    await xfrm.deletePolicy({ selector: p.selector, dir: p.dir, ...(p.mark ? { mark: p.mark } : {}), ...(p.ifId !== undefined ? { ifId: p.ifId } : {}) }).catch(gone);
    removed++;
  }
  for (const s of scan.orphanSas) {
    await xfrm.deleteSa({ dst: s.dst, spi: s.spi, src: s.src, proto: 'esp', ...(s.mark ? { mark: s.mark } : {}) }).catch(gone);
    removed++;
  }
  return { ...scan, removed };
}

/** Every SA and policy of these reqids, gone (policies first, so nothing leaks in clear meanwhile). */
export async function removeReqids(xfrm: XfrmPort, reqids: ReadonlySet<number>): Promise<number> {
  const gone = (e: unknown): void => { if (!(e instanceof XfrmNotFoundError)) throw e; };
  let removed = 0;
  for (const p of await xfrm.listPolicies()) {
    if (!p.templates?.some((t) => t.reqid !== undefined && reqids.has(t.reqid))) continue;
    await xfrm.deletePolicy({ selector: p.selector, dir: p.dir, ...(p.mark ? { mark: p.mark } : {}), ...(p.ifId !== undefined ? { ifId: p.ifId } : {}) }).catch(gone);
    removed++;
  }
  for (const s of await xfrm.listSas()) {
    if (s.reqid === undefined || !reqids.has(s.reqid) || (s.proto ?? 'esp') !== 'esp') continue;
    await xfrm.deleteSa({ dst: s.dst, spi: s.spi, src: s.src, proto: 'esp', ...(s.mark ? { mark: s.mark } : {}) }).catch(gone);
    removed++;
  }
  return removed;
}
