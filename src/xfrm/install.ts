// Multi-step install of a Child SA (SAs, then policies) with rollback: if any step fails, every
// step this call completed is undone in reverse order, so the kernel holds either the whole
// child or nothing of it (DESIGN.md §9: never half-installed kernel state).
// The ops pipeline (XfrmClient.batch): the SAs go in one datagram and the policies in another,
// instead of one netlink round trip per object: an IKE responder installs a Child SA per
// handshake, and each round trip is a wake-up of the event loop.
import { errorMessage } from '../common/errors.js';
import { XfrmExistsError, XfrmInstallError, XfrmNotFoundError } from './errors.js';
import { policyText, type PolicyId, type PolicySpec, type PolicyState } from './policy.js';
import { saIdOf, saText, type SaId, type SaSpec } from './sa.js';

/** The part of XfrmClient an install needs. */
export interface XfrmOps {
  addSa(sa: SaSpec): Promise<void>;
  deleteSa(id: SaId): Promise<void>;
  updatePolicy(p: PolicySpec): Promise<void>;
  deletePolicy(id: PolicyId): Promise<void>;
  getPolicy(id: PolicyId): Promise<PolicyState>;
  /** Requests pipelined in order in few datagrams, one typed result (null = done) each. */
  batch(ops: readonly XfrmBatchOp[]): Promise<(Error | null)[]>;
}

/** One request of a pipelined batch. */
export type XfrmBatchOp =
  | { readonly op: 'add-sa' | 'update-sa'; readonly sa: SaSpec }
  | { readonly op: 'delete-sa'; readonly id: SaId }
  | { readonly op: 'add-policy'; readonly policy: PolicySpec }
  | { readonly op: 'delete-policy'; readonly id: PolicyId };

export interface ChildSa extends SaSpec {
  /** The SPI came from allocSpi: the kernel holds a larval SA, so install with UPDSA. */
  readonly allocated?: boolean;
}

export interface ChildInstall {
  /** Typically the inbound SA first, then the outbound one. */
  readonly sas: readonly ChildSa[];
  /** Typically out, in, fwd. */
  readonly policies: readonly PolicySpec[];
  /**
   * Replace policies that already exist (e.g. a trap policy for the same selector) with UPDPOLICY;
   * rollback puts the previous policy back. Without it an existing policy fails with EEXIST.
   */
  readonly replacePolicies?: boolean;
}

export interface InstalledChild {
  readonly sas: readonly SaId[];
  readonly policies: readonly PolicyId[];
}

function policyIdOf(p: PolicySpec): PolicyId {
  return { selector: p.selector, dir: p.dir, ...(p.mark ? { mark: p.mark } : {}), ...(p.ifId !== undefined ? { ifId: p.ifId } : {}) };
}

interface Undo { readonly what: string; run(): Promise<void> }

export async function installChild(ops: XfrmOps, c: ChildInstall): Promise<InstalledChild> {
  const undo: Undo[] = [];
  let step = '';
  try {
    await installBatched(ops, c, undo, (s) => { step = s; });
  } catch (e) {
    const rolledBack: string[] = [];
    const leftover: string[] = [];
    for (const u of undo.reverse()) {
      try { await u.run(); rolledBack.push(u.what); } catch (ue) {
        if (ue instanceof XfrmNotFoundError) rolledBack.push(u.what); // already gone is fine
        else leftover.push(`${u.what} (${errorMessage(ue)})`);
      }
    }
    throw new XfrmInstallError(step, e, rolledBack, leftover);
  }
  return { sas: c.sas.map(saIdOf), policies: c.policies.map(policyIdOf) };
}

/** UPDPOLICY over an existing policy; rollback puts the previous one back. */
async function replacePolicy(ops: XfrmOps, p: PolicySpec, undo: Undo[]): Promise<void> {
  const id = policyIdOf(p);
  const before = await ops.getPolicy(id).catch((e: unknown) => { if (e instanceof XfrmNotFoundError) return null; throw e; });
  await ops.updatePolicy(p);
  undo.push({ what: `policy ${policyText(p)}`, run: () => (before ? ops.updatePolicy(before) : ops.deletePolicy(id)) });
}

/**
 * Two datagrams: the SAs, then the policies as NEWPOLICY. Every request of a datagram is applied,
 * so each success is recorded for rollback before the first failure is raised. With
 * replacePolicies, a policy that already exists (a rekey, an adopted predecessor, an on-demand
 * trap: EEXIST) is then replaced on its own (replacePolicy).
 */
async function installBatched(ops: XfrmOps, c: ChildInstall, undo: Undo[], at: (step: string) => void): Promise<void> {
  const saRes = await ops.batch(c.sas.map((sa) => ({ op: sa.allocated ? 'update-sa' : 'add-sa', sa })));
  // UPDSA on the larval SA allocSpi left finds nothing (ESRCH) once the kernel dropped it, after
  // net.core.xfrm_acq_expires (30 s by default: a slow peer, a first install loading crypto
  // modules): then add the SA with NEWSA, as strongSwan's kernel-netlink does ("allocated SPI not
  // found anymore, try to add SAD entry").
  for (const [i, sa] of c.sas.entries()) {
    if (!(sa.allocated && saRes[i] instanceof XfrmNotFoundError)) continue;
    saRes[i] = await ops.addSa(sa).then(() => null, (e: unknown) => (e instanceof Error ? e : new Error(String(e))));
  }
  c.sas.forEach((sa, i) => { if (saRes[i] === null) undo.push({ what: `SA ${saText(sa)}`, run: () => ops.deleteSa(saIdOf(sa)) }); });
  const saFail = saRes.findIndex((e) => e !== null);
  if (saFail >= 0) { at(`SA ${saText(c.sas[saFail]!)}`); throw saRes[saFail]; }
  const polRes = await ops.batch(c.policies.map((policy) => ({ op: 'add-policy', policy })));
  c.policies.forEach((p, i) => { if (polRes[i] === null) undo.push({ what: `policy ${policyText(p)}`, run: () => ops.deletePolicy(policyIdOf(p)) }); });
  const existing = (e: Error | null | undefined): boolean => c.replacePolicies === true && e instanceof XfrmExistsError;
  const polFail = polRes.findIndex((e) => e !== null && !existing(e));
  if (polFail >= 0) { at(`policy ${policyText(c.policies[polFail]!)}`); throw polRes[polFail]; }
  for (const [i, p] of c.policies.entries()) {
    if (!existing(polRes[i])) continue;
    at(`policy ${policyText(p)}`);
    await replacePolicy(ops, p, undo);
  }
}

/** Policies first (so nothing falls back to clear text while SAs vanish), then SAs; missing ones are fine. */
export async function removeChild(ops: Pick<XfrmOps, 'batch'>, c: InstalledChild): Promise<void> {
  // One datagram, applied in order: policies before SAs.
  const res = await ops.batch([...c.policies.map((id) => ({ op: 'delete-policy', id }) as const), ...c.sas.map((id) => ({ op: 'delete-sa', id }) as const)]);
  const errors = res.flatMap((e, i) => (!e || e instanceof XfrmNotFoundError ? [] : [`${i < c.policies.length ? `policy ${policyText(c.policies[i]!)}` : `SA ${saText(c.sas[i - c.policies.length]!)}`}: ${errorMessage(e)}`]));
  if (errors.length) throw new XfrmInstallError('remove', new Error(errors.join('; ')), [], errors);
}
