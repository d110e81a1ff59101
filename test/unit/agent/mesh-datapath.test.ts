// Cluster mode's data path (src/agent/mesh/datapath.ts): which one the agent runs for each --datapath
// flag, IPsecMesh spec.datapath and kernel, the condition when they disagree, the peers the userspace
// engine cannot run; and strict mode there (src/agent/userspace/mesh-routes.ts): every known peer's
// pod CIDRs routed into the TUN device, blackholes that outlive the agent, removed only with the peer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chooseNodeDatapath, datapathProblem, heldPeerRoutes, userspaceMeshPeers, userspaceTraffic } from '../../../src/agent/mesh/datapath.js';
import { resolveTraffic } from '../../../src/agent/mesh/traffic.js';
import { pairChildren } from '../../../src/agent/mesh/peers.js';
import { computeNodeStatus } from '../../../src/agent/mesh/node-status.js';
import { BLACKHOLE_METRIC, INBOUND_DROP_PRIORITY, INBOUND_PASS_PRIORITY, MESH_TUN_TABLE, MeshTunRoutes, meshPeerRoutes, TUN_ROUTE_METRIC } from '../../../src/agent/userspace/mesh-routes.js';
import type { UserspaceDatapath } from '../../../src/agent/userspace/datapath.js';
import type { DesiredPeer } from '../../../src/agent/source.js';
import type { MeshPeers } from '../../../src/agent/mesh/peers.js';
import type { ChildConfig, PeerConfig } from '../../../src/ike/engine.js';
import type { RouteSpec, RtnlClient, RuleSpec } from '../../../src/xfrm/index.js';
import { createLogger } from '../../../src/agent/log.js';

const NO_ESP = { ok: false, reason: 'EPROTONOSUPPORT' } as const;
const ESP = { ok: true } as const;
const mesh = (datapath: 'kernel' | 'userspace' | 'auto') => ({ name: 'default', datapath });

test('--datapath auto: the mesh decides; its auto means kernel when the kernel accepts an ESP state, else userspace, and the reason says which', () => {
  assert.deepEqual(chooseNodeDatapath('auto', mesh('auto'), NO_ESP), { datapath: 'userspace', reason: '--datapath auto: the kernel refuses ESP states (EPROTONOSUPPORT)' });
  assert.equal(chooseNodeDatapath('auto', mesh('auto'), ESP).datapath, 'kernel');
  assert.equal(chooseNodeDatapath('auto', undefined, NO_ESP).datapath, 'userspace');
  assert.equal(chooseNodeDatapath('auto', mesh('userspace'), ESP).datapath, 'userspace', 'the mesh asks for userspace on a kernel with ESP');
  const c = chooseNodeDatapath('auto', mesh('kernel'), NO_ESP);
  assert.equal(c.datapath, 'userspace', 'idle on userspace, so a mesh switched to auto needs no restart');
  assert.match(c.reason, /asks for kernel, so the node stays out of it/);
});

test('an explicit --datapath wins at start; the mesh then only accepts or refuses it', () => {
  assert.equal(chooseNodeDatapath('kernel', mesh('userspace'), NO_ESP).datapath, 'kernel');
  assert.equal(chooseNodeDatapath('userspace', mesh('kernel'), ESP).datapath, 'userspace');
});

test('the mesh asking for kernel on a kernel without ESP is DatapathUnavailable; flag and mesh disagreeing is DatapathMismatch; auto accepts either', () => {
  const us = { datapath: 'userspace', reason: '--datapath auto: the kernel refuses ESP states' } as const;
  const k = { datapath: 'kernel', reason: '--datapath kernel' } as const;
  const unavailable = datapathProblem('auto', us, mesh('kernel'), NO_ESP);
  assert.equal(unavailable?.reason, 'DatapathUnavailable');
  assert.match(unavailable?.message ?? '', /asks for the kernel data path, but on this node the kernel refuses ESP states \(EPROTONOSUPPORT\); set spec\.datapath to auto or userspace/);
  const mismatch = datapathProblem('kernel', k, mesh('userspace'), ESP);
  assert.equal(mismatch?.reason, 'DatapathMismatch');
  assert.match(mismatch?.message ?? '', /asks for the userspace data path; this agent runs kernel \(--datapath kernel\): restart it with --datapath userspace or auto/);
  assert.equal(datapathProblem('userspace', us, mesh('kernel'), ESP)?.reason, 'DatapathMismatch', 'a kernel with ESP but an agent forced to userspace');
  assert.match(datapathProblem('auto', k, mesh('userspace'), ESP)?.message ?? '', /restart the agent \(the data path is chosen at start\)/, 'the mesh changed after an auto start');
  assert.equal(datapathProblem('auto', us, mesh('auto'), NO_ESP), undefined);
  assert.equal(datapathProblem('kernel', k, mesh('auto'), ESP), undefined);
  assert.match(datapathProblem('kernel', k, mesh('auto'), NO_ESP)?.message ?? '', /runs the kernel data path \(--datapath kernel\), but the kernel refuses ESP states \(EPROTONOSUPPORT\); run it with --datapath auto or userspace/);
  assert.equal(datapathProblem('auto', us, mesh('userspace'), NO_ESP), undefined);
});

function peer(node: string, children: ChildConfig[], esp = ['aes256gcm16-x25519']): DesiredPeer {
  const config = {
    name: `mesh/${node}`, local: { address: '192.0.2.11', id: { type: 'fqdn', value: 'node-a' } }, remote: { address: '192.0.2.12', id: { type: 'fqdn', value: node } },
    auth: { method: 'psk', psk: new Uint8Array(32) }, ike: { proposals: ['aes256gcm16-prfsha384-x25519'] },
    children: children.map((c) => ({ ...c, espProposals: esp })), startAction: 'initiate', natTraversal: 'auto',
  } as unknown as PeerConfig;
  return { name: config.name, config, digest: 'd', sessionDigest: 's', installRoutes: false, ikeProposalText: [], espProposalText: esp, blocks: [], keepUp: true, kind: { type: 'mesh', node } };
}
const LIFE = { espProposals: [], rekeyTimeMs: 3_600_000, lifeTimeMs: 3_960_000 };
const pods = (remote: string): ChildConfig => ({ name: 'pods', mode: 'tunnel', localTs: ['10.244.1.0/24'], remoteTs: [remote], ...LIFE });

test('userspace mesh peers: ESP in UDP forced (RFC 3948), transport-mode pairs and suites the engine cannot key skipped with the reason', () => {
  const m: MeshPeers = {
    peers: [
      peer('node-b', [pods('10.244.2.0/24')]),
      peer('node-c', [{ name: 'host', mode: 'transport', localTs: ['192.0.2.11/32'], remoteTs: ['192.0.2.13/32'], ...LIFE }]),
      peer('node-d', [pods('10.244.4.0/24')], ['3des-sha1-modp2048']),
    ],
    skipped: [{ node: 'node-e', reason: 'it has not published its identity yet' }], notes: [],
  };
  const u = userspaceMeshPeers(m);
  assert.deepEqual(u.peers.map((p) => [p.name, p.config.natTraversal]), [['mesh/node-b', 'always']]);
  assert.deepEqual(u.skipped.map((s) => s.node), ['node-e', 'node-c', 'node-d']);
  assert.match(u.skipped[1]!.reason, /transport-mode ESP \(overlay or hostToHost traffic\) needs the kernel data path/);
  assert.match(u.skipped[2]!.reason, /the userspace data path cannot run it: .*3des/);
});

test('a node the mesh wants but not on its data path keeps its peers\' pod CIDRs guarded (strict): no SAs, nothing in clear; other reasons and strict off release them', () => {
  const nodes = [{ metadata: { name: 'node-b' }, spec: { endpoint: { address: '192.0.2.12' }, podCIDRs: ['10.244.2.0/24'] } }] as unknown as Parameters<typeof heldPeerRoutes>[3];
  assert.deepEqual(heldPeerRoutes('DatapathUnavailable', true, ['10.244.1.0/24'], nodes), [{ peer: 'mesh/node-b', remote: ['10.244.2.0/24'], local: ['10.244.1.0/24'] }]);
  assert.equal(heldPeerRoutes('DatapathMismatch', true, ['10.244.1.0/24'], nodes).length, 1);
  assert.deepEqual(heldPeerRoutes('DatapathUnavailable', false, ['10.244.1.0/24'], nodes), []);
  assert.deepEqual(heldPeerRoutes('NotInMesh', true, ['10.244.1.0/24'], nodes), []);
});

test('IPsecNode status.datapath says which data path runs, and status.datapathOffloads the offloads a userspace engine uses (absent on the kernel data path)', () => {
  const base = {
    nowMs: 0, inactive: undefined, peers: [], skipped: [], traffic: { traffic: { mode: 'routed' as const }, source: 'default' as const, message: 'routed' },
    strict: true, certNotAfterMs: undefined, identityValid: true, policiesIn: true, mtu: 1500, xfrmErrors: {}, existing: undefined,
  };
  assert.equal(computeNodeStatus({ ...base, datapath: 'userspace' }).datapath, 'userspace');
  assert.equal(computeNodeStatus({ ...base, datapath: 'kernel' }).datapath, 'kernel');
  assert.deepEqual(computeNodeStatus({ ...base, datapath: 'userspace', offloads: ['udpGso', 'tunTso'] }).datapathOffloads, ['udpGso', 'tunTso']);
  assert.deepEqual(computeNodeStatus({ ...base, datapath: 'userspace', offloads: [] }).datapathOffloads, []);
  assert.equal('datapathOffloads' in computeNodeStatus({ ...base, datapath: 'kernel', offloads: undefined }), false);
});

/** An rtnetlink stand-in keeping table 221 and the rules as `ip route` / `ip rule` would, and the order of changes. */
function fakeRtnl(initial: RouteSpec[] = [], initialRules: RuleSpec[] = []) {
  const routes = new Map<string, RouteSpec>();
  const policy = new Map<string, RuleSpec>();
  const ops: string[] = [];
  const rk = (r: RouteSpec): string => `${r.type === 'blackhole' ? 'blackhole ' : ''}${r.dst}${r.dev ? ` dev ${String(r.dev)}` : ''} metric ${r.metric ?? 0}`;
  const pk = (r: RuleSpec): string => `${r.priority} from ${r.src ?? 'all'} to ${r.dst ?? 'all'}${r.iif ? ` iif ${r.iif}` : ''} ${r.action === 'blackhole' ? 'blackhole' : `lookup ${r.action.table}`}`;
  for (const r of initial) routes.set(rk(r), r);
  for (const r of initialRules) policy.set(pk(r), r);
  const lookups: string[] = [];
  const rtnl = {
    listRoutes: (_fam: number, table: number) => Promise.resolve([...routes.values()].filter((r) => r.table === table).map((r) => ({ ...r, protocol: 4 }))),
    listRules: (fam: number, prios: readonly number[]) => Promise.resolve(fam === 2 ? [...policy.values()].filter((r) => prios.includes(r.priority)) : []),
    ensureRule: (fam: number, table: number, prio: number) => { lookups.push(`${fam} ${prio} ${table}`); return Promise.resolve(); },
    addRoute: (r: RouteSpec) => { routes.set(rk(r), r); ops.push(`+ ${rk(r)}`); return Promise.resolve(); },
    deleteRoute: (r: RouteSpec) => { routes.delete(rk(r)); ops.push(`- ${rk(r)}`); return Promise.resolve(); },
    addRule: (r: RuleSpec) => { policy.set(pk(r), r); ops.push(`+ ${pk(r)}`); return Promise.resolve(); },
    deleteRule: (r: RuleSpec) => { policy.delete(pk(r)); ops.push(`- ${pk(r)}`); return Promise.resolve(); },
  };
  return { rtnl: rtnl as unknown as RtnlClient, show: () => [...routes.keys(), ...policy.keys()].sort(), lookups, ops };
}
const silent = createLogger({ level: 'silent' });
const B = '10.244.2.0/24';
const STRICT_B = [`${INBOUND_DROP_PRIORITY} from ${B} to 10.244.1.0/24 blackhole`, `${INBOUND_PASS_PRIORITY} from ${B} to 10.244.1.0/24 iif kipsec0 lookup 254`, `blackhole ${B} metric ${BLACKHOLE_METRIC}`];

test('userspace strict mode: before the engine knows a new peer its pod CIDRs are blackholed both ways; once the engine runs they are routed into the TUN; a departed peer\'s go after its SAs', async () => {
  const f = fakeRtnl();
  const dp = { tunName: 'kipsec0', isOpen: false };
  const r = new MeshTunRoutes({ rtnl: f.rtnl, datapath: dp as unknown as UserspaceDatapath, log: silent });
  const b = meshPeerRoutes([peer('node-b', [pods(B)])]);
  await r.add(b, true);
  assert.deepEqual(f.show(), [...STRICT_B].sort());
  assert.deepEqual(f.lookups, [`2 221 ${MESH_TUN_TABLE}`], 'one lookup rule ahead of main: the CNI\'s own route to those pods stays untouched');
  dp.isOpen = true;
  await r.sync(b, true);
  assert.deepEqual(f.show(), [`${B} dev kipsec0 metric ${TUN_ROUTE_METRIC}`, ...STRICT_B].sort());
  assert.ok(f.ops.indexOf(`+ blackhole ${B} metric ${BLACKHOLE_METRIC}`) < f.ops.indexOf(`+ ${B} dev kipsec0 metric ${TUN_ROUTE_METRIC}`), 'the drop is in before the way around it');
  await r.sync([], true);
  assert.deepEqual(f.show(), []);
});

test('userspace strict mode: what an earlier agent left is taken over, not re-added, and a stale peer\'s removed; without strict only the TUN routes; removeAll empties it', async () => {
  const left: RouteSpec = { dst: B, type: 'blackhole', table: MESH_TUN_TABLE, metric: BLACKHOLE_METRIC };
  const stale: RouteSpec = { dst: '10.244.9.0/24', type: 'blackhole', table: MESH_TUN_TABLE, metric: BLACKHOLE_METRIC };
  const staleRule: RuleSpec = { priority: INBOUND_DROP_PRIORITY, src: '10.244.9.0/24', dst: '10.244.1.0/24', action: 'blackhole' };
  const f = fakeRtnl([left, stale], [staleRule]);
  const r = new MeshTunRoutes({ rtnl: f.rtnl, datapath: { tunName: 'kipsec0', isOpen: true } as unknown as UserspaceDatapath, log: silent });
  await r.sync(meshPeerRoutes([peer('node-b', [pods(B)])]), true);
  assert.deepEqual(f.show(), [`${B} dev kipsec0 metric ${TUN_ROUTE_METRIC}`, ...STRICT_B].sort());
  assert.ok(!f.ops.includes(`+ blackhole ${B} metric ${BLACKHOLE_METRIC}`), 'not re-added: no gap');
  await r.sync(meshPeerRoutes([peer('node-b', [pods(B)])]), false);
  assert.deepEqual(f.show(), [`${B} dev kipsec0 metric ${TUN_ROUTE_METRIC}`]);
  assert.equal(await r.removeAll(), 1);
  assert.deepEqual(f.show(), []);
});

test('userspace on an overlay: the detected VXLAN device is named, but the node publishes routed traffic, so each pair is one tunnel-mode pod CIDR child through the TUN (the engine has no transport mode); routed stays as it is', () => {
  const links = [{ index: 1, name: 'lo', mtu: 65536, up: true }, { index: 5, name: 'flannel.1', mtu: 1450, up: true, kind: 'vxlan', udpPort: 4789 }];
  const r = userspaceTraffic(resolveTraffic({ trafficMode: 'auto', overlay: undefined }, links));
  assert.deepEqual([r.traffic, r.source], [{ mode: 'routed' }, 'detected']);
  assert.match(r.message, /flannel\.1 \(vxlan port 4789\).*userspace data path has no transport mode: pod CIDRs in tunnel mode through its TUN device/);
  const asked = userspaceTraffic(resolveTraffic({ trafficMode: 'overlay', overlay: { protocol: 'vxlan', port: 4789 } }, links));
  assert.deepEqual([asked.traffic, asked.source], [{ mode: 'routed' }, 'mesh']);
  const routed = resolveTraffic({ trafficMode: 'auto', overlay: undefined }, links.slice(0, 1));
  assert.equal(userspaceTraffic(routed), routed);
  const settings = { espProposals: [], espRekeyMs: 60_000, espLifeMs: 80_000, hostToHost: false } as unknown as Parameters<typeof pairChildren>[2];
  const pair = pairChildren({ name: 'node-a', address: '192.0.2.11', podCIDRs: ['10.244.1.0/24'], traffic: r.traffic }, { address: '192.0.2.12', podCIDRs: ['10.244.2.0/24'], traffic: r.traffic }, settings);
  assert.deepEqual(pair.children.map((c) => [c.name, c.mode, c.localTs, c.remoteTs]), [['pods', 'tunnel', ['10.244.1.0/24'], ['10.244.2.0/24']]]);
  assert.equal(pair.note, undefined);
});
