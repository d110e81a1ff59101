// Multi-step install of a Child SA (SAs, then policies) with rollback: if any step fails, every
// step this call completed is undone in reverse order, so the kernel holds either the whole
// child or nothing of it (DESIGN.md §9: never half-installed kernel state).
// Where the ops can pipeline (XfrmClient.batch), the SAs go in one datagram and the policies in
// another, instead of one netlink round trip per object: an IKE responder installs a Child SA
// per handshake, and each round trip is a wake-up of the event loop.
import { errorMessage } from '../common/errors.js';
import { XfrmExistsError, XfrmInstallError, XfrmNotFoundError } from './errors.js';
import { policyText, type PolicyId, type PolicySpec, type PolicyState } from './policy.js';
import { saIdOf, saText, type SaId, type SaSpec } from './sa.js';

/** The part of XfrmClient an install needs (a fake in unit tests). */
export interface XfrmOps {
  addSa(sa: SaSpec): Promise<void>;
  updateSa(sa: SaSpec): Promise<void>;
  deleteSa(id: SaId): Promise<void>;
  addPolicy(p: PolicySpec): Promise<void>;
  updatePolicy(p: PolicySpec): Promise<void>;
  deletePolicy(id: PolicyId): Promise<void>;
  getPolicy(id: PolicyId): Promise<PolicyState>;
  /** Optional: requests pipelined in order in few datagrams, one typed result (null = done) each. */
  batch?(ops: readonly XfrmBatchOp[]): Promise<(Error | null)[]>;
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

/**
 * UPDSA on the larval SA allocSpi left. The kernel drops a larval SA after
 * net.core.xfrm_acq_expires (30 s by default), so a negotiation that took longer (a slow peer, a
 * first install that loads crypto modules) finds nothing there (ESRCH): then add the SA with NEWSA,
 * as strongSwan's kernel-netlink does ("allocated SPI not found anymore, try to add SAD entry").
 */
async function updateAllocated(ops: XfrmOps, sa: ChildSa): Promise<void> {
  try { await ops.updateSa(sa); } catch (e) {
    if (!(e instanceof XfrmNotFoundError)) throw e;
    await ops.addSa(sa);
  }
}

interface Undo { readonly what: string; run(): Promise<void> }

export async function installChild(ops: XfrmOps, c: ChildInstall): Promise<InstalledChild> {
  const undo: Undo[] = [];
  let step = '';
  try {
    if (ops.batch) await installBatched(ops, ops.batch.bind(ops), c, undo, (s) => { step = s; });
    else await installOneByOne(ops, c, undo, (s) => { step = s; });
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

async function installOneByOne(ops: XfrmOps, c: ChildInstall, undo: Undo[], at: (step: string) => void): Promise<void> {
  for (const sa of c.sas) {
    const id = saIdOf(sa);
    at(`SA ${saText(sa)}`);
    if (sa.allocated) await updateAllocated(ops, sa); else await ops.addSa(sa);
    undo.push({ what: `SA ${saText(sa)}`, run: () => ops.deleteSa(id) });
  }
  for (const p of c.policies) {
    const id = policyIdOf(p);
    at(`policy ${policyText(p)}`);
    if (c.replacePolicies) await replacePolicy(ops, p, undo);
    else {
      await ops.addPolicy(p);
      undo.push({ what: `policy ${policyText(p)}`, run: () => ops.deletePolicy(id) });
    }
  }
}

/** UPDPOLICY over an existing policy; rollback puts the previous one back. */
async function replacePolicy(ops: XfrmOps, p: PolicySpec, undo: Undo[]): Promise<void> {
  const id = policyIdOf(p);
  const before = await ops.getPolicy(id).catch((e: unknown) => { if (e instanceof XfrmNotFoundError) return null; throw e; });
  await ops.updatePolicy(p);
  undo.push({ what: `policy ${policyText(p)}`, run: () => (before ? ops.updatePolicy(before) : ops.deletePolicy(id)) });
}

/**
 * Same steps and rollback as one by one, in two datagrams: the SAs, then the policies as NEWPOLICY.
 * Every request of a datagram is applied, so each success is recorded for rollback before the
 * first failure is raised. With replacePolicies, a policy that already exists (a rekey, an
 * adopted predecessor, an on-demand trap: EEXIST) is then replaced the one-by-one way.
 */
async function installBatched(ops: XfrmOps, batch: NonNullable<XfrmOps['batch']>, c: ChildInstall, undo: Undo[], at: (step: string) => void): Promise<void> {
  const saRes = await batch(c.sas.map((sa) => ({ op: sa.allocated ? 'update-sa' : 'add-sa', sa })));
  // A larval SA that expired (ESRCH on UPDSA): add that SA the one-by-one way (updateAllocated).
  for (const [i, sa] of c.sas.entries()) {
    if (!(sa.allocated && saRes[i] instanceof XfrmNotFoundError)) continue;
    saRes[i] = await ops.addSa(sa).then(() => null, (e: unknown) => (e instanceof Error ? e : new Error(String(e))));
  }
  c.sas.forEach((sa, i) => { if (saRes[i] === null) undo.push({ what: `SA ${saText(sa)}`, run: () => ops.deleteSa(saIdOf(sa)) }); });
  const saFail = saRes.findIndex((e) => e !== null);
  if (saFail >= 0) { at(`SA ${saText(c.sas[saFail]!)}`); throw saRes[saFail]; }
  const polRes = await batch(c.policies.map((policy) => ({ op: 'add-policy', policy })));
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
export async function removeChild(ops: Pick<XfrmOps, 'deletePolicy' | 'deleteSa' | 'batch'>, c: InstalledChild): Promise<void> {
  const errors: string[] = [];
  const tolerate = (what: string) => (e: unknown): void => { if (!(e instanceof XfrmNotFoundError)) errors.push(`${what}: ${errorMessage(e)}`); };
  if (ops.batch) {
    // One datagram, applied in order: policies before SAs still holds.
    const res = await ops.batch([...c.policies.map((id) => ({ op: 'delete-policy', id }) as const), ...c.sas.map((id) => ({ op: 'delete-sa', id }) as const)]);
    res.forEach((e, i) => { if (e) tolerate(i < c.policies.length ? `policy ${policyText(c.policies[i]!)}` : `SA ${saText(c.sas[i - c.policies.length]!)}`)(e); });
    if (errors.length) throw new XfrmInstallError('remove', new Error(errors.join('; ')), [], errors);
    return;
  }
  for (const p of c.policies) await ops.deletePolicy(p).catch(tolerate(`policy ${policyText(p)}`));
  for (const s of c.sas) await ops.deleteSa(s).catch(tolerate(`SA ${saText(s)}`));
  if (errors.length) throw new XfrmInstallError('remove', new Error(errors.join('; ')), [], errors);
}
