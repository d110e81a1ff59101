// kipsec on an overlay network (flannel's vxlan backend, Calico VXLAN, Cilium tunnel mode): pod
// packets cross the wire inside node-to-node VXLAN (RFC 7348), so pod CIDR selectors would never
// see them. The agents detect the VXLAN device and encrypt the overlay's UDP between node
// addresses in transport mode instead, OVN-Kubernetes style — the wire must then carry no VXLAN
// frame at all, let alone a plaintext pod packet inside one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { podCidrsOf, type Cluster } from '../lib/cluster-net.js';
import { classifyPcapFile, formatReport, WireCapture, type CaptureReport } from '../lib/capture.js';
import { startMeshLane } from '../lib/mesh-lane.js';
import type { Scope } from '../lib/netns.js';
import { pingMatrix, tcpFailures, tcpStreams } from '../lib/traffic.js';
import { kernelPolicies, kernelStates } from '../lib/xfrm-text.js';

const PORT = 4789;

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
