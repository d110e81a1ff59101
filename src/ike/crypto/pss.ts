// RSASSA-PSS parameters received in an RFC 7427 AlgorithmIdentifier (RFC 4055 §3.1), bounded before
// any signature work: hash SHA-256/384/512 (RFC 8247 §3: SHA-1 signatures MUST NOT), MGF1 with that same hash
// (RFC 7427 Appendix A.4 uses only that form), trailerField 1, and a salt of at least the hash length
// (RFC 4055 §3.1 recommends it; NIST SP 800-131A wants it) and at most what the key's encoding holds
// (RFC 8017 §9.1.1: emLen - hLen - 2, strongSwan's RSA_PSS_SALT_LEN_MAX). strongSwan
// (signature_params.c) takes any non-negative salt; we are stricter, and say exactly why we refuse.
import { toHex } from '../../common/bytes.js';
import { readAll, readTlv, type Tlv } from './der.js';
import { AuthenticationError } from './errors.js';

export type PssHash = 'sha256' | 'sha384' | 'sha512';

const PSS_OID = '2a864886f70d01010a';
const MGF1_OID = '2a864886f70d010108';
const SHA1_OID = '2b0e03021a';
const HASH_BY_OID: Readonly<Record<string, PssHash>> = { '608648016503040201': 'sha256', '608648016503040202': 'sha384', '608648016503040203': 'sha512' };
export const PSS_HASH_BYTES: Readonly<Record<PssHash, number>> = { sha256: 32, sha384: 48, sha512: 64 };

export interface PssParams { readonly hash: PssHash; readonly saltLength: number }

/** Whether `algId` names RSASSA-PSS at all (then parsePssParams decides, and may refuse). */
export function isPssAlgorithmIdentifier(algId: Uint8Array): boolean {
  try {
    const outer = readTlv(algId);
    const o = readAll(outer.value)[0];
    return outer.tag === 0x30 && o?.tag === 0x06 && toHex(o.value) === PSS_OID;
  } catch { return false; }
}

function refuse(why: string): never { throw new AuthenticationError(`RSASSA-PSS refused: ${why}`); }

/** The hash an AlgorithmIdentifier (SEQUENCE { OID, [NULL] }) names; SHA-1 and unknown ones refused. */
function hashOf(algId: Tlv | undefined, what: string): PssHash {
  const parts = algId?.tag === 0x30 ? readAll(algId.value) : [];
  const o = parts[0];
  if (!o || o.tag !== 0x06 || parts.length > 2 || (parts[1] && (parts[1].tag !== 0x05 || parts[1].value.length !== 0))) return refuse(`malformed ${what} AlgorithmIdentifier`);
  const hex = toHex(o.value);
  if (hex === SHA1_OID) return refuse(`${what} is SHA-1 (RFC 8247 §3: MUST NOT)`);
  return HASH_BY_OID[hex] ?? refuse(`${what} OID ${hex} is not SHA-256/384/512`);
}

/** A DER INTEGER as a small non-negative number (salts above 2^24 are nonsense anyway). */
function smallUnsigned(t: Tlv | undefined, what: string): number {
  if (!t || t.tag !== 0x02 || t.value.length === 0 || t.value.length > 3 || (t.value[0]! & 0x80) !== 0) return refuse(`${what} is not a small non-negative INTEGER`);
  let n = 0;
  for (const b of t.value) n = n * 256 + b;
  return n;
}

/**
 * Parse and bound RSASSA-PSS-params for a key of `modulusBits`. Absent fields take RFC 4055's
 * defaults (SHA-1, MGF1-SHA-1, salt 20), which are refused like explicit ones. Throws
 * AuthenticationError naming what was refused.
 */
export function parsePssParams(algId: Uint8Array, modulusBits: number | undefined): PssParams {
  let hash: PssHash | undefined; let mgfHash: PssHash | undefined; let salt: number | undefined;
  try {
    const outer = readTlv(algId);
    if (outer.tag !== 0x30 || outer.end !== algId.length) refuse('malformed AlgorithmIdentifier');
    const [, params, extra] = readAll(outer.value);
    if (!params || params.tag !== 0x30 || extra) refuse('parameters absent or malformed (RFC 7427 §3: hash and MGF must be explicit)');
    for (const f of readAll(params.value)) {
      const inner = readAll(f.value);
      if (inner.length !== 1) refuse(`malformed field [${f.tag & 0x1f}]`);
      if (f.tag === 0xa0) hash = hashOf(inner[0], 'hash');
      else if (f.tag === 0xa1) {
        const mgf = inner[0]!.tag === 0x30 ? readAll(inner[0]!.value) : [];
        if (mgf[0]?.tag !== 0x06 || toHex(mgf[0].value) !== MGF1_OID || mgf.length !== 2) refuse('mask generation function is not MGF1');
        mgfHash = hashOf(mgf[1], 'MGF1 hash');
      } else if (f.tag === 0xa2) salt = smallUnsigned(inner[0], 'saltLength');
      else if (f.tag === 0xa3) { if (smallUnsigned(inner[0], 'trailerField') !== 1) refuse('trailerField is not 1 (RFC 4055 §3.1)'); }
      else refuse(`unknown field tag 0x${f.tag.toString(16)}`);
    }
  } catch (e) {
    if (e instanceof AuthenticationError) throw e;
    refuse('malformed DER');
  }
  if (hash === undefined) return refuse('hash absent, i.e. SHA-1 (RFC 8247 §3: MUST NOT)');
  if (mgfHash === undefined) return refuse('MGF1 hash absent, i.e. SHA-1 (RFC 8247 §3: MUST NOT)');
  if (mgfHash !== hash) return refuse(`MGF1 uses ${mgfHash} but the signature ${hash}; they must match`);
  const hLen = PSS_HASH_BYTES[hash];
  const saltLength = salt ?? 20;
  if (saltLength < hLen) return refuse(`salt length ${saltLength} is below the ${hash} output length ${hLen}`);
  // RFC 8017 §9.1.1: emLen = ceil((modBits - 1) / 8), and the salt must fit beside the hash.
  const max = modulusBits === undefined ? hLen : Math.ceil((modulusBits - 1) / 8) - hLen - 2;
  if (saltLength > max) return refuse(`salt length ${saltLength} exceeds ${max}, the most a ${modulusBits ?? '?'}-bit key holds with ${hash} (RFC 8017 §9.1.1)`);
  return { hash, saltLength };
}
