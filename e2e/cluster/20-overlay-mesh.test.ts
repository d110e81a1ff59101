// kipsec on an overlay network (flannel's vxlan backend, Calico VXLAN, Cilium tunnel mode): pod
// packets cross the wire inside node-to-node VXLAN (RFC 7348), so pod CIDR selectors would never
// see them. The agents detect the VXLAN device and encrypt the overlay's UDP between node
// addresses in transport mode instead, OVN-Kubernetes style — the wire must then carry no VXLAN
// frame at all, let alone a plaintext pod packet inside one. An IPsecTunnel on one node (a
// strongSwan "cloud" on the wire, a VPC host behind it): a pod on another node reaches the VPC
// through the active gateway, the leg to it in a tunnel-mode Child SA of the overlay pair (the
// overlay's transport-mode children never see that traffic: it is routed to the gateway, table 220).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RESOURCES, resourcePath } from '../../src/api/kube/client.js';
import { nodeByName, podCidrsOf, WIRE_BRIDGE, type Cluster } from '../lib/cluster-net.js';
import { classifyPcapFile, formatReport, WireCapture, type CaptureReport } from '../lib/capture.js';
import { eventually } from '../lib/kube.js';
import { startMeshLane } from '../lib/mesh-lane.js';
import { Netns, type Scope } from '../lib/netns.js';
import { pskConnection, StrongSwan } from '../lib/strongswan.js';
import { pingCounts, pingMatrix, tcpFailures, tcpStreams } from '../lib/traffic.js';
import { kernelPolicies, kernelStates } from '../lib/xfrm-text.js';

const PORT = 4789;
const CLOUD_IP = '192.0.2.100';
const VPC_NET = '10.99.0.0/24';
const VPC_HOST = '10.99.0.10';
const PSK = 'kipsec overlay gateway e2e: correct horse battery staple';
const IKE = 'aes256gcm16-prfsha384-x25519';

async function captured(t: Scope, c: Cluster, during: () => Promise<void>): Promise<CaptureReport> {
  const cap = await WireCapture.start(t, c.wire);
  await during();
  const stats = await cap.stop();
  assert.ok(stats.complete, `the capture is incomplete: ${JSON.stringify(stats)}`);
  return classifyPcapFile(stats.file, { podCidrs: podCidrsOf(c), overlay: { kind: 'vxlan', port: PORT } });
}

test('VXLAN overlay mesh of three nodes: the agents detect the overlay, encrypt its UDP in transport mode, and the wire carries neither VXLAN nor plaintext between pods', async (t) => {
  const lane = await startMeshLane(t, { nodes: 3, overlay: { kind: 'vxlan', port: PORT }, mesh: {}, label: 'overlay' });
  const c = lane.cluster;
  // The cloud, started now (charon needs some 7 s in this VM): on the wire, the VPC host on its
  // loopback; charon with the kernel's XFRM, answering node-a (the gateway) for the VPC.
  const [nodeA, nodeC] = [nodeByName(c, 'node-a'), nodeByName(c, 'node-c')];
  const cloud = await Netns.create(t, 'cloud');
  await c.wire.run('ip', ['-batch', '-'], { input: `link add p-cloud type veth peer name eth0 netns ${cloud.name}\nlink set p-cloud master ${WIRE_BRIDGE}\nlink set p-cloud up\n` });
  await cloud.run('ip', ['-batch', '-'], { input: `addr add ${CLOUD_IP}/24 dev eth0\nlink set eth0 up\nlink set lo up\naddr add ${VPC_HOST}/24 dev lo\n` });
  const swan = StrongSwan.start(t, cloud, { mode: 'kernel', swanctl: pskConnection({ name: 'vpc', local: CLOUD_IP, remote: nodeA.ip, localTs: VPC_NET, remoteTs: '10.244.0.0/16', proposals: IKE, espProposals: 'aes256gcm16', psk: PSK }) });
  swan.catch(() => undefined);

  await t.test('without kipsec the probe sees VXLAN frames with plaintext pod packets inside (the probe can fail)', async (tt) => {
    const r = await captured(tt, c, async () => { await lane.assertNoLoss(await pingMatrix(c, { count: 2, intervalMs: 200, timeoutMs: 60_000 })); });
    assert.ok(r.plaintextBetweenPodsInOverlay > 0 && r.plaintextOverlay > 0, formatReport(r));
  });

  await lane.startOperator();
  await lane.applyMesh({});   // traffic.mode defaults to auto: the agents find flannel.1
  for (const n of c.nodes) await lane.startAgent(n);
  const t0 = Date.now();
  await lane.waitAllUp(300_000);
  t.diagnostic(`all node pairs established ${((Date.now() - t0) / 1000).toFixed(1)} s after the agents started`);

  await t.test('every node reports the overlay it detected and encrypts in transport mode', async () => {
    for (const n of await lane.ipsecNodes()) {
      assert.deepEqual({ mode: n.status?.traffic?.mode, source: n.status?.traffic?.source, overlay: n.status?.traffic?.overlay }, { mode: 'overlay', source: 'detected', overlay: { protocol: 'vxlan', port: PORT } }, n.metadata.name);
      assert.match(n.status?.traffic?.message ?? '', /flannel\.1 \(vxlan port 4789\)/);
      assert.deepEqual(n.spec.traffic, { mode: 'overlay', overlay: { protocol: 'vxlan', port: PORT } });
      for (const p of n.status?.peers ?? []) assert.deepEqual(p.children?.map((x) => [x.name, x.mode]).sort(), [['overlay-in', 'transport'], ['overlay-out', 'transport']], `${n.metadata.name} → ${p.node}`);
    }
  });

  await t.test('every pod pings every pod on every other node, a TCP stream crosses every node pair, and the wire carries ESP only: no VXLAN, no plaintext', async (tt) => {
    const r = await captured(tt, c, async () => {
      await lane.assertNoLoss(await pingMatrix(c, { count: 3, intervalMs: 200, timeoutMs: 90_000 }));
      assert.deepEqual(tcpFailures(await tcpStreams(c, { bytes: 1 << 20, timeoutMs: 180_000 })), []);
    });
    assert.equal(r.plaintextBetweenPods, 0, formatReport(r));
    assert.equal(r.plaintextOverlay, 0, `VXLAN in clear on the wire: ${formatReport(r)}`);
    assert.ok(r.esp > 100, formatReport(r));
  });

  await t.test('the XFRM inventory is exact: per peer two transport-mode Child SAs (four states) for the overlay port, their policies and blocks, nothing else', async () => {
    for (const n of c.nodes) {
      const peers = c.nodes.filter((x) => x !== n);
      const states = await kernelStates(n.ns);
      assert.equal(states.length, 4 * peers.length, `${n.name}:\n${JSON.stringify(states, null, 1)}`);
      for (const s of states) assert.deepEqual([s.mode, s.alg], ['transport', 'rfc4106(gcm(aes))'], `${n.name} ${s.spi}`);
      assert.equal(new Set(states.map((s) => `${s.dst}|${s.spi}`)).size, states.length, 'unique SPIs');
      const policies = await kernelPolicies(n.ns);
      for (const p of peers) {
        const mine = policies.filter((x) => (x.src === `${n.ip}/32` && x.dst === `${p.ip}/32`) || (x.src === `${p.ip}/32` && x.dst === `${n.ip}/32`));
        const allow = mine.filter((x) => x.action === 'allow').map((x) => `${x.dir} ${x.src.split('/')[0]}:${x.sport ?? '*'}>${x.dst.split('/')[0]}:${x.dport ?? '*'} ${x.proto} ${x.tmpl?.mode}`).sort();
        assert.deepEqual(allow, [
          `in ${p.ip}:${PORT}>${n.ip}:* udp transport`, `in ${p.ip}:*>${n.ip}:${PORT} udp transport`,
          `out ${n.ip}:${PORT}>${p.ip}:* udp transport`, `out ${n.ip}:*>${p.ip}:${PORT} udp transport`,
        ].sort(), `${n.name} → ${p.name}`);
        assert.equal(mine.filter((x) => x.action === 'block').length, 8, `${n.name} → ${p.name}: a block pair for each`);
      }
      assert.equal(policies.length, 12 * peers.length, `${n.name}: nothing else:\n${JSON.stringify(policies, null, 1)}`);
    }
  });

  await t.test('an IPsecTunnel on node-a: a pod on node-c reaches the VPC host through it, the leg node-c → node-a in a tunnel-mode Child SA of their overlay pair (routed there by table 220), the leg to the cloud in the tunnel; no plaintext between node-c\'s pods and the VPC on the wire', async (tt) => {
    const { kube, install } = lane;
    const ns = install.namespace;
    const name = 'to-vpc';
    const s = await swan;
    tt.after(async () => {
      await kube.mergePatch(resourcePath(RESOURCES.ipsecTunnels, { name }), { metadata: { finalizers: [] } }).catch(() => undefined);
      await kube.delete(resourcePath(RESOURCES.ipsecTunnels, { name })).catch(() => undefined);
      await kube.mergePatch(resourcePath(RESOURCES.nodes, { name: nodeA.name }), { metadata: { labels: { 'kipsec.io/gateway': null } } }).catch(() => undefined);
    });
    await kube.create(resourcePath(RESOURCES.secrets, { namespace: ns }), { apiVersion: 'v1', kind: 'Secret', metadata: { name }, data: { psk: Buffer.from(PSK).toString('base64') } });
    await kube.create(resourcePath({ group: 'rbac.authorization.k8s.io', version: 'v1', plural: 'roles' }, { namespace: ns }), { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name: 'kipsec-agent-psk' }, rules: [{ apiGroups: [''], resources: ['secrets'], resourceNames: [name], verbs: ['get'] }] });
    await kube.create(resourcePath({ group: 'rbac.authorization.k8s.io', version: 'v1', plural: 'rolebindings' }, { namespace: ns }), { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: { name: 'kipsec-agent-psk' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'kipsec-agent-psk' }, subjects: [{ kind: 'ServiceAccount', name: 'kipsec-agent', namespace: ns }] });
    await kube.mergePatch(resourcePath(RESOURCES.nodes, { name: nodeA.name }), { metadata: { labels: { 'kipsec.io/gateway': 'true' } } });
    // Policy mode, local.subnets left to the default: every pod CIDR of the cluster.
    await kube.create(resourcePath(RESOURCES.ipsecTunnels), {
      apiVersion: 'kipsec.io/v1alpha1', kind: 'IPsecTunnel', metadata: { name },
      spec: { local: {}, remote: { address: CLOUD_IP, id: CLOUD_IP, subnets: [VPC_NET] }, auth: { psk: { secretRef: { name, namespace: ns } } }, ike: { proposals: [IKE] }, esp: { proposals: ['aes256gcm16'] } },
    });
    const pod = nodeC.pods[0]!;
    const t1 = Date.now();
    await eventually(async () => {
      const r = await pod.ns.run('ping', ['-n', '-c', '1', '-W', '1', '-I', pod.ip, VPC_HOST], { check: false, timeoutMs: 5_000 });
      return pingCounts(r.stdout).received === 1 ? true : undefined;
    }, 90_000, 500, { what: `${pod.name} → ${VPC_HOST} through ${nodeA.name}`, state: async () => `node-c table 220: ${(await nodeC.ns.run('ip', ['route', 'show', 'table', '220'])).stdout}\n${JSON.stringify((await lane.ipsecNodes()).map((n) => [n.metadata.name, n.status?.peers?.map((p) => [p.node, p.children?.map((x) => x.name)]), n.status?.tunnels]))}\n${lane.logs(2500)}\n--- charon ---\n${s.log().slice(-2500)}` });
    tt.diagnostic(`${pod.name} reached ${VPC_HOST} ${((Date.now() - t1) / 1000).toFixed(1)} s after the tunnel was applied`);
    const cap = await WireCapture.start(tt, c.wire);
    const ping = await pod.ns.run('ping', ['-n', '-c', '5', '-i', '0.2', '-W', '2', '-I', pod.ip, VPC_HOST], { check: false, timeoutMs: 30_000 });
    await cloud.run('ping', ['-n', '-c', '2', '-i', '0.2', '-W', '1', '-I', VPC_HOST, nodeC.ip], { check: false, timeoutMs: 10_000 });
    const stats = await cap.stop();
    assert.equal(pingCounts(ping.stdout).received, 5, ping.stdout);
    assert.ok(stats.complete, JSON.stringify(stats));
    const legs = classifyPcapFile(stats.file, { podCidrs: [{ node: nodeC.name, cidr: nodeC.podCidr }, { node: 'vpc', cidr: VPC_NET }], overlay: { kind: 'vxlan', port: PORT } });
    assert.equal(legs.plaintextBetweenPods, 0, `plaintext between ${nodeC.podCidr} and ${VPC_NET}: ${formatReport(legs)}`);
    assert.ok(legs.esp >= 20, `ESP: node-c → node-a → cloud and back, 5 echoes: ${formatReport(legs)}`);
    // The same capture sees the plain probe from the cloud to node-c's own address: the classifier can see plaintext here.
    const probe = classifyPcapFile(stats.file, { podCidrs: [{ node: nodeC.name, cidr: `${nodeC.ip}/32` }, { node: 'vpc', cidr: VPC_NET }] });
    assert.ok(probe.plaintextBetweenPods >= 2, formatReport(probe));
    tt.diagnostic(`${pod.name} → ${VPC_HOST} via ${nodeA.name}: ${formatReport(legs)}`);
    // What carried it: the route to the gateway (table 220) and the overlay pair's tunnel-mode child.
    const routes = (await nodeC.ns.run('ip', ['route', 'show', 'table', '220'])).stdout;
    assert.match(routes, new RegExp(`^${VPC_NET.replace(/\./g, '\\.')} via ${nodeA.ip.replace(/\./g, '\\.')} dev eth0 .*metric 2048`, 'm'), routes);
    const want = JSON.stringify([['gateway-out', 'tunnel'], ['overlay-in', 'transport'], ['overlay-out', 'transport']]);
    const childrenOf = async (): Promise<string> => JSON.stringify((await lane.ipsecNodes()).find((n) => n.metadata.name === nodeC.name)?.status?.peers?.find((p) => p.node === nodeA.name)?.children?.map((x) => [x.name, x.mode]).sort());
    // The status is written every few seconds: the pair's children as node-c reports them once it has.
    await eventually(async () => ((await childrenOf()) === want ? true : undefined), 20_000, 500, { what: `node-c's pair with node-a: children ${want}`, state: childrenOf });

    // The tunnel deleted: its route goes from node-c, and every pair is back to the overlay's two
    // children (the retired child's SAs are swept after the agent's 15 s removal grace).
    const t2 = Date.now();
    await kube.delete(resourcePath(RESOURCES.ipsecTunnels, { name }));
    const inventory = async (): Promise<string> => (await Promise.all(c.nodes.map(async (n) => `${n.name}: ${(await kernelStates(n.ns)).length} states, table 220: ${(await n.ns.run('ip', ['route', 'show', 'table', '220'])).stdout.trim().replace(/\n/g, '; ')}`))).join('\n');
    await eventually(async () => {
      for (const n of c.nodes) {
        if ((await kernelStates(n.ns)).length !== 4 * (c.nodes.length - 1)) return undefined;
        if ((await n.ns.run('ip', ['route', 'show', 'table', '220'])).stdout.includes(VPC_NET)) return undefined;
      }
      return true;
    }, 60_000, 1000, { what: 'the tunnel\'s route, Child SAs and the overlay pairs\' gateway children gone', state: inventory });
    tt.diagnostic(`tunnel deleted: its routes and SAs gone from every node in ${((Date.now() - t2) / 1000).toFixed(1)} s`);
  });

  await t.test('traffic.hostToHost: every pair renegotiates to one transport-mode Child SA for all traffic between the node addresses; node-to-node pings, the overlay and IKE itself keep working, and none of it is in clear', async (tt) => {
    await lane.applyMesh({ traffic: { hostToHost: true } });
    const t1 = Date.now();
    const want = c.nodes.length - 1;
    for (;;) {
      const ns = await lane.ipsecNodes();
      if (ns.every((n) => n.spec.traffic?.hostToHost === true && n.status?.peersUp === want && (n.status.peers ?? []).every((p) => p.children?.length === 1 && p.children[0]!.name === 'host'))) break;
      assert.ok(Date.now() - t1 < 300_000, `pairs not renegotiated to hostToHost: ${JSON.stringify(ns.map((n) => [n.metadata.name, n.status?.peers?.map((p) => [p.node, p.state, p.children?.map((x) => x.name)])]))}\n${lane.logs(2000)}`);
      await new Promise((r) => setTimeout(r, 1000));
    }
    tt.diagnostic(`every pair renegotiated to hostToHost in ${((Date.now() - t1) / 1000).toFixed(1)} s`);
    const cap = await WireCapture.start(tt, c.wire);
    await lane.assertNoLoss(await pingMatrix(c, { count: 3, intervalMs: 200, timeoutMs: 90_000 }));
    for (const n of c.nodes) for (const p of c.nodes) if (n !== p) {
      const r = await n.ns.run('ping', ['-n', '-q', '-c', '3', '-i', '0.2', '-W', '5', p.ip], { check: false, timeoutMs: 60_000 });
      assert.match(r.stdout, /3 received/, `${n.name} → ${p.name} node address: ${r.stdout}`);
    }
    const stats = await cap.stop();
    assert.ok(stats.complete);
    const report = classifyPcapFile(stats.file, { podCidrs: podCidrsOf(c), overlay: { kind: 'vxlan', port: PORT } });
    assert.equal(report.plaintextBetweenPods, 0, formatReport(report));
    assert.equal(report.plaintextOverlay, 0, formatReport(report));
    const clearIcmp = await c.wire.run('tcpdump', ['-r', stats.file, '-nn', 'icmp'], { check: false });
    assert.equal(clearIcmp.stdout.trim(), '', `ICMP between node addresses in clear:\n${clearIcmp.stdout.slice(0, 2000)}`);
    for (const n of c.nodes) {
      const states = await kernelStates(n.ns);
      assert.equal(states.length, 2 * want, `${n.name}: one in/out pair per peer`);
      assert.ok(states.every((s) => s.mode === 'transport'));
    }
  });
});
