// Standalone config (issue 5): the IPsecTunnel schema from src/api plus the agent's own checks on
// credential files. Every problem is one line with its field path; any problem means no config.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { decodePsk, loadConfigText, MIN_PSK_BYTES, type ConfigFs } from '../../../src/agent/config.js';
import { peerConfigOf } from '../../../src/agent/peers.js';
import { buildCert, dn } from '../ike/crypto/cert-builder.js';
import { reqidFor, isOurReqid } from '../../../src/agent/tunnel.js';

const PSK = 'correct horse battery staple, twenty+';

function fakeFs(files: Record<string, { text: string; mode?: number }>): ConfigFs {
  const get = (p: string) => { const f = files[p]; if (!f) throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' }); return f; };
  return { readText: (p) => get(p).text, readBytes: (p) => new Uint8Array(Buffer.from(get(p).text)), mode: (p) => get(p).mode ?? 0o600 };
}

const tunnel = (name: string, extra = '', auth = 'auth: {psk: {file: psk}}') => `apiVersion: kipsec.io/v1alpha1
kind: IPsecTunnel
metadata: {name: ${name}}
spec:
  local: {address: 192.0.2.1, subnets: [10.1.0.0/24]}
  remote: {address: 192.0.2.2, subnets: [10.2.0.0/24]${auth.includes('certificate') ? ', id: peer.example' : ''}}
  ${auth}
${extra}`;

test('a valid YAML stream compiles every tunnel with durations in ms and defaults applied', () => {
  const text = [tunnel('a', '  ike: {proposals: [aes256gcm16-prfsha384-x25519], rekeyTime: 4h}\n  esp: {proposals: [aes128gcm16], rekeyTime: 20m, lifeTime: 30m}\n  dpd: {interval: 10s, timeout: 40s}\n'), tunnel('b')].join('---\n');
  const r = loadConfigText(text, '/etc/kipsec', fakeFs({ '/etc/kipsec/psk': { text: `${PSK}\n` } }));
  assert.ok(r.ok, JSON.stringify(!r.ok && r.problems));
  const [a, b] = r.tunnels;
  assert.equal(a!.ikeRekeyMs, 4 * 3_600_000);
  assert.equal(a!.espRekeyMs, 20 * 60_000);
  assert.equal(a!.espLifeMs, 30 * 60_000);
  assert.equal(a!.dpdIntervalMs, 10_000);
  assert.equal(a!.installRoutes, true, 'installRoutes defaults to true');
  assert.equal(a!.startAction, 'initiate');
  assert.equal(a!.localId, '192.0.2.1', 'the IKE identity defaults to the address');
  assert.equal(a!.auth.kind, 'psk');
  assert.deepEqual(a!.auth.kind === 'psk' && Buffer.from(a!.auth.psk.expose()).toString(), PSK, 'trailing newline stripped');
  assert.deepEqual(b!.ikeProposalText.length > 0, true, 'schema default proposals');
});

test('esp.lifePackets and lifeBytes reach the Child SA config as exact integers and change the tunnel digest, so a reload applies them (RFC 4303 §3.3.3)', () => {
  const fs = fakeFs({ '/etc/kipsec/psk': { text: `${PSK}\n` } });
  const r = loadConfigText(tunnel('a', '  esp: {proposals: [aes256gcm16], lifePackets: 4294967295, lifeBytes: 1099511627776}\n'), '/etc/kipsec', fs);
  const plain = loadConfigText(tunnel('a'), '/etc/kipsec', fs);
  assert.ok(r.ok && plain.ok, JSON.stringify(!r.ok && r.problems));
  const child = peerConfigOf(r.tunnels[0]!).children[0]!;
  assert.deepEqual([child.lifePackets, child.lifeBytes], [4294967295n, 1099511627776n]);
  const unset = peerConfigOf(plain.tunnels[0]!).children[0]!;
  assert.deepEqual([unset.lifePackets, unset.lifeBytes], [undefined, undefined], 'unset: the engine default applies');
  assert.notEqual(r.tunnels[0]!.digest, plain.tunnels[0]!.digest);
});

test('each problem is one line with the field path, across schema and file checks', () => {
  const text = tunnel('bad', '  ike: {proposals: [aes257-prfsha384-x25519], rekeyTime: 4x}', 'auth: {psk: {file: /k/psk}}');
  const r = loadConfigText(text, '/etc', fakeFs({ '/k/psk': { text: PSK, mode: 0o644 } }));
  assert.ok(!r.ok);
  const lines = r.problems.map((p) => `${p.path}: ${p.message}`);
  assert.ok(lines.some((l) => l === 'bad spec.ike.proposals[0]: unknown transform "aes257"'), lines.join('\n'));
  assert.ok(lines.some((l) => l.startsWith('bad spec.ike.rekeyTime: ')), lines.join('\n'));
  assert.ok(lines.some((l) => /^bad spec\.auth\.psk\.file: PSK file \/k\/psk has mode 0644/.test(l)), lines.join('\n'));
  for (const l of lines) assert.ok(!l.includes('\n'), 'one line per problem');
});

test('PSK files: mode 0600 enforced, minimum length, missing file', () => {
  const cases: [Record<string, { text: string; mode?: number }>, RegExp][] = [
    [{ '/e/psk': { text: PSK, mode: 0o640 } }, /mode 0640; it must not be readable by group or others/],
    [{ '/e/psk': { text: 'short-psk\n' } }, new RegExp(`is 9 bytes; at least ${MIN_PSK_BYTES} are required`)],
    [{}, /cannot read PSK file \/e\/psk: no such file/],
  ];
  for (const [files, want] of cases) {
    const r = loadConfigText(tunnel('t'), '/e', fakeFs(files));
    assert.ok(!r.ok);
    assert.equal(r.problems.length, 1);
    assert.equal(r.problems[0]!.path, 't spec.auth.psk.file');
    assert.match(r.problems[0]!.message, want);
  }
});

test('PSK encodings as strongSwan reads them: 0x hex, 0s base64, else the text', () => {
  assert.deepEqual([...decodePsk(Buffer.from('0x0a0b\n'))], [10, 11]);
  assert.deepEqual([...decodePsk(Buffer.from('0sAQID'))], [1, 2, 3]);
  assert.equal(Buffer.from(decodePsk(Buffer.from('plain text\r\n'))).toString(), 'plain text');
});

test('certificate files must be readable, parse, and the key file must be private', () => {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const auth = 'auth: {certificate: {certFile: a.crt, keyFile: a.key, caFile: ca.crt}}';
  const r = loadConfigText(tunnel('c', '', auth), '/c', fakeFs({ '/c/a.crt': { text: 'not a cert' }, '/c/a.key': { text: keyPem, mode: 0o644 } }));
  assert.ok(!r.ok);
  const lines = r.problems.map((p) => `${p.path}: ${p.message}`);
  assert.ok(lines.some((l) => l.startsWith('c spec.auth.certificate.certFile: /c/a.crt is not a usable PEM certificate')), lines.join('\n'));
  assert.ok(lines.some((l) => l.startsWith('c spec.auth.certificate.keyFile: private key file /c/a.key has mode 0644')), lines.join('\n'));
  assert.ok(lines.some((l) => l.startsWith('c spec.auth.certificate.caFile: cannot read /c/ca.crt: no such file')), lines.join('\n'));
});

// A root CA, an intermediate, and an end entity (ECDSA, for speed): a chain file as users write it.
function chainFiles(): { ee: string; im: string; root: string; eeKey: string; otherKey: string } {
  const ec = () => generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const r = ec(); const i = ec(); const e = ec();
  const now = Date.now(); const base = { notBeforeMs: now - 60_000, notAfterMs: now + 86_400_000 };
  const pem = (der: Uint8Array) => `-----BEGIN CERTIFICATE-----\n${Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n')}\n-----END CERTIFICATE-----\n`;
  const root = buildCert({ ...base, subject: dn('root'), issuer: dn('root'), publicKey: r.publicKey, signingKey: r.privateKey, ca: true, keyUsage: [5] });
  const im = buildCert({ ...base, serial: 2, subject: dn('intermediate'), issuer: dn('root'), publicKey: i.publicKey, signingKey: r.privateKey, ca: true, keyUsage: [5] });
  const ee = buildCert({ ...base, serial: 3, subject: dn('gw'), issuer: dn('intermediate'), publicKey: e.publicKey, signingKey: i.privateKey, keyUsage: [0], dns: ['gw.example'] });
  const key = (k: KeyObject) => k.export({ type: 'pkcs8', format: 'pem' }).toString();
  return { ee: pem(ee), im: pem(im), root: pem(root), eeKey: key(e.privateKey), otherKey: key(ec().privateKey) };
}

const certAuth = 'auth: {certificate: {certFile: chain.crt, keyFile: gw.key, caFile: ca.crt}}';

test('a chain file (end entity, then intermediate) loads; the intermediate goes in a second CERT payload (RFC 7296 §3.6)', () => {
  const c = chainFiles();
  const r = loadConfigText(tunnel('c', '', certAuth), '/c', fakeFs({ '/c/chain.crt': { text: c.ee + c.im }, '/c/gw.key': { text: c.eeKey }, '/c/ca.crt': { text: c.root } }));
  assert.ok(r.ok, JSON.stringify(!r.ok && r.problems));
  const auth = peerConfigOf(r.tunnels[0]!).auth;
  assert.ok(auth.method === 'certificate' && auth.chain?.length === 1, 'one intermediate after the end entity');
});

test('a chain file with the intermediate first is refused, naming where the key\'s certificate is (RFC 7296 §3.6: the first CERT signs AUTH)', () => {
  // Why: the peer would answer AUTHENTICATION_FAILED with nothing on our side saying why.
  const c = chainFiles();
  const r = loadConfigText(tunnel('c', '', certAuth), '/c', fakeFs({ '/c/chain.crt': { text: c.im + c.ee }, '/c/gw.key': { text: c.eeKey }, '/c/ca.crt': { text: c.root } }));
  assert.ok(!r.ok);
  assert.deepEqual(r.problems.map((p) => `${p.path}: ${p.message}`), ['c spec.auth.certificate.certFile: the certificate for /c/gw.key is number 2 of 2 in /c/chain.crt; put the end-entity certificate first, then its intermediates']);
});

test('a key that belongs to no certificate in certFile is refused', () => {
  const c = chainFiles();
  const r = loadConfigText(tunnel('c', '', certAuth), '/c', fakeFs({ '/c/chain.crt': { text: c.ee + c.im }, '/c/gw.key': { text: c.otherKey }, '/c/ca.crt': { text: c.root } }));
  assert.ok(!r.ok);
  assert.deepEqual(r.problems.map((p) => `${p.path}: ${p.message}`), ['c spec.auth.certificate.keyFile: /c/gw.key is not the private key of the certificate in /c/chain.crt']);
});

test('every block of a chain or CA file must parse, not only the first', () => {
  const c = chainFiles();
  const junk = '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n';
  const r = loadConfigText(tunnel('c', '', certAuth), '/c', fakeFs({ '/c/chain.crt': { text: c.ee + junk }, '/c/gw.key': { text: c.eeKey }, '/c/ca.crt': { text: c.root + junk } }));
  assert.ok(!r.ok);
  assert.deepEqual(r.problems.map((p) => `${p.path}: ${p.message}`).sort(), [
    'c spec.auth.certificate.caFile: certificate 2 of 2 in /c/ca.crt does not parse',
    'c spec.auth.certificate.certFile: certificate 2 of 2 in /c/chain.crt does not parse',
  ]);
});

test('YAML syntax errors are reported on one line each', () => {
  const r = loadConfigText('a: [1,\n---\nb: }', '/', fakeFs({}));
  assert.ok(!r.ok);
  for (const p of r.problems) assert.ok(!p.message.includes('\n') && !p.path.includes('\n'), JSON.stringify(p));
});

test('an empty stream and duplicate names are problems, not an empty running config', () => {
  assert.ok(!loadConfigText('', '/', fakeFs({})).ok);
  const r = loadConfigText(`${tunnel('d')}---\n${tunnel('d')}`, '/e', fakeFs({ '/e/psk': { text: PSK } }));
  assert.ok(!r.ok);
  assert.ok(r.problems.some((p) => /duplicate/.test(p.message)));
});

test('reqids are stable per name and recognisably ours (restart adoption depends on it)', () => {
  assert.equal(reqidFor('to-aws-1'), reqidFor('to-aws-1'));
  assert.notEqual(reqidFor('to-aws-1'), reqidFor('to-aws-2'));
  assert.ok(isOurReqid(reqidFor('x')));
  assert.ok(!isOurReqid(1), 'strongSwan-style small reqids are not ours');
});

test('hybrid post-quantum proposals (x25519 + ML-KEM-768 as RFC 9370 ADDKE1) load for IKE and ESP: the engine runs them in IKE_INTERMEDIATE and IKE_FOLLOWUP_KE', () => {
  const text = tunnel('pq', '  ike: {proposals: [aes256gcm16-prfsha384-x25519-ke1_mlkem768]}\n  esp: {proposals: [aes256gcm16-x25519-ke1_mlkem768]}\n');
  const r = loadConfigText(text, '/etc/kipsec', fakeFs({ '/etc/kipsec/psk': { text: `${PSK}\n` } }));
  assert.ok(r.ok, JSON.stringify(!r.ok && r.problems));
  const t = r.tunnels[0]!;
  assert.ok(t.ikeProposals.some((p) => p.transforms.some((x) => x.type === 6)), 'IKE proposal keeps transform type 6 (ADDKE1)');
  assert.ok(t.espProposals.some((p) => p.transforms.some((x) => x.type === 6)), 'ESP proposal keeps ADDKE1');
});
