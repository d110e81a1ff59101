// Node identity PKI (DESIGN.md §4): P-256 keys in 0600 files, CSRs with the node's SAN, a
// self-signed CA, 24 h node certificates, verification against a bundle of one or two CAs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { statSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { inspect } from 'node:util';
import {
  certFingerprint, certificateSans, createCa, createCsr, generateKeyPair, parseCsr, readKeyFile, renewAtMs,
  signNodeCertificate, verifyCertificate, writeKeyFile, PkiError, parseBundle, toPem,
} from '../../../src/pki/index.js';
import { scratchDir } from '../../lib/tmp.js';

const NOW = Date.UTC(2026, 0, 1);

test('key file is written with mode 0600, read back, and refused when group/world readable', async () => {
  const dir = scratchDir('kipsec-pki-');
  const k = await generateKeyPair();
  const p = join(dir, 'node.key');
  await writeKeyFile(p, k);
  assert.equal(statSync(p).mode & 0o777, 0o600);
  const back = await readKeyFile(p);
  const csr = await parseCsr(await createCsr(back, 'n1'));
  assert.equal(csr.commonName, 'n1');
  chmodSync(p, 0o644);
  await assert.rejects(readKeyFile(p), (e: unknown) => e instanceof PkiError && e.code === 'ERR_PKI_KEY_FILE_MODE');
});

test('key pairs never print their private half', async () => {
  const k = await generateKeyPair();
  assert.equal(JSON.stringify({ k }), '{"k":"[redacted]"}');
  assert.match(inspect(k), /redacted/);
});

test('CSR carries node name as DNS SAN and the node IP; its self-signature is checked', async () => {
  const k = await generateKeyPair();
  const pem = await createCsr(k, 'worker-1', ['192.0.2.7']);
  const c = await parseCsr(pem);
  assert.deepEqual([c.commonName, c.dnsNames, c.ipAddresses, c.otherSans], ['worker-1', ['worker-1'], ['192.0.2.7'], 0]);
  assert.match(c.publicKeyFingerprint, /^[0-9a-f]{64}$/);
  const v6 = await parseCsr(await createCsr(k, 'w6', ['2001:db8::7', 'fe80:0:0:1::1']));
  assert.deepEqual(v6.ipAddresses, ['2001:db8::7', 'fe80:0:0:1::1']);
  await assert.rejects(parseCsr('garbage'), (e: unknown) => e instanceof PkiError && e.code === 'ERR_PKI_BAD_CSR');
});

test('a CSR whose key is not a P-256 point, or whose signed part was altered, does not parse (parseCsr)', async () => {
  const pem = await createCsr(await generateKeyPair(), 'worker-1');
  const der = Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
  const repem = (b: Buffer): string => `-----BEGIN CERTIFICATE REQUEST-----\n${b.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
  // The SPKI's BIT STRING: 03 42 00, then the uncompressed point 04 | X | Y.
  const at = der.indexOf(Buffer.from([0x03, 0x42, 0x00, 0x04]));
  assert.ok(at > 0);
  const offCurve = Buffer.from(der); offCurve[at + 4 + 63] = offCurve[at + 4 + 63]! ^ 1;
  await assert.rejects(parseCsr(repem(offCurve)));
  const renamed = Buffer.from(der); const cn = renamed.indexOf(Buffer.from('worker-1')); renamed[cn + 7] = 0x32; // worker-2
  await assert.rejects(parseCsr(repem(renamed)), (e: unknown) => e instanceof PkiError && e.code === 'ERR_PKI_BAD_CSR' && /does not verify/.test(e.message));
});

test('node certificate: 24 h by default, SANs as approved, verifies against the bundle; renew at 2/3', async () => {
  const ca = await createCa(await generateKeyPair(), 'kipsec CA 1', NOW);
  const csr = await parseCsr(await createCsr(await generateKeyPair(), 'worker-1', ['192.0.2.7']));
  const cert = await signNodeCertificate(ca, csr, { nowMs: NOW, dnsNames: ['worker-1'], ipAddresses: ['192.0.2.7'] });
  assert.equal(cert.notAfter.getTime(), NOW + 24 * 3_600_000);
  assert.deepEqual(certificateSans(cert), { dns: ['worker-1'], ip: ['192.0.2.7'] });
  assert.equal(await verifyCertificate(cert, [ca.cert], NOW + 1000), ca.cert);
  assert.match(await certFingerprint(cert), /^[0-9a-f]{64}$/);
  assert.ok(Math.abs(renewAtMs(cert) - (cert.notBefore.getTime() + (2 / 3) * (cert.notAfter.getTime() - cert.notBefore.getTime()))) < 1);
  await assert.rejects(verifyCertificate(cert, [ca.cert], NOW + 25 * 3_600_000), (e: unknown) => e instanceof PkiError && e.code === 'ERR_PKI_EXPIRED');
});

test('a certificate from another CA does not verify; during rotation a bundle of old+new verifies both', async () => {
  const oldCa = await createCa(await generateKeyPair(), 'kipsec CA old', NOW);
  const newCa = await createCa(await generateKeyPair(), 'kipsec CA new', NOW);
  const csr = await parseCsr(await createCsr(await generateKeyPair(), 'n'));
  const a = await signNodeCertificate(oldCa, csr, { nowMs: NOW, dnsNames: ['n'] });
  const b = await signNodeCertificate(newCa, csr, { nowMs: NOW, dnsNames: ['n'] });
  await assert.rejects(verifyCertificate(a, [newCa.cert], NOW), (e: unknown) => e instanceof PkiError && e.code === 'ERR_PKI_UNTRUSTED');
  const bundle = parseBundle(toPem([oldCa.cert, newCa.cert]));
  assert.equal(bundle.length, 2);
  await verifyCertificate(a, bundle, NOW);
  await verifyCertificate(b, bundle, NOW);
});

test('a CA with the same name but a different key does not verify (signature, not name, decides)', async () => {
  const ca = await createCa(await generateKeyPair(), 'kipsec CA', NOW);
  const impostor = await createCa(await generateKeyPair(), 'kipsec CA', NOW);
  const cert = await signNodeCertificate(impostor, await parseCsr(await createCsr(await generateKeyPair(), 'n')), { nowMs: NOW, dnsNames: ['n'] });
  await assert.rejects(verifyCertificate(cert, [ca.cert], NOW), (e: unknown) => e instanceof PkiError && e.code === 'ERR_PKI_UNTRUSTED');
});

test('the DER-encoded node certificate is accepted by OpenSSL: chain verifies, SAN/EKU/key usage as intended', async () => {
  const { execFileSync } = await import('node:child_process');
  const { writeFileSync } = await import('node:fs');
  const { X509Certificate } = await import('node:crypto');
  const now = Date.now();
  const ca = await createCa(await generateKeyPair(), 'kipsec CA openssl', now);
  const csr = await parseCsr(await createCsr(await generateKeyPair(), 'worker-9', ['192.0.2.9', '2001:db8::9']));
  const cert = await signNodeCertificate(ca, csr, { nowMs: now, dnsNames: ['worker-9'], ipAddresses: ['192.0.2.9', '2001:db8::9'] });
  const dir = scratchDir('kipsec-ossl-');
  writeFileSync(join(dir, 'ca.pem'), ca.cert.toString('pem'));
  writeFileSync(join(dir, 'n.pem'), cert.toString('pem'));
  assert.match(execFileSync('openssl', ['verify', '-CAfile', join(dir, 'ca.pem'), '-purpose', 'sslclient', join(dir, 'n.pem')], { encoding: 'utf8' }), /n\.pem: OK/);
  const text = execFileSync('openssl', ['x509', '-in', join(dir, 'n.pem'), '-noout', '-text'], { encoding: 'utf8' });
  assert.match(text, /DNS:worker-9, IP Address:192\.0\.2\.9, IP Address:2001:DB8:0:0:0:0:0:9/);
  assert.match(text, /TLS Web Server Authentication, TLS Web Client Authentication/);
  assert.match(text, /Digital Signature/);
  assert.match(text, /CA:FALSE/);
  const n = new X509Certificate(cert.toString('pem'));
  assert.ok(n.verify(new X509Certificate(ca.cert.toString('pem')).publicKey));
  assert.equal(n.checkHost('worker-9'), 'worker-9');
});
