// The operator's side of gateway reports (issue 13): IPsecTunnel.status names the active gateway
// (the printer column Active), and the Events an on-call engineer sees — Established up or down,
// the exact gateway error with its IKE notify, the active gateway changing hands (a failover).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { IPsecTunnel, TunnelGatewayStatus } from '../../../../src/api/types.js';
import { computeTunnelStatus } from '../../../../src/operator/status.js';
import { tunnelEvents } from '../../../../src/operator/resource-controllers.js';

const T0 = Date.UTC(2026, 0, 1);
const tunnel: IPsecTunnel = { apiVersion: 'kipsec.io/v1alpha1', kind: 'IPsecTunnel', metadata: { name: 't', generation: 1 }, spec: { local: {}, remote: { address: '192.0.2.100', subnets: ['10.99.0.0/24'] }, auth: { psk: { secretRef: { name: 's', namespace: 'n' } } } } };
const up = (node: string): TunnelGatewayStatus => ({ node, role: 'active', ikeSaState: 'established', childSaState: 'established' });
const standby = (node: string): TunnelGatewayStatus => ({ node, role: 'standby', ikeSaState: 'none', childSaState: 'none' });

test('status names the active gateway; the standby does not count against Ready', () => {
  const st = computeTunnelStatus(tunnel, [up('gw-a'), standby('gw-b')], T0);
  assert.equal(st.activeGateway, 'gw-a');
  assert.equal(st.conditions?.find((c) => c.type === 'Ready')?.status, 'True');
  assert.equal(computeTunnelStatus(tunnel, [standby('gw-a'), standby('gw-b')], T0).activeGateway, undefined);
});

test('Events: Established and ActiveGateway on the first report, ActiveGateway on a failover, the gateway error with its notify when it appears', () => {
  const first = computeTunnelStatus(tunnel, [up('gw-a'), standby('gw-b')], T0);
  assert.deepEqual(tunnelEvents(undefined, first).map((e) => [e.type, e.reason]), [['Normal', 'Established'], ['Normal', 'ActiveGateway']]);
  const after = computeTunnelStatus({ ...tunnel, status: first }, [standby('gw-a'), up('gw-b')], T0 + 10_000);
  assert.deepEqual(tunnelEvents(first, after), [{ type: 'Normal', reason: 'ActiveGateway', note: 'gw-b is the active gateway now (was gw-a)' }]);
  const failing = computeTunnelStatus({ ...tunnel, status: after }, [{ ...up('gw-b'), ikeSaState: 'failed', childSaState: 'none', lastError: { notify: 'AUTHENTICATION_FAILED', message: 'the peer refused our AUTH payload' } }, standby('gw-a')], T0 + 20_000);
  const evs = tunnelEvents(after, failing);
  assert.deepEqual(evs.map((e) => [e.type, e.reason]), [['Warning', 'NotEstablished'], ['Warning', 'GatewayError']]);
  assert.equal(evs[1]!.note, 'gw-b: AUTHENTICATION_FAILED: the peer refused our AUTH payload');
  assert.deepEqual(tunnelEvents(failing, failing), [], 'no change, no Event');
});

test('two gateways report themselves active (the dead one\'s last report is stale): the Lease holder is the active one, the other is shown standby with why, and Degraded says so', async () => {
  const { resolveActive } = await import('../../../../src/operator/status.js');
  const gws = resolveActive([up('gw-a'), up('gw-b')], { name: 'kipsec-tunnel-t', holder: 'gw-b' });
  assert.deepEqual(gws.map((g) => [g.node, g.role]), [['gw-a', 'standby'], ['gw-b', 'active']]);
  assert.match(gws[0]!.lastError?.message ?? '', /Lease kipsec-tunnel-t is held by gw-b/);
  const st = computeTunnelStatus(tunnel, gws, T0);
  assert.equal(st.activeGateway, 'gw-b');
  assert.equal(st.conditions?.find((c) => c.type === 'Degraded')?.status, 'True');
  assert.deepEqual(resolveActive([up('gw-a'), standby('gw-b')], { name: 'l', holder: 'gw-b' }).map((g) => g.role), ['active', 'standby'], 'one claim: as reported');
});
