// The cluster lane's topology, traffic and wire probe on the host kernel, without kipsec: 3-node
// clusters (routed, and a flannel-style VXLAN overlay) where every pod pings every pod on the other
// nodes and a TCP stream per node pair arrives intact — and the capture on the wire DOES see the
// plaintext between pod CIDRs. That last part is the probe proven able to fail: the cluster lane
// later runs the same helpers with agents installed and asserts the opposite.
// Each count is also checked against tcpdump's own reading of the same file (a differential test
// of the pcap classifier on real kernel output).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { addNodeToCluster, buildCluster, nodeByName, overlayPortOf, podCidrsOf, type Cluster } from '../lib/cluster-net.js';
import { WireCapture, classifyPcapFile, formatReport, type CaptureReport } from '../lib/capture.js';
import { ContinuousPing, pingLosses, pingMatrix, tcpFailures, tcpStreams, type PingPair } from '../lib/traffic.js';

/** Lines tcpdump prints reading `file` with a filter (the reference the classifier is checked against). */
function tcpdumpRead(file: string, filter: readonly string[]): Promise<string[]> {
  return new Promise((resolve, reject) => {
    execFile('tcpdump', ['-r', file, '-nn', ...filter], { timeout: 30_000, maxBuffer: 64 << 20, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) reject(new Error(`tcpdump -r ${file} ${filter.join(' ')}: ${stderr}`));
      else resolve(stdout.split('\n').filter((l) => l.trim() !== ''));
    });
  });
}

/** Pings, TCP streams and a capture around them; asserts the traffic itself went through. */
async function trafficUnderCapture(t: { after(fn: () => unknown): void }, c: Cluster): Promise<{ report: CaptureReport; file: string; echoes: number }> {
  const cap = await WireCapture.start(t, c.wire);
  const first = c.nodes[0]!.pods[0]!, last = c.nodes[c.nodes.length - 1]!.pods[0]!;
  const steady = new ContinuousPing(first.ns, first.ip, last.ip, { intervalMs: 50 });
  const pings = await pingMatrix(c, { count: 3, intervalMs: 100, timeoutMs: 10_000 });
  const pods = c.nodes.reduce((n, x) => n + x.pods.length, 0);
  assert.equal(pings.length, c.nodes.reduce((n, x) => n + x.pods.length * (pods - x.pods.length), 0), 'one ping per pod pair across nodes');
  assert.deepEqual(pingLosses(pings), [], 'every pod reaches every pod on every other node');
  const streams = await tcpStreams(c, { bytes: 2 << 20, timeoutMs: 30_000 });
  assert.equal(streams.length, (c.nodes.length * (c.nodes.length - 1)) / 2, 'one stream per node pair');
  assert.deepEqual(tcpFailures(streams), [], 'every stream carries its bytes intact');
  const ran = await steady.stop();
  assert.ok(ran.wasRunning && ran.received > 0, `continuous ping ${first.ip} → ${last.ip}: ${ran.tail}`);
  assert.deepEqual(ran.lost, [], `continuous ping ${first.ip} → ${last.ip} lost echoes: ${ran.tail}`);
  const stats = await cap.stop();
  assert.ok(stats.complete, `capture incomplete: ${JSON.stringify({ ...stats, stderr: stats.stderr.trim() })}`);
  const overlay = overlayPortOf(c);
  const report = classifyPcapFile(cap.file, { podCidrs: podCidrsOf(c), overlay: overlay === undefined ? undefined : { kind: 'vxlan', port: overlay } });
  assert.equal(report.packets, stats.captured, 'every captured packet read back');
  assert.equal(report.undecodable, 0, formatReport(report));
  assert.equal(report.truncatedFile, false);
  assert.equal(report.esp, 0, formatReport(report));
  return { report, file: cap.file, echoes: echoesOnWire(pings, ran) };
}

/**
 * Differential for an overlay capture: tcpdump, told the port carries VXLAN (-T vxlan), prints a
 * header line per datagram and then the inner packet's line; its counts must equal ours.
 */
async function overlayDifferential(file: string, port: number, report: CaptureReport): Promise<void> {
  const lines = await tcpdumpRead(file, ['-T', 'vxlan', 'udp', 'dst', 'port', String(port)]);
  const count = (re: RegExp): number => lines.filter((l) => re.test(l)).length;
  assert.equal(count(new RegExp(` > 192\\.0\\.2\\.1\\d\\.${port}: VXLAN, flags \\[I\\]`)), report.plaintextOverlay);
  assert.equal(count(/^IP 10\.244\.\d\.\d > 10\.244\.\d\.\d: ICMP echo/), report.plaintextByProtocol['icmp']);
  assert.equal(count(/^IP 10\.244\.\d\.\d\.\d+ > 10\.244\.\d\.\d\.\d+: Flags/), report.plaintextByProtocol['tcp']);
}

/** Every echo counted by the pings is on the wire as plaintext ICMP (one more: a reply that arrived after the continuous ping stopped). */
function assertEchoes(report: CaptureReport, echoes: number): void {
  const icmp = report.plaintextByProtocol['icmp'] ?? 0;
  assert.ok(icmp === echoes || icmp === echoes + 1, `${icmp} ICMP packets between pods on the wire, ${echoes} echoes counted by ping\n${formatReport(report)}`);
}

/** Echo requests and replies that crossed the wire (each crosses it once): the matrix's and the continuous ping's. */
function echoesOnWire(pings: readonly PingPair[], steady: { sent: number; received: number }): number {
  return pings.reduce((n, p) => n + p.sent + p.received, steady.sent + steady.received);
}

test('routed 3-node cluster: all pod pairs ping, a TCP stream per node pair, and the wire probe sees the plaintext ICMP and TCP between pod CIDRs', async (t) => {
  const c = await buildCluster(t, { nodes: 3, podsPerNode: 2, overlay: 'none' });
  assert.deepEqual(c.nodes.map((n) => [n.name, n.ip, n.podCidr, n.pods.map((p) => p.ip)]), [
    ['node-a', '192.0.2.11', '10.244.1.0/24', ['10.244.1.2', '10.244.1.3']],
    ['node-b', '192.0.2.12', '10.244.2.0/24', ['10.244.2.2', '10.244.2.3']],
    ['node-c', '192.0.2.13', '10.244.3.0/24', ['10.244.3.2', '10.244.3.3']],
  ]);
  const a = nodeByName(c, 'node-a');
  assert.match((await a.ns.run('ip', ['route', 'show', '10.244.2.0/24'])).stdout, /via 192\.0\.2\.12 dev eth0/);
  // MTU as a CNI sets it: a full-size pod packet with DF crosses the wire; one byte more is refused at the pod.
  assert.equal(c.mtu.pod, 1400);
  const pod = a.pods[0]!, far = nodeByName(c, 'node-c').pods[1]!;
  assert.equal((await pod.ns.run('ping', ['-c', '1', '-W', '2', '-M', 'do', '-s', String(c.mtu.pod - 28), far.ip], { check: false })).code, 0, 'a pod-MTU packet crosses');
  const tooBig = await pod.ns.run('ping', ['-c', '1', '-W', '1', '-M', 'do', '-s', String(c.mtu.pod - 27), far.ip], { check: false });
  assert.match(`${tooBig.stdout}${tooBig.stderr}`, /mtu ?= ?1400|message too long/i);

  const { report, file, echoes } = await trafficUnderCapture(t, c);
  // The probe sees plaintext: every echo, and the TCP streams, between pod CIDRs on the wire.
  assertEchoes(report, echoes);
  assert.ok((report.plaintextByProtocol['tcp'] ?? 0) > 0, formatReport(report));
  assert.equal(report.plaintextBetweenPodsInOverlay, 0);
  assert.equal(report.plaintextOverlay, 0);
  assert.match(report.examples.plaintextBetweenPods[0] ?? '', /^#\d+ \+\d+\.\d{6}s 10\.244\.\d\.\d > 10\.244\.\d\.\d ICMP echo/);
  // Differential: tcpdump's own filter over the same file counts the same packets.
  const between = ['src', 'net', '10.244.0.0/16', 'and', 'dst', 'net', '10.244.0.0/16'];
  assert.equal((await tcpdumpRead(file, ['icmp', 'and', ...between])).length, report.plaintextByProtocol['icmp']);
  assert.equal((await tcpdumpRead(file, ['tcp', 'and', ...between])).length, report.plaintextByProtocol['tcp']);
});

test('VXLAN 3-node cluster (flannel-style, port 4789): all pod pairs ping, a TCP stream per node pair, and the probe sees UDP 4789 frames with plaintext inner packets', async (t) => {
  const c = await buildCluster(t, { nodes: 3, podsPerNode: 2, overlay: { kind: 'vxlan', port: 4789 } });
  const a = nodeByName(c, 'node-a'), b = nodeByName(c, 'node-b');
  assert.equal(c.mtu.pod, 1350);
  assert.deepEqual(a.vtep && { ip: a.vtep.ip, ifname: a.vtep.ifname }, { ip: '10.244.1.0', ifname: 'flannel.1' });
  assert.match((await a.ns.run('ip', ['-d', 'link', 'show', 'flannel.1'])).stdout, /vxlan id 1 local 192\.0\.2\.11 dev eth0 .*dstport 4789 nolearning/);
  assert.match((await a.ns.run('ip', ['route', 'show', '10.244.2.0/24'])).stdout, /via 10\.244\.2\.0 dev flannel\.1 onlink/);
  assert.match((await a.ns.run('bridge', ['fdb', 'show', 'dev', 'flannel.1'])).stdout, new RegExp(`${b.vtep!.mac} dst 192\\.0\\.2\\.12 self permanent`));

  const { report, file, echoes } = await trafficUnderCapture(t, c);
  // Everything between pods travels inside VXLAN, in plaintext: the inner packets are the pods'.
  assert.ok(report.plaintextOverlay > 0, formatReport(report));
  assert.equal(report.overlayFrames, report.plaintextOverlay);
  assert.equal(report.plaintextBetweenPodsInOverlay, report.plaintextBetweenPods, 'nothing between pods outside the overlay');
  assertEchoes(report, echoes);
  assert.ok((report.plaintextByProtocol['tcp'] ?? 0) > 0, formatReport(report));
  assert.match(report.examples.plaintextBetweenPods.join('\n'), /ICMP echo .*inside VXLAN vni 1, 192\.0\.2\.1\d:\d+ > 192\.0\.2\.1\d:4789/);
  await overlayDifferential(file, 4789, report);
});

test('VXLAN on flannel\'s port 8472: a node added later reaches and is reached by every pod, and its overlay traffic is plaintext on the wire', async (t) => {
  const c = await buildCluster(t, { nodes: 2, podsPerNode: 1, overlay: { kind: 'vxlan', port: 8472 } });
  const added = await addNodeToCluster(t, c);
  assert.equal(added.name, 'node-c');
  assert.equal(added.ip, '192.0.2.13');
  assert.deepEqual(c.nodes.map((n) => n.name), ['node-a', 'node-b', 'node-c']);
  const { report, file } = await trafficUnderCapture(t, c);
  assert.ok(report.plaintextOverlay > 0, formatReport(report));
  assert.equal(report.plaintextBetweenPodsInOverlay, report.plaintextBetweenPods);
  assert.ok(report.plaintextBetweenPods > 0, formatReport(report));
  assert.match(report.examples.plaintextOverlay.join('\n'), /:8472 UDP/);
  await overlayDifferential(file, 8472, report);
});

test('a capture that reached its packet limit before stop() is not complete, so it cannot pass a "no plaintext" check', async (t) => {
  const c = await buildCluster(t, { nodes: 2, podsPerNode: 1, overlay: 'none' });
  const cap = await WireCapture.start(t, c.wire, { maxPackets: 4 });
  const pings = await pingMatrix(c, { count: 4, intervalMs: 50 });
  assert.deepEqual(pingLosses(pings), []);
  const stats = await cap.stop();
  assert.equal(stats.endedEarly, true);
  assert.equal(stats.complete, false);
  assert.equal(classifyPcapFile(cap.file, { podCidrs: podCidrsOf(c) }).packets, 4);
});
