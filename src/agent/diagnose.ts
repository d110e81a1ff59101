// `kipsec diagnose`: can this machine run the agent? Each check says what it found and, when it
// fails, what to do. The ESP probe adds one SA (documentation addresses, random SPI) and deletes
// it at once — the only way to learn whether the kernel accepts ESP states (DESIGN.md §5:
// the hosts this project is developed on have XFRM policies but no ESP).
import { existsSync, readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { errorMessage } from '../common/errors.js';
import { SecretBytes } from '../common/secret.js';
import { loadEspNative } from '../esp/index.js';
import { XfrmClient } from '../xfrm/index.js';
import { loadTuning } from './native.js';

export interface Check { readonly name: string; readonly ok: boolean; readonly detail: string }

/** Effective capabilities from /proc/self/status (CAP_NET_ADMIN is bit 12). */
export function hasCapNetAdmin(statusText: string): boolean {
  const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(statusText);
  return m !== null && (BigInt(`0x${m[1]}`) & (1n << 12n)) !== 0n;
}

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => { t = setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms); });
  try { return await Promise.race([p, limit]); } finally { clearTimeout(t); }
}

/**
 * Whether the kernel accepts an ESP state: one AES-GCM SA added (documentation addresses, random
 * SPI) and deleted at once. `--datapath auto` and diagnose ask the same question.
 */
export async function probeKernelEsp(client: Pick<XfrmClient, 'addSa' | 'deleteSa'>): Promise<{ ok: true } | { ok: false; reason: string }> {
  const spi = (randomBytes(4).readUInt32BE(0) | 0x1000) >>> 0;
  const probe = { src: '192.0.2.254', dst: '192.0.2.253', spi, proto: 'esp', mode: 'tunnel', reqid: 0 } as const;
  try {
    await withTimeout(client.addSa({ ...probe, aead: { name: 'rfc4106(gcm(aes))', key: new SecretBytes(randomBytes(20)), icvBits: 128 } }), 5_000, 'ESP probe');
  } catch (e) {
    return { ok: false, reason: errorMessage(e) };
  }
  await client.deleteSa({ dst: probe.dst, spi, src: probe.src, proto: 'esp' }).catch(() => { /* a leftover probe SA carries no traffic */ });
  return { ok: true };
}

export async function diagnose(): Promise<Check[]> {
  const checks: Check[] = [];
  let cap = false;
  try { cap = hasCapNetAdmin(readFileSync('/proc/self/status', 'utf8')); } catch { /* not Linux */ }
  checks.push({ name: 'CAP_NET_ADMIN', ok: cap, detail: cap ? 'effective' : 'missing: run as root or grant CAP_NET_ADMIN (the DaemonSet sets it)' });

  let client: XfrmClient | undefined;
  try {
    client = XfrmClient.open({ timeoutMs: 3_000 });
    const pols = await withTimeout(client.listPolicies(), 5_000, 'XFRM policy dump');
    const sas = await withTimeout(client.listSas(), 5_000, 'XFRM SA dump');
    checks.push({ name: 'XFRM netlink', ok: true, detail: `reachable (${sas.length} SAs, ${pols.length} policies in this network namespace)` });
  } catch (e) {
    checks.push({ name: 'XFRM netlink', ok: false, detail: `unreachable: ${errorMessage(e)}` });
  }

  let kernelEsp = false;
  if (client) {
    const esp = await probeKernelEsp(client);
    kernelEsp = esp.ok;
    checks.push(esp.ok
      ? { name: 'kernel ESP', ok: true, detail: 'the kernel accepts an ESP state (rfc4106(gcm(aes))): datapath kernel works' }
      : { name: 'kernel ESP', ok: false, detail: `the kernel refuses ESP states (${esp.reason}); this kernel lacks esp4/GCM — use the kernel VM lane (e2e/kernel-vm.sh) or the userspace datapath` });
    client.close();
  }

  // The other data path, and what `--datapath auto` (standalone and cluster mode alike) runs here.
  let engine: string | undefined;
  try { loadEspNative(); } catch (e) { engine = errorMessage(e); }
  const tun = existsSync('/dev/net/tun');
  const userspace = engine === undefined && tun;
  // Only a failure when the kernel cannot do ESP either: otherwise it is the fallback not taken.
  const why = engine ?? '/dev/net/tun is missing: the userspace data path needs a TUN device';
  checks.push({ name: 'userspace ESP', ok: userspace || kernelEsp, detail: userspace ? 'ESP engine addon loaded, /dev/net/tun present: datapath userspace works' : `${why}${kernelEsp ? ' (not needed: the kernel does ESP)' : ''}` });
  checks.push({
    name: 'datapath auto', ok: kernelEsp || userspace,
    detail: kernelEsp ? '--datapath auto chooses kernel here' : userspace ? '--datapath auto chooses userspace here (the kernel refuses ESP states); IPsecNode status.datapath says so' : 'neither data path works here',
  });

  const tuning = loadTuning();
  checks.push({ name: 'native addon', ok: tuning.available, detail: tuning.available ? 'loaded: UDP_ENCAP on 4500 and per-socket IPsec bypass available' : tuning.description });
  return checks;
}
