// Forged and malformed RSA signatures presented as IKE AUTH (RFC 7427 DIGITAL_SIGNATURE, and the
// classic RSA_DIGITAL_SIGNATURE when allowWeak lets it through) must all be refused.
//
// PKCS#1 v1.5: RFC 8017 §8.2.2 step 3 / §9.2 says to build EM' = EMSA-PKCS1-v1_5-ENCODE(M) and
// compare it with the recovered EM octet for octet. Verifiers that instead *parse* EM were forged:
//   - CVE-2006-4339 (Bleichenbacher, CRYPTO 2006 rump session; OpenSSL, and with it most of the
//     ecosystem): garbage after the hash was ignored, so with e = 3 the integer cube root of
//     "00 01 FF.. 00 DigestInfo hash 00..00", rounded up, is a signature nobody signed;
//   - garbage in place of the FF padding, the hash at the end (CVE-2006-4340 NSS, CVE-2016-1494
//     python-rsa): the low bits of s³ are fixed by a cube root modulo 2^k, the high bits by an
//     integer cube root;
//   - ASN.1 leniency inside DigestInfo: CVE-2018-16152 (strongSwan gmp plugin, garbage in
//     digestAlgorithm.parameters), CVE-2018-16151 (same plugin, excess data after the OID),
//     CVE-2014-1568 (NSS "BERserk", long-form lengths).
// The forgeries below are real ones against a 2048-bit key with e = 3 (no private key used), each
// checked first to have the intended shape, so a refusal is not an artefact of a broken forgery.
// Malformed encodings that need no forgery are signed with the real private key (raw RSA): there
// only the encoding check can refuse them.
//
// RSASSA-PSS: RFC 8017 §9.1.2 with the salt length from the AlgorithmIdentifier (RFC 4055 §3.1);
// huge or inconsistent salt lengths are refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { constants, createHash, generateKeyPairSync, privateEncrypt, sign, type KeyObject } from 'node:crypto';
import { concatBytes, fromHex, toHex } from '../../../../src/common/bytes.js';
import { AuthMethod } from '../../../../src/ike/constants.js';
import { verifySignatureAuth, type VerifyOptions } from '../../../../src/ike/crypto/auth.js';
import { AuthenticationError } from '../../../../src/ike/crypto/errors.js';
import { NULL_DER, oid, readAll, readTlv, SEQUENCE, smallInt, tlv } from '../../../../src/ike/crypto/der.js';
import { schemeByName } from '../../../../src/ike/crypto/signature-schemes.js';

const EM_LEN = 256; // 2048-bit keys
const e3 = generateKeyPairSync('rsa', { modulusLength: 2048, publicExponent: 3 });
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });

const SHA256_OID = '608648016503040201'; const SHA512_OID = '608648016503040203'; const SHA1_OID = '2b0e03021a';
const sha256WithRsa = schemeByName('sha256WithRSAEncryption')!.algorithmIdentifier!;

// Signed octets whose SHA-256 and SHA-1 both end in an odd octet: a cube root modulo 2^k exists
// only for odd targets, and the forgeries that end in the hash need one.
const octets = ((): Uint8Array => {
  for (let i = 0; ; i++) {
    const o = new TextEncoder().encode(`IKE_AUTH signed octets ${i}`);
    if (createHash('sha256').update(o).digest()[31]! & createHash('sha1').update(o).digest()[19]! & 1) return o;
  }
})();
const sha256 = new Uint8Array(createHash('sha256').update(octets).digest());
const sha1 = new Uint8Array(createHash('sha1').update(octets).digest());

/** DigestInfo (RFC 8017 §9.2 Note 1) for `hashOid` with NULL parameters. */
const digestInfo = (hashOid: string, hash: Uint8Array): Uint8Array => tlv(SEQUENCE, tlv(SEQUENCE, oid(hashOid), NULL_DER), tlv(0x04, hash));

/** 00 01 FF..FF 00 T, then `trailing` octets: EM padded to EM_LEN (RFC 8017 §9.2 step 5). */
function emsa(t: Uint8Array, trailing: Uint8Array = new Uint8Array(0)): Uint8Array {
  const ps = EM_LEN - 3 - t.length - trailing.length;
  assert.ok(ps >= 1, `no room for padding (${ps})`);
  return concatBytes(fromHex('0001'), new Uint8Array(ps).fill(0xff), fromHex('00'), t, trailing);
}

const big = (b: Uint8Array): bigint => (b.length === 0 ? 0n : BigInt(`0x${toHex(b)}`));
function bytes(n: bigint, len: number): Uint8Array {
  const hex = n.toString(16).padStart(len * 2, '0');
  assert.equal(hex.length, len * 2, 'integer does not fit');
  return fromHex(hex);
}
const modulus = (k: KeyObject): bigint => big(new Uint8Array(Buffer.from(k.export({ format: 'jwk' }).n!, 'base64url')));

/** floor(cbrt(x)) by Newton's method. */
function icbrt(x: bigint): bigint {
  if (x < 2n) return x;
  let r = 1n << BigInt(Math.ceil(x.toString(2).length / 3));
  for (;;) {
    const next = (2n * r + x / (r * r)) / 3n;
    if (next >= r) break;
    r = next;
  }
  while (r * r * r > x) r--;
  while ((r + 1n) ** 3n <= x) r++;
  return r;
}

/** The cube root of an odd `target` modulo 2^bits, bit by bit (Hensel lifting). */
function cbrtMod2k(target: bigint, bits: number): bigint {
  assert.equal(target & 1n, 1n, 'only odd targets have a cube root mod 2^k');
  const mask = (1n << BigInt(bits)) - 1n;
  let s = 1n;
  for (let i = 1n; i < BigInt(bits); i++) if ((((s ** 3n) ^ target) >> i) & 1n) s |= 1n << i;
  assert.equal((s ** 3n) & mask, target & mask);
  return s;
}

/**
 * A signature s for the e = 3 key with s³ < n (so s³ mod n = s³) whose EM starts with `prefix`
 * and ends with `suffix`, whatever lies between: the low bits from cbrtMod2k(suffix), the high
 * bits from the integer cube root of prefix | filler. An empty suffix is the 2006 shape: round
 * the cube root of prefix | 00..00 up.
 */
function forge(prefix: Uint8Array, suffix: Uint8Array): { sig: Uint8Array; em: Uint8Array } {
  const filler = new Uint8Array(EM_LEN - prefix.length - suffix.length).fill(0x55); // no borrow into the prefix
  const target = big(concatBytes(prefix, filler, new Uint8Array(suffix.length)));
  let s: bigint;
  if (suffix.length === 0) {
    s = icbrt(big(concatBytes(prefix, new Uint8Array(EM_LEN - prefix.length))));
    s += 1n;
  } else {
    const k = BigInt(suffix.length * 8);
    s = ((icbrt(target) >> k) << k) | cbrtMod2k(big(suffix), suffix.length * 8);
  }
  const cube = s ** 3n;
  assert.ok(cube < modulus(e3.publicKey), 's³ must stay below n, else it wraps');
  const em = bytes(cube, EM_LEN);
  // The forgery has the intended shape: a lax parser would find what it looks for.
  assert.equal(toHex(em.subarray(0, prefix.length)), toHex(prefix), 'forged EM keeps the prefix');
  assert.equal(toHex(em.subarray(EM_LEN - suffix.length)), toHex(suffix), 'forged EM keeps the suffix');
  return { sig: bytes(s, EM_LEN), em };
}

const ds = (algId: Uint8Array, sig: Uint8Array): Uint8Array => concatBytes(new Uint8Array([algId.length]), algId, sig);
const raw = (key: KeyObject, em: Uint8Array): Uint8Array => new Uint8Array(privateEncrypt({ key, padding: constants.RSA_NO_PADDING }, em));
const refused = (re: RegExp) => (e: unknown): boolean => {
  assert.ok(e instanceof AuthenticationError, `want AuthenticationError, got ${String(e)}`);
  assert.equal(e.notify, 'AUTHENTICATION_FAILED');
  assert.match(e.message, re);
  return true;
};
const verifyDs = (sig: Uint8Array, key: KeyObject = e3.publicKey, algId = sha256WithRsa, opts?: VerifyOptions) =>
  verifySignatureAuth(AuthMethod.DIGITAL_SIGNATURE, ds(algId, sig), key, octets, opts);

/** What a 2006-era verifier did: skip 00 01 FF.. 00, parse one DigestInfo, ignore what follows. */
function laxDigest(em: Uint8Array): string | undefined {
  if (em[0] !== 0 || em[1] !== 1) return undefined;
  let i = 2;
  while (em[i] === 0xff) i++;
  if (em[i] !== 0) return undefined;
  try {
    const [alg, digest] = readAll(readTlv(em, i + 1).value);
    return alg && digest?.tag === 0x04 ? toHex(digest.value) : undefined;
  } catch { return undefined; }
}

test('control: the e = 3 key verifies a genuine sha256WithRSAEncryption AUTH, so refusals below are about the forgery', () => {
  const genuine = new Uint8Array(sign('sha256', octets, { key: e3.privateKey, padding: constants.RSA_PKCS1_PADDING }));
  assert.equal(verifyDs(genuine).name, 'sha256WithRSAEncryption');
  // The raw-RSA helper used for malformed encodings yields the same signature for the correct EM.
  assert.deepEqual(raw(e3.privateKey, emsa(digestInfo(SHA256_OID, sha256))), genuine);
});

test('CVE-2006-4339 / RFC 8017 §8.2.2: e = 3 cube-root forgery with garbage after the hash is refused', () => {
  // Why: the original Bleichenbacher'06 shape; an EM parser that stops after the DigestInfo accepts it.
  const prefix = concatBytes(fromHex('0001'), new Uint8Array(8).fill(0xff), fromHex('00'), digestInfo(SHA256_OID, sha256));
  const f = forge(prefix, new Uint8Array(0));
  assert.equal(laxDigest(f.em), toHex(sha256), 'a 2006-era verifier accepts this forgery');
  assert.throws(() => verifyDs(f.sig), refused(/sha256WithRSAEncryption signature did not verify/));
});

test('CVE-2006-4339 / RFC 8247 §3: the same forgery over SHA-1 with RSA_DIGITAL_SIGNATURE (1) is refused even with allowWeak', () => {
  // Why: allowSha1Rsa reopens the classic method for old peers; it must not reopen the 2006 forgery.
  const prefix = concatBytes(fromHex('0001'), new Uint8Array(8).fill(0xff), fromHex('00'), digestInfo(SHA1_OID, sha1));
  const f = forge(prefix, new Uint8Array(0));
  assert.equal(laxDigest(f.em), toHex(sha1));
  assert.throws(() => verifySignatureAuth(AuthMethod.RSA_DIGITAL_SIGNATURE, f.sig, e3.publicKey, octets, { allowSha1Rsa: true }), refused(/rsa-pkcs1-sha1 signature did not verify/));
});

test('CVE-2006-4340 / CVE-2016-1494 / RFC 8017 §9.2 step 5: e = 3 forgery with garbage in place of the FF padding, hash at the end, is refused', () => {
  // Why: verifiers that find the DigestInfo from the end (or skip PS without checking it) accept this.
  const f = forge(fromHex('0001ffff'), concatBytes(fromHex('00'), digestInfo(SHA256_OID, sha256)));
  assert.notEqual(toHex(f.em.subarray(2, EM_LEN - 52)), 'ff'.repeat(EM_LEN - 54), 'PS really is garbage');
  assert.throws(() => verifyDs(f.sig), refused(/did not verify/));
});

/** 00 01 FF×8 00 | DigestInfo header up to the garbage | garbage | 04 20 hash, lengths consistent. */
function asn1Forgery(shape: 'parameters' | 'after-oid'): { sig: Uint8Array; em: Uint8Array; garbage: number } {
  const head = concatBytes(fromHex('0001'), new Uint8Array(8).fill(0xff), fromHex('00'));
  const suffix = tlv(0x04, sha256);
  // With 0x81 lengths everywhere: head 11, two SEQUENCE headers 3 + 3, OID 11, [parameters header 3].
  const garbage = EM_LEN - head.length - 6 - 11 - (shape === 'parameters' ? 3 : 0) - suffix.length;
  const inner = shape === 'parameters' ? concatBytes(oid(SHA256_OID), fromHex(`0481${garbage.toString(16)}`)) : oid(SHA256_OID);
  const algLen = inner.length + garbage;
  const diLen = 3 + algLen + suffix.length;
  const prefix = concatBytes(head, fromHex(`3081${diLen.toString(16)}3081${algLen.toString(16)}`), inner);
  const f = forge(prefix, suffix);
  // A lenient DER walk finds SEQUENCE { SEQUENCE { sha256, <garbage> }, OCTET STRING hash } filling EM.
  const di = readTlv(f.em, 11);
  assert.equal(di.end, EM_LEN);
  const [alg, digest] = readAll(di.value);
  assert.equal(toHex(readTlv(alg!.value).value), SHA256_OID); // what follows the OID is not parsed
  assert.equal(toHex(digest!.value), toHex(sha256));
  return { ...f, garbage };
}

test('CVE-2018-16152 (strongSwan gmp plugin): e = 3 forgery hiding garbage in digestAlgorithm.parameters is refused', () => {
  const f = asn1Forgery('parameters');
  assert.ok(f.garbage > 150, `${f.garbage} octets of attacker-chosen parameters`);
  assert.throws(() => verifyDs(f.sig), refused(/did not verify/));
});

test('CVE-2018-16151 (strongSwan gmp plugin): e = 3 forgery with excess data after the digestAlgorithm OID is refused', () => {
  const f = asn1Forgery('after-oid');
  assert.throws(() => verifyDs(f.sig), refused(/did not verify/));
});

test('RFC 8017 §9.2: malformed EMSA-PKCS1-v1_5 encodings signed with the real private key are refused (the verifier compares encodings, it does not parse)', () => {
  // Why: these need no forgery, so only an exact comparison of EM with the expected encoding stops them.
  const di = digestInfo(SHA256_OID, sha256);
  const cases: Readonly<Record<string, Uint8Array>> = {
    'trailing garbage after the hash (CVE-2006-4339 shape)': emsa(di, fromHex('deadbeef')),
    'a padding octet other than FF': (() => { const em = emsa(di); em[100] = 0xfe; return em; })(),
    'block type 02 instead of 01': (() => { const em = emsa(di); em[1] = 2; return em; })(),
    'no 00 separator before the DigestInfo': concatBytes(fromHex('0001'), new Uint8Array(EM_LEN - 2 - di.length).fill(0xff), di),
    'wrong DigestInfo OID (SHA-512 naming a SHA-256 value)': emsa(digestInfo(SHA512_OID, sha256)),
    'wrong DigestInfo OID (SHA-1 naming a SHA-256 value)': emsa(digestInfo(SHA1_OID, sha256)),
    'parameters other than NULL (CVE-2018-16152 shape)': emsa(tlv(SEQUENCE, tlv(SEQUENCE, oid(SHA256_OID), tlv(0x04, fromHex('41414141'))), tlv(0x04, sha256))),
    'excess data after the OID (CVE-2018-16151 shape)': emsa(tlv(SEQUENCE, tlv(SEQUENCE, oid(SHA256_OID), NULL_DER, fromHex('4141')), tlv(0x04, sha256))),
    'long-form lengths (BER, CVE-2014-1568 "BERserk")': emsa(concatBytes(fromHex('308131'), tlv(SEQUENCE, oid(SHA256_OID), NULL_DER), fromHex('048120'), sha256)),
    'DigestInfo length one too long, one octet of garbage': emsa(concatBytes(fromHex('3032'), tlv(SEQUENCE, oid(SHA256_OID), NULL_DER), tlv(0x04, sha256), fromHex('00'))),
    'hash OCTET STRING with one extra octet': emsa(tlv(SEQUENCE, tlv(SEQUENCE, oid(SHA256_OID), NULL_DER), tlv(0x04, concatBytes(sha256, fromHex('00'))))),
    'truncated hash': emsa(tlv(SEQUENCE, tlv(SEQUENCE, oid(SHA256_OID), NULL_DER), tlv(0x04, sha256.subarray(0, 31)))),
    'correct SHA-512 DigestInfo under a sha256WithRSAEncryption AlgorithmIdentifier': emsa(digestInfo(SHA512_OID, new Uint8Array(createHash('sha512').update(octets).digest()))),
  };
  for (const [name, em] of Object.entries(cases)) {
    assert.equal(em.length, EM_LEN, name);
    for (const k of [rsa, e3]) assert.throws(() => verifyDs(raw(k.privateKey, em), k.publicKey), refused(/did not verify/), name);
  }
});

// --- RSASSA-PSS --------------------------------------------------------------------------

const PSS_OID = '2a864886f70d01010a'; const MGF1_OID = '2a864886f70d010108';
const hashAlg = (h: string): Uint8Array => tlv(SEQUENCE, oid(h), NULL_DER);
/** RSASSA-PSS AlgorithmIdentifier (RFC 4055 §3.1) with SHA-256 everywhere and `saltField` as [2]. */
const pssAlgId = (saltField: Uint8Array, h = SHA256_OID): Uint8Array => tlv(SEQUENCE, oid(PSS_OID), tlv(SEQUENCE,
  tlv(0xa0, hashAlg(h)), tlv(0xa1, tlv(SEQUENCE, oid(MGF1_OID), hashAlg(h))), tlv(0xa2, saltField)));
const pssSig = (saltLength: number, hash = 'sha256', key: KeyObject = rsa.privateKey): Uint8Array =>
  new Uint8Array(sign(hash, octets, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength }));

test('RFC 4055 §3.1 / RFC 8017 §9.1.1: huge RSASSA-PSS saltLength values are refused before any RSA work', () => {
  // Why: a salt length is a DER INTEGER of any size; it must not overflow, wrap or reach OpenSSL.
  const sig = new Uint8Array(EM_LEN).fill(1);
  const cases: Readonly<Record<string, [Uint8Array, RegExp]>> = {
    '2^32 - 1': [tlv(0x02, fromHex('00ffffffff')), /saltLength is not a small non-negative INTEGER/],
    '2^64': [tlv(0x02, fromHex('010000000000000000')), /saltLength is not a small non-negative INTEGER/],
    '2^24 - 1 (4 octets with the sign octet)': [tlv(0x02, fromHex('00ffffff')), /saltLength is not a small non-negative INTEGER/],
    '-1': [tlv(0x02, fromHex('ff')), /saltLength is not a small non-negative INTEGER/],
    'empty INTEGER': [tlv(0x02, new Uint8Array(0)), /saltLength is not a small non-negative INTEGER/],
    'OCTET STRING instead of INTEGER': [tlv(0x04, fromHex('20')), /saltLength is not a small non-negative INTEGER/],
    '65535': [tlv(0x02, fromHex('00ffff')), /salt length 65535 exceeds 222/],
    '8388607': [tlv(0x02, fromHex('7fffff')), /salt length 8388607 exceeds 222/],
  };
  for (const [name, [field, re]] of Object.entries(cases)) assert.throws(() => verifyDs(sig, rsa.publicKey, pssAlgId(field)), refused(re), name);
});

test('RFC 8017 §9.1.1: the salt bound follows the key and the hash (SHA-512: 2048-bit keys hold 190, 1024-bit keys none)', () => {
  assert.throws(() => verifyDs(new Uint8Array(EM_LEN), rsa.publicKey, pssAlgId(tlv(0x02, fromHex('00bf')), SHA512_OID)), refused(/salt length 191 exceeds 190/));
  assert.equal(verifyDs(pssSig(190, 'sha512'), rsa.publicKey, pssAlgId(tlv(0x02, fromHex('00be')), SHA512_OID)).name, 'rsassa-pss-sha512');
  const small = generateKeyPairSync('rsa', { modulusLength: 1024 });
  const withTrailer = tlv(SEQUENCE, oid(PSS_OID), tlv(SEQUENCE, tlv(0xa0, hashAlg(SHA512_OID)),
    tlv(0xa1, tlv(SEQUENCE, oid(MGF1_OID), hashAlg(SHA512_OID))), tlv(0xa2, smallInt(64)), tlv(0xa3, smallInt(1))));
  assert.throws(() => verifyDs(new Uint8Array(128), small.publicKey, withTrailer), refused(/salt length 64 exceeds 62/));
  // The RFC 7427 Appendix A.4 encoding (salt = hLen) is matched exactly and skips the bound; OpenSSL refuses it then.
  assert.throws(() => verifyDs(new Uint8Array(128).fill(1), small.publicKey, pssAlgId(smallInt(64), SHA512_OID)), refused(/did not verify/));
});

test('RFC 8017 §9.1.2 step 10: a PSS signature whose real salt length differs from the declared one is refused', () => {
  // Why: the declared saltLength is what we verify with (strongSwan and OpenSSL check it exactly);
  // "auto" salt detection would let the parameters say one thing and the signature another.
  const declared = (n: number): Uint8Array => pssAlgId(n < 128 ? smallInt(n) : tlv(0x02, fromHex(`00${n.toString(16)}`)));
  for (const [d, real] of [[32, 64], [64, 32], [32, 0], [222, 221], [48, 222]] as const)
    assert.throws(() => verifyDs(pssSig(real), rsa.publicKey, declared(d)), refused(/rsassa-pss-sha256 signature did not verify/), `declared ${d}, signed with ${real}`);
  // The exact-match RFC 7427 Appendix A.4 AlgorithmIdentifier (salt 32) is held to 32 as well.
  const fixed = schemeByName('rsassa-pss-sha256')!.algorithmIdentifier!;
  for (const real of [0, 20, 33, 222]) assert.throws(() => verifyDs(pssSig(real), rsa.publicKey, fixed), refused(/did not verify/), `fixed algId, signed with ${real}`);
  assert.equal(verifyDs(pssSig(32), rsa.publicKey, fixed).name, 'rsassa-pss-sha256');
});

test('RFC 7427 §3: a signature presented under the other RSA padding\'s AlgorithmIdentifier is refused', () => {
  const pss = schemeByName('rsassa-pss-sha256')!.algorithmIdentifier!;
  const pkcs1Sig = new Uint8Array(sign('sha256', octets, { key: rsa.privateKey, padding: constants.RSA_PKCS1_PADDING }));
  assert.throws(() => verifyDs(pkcs1Sig, rsa.publicKey, pss), refused(/did not verify/));
  assert.throws(() => verifyDs(pssSig(32), rsa.publicKey, sha256WithRsa), refused(/did not verify/));
});
