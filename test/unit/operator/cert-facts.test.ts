// The identity index reads issued certificates with a DER walk (src/operator/cert-facts.ts) instead
// of node:crypto's X509Certificate (3.3 CPU-s at 5,000 nodes, issue 16). It must say exactly what
// OpenSSL's parser says, for UTCTime and GeneralizedTime validity and for a chain.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, createHash } from 'node:crypto';
import { createCa, createCsr, generateKeyPair, issueNodeCertificate, parseCsr } from '../../../src/pki/index.js';
import { certFacts } from '../../../src/operator/cert-facts.js';

function byOpenSsl(pem: string) {
  const c = new X509Certificate(pem);
  return {
    certFingerprint: createHash('sha256').update(c.raw).digest('hex'),
    publicKeyFingerprint: createHash('sha256').update(c.publicKey.export({ type: 'spki', format: 'der' })).digest('hex'),
    notAfterMs: Date.parse(c.validTo),
    dnsName: /(?:^|, )DNS:([^,]+)/.exec(c.subjectAltName ?? '')?.[1],
  };
}

test('certificate facts from the DER agree with OpenSSL: node certificates in UTCTime and GeneralizedTime, the CA, a chain', async () => {
  const now = Date.UTC(2026, 11, 6);
  const ca = await createCa(await generateKeyPair(), 'facts CA', now, 40 * 365 * 86_400_000); // until 2066: GeneralizedTime
  const csr = await parseCsr(await createCsr(await generateKeyPair(), 'node-7.example', ['10.0.0.7', '2001:db8::7']));
  const utc = issueNodeCertificate(ca, csr, { nowMs: now, dnsNames: csr.dnsNames, ipAddresses: csr.ipAddresses });
  const generalized = issueNodeCertificate(ca, csr, { nowMs: Date.UTC(2055, 0, 1), dnsNames: csr.dnsNames });
  for (const pem of [utc.pem, generalized.pem]) assert.deepEqual(certFacts(pem), byOpenSsl(pem));
  assert.equal(certFacts(generalized.pem).notAfterMs, Date.UTC(2055, 0, 2), 'past 2049: GeneralizedTime');
  assert.equal(certFacts(utc.pem).publicKeyFingerprint, csr.publicKeyFingerprint, 'the key the node asked for');
  const caPem = ca.cert.toString('pem');
  assert.deepEqual(certFacts(caPem), byOpenSsl(caPem));
  assert.equal(certFacts(caPem).dnsName, undefined);
  assert.deepEqual(certFacts(`${utc.pem}${caPem}`), byOpenSsl(utc.pem), 'a chain: its first certificate');
  assert.throws(() => certFacts('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n'));
  assert.throws(() => certFacts('not a certificate'));
});
