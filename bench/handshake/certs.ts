// bench/handshake-vs-strongswan --auth cert: ECDSA P-256 certificates from one CA (openssl) for
// both responders and the initiators, so both responders are measured with the same proposal and
// the same signature work: each IKE_AUTH verifies the initiator's certificate chain and its
// AUTH signature and signs its own AUTH. Every certificate carries its holder's address as an IP
// SAN, the identity it uses (as in the PSK mode). Each initiator has its own certificate (one key
// for all of them): with one shared identity, charon's INITIAL_CONTACT handling deleted the other
// initiators' IKE SAs with the same identity (RFC 7296 §2.4), stalling their cycles.
import { execFileSync } from 'node:child_process';
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { outer, RESPONDER } from './scenario.js';

export type CertName = 'ca' | 'agent' | 'swan' | 'initiator' | `initiator-${number}`;

export const certFile = (dir: string, name: CertName): string => join(dir, `${name}.crt`);
export const keyFile = (dir: string, name: CertName): string => join(dir, `${name}.key`);

/** A fresh directory with the CA, the responders' certificates and keys, and n initiators' certificates with one key (PKCS#8 PEM). */
export function makeBenchCerts(n: number): string {
  const dir = mkdtempSync(join(tmpdir(), 'kipsec-bench-certs-'));
  const ssl = (args: readonly string[]): void => { execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'], timeout: 30_000 }); };
  const key = (n: CertName): void => ssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', `${n}.key`]);
  key('ca');
  ssl(['req', '-x509', '-new', '-key', 'ca.key', '-subj', '/CN=kipsec bench CA', '-days', '30', '-sha256',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-out', 'ca.crt']);
  const issue = (name: CertName, keyName: CertName, address: string): void => ssl(['req', '-x509', '-new', '-key', `${keyName}.key`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-subj', `/CN=${name}`, '-days', '30', '-sha256',
    '-addext', `subjectAltName=IP:${address}`, '-addext', 'basicConstraints=critical,CA:FALSE', '-addext', 'keyUsage=critical,digitalSignature', '-out', `${name}.crt`]);
  for (const t of ['agent', 'swan'] as const) { key(t); issue(t, t, RESPONDER[t].address); }
  key('initiator');
  for (let i = 0; i < n; i++) issue(`initiator-${i}`, 'initiator', outer(i));
  return dir;
}

/** Initiator i's credentials as the IKE engine takes them (the key and CA shared: pass `shared` from the previous call). */
export function initiatorCredentials(dir: string, i: number, shared?: { privateKey: KeyObject; cas: Uint8Array[] }): { certificate: Uint8Array; privateKey: KeyObject; cas: Uint8Array[] } {
  const der = (n: CertName): Uint8Array => new Uint8Array(new X509Certificate(readFileSync(certFile(dir, n))).raw);
  return { certificate: der(`initiator-${i}`), privateKey: shared?.privateKey ?? createPrivateKey(readFileSync(keyFile(dir, 'initiator'))), cas: shared?.cas ?? [der('ca')] };
}
