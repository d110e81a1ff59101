// TunnelConfig → engine PeerConfig: identities (RFC 7296 §3.5 ID types from strongSwan-style
// text), one Child SA named after the tunnel, durations and DPD carried over, PSK as SecretBytes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { identityOf, peerConfigOf, pemBlocks } from '../../../src/agent/peers.js';
import { loadConfigText } from '../../../src/agent/config.js';

const PSK = 'correct horse battery staple, twenty+';
const fs = { readText: () => '', readBytes: () => new Uint8Array(Buffer.from(PSK)), mode: () => 0o600 };

test('identity text maps to RFC 7296 §3.5 ID types: IPv4, IPv6, RFC822, FQDN; a DN needs our certificate', () => {
  assert.deepEqual(identityOf('192.0.2.1', 'p'), { type: 'ipv4', value: '192.0.2.1' });
  assert.deepEqual(identityOf('2001:db8::1', 'p'), { type: 'ipv6', value: '2001:db8::1' });
  assert.deepEqual(identityOf('gw@example.com', 'p'), { type: 'email', value: 'gw@example.com' });
  assert.deepEqual(identityOf('gw.example.com', 'p'), { type: 'fqdn', value: 'gw.example.com' });
  assert.throws(() => identityOf('CN=peer, O=x', 'spec.remote.id'), /spec\.remote\.id: distinguished-name identities/);
});

test('a tunnel becomes one peer with one child named after it; PSK peers default the remote id to its address', () => {
  const yaml = `apiVersion: kipsec.io/v1alpha1
kind: IPsecTunnel
metadata: {name: to-site}
spec:
  local: {address: 192.0.2.1, subnets: [10.1.0.0/24], id: gw.example.com}
  remote: {address: 192.0.2.2, subnets: [10.2.0.0/24, 10.3.0.0/24]}
  auth: {psk: {file: /k}}
  ike: {proposals: [aes256gcm16-prfsha384-x25519], rekeyTime: 2h}
  esp: {proposals: [aes128gcm16-x25519], rekeyTime: 30m, lifeTime: 40m}
  dpd: {interval: 15s, timeout: 60s, action: clear}
  startAction: respond
`;
  const r = loadConfigText(yaml, '/', fs);
  assert.ok(r.ok, JSON.stringify(!r.ok && r.problems));
  const p = peerConfigOf(r.tunnels[0]!);
  assert.equal(p.name, 'to-site');
  assert.deepEqual(p.local.id, { type: 'fqdn', value: 'gw.example.com' });
  assert.deepEqual(p.remote.id, { type: 'ipv4', value: '192.0.2.2' });
  assert.equal(p.auth.method, 'psk');
  assert.deepEqual(p.ike, { proposals: ['aes256gcm16-prfsha384-x25519'], rekeyTimeMs: 7_200_000 });
  assert.equal(p.children.length, 1);
  assert.deepEqual({ ...p.children[0] }, { name: 'to-site', localTs: ['10.1.0.0/24'], remoteTs: ['10.2.0.0/24', '10.3.0.0/24'], espProposals: ['aes128gcm16-x25519'], mode: 'tunnel', rekeyTimeMs: 1_800_000, lifeTimeMs: 2_400_000 });
  assert.deepEqual(p.dpd, { intervalMs: 15_000, timeoutMs: 60_000, action: 'clear' }); // spec.dpd.timeout reaches the engine
  assert.equal(p.startAction, 'respond');
  assert.equal(JSON.stringify(p).includes(PSK), false, 'the PSK serialises as [redacted]');
});

test('PEM blocks are read in file order (certificate, then intermediates)', () => {
  const pem = (b: string) => `-----BEGIN CERTIFICATE-----\n${Buffer.from(b).toString('base64')}\n-----END CERTIFICATE-----\n`;
  assert.deepEqual(pemBlocks(pem('one') + 'junk\n' + pem('two')).map((d) => Buffer.from(d).toString()), ['one', 'two']);
});
