// The public-key operations an IKE responder can hand to a crypto worker (pool.ts), as plain data
// so they cross postMessage: the Diffie-Hellman half of IKE_SA_INIT / CREATE_CHILD_SA, AUTH
// signing and AUTH signature verification (RFC 7296 §2.15, RFC 7427). runCryptoJob is the one
// implementation: the worker runs it, and so does the synchronous path (pool size 0), so both
// give the same bytes for the same inputs.
//
// Key material: a DH private value travels as bytes (drawn on the calling thread, so a seeded
// Random still decides it) and is wiped once used; the shared secret comes back as bytes for the
// caller to wrap in SecretBytes. Private KeyObjects are cloned by postMessage (node's KeyObject
// transfer) and never serialised to text. Error messages never contain key material.
import type { KeyObject } from 'node:crypto';
import { KipsecError } from '../../common/errors.js';
import { signAuth, verifySignatureAuth, type AuthValue } from './auth.js';
import { keyShareFromPrivate } from './dh.js';
import { schemeByName } from './signature-schemes.js';

export type CryptoJob =
  | {
    /** Our KE data and g^ir for the peer's KE data (DH groups only; ML-KEM stays on the caller's thread). */
    readonly op: 'dh';
    readonly group: number;
    /** From drawPrivateValue; wiped by runCryptoJob. */
    readonly privateValue: Uint8Array;
    readonly peerPublicValue: Uint8Array;
    readonly allowWeak: boolean;
  }
  | { readonly op: 'sign'; readonly scheme: string; readonly privateKey: KeyObject; readonly octets: Uint8Array }
  | {
    readonly op: 'verify';
    readonly authMethod: number;
    readonly authData: Uint8Array;
    readonly publicKey: KeyObject;
    readonly octets: Uint8Array;
    readonly allowedHashes: readonly number[] | null;
    readonly allowSha1Rsa: boolean;
  };

export interface DhJobResult { readonly publicValue: Uint8Array; readonly sharedSecret: Uint8Array }

/** Result type per job kind. */
export interface CryptoJobResults { dh: DhJobResult; sign: AuthValue; verify: { readonly scheme: string } }
export type CryptoJobResult = CryptoJobResults[keyof CryptoJobResults];

/** A failure inside a job, as it crosses the thread boundary: the original error's name, code and message. */
export interface CryptoJobFailure { readonly name: string; readonly code: string; readonly message: string }

/** A job's failure on the caller's side, with the code and message of the error the job threw. */
export class CryptoJobError extends KipsecError {
  /** Class name of the original error (AuthenticationError, InvalidKeyExchangeError, …). */
  readonly originalName: string;
  constructor(f: CryptoJobFailure) {
    super(f.code, f.message);
    this.originalName = f.name;
  }
}

/** Run one job on this thread. Throws what the underlying operation throws. */
export function runCryptoJob(job: CryptoJob): CryptoJobResult {
  switch (job.op) {
    case 'dh': {
      try {
        const share = keyShareFromPrivate(job.group, job.privateValue, { allowWeak: job.allowWeak });
        const secret = share.computeSharedSecret(job.peerPublicValue);
        return { publicValue: share.publicValue, sharedSecret: secret.expose() };
      } finally { job.privateValue.fill(0); }
    }
    case 'sign': {
      const scheme = schemeByName(job.scheme);
      if (!scheme) throw new KipsecError('ERR_IKE_CRYPTO_JOB', `unknown signature scheme ${job.scheme}`);
      return signAuth(scheme, job.privateKey, job.octets);
    }
    case 'verify': {
      const s = verifySignatureAuth(job.authMethod, job.authData, job.publicKey, job.octets, {
        ...(job.allowedHashes ? { allowedHashes: job.allowedHashes } : {}), allowSha1Rsa: job.allowSha1Rsa,
      });
      return { scheme: s.name };
    }
  }
}

/** The failure record of anything a job threw (never its stack: it crosses threads as data). */
export function jobFailure(e: unknown): CryptoJobFailure {
  if (e instanceof Error) {
    const c: unknown = (e as Error & { code?: unknown }).code;
    const code = typeof c === 'string' ? c : 'ERR_IKE_CRYPTO_JOB';
    return { name: e.name, code, message: e.message };
  }
  return { name: 'Error', code: 'ERR_IKE_CRYPTO_JOB', message: String(e) };
}

/** Buffers of a result that can be transferred rather than copied back. */
export function transferablesOf(r: CryptoJobResult): ArrayBuffer[] {
  if (!('sharedSecret' in r)) return [];
  // Only buffers the views own whole: transferring a shared slab would take its other users' bytes too.
  const own = (v: Uint8Array): ArrayBuffer[] => v.buffer instanceof ArrayBuffer && v.byteOffset === 0 && v.byteLength === v.buffer.byteLength ? [v.buffer] : [];
  const out = [...own(r.sharedSecret), ...own(r.publicValue)];
  return out.length === 2 && out[0] === out[1] ? [out[0]!] : out;
}
