// kipsec as a platform engineer installs it, on a routed network (kindnet, Calico BGP, flannel
// host-gw: each node routes the others' pod CIDRs to their node address): three nodes, two pods
// each, the operator and the agents run as deploy/ describes them. What the product promises:
// every pod reaches every pod on every other node, the wire carries ESP only between pod CIDRs,
// plaintext from a peer's pod CIDR that did not come through its SA is dropped, a dead agent or a
// deleted SA never lets traffic out in clear (strict mode), the kernel holds exactly what the mesh
// needs, and the statuses, `kubectl get ipsecnodes`, `kipsec status` and /metrics tell the truth.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { agentBundle } from '../vm/agent-harness.js';
import { repoPath } from '../../test/lib/paths.js';
import { nodeByName, podCidrsOf, type Cluster } from '../lib/cluster-net.js';
import { classifyPcapFile, formatReport, WireCapture, type CaptureReport } from '../lib/capture.js';
import { eventually } from '../lib/kube.js';
import { laneBin } from '../lib/lane-kube.js';
import { icmpInEchos, inject, startMeshLane } from '../lib/mesh-lane.js';
import type { Scope } from '../lib/netns.js';
import { ContinuousPing, pingMatrix, tcpFailures, tcpStreams } from '../lib/traffic.js';
import { kernelPolicies, kernelStates, xfrmStat } from '../lib/xfrm-text.js';

const DPD = { interval: '5s', timeout: '20s' };

function run(cmd: string, args: readonly string[], timeoutMs = 120_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs, killSignal: 'SIGKILL', encoding: 'utf8', maxBuffer: 16 << 20, cwd: repoPath() }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

/** Capture on the wire while `during` runs; the capture must be complete to be believed. */
async function captured(t: Scope, c: Cluster, during: () => Promise<void>): Promise<CaptureReport> {
  const cap = await WireCapture.start(t, c.wire);
  try { await during(); } finally { /* stop below either way */ }
  const stats = await cap.stop();
  assert.ok(stats.complete, `the capture is incomplete (${JSON.stringify({ captured: stats.captured, received: stats.receivedByFilter, dropped: stats.droppedByKernel, endedEarly: stats.endedEarly })}): a "no plaintext" verdict needs every packet`);
  return classifyPcapFile(stats.file, { podCidrs: podCidrsOf(c) });
}

test('routed mesh of three nodes, installed from deploy/: pods reach each other, the wire carries only ESP between pod CIDRs, strict mode never leaks, and status tells the truth', async (t) => {
  const lane = await startMeshLane(t, { nodes: 3, overlay: 'none', mesh: { dpd: DPD }, label: 'routed' });
  const c = lane.cluster;
  const [a, b, cc] = [nodeByName(c, 'node-a'), nodeByName(c, 'node-b'), nodeByName(c, 'node-c')];

  await t.test('without kipsec the probe sees plaintext between pods, and an injected packet with a peer pod\'s source reaches a pod (both probes can fail)', async (tt) => {
    const r = await captured(tt, c, async () => {
      const pings = await pingMatrix(c, { count: 2, intervalMs: 200, timeoutMs: 60_000 });
      await lane.assertNoLoss(pings);
    });
    assert.ok(r.plaintextBetweenPods > 0, formatReport(r));
    const before = await icmpInEchos(a.pods[0]!);
    await inject(tt, lane, a, b.pods[0]!.ip, a.pods[0]!.ip);
    assert.ok(await icmpInEchos(a.pods[0]!) > before, 'the spoofed echo reached the pod: the injection works');
  });

  await lane.startOperator();
  await lane.applyMesh({ dpd: DPD });
  for (const n of c.nodes) await lane.startAgent(n);
  const t0 = Date.now();
  await lane.waitAllUp(300_000);
  t.diagnostic(`all ${c.nodes.length * (c.nodes.length - 1) / 2} node pairs established ${((Date.now() - t0) / 1000).toFixed(1)} s after the agents started`);

  await t.test('IPsecNode statuses, the IPsecMesh status, `kubectl get ipsecnodes`, `kipsec status` on a node and `kipsec status --kubeconfig` say every pair is up', async () => {
    for (const n of await lane.ipsecNodes()) {
      assert.equal(n.status?.datapath, 'kernel');
      assert.equal(n.status?.strict, true);
      assert.equal(n.status?.traffic?.mode, 'routed');
      assert.equal(n.status?.conditions?.find((x) => x.type === 'Ready')?.status, 'True');
      for (const p of n.status?.peers ?? []) {
        assert.equal(p.state, 'established', `${n.metadata.name} → ${p.node}`);
        assert.equal(p.ikeSuite, 'aes256gcm16-prfsha384-x25519');
        assert.match(p.espSuite ?? '', /^aes256gcm16/);
        assert.equal(p.children?.[0]?.mode, 'tunnel');
      }
      assert.equal(n.status?.maxInnerPacketBytes, 1446, 'AES-GCM-16 tunnel mode over the 1500-byte wire');
    }
    const mesh = await lane.mesh();
    await assertEventually(async () => {
      const m = await lane.mesh();
      return m.status?.nodesReady === 3 && (m.status.pairsEstablished === undefined || m.status.pairsEstablished === 3) ? true : undefined;
    }, 60_000, () => `mesh status: ${JSON.stringify(mesh.status)}`);
    const kubeconfig = process.env['KIPSEC_KUBECONFIG']!;
    const get = await run(laneBin('kubectl'), ['--kubeconfig', kubeconfig, 'get', 'ipsecnodes']);
    assert.equal(get.code, 0, get.stderr);
    for (const n of c.nodes) assert.match(get.stdout, new RegExp(`^${n.name}\\s+${n.ip.replace(/\./g, '\\.')}\\s+True\\s+2\\s+2\\s+routed\\s+kernel`, 'm'), get.stdout);
    t.diagnostic(`kubectl get ipsecnodes:\n${get.stdout}`);
    const local = await run(process.execPath, [agentBundle(), 'status', '--control-socket', lane.controlSocket(a)]);
    assert.equal(local.code, 0, local.stderr);
    assert.match(local.stdout, /peers 2\/2 up/);
    assert.match(local.stdout, /mesh\/node-b: 192\.0\.2\.11 <-> 192\.0\.2\.12 {2}IKE ESTABLISHED, initiator/);
    const matrix = await run(process.execPath, [agentBundle(), 'status', '--kubeconfig', kubeconfig]);
    assert.equal(matrix.code, 0, matrix.stderr);
    t.diagnostic(`kipsec status --kubeconfig:\n${matrix.stdout}`);
  });

  // From here on the operator is gone: nothing about traffic may depend on it.
  await lane.stopOperator();

  await t.test('with the operator stopped: every pod pings every pod on every other node, a TCP stream crosses every node pair, and the wire carries ESP only', async (tt) => {
    const r = await captured(tt, c, async () => {
      const pings = await pingMatrix(c, { count: 3, intervalMs: 200, timeoutMs: 90_000 });
      await lane.assertNoLoss(pings);
      const streams = await tcpStreams(c, { bytes: 1 << 20, timeoutMs: 180_000 });
      assert.deepEqual(tcpFailures(streams), []);
    });
    assert.equal(r.plaintextBetweenPods, 0, formatReport(r));
    assert.ok(r.esp > 100, `ESP on the wire: ${formatReport(r)}`);
    assert.equal(r.undecodable, 0);
  });

  await t.test('the XFRM inventory on every node is exact: per peer one inbound and one outbound tunnel-mode AES-GCM-256 SA, out/in/fwd policies and their strict-mode blocks, unique SPIs, nothing else', async () => {
    const spis = new Map<string, string>();
    for (const n of c.nodes) {
      const states = await kernelStates(n.ns);
      const policies = await kernelPolicies(n.ns);
      const peers = c.nodes.filter((x) => x !== n);
      assert.equal(states.length, 2 * peers.length, `${n.name} states:\n${JSON.stringify(states, null, 1)}`);
      for (const s of states) {
        assert.deepEqual([s.proto, s.mode, s.alg, s.keyBits, s.encap], ['esp', 'tunnel', 'rfc4106(gcm(aes))', 288, false], `${n.name} ${s.spi}`);
        assert.equal((s.reqid >>> 24), 0x4b, 'a kipsec reqid');
        const key = `${s.dst}|${s.spi}`;
        const seen = spis.get(key);
        // Each SA appears twice in the cluster: outbound on one node, inbound on the other.
        if (seen) assert.notEqual(seen, n.name, `SPI ${s.spi} twice on ${n.name}`); else spis.set(key, n.name);
      }
      for (const p of peers) {
        const ipsec = policies.filter((x) => x.action === 'allow' && (x.dst === p.podCidr || x.src === p.podCidr));
        assert.deepEqual(ipsec.map((x) => `${x.dir} ${x.src} ${x.dst} ${x.tmpl?.src}>${x.tmpl?.dst} ${x.tmpl?.mode} ${x.priority}`).sort(), [
          `fwd ${p.podCidr} ${n.podCidr} ${p.ip}>${n.ip} tunnel 2000`, `in ${p.podCidr} ${n.podCidr} ${p.ip}>${n.ip} tunnel 2000`, `out ${n.podCidr} ${p.podCidr} ${n.ip}>${p.ip} tunnel 2000`,
        ].sort(), `${n.name} → ${p.name}`);
        const blocks = policies.filter((x) => x.action === 'block' && (x.dst === p.podCidr || x.src === p.podCidr));
        assert.equal(blocks.length, 6, `${n.name} → ${p.name}: out/in/fwd blocks, each a mark pair`);
      }
      assert.equal(policies.length, peers.length * 9, `${n.name}: nothing but the mesh's policies:\n${JSON.stringify(policies, null, 1)}`);
    }
    assert.equal(spis.size, c.nodes.length * (c.nodes.length - 1), 'every SA once per direction, SPIs unique');
  });

  await t.test('/metrics on every node equals the kernel\'s counters of its SAs, and says the node is ready', async () => {
    for (const n of c.nodes) {
      const m = (await n.ns.run('curl', ['-sS', '--max-time', '30', 'http://127.0.0.1:9964/metrics'], { timeoutMs: 40_000 })).stdout;
      const states = await kernelStates(n.ns);
      for (const p of c.nodes.filter((x) => x !== n)) {
        const inbound = states.find((s) => s.src === p.ip && s.dst === n.ip)!;
        const outbound = states.find((s) => s.src === n.ip && s.dst === p.ip)!;
        const val = (dir: string, what: string): number => Number(new RegExp(`^kipsec_agent_child_sa_${what}\\{peer="mesh/${p.name}",child="pods",direction="${dir}"\\} (\\d+)`, 'm').exec(m)?.[1] ?? NaN);
        assert.deepEqual([val('in', 'bytes'), val('in', 'packets'), val('out', 'bytes'), val('out', 'packets')], [inbound.bytes, inbound.packets, outbound.bytes, outbound.packets], `${n.name} → ${p.name}`);
        assert.match(m, new RegExp(`^kipsec_agent_peer_up\\{peer="mesh/${p.name}"\\} 1$`, 'm'));
      }
      assert.match(m, /^kipsec_agent_peers_up 2$/m);
      assert.match(m, /^kipsec_agent_ike_handshake_seconds_count [1-9]/m);
      assert.match(m, /^kipsec_agent_xfrm_stat\{counter="XfrmInNoPols"\} \d+$/m);
      const ready = await n.ns.run('curl', ['-sS', '--max-time', '30', '-o', '/dev/null', '-w', '%{http_code}', 'http://127.0.0.1:9964/readyz'], { timeoutMs: 40_000 });
      assert.equal(ready.stdout, '200');
    }
  });

  await t.test('plaintext injected into a node from a peer\'s pod CIDR, not through the SA, is dropped by the node (the policy demands the SA)', async (tt) => {
    const before = await icmpInEchos(a.pods[0]!);
    const statBefore = await xfrmStat(a.ns);
    await inject(tt, lane, a, b.pods[0]!.ip, a.pods[0]!.ip);
    assert.equal(await icmpInEchos(a.pods[0]!), before, 'no spoofed echo reached the pod');
    const statAfter = await xfrmStat(a.ns);
    const dropped = (statAfter['XfrmInTmplMismatch'] ?? 0) - (statBefore['XfrmInTmplMismatch'] ?? 0) + (statAfter['XfrmInPolBlock'] ?? 0) - (statBefore['XfrmInPolBlock'] ?? 0) + (statAfter['XfrmInNoPols'] ?? 0) - (statBefore['XfrmInNoPols'] ?? 0);
    assert.ok(dropped >= 5, `the kernel counted the drops: ${JSON.stringify({ statBefore, statAfter })}`);
  });

  await t.test('strict: with node-c\'s agent killed (SIGKILL) and its SAs deleted by hand on node-a, a pod\'s traffic to node-c never appears in clear; the peers see node-c fail within the DPD time; a new agent brings every pair back', async (tt) => {
    await lane.withAgentStopped(cc, async () => {
      await lane.agents.get('node-c')!.stop('SIGKILL');
      const from = a.pods[0]!; const to = cc.pods[0]!;
      const r = await captured(tt, c, async () => {
        const ping = new ContinuousPing(from.ns, from.ip, to.ip, { intervalMs: 100 });
        await new Promise((res) => setTimeout(res, 3_000));
        // The kernel's SAs still work without the agent: these pings go through, as ESP.
        await a.ns.run('sh', ['-c', `ip xfrm state deleteall src ${a.ip} dst ${cc.ip}; ip xfrm state deleteall src ${cc.ip} dst ${a.ip}`]);
        for (const [dir, s, d] of [['out', a.podCidr, cc.podCidr], ['in', cc.podCidr, a.podCidr], ['fwd', cc.podCidr, a.podCidr]] as const) {
          await a.ns.run('ip', ['xfrm', 'policy', 'delete', 'src', s, 'dst', d, 'dir', dir], { check: false });
        }
        await new Promise((res) => setTimeout(res, 5_000));
        const res = await ping.stop();
        tt.diagnostic(`pings to node-c with its SAs and policies gone on node-a: ${res.sent} sent, ${res.received} received`);
    });
    assert.equal(r.plaintextBetweenPods, 0, `plaintext leaked while node-c's SA was gone: ${formatReport(r)}`);
    const blocked = await xfrmStat(a.ns);
    assert.ok((blocked['XfrmOutPolBlock'] ?? 0) > 0, 'the block policies dropped the packets');

    // node-b still holds SAs with node-c; quiet now, its DPD asks the dead agent and gives up.
    const t1 = Date.now();
    await assertEventually(async () => {
      const nb = (await lane.ipsecNodes()).find((x) => x.metadata.name === 'node-b');
      const pc = nb?.status?.peers?.find((p) => p.node === 'node-c');
      return pc && pc.state !== 'established' && pc.state !== 'rekeying' ? pc : undefined;
    }, 90_000, async () => lane.logs(2000));
    tt.diagnostic(`node-b reported node-c down ${((Date.now() - t1) / 1000).toFixed(1)} s after traffic to it stopped (DPD ${DPD.interval} + ${DPD.timeout})`);

    await lane.startAgent(cc);
    });
    const t2 = Date.now();
    await lane.waitAllUp(300_000);
    tt.diagnostic(`all pairs up again ${((Date.now() - t2) / 1000).toFixed(1)} s after node-c's agent restarted`);
    const after = await captured(tt, c, async () => { await lane.assertNoLoss(await pingMatrix(c, { count: 2, intervalMs: 200, timeoutMs: 90_000 })); });
    assert.equal(after.plaintextBetweenPods, 0, formatReport(after));
  });

  await t.test('SIGTERM while the mesh selects the node (a restart or an upgrade) leaves its SAs and policies in the kernel: traffic keeps flowing as ESP while no agent runs', async (tt) => {
    await lane.waitAllUp(300_000); // whatever the step before left behind
    const before = { states: await kernelStates(b.ns), policies: await kernelPolicies(b.ns) };
    await lane.withAgentStopped(b, async () => {
      const exit = await lane.agents.get('node-b')!.stop('SIGTERM');
      assert.deepEqual(exit, { code: 0, signal: null }, lane.agents.get('node-b')!.log().slice(-3000));
      assert.match(lane.agents.get('node-b')!.log(), /SAs and policies stay in the kernel for the next agent/);
      assert.deepEqual((await kernelStates(b.ns)).map((s) => s.spi).sort(), before.states.map((s) => s.spi).sort(), 'every SA still there');
      assert.equal((await kernelPolicies(b.ns)).length, before.policies.length, 'every policy and block still there');
      const r = await captured(tt, c, async () => { await lane.assertNoLoss(await pingMatrix(c, { count: 2, intervalMs: 200, timeoutMs: 90_000 })); });
      assert.equal(r.plaintextBetweenPods, 0, formatReport(r));
    });
    await lane.waitAllUp(300_000);
  });

  await t.test('deleting the IPsecMesh takes everything of kipsec out of every node\'s kernel (SAs, policies, blocks), and pods still reach each other, now in clear', async () => {
    await lane.kube.delete(`/apis/kipsec.io/v1alpha1/ipsecmeshes/default`);
    for (const n of c.nodes) {
      await assertEventually(async () => ((await kernelStates(n.ns)).length === 0 && (await kernelPolicies(n.ns)).length === 0 ? true : undefined), 120_000,
        async () => `${n.name}: ${JSON.stringify({ states: await kernelStates(n.ns), policies: await kernelPolicies(n.ns) })}\n${lane.logs(2000)}`);
    }
    await lane.assertNoLoss(await pingMatrix(c, { count: 2, intervalMs: 200, timeoutMs: 90_000 }));
    await assertEventually(async () => {
      const ns = await lane.ipsecNodes();
      return ns.every((x) => x.status?.conditions?.find((k) => k.type === 'Ready')?.reason === 'NoMesh') ? true : undefined;
    }, 60_000, async () => JSON.stringify((await lane.ipsecNodes()).map((x) => x.status?.conditions)));
  });
});

function assertEventually<T>(probe: () => Promise<T | undefined>, timeoutMs: number, explain: () => string | Promise<string>): Promise<T> {
  return eventually(probe, timeoutMs, 1_000, { what: 'not reached', state: explain });
}
