// Peer certificates an IKE responder or initiator must refuse (validateCertificateChain and
// matchIdentity, as verifyPeerAuth in steps/ike-auth.ts calls them): paths over the depth
// limit, CERT payloads over the count and size limits, wrong keyUsage / extendedKeyUsage, unknown
// critical extensions, certificates outside their validity period, and IKE identities the
// certificate does not carry. Every refusal is a CertificateError (AUTHENTICATION_FAILED) with its
// own code; the accepting cases next to them show the limit is where the test says it is.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { concatBytes, fromHex } from '../../../../src/common/bytes.js';
import { IdType } from '../../../../src/ike/constants.js';
import { MAX_CHAIN_BYTES, MAX_CHAIN_CERTIFICATES, matchIdentity, validateCertificateChain, type ChainInput } from '../../../../src/ike/crypto/certs.js';
import { oid, SEQUENCE, tlv } from '../../../../src/ike/crypto/der.js';
import { CertificateError, type CertificateErrorCode } from '../../../../src/ike/crypto/errors.js';
import { parseCertificate } from '../../../../src/ike/crypto/x509.js';
import { createCa, createCsr, generateKeyPair, parseCsr, signNodeCertificate } from '../../../../src/pki/index.js';
import { buildCert, dn, ext, type CertSpec } from './cert-builder.js';

const SEC = 1000; const DAY = 86_400_000;
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const now = Date.UTC(2026, 10, 27, 12);
const base = { notBeforeMs: now - DAY, notAfterMs: now + 30 * DAY };
const keys = (): { publicKey: KeyObject; privateKey: KeyObject } => generateKeyPairSync('ec', { namedCurve: 'prime256v1' });

const KU = { digitalSignature: 0, nonRepudiation: 1, keyEncipherment: 2, dataEncipherment: 3, keyAgreement: 4, keyCertSign: 5, cRLSign: 6 } as const;
const EKU = {
  serverAuth: '2b06010505070301', clientAuth: '2b06010505070302', codeSigning: '2b06010505070303', emailProtection: '2b06010505070304',
  ipsecIKE: '2b06010505070311', anyExtendedKeyUsage: '551d2500', iKEIntermediate: '2b06010505080202',
} as const;

const caK = keys(); const interK = keys(); const eeK = keys();
const CA = dn('root CA'); const INTER = dn('intermediate CA'); const EE = dn('node-1');
const caSpec: CertSpec = { ...base, subject: CA, issuer: CA, publicKey: caK.publicKey, signingKey: caK.privateKey, ca: true, keyUsage: [KU.keyCertSign, KU.cRLSign] };
const interSpec: CertSpec = { ...base, subject: INTER, issuer: CA, publicKey: interK.publicKey, signingKey: caK.privateKey, ca: true, keyUsage: [KU.keyCertSign] };
const eeSpec: CertSpec = {
  ...base, subject: EE, issuer: INTER, publicKey: eeK.publicKey, signingKey: interK.privateKey, keyUsage: [KU.digitalSignature],
  dns: ['node-1.example.com'], ip: [fromHex('c0000201'), fromHex('20010db8000000000000000000000001')], email: ['ops@example.com'],
};
const caDer = buildCert(caSpec); const interDer = buildCert(interSpec); const eeDer = buildCert(eeSpec);

const chain = (over: Partial<ChainInput> = {}): ReturnType<typeof validateCertificateChain> =>
  validateCertificateChain({ endEntity: eeDer, intermediates: [interDer], trustAnchors: [caDer], nowMs: now, ...over });

/** CertificateError with `code` (and AUTHENTICATION_FAILED), whose message matches `re` if given. */
const refused = (code: CertificateErrorCode, re?: RegExp) => (e: unknown): boolean => {
  assert.ok(e instanceof CertificateError, `want CertificateError ${code}, got ${String(e)}`);
  assert.equal(e.code, code, e.message);
  assert.equal(e.notify, 'AUTHENTICATION_FAILED');
  if (re) assert.match(e.message, re);
  return true;
};

test('control: the path end entity -> intermediate -> CA validates', () => {
  assert.equal(chain().path.length, 3);
});

// --- depth and size -------------------------------------------------------------------------

/** CA -> I1 -> ... -> In -> end entity, fresh keys; intermediates returned end-entity side first. */
function longChain(n: number): { ee: Uint8Array; inters: Uint8Array[] } {
  let issuer = CA; let issuerKey = caK.privateKey;
  const inters: Uint8Array[] = [];
  for (let i = 1; i <= n; i++) {
    const k = keys(); const name = dn(`intermediate ${i}`);
    inters.unshift(buildCert({ ...base, subject: name, issuer, publicKey: k.publicKey, signingKey: issuerKey, ca: true, keyUsage: [KU.keyCertSign] }));
    issuer = name; issuerKey = k.privateKey;
  }
  return { ee: buildCert({ ...eeSpec, issuer, signingKey: issuerKey }), inters };
}

test('RFC 5280 §6.1 / strongSwan MAX_TRUST_PATH_LEN: a path longer than 8 certificates (6 intermediates) is refused, naming the limit', () => {
  // Why: the peer chooses how many intermediates to send; each level costs signature checks.
  const ok = longChain(6);
  assert.equal(chain({ endEntity: ok.ee, intermediates: [...ok.inters].reverse() }).path.length, 8);
  const tooLong = longChain(7);
  assert.throws(() => chain({ endEntity: tooLong.ee, intermediates: tooLong.inters }), refused('ERR_IKE_CERT_CHAIN_TOO_LONG', /within 8 certificates/));
});

test('RFC 5280 §6.1: a CA cycle (A issued B, B issued A) ends at the depth limit or as untrusted, never loops', () => {
  const aK = keys(); const bK = keys(); const A = dn('cycle A'); const B = dn('cycle B');
  const a = buildCert({ ...base, subject: A, issuer: B, publicKey: aK.publicKey, signingKey: bK.privateKey, ca: true });
  const b = buildCert({ ...base, subject: B, issuer: A, publicKey: bK.publicKey, signingKey: aK.privateKey, ca: true });
  const a2 = buildCert({ ...base, subject: A, issuer: B, publicKey: aK.publicKey, signingKey: bK.privateKey, ca: true, serial: 2 });
  const ee = buildCert({ ...eeSpec, issuer: A, signingKey: aK.privateKey });
  assert.throws(() => chain({ endEntity: ee, intermediates: [a, b, a2] }), (e: unknown) => e instanceof CertificateError && (e.code === 'ERR_IKE_CERT_UNTRUSTED' || e.code === 'ERR_IKE_CERT_CHAIN_TOO_LONG'));
});

/** A self-issued CA certificate carrying `sanBytes` of DNS names: ballast the path never uses. */
function junk(i: number, sanBytes = 0): Uint8Array {
  const k = keys();
  const dns = Array.from({ length: Math.ceil(sanBytes / 64) }, (_, j) => `${'x'.repeat(40)}-${i}-${String(j).padStart(6, '0')}.example.com`);
  return buildCert({ ...base, subject: dn(`junk ${i}`), issuer: dn(`junk ${i}`), publicKey: k.publicKey, signingKey: k.privateKey, ca: true, dns });
}

test(`RFC 7296 §3.6 hardening: more than ${MAX_CHAIN_CERTIFICATES} CERT payloads are refused before any parsing, naming the limit`, () => {
  // Why: RFC 7383 fragments let an unauthenticated peer send 256 KiB of CERT payloads; each one
  // was parsed and every same-named one signature-checked at each level of the path.
  assert.equal(MAX_CHAIN_CERTIFICATES, 16);
  const fill = Array.from({ length: MAX_CHAIN_CERTIFICATES - 2 }, (_, i) => junk(i));
  assert.equal(chain({ intermediates: [interDer, ...fill] }).path.length, 3, 'end entity + 15 intermediates is at the limit');
  assert.throws(() => chain({ intermediates: [interDer, ...fill, junk(99)] }), refused('ERR_IKE_CERT_CHAIN_TOO_BIG', new RegExp(`17 certificates, at most ${MAX_CHAIN_CERTIFICATES}`)));
  // Garbage counts too: the limit is checked before anything is parsed.
  assert.throws(() => chain({ intermediates: [interDer, ...Array.from({ length: 100 }, () => new Uint8Array([0x30, 0x00]))] }), refused('ERR_IKE_CERT_CHAIN_TOO_BIG'));
});

test(`RFC 7296 §3.6 hardening: CERT payloads totalling more than ${MAX_CHAIN_BYTES} octets are refused, naming the limit`, () => {
  assert.equal(MAX_CHAIN_BYTES, 65_536);
  const big = [junk(1, 20_000), junk(2, 20_000), junk(3, 20_000), junk(4, 8_000)];
  const total = [eeDer, interDer, ...big].reduce((n, c) => n + c.length, 0);
  assert.ok(total > MAX_CHAIN_BYTES && big.length + 2 <= MAX_CHAIN_CERTIFICATES, `${total} octets in ${big.length + 2} certificates`);
  assert.throws(() => chain({ intermediates: [interDer, ...big] }), refused('ERR_IKE_CERT_CHAIN_TOO_BIG', new RegExp(`${total} octets, at most ${MAX_CHAIN_BYTES}`)));
  assert.equal(chain({ intermediates: [interDer, ...big.slice(0, 2)] }).path.length, 3, 'about 45 KiB of certificates still validate');
});

// --- key usage ------------------------------------------------------------------------------

test('RFC 5280 §4.2.1.3: a CA whose keyUsage lacks keyCertSign cannot issue, intermediate or trust anchor', () => {
  const interNoSign = buildCert({ ...interSpec, keyUsage: [KU.digitalSignature, KU.cRLSign] });
  assert.throws(() => chain({ intermediates: [interNoSign] }), refused('ERR_IKE_CERT_KEY_USAGE', /keyCertSign/));
  const caNoSign = buildCert({ ...caSpec, keyUsage: [KU.cRLSign] });
  assert.throws(() => chain({ trustAnchors: [caNoSign] }), refused('ERR_IKE_CERT_KEY_USAGE', /keyCertSign/));
});

test('RFC 4945 §5.1.3.2: an end entity whose keyUsage has neither digitalSignature nor nonRepudiation is refused', () => {
  for (const ku of [[KU.keyCertSign], [KU.keyAgreement], [KU.keyEncipherment, KU.dataEncipherment], [KU.cRLSign]]) {
    const ee = buildCert({ ...eeSpec, keyUsage: ku });
    assert.throws(() => chain({ endEntity: ee }), refused('ERR_IKE_CERT_KEY_USAGE', /digitalSignature/), `keyUsage ${ku.join(',')}`);
  }
  // nonRepudiation alone is enough (RFC 4945 §5.1.3.2), and an absent keyUsage allows everything.
  assert.equal(chain({ endEntity: buildCert({ ...eeSpec, keyUsage: [KU.nonRepudiation] }) }).path.length, 3);
  const { keyUsage: _omit, ...noKeyUsage } = eeSpec;
  assert.equal(chain({ endEntity: buildCert(noKeyUsage) }).path.length, 3);
});

test('RFC 5280 §4.2.1.12 / RFC 4945 §5.1.3.12: an end entity whose extendedKeyUsage names only other purposes is refused', () => {
  // Why: "If the extension is present, then the certificate MUST only be used for one of the
  // purposes indicated" — a code-signing or S/MIME certificate from the same CA is not an IKE identity.
  for (const eku of [[EKU.codeSigning], [EKU.emailProtection], [EKU.codeSigning, EKU.emailProtection]]) {
    assert.throws(() => chain({ endEntity: buildCert({ ...eeSpec, eku }) }), refused('ERR_IKE_CERT_KEY_USAGE', /extendedKeyUsage/), `EKU ${eku.join(',')}`);
    assert.throws(() => chain({ endEntity: buildCert({ ...eeSpec, eku, ekuCritical: true }) }), refused('ERR_IKE_CERT_KEY_USAGE', /extendedKeyUsage/), `critical EKU ${eku.join(',')}`);
  }
});

test('RFC 4945 §5.1.3.12: ipsecIKE and anyExtendedKeyUsage are accepted, and serverAuth/clientAuth as strongSwan and our own CA issue them', () => {
  // Why: kipsec's node certificates (src/pki/certs.ts) carry serverAuth + clientAuth; Windows and
  // macOS clients want serverAuth (or iKEIntermediate) on gateway certificates.
  for (const eku of [[EKU.ipsecIKE], [EKU.anyExtendedKeyUsage], [EKU.serverAuth], [EKU.clientAuth], [EKU.serverAuth, EKU.clientAuth], [EKU.iKEIntermediate], [EKU.codeSigning, EKU.ipsecIKE]]) {
    assert.equal(chain({ endEntity: buildCert({ ...eeSpec, eku }) }).path.length, 3, `EKU ${eku.join(',')}`);
    assert.equal(chain({ endEntity: buildCert({ ...eeSpec, eku, ekuCritical: true }) }).path.length, 3, `critical EKU ${eku.join(',')}`);
  }
});

test('RFC 5280 §4.2: a critical extension we do not process is refused on the end entity and on intermediates', () => {
  // Why: a critical nameConstraints on an intermediate limits what it may issue; ignoring it would
  // accept a certificate for any name. RFC 5280 says to reject what we cannot process.
  const unknownCritical = ext('2a0304', true, fromHex('0500'));
  assert.throws(() => chain({ endEntity: buildCert({ ...eeSpec, extraExtensions: [unknownCritical] }) }), refused('ERR_IKE_CERT_UNSUPPORTED_CRITICAL', /critical extension 1\.2\.3\.4/));
  const nameConstraints = ext('551d1e', true, tlv(SEQUENCE, tlv(0xa0, tlv(SEQUENCE, tlv(0x80 | 0x02, new TextEncoder().encode('.corp.example'))))));
  assert.throws(() => chain({ intermediates: [buildCert({ ...interSpec, extraExtensions: [nameConstraints] })] }), refused('ERR_IKE_CERT_UNSUPPORTED_CRITICAL', /critical extension 2\.5\.29\.30/));
  // The same extensions, not critical, are ignored; so are critical ones we do process.
  assert.equal(chain({ endEntity: buildCert({ ...eeSpec, extraExtensions: [ext('2a0304', false, fromHex('0500'))] }) }).path.length, 3);
  const critSan = buildCert({ ...eeSpec, subject: tlv(SEQUENCE), sanCritical: true, eku: [EKU.serverAuth], ekuCritical: true });
  assert.equal(chain({ endEntity: critSan }).path.length, 3, 'critical subjectAltName with an empty subject (RFC 5280 §4.2.1.6)');
  const ski = ext('551d0e', false, tlv(0x04, new Uint8Array(20).fill(7)));
  assert.equal(chain({ intermediates: [buildCert({ ...interSpec, extraExtensions: [ski] })] }).path.length, 3);
});

test('control: node certificates from our own CA (src/pki, @peculiar/x509) pass the extendedKeyUsage and critical-extension checks', async () => {
  // Why: the node certificate carries EKU serverAuth + clientAuth and critical basicConstraints
  // and keyUsage; the CA a critical basicConstraints with pathLen 0. These rules must not lock out the mesh.
  const ca = await createCa(await generateKeyPair(), 'kipsec cluster CA', now);
  const csr = await parseCsr(await createCsr(await generateKeyPair(), 'worker-1', ['192.0.2.9']));
  const node = await signNodeCertificate(ca, csr, { nowMs: now, dnsNames: ['worker-1'], ipAddresses: ['192.0.2.9'] });
  const v = validateCertificateChain({ endEntity: new Uint8Array(node.rawData), trustAnchors: [new Uint8Array(ca.cert.rawData)], nowMs: now });
  assert.deepEqual([...(v.endEntity.extKeyUsage ?? [])], [EKU.serverAuth, EKU.clientAuth]);
  matchIdentity(v.endEntity, IdType.ID_IPV4_ADDR, fromHex('c0000209'));
  matchIdentity(v.endEntity, IdType.ID_FQDN, enc('worker-1'));
});

// --- signature algorithms on the path -------------------------------------------------------

test('RFC 6151 / RFC 8247 §3: a certificate on the path signed with MD5 or SHA-1 is refused; SHA-1 only with allowSha1', () => {
  // Why: node's X509Certificate.verify is OpenSSL's X509_verify, which applies no security level,
  // so a chosen-prefix collision (the 2008 MD5 rogue CA, SHA-1 "Shambles" 2020) would be trusted.
  const rsaCa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const anchor = buildCert({ ...caSpec, publicKey: rsaCa.publicKey, signingKey: rsaCa.privateKey, sigHash: 'sha1' });
  const interBy = (sigHash: 'sha256' | 'sha1' | 'md5'): Uint8Array => buildCert({ ...interSpec, signingKey: rsaCa.privateKey, sigHash });
  const run = (inter: Uint8Array, endEntity = eeDer, allowSha1?: boolean) =>
    chain({ endEntity, intermediates: [inter], trustAnchors: [anchor], ...(allowSha1 === undefined ? {} : { allowSha1 }) });
  // The anchor's own SHA-1 self-signature is not relied on (RFC 5280 §6.1.1: it is an input).
  assert.equal(run(interBy('sha256')).path.length, 3);
  assert.throws(() => run(interBy('md5')), refused('ERR_IKE_CERT_WEAK_SIGNATURE', /intermediate CA.*md5WithRSAEncryption/));
  assert.throws(() => run(interBy('md5'), eeDer, true), refused('ERR_IKE_CERT_WEAK_SIGNATURE', /md5WithRSAEncryption/));
  assert.throws(() => run(interBy('sha1')), refused('ERR_IKE_CERT_WEAK_SIGNATURE', /sha1WithRSAEncryption/));
  assert.equal(run(interBy('sha1'), eeDer, true).path.length, 3, 'allowWeak profiles accept SHA-1');
  const eeSha1 = buildCert({ ...eeSpec, sigHash: 'sha1' });
  assert.throws(() => run(interBy('sha256'), eeSha1), refused('ERR_IKE_CERT_WEAK_SIGNATURE', /node-1.*ecdsa-with-SHA1/));
});

// --- validity -------------------------------------------------------------------------------

test('RFC 5280 §4.1.2.5: expired and not-yet-valid end entity and intermediate are refused; the bounds are inclusive', () => {
  const eeAt = (nb: number, na: number): Uint8Array => buildCert({ ...eeSpec, notBeforeMs: nb, notAfterMs: na });
  const interAt = (nb: number, na: number): Uint8Array => buildCert({ ...interSpec, notBeforeMs: nb, notAfterMs: na });
  assert.throws(() => chain({ endEntity: eeAt(now - 10 * DAY, now - SEC) }), refused('ERR_IKE_CERT_EXPIRED', /"CN=node-1|node-1/));
  assert.throws(() => chain({ endEntity: eeAt(now + SEC, now + DAY) }), refused('ERR_IKE_CERT_NOT_YET_VALID'));
  assert.throws(() => chain({ intermediates: [interAt(now - 10 * DAY, now - SEC)] }), refused('ERR_IKE_CERT_EXPIRED', /intermediate CA/));
  assert.throws(() => chain({ intermediates: [interAt(now + SEC, now + DAY)] }), refused('ERR_IKE_CERT_NOT_YET_VALID', /intermediate CA/));
  assert.throws(() => chain({ trustAnchors: [buildCert({ ...caSpec, notAfterMs: now - SEC })] }), refused('ERR_IKE_CERT_EXPIRED', /root CA/));
  // notBefore and notAfter themselves are inside the period.
  assert.equal(chain({ endEntity: eeAt(now, now + DAY) }).path.length, 3);
  assert.equal(chain({ endEntity: eeAt(now - DAY, now) }).path.length, 3);
});

test('RFC 5280 §4.1.2.5: an expired end entity is refused even when a valid one with the same key and name exists', () => {
  // Why: the old certificate is what a peer presents after its renewal failed; nothing else may rescue it.
  const expired = buildCert({ ...eeSpec, notBeforeMs: now - 10 * DAY, notAfterMs: now - SEC, serial: 2 });
  assert.throws(() => chain({ endEntity: expired, intermediates: [interDer, eeDer] }), refused('ERR_IKE_CERT_EXPIRED'));
});

// --- identity -------------------------------------------------------------------------------

const ee = parseCertificate(eeDer);
const mismatch = refused('ERR_IKE_CERT_ID_MISMATCH');

test('RFC 7296 §3.5 / RFC 4945 §3.1.2: ID_FQDN must be a dNSName SAN, exactly', () => {
  matchIdentity(ee, IdType.ID_FQDN, enc('node-1.example.com'));
  for (const id of ['node-2.example.com', 'example.com', 'x.node-1.example.com', 'node-1', '', 'node-1.example.com.evil', 'node-1.example.com\0.evil.org', 'ops@example.com', '192.0.2.1'])
    assert.throws(() => matchIdentity(ee, IdType.ID_FQDN, enc(id)), mismatch, JSON.stringify(id));
  // The ID is what AUTH signs and what we record as the peer: octets beside the name do not
  // match it, though OpenSSL's X509_check_host ignores a trailing NUL and TextDecoder a BOM.
  for (const id of ['node-1.example.com\0', '\ufeffnode-1.example.com', 'node-1.example.com ', ' node-1.example.com', 'node-1.example.com\n'])
    assert.throws(() => matchIdentity(ee, IdType.ID_FQDN, enc(id)), refused('ERR_IKE_CERT_ID_MISMATCH', /octet 0x/), JSON.stringify(id));
  // A wildcard SAN does not stand for a concrete name (we match with wildcards off).
  const wild = parseCertificate(buildCert({ ...eeSpec, dns: ['*.example.com'] }));
  assert.throws(() => matchIdentity(wild, IdType.ID_FQDN, enc('node-1.example.com')), mismatch);
  // CVE-2009-2408 shape: a SAN with an embedded NUL does not match its prefix.
  const nul = parseCertificate(buildCert({ ...eeSpec, dns: ['node-1.example.com\0.attacker.org'] }));
  assert.throws(() => matchIdentity(nul, IdType.ID_FQDN, enc('node-1.example.com')), mismatch);
  // The subject CN is never consulted (RFC 4945 §3.1.2: the FQDN is in subjectAltName).
  const cnOnly = parseCertificate(buildCert({ ...eeSpec, subject: dn('gw.example.com'), dns: [] }));
  assert.throws(() => matchIdentity(cnOnly, IdType.ID_FQDN, enc('gw.example.com')), mismatch);
});

test('RFC 4945 §3.1.3: ID_RFC822_ADDR must be an rfc822Name SAN', () => {
  matchIdentity(ee, IdType.ID_RFC822_ADDR, enc('ops@example.com'));
  for (const id of ['root@example.com', 'ops@example.org', 'example.com', 'ops@example.com\0x', 'ops@example.com\0', '\ufeffops@example.com', 'node-1.example.com'])
    assert.throws(() => matchIdentity(ee, IdType.ID_RFC822_ADDR, enc(id)), mismatch, JSON.stringify(id));
});

test('RFC 4945 §3.1.1: ID_IPV4_ADDR / ID_IPV6_ADDR must be an iPAddress SAN of that family, with the right length', () => {
  matchIdentity(ee, IdType.ID_IPV4_ADDR, fromHex('c0000201'));
  matchIdentity(ee, IdType.ID_IPV6_ADDR, fromHex('20010db8000000000000000000000001'));
  assert.throws(() => matchIdentity(ee, IdType.ID_IPV4_ADDR, fromHex('c0000202')), mismatch);
  assert.throws(() => matchIdentity(ee, IdType.ID_IPV4_ADDR, fromHex('c000020100')), mismatch, 'five octets');
  assert.throws(() => matchIdentity(ee, IdType.ID_IPV6_ADDR, fromHex('c0000201')), mismatch, 'IPv4 octets as ID_IPV6_ADDR');
  assert.throws(() => matchIdentity(ee, IdType.ID_IPV6_ADDR, fromHex('00000000000000000000ffffc0000201')), mismatch, 'IPv4-mapped IPv6');
  // An address written as a dNSName is not an iPAddress.
  const asDns = parseCertificate(buildCert({ ...eeSpec, dns: ['192.0.2.7'], ip: [] }));
  assert.throws(() => matchIdentity(asDns, IdType.ID_IPV4_ADDR, fromHex('c0000207')), mismatch);
});

test('RFC 4945 §3.1.5: ID_DER_ASN1_DN must equal the subject (binary comparison); issuer DN, reordered or re-encoded DNs do not', () => {
  matchIdentity(ee, IdType.ID_DER_ASN1_DN, EE);
  const atv = (o: string, tag: number, v: string): Uint8Array => tlv(0x31, tlv(SEQUENCE, oid(o), tlv(tag, enc(v))));
  const cases: Readonly<Record<string, Uint8Array>> = {
    'issuer DN': INTER,
    'attributes reordered': tlv(SEQUENCE, atv('550403', 0x0c, 'node-1'), atv('55040a', 0x0c, 'kipsec test')),
    'PrintableString instead of UTF8String': tlv(SEQUENCE, atv('55040a', 0x13, 'kipsec test'), atv('550403', 0x13, 'node-1')),
    'subject with trailing garbage': concatBytes(EE, fromHex('00')),
    'subject truncated': EE.subarray(0, EE.length - 1),
    'empty DN': tlv(SEQUENCE),
  };
  for (const [name, id] of Object.entries(cases)) assert.throws(() => matchIdentity(ee, IdType.ID_DER_ASN1_DN, id), mismatch, name);
});

test('RFC 4945 §3.1.6-3.1.7: ID_KEY_ID and unknown ID types cannot be bound to a certificate and are refused', () => {
  assert.throws(() => matchIdentity(ee, IdType.ID_KEY_ID, enc('node-1')), mismatch);
  assert.throws(() => matchIdentity(ee, 250, enc('node-1.example.com')), mismatch);
});
