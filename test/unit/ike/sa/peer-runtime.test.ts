// src/ike/sa/peer-runtime.ts: peers configured with the same proposal and selector texts share
// the parsed values, and sharing never lets a text through that would not parse on its own.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SecretBytes } from '../../../../src/common/secret.js';
import type { PeerConfig } from '../../../../src/ike/sa/config.js';
import { buildPeerRuntime } from '../../../../src/ike/sa/peer-runtime.js';

const peer = (name: string, ike: readonly string[], remoteTs: readonly string[]): PeerConfig => ({
  name,
  local: { address: '192.0.2.1', id: { type: 'ipv4', value: '192.0.2.1' } },
  remote: { address: '192.0.2.2', id: { type: 'ipv4', value: '192.0.2.2' } },
  auth: { method: 'psk', secret: new SecretBytes(new Uint8Array(32).fill(7)) },
  ike: { proposals: ike, rekeyTimeMs: 3_600_000 },
  children: [{ name, localTs: ['10.1.0.0/24'], remoteTs, espProposals: ['aes128gcm16'], mode: 'tunnel', rekeyTimeMs: 1_000, lifeTimeMs: 2_000 }],
  dpd: { intervalMs: 30_000, timeoutMs: 150_000, action: 'restart' },
  startAction: 'respond',
});

test('peers with the same texts share parsed proposals and selectors; different texts do not', () => {
  let reqid = 1;
  const a = buildPeerRuntime(peer('a', ['aes256gcm16-prfsha256-x25519'], ['10.2.0.1/32']), undefined, () => reqid++);
  const b = buildPeerRuntime(peer('b', ['aes256gcm16-prfsha256-x25519'], ['10.2.0.2/32']), undefined, () => reqid++);
  assert.equal(a.ikeProposals, b.ikeProposals);
  assert.equal(a.children[0]!.localTs, b.children[0]!.localTs);
  assert.notDeepEqual(a.children[0]!.remoteTs, b.children[0]!.remoteTs);
  assert.deepEqual([...a.children[0]!.remoteTs[0]!.start], [10, 2, 0, 1]);
  assert.deepEqual([...a.children[0]!.remoteTs[0]!.end], [10, 2, 0, 1]);
});

test('a list cached from two texts does not answer for one text holding both (errors are never shared)', () => {
  let reqid = 1;
  buildPeerRuntime(peer('a', ['aes256gcm16-prfsha256-x25519', 'aes128gcm16-prfsha256-x25519'], ['10.2.0.1/32', '10.2.0.3/32']), undefined, () => reqid++);
  assert.throws(() => buildPeerRuntime(peer('b', ['aes256gcm16-prfsha256-x25519\naes128gcm16-prfsha256-x25519'], ['10.2.0.1/32']), undefined, () => reqid++), /peers\[b\]\.ike\.proposals/);
  assert.throws(() => buildPeerRuntime(peer('c', ['aes256gcm16-prfsha256-x25519'], ['10.2.0.1/32\n10.2.0.3/32']), undefined, () => reqid++), /peers\[c\]\.children\[0\]\.remoteTs\[0\]/);
});
