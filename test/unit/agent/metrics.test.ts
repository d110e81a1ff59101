// The agent's Prometheus metrics: per-peer gauges from a status snapshot (peers that left vanish),
// the event counters the engine's events feed, and /proc/net/xfrm_stat parsing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AgentMetrics, parseXfrmStat } from '../../../src/agent/metrics.js';
import type { TunnelStatus } from '../../../src/agent/status.js';

const peer = (name: string, up: boolean): TunnelStatus => ({
  name, node: name.slice(5), local: '192.0.2.11', remote: '192.0.2.12', startAction: 'initiate', ikeState: up ? 'established' : 'connecting', expectedChildren: ['pods'],
  children: up ? [{ name: 'pods', state: 'installed', suite: 'aes256gcm16', mode: 'tunnel', spiIn: 'c0000001', spiOut: 'c0000002', localTs: [], remoteTs: [], bytesIn: 1200, bytesOut: 3400, packetsIn: 12, packetsOut: 34, encap: false }] : [],
});

test('per-peer gauges follow the status snapshot: state one-hot, up, SA bytes/packets each way; a peer that left disappears', async () => {
  const m = new AgentMetrics(false);
  m.setPeers([peer('mesh/node-b', true), peer('mesh/node-c', false)]);
  let text = await m.registry.metrics();
  assert.match(text, /^kipsec_agent_ike_sa_state\{peer="mesh\/node-b",state="established"\} 1$/m);
  assert.match(text, /^kipsec_agent_ike_sa_state\{peer="mesh\/node-b",state="connecting"\} 0$/m);
  assert.match(text, /^kipsec_agent_peer_up\{peer="mesh\/node-b"\} 1$/m);
  assert.match(text, /^kipsec_agent_peer_up\{peer="mesh\/node-c"\} 0$/m);
  assert.match(text, /^kipsec_agent_child_sa_bytes\{peer="mesh\/node-b",child="pods",direction="in"\} 1200$/m);
  assert.match(text, /^kipsec_agent_child_sa_packets\{peer="mesh\/node-b",child="pods",direction="out"\} 34$/m);
  m.setPeers([peer('mesh/node-b', true)]);
  text = await m.registry.metrics();
  assert.doesNotMatch(text, /node-c/);
});

test('engine events feed the counters: rekeys by kind, failures by notify, SAs down by reason, handshake latency', async () => {
  const m = new AgentMetrics(false);
  m.rekeyed('mesh/node-b', 'child'); m.rekeyed('mesh/node-b', 'child'); m.rekeyed('mesh/node-b', 'ike');
  m.failure('mesh/node-b', { code: 'ERR_IKE_AUTH_FAILED', notify: 'AUTHENTICATION_FAILED', origin: 'remote', exchange: 'IKE_AUTH', message: 'x', proposals: null, trafficSelectors: null });
  m.down('mesh/node-b', 'ike', 'dpd-timeout');
  m.ikeUp('mesh/node-b', 42); m.ikeUp('mesh/node-b', undefined);
  const text = await m.registry.metrics();
  assert.match(text, /^kipsec_agent_rekeys_total\{peer="mesh\/node-b",kind="child"\} 2$/m);
  assert.match(text, /^kipsec_agent_rekeys_total\{peer="mesh\/node-b",kind="ike"\} 1$/m);
  assert.match(text, /^kipsec_agent_ike_failures_total\{peer="mesh\/node-b",notify="AUTHENTICATION_FAILED",code="ERR_IKE_AUTH_FAILED"\} 1$/m);
  assert.match(text, /^kipsec_agent_sa_down_total\{peer="mesh\/node-b",kind="ike",reason="dpd-timeout"\} 1$/m);
  assert.match(text, /^kipsec_agent_ike_handshake_seconds_count 1$/m);
  assert.match(text, /^kipsec_agent_ike_handshake_seconds_bucket\{le="0.05"\} 1$/m);
});

test('/proc/net/xfrm_stat lines become counters; anything else is ignored (a kernel without XFRM statistics gives none)', () => {
  assert.deepEqual(parseXfrmStat('XfrmInError             \t0\nXfrmInNoPols            \t17\ngarbage\n'), { XfrmInError: 0, XfrmInNoPols: 17 });
  assert.deepEqual(parseXfrmStat(''), {});
});

test('the engine\'s drop counters become kipsec_agent_ike_dropped_total by reason, counting increments; a new engine\'s lower count continues, not rewinds; half-open and COOKIE gauges follow', async () => {
  const m = new AgentMetrics(false);
  const ike = (drops: Record<string, number>, invalid: number, halfOpen = 0, cookiesActive = false) => ({ halfOpen, cookiesActive, drops, udp: { received: 0, invalid, espInUdpDropped: 0 } });
  m.setIke(ike({ malformed: 3, integrity: 1 }, 5, 2, true));
  m.setIke(ike({ malformed: 7, integrity: 1 }, 6, 12, true));
  let text = await m.registry.metrics();
  assert.match(text, /^kipsec_agent_ike_dropped_total\{reason="malformed"\} 7$/m);
  assert.match(text, /^kipsec_agent_ike_dropped_total\{reason="integrity"\} 1$/m);
  assert.match(text, /^kipsec_agent_udp_invalid_total 6$/m);
  assert.match(text, /^kipsec_agent_ike_half_open 12$/m);
  assert.match(text, /^kipsec_agent_ike_cookies_active 1$/m);
  // The agent restarted its engine: its counts start again from 0.
  m.setIke(ike({ malformed: 2 }, 1));
  text = await m.registry.metrics();
  assert.match(text, /^kipsec_agent_ike_dropped_total\{reason="malformed"\} 9$/m);
  assert.match(text, /^kipsec_agent_udp_invalid_total 7$/m);
  assert.match(text, /^kipsec_agent_ike_cookies_active 0$/m);
});
