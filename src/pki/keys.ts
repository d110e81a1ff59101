// ECDSA P-256 key pairs: generated in-process, stored as PKCS#8 PEM in files of mode 0600, and
// carried around as a KeyPair whose private half never prints (toJSON/inspect say [redacted]).
import { chmod, open, readFile, stat } from 'node:fs/promises';
import { inspect } from 'node:util';
import type { webcrypto as wc } from 'node:crypto';

type CryptoKey = wc.CryptoKey;
type CryptoKeyPair = wc.CryptoKeyPair;
import { EC_ALG, webcrypto, x509 } from './provider.js';
import { PkiError, PKI_CODES } from './errors.js';

export class KeyPair {
  readonly publicKey: CryptoKey;
  readonly #privateKey: CryptoKey;
  constructor(publicKey: CryptoKey, privateKey: CryptoKey) { this.publicKey = publicKey; this.#privateKey = privateKey; }
  /** For signing; call sites that need it are the ones to audit. */
  get privateKey(): CryptoKey { return this.#privateKey; }
  get cryptoKeyPair(): CryptoKeyPair { return { publicKey: this.publicKey, privateKey: this.#privateKey }; }
  toJSON(): string { return '[redacted]'; }
  [inspect.custom](): string { return 'KeyPair(ECDSA P-256)[redacted]'; }
}

export async function generateKeyPair(): Promise<KeyPair> {
  const k = await webcrypto.subtle.generateKey(EC_ALG, true, ['sign', 'verify']);
  return new KeyPair(k.publicKey, k.privateKey);
}

export async function exportPrivateKeyPem(k: KeyPair): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', k.privateKey);
  return x509.PemConverter.encode(der, 'PRIVATE KEY');
}

export async function importPrivateKeyPem(pem: string): Promise<KeyPair> {
  let der: ArrayBuffer;
  try { der = x509.PemConverter.decodeFirst(pem); } catch { throw new PkiError(PKI_CODES.badPem, 'private key is not PEM'); }
  const privateKey = await webcrypto.subtle.importKey('pkcs8', der, EC_ALG, true, ['sign']);
  // WebCrypto derives no public key from PKCS#8; round-trip through JWK (d dropped) to get it.
  const jwk = await webcrypto.subtle.exportKey('jwk', privateKey);
  delete jwk.d;
  jwk.key_ops = ['verify'];
  const publicKey = await webcrypto.subtle.importKey('jwk', jwk, EC_ALG, true, ['verify']);
  return new KeyPair(publicKey, privateKey);
}

/** Write a key file readable by its owner only; the mode is set at creation, never widened. */
export async function writeKeyFile(path: string, k: KeyPair): Promise<void> {
  const pem = await exportPrivateKeyPem(k);
  const fh = await open(path, 'w', 0o600);
  try { await fh.chmod(0o600); await fh.writeFile(pem); } finally { await fh.close(); }
}

/** Read a key file, refusing one that group or others may read (as ssh does). */
export async function readKeyFile(path: string): Promise<KeyPair> {
  const st = await stat(path);
  if ((st.mode & 0o077) !== 0) throw new PkiError(PKI_CODES.keyFileMode, `${path}: key file mode is ${(st.mode & 0o777).toString(8)}, want 600`);
  return importPrivateKeyPem(await readFile(path, 'utf8'));
}

export { chmod };
