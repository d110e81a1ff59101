// `kipsec status` as a table: a pure function of the status data (no clock reads, no I/O).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatStatus, type AgentStatus } from '../../../src/agent/status.js';

const NOW = Date.parse('2026-01-01T12:00:00Z');
const status: AgentStatus = {
  pid: 42, startedAt: '2026-01-01T11:00:00.000Z', datapath: 'kernel', configFile: '/etc/kipsec/tunnels.yaml', configLoadedAt: '2026-01-01T11:00:00.000Z',
  engine: 'kipsec IKEv2', ports: { ike: 500, natt: 4500 },
  tunnels: [{
    name: 'to-aws-1', local: '192.0.2.1', remote: '203.0.113.10', startAction: 'initiate', ikeState: 'established', role: 'initiator',
    natDetected: true, remotePort: 4500, ikeSuite: 'aes256gcm16-prfsha384-x25519', ikeSpis: { initiator: '0123456789abcdef', responder: 'fedcba9876543210' },
    establishedAt: '2026-01-01T11:59:00.000Z', nextRekeyAt: '2026-01-01T16:00:00.000Z',
    children: [{ name: 'to-aws-1', state: 'installed', suite: 'aes256gcm16', spiIn: 'c0000001', spiOut: 'd0000002', localTs: ['10.1.0.0/16'], remoteTs: ['172.31.0.0/16'],
      bytesIn: 2048, bytesOut: 1_572_864, packetsIn: 20, packetsOut: 1500, encap: true, nextRekeyAt: '2026-01-01T13:00:00.000Z' }],
  }, {
    name: 'to-gcp', local: '192.0.2.1', remote: '198.51.100.7', startAction: 'respond', ikeState: 'failed', children: [],
    lastError: { notify: 'NO_PROPOSAL_CHOSEN', message: 'no acceptable proposal', time: '2026-01-01T11:58:00.000Z', localProposals: ['aes256gcm16-prfsha384-x25519'], remoteProposals: ['aes128-sha1-modp1024'] },
  }],
};

test('one block per tunnel: state, role, NAT, suite, IKE SPIs, child SPIs with kernel counters, rekey times', () => {
  const out = formatStatus(status, NOW).join('\n');
  assert.match(out, /^to-aws-1: 192\.0\.2\.1 <-> 203\.0\.113\.10 {2}IKE ESTABLISHED, initiator, NAT-T \(port 4500\)/m);
  assert.match(out, /IKE SPIs {3}0123456789abcdef_i fedcba9876543210_r/);
  assert.match(out, /child to-aws-1 INSTALLED {2}aes256gcm16 \(ESP-in-UDP\)/);
  assert.match(out, /in {2}c0000001 +2\.0 KiB +20 pkts/);
  assert.match(out, /out d0000002 +1\.5 MiB +1500 pkts/);
  assert.match(out, /established 2026-01-01T11:59:00Z \(1m ago\)/);
  assert.match(out, /next rekey 2026-01-01T16:00:00Z \(in 4\.0h\)/);
});

test('the last error names the notify and both proposal lists', () => {
  const out = formatStatus(status, NOW).join('\n');
  assert.match(out, /to-gcp: .* IKE FAILED/);
  assert.match(out, /last error 2026-01-01T11:58:00\.000Z: NO_PROPOSAL_CHOSEN: no acceptable proposal/);
  assert.match(out, /our proposals: {3}aes256gcm16-prfsha384-x25519/);
  assert.match(out, /peer proposals: {2}aes128-sha1-modp1024/);
  assert.match(out, /no Child SA/);
});

test('what the IKE side turned away: half-open SAs, COOKIEs, the engine\'s drops most frequent first, datagrams that were not IKE (docs/SECURITY.md)', () => {
  const out = formatStatus({ ...status, ike: { halfOpen: 3, cookiesActive: true, drops: { integrity: 2, malformed: 40, 'half-open-per-address': 0 }, udp: { received: 5012, invalid: 960, espInUdpDropped: 0 } } }, NOW).join('\n');
  assert.match(out, /^IKE 3 half-open, COOKIEs demanded; dropped malformed 40, integrity 2; 5012 datagrams received, 960 not IKE$/m);
  const quiet = formatStatus({ ...status, ike: { halfOpen: 0, cookiesActive: false, drops: {}, udp: { received: 4, invalid: 0, espInUdpDropped: 0 } } }, NOW).join('\n');
  assert.match(quiet, /^IKE 0 half-open; dropped none; 4 datagrams received, 0 not IKE$/m);
});

test('the userspace ESP engine: the offloads it uses, its SAs\' drops most frequent first (dummy packets are no drop), datagrams in and out', () => {
  const out = formatStatus({ ...status, datapath: 'userspace', esp: { offloads: ['udpGso', 'udpGro', 'tunTso'], counters: { rxDatagrams: 120, txDatagrams: 80 }, drops: { replay: 2, auth: 5, dummy: 9 } } }, NOW).join('\n');
  assert.match(out, /^ESP engine: offloads udpGso, udpGro, tunTso; SA drops auth 5, replay 2; 120 datagrams in, 80 out$/m);
  const bare = formatStatus({ ...status, datapath: 'userspace', esp: { offloads: [], counters: {}, drops: {} } }, NOW).join('\n');
  assert.match(bare, /^ESP engine: offloads none; SA drops none; 0 datagrams in, 0 out$/m);
  assert.doesNotMatch(formatStatus(status, NOW).join('\n'), /ESP engine/, 'the kernel data path has no engine line');
});
