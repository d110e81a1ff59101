// spec.remote.standbyAddresses on the active gateway (src/agent/gateway/gateways.ts #rotateRemotes,
// compile.ts nextRemoteIndex): without an IKE SA for REMOTE_FAILOVER_MS the gateway moves to the
// next remote address, its peer is compiled for that address, and its report (IPsecNode
// status.tunnels → IPsecTunnel status.gateways[].remoteAddress) says which address is in use; a
// standby reports none. The cluster lane proves the move with kernel ESP
// (e2e/cluster/50-gateway-failover.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KubeClient } from '../../../../src/api/kube/client.js';
import type { IPsecTunnel } from '../../../../src/api/types.js';
import { ManualClock } from '../../../../src/common/time.js';
import { createLogger } from '../../../../src/agent/log.js';
import { REMOTE_FAILOVER_MS } from '../../../../src/agent/gateway/compile.js';
import { TunnelGateways } from '../../../../src/agent/gateway/gateways.js';
import type { Lease } from '../../../../src/agent/gateway/lease.js';
import type { TunnelStatus } from '../../../../src/agent/status.js';

const NS = 'kipsec-system';
const PSK = 'a remote HA pair test PSK, long enough';
const log = createLogger({ level: 'silent' });

const ha: IPsecTunnel = {
  apiVersion: 'kipsec.io/v1alpha1', kind: 'IPsecTunnel', metadata: { name: 'to-ha', resourceVersion: '1' },
  spec: {
    local: { id: 'gw.cluster.test' }, remote: { address: '192.0.2.103', standbyAddresses: ['192.0.2.101'], subnets: ['10.98.0.0/24'] },
    auth: { psk: { secretRef: { name: 'ha-psk', namespace: NS } } },
  },
} as IPsecTunnel;

function fakeKube(holder: string): KubeClient {
  let lease = { metadata: { name: 'kipsec-tunnel-to-ha', namespace: NS, resourceVersion: '1' }, spec: { holderIdentity: holder, renewTime: 't0', leaseDurationSeconds: 4 } } as Lease;
  let rv = 1;
  return {
    get: (path: string) => {
      if (path.endsWith('/ipsectunnels') || path.endsWith('/leases')) return Promise.resolve({ items: path.endsWith('/leases') ? [lease] : [ha], metadata: { resourceVersion: '9' } });
      if (path.endsWith('/leases/kipsec-tunnel-to-ha')) return Promise.resolve(structuredClone(lease));
      if (path.endsWith('/secrets/ha-psk')) return Promise.resolve({ metadata: { name: 'ha-psk' }, data: { psk: Buffer.from(PSK).toString('base64') } });
      return Promise.reject(new Error(`unexpected GET ${path}`));
    },
    update: (_path: string, body: Lease) => { lease = { ...body, metadata: { ...body.metadata, resourceVersion: String(++rv) } }; return Promise.resolve(lease); },
    watch: (_path: string, _q: unknown, _on: unknown, signal: AbortSignal) => new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true })),
  } as unknown as KubeClient;
}

const settle = async (): Promise<void> => { for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r)); };
const connecting = (remote: string): TunnelStatus => ({ name: 'to-ha', local: '192.0.2.11', remote, startAction: 'initiate', ikeState: 'connecting', children: [] });

test('standbyAddresses: the active gateway reports remote.address in use, moves to the standby address after REMOTE_FAILOVER_MS without an IKE SA (its peer then goes there) and reports that address', async () => {
  const clock = new ManualClock();
  const g = new TunnelGateways({ kube: fakeKube(''), node: 'node-a', namespace: NS, labels: () => ({ 'kipsec.io/gateway': 'true' }), clock, log });
  try {
    g.start();
    await g.waitForSync();
    clock.advance(0); await settle();
    assert.deepEqual(g.active, ['to-ha']);
    assert.equal(g.peers('192.0.2.11', ['10.244.1.0/24'])[0]?.config.remote.address, '192.0.2.103');
    assert.equal(g.reports([connecting('192.0.2.103')])[0]!.remoteAddress, '192.0.2.103');
    clock.advance(REMOTE_FAILOVER_MS - 1_000); await settle();
    assert.equal(g.reports([connecting('192.0.2.103')])[0]!.remoteAddress, '192.0.2.103', 'not before REMOTE_FAILOVER_MS');
    clock.advance(1_000); await settle();
    assert.equal(g.reports([connecting('192.0.2.103')])[0]!.remoteAddress, '192.0.2.101');
    assert.equal(g.peers('192.0.2.11', ['10.244.1.0/24'])[0]?.config.remote.address, '192.0.2.101');
  } finally {
    await g.stop(false);
  }
});

test('standbyAddresses: a standby gateway reports no remote address', async () => {
  const clock = new ManualClock();
  const g = new TunnelGateways({ kube: fakeKube('node-b'), node: 'node-a', namespace: NS, labels: () => ({ 'kipsec.io/gateway': 'true' }), clock, log });
  try {
    g.start();
    await g.waitForSync();
    clock.advance(0); await settle();
    assert.deepEqual(g.active, []);
    const r = g.reports([])[0]!;
    assert.equal(r.role, 'standby');
    assert.equal(r.remoteAddress, undefined);
  } finally {
    await g.stop(false);
  }
});
