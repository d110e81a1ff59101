// Multi-step install of a Child SA (SAs, then policies) with rollback: if any step fails, every
// step this call completed is undone in reverse order, so the kernel holds either the whole
// child or nothing of it (DESIGN.md §9: never half-installed kernel state).
import { errorMessage } from '../common/errors.js';
import { XfrmInstallError, XfrmNotFoundError } from './errors.js';
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
}

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
    for (const sa of c.sas) {
      const id = saIdOf(sa);
      step = `SA ${saText(sa)}`;
      if (sa.allocated) await updateAllocated(ops, sa); else await ops.addSa(sa);
      undo.push({ what: step, run: () => ops.deleteSa(id) });
    }
    for (const p of c.policies) {
      const id = policyIdOf(p);
      step = `policy ${policyText(p)}`;
      if (c.replacePolicies) {
        const before = await ops.getPolicy(id).catch((e: unknown) => { if (e instanceof XfrmNotFoundError) return null; throw e; });
        await ops.updatePolicy(p);
        undo.push({ what: step, run: () => (before ? ops.updatePolicy(before) : ops.deletePolicy(id)) });
      } else {
        await ops.addPolicy(p);
        undo.push({ what: step, run: () => ops.deletePolicy(id) });
      }
    }
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

/** Policies first (so nothing falls back to clear text while SAs vanish), then SAs; missing ones are fine. */
export async function removeChild(ops: XfrmOps, c: InstalledChild): Promise<void> {
  const errors: string[] = [];
  const tolerate = (what: string) => (e: unknown): void => { if (!(e instanceof XfrmNotFoundError)) errors.push(`${what}: ${errorMessage(e)}`); };
  for (const p of c.policies) await ops.deletePolicy(p).catch(tolerate(`policy ${policyText(p)}`));
  for (const s of c.sas) await ops.deleteSa(s).catch(tolerate(`SA ${saText(s)}`));
  if (errors.length) throw new XfrmInstallError('remove', new Error(errors.join('; ')), [], errors);
}
