// Certificates parsed once and issuer signatures checked once, per certificate content, for
// validateCertificateChain: every IKE_AUTH with certificates parsed the configured CAs again
// (OpenSSL's d2i plus our DER walk) and checked the end entity's signature against its CA on the
// engine's thread, although neither changes between handshakes of the same peers (charon keeps
// the same in its cert_cache: issuer relations already verified).
//
//  - Keyed by the whole DER, not a name or a hash of it: a renewed or re-issued certificate is
//    other bytes, so it is parsed and verified anew; nothing needs invalidating.
//  - Bounded: at most MAX_PARSED certificates and MAX_PARSED_BYTES of their DER, least recently
//    used dropped first; a certificate over MAX_ENTRY_BYTES is parsed but not kept (CERT payloads
//    come from peers not yet authenticated, so what they send must not grow the cache). A verified
//    issuer is remembered on the parsed child (WeakMap/WeakSet), so it goes with either entry.
//  - Only successes are remembered; a signature that fails is checked again each time (a peer
//    sending bad chains costs what it cost before).
//  - The validity period is not cached: certs.ts checks it against the clock on every use.
import { parseCertificate, type CertInfo } from './x509.js';

/** Parsed certificates kept (CAs, intermediates, peers' end entities), a few KiB each beside their DER. */
export const MAX_PARSED = 512;
/** DER octets kept over all entries (each is held twice: as the key and as the entry's copy). */
export const MAX_PARSED_BYTES = 1 << 20;
/** Larger certificates are not kept (a P-256 or RSA-4096 certificate is 0.5-2 KiB). */
export const MAX_ENTRY_BYTES = 16_384;

const parsed = new Map<string, CertInfo>();
let bytes = 0;
const verified = new WeakMap<CertInfo, WeakSet<CertInfo>>();
let hits = 0;
let misses = 0;

function keyOf(der: Uint8Array): string {
  return Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString('latin1');
}

/**
 * parseCertificate(der), from the cache when the same octets were parsed before. The cached entry
 * holds its own copy of the octets (not a view into a received datagram). Throws as
 * parseCertificate does; what does not parse is not cached.
 */
export function parseCertificateCached(der: Uint8Array): CertInfo {
  if (der.length > MAX_ENTRY_BYTES) { misses++; return parseCertificate(der); }
  const key = keyOf(der);
  const hit = parsed.get(key);
  if (hit !== undefined) {
    hits++;
    parsed.delete(key); // re-insert: Map order is the LRU order
    parsed.set(key, hit);
    return hit;
  }
  misses++;
  const info = parseCertificate(new Uint8Array(der));
  while (parsed.size > 0 && (parsed.size >= MAX_PARSED || bytes + der.length > MAX_PARSED_BYTES)) {
    const [oldKey, old] = parsed.entries().next().value!;
    parsed.delete(oldKey);
    bytes -= old.der.length;
  }
  parsed.set(key, info);
  bytes += der.length;
  return info;
}

/** Whether `issuer`'s key verifies the signature on `child` (X509_verify), remembering a success. */
export function signedBy(child: CertInfo, issuer: CertInfo): boolean {
  if (verified.get(child)?.has(issuer) === true) return true;
  let ok: boolean;
  try { ok = child.cert.verify(issuer.publicKey); } catch { ok = false; }
  if (ok) {
    let set = verified.get(child);
    if (set === undefined) { set = new WeakSet(); verified.set(child, set); }
    set.add(issuer);
  }
  return ok;
}

/** Entries held and lookups answered from / not from the cache (for tests and benches). */
export function certCacheStats(): { readonly size: number; readonly bytes: number; readonly hits: number; readonly misses: number } {
  return { size: parsed.size, bytes, hits, misses };
}

/** Forget everything (tests). */
export function clearCertCache(): void {
  parsed.clear();
  bytes = 0; hits = 0; misses = 0;
}
