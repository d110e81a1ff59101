// The cluster lane's topology, traffic and wire probe on the host kernel, without kipsec: 3-node
// clusters (routed, and a flannel-style VXLAN overlay) where every pod pings every pod on the other
// nodes and a TCP stream per node pair arrives intact — and the capture on the wire DOES see the
// plaintext between pod CIDRs. That last part is the probe proven able to fail: the cluster lane
// later runs the same helpers with agents installed and asserts the opposite.
// Each count is also checked against tcpdump's own reading of the same file (a differential test
// of the pcap classifier on real kernel output). The per-step probes the cluster lane prints for
// its operations sequence (ContinuousPing.mark(), PacedStreams) are proven here able to see an
// outage, a corrupted byte and a reset.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { addNodeToCluster, buildCluster, nodeByName, overlayPortOf, podCidrsOf, type Cluster } from '../lib/cluster-net.js';
import { WireCapture, classifyPcapFile, formatReport, type CaptureReport } from '../lib/capture.js';
import {
  ContinuousPing, PacedStreams, parsePingLog, pingEveryNodePair, pingLosses, pingMatrix, pingWindow, pingWindowLine, streamFailures,
  streamWindowLine, tcpFailures, tcpStreams, type NodePairPing, type PingPair, type PingWindow, type StreamWindow,
} from '../lib/traffic.js';

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

// ---- per-step probes: ping windows and paced streams ----

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** iputils `ping -O` lines as it prints them. */
const reply = (seq: number, ms = 0.08): string => `64 bytes from 10.244.3.2: icmp_seq=${seq} ttl=62 time=${ms} ms`;
const noAnswer = (seq: number): string => `no answer yet for icmp_seq=${seq}`;
const seqs = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

// Pure: the window arithmetic the cluster lane reports per step, on recorded-shape output.
test('ping windows from `ping -O` output: a window ends at the highest answered echo, an unanswered run in it is lost and is its longest gap, an outage still going on closes the window after the grace, an ICMP error is no answer, and sequence numbers unwrap past 65535', () => {
  const o = { intervalMs: 100 };
  const head = 'PING 10.244.3.2 (10.244.3.2) from 10.244.1.2 : 56(84) bytes of data.';
  // No loss: the longest gap is the interval.
  const quiet = pingWindow(parsePingLog([head, ...seqs(1, 10).map((s) => reply(s))].join('\n')), 0, o);
  assert.deepEqual(quiet, { firstSeq: 1, lastSeq: 10, sent: 10, received: 10, lost: [], longestGapMs: 100, maxRttMs: 0.08 });
  // 6..9 unanswered between answered 5 and 10; 12 sent but not answered yet (in flight: next window).
  const text = [head, ...seqs(1, 5).map((s) => reply(s)), ...seqs(6, 9).map(noAnswer), reply(10, 3.5), reply(11), noAnswer(12)].join('\n');
  const w = pingWindow(parsePingLog(text), 0, o);
  assert.deepEqual({ ...w }, { firstSeq: 1, lastSeq: 11, sent: 11, received: 7, lost: [6, 7, 8, 9], longestGapMs: 500, maxRttMs: 3.5 });
  // An outage still going on at the mark: nothing answered after 11, "no answer yet" up to 30. The
  // window closes 1 s (10 echoes) behind the last one sent, so the loss shows in this step.
  const outage = `${text}\n${seqs(13, 30).map(noAnswer).join('\n')}`;
  const during = pingWindow(parsePingLog(outage), w.lastSeq, o);
  assert.deepEqual({ sent: during.sent, received: during.received, lost: during.lost, longestGapMs: during.longestGapMs }, { sent: 9, received: 0, lost: seqs(12, 20), longestGapMs: 900 });
  // Recovered: the rest of the outage is in the next window, its gap measured from the window's start.
  const after = pingWindow(parsePingLog(`${outage}\n${seqs(31, 35).map((s) => reply(s)).join('\n')}`), during.lastSeq, o);
  assert.deepEqual({ first: after.firstSeq, last: after.lastSeq, received: after.received, lost: after.lost, gap: after.longestGapMs }, { first: 21, last: 35, received: 5, lost: seqs(21, 30), gap: 1100 });
  // "Destination Host Unreachable" carries the echo's seq but is not its answer.
  const unreach = parsePingLog([reply(1), 'From 10.244.1.1 icmp_seq=2 Destination Host Unreachable', reply(3)].join('\n'));
  assert.deepEqual([...unreach.answered], [1, 3]);
  assert.equal(unreach.icmpErrors.get(2), 'Destination Host Unreachable');
  assert.deepEqual(pingWindow(unreach, 0, o).lost, [2]);
  // iputils prints seq modulo 2^16: 65535 is followed by 0 (65536), 1 (65537); a duplicate counts once.
  const wrap = parsePingLog([reply(65534), reply(65535), `${reply(0)} (DUP!)`, reply(0), reply(1)].join('\n'));
  assert.deepEqual([...wrap.answered], [65534, 65535, 65536, 65537]);
  assert.deepEqual(pingWindow(wrap, 65533, o).lost, []);
  // stop(): everything but the echo in flight at SIGINT is judged, answered or not.
  assert.deepEqual(pingWindow(parsePingLog([reply(1), reply(2)].join('\n')), 0, { ...o, endAtLeast: 4 }).lost, [3, 4]);
});

/** Each probe's window, printed as the cluster lane prints a step. */
async function markAll(t: { diagnostic(s: string): void }, step: string, pings: readonly NodePairPing[], streams: PacedStreams): Promise<{ pings: Array<NodePairPing & { w: PingWindow }>; streams: StreamWindow[] }> {
  const w = { pings: pings.map((p) => ({ ...p, w: p.ping.mark() })), streams: await streams.mark() };
  for (const line of [...w.pings.map((p) => pingWindowLine(p, p.w)), ...w.streams.map(streamWindowLine)]) t.diagnostic(`${step}: ${line}`);
  return w;
}

const touches = (node: string) => (x: { readonly from: { readonly node: string }; readonly to: { readonly node: string } }): boolean => x.from.node === node || x.to.node === node;

test('paced TCP streams and continuous pings on every node pair: quiet windows show bytes flowing and no loss; node-c\'s wire port down for 1.5 s shows as lost echoes and a stream gap of at least 1 s on node-c\'s two pairs only, and every stream still ends intact with no reset', async (t) => {
  const c = await buildCluster(t, { nodes: 3, podsPerNode: 1, overlay: 'none' });
  const cut = nodeByName(c, 'node-c');
  const pings = pingEveryNodePair(c, { intervalMs: 100 });
  let streams: PacedStreams | undefined;
  try {
    streams = await PacedStreams.start(c, { chunkBytes: 1024, intervalMs: 100, startTimeoutMs: 15_000 });
    assert.deepEqual(streams.streams.map((s) => s.id), ['node-a-pod-0->node-b-pod-0', 'node-a-pod-0->node-c-pod-0', 'node-b-pod-0->node-c-pod-0']);
    for (const step of ['quiet 1', 'quiet 2']) {
      await sleep(1_500);
      const w = await markAll(t, step, pings, streams);
      for (const p of w.pings) {
        assert.ok(p.w.sent >= 10, `${step}: ${pingWindowLine(p, p.w)}`);
        assert.equal(p.w.received, p.w.sent, `${step}: ${pingWindowLine(p, p.w)}`);
        assert.equal(p.w.longestGapMs, 100, `${step}: ${pingWindowLine(p, p.w)}`);
      }
      assert.deepEqual(streamFailures(w.streams), [], step);
      for (const s of w.streams) {
        assert.ok(s.bytes >= 8 * 1024, `${step}: ~15 chunks of 1 KiB in 1.5 s: ${streamWindowLine(s)}`);
        assert.ok(s.longestGapMs < 600, `${step}: ${streamWindowLine(s)}`);
      }
    }
    // The cut: node-c's port on the switch goes down (its eth0 loses carrier; its routes stay).
    await c.wire.run('ip', ['link', 'set', cut.wirePort, 'down']);
    try { await sleep(1_500); } finally { await c.wire.run('ip', ['link', 'set', cut.wirePort, 'up']); }
    // TCP retransmits 0.2, 0.6, 1.4, 3 s after the first lost segment (RTO doubling from 200 ms), so the
    // streams resume at the first retransmission after the link is back: 1.5 s or 3.2 s after the cut began, seen here.
    await sleep(3_500);
    const during = await markAll(t, 'node-c cut for 1.5 s', pings, streams);
    for (const p of during.pings) {
      if (touches('node-c')(p)) {
        assert.ok(p.w.lost.length >= 10 && p.w.longestGapMs >= 1_000, `the cut shows: ${pingWindowLine(p, p.w)}`);
        assert.ok(p.w.received > 0, `answers again after the cut: ${pingWindowLine(p, p.w)}`);
      } else assert.deepEqual([p.w.lost, p.w.longestGapMs], [[], 100], `untouched pair: ${pingWindowLine(p, p.w)}`);
    }
    assert.deepEqual(streamFailures(during.streams), [], 'a cut is a gap, not a reset');
    for (const s of during.streams) {
      if (touches('node-c')(s)) assert.ok(s.longestGapMs >= 1_000, `the cut shows: ${streamWindowLine(s)}`);
      else assert.ok(s.longestGapMs < 600, `untouched pair: ${streamWindowLine(s)}`);
      assert.ok(s.bytes > 0, `bytes flow again: ${streamWindowLine(s)}`);
    }
    await sleep(1_000);
    const after = await markAll(t, 'after the cut', pings, streams);
    for (const p of after.pings) assert.deepEqual([p.w.lost, p.w.longestGapMs], [[], 100], `recovered: ${pingWindowLine(p, p.w)}`);
    for (const s of after.streams) assert.ok(s.bytes > 0 && s.longestGapMs < 600, `recovered: ${streamWindowLine(s)}`);

    const finals = await streams.stop();
    for (const f of finals) t.diagnostic(`stop: ${f.id}: sent ${f.sent} B, received ${f.received} B, acknowledged ${f.acked} B, longest gap ${f.longestGapMs} ms`);
    assert.deepEqual(streamFailures(finals), []);
    assert.deepEqual(streams.errors(), []);
    for (const f of finals) assert.ok(f.intact && f.sent > 50 * 1024 && f.received === f.sent && f.acked === f.sent, JSON.stringify(f));
    const ran = await Promise.all(pings.map(async (p) => ({ ...p, r: await p.ping.stop() })));
    for (const p of ran) {
      assert.ok(p.r.wasRunning, p.r.tail);
      if (touches('node-c')(p)) assert.ok(p.r.lost.length >= 10 && p.r.longestGapMs >= 1_000, `whole run: ${JSON.stringify(p.r)}`);
      else assert.deepEqual([p.r.lost, p.r.longestGapMs], [[], 100], `whole run: ${JSON.stringify(p.r)}`);
    }
  } finally {
    streams?.kill();
    await Promise.all(pings.filter((p) => p.ping.running).map((p) => p.ping.stop()));
  }
});

test('paced streams report a corrupted byte at its offset and a reset with the stream id, never reconnect, and the other stream stays intact', async (t) => {
  const c = await buildCluster(t, { nodes: 3, podsPerNode: 1, overlay: 'none' });
  const [ab, ac, bc] = ['node-a-pod-0->node-b-pod-0', 'node-a-pod-0->node-c-pod-0', 'node-b-pod-0->node-c-pod-0'];
  const streams = await PacedStreams.start(c, { chunkBytes: 1000, intervalMs: 20, startTimeoutMs: 15_000, corrupt: { id: ab, offset: 5_003 } });
  try {
    await sleep(500);
    // sock_destroy on node-a's end of a→c: the kernel aborts it and sends the receiver a RST.
    const podA = nodeByName(c, 'node-a').pods[0]!, podC = nodeByName(c, 'node-c').pods[0]!;
    await podA.ns.run('ss', ['-K', 'dst', podC.ip, 'dport', '=', '5202']);
    await sleep(300);
    const w = await streams.mark();
    for (const x of w) t.diagnostic(streamWindowLine(x));
    const by = (id: string): StreamWindow => w.find((x) => x.id === id)!;
    assert.match(by(ab).error ?? '', /^receiver: byte mismatch: got 0x[0-9a-f]+, want 0x[0-9a-f]+ at offset 5003/);
    assert.equal(by(ab).totalBytes, 5_003, 'the bytes before the bad one, checked, and nothing after');
    assert.match(by(ac).error ?? '', /receiver: ECONNRESET at offset \d+/);
    assert.equal(by(bc).error, undefined);
    const errors = streams.errors();
    for (const e of errors) t.diagnostic(e);
    assert.ok(errors.some((l) => l.startsWith(`${ab} (recv in node-b-pod-0): byte mismatch`) && l.endsWith('at offset 5003')), errors.join('\n'));
    assert.ok(errors.some((l) => new RegExp(`^${ac} \\(recv in node-c-pod-0\\): ECONNRESET at offset \\d+$`).test(l)), errors.join('\n'));
    const resetAt = by(ac).totalBytes;
    await sleep(300);
    const finals = await streams.stop();
    const f = (id: string) => finals.find((x) => x.id === id)!;
    assert.deepEqual(streamFailures(finals).map((l) => l.split(':')[0]), [ab, ac]);
    // No reconnect: the broken streams' receivers counted nothing after the error.
    assert.deepEqual([f(ab).intact, f(ab).received], [false, 5_003]);
    assert.deepEqual([f(ac).intact, f(ac).received], [false, resetAt]);
    assert.ok(f(bc).intact && f(bc).received === f(bc).sent && f(bc).sent > 20_000, JSON.stringify(f(bc)));
  } finally {
    streams.kill();
  }
});
