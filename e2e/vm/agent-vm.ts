// Preparing the kernel VM for strongSwan + agent tests. Two measured problems (TCG emulation,
// Debian kernel 6.1, rootfs over 9p):
//  - no entropy source: the first getrandom() callers block for tens of seconds. We credit the
//    pool from /dev/urandom with RNDADDENTROPY (what rng-tools does from a hwrng); test VM only.
//  - swanctl loads every installed plugin over 9p by default: `--load-all` took 33-100 s. A
//    strongswan.conf with a short `swanctl { load = … }` brings it to ~7 s. charon gets its own
//    conf from e2e/lib/strongswan.ts; swanctl inherits STRONGSWAN_CONF from this process.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const SEED = `import fcntl, os, struct
buf = os.urandom(64)
with open('/dev/random', 'wb') as f:
    fcntl.ioctl(f, 0x40085203, struct.pack('ii', len(buf) * 8, len(buf)) + buf)  # RNDADDENTROPY
`;

let done = false;

export function prepareVm(): void {
  if (done) return;
  done = true;
  if (!process.env['KIPSEC_IN_VM']) return;
  try { execFileSync('python3', ['-c', SEED], { timeout: 10_000, stdio: 'ignore' }); } catch { /* best effort */ }
  const dir = mkdtempSync(join(tmpdir(), 'kipsec-swanctl-'));
  writeFileSync(join(dir, 'strongswan.conf'), 'swanctl {\n  load = pem pkcs1 pkcs8 x509 openssl random nonce\n}\n');
  process.env['STRONGSWAN_CONF'] = join(dir, 'strongswan.conf');
}
