// The crypto an agent's identity client needs (src/api/identity-client.ts takes it as a port,
// because src/api may not import src/pki — DESIGN.md §7; the agent composes the two).
import { readFile, writeFile, rename } from 'node:fs/promises';
import { createCsr, parseCertificate, renewAtMs, certFingerprint, spkiFingerprint } from './certs.js';
import { generateKeyPair, readKeyFile, writeKeyFile, type KeyPair } from './keys.js';

export interface IdentityCertInfo { readonly pem: string; readonly notBeforeMs: number; readonly notAfterMs: number; readonly renewAtMs: number; readonly fingerprint: string; readonly publicKeyFingerprint: string }

async function info(pem: string): Promise<IdentityCertInfo> {
  const c = parseCertificate(pem);
  return { pem, notBeforeMs: c.notBefore.getTime(), notAfterMs: c.notAfter.getTime(), renewAtMs: renewAtMs(c), fingerprint: await certFingerprint(c), publicKeyFingerprint: await spkiFingerprint(c.publicKey.rawData) };
}

export const identityCrypto = {
  generateKey: (): Promise<KeyPair> => generateKeyPair(),
  readKey: (path: string): Promise<KeyPair> => readKeyFile(path),
  writeKey: (path: string, k: KeyPair): Promise<void> => writeKeyFile(path, k),
  createCsr: (k: KeyPair, node: string, ips: readonly string[]): Promise<string> => createCsr(k, node, ips),
  certInfo: (pem: string): Promise<IdentityCertInfo> => info(pem),
  /** Write a public file atomically (certificate, bundle): readers never see half a file. */
  writePublic: async (path: string, text: string): Promise<void> => { await writeFile(`${path}.tmp`, text, { mode: 0o644 }); await rename(`${path}.tmp`, path); },
  readText: (path: string): Promise<string> => readFile(path, 'utf8'),
};
