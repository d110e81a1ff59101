// bench/handshake-vs-strongswan --auth cert: ECDSA P-256 certificates from one CA (openssl) for
// both responders and the initiators, so both responders are measured with the same proposal and
// the same signature work: each IKE_AUTH verifies the initiator's certificate chain and its
// AUTH signature and signs its own AUTH. The responders' certificates carry their address as an
// IP SAN (their identity, as the PSK mode's), the initiators share one with a DNS SAN.
import { execFileSync } from 'node:child_process';
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RESPONDER } from './scenario.js';

export const INITIATOR_FQDN = 'initiator.bench.kipsec.test';
export type CertName = 'ca' | 'agent' | 'swan' | 'initiator';

export const certFile = (dir: string, name: CertName): string => join(dir, `${name}.crt`);
export const keyFile = (dir: string, name: CertName): string => join(dir, `${name}.key`);

/** A fresh directory with the CA and the three end-entity certificates and keys (PKCS#8 PEM). */
export function makeBenchCerts(): string {
  const dir = mkdtempSync(join(tmpdir(), 'kipsec-bench-certs-'));
  const ssl = (args: readonly string[]): void => { execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'], timeout: 30_000 }); };
  const key = (n: CertName): void => ssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', `${n}.key`]);
  key('ca');
  ssl(['req', '-x509', '-new', '-key', 'ca.key', '-subj', '/CN=kipsec bench CA', '-days', '30', '-sha256',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-out', 'ca.crt']);
  const ees: readonly (readonly [CertName, string])[] = [['agent', `IP:${RESPONDER.agent.address}`], ['swan', `IP:${RESPONDER.swan.address}`], ['initiator', `DNS:${INITIATOR_FQDN}`]];
  for (const [n, san] of ees) {
    key(n);
    ssl(['req', '-x509', '-new', '-key', `${n}.key`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-subj', `/CN=${n}`, '-days', '30', '-sha256',
      '-addext', `subjectAltName=${san}`, '-addext', 'basicConstraints=critical,CA:FALSE', '-addext', 'keyUsage=critical,digitalSignature', '-out', `${n}.crt`]);
  }
  return dir;
}

/** The initiators' credentials as the IKE engine takes them. */
export function initiatorCredentials(dir: string): { certificate: Uint8Array; privateKey: KeyObject; cas: Uint8Array[] } {
  const der = (n: CertName): Uint8Array => new Uint8Array(new X509Certificate(readFileSync(certFile(dir, n))).raw);
  return { certificate: der('initiator'), privateKey: createPrivateKey(readFileSync(keyFile(dir, 'initiator'))), cas: [der('ca')] };
}
