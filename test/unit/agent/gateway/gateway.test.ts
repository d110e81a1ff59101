// The gateway side of IPsecTunnel in cluster mode (src/agent/gateway): which nodes are gateways,
// the Lease rules that pick one active gateway, the cluster spec compiled into the engine peer the
// standalone agent would run, and the per-gateway report the operator merges (issue 13).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { IPsecTunnel } from '../../../../src/api/types.js';
import { compileGatewayTunnel, standaloneSpec } from '../../../../src/agent/gateway/compile.js';
import { decideLease, type Lease } from '../../../../src/agent/gateway/lease.js';
import { gatewayReport } from '../../../../src/agent/gateway/report.js';
import { leaseNameOf, selectsGateway } from '../../../../src/agent/gateway/select.js';
import type { TunnelStatus } from '../../../../src/agent/status.js';

const PSK = new Uint8Array(Buffer.from('a gateway test PSK, long enough to pass'));

function tunnel(spec: Partial<IPsecTunnel['spec']> = {}): IPsecTunnel {
  return {
    apiVersion: 'kipsec.io/v1alpha1', kind: 'IPsecTunnel', metadata: { name: 'to-vpc' },
    spec: {
      local: { id: 'gw.cluster.test' }, remote: { address: '192.0.2.100', id: '192.0.2.100', subnets: ['10.99.0.0/24'] },
      auth: { psk: { secretRef: { name: 'to-vpc-psk', namespace: 'kipsec-system' } } },
      ike: { proposals: ['aes256gcm16-prfsha384-x25519'] }, esp: { proposals: ['aes256gcm16'] }, ...spec,
    },
  } as IPsecTunnel;
}

test('gateway selection: kipsec.io/gateway=true by default, spec.local.nodeSelector when set (DESIGN.md §3)', () => {
  assert.equal(selectsGateway(tunnel(), { 'kipsec.io/gateway': 'true' }), true);
  assert.equal(selectsGateway(tunnel(), { 'kipsec.io/gateway': 'false' }), false);
  assert.equal(selectsGateway(tunnel(), undefined), false, 'a node we know no labels of (deleted) is no gateway');
  const t = tunnel({ local: { nodeSelector: { zone: 'a' } } });
  assert.equal(selectsGateway(t, { zone: 'a' }), true);
  assert.equal(selectsGateway(t, { 'kipsec.io/gateway': 'true' }), false);
  assert.equal(leaseNameOf('to-vpc'), 'kipsec-tunnel-to-vpc');
});

test('Lease: create when absent, renew our own, take an empty one, and another holder\'s only after its record stood still for leaseDuration by our clock', () => {
  const lease = (holder: string, renewTime = 't1'): Lease => ({ metadata: { name: 'l', namespace: 'ns' }, spec: { holderIdentity: holder, renewTime, leaseDurationSeconds: 4 } });
  assert.equal(decideLease(undefined, 'a', undefined, 0, 4000), 'create');
  assert.equal(decideLease(lease('a'), 'a', undefined, 0, 4000), 'renew');
  assert.equal(decideLease(lease(''), 'a', undefined, 0, 4000), 'acquire');
  const seen = { holder: 'b', renewTime: 't1', atMs: 1000 };
  assert.equal(decideLease(lease('b'), 'a', seen, 4999, 4000), 'wait', 'not yet 4 s unchanged');
  assert.equal(decideLease(lease('b'), 'a', seen, 5000, 4000), 'acquire', 'the holder stopped renewing: take over');
  assert.equal(decideLease(lease('b', 't2'), 'a', seen, 9000, 4000), 'wait', 'a renewal we have not observed yet is a live holder');
});

test('compile: the node address is the local address, pod CIDRs the default local subnets, the PSK comes from the Secret bytes', () => {
  const r = compileGatewayTunnel(tunnel(), { address: '192.0.2.11', podCIDRs: ['10.244.1.0/24', '10.244.2.0/24'], psk: PSK });
  assert.ok(r.ok, r.ok ? '' : r.message);
  assert.equal(r.peer.name, 'to-vpc');
  assert.equal(r.peer.config.local.address, '192.0.2.11');
  assert.deepEqual(r.peer.config.local.id, { type: 'fqdn', value: 'gw.cluster.test' });
  assert.deepEqual(r.peer.config.children[0]!.localTs, ['10.244.1.0/24', '10.244.2.0/24']);
  assert.deepEqual(r.peer.config.children[0]!.remoteTs, ['10.99.0.0/24']);
  assert.equal(r.peer.config.auth.method, 'psk');
  assert.doesNotMatch(JSON.stringify(r.peer.config), /a gateway test PSK/, 'the PSK serialises redacted');
  const other = compileGatewayTunnel(tunnel(), { address: '192.0.2.12', podCIDRs: ['10.244.1.0/24'], psk: PSK });
  assert.ok(other.ok && other.peer.sessionDigest !== r.peer.sessionDigest, 'another node address renegotiates');
});

test('compile refuses with a reason: a short PSK, no PSK yet, certificate auth before the node certificate is issued, a bad proposal', () => {
  const short = compileGatewayTunnel(tunnel(), { address: '192.0.2.11', podCIDRs: ['10.244.1.0/24'], psk: new Uint8Array(Buffer.from('short')) });
  assert.ok(!short.ok);
  assert.match(short.message, /the PSK Secret: PSK in the Secret is 5 bytes; at least 20 are required/);
  const none = compileGatewayTunnel(tunnel(), { address: '192.0.2.11', podCIDRs: ['10.244.1.0/24'], psk: undefined });
  assert.ok(!none.ok && /no PSK/.test(none.message));
  assert.match(String(standaloneSpec(tunnel({ auth: { certificate: { caSecretRef: { name: 'x', namespace: 'y' } } } }), { address: '192.0.2.11', podCIDRs: [] })), /no node certificate yet/);
  const badProposal = compileGatewayTunnel(tunnel({ ike: { proposals: ['aes256gcm16-prfsha384-nosuchgroup'] } }), { address: '192.0.2.11', podCIDRs: ['10.244.1.0/24'], psk: PSK });
  assert.ok(!badProposal.ok && /spec\.ike\.proposals\[0\]/.test(badProposal.message), badProposal.ok ? '' : badProposal.message);
});

test('report: the active gateway shows the engine\'s SA state, suite, SPIs, bytes and the last error with its notify and both proposal lists; a standby shows none', () => {
  const peer: TunnelStatus = {
    name: 'to-vpc', local: '192.0.2.11', remote: '192.0.2.100', startAction: 'initiate', ikeState: 'established', ikeSuite: 'AES_GCM_16_256/PRF_HMAC_SHA2_384/CURVE_25519',
    establishedAt: '2026-12-06T10:00:00.000Z', lastRekeyAt: '2026-12-06T11:00:00.000Z',
    children: [{ name: 'to-vpc', state: 'installed', suite: 'AES_GCM_16_256', spiIn: 'c0000001', spiOut: 'c0000002', localTs: [], remoteTs: [], bytesIn: 10, bytesOut: 20, packetsIn: 1, packetsOut: 2, encap: true }],
  };
  const r = gatewayReport({ name: 'to-vpc', node: 'gw-a', role: 'active', peer, problem: undefined, lastError: undefined });
  assert.deepEqual(r, {
    name: 'to-vpc', node: 'gw-a', role: 'active', ikeSaState: 'established', childSaState: 'established',
    negotiatedSuite: 'IKE:AES_GCM_16_256/PRF_HMAC_SHA2_384/CURVE_25519 ESP:AES_GCM_16_256', inboundSpi: 'c0000001', outboundSpi: 'c0000002',
    bytesIn: 10, bytesOut: 20, packetsIn: 1, packetsOut: 2, lastRekeyTime: '2026-12-06T11:00:00Z',
  });
  const failed: TunnelStatus = { ...peer, ikeState: 'failed', children: [], lastError: { notify: 'NO_PROPOSAL_CHOSEN', message: 'the peer accepted none of our proposals', time: '2026-12-06T12:00:00.000Z', localProposals: ['aes256gcm16-prfsha384-x25519'], remoteProposals: ['aes128-sha256-modp2048'] } };
  const f = gatewayReport({ name: 'to-vpc', node: 'gw-a', role: 'active', peer: failed, problem: undefined, lastError: undefined });
  assert.equal(f.ikeSaState, 'failed');
  assert.equal(f.childSaState, 'failed');
  assert.deepEqual(f.lastError, { notify: 'NO_PROPOSAL_CHOSEN', message: 'the peer accepted none of our proposals', time: '2026-12-06T12:00:00Z', localProposals: ['aes256gcm16-prfsha384-x25519'], remoteProposals: ['aes128-sha256-modp2048'] });
  const s = gatewayReport({ name: 'to-vpc', node: 'gw-b', role: 'standby', peer, problem: undefined, lastError: undefined });
  assert.deepEqual(s, { name: 'to-vpc', node: 'gw-b', role: 'standby', ikeSaState: 'none', childSaState: 'none' });
});

test('remote HA pair (spec.remote.standbyAddresses): the next address after REMOTE_FAILOVER_MS without an IKE SA, round robin; established stays', async () => {
  const { nextRemoteIndex, REMOTE_FAILOVER_MS, remoteAddresses } = await import('../../../../src/agent/gateway/compile.js');
  const t = tunnel({ remote: { address: '192.0.2.100', standbyAddresses: ['192.0.2.101'], id: '192.0.2.100', subnets: ['10.99.0.0/24'] } });
  assert.deepEqual(remoteAddresses(t), ['192.0.2.100', '192.0.2.101']);
  assert.equal(nextRemoteIndex(2, 0, 0, REMOTE_FAILOVER_MS - 1, false), 0);
  assert.equal(nextRemoteIndex(2, 0, 0, REMOTE_FAILOVER_MS, false), 1);
  assert.equal(nextRemoteIndex(2, 1, 0, REMOTE_FAILOVER_MS, false), 0);
  assert.equal(nextRemoteIndex(2, 0, 0, REMOTE_FAILOVER_MS * 10, true), 0);
  assert.equal(nextRemoteIndex(1, 0, 0, REMOTE_FAILOVER_MS * 10, false), 0);
  const r = compileGatewayTunnel(t, { address: '192.0.2.11', podCIDRs: ['10.244.1.0/24'], psk: PSK, remoteIndex: 1 });
  assert.ok(r.ok, r.ok ? '' : r.message);
  assert.equal(r.peer.config.remote.address, '192.0.2.101');
});
