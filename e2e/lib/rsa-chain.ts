// A test PKI with RSA-4096 everywhere, built with openssl at test time: one root CA, one
// intermediate CA per gateway, and an end-entity certificate per gateway issued by its own
// intermediate. Two intermediates (not one shared) so that each side can validate the other only
// if the peer really sends its intermediate in a CERT payload (RFC 7296 §3.6): neither side has
// the other's intermediate locally.
//
// Private keys come from a cache of test-only keys (~/.cache/kipsec/test-keys, or
// KIPSEC_TEST_KEYS): RSA-4096 key generation takes seconds per key on the host and far longer
// under the kernel lane's TCG emulation. `node --import tsx e2e/lib/rsa-chain.ts` fills the cache
// on the host (e2e/vm-run.sh does before booting); inside a VM the host's cache is visible, and
// a missing key is generated there, slowly, into the VM's throw-away overlay. Certificates are
// always issued fresh, so their validity is around the test's own clock.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

export const RSA_BITS = 4096;
const KEY_NAMES = ['root', 'agent-ca', 'swan-ca', 'agent', 'swan'] as const;
export type ChainKey = typeof KEY_NAMES[number];

export function keyCacheDir(): string {
  return process.env['KIPSEC_TEST_KEYS'] ?? join(homedir(), '.cache', 'kipsec', 'test-keys');
}

function ossl(cwd: string, args: readonly string[], timeoutMs = 120_000): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'], timeout: timeoutMs });
}

/**
 * Paths of the five RSA-4096 test keys, generating the missing ones (written to a temp name
 * and renamed, so a killed run leaves no half key). Returns how many were generated.
 */
export function ensureRsaKeys(dir = keyCacheDir()): { paths: Record<ChainKey, string>; generated: number; ms: number } {
  const t0 = Date.now();
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  let generated = 0;
  const paths = {} as Record<ChainKey, string>;
  for (const name of KEY_NAMES) {
    const file = join(dir, `rsa${RSA_BITS}-${name}.key`);
    if (!existsSync(file)) {
      const part = `${file}.${process.pid}.part`;
      // Five minutes per key: generous for TCG, still bounded.
      ossl(dir, ['genpkey', '-algorithm', 'RSA', '-pkeyopt', `rsa_keygen_bits:${RSA_BITS}`, '-out', part], 300_000);
      renameSync(part, file);
      generated++;
    }
    paths[name] = file;
  }
  return { paths, generated, ms: Date.now() - t0 };
}

export interface RsaChain {
  readonly root: string;
  readonly agentCa: string;
  readonly swanCa: string;
  readonly agentCrt: string;
  readonly agentKey: string;
  readonly swanCrt: string;
  readonly swanKey: string;
  /** How long the keys took (ms) and how many had to be generated now. */
  readonly keyMs: number;
  readonly keysGenerated: number;
}

/**
 * Issue the chain. `agentSan` / `swanSan` are subjectAltName values such as
 * "DNS:agent.example.test" (the IKE identities, RFC 4945 §3.1).
 */
export function makeRsaChain(o: { agentSan: string; swanSan: string }): RsaChain {
  const keys = ensureRsaKeys();
  const d = mkdtempSync(join(tmpdir(), 'kipsec-rsa-chain-'));
  const days = ['-days', '2'];
  writeFileSync(join(d, 'ca.ext'), 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n');
  ossl(d, ['req', '-x509', '-new', '-key', keys.paths.root, '-sha256', '-out', 'root.crt', ...days, '-subj', '/O=kipsec e2e/CN=RSA-4096 root CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  const issue = (name: string, key: string, subj: string, caCrt: string, caKey: string, ext: string): void => {
    ossl(d, ['req', '-new', '-key', key, '-out', `${name}.csr`, '-subj', subj]);
    ossl(d, ['x509', '-req', '-in', `${name}.csr`, '-CA', caCrt, '-CAkey', caKey, '-CAcreateserial', '-sha256', '-out', `${name}.crt`, ...days, '-extfile', ext]);
  };
  issue('agent-ca', keys.paths['agent-ca'], '/O=kipsec e2e/CN=RSA-4096 intermediate CA for the agent', 'root.crt', keys.paths.root, 'ca.ext');
  issue('swan-ca', keys.paths['swan-ca'], '/O=kipsec e2e/CN=RSA-4096 intermediate CA for strongSwan', 'root.crt', keys.paths.root, 'ca.ext');
  for (const [who, san] of [['agent', o.agentSan], ['swan', o.swanSan]] as const) {
    writeFileSync(join(d, `${who}.ext`), `subjectAltName=${san}\nkeyUsage=critical,digitalSignature\nauthorityKeyIdentifier=keyid\n`);
    issue(who, keys.paths[who], `/O=kipsec e2e/CN=${who} (RSA-4096)`, `${who}-ca.crt`, keys.paths[`${who}-ca`], `${who}.ext`);
  }
  const r = (f: string): string => readFileSync(join(d, f), 'utf8');
  return {
    root: r('root.crt'), agentCa: r('agent-ca.crt'), swanCa: r('swan-ca.crt'),
    agentCrt: r('agent.crt'), swanCrt: r('swan.crt'),
    agentKey: readFileSync(keys.paths.agent, 'utf8'), swanKey: readFileSync(keys.paths.swan, 'utf8'),
    keyMs: keys.ms, keysGenerated: keys.generated,
  };
}

// `node --import tsx e2e/lib/rsa-chain.ts`: fill the key cache (run on the host before a VM boot).
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const k = ensureRsaKeys();
  console.log(`rsa-chain: ${k.generated} RSA-${RSA_BITS} test key(s) generated in ${k.ms} ms, cache ${keyCacheDir()}`);
}
