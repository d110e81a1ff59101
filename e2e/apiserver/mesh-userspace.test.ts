// The cluster mesh on the userspace ESP data path, on this host's kernel (XFRM but no esp4, so
// `--datapath auto` must choose userspace) with the lane's real kube-apiserver — no VM. Built
// like the cluster lane (e2e/lib/mesh-lane.ts: kipsec installed from deploy/, operator and agents
// run as deploy/ describes them, nodes and pods as network namespaces on a bridge), reached through
// hostLaneSocket() in place of the VM's bridge. What the product promises (DESIGN.md §5):
// IPsecNode status.datapath says userspace, pods on different nodes reach each other, a TCP
// transfer arrives byte-identical, the wire carries only IKE and ESP in UDP between pod CIDRs
// (and the same capture sees plaintext when the TUN routes are bypassed, so it can fail), and
// strict mode holds with an agent stopped.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { agentBundle } from '../vm/agent-harness.js';
import { repoPath } from '../../test/lib/paths.js';
import { nodeByName } from '../lib/cluster-net.js';
import { eventually } from '../lib/kube.js';
import { formatReport } from '../lib/capture.js';
import { hostLaneSocket } from '../lib/lane-kube.js';
import { capturedOnWire, icmpInEchos, inject, startMeshLane } from '../lib/mesh-lane.js';
import { pingMatrix, tcpFailures, tcpStreams, pingCounts } from '../lib/traffic.js';

const DPD = { interval: '5s', timeout: '20s' };
const AUTO = { args: ['--datapath', 'auto'], why: 'the data path choice under test (deploy/agent.yaml leaves the cluster default, which is also auto)' };

function run(cmd: string, args: readonly string[], timeoutMs = 60_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs, killSignal: 'SIGKILL', encoding: 'utf8', maxBuffer: 16 << 20, cwd: repoPath() }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

test('userspace mesh of three nodes on the host kernel: --datapath auto chooses userspace, pods reach each other over ESP in UDP only, strict mode holds with an agent stopped', { timeout: 540_000 }, async (t) => {
  assert.equal(process.getuid?.(), 0, 'this test builds network namespaces: run it as root (the lanes do)');
  await hostLaneSocket(t);
  const lane = await startMeshLane(t, { nodes: 3, overlay: 'none', mesh: { datapath: 'auto', dpd: DPD }, label: 'userspace', agentArgs: AUTO });
  const c = lane.cluster;
  const [a, b] = [nodeByName(c, 'node-a'), nodeByName(c, 'node-b')];

  await t.test('without kipsec the wire probe sees plaintext between pods, and a spoofed plaintext echo from a peer pod address reaches a pod (both probes can fail)', async (tt) => {
    const r = await capturedOnWire(tt, c, async () => { await lane.assertNoLoss(await pingMatrix(c, { count: 2, timeoutMs: 60_000 })); });
    assert.ok(r.plaintextBetweenPods > 0, formatReport(r));
    const before = await icmpInEchos(a.pods[0]!);
    await inject(tt, lane, a, b.pods[0]!.ip, a.pods[0]!.ip);
    assert.ok(await icmpInEchos(a.pods[0]!) > before, 'the spoofed echo reached the pod: the injection works');
  });

  await lane.startOperator();
  await lane.applyMesh({ datapath: 'auto', dpd: DPD });
  for (const n of c.nodes) await lane.startAgent(n);
  const t0 = Date.now();
  await lane.waitAllUp(240_000);
  t.diagnostic(`all 3 node pairs established ${((Date.now() - t0) / 1000).toFixed(1)} s after the agents started`);

  await t.test('IPsecNode status.datapath is userspace on every node with the offloads its engine uses, the log and `kipsec status` say why', async () => {
    for (const n of await lane.ipsecNodes()) {
      assert.equal(n.status?.datapath, 'userspace', n.metadata.name);
      // The same list the agent logged when its data path came up.
      const logged = /"offloads":(\[[^\]]*\])[^\n]*"userspace ESP data path up"/.exec(lane.agents.get(n.metadata.name)!.log())?.[1];
      assert.ok(logged, `${n.metadata.name} logged its offloads`);
      assert.deepEqual(n.status?.datapathOffloads, JSON.parse(logged) as string[], n.metadata.name);
      assert.equal(n.status?.strict, true);
      assert.equal(n.status?.conditions?.find((x) => x.type === 'Ready')?.status, 'True', JSON.stringify(n.status?.conditions));
      for (const p of n.status?.peers ?? []) assert.equal(p.state, 'established', `${n.metadata.name} → ${p.node}`);
    }
    for (const [name, pod] of lane.agents) assert.match(pod.log(), /"datapath":"userspace","reason":"--datapath auto: the kernel refuses ESP states[^"]*","msg":"datapath chosen"/, name);
    const st = await run(process.execPath, [agentBundle(), 'status', '--control-socket', lane.controlSocket(a)]);
    assert.equal(st.code, 0, st.stderr);
    assert.match(st.stdout, /datapath userspace \(--datapath auto: the kernel refuses ESP states/);
    assert.match(st.stdout, /peers 2\/2 up/);
    assert.match(st.stdout, /^ESP engine: offloads [a-zA-Z, ]+; SA drops none; \d+ datagrams in, \d+ out$/m);
  });

  await t.test('every pod pings every pod on the other nodes, a 2 MiB TCP stream per node pair arrives byte-identical, and the wire carries only IKE and ESP in UDP', async (tt) => {
    let tcpBytes = 0;
    const r = await capturedOnWire(tt, c, async () => {
      await lane.assertNoLoss(await pingMatrix(c, { count: 3, timeoutMs: 90_000 }));
      const streams = await tcpStreams(c, { bytes: 2 << 20, timeoutMs: 180_000 });
      assert.deepEqual(tcpFailures(streams), []);
      assert.ok(streams.every((s) => s.matched && s.received === 2 << 20), JSON.stringify(streams));
      tcpBytes = streams.reduce((n, s) => n + s.received, 0);
    });
    assert.equal(r.plaintextBetweenPods, 0, formatReport(r));
    // Bytes, not packets: with UDP GSO up to 64 ESP datagrams cross the veth as one captured
    // packet, but every byte of the TCP payload crossed inside ESP in UDP, with its overhead on top.
    assert.ok(tcpBytes > 0 && r.espInUdpBytes > tcpBytes, `ESP in UDP on the wire carried more than the ${tcpBytes} B of TCP payload: ${formatReport(r)}`);
    assert.equal(r.esp, r.espInUdp, 'no raw ESP: the userspace engine does ESP in UDP only (RFC 3948)');
    assert.equal(r.undecodable, 0);
    tt.diagnostic(formatReport(r));
  });

  await t.test('plaintext injected into node-a from node-b\'s pod CIDR, not out of the TUN device, never reaches the pod (inbound strict: rules 218/219)', async (tt) => {
    const before = await icmpInEchos(a.pods[0]!);
    await inject(tt, lane, a, b.pods[0]!.ip, a.pods[0]!.ip);
    assert.equal(await icmpInEchos(a.pods[0]!), before, 'no spoofed echo reached the pod');
  });

  await t.test('strict: with node-b\'s agent stopped, its blackholes stay and no pod traffic between node-b and node-a appears in clear; a new agent brings every pair back', async (tt) => {
    await lane.withAgentStopped(b, async () => {
      const exit = await lane.agents.get('node-b')!.stop('SIGTERM');
      assert.equal(exit.code, 0);
      const table = (await b.ns.run('ip', ['route', 'show', 'table', '221'])).stdout;
      for (const p of [a, nodeByName(c, 'node-c')]) assert.match(table, new RegExp(`^blackhole ${p.podCidr.replace(/\./g, '\\.')} `, 'm'), table);
      assert.doesNotMatch(table, /dev kipsec0/, 'the TUN device went with the agent');
      const rules = (await b.ns.run('ip', ['rule', 'show'])).stdout;
      assert.match(rules, new RegExp(`^219:\\s+from ${a.podCidr} to ${b.podCidr} blackhole`, 'm'), rules);
      const r = await capturedOnWire(tt, c, async () => {
        for (const [from, to] of [[b.pods[0]!, a.pods[0]!], [a.pods[0]!, b.pods[0]!]] as const) {
          const out = await from.ns.run('ping', ['-n', '-q', '-c', '5', '-i', '0.2', '-W', '1', '-I', from.ip, to.ip], { check: false, timeoutMs: 30_000 });
          assert.equal(pingCounts(out.stdout).received, 0, `${from.name} → ${to.name} got through with node-b's agent stopped: ${out.stdout}`);
        }
      });
      assert.equal(r.plaintextBetweenPods, 0, `plaintext with node-b's agent stopped: ${formatReport(r)}`);
    });
    await lane.waitAllUp(180_000);
    await lane.assertNoLoss(await pingMatrix(c, { count: 2, timeoutMs: 60_000 }));
    // The new agent took over what the old one left (read back from the kernel), removing none of it.
    const rules = (await b.ns.run('ip', ['rule', 'show'])).stdout;
    for (const p of [a, nodeByName(c, 'node-c')]) {
      assert.match(rules, new RegExp(`^218:\\s+from ${p.podCidr} to ${b.podCidr} iif kipsec0 lookup main`, 'm'), rules);
      assert.match(rules, new RegExp(`^219:\\s+from ${p.podCidr} to ${b.podCidr} blackhole`, 'm'), rules);
    }
    assert.match((await b.ns.run('ip', ['route', 'show', 'table', '221'])).stdout, new RegExp(`^blackhole ${a.podCidr} `, 'm'));
  });

  await t.test('the mesh asking for the kernel data path, which this kernel lacks: every IPsecNode says DatapathUnavailable, no agent exits, nothing leaves in clear; back to auto, every pair comes back without a restart', async (tt) => {
    await lane.applyMesh({ datapath: 'kernel', dpd: DPD });
    const reasons = await eventually(async () => {
      const ns = await lane.ipsecNodes();
      const r = ns.map((n) => n.status?.conditions?.find((x) => x.type === 'Ready'));
      return r.length === 3 && r.every((x) => x?.status === 'False' && x.reason === 'DatapathUnavailable') ? r : undefined;
    }, 60_000, 500);
    assert.match(reasons[0]?.message ?? '', /asks for the kernel data path, but on this node the kernel refuses ESP states/);
    for (const [name, pod] of lane.agents) assert.ok(pod.running(), `agent on ${name} exited:\n${pod.log().slice(-3000)}`);
    const r = await capturedOnWire(tt, c, async () => {
      const out = await a.pods[0]!.ns.run('ping', ['-n', '-q', '-c', '5', '-i', '0.2', '-W', '1', '-I', a.pods[0]!.ip, b.pods[0]!.ip], { check: false, timeoutMs: 30_000 });
      assert.equal(pingCounts(out.stdout).received, 0, out.stdout);
    });
    assert.equal(r.plaintextBetweenPods, 0, formatReport(r));
    await lane.applyMesh({ datapath: 'auto', dpd: DPD });
    await lane.waitAllUp(120_000);
    await lane.assertNoLoss(await pingMatrix(c, { count: 2, timeoutMs: 60_000 }));
  });

  await t.test('the probe sees plaintext when the TUN routes are bypassed (the rule to table 221 removed on every node)', async (tt) => {
    for (const n of c.nodes) await n.ns.run('ip', ['rule', 'del', 'priority', '221']);
    const r = await capturedOnWire(tt, c, async () => { await pingMatrix(c, { count: 2, timeoutMs: 60_000 }); });
    assert.ok(r.plaintextBetweenPods > 0, formatReport(r));
  });
});
