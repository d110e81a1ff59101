// The cluster agent's state directory (--state-dir, /var/lib/kipsec on the host): `identity/` holds
// the node key and certificate, which outlive reboots; `sa/` holds the IKE SA checkpoints and the
// reqid table, which describe kernel state and so are only good for the boot that made it. The
// kernel's boot id (/proc/sys/kernel/random/boot_id) is kept next to them: after a reboot the
// kernel has no SAs, and the checkpoints of the old boot are discarded rather than resumed.
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface StateDirs { readonly identity: string; readonly sa: string; readonly discarded: number }

export function prepareStateDir(stateDir: string, bootId: string | undefined = readBootId()): StateDirs {
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const identity = join(stateDir, 'identity');
  const sa = join(stateDir, 'sa');
  mkdirSync(identity, { recursive: true, mode: 0o700 });
  mkdirSync(sa, { recursive: true, mode: 0o700 });
  let discarded = 0;
  const file = join(sa, 'boot-id');
  let was: string | undefined;
  try { was = readFileSync(file, 'utf8').trim(); } catch { /* first start */ }
  if (bootId !== undefined && was !== bootId) {
    if (was !== undefined) {
      for (const f of readdirSync(sa)) if (f !== 'boot-id') { rmSync(join(sa, f), { force: true }); discarded++; }
    }
    writeFileSync(file, `${bootId}\n`, { mode: 0o600 });
  }
  return { identity, sa, discarded };
}

function readBootId(): string | undefined {
  try { return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim(); } catch { return undefined; }
}
