// strongSwan proposal syntax: parsing into transform sets, formatting back, the errors a user sees,
// the weak-algorithm gate and the RFC 8247 defaults.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ConfigError } from '../../../../src/common/errors.js';
import { DhId, EncrId, EsnId, IntegId, PrfId, TransformType as T } from '../../../../src/ike/constants.js';
import { DEFAULT_ESP_PROPOSALS, DEFAULT_IKE_PROPOSALS, defaultEspProposals, defaultIkeProposals, formatProposal, KEYWORDS, parseProposal, parseProposals } from '../../../../src/ike/policy/index.js';
import { encrAlg, prfAlg, integAlg, dhGroupInfo } from '../../../../src/ike/crypto/algorithms.js';

const configError = (re: RegExp) => (e: unknown): boolean => e instanceof ConfigError && e.code === 'ERR_CONFIG' && re.test(e.message);

test('parses aes256gcm16-prfsha384-x25519 into ENCR/PRF/DH transforms (IKE)', () => {
  const p = parseProposal('aes256gcm16-prfsha384-x25519', 'ike');
  assert.deepEqual(p, { protocol: 'ike', transforms: [
    { type: T.ENCR, id: EncrId.ENCR_AES_GCM_16, keyLength: 256 },
    { type: T.PRF, id: PrfId.PRF_HMAC_SHA2_384 },
    { type: T.DH, id: DhId.CURVE25519 },
  ] });
});

test('parses aes128-sha256-modp2048 and derives the PRF from the integrity algorithm (strongSwan)', () => {
  const p = parseProposal('aes128-sha256-modp2048', 'ike');
  assert.deepEqual(p.transforms, [
    { type: T.ENCR, id: EncrId.ENCR_AES_CBC, keyLength: 128 },
    { type: T.INTEG, id: IntegId.AUTH_HMAC_SHA2_256_128 },
    { type: T.PRF, id: PrfId.PRF_HMAC_SHA2_256 },
    { type: T.DH, id: DhId.MODP_2048 },
  ]);
});

test('parses chacha20poly1305-prfsha256-ecp256 (fixed key length: no KEY_LENGTH attribute)', () => {
  assert.deepEqual(parseProposal('chacha20poly1305-prfsha256-ecp256', 'ike').transforms, [
    { type: T.ENCR, id: EncrId.ENCR_CHACHA20_POLY1305 }, { type: T.PRF, id: PrfId.PRF_HMAC_SHA2_256 }, { type: T.DH, id: DhId.ECP_256 },
  ]);
});

test('ESP: a KE method means PFS, ESN defaults to noesn, -esn/-noesn are honoured', () => {
  assert.deepEqual(parseProposal('aes256gcm16-x25519', 'esp').transforms, [
    { type: T.ENCR, id: EncrId.ENCR_AES_GCM_16, keyLength: 256 }, { type: T.DH, id: DhId.CURVE25519 }, { type: T.ESN, id: EsnId.NO_ESN },
  ]);
  assert.deepEqual(parseProposal('aes128-sha256-esn', 'esp').transforms.filter((t) => t.type === T.ESN), [{ type: T.ESN, id: EsnId.ESN }]);
  assert.deepEqual(parseProposal('aes128-sha256-esn-noesn', 'esp').transforms.filter((t) => t.type === T.ESN).map((t) => t.id), [EsnId.ESN, EsnId.NO_ESN]);
});

test('several algorithms of one kind keep their order; kinds may be interleaved (strongSwan docs example)', () => {
  const a = parseProposal('aes256gcm16-aes192gcm16-prfsha384-prfsha256-ecp384-modp3072', 'ike');
  const b = parseProposal('aes256gcm16-prfsha384-ecp384-aes192gcm16-prfsha256-modp3072', 'ike');
  assert.deepEqual(a, b);
  assert.deepEqual(a.transforms.filter((t) => t.type === T.ENCR).map((t) => t.keyLength), [256, 192]);
});

test('aliases are accepted and formatted canonically', () => {
  assert.equal(formatProposal(parseProposal('AES-SHA2_256-CURVE25519', 'ike')), 'aes128-sha256-prfsha256-x25519');
  assert.equal(formatProposal(parseProposal('aes256gcm128-prfsha256-modp2048', 'ike')), 'aes256gcm16-prfsha256-modp2048');
});

test('errors name the bad token', () => {
  assert.throws(() => parseProposal('aes257-sha256-modp2048', 'ike', { path: 'spec.ike.proposals[0]' }), configError(/^spec\.ike\.proposals\[0\]: unknown transform "aes257"/));
  assert.throws(() => parseProposal('aes128--sha256', 'ike'), configError(/empty transform/));
  assert.throws(() => parseProposal('modp8192-aes128-sha256', 'ike'), configError(/"modp8192" is not supported/));
  assert.throws(() => parseProposals(['aes128-sha256-x25519', 'aes128-shaa'], 'ike', { path: 'spec.ike.proposals' }), configError(/proposals\[1\]: unknown transform "shaa"/));
});

test('structural errors: missing pieces, AEAD mixed with CBC or with integrity, PRF in ESP, ESN in IKE', () => {
  assert.throws(() => parseProposal('sha256-modp2048', 'ike'), configError(/no encryption/));
  assert.throws(() => parseProposal('aes128-modp2048', 'ike'), configError(/needs an integrity/));
  assert.throws(() => parseProposal('aes128gcm16-x25519', 'ike'), configError(/needs a PRF/));
  assert.throws(() => parseProposal('aes128-sha256', 'ike'), configError(/needs a key exchange/));
  assert.throws(() => parseProposal('aes128gcm16-aes128-sha256-x25519', 'ike'), configError(/mixes AEAD/));
  assert.throws(() => parseProposal('aes128gcm16-sha256-prfsha256-x25519', 'ike'), configError(/AEAD encryption with an integrity/));
  assert.throws(() => parseProposal('aes128gcm16-prfsha256', 'esp'), configError(/only valid in IKE/));
  assert.throws(() => parseProposal('aes128-sha256-x25519-esn', 'ike'), configError(/only valid in ESP/));
});

test('weak algorithms are refused unless allowWeak; DES, NULL and RFC 5114 groups always (RFC 8247)', () => {
  for (const p of ['3des-sha256-modp2048', 'aes128-md5-modp2048', 'aes128-sha256-modp1024', 'aes128-sha256-modp1536', 'aes128-sha256-modp768', 'aes128-sha256-prfmd5-x25519'])
    assert.throws(() => parseProposal(p, 'ike'), configError(/is weak \(RFC 8247\)/), p);
  assert.equal(formatProposal(parseProposal('3des-sha1-modp1024', 'ike', { allowWeak: true })), '3des-sha1-prfsha1-modp1024');
  for (const p of ['des-sha256-modp2048', 'null-sha256-modp2048', 'aes128-sha256-modp2048s256', 'aes128-sha256-modp1024s160'])
    assert.throws(() => parseProposal(p, 'ike', { allowWeak: true }), configError(/insecure and not implemented/), p);
});

test('SHA-1 is accepted when written explicitly but never appears in the defaults', () => {
  assert.equal(formatProposal(parseProposal('aes128-sha1-modp2048', 'ike')), 'aes128-sha1-prfsha1-modp2048');
  for (const p of [...defaultIkeProposals(), ...defaultEspProposals()])
    assert.ok(!p.transforms.some((t) => t.id === IntegId.AUTH_HMAC_SHA1_96 && t.type === T.INTEG || t.id === PrfId.PRF_HMAC_SHA1 && t.type === T.PRF));
});

test('defaults follow RFC 8247/8221: AEAD first, only implemented non-weak algorithms, MODP-2048 present', () => {
  const ike = defaultIkeProposals(); const esp = defaultEspProposals();
  assert.equal(ike.length, DEFAULT_IKE_PROPOSALS.length); assert.equal(esp.length, DEFAULT_ESP_PROPOSALS.length);
  assert.equal(ike[0]!.transforms[0]!.id, EncrId.ENCR_AES_GCM_16);
  assert.ok(ike.every((p) => p.transforms.some((t) => t.type === T.DH && t.id === DhId.MODP_2048)));
  for (const p of [...ike, ...esp]) for (const t of p.transforms) {
    if (t.type === T.ENCR) assert.equal(encrAlg(t.id, t.keyLength).weak, false);
    if (t.type === T.PRF) assert.equal(prfAlg(t.id).weak, false);
    if (t.type === T.INTEG) assert.equal(integAlg(t.id).weak, false);
    if (t.type === T.DH) assert.equal(dhGroupInfo(t.id).weak, false);
  }
  assert.ok(esp.every((p) => !p.transforms.some((t) => t.type === T.DH)));
});

test('every "ok" keyword is implemented by the crypto layer', () => {
  for (const k of KEYWORDS.filter((x) => x.status === 'ok' || x.status === 'weak')) {
    if (k.type === T.ENCR) encrAlg(k.id, k.keyLength);
    if (k.type === T.PRF) prfAlg(k.id);
    if (k.type === T.INTEG) integAlg(k.id);
    if (k.type === T.DH) dhGroupInfo(k.id, true);
  }
});

test('format(parse(s)) is a fixed point and parse(format(p)) == p for random valid proposals', () => {
  const enc = ['aes128', 'aes192', 'aes256']; const aead = ['aes128gcm16', 'aes256gcm16', 'chacha20poly1305'];
  const integ = ['sha1', 'sha256', 'sha384', 'sha512']; const prf = ['prfsha256', 'prfsha384', 'prfsha512'];
  const dh = ['modp2048', 'modp3072', 'modp4096', 'ecp256', 'ecp384', 'ecp521', 'x25519'];
  const sub = (xs: string[]) => fc.uniqueArray(fc.constantFrom(...xs), { minLength: 1, maxLength: xs.length });
  const ikeArb = fc.oneof(
    fc.tuple(sub(aead), sub(prf), sub(dh)).map(([a, b, c]) => [...a, ...b, ...c]),
    fc.tuple(sub(enc), sub(integ), sub(dh)).map(([a, b, c]) => [...a, ...b, ...c]));
  fc.assert(fc.property(ikeArb, fc.boolean(), (tokens, shuffle) => {
    const text = (shuffle ? [...tokens].reverse() : tokens).join('-');
    const p = parseProposal(text, 'ike');
    const s = formatProposal(p);
    assert.deepEqual(parseProposal(s, 'ike'), p);
    assert.equal(formatProposal(parseProposal(s, 'ike')), s);
  }), { numRuns: 300 });
  const espArb = fc.tuple(fc.oneof(sub(aead), fc.tuple(sub(enc), sub(integ)).map(([a, b]) => [...a, ...b])), fc.uniqueArray(fc.constantFrom(...dh), { maxLength: 2 }), fc.constantFrom([], ['esn'], ['noesn'], ['esn', 'noesn']))
    .map(([a, b, c]) => [...a, ...b, ...c]);
  fc.assert(fc.property(espArb, (tokens) => {
    const p = parseProposal(tokens.join('-'), 'esp');
    assert.deepEqual(parseProposal(formatProposal(p), 'esp'), p);
  }), { numRuns: 300 });
});

test('arbitrary strings only ever produce ConfigError', () => {
  fc.assert(fc.property(fc.string({ maxLength: 60 }), fc.constantFrom('ike' as const, 'esp' as const), (s, proto) => {
    try { parseProposal(s, proto); } catch (e) { assert.ok(e instanceof ConfigError, String(e)); }
  }), { numRuns: 500 });
});
