// Route-mode IPsecTunnels on cluster gateways (src/agent/gateway/links.ts, gateways.ts, compile.ts):
// `profile: aws` compiles as in the standalone agent (XFRM interface with if_id, inside address,
// MTU 1446, 0.0.0.0/0 selectors); the active gateway makes the interface before the tunnel's SAs
// (its peer is held back until the interface is up), removes it on standby, a lost Lease or
// shutdown, adopts it after a restart rather than removing it while its config is not known yet,
// and reports a failed set-up as the tunnel's lastError. The userspace data path refuses route mode.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KubeClient } from '../../../../src/api/kube/client.js';
import type { IPsecTunnel } from '../../../../src/api/types.js';
import { ManualClock } from '../../../../src/common/time.js';
import { createLogger } from '../../../../src/agent/log.js';
import { compileGatewayTunnel } from '../../../../src/agent/gateway/compile.js';
import { TunnelGateways } from '../../../../src/agent/gateway/gateways.js';
import { GatewayLinks, type LinkPort } from '../../../../src/agent/gateway/links.js';
import type { Lease } from '../../../../src/agent/gateway/lease.js';
import type { TunnelConfig } from '../../../../src/agent/tunnel.js';
import { userspacePeer } from '../../../../src/agent/userspace/peer.js';

const NS = 'kipsec-system';
const PSK = 'a route-mode gateway test PSK, long enough';
const log = createLogger({ level: 'silent' });

function aws(subnets = ['172.31.0.0/16'], ifId = 41): IPsecTunnel {
  return {
    apiVersion: 'kipsec.io/v1alpha1', kind: 'IPsecTunnel', metadata: { name: 'to-aws', resourceVersion: '1' },
    spec: {
      profile: 'aws', local: {}, remote: { address: '192.0.2.100', subnets },
      auth: { psk: { secretRef: { name: 'aws-psk', namespace: NS } } },
      xfrmInterface: { ifId, insideAddress: '169.254.10.2/30' },
    },
  } as IPsecTunnel;
}

function compiled(t: IPsecTunnel): TunnelConfig {
  const r = compileGatewayTunnel(t, { address: '192.0.2.11', podCIDRs: ['10.244.1.0/24', '10.244.3.0/24'], psk: new Uint8Array(Buffer.from(PSK)) });
  assert.ok(r.ok, r.ok ? '' : r.message);
  return r.tunnel;
}

/** Records what the gateway asks of the kernel's interfaces; `fail` names tunnels whose set-up fails. */
function fakePort(): LinkPort & { calls: string[][]; removed: number; fail: Map<string, string> } {
  const p = {
    calls: [] as string[][], removed: 0, fail: new Map<string, string>(),
    syncEach: (ts: readonly TunnelConfig[]) => {
      p.calls.push(ts.map((t) => `${t.name}:${t.xfrmInterface?.ifId}:${t.remoteSubnets.join(',')}`));
      return Promise.resolve(new Map([...p.fail].filter(([n]) => ts.some((t) => t.name === n))));
    },
    removeAll: () => { p.removed++; return Promise.resolve(1); },
  };
  return p;
}

test('compile: profile aws on a gateway is route mode as in the standalone agent (if_id, inside address, MTU 1446, 0.0.0.0/0 selectors); the userspace data path refuses it', () => {
  const r = compileGatewayTunnel(aws(), { address: '192.0.2.11', podCIDRs: ['10.244.1.0/24'], psk: new Uint8Array(Buffer.from(PSK)) });
  assert.ok(r.ok, r.ok ? '' : r.message);
  assert.equal(r.tunnel.mode, 'route');
  assert.deepEqual({ name: r.tunnel.xfrmInterface?.name, ifId: r.tunnel.xfrmInterface?.ifId, inside: r.tunnel.xfrmInterface?.insideAddress, mtu: r.tunnel.xfrmInterface?.mtu }, { name: 'xfrm41', ifId: 41, inside: '169.254.10.2/30', mtu: 1446 });
  assert.equal(r.peer.config.children[0]!.ifId, 41);
  assert.deepEqual([r.peer.config.children[0]!.localTs, r.peer.config.children[0]!.remoteTs], [['0.0.0.0/0'], ['0.0.0.0/0']]);
  assert.equal(r.peer.installRoutes, false, 'routes go over the interface, not into table 220');
  const u = compileGatewayTunnel(aws(), { address: '192.0.2.11', podCIDRs: ['10.244.1.0/24'], psk: new Uint8Array(Buffer.from(PSK)), adapt: userspacePeer });
  assert.ok(!u.ok);
  assert.match(u.message, /route mode needs XFRM interfaces, which --datapath userspace does not have/);
});

test('links: the interface is set up before the SAs may go in; a config change with the same if_id keeps the SAs while the interface is updated; standby removes it; a failure is reported and retried', async () => {
  const port = fakePort();
  const l = new GatewayLinks(port, log);
  const t = compiled(aws());
  assert.equal(await l.sync(['to-aws']), false, 'the first round waits for the held route-mode tunnel to be known (adoption after a restart)');
  assert.deepEqual(port.calls, []);
  l.want('to-aws', t);
  assert.equal(l.ready(t), false, 'no SAs before the interface');
  assert.equal(await l.sync(['to-aws']), true);
  assert.deepEqual(port.calls, [['to-aws:41:172.31.0.0/16']]);
  assert.equal(l.ready(t), true);
  l.want('to-aws', compiled(aws()));
  assert.equal(await l.sync(['to-aws']), false);
  assert.equal(port.calls.length, 1, 'the same config again: nothing to do');
  const wider = compiled(aws(['172.31.0.0/16', '172.30.0.0/16']));
  l.want('to-aws', wider);
  assert.equal(l.ready(wider), true, 'same name and if_id: the SAs stay while routes change');
  await l.sync(['to-aws']);
  assert.deepEqual(port.calls.at(-1), ['to-aws:41:172.31.0.0/16,172.30.0.0/16']);
  const moved = compiled(aws(['172.31.0.0/16'], 42));
  l.want('to-aws', moved);
  assert.equal(l.ready(moved), false, 'a new if_id: the SAs wait for the new interface');
  port.fail.set('to-aws', 'interface xfrm42 exists and is not this tunnel\'s');
  assert.equal(await l.sync(['to-aws']), true);
  assert.equal(l.error('to-aws'), 'interface xfrm42 exists and is not this tunnel\'s');
  assert.equal(l.ready(moved), false);
  assert.equal(l.pending, true, 'retried at the next round');
  port.fail.clear();
  assert.equal(await l.sync(['to-aws']), true);
  assert.equal(l.error('to-aws'), undefined);
  assert.equal(l.ready(moved), true);
  l.want('to-aws', null);
  assert.equal(l.ready(moved), false);
  await l.sync([]);
  assert.deepEqual(port.calls.at(-1), [], 'standby: no interface wanted, so the kernel\'s goes');
});

/** An apiserver with one tunnel, its PSK Secret and its Lease (free at first). */
function fakeKube(): { kube: KubeClient; lease: { value: Lease } } {
  const lease = { value: { metadata: { name: 'kipsec-tunnel-to-aws', namespace: NS, resourceVersion: '1' }, spec: { holderIdentity: '', renewTime: 't0', leaseDurationSeconds: 4 } } as Lease };
  let rv = 1;
  const kube = {
    get: (path: string) => {
      if (path.endsWith('/ipsectunnels') || path.endsWith('/leases')) return Promise.resolve({ items: path.endsWith('/leases') ? [lease.value] : [aws()], metadata: { resourceVersion: '9' } });
      if (path.endsWith('/leases/kipsec-tunnel-to-aws')) return Promise.resolve(structuredClone(lease.value));
      if (path.endsWith('/secrets/aws-psk')) return Promise.resolve({ metadata: { name: 'aws-psk' }, data: { psk: Buffer.from(PSK).toString('base64') } });
      return Promise.reject(new Error(`unexpected GET ${path}`));
    },
    update: (_path: string, body: Lease) => { lease.value = { ...body, metadata: { ...body.metadata, resourceVersion: String(++rv) } }; return Promise.resolve(lease.value); },
    watch: (_path: string, _q: unknown, _on: unknown, signal: AbortSignal) => new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true })),
  } as unknown as KubeClient;
  return { kube, lease };
}

const settle = async (): Promise<void> => { for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r)); };

test('gateway: the active gateway of a profile-aws tunnel gets its XFRM interface first and only then runs its peer (if_id 41); losing the Lease removes the interface; shutdown removes it before the Lease is released', async () => {
  const { kube, lease } = fakeKube();
  const port = fakePort();
  const clock = new ManualClock();
  const g = new TunnelGateways({ kube, node: 'node-a', namespace: NS, labels: () => ({ 'kipsec.io/gateway': 'true' }), clock, log, links: port });
  let changes = 0;
  g.onChange(() => { changes++; });
  g.start();
  await g.waitForSync();
  clock.advance(0); await settle();
  assert.deepEqual(g.active, ['to-aws'], 'the free Lease is taken');
  assert.ok(changes > 0);
  assert.deepEqual(g.peers('192.0.2.11', ['10.244.1.0/24']), [], 'no peer before its interface');
  assert.deepEqual(port.calls, [], 'nothing synced before the tunnel\'s config is known (an interface left by a previous agent is adopted, not removed)');
  const before = changes;
  clock.advance(0); await settle();
  assert.deepEqual(port.calls, [['to-aws:41:172.31.0.0/16']]);
  assert.ok(changes > before, 'the interface is up: the peers are recomputed');
  const peers = g.peers('192.0.2.11', ['10.244.1.0/24']);
  assert.deepEqual(peers.map((p) => [p.name, p.config.children[0]!.ifId]), [['to-aws', 41]]);
  assert.equal(g.reports([])[0]!.lastError, undefined);

  // Another node takes the Lease (this one missed its renewals): standby, the interface goes.
  lease.value = { ...lease.value, spec: { ...lease.value.spec, holderIdentity: 'node-b', renewTime: 't9' } };
  clock.advance(5_000); await settle();
  assert.deepEqual(g.active, []);
  assert.deepEqual(port.calls.at(-1), [], 'standby: the interface is removed');
  assert.deepEqual(g.peers('192.0.2.11', ['10.244.1.0/24']), []);

  // Back as the holder; then SIGTERM: interfaces removed, then the Lease released.
  lease.value = { ...lease.value, spec: { ...lease.value.spec, holderIdentity: '', renewTime: 't10' } };
  clock.advance(1_000); await settle();
  assert.deepEqual(g.active, ['to-aws']);
  g.peers('192.0.2.11', ['10.244.1.0/24']);
  clock.advance(0); await settle();
  assert.deepEqual(port.calls.at(-1), ['to-aws:41:172.31.0.0/16']);
  const holderAtRemoval: string[] = [];
  const removeAll = port.removeAll;
  port.removeAll = () => { holderAtRemoval.push(lease.value.spec?.holderIdentity ?? ''); return removeAll(); };
  await g.stop(true);
  assert.deepEqual(holderAtRemoval, ['node-a'], 'the interface went while the Lease was still ours');
  assert.equal(lease.value.spec?.holderIdentity, '', 'then the Lease was released');
});

test('gateway: an interface that cannot be set up is the tunnel\'s lastError, and its peer stays out', async () => {
  const { kube } = fakeKube();
  const port = fakePort();
  port.fail.set('to-aws', 'spec.mode: route needs XFRM interfaces, which this kernel does not have');
  const clock = new ManualClock();
  const g = new TunnelGateways({ kube, node: 'node-a', namespace: NS, labels: () => ({ 'kipsec.io/gateway': 'true' }), clock, log, links: port });
  g.start();
  await g.waitForSync();
  clock.advance(0); await settle();
  g.peers('192.0.2.11', ['10.244.1.0/24']);
  clock.advance(0); await settle();
  assert.deepEqual(g.peers('192.0.2.11', ['10.244.1.0/24']), []);
  assert.match(g.reports([])[0]!.lastError?.message ?? '', /^XFRM interface: spec\.mode: route needs XFRM interfaces/);
  await g.stop(false);
});
