// Remote subnets of IPsecTunnels from every node, where the mesh's "pods" child cannot carry them:
//  - an overlay pair in transport mode (src/agent/mesh/peers.ts pairChildren) gets tunnel-mode
//    children for them, mirrored at the two ends, moved by a failover;
//  - routes to the active gateway's address in table 220 (src/agent/gateway/node-routes.ts): on the
//    kernel data path for every subnet (the pair's policy, if any, encrypts), on the userspace one
//    only for those no mesh pair takes into the TUN device.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { IPsecMesh } from '../../../../src/api/types.js';
import { GATEWAY_ROUTE_METRIC, GATEWAY_ROUTE_TABLE, GatewayRouteTable, gatewayRoutes } from '../../../../src/agent/gateway/node-routes.js';
import { pairChildren, type MeshSelf } from '../../../../src/agent/mesh/peers.js';
import { resolveMesh } from '../../../../src/agent/mesh/settings.js';
import type { RouteSpec, RtnlClient } from '../../../../src/xfrm/index.js';
import type { Logger } from '../../../../src/agent/log.js';

const mesh = (spec: Record<string, unknown>) => resolveMesh({ apiVersion: 'kipsec.io/v1alpha1', kind: 'IPsecMesh', metadata: { name: 'default', creationTimestamp: '2026-01-01T00:00:00Z' }, spec } as IPsecMesh).settings;
const vxlan = { mode: 'overlay' as const, overlay: { protocol: 'vxlan' as const, port: 4789 } };
const nodeC: MeshSelf = { name: 'node-c', address: '192.0.2.13', podCIDRs: ['10.244.3.0/24'], traffic: vxlan };
const gatewayA = { address: '192.0.2.11', podCIDRs: ['10.244.1.0/24'], traffic: vxlan };

test('overlay pair with the active gateway: a tunnel-mode child "gateway-out" (our pods ↔ the remote subnets) beside the transport-mode overlay children; the gateway\'s side mirrors it as "gateway-in"; none without a tunnel', () => {
  const m = mesh({});
  const names = (cs: { name: string; mode: string; localTs: readonly string[]; remoteTs: readonly string[] }[]) => cs.map((c) => [c.name, c.mode, c.localTs, c.remoteTs]);
  assert.deepEqual(pairChildren(nodeC, gatewayA, m).children.map((c) => c.name), ['overlay-out', 'overlay-in']);
  const onC = pairChildren(nodeC, { ...gatewayA, gatewaySubnets: ['10.99.0.0/24', '0.0.0.0/0', 'fd99::/64'] }, m).children;
  assert.deepEqual(names(onC).slice(2), [['gateway-out', 'tunnel', ['10.244.3.0/24'], ['10.99.0.0/24']]], 'a subnet holding a node address or of another family stays out');
  const onA = pairChildren({ name: 'node-a', ...gatewayA, gatewaySubnets: ['10.99.0.0/24'] }, { address: nodeC.address, podCIDRs: nodeC.podCIDRs, traffic: vxlan }, m).children;
  assert.deepEqual(names(onA).slice(2), [['gateway-in', 'tunnel', ['10.99.0.0/24'], ['10.244.3.0/24']]]);
  // Both gateways (of different tunnels): one child each way, never pods ↔ pods in tunnel mode (the overlay carries those).
  const both = pairChildren({ ...nodeC, gatewaySubnets: ['172.16.0.0/16'] }, { ...gatewayA, gatewaySubnets: ['10.99.0.0/24'] }, m).children;
  assert.deepEqual(names(both).slice(2), [['gateway-out', 'tunnel', ['10.244.3.0/24'], ['10.99.0.0/24']], ['gateway-in', 'tunnel', ['172.16.0.0/16'], ['10.244.1.0/24']]]);
  // hostToHost over an overlay: the host child is transport between the node addresses; the remote subnets still need theirs.
  assert.deepEqual(pairChildren(nodeC, { ...gatewayA, gatewaySubnets: ['10.99.0.0/24'] }, mesh({ traffic: { hostToHost: true } })).children.map((c) => c.name), ['host', 'gateway-out']);
});

test('routes to the active gateway: each remote subnet via the gateway node\'s address; the kernel data path routes all of them, the userspace one only those not already taken into its TUN device; never one holding a node address, never via ourselves or an unknown node', () => {
  const viaNode = new Map([['node-a', ['10.99.0.0/24', '172.16.0.0/16', '192.0.2.0/24', 'fd99::/64']], ['node-x', ['10.98.0.0/24']], ['node-b', ['10.99.0.0/24', '10.97.0.0/24']]]);
  const addressOf = (n: string): string | undefined => ({ 'node-a': '192.0.2.11', 'node-b': '192.0.2.12' } as Record<string, string>)[n];
  assert.deepEqual(gatewayRoutes(viaNode, '192.0.2.13', addressOf), [
    { dst: '10.99.0.0/24', via: '192.0.2.11', node: 'node-a' }, { dst: '172.16.0.0/16', via: '192.0.2.11', node: 'node-a' }, { dst: '10.97.0.0/24', via: '192.0.2.12', node: 'node-b' },
  ]);
  assert.deepEqual(gatewayRoutes(viaNode, '192.0.2.13', addressOf, new Set(['10.99.0.0/24', '10.97.0.0/24'])).map((r) => r.dst), ['172.16.0.0/16']);
  assert.deepEqual(gatewayRoutes(new Map([['node-a', ['10.99.0.0/24']]]), '192.0.2.11', addressOf), [], 'the gateway itself routes nothing via itself');
});

test('the route table: installs via the gateway in table 220 (rule 220, its own metric), removes what is no longer wanted, adopts routes of its metric left by an earlier run and leaves the others alone', async () => {
  const added: RouteSpec[] = []; const deleted: RouteSpec[] = []; const rules: number[][] = [];
  const rtnl = {
    listRoutes: async (fam: number) => (fam === 2 ? [{ dst: '10.50.0.0/16', gateway: '192.0.2.12', table: 220, metric: GATEWAY_ROUTE_METRIC, protocol: 4 }, { dst: '10.99.0.0/24', dev: 2, table: 220, protocol: 4 }] : []),
    ensureRule: async (fam: number, table: number, prio: number) => { rules.push([fam, table, prio]); },
    routeGet: async () => ({ oif: 2 }),
    addRoute: async (r: RouteSpec) => { added.push(r); },
    deleteRoute: async (r: RouteSpec) => { deleted.push(r); },
  } as unknown as RtnlClient;
  const log = { info: () => undefined, debug: () => undefined, warn: () => undefined } as unknown as Logger;
  const t = new GatewayRouteTable(rtnl, log);
  await t.sync([{ dst: '10.99.0.0/24', via: '192.0.2.11', node: 'node-a' }]);
  assert.deepEqual(added, [{ dst: '10.99.0.0/24', gateway: '192.0.2.11', table: GATEWAY_ROUTE_TABLE, metric: GATEWAY_ROUTE_METRIC, dev: 2 }]);
  assert.deepEqual(deleted.map((r) => r.dst), ['10.50.0.0/16'], 'the earlier run\'s route goes; the tunnel\'s own route (metric 0) stays');
  assert.deepEqual(rules, [[2, 220, 220]]);
  await t.sync([{ dst: '10.99.0.0/24', via: '192.0.2.12', node: 'node-b' }]);
  assert.deepEqual(deleted.map((r) => `${r.dst} via ${r.gateway}`), ['10.50.0.0/16 via 192.0.2.12', '10.99.0.0/24 via 192.0.2.11'], 'a failover moves the route');
  assert.equal(added.at(-1)?.gateway, '192.0.2.12');
  await t.sync([]);
  assert.equal(deleted.length, 3);
});
