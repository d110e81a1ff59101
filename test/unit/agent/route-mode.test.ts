// Route-based tunnels in the standalone agent (mode: route, or a cloud profile): the config
// compiles to 0.0.0.0/0 selectors, an if_id on the Child SA and an XFRM interface with the
// profile's MTU; XfrmInterfaces creates that interface (`ip link add NAME type xfrm if_id N`),
// its inside address and the routes over it, adopts its own after a restart, refuses to touch an
// interface that is not its own, and leaves nothing when a step fails. Kernel side faked here;
// e2e/netns/xfrm-interface.test.ts runs the same against the kernel.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfigText, type ConfigFs } from '../../../src/agent/config.js';
import { peerConfigOf } from '../../../src/agent/peers.js';
import { userspacePeer } from '../../../src/agent/userspace/peer.js';
import type { TunnelConfig } from '../../../src/agent/tunnel.js';
import { XfrmInterfaces, aliasOf, type LinksPort, type RtnlPort } from '../../../src/agent/xfrm-interfaces.js';
import type { RouteSpec, XfrmInterfaceSpec } from '../../../src/xfrm/index.js';
import type { RouteState } from '../../../src/xfrm/rtnl/client.js';
import type { XfrmLinkState } from '../../../src/xfrm/rtnl/xfrm-links.js';
import { logSink } from './fakes.js';

const PSK = 'correct horse battery staple, twenty+';
const fs: ConfigFs = { readText: () => PSK, readBytes: () => new Uint8Array(Buffer.from(PSK)), mode: () => 0o600 };

const doc = (name: string, extra: string) => `apiVersion: kipsec.io/v1alpha1
kind: IPsecTunnel
metadata: {name: ${name}}
spec:
  local: {address: 192.0.2.1, subnets: [10.1.0.0/16]}
  remote: {address: 203.0.113.10, subnets: [172.31.0.0/16, 172.30.0.0/16]}
  auth: {psk: {file: psk}}
${extra}`;

function load(text: string): TunnelConfig[] {
  const r = loadConfigText(text, '/etc/kipsec', fs);
  assert.ok(r.ok, JSON.stringify(!r.ok && r.problems));
  return [...r.tunnels];
}

test('profile aws compiles to route mode: 0.0.0.0/0 selectors, the if_id on the Child SA, MTU 1446, routes over the interface instead of table 220', () => {
  const [t] = load(doc('to-aws-1', '  profile: aws\n  xfrmInterface: {ifId: 41, insideAddress: 169.254.10.2/30}\n'));
  assert.deepEqual([t!.mode, t!.profile, t!.localTs, t!.remoteTs], ['route', 'aws', ['0.0.0.0/0'], ['0.0.0.0/0']]);
  assert.deepEqual(t!.xfrmInterface, { name: 'xfrm41', ifId: 41, insideAddress: '169.254.10.2/30', mtu: 1446 });
  assert.deepEqual([t!.installRoutes, t!.interfaceRoutes, t!.xfrmIfId], [false, true, 41]);
  const child = peerConfigOf(t!).children[0]!;
  assert.deepEqual([child.localTs, child.remoteTs, child.ifId], [['0.0.0.0/0'], ['0.0.0.0/0'], 41]);
});

test('policy mode keeps the subnets as selectors, no if_id, table-220 routes', () => {
  const [t] = load(doc('plain', ''));
  assert.deepEqual([t!.mode, t!.localTs, t!.remoteTs, t!.xfrmInterface, t!.installRoutes, t!.interfaceRoutes], ['policy', ['10.1.0.0/16'], ['172.31.0.0/16', '172.30.0.0/16'], undefined, true, false]);
  assert.equal(peerConfigOf(t!).children[0]!.ifId, undefined);
});

test('two route-mode tunnels may not share an if_id or an interface name (their SAs and routes would mix)', () => {
  const text = [doc('a', '  mode: route\n  xfrmInterface: {ifId: 5, name: vti-a}\n'), doc('b', '  mode: route\n  xfrmInterface: {ifId: 5, name: vti-a}\n')].join('---\n');
  const r = loadConfigText(text, '/etc/kipsec', fs);
  assert.ok(!r.ok);
  assert.deepEqual(r.problems.map((p) => `${p.path}: ${p.message}`), ["b spec.xfrmInterface.ifId: if_id 5 is also tunnel a's", "b spec.xfrmInterface.name: interface vti-a is also tunnel a's"]);
});

test('a profile value that contradicts an explicit one is refused naming both (esp.lifeTime from aws is 1h)', () => {
  const r = loadConfigText(doc('x', '  profile: aws\n  mode: policy\n  esp: {rekeyTime: 2h}\n'), '/etc/kipsec', fs);
  assert.ok(!r.ok);
  assert.deepEqual(r.problems.map((p) => `${p.path}: ${p.message}`), ['x spec.esp.lifeTime (from profile aws): must be longer than rekeyTime (2h); the SA must outlive its rekey']);
});

test('route mode refuses startAction on-demand: trap policies without an if_id and 0.0.0.0/0 selectors would catch all of the host\'s traffic', () => {
  const r = loadConfigText(doc('x', '  profile: gcp\n  startAction: on-demand\n  xfrmInterface: {ifId: 3}\n'), '/etc/kipsec', fs);
  assert.ok(!r.ok);
  assert.deepEqual(r.problems.map((p) => p.path), ['x spec.startAction']);
});

/** The rtnetlink side as a list of calls, with links the test can pre-seed. */
function fakeKernel(seed: XfrmLinkState[] = [], failOn?: string, routes: RouteState[] = []) {
  const calls: string[] = [];
  const links = [...seed];
  let next = 100;
  const fail = (what: string): void => { calls.push(what); if (failOn && what.startsWith(failOn)) throw new Error(`${what}: EINVAL`); };
  const rtnl: RtnlPort = {
    addXfrmInterface: (s: XfrmInterfaceSpec) => { fail(`add ${s.name} if_id ${s.ifId} link ${String(s.link)} mtu ${String(s.mtu)}`); links.push({ index: next, name: s.name, mtu: s.mtu ?? 1500, up: false, ifId: s.ifId, link: 0 }); return Promise.resolve(next++); },
    deleteLink: (dev: string | number) => { fail(`del ${dev}`); const i = links.findIndex((l) => l.index === dev); if (i >= 0) links.splice(i, 1); return Promise.resolve(); },
    setLinkUp: (dev: string | number) => { fail(`up ${dev}`); return Promise.resolve(); },
    setLinkMtu: (dev: string | number, mtu: number) => { fail(`mtu ${dev} ${mtu}`); return Promise.resolve(); },
    addRoute: (r: RouteSpec) => { fail(`route ${r.dst} dev ${String(r.dev)} table ${String(r.table)}${r.metric !== undefined ? ` metric ${r.metric}` : ''}`); return Promise.resolve(); },
    deleteRoute: (r: RouteSpec) => { fail(`unroute ${r.dst}`); return Promise.resolve(); },
    listRoutes: (family?: number) => Promise.resolve(family === 2 ? routes : []),
    routeGet: () => Promise.resolve({ oif: 2 }),
  };
  const open = (): LinksPort => ({
    list: () => Promise.resolve(links.map((l) => ({ ...l }))),
    setAlias: (i: number, a: string) => { fail(`alias ${i} ${a}`); const l = links.find((x) => x.index === i); if (l) links[links.indexOf(l)] = { ...l, alias: a }; return Promise.resolve(); },
    addAddress: (i: number, c: string) => { fail(`addr ${i} ${c}`); return Promise.resolve(); },
    deleteAddress: (i: number, c: string) => { fail(`unaddr ${i} ${c}`); return Promise.resolve(); },
    addresses: () => Promise.resolve([]),
    close: () => { calls.push('close'); },
  });
  return { rtnl, open, calls, links };
}

const awsTunnel = (): TunnelConfig => load(doc('to-aws-1', '  profile: aws\n  xfrmInterface: {ifId: 41, insideAddress: 169.254.10.2/30}\n'))[0]!;

test('sync creates the interface (link = the device toward the peer, MTU), marks it, gives it the inside address, brings it up and routes the remote subnets over it in the main table', async () => {
  const k = fakeKernel();
  await new XfrmInterfaces(k.rtnl, k.open, logSink().log).sync([awsTunnel()]);
  assert.deepEqual(k.calls, [
    'add xfrm41 if_id 41 link 2 mtu 1446', `alias 100 ${aliasOf('to-aws-1')}`, 'addr 100 169.254.10.2/30', 'up 100',
    'route 172.31.0.0/16 dev 100 table 254', 'route 172.30.0.0/16 dev 100 table 254', 'close',
  ]);
});

test('a restarted agent adopts its own interface (same if_id): no new link, the MTU set again, nothing deleted', async () => {
  const k = fakeKernel([{ index: 7, name: 'xfrm41', mtu: 1500, up: true, ifId: 41, link: 2, alias: 'kipsec:to-aws-1' }]);
  await new XfrmInterfaces(k.rtnl, k.open, logSink().log).sync([awsTunnel()]);
  assert.ok(!k.calls.some((c) => c.startsWith('add ') || c.startsWith('del ')), k.calls.join('\n'));
  assert.ok(k.calls.includes('mtu 7 1446'));
});

test('an interface of the same name that is not ours is left alone and the tunnel is refused naming spec.xfrmInterface.name', async () => {
  const k = fakeKernel([{ index: 9, name: 'xfrm41', mtu: 1500, up: true, ifId: 41, link: 0 }]);
  await assert.rejects(new XfrmInterfaces(k.rtnl, k.open, logSink().log).sync([awsTunnel()]), /to-aws-1: spec\.xfrmInterface\.name: interface xfrm41 exists and is not this tunnel's/);
  assert.deepEqual(k.calls, ['close']);
});

test('never half-installed: a failing step deletes the interface it made (routes and addresses go with it)', async () => {
  const k = fakeKernel([], 'addr');
  await assert.rejects(new XfrmInterfaces(k.rtnl, k.open, logSink().log).sync([awsTunnel()]), /to-aws-1: addr 100 169\.254\.10\.2\/30: EINVAL/);
  assert.deepEqual(k.calls.slice(-2), ['del 100', 'close']);
  assert.deepEqual(k.links, []);
});

test('interfaces of tunnels no longer configured are removed, other people\'s are not; removeAll takes every one of ours', async () => {
  const k = fakeKernel([
    { index: 7, name: 'xfrm9', mtu: 1400, up: true, ifId: 9, link: 0, alias: 'kipsec:gone' },
    { index: 8, name: 'ipsec0', mtu: 1400, up: true, ifId: 1, link: 0, alias: 'strongswan' },
  ]);
  const x = new XfrmInterfaces(k.rtnl, k.open, logSink().log);
  await x.sync([awsTunnel()]);
  assert.ok(k.calls.includes('del 7') && !k.calls.includes('del 8'));
  assert.equal(await x.removeAll(), 1);
  assert.deepEqual(k.links.map((l) => l.name), ['ipsec0']);
});

test('AWS\'s two tunnels: both route the remote subnets, each over its own interface, told apart by routeMetric (lower preferred)', async () => {
  const text = [doc('aws-t1', '  profile: aws\n  xfrmInterface: {ifId: 41, insideAddress: 169.254.10.2/30, routeMetric: 100}\n'),
    doc('aws-t2', '  profile: aws\n  xfrmInterface: {ifId: 42, insideAddress: 169.254.11.2/30, routeMetric: 200}\n')].join('---\n');
  const k = fakeKernel();
  await new XfrmInterfaces(k.rtnl, k.open, logSink().log).sync(load(text));
  assert.deepEqual(k.calls.filter((c) => c.startsWith('route 172.31.')), ['route 172.31.0.0/16 dev 100 table 254 metric 100', 'route 172.31.0.0/16 dev 101 table 254 metric 200']);
});

test('the userspace data path refuses route mode naming spec.mode: it has one TUN device and no if_id', () => {
  assert.throws(() => userspacePeer(peerConfigOf(awsTunnel())), /spec\.mode: route mode needs XFRM interfaces, which --datapath userspace does not have/);
});

test('a re-sync removes only its own stale routes over the interface (proto static), not the kernel\'s, hand-made or a BGP daemon\'s', async () => {
  const over = (dst: string, protocol: number): RouteState => ({ dst, dev: 7, table: 254, protocol });
  const k = fakeKernel([{ index: 7, name: 'xfrm41', mtu: 1446, up: true, ifId: 41, link: 2, alias: 'kipsec:to-aws-1' }], undefined,
    [over('172.29.0.0/16', 4), over('169.254.10.0/30', 2), over('192.168.7.0/24', 3), over('10.99.0.0/16', 12), over('172.31.0.0/16', 4)]);
  await new XfrmInterfaces(k.rtnl, k.open, logSink().log).sync([awsTunnel()]);
  assert.deepEqual(k.calls.filter((c) => c.startsWith('unroute')), ['unroute 172.29.0.0/16']);
});
