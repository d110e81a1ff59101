// The cluster lane's overlay mesh (e2e/cluster/20-overlay-mesh.test.ts) on the userspace ESP data
// path, on this host's kernel (`--datapath auto` chooses userspace: no esp4) with the lane's real
// kube-apiserver — no VM. Pod packets between nodes cross the wire inside flannel-style VXLAN
// (RFC 7348) until kipsec runs. The userspace engine has no transport mode, so the agents do not
// encrypt the overlay's UDP: each node names the VXLAN device it found, publishes routed traffic,
// and its pod CIDRs go in tunnel mode through the TUN device, whose routes (table 221, ahead of
// the overlay's routes in main) take pod packets to mesh peers past flannel.1 (DESIGN.md §5,
// src/agent/mesh/datapath.ts). What must show: pods on different nodes reach each other, TCP
// arrives byte-identical, and the wire carries ESP in UDP only — no VXLAN frame, no pod packet in
// clear — while the same probe sees both before kipsec runs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { podCidrsOf, type Cluster } from '../lib/cluster-net.js';
import { classifyPcapFile, formatReport, WireCapture, type CaptureReport } from '../lib/capture.js';
import { hostLaneSocket } from '../lib/lane-kube.js';
import { startMeshLane } from '../lib/mesh-lane.js';
import type { Scope } from '../lib/netns.js';
import { pingMatrix, tcpFailures, tcpStreams } from '../lib/traffic.js';

const PORT = 4789;
const DPD = { interval: '5s', timeout: '20s' };
const AUTO = { args: ['--datapath', 'auto'], why: 'the data path choice under test (deploy/agent.yaml leaves the cluster default, which is also auto)' };

async function captured(t: Scope, c: Cluster, during: () => Promise<void>): Promise<CaptureReport> {
  const cap = await WireCapture.start(t, c.wire);
  await during();
  const stats = await cap.stop();
  assert.ok(stats.complete, `the capture is incomplete: ${JSON.stringify({ captured: stats.captured, received: stats.receivedByFilter, dropped: stats.droppedByKernel, endedEarly: stats.endedEarly })}`);
  return classifyPcapFile(stats.file, { podCidrs: podCidrsOf(c), overlay: { kind: 'vxlan', port: PORT } });
}

test('userspace mesh of three nodes on a VXLAN overlay, on the host kernel: the agents find the overlay, carry pod CIDRs in tunnel mode through the TUN past it, and the wire carries ESP in UDP only — no VXLAN, no plaintext', { timeout: 300_000 }, async (t) => {
  assert.equal(process.getuid?.(), 0, 'this test builds network namespaces: run it as root (the lanes do)');
  await hostLaneSocket(t);
  const lane = await startMeshLane(t, { nodes: 3, overlay: { kind: 'vxlan', port: PORT }, mesh: { datapath: 'auto', dpd: DPD }, label: 'us-overlay', agentArgs: AUTO });
  const c = lane.cluster;

  await t.test('without kipsec the probe sees VXLAN frames with plaintext pod packets inside (the probe can fail)', async (tt) => {
    const r = await captured(tt, c, async () => { await lane.assertNoLoss(await pingMatrix(c, { count: 2, intervalMs: 200, timeoutMs: 60_000 })); });
    assert.ok(r.plaintextBetweenPodsInOverlay > 0 && r.plaintextOverlay > 0, formatReport(r));
  });

  await lane.startOperator();
  await lane.applyMesh({ datapath: 'auto', dpd: DPD }); // traffic.mode defaults to auto: the agents find flannel.1
  for (const n of c.nodes) await lane.startAgent(n);
  const t0 = Date.now();
  await lane.waitAllUp(240_000);
  t.diagnostic(`all 3 node pairs established ${((Date.now() - t0) / 1000).toFixed(1)} s after the agents started`);

  await t.test('every node runs userspace, names the overlay it found and why its pod CIDRs go in tunnel mode instead, and has one tunnel-mode pod child per peer', async () => {
    for (const n of await lane.ipsecNodes()) {
      assert.equal(n.status?.datapath, 'userspace', n.metadata.name);
      assert.deepEqual({ mode: n.status?.traffic?.mode, source: n.status?.traffic?.source }, { mode: 'routed', source: 'detected' }, n.metadata.name);
      assert.match(n.status?.traffic?.message ?? '', /flannel\.1 \(vxlan port 4789\).*userspace data path has no transport mode: pod CIDRs in tunnel mode through its TUN device/);
      assert.deepEqual(n.spec.traffic, { mode: 'routed' });
      for (const p of n.status?.peers ?? []) assert.deepEqual(p.children?.map((x) => [x.name, x.mode]), [['pods', 'tunnel']], `${n.metadata.name} → ${p.node}`);
    }
    for (const n of c.nodes) {
      const table = (await n.ns.run('ip', ['route', 'show', 'table', '221'])).stdout;
      for (const p of c.nodes.filter((x) => x !== n)) assert.match(table, new RegExp(`^${p.podCidr.replace(/\./g, '\\.')} dev kipsec0 `, 'm'), `${n.name}: ${p.name}'s pods through the TUN:\n${table}`);
    }
  });

  await t.test('every pod pings every pod on every other node, a 2 MiB TCP stream per node pair arrives byte-identical, and the wire carries ESP in UDP only: no VXLAN, no plaintext', async (tt) => {
    let tcpBytes = 0;
    const r = await captured(tt, c, async () => {
      await lane.assertNoLoss(await pingMatrix(c, { count: 3, intervalMs: 200, timeoutMs: 90_000 }));
      const streams = await tcpStreams(c, { bytes: 2 << 20, timeoutMs: 180_000 });
      assert.deepEqual(tcpFailures(streams), []);
      assert.ok(streams.every((s) => s.matched && s.received === 2 << 20), JSON.stringify(streams));
      tcpBytes = streams.reduce((n, s) => n + s.received, 0);
    });
    tt.diagnostic(formatReport(r));
    assert.equal(r.plaintextBetweenPods, 0, formatReport(r));
    assert.equal(r.plaintextOverlay, 0, `VXLAN on the wire: ${formatReport(r)}`);
    assert.equal(r.overlayFrames, 0, formatReport(r));
    assert.equal(r.esp, r.espInUdp, 'no raw ESP: the userspace engine does ESP in UDP only (RFC 3948)');
    // Bytes, not packets: with UDP GSO up to 64 ESP datagrams cross the veth as one captured packet.
    assert.ok(tcpBytes > 0 && r.espInUdpBytes > tcpBytes, `ESP in UDP carried more than the ${tcpBytes} B of TCP payload: ${formatReport(r)}`);
    assert.equal(r.undecodable, 0);
  });
});
