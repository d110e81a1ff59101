// The cluster lane's day-2 operations (e2e/cluster/30-mesh-operations.test.ts) on the userspace ESP
// data path, on this host's kernel (XFRM but no esp4: `--datapath auto` chooses userspace) with the
// lane's real kube-apiserver — no VM. One sequence under continuous traffic on every node pair
// (pings at 10/s each way, a paced TCP stream per pair whose every byte is checked on arrival):
// Child SA and IKE SA rekeys from both sides, certificate renewal on every node, a CA rotation, and
// an apiserver outage longer than a Child SA lifetime lose nothing, and a capture of the whole
// sequence sees no pod packet in clear. An agent's kill -9 and its SIGTERM restart are measured,
// not held to zero: on this data path the SAs live in the agent process, so traffic through that
// node stops until the new agent has negotiated new ones — the test prints that outage per pair,
// holds it to a bound, and requires every other pair to lose nothing and the node's own pairs and
// streams to recover by themselves. Then a fourth node joins and leaves (nodeSelector) while a
// pair it does not touch loses nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { agentBundle } from '../vm/agent-harness.js';
import { repoPath } from '../../test/lib/paths.js';
import type { AgentStatus } from '../../src/agent/status.js';
import { RESOURCES, resourcePath } from '../../src/api/kube/client.js';
import { ANNOTATIONS, TRUST_BUNDLE_CONFIGMAP, TRUST_BUNDLE_KEY } from '../../src/api/names.js';
import { bundleFingerprints } from '../../src/agent/mesh/ca-follow.js';
import { nodeByName, podCidrsOf, type Cluster, type ClusterNode } from '../lib/cluster-net.js';
import { classifyPcapFile, formatReport, WireCapture, type CaptureReport } from '../lib/capture.js';
import { eventually } from '../lib/kube.js';
import { apiserverBridge, cutApiserverBridge, hostLaneSocket } from '../lib/lane-kube.js';
import { startMeshLane, type MeshLane } from '../lib/mesh-lane.js';
import type { Scope } from '../lib/netns.js';
import { ContinuousPing, PacedStreams, pingMatrix, pingWindowLine, streamFailures, streamWindowLine, type PingWindow, type PodRef } from '../lib/traffic.js';

const DPD = { interval: '30s', timeout: '60s' };
// Short Child SA lives (the shortest the API allows) so that an apiserver outage can outlast one.
const ESP = { rekeyTime: '1m', lifeTime: '80s' };
const ESP_LIFE_MS = 80_000;
const AUTO = { args: ['--datapath', 'auto'], why: 'the data path choice under test (deploy/agent.yaml leaves the cluster default, which is also auto)' };
/** How long traffic through a restarted node may stop: the new agent's start and one IKE_SA_INIT + IKE_AUTH per peer. */
const RESTART_OUTAGE_BOUND_MS = 60_000;

function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number, explain: () => string | Promise<string>): Promise<T> {
  return eventually(probe, timeoutMs, 500, { what, state: explain });
}

function kipsec(lane: MeshLane, on: ClusterNode | undefined, args: readonly string[], timeoutMs = 60_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [agentBundle(), ...args, ...(on ? ['--control-socket', lane.controlSocket(on)] : [])], { cwd: repoPath(), timeout: timeoutMs, killSignal: 'SIGKILL', encoding: 'utf8' }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

/** `kipsec status --json` of a node's agent: on this data path the SAs are the agent's, not the kernel's. */
async function agentStatus(lane: MeshLane, n: ClusterNode): Promise<AgentStatus> {
  const r = await kipsec(lane, n, ['status', '--json']);
  assert.equal(r.code, 0, `${n.name}: kipsec status --json: ${r.stderr}`);
  return JSON.parse(r.stdout) as AgentStatus;
}

/** Every installed Child SA's SPIs on these nodes, "node peer in|out spi". */
async function childSpis(lane: MeshLane, nodes: readonly ClusterNode[]): Promise<string[]> {
  const out: string[] = [];
  for (const n of nodes) {
    for (const t of (await agentStatus(lane, n)).tunnels) for (const c of t.children) out.push(`${n.name} ${t.node ?? t.name} in ${c.spiIn}`, `${n.name} ${t.node ?? t.name} out ${c.spiOut}`);
  }
  return out;
}

const spiOf = (line: string): string => line.split(' ').pop()!;

/** The engine's per-SA drops (auth, replay, …) summed by reason over the node's tunnels' SAs, from the agent's status. */
async function engineDrops(lane: MeshLane, n: ClusterNode): Promise<Record<string, number>> {
  const s = await agentStatus(lane, n);
  return { ...(s.esp?.drops ?? {}) };
}

type PairPing = { readonly from: PodRef; readonly to: PodRef; readonly ping: ContinuousPing };

/**
 * The sequence's traffic: a ping each way between the first pods of every pair of `nodes` (10/s)
 * and one paced TCP stream per pair (1 KiB every 100 ms, every byte checked on arrival). step()
 * closes a window and fails on a lost ping, a stream error, a stream that carried nothing, or an
 * engine drop counter that moved; with `outage` set, the pairs through that node may lose echoes
 * for one bounded stretch, which is printed, and must be answering again at the window's end.
 */
class SteadyTraffic {
  readonly #lane: MeshLane;
  readonly #nodes: readonly ClusterNode[];
  readonly #pings: readonly PairPing[];
  readonly #streams: PacedStreams;
  /** Echoes lost inside a measured restart outage, per pair: finish() forgives exactly these. */
  readonly #forgiven = new Map<PairPing, Set<number>>();
  readonly outages: string[] = [];

  private constructor(lane: MeshLane, nodes: readonly ClusterNode[], pings: readonly PairPing[], streams: PacedStreams) {
    this.#lane = lane; this.#nodes = nodes; this.#pings = pings; this.#streams = streams;
  }

  static async start(lane: MeshLane, nodes: readonly ClusterNode[]): Promise<SteadyTraffic> {
    const ref = (n: ClusterNode): PodRef => ({ node: n.name, pod: n.pods[0]!.name, ip: n.pods[0]!.ip });
    const streams = await PacedStreams.start({ ...lane.cluster, nodes: [...nodes] }, { chunkBytes: 1024, intervalMs: 100 });
    const pings = nodes.flatMap((x) => nodes.filter((y) => y !== x).map((y) => ({ from: ref(x), to: ref(y), ping: new ContinuousPing(x.pods[0]!.ns, x.pods[0]!.ip, y.pods[0]!.ip, { intervalMs: 100 }) })));
    return new SteadyTraffic(lane, nodes, pings, streams);
  }

  /** The engines' drop counters now, to compare a step's end with its start. */
  async drops(): Promise<Map<string, Record<string, number>>> {
    return new Map(await Promise.all(this.#nodes.map(async (n) => [n.name, await engineDrops(this.#lane, n)] as const)));
  }

  async step(t: { diagnostic(s: string): void }, what: string, dropsBefore: Map<string, Record<string, number>>, o: { outage?: ClusterNode } = {}): Promise<void> {
    await new Promise((r) => setTimeout(r, 2_000)); // echoes in flight belong to this step
    const windows = this.#pings.map((p) => ({ p, w: p.ping.mark() }));
    const streams = await this.#streams.mark();
    t.diagnostic(`${what}:`);
    for (const { p, w } of windows) t.diagnostic(`  ${pingWindowLine(p, w)}`);
    for (const w of streams) t.diagnostic(`  ${streamWindowLine(w)}`);
    const through = (p: PairPing): boolean => o.outage !== undefined && (p.from.node === o.outage.name || p.to.node === o.outage.name);
    const problems: string[] = [];
    for (const { p, w } of windows) {
      if (w.lost.length === 0) continue;
      if (!through(p)) { problems.push(`lost: ${pingWindowLine(p, w)}`); continue; }
      const outage = outageOf(w);
      this.outages.push(`${what}: ${p.from.pod} → ${p.to.pod} ${outage.ms} ms (${w.lost.length} echoes)`);
      if (outage.ms > RESTART_OUTAGE_BOUND_MS) problems.push(`outage longer than ${RESTART_OUTAGE_BOUND_MS} ms: ${pingWindowLine(p, w)}`);
      if (!outage.recovered) problems.push(`not answering again at the end of the step: ${pingWindowLine(p, w)}`);
      const f = this.#forgiven.get(p) ?? new Set<number>();
      for (const s of w.lost) f.add(s);
      this.#forgiven.set(p, f);
    }
    const dropsAfter = await this.drops();
    for (const [node, after] of dropsAfter) {
      // A restarted agent's engine starts from zero: its counters are all new.
      const before = o.outage?.name === node ? {} : dropsBefore.get(node) ?? {};
      for (const [k, v] of Object.entries(after)) if (k !== 'dummy' && v !== (before[k] ?? 0)) problems.push(`${node}: engine drops ${k} ${before[k] ?? 0} → ${v}`);
    }
    problems.push(...streamFailures(streams), ...streams.filter((w) => w.bytes === 0).map((w) => `${w.id} carried nothing`));
    assert.deepEqual(problems, [], `${what}:\n${problems.join('\n')}\n${this.#lane.logs(2000)}`);
    assert.ok(windows.every(({ w }) => w.sent >= 10), `${what}: too few pings to judge: ${windows.map(({ w }) => w.sent).join(',')}`);
  }

  async finish(t: { diagnostic(s: string): void }): Promise<void> {
    const finals = await this.#streams.stop();
    const pings = await Promise.all(this.#pings.map(async (p) => ({ p, r: await p.ping.stop() })));
    t.diagnostic('whole sequence:');
    for (const { p, r } of pings) t.diagnostic(`  ${p.from.pod} → ${p.to.pod}: ping ${r.sent} sent, ${r.received} received, ${r.lost.length} lost (${this.#forgiven.get(p)?.size ?? 0} inside restart outages), longest gap ${r.longestGapMs} ms`);
    for (const f of finals) t.diagnostic(`  ${f.id}: TCP ${f.sent} B sent, ${f.received} B received and checked, ${f.acked ?? '?'} B acknowledged end to end, longest gap ${f.longestGapMs} ms${f.error ? `, ${f.error}` : ''}`);
    for (const o of this.outages) t.diagnostic(`  restart outage ${o}`);
    assert.deepEqual(streamFailures(finals), []);
    assert.ok(finals.every((f) => f.intact), 'every stream intact');
    const unforgiven = pings.map(({ p, r }) => ({ p, lost: r.lost.filter((s) => !this.#forgiven.get(p)?.has(s)) })).filter((x) => x.lost.length > 0);
    assert.deepEqual(unforgiven.map(({ p, lost }) => `${p.from.pod} → ${p.to.pod} lost ${lost.length} outside restart outages (seq ${lost[0]!}…${lost[lost.length - 1]!})`), []);
  }

  kill(): void { this.#streams.kill(); for (const p of this.#pings) void p.ping.stop(); }
}

/** The longest run of unanswered echoes in a window, in ms, and whether the last tenth of a second… the last 10 echoes were answered. */
function outageOf(w: PingWindow): { ms: number; recovered: boolean } {
  let longest = 0; let run = 0; let prev = -2;
  for (const s of w.lost) { run = s === prev + 1 ? run + 1 : 1; prev = s; longest = Math.max(longest, run); }
  const tailLost = w.lost.filter((s) => s > w.lastSeq - 10).length;
  return { ms: longest * 100, recovered: tailLost === 0 };
}

/** A capture keeping only packets whose outer addresses are pod addresses: in a routed mesh that is pod traffic in clear. */
async function plaintextCapture(t: Scope, c: Cluster): Promise<{ stop(): Promise<CaptureReport> }> {
  const cap = await WireCapture.start(t, c.wire, { filter: ['net', '10.244.0.0/16'] });
  return {
    async stop() {
      const stats = await cap.stop();
      assert.ok(stats.complete, `the capture is incomplete (${JSON.stringify({ captured: stats.captured, received: stats.receivedByFilter, dropped: stats.droppedByKernel, endedEarly: stats.endedEarly })})`);
      return classifyPcapFile(stats.file, { podCidrs: podCidrsOf(c) });
    },
  };
}

async function ikeSpis(lane: MeshLane): Promise<Map<string, string | undefined>> {
  return new Map((await lane.ipsecNodes()).flatMap((n) => (n.status?.peers ?? []).map((p) => [`${n.metadata.name}/${p.node}`, p.ikeSpis] as const)));
}

function untilNewIkeSas(lane: MeshLane, before: Map<string, string | undefined>, want: number, what: string, timeoutMs = 60_000): Promise<true> {
  return until(what, async () => {
    const now = await ikeSpis(lane);
    return now.size === want && [...now].every(([k, v]) => v !== undefined && v !== before.get(k)) ? true : undefined;
  }, timeoutMs, async () => JSON.stringify({ before: [...before], now: [...await ikeSpis(lane)] }));
}

async function trustBundle(lane: MeshLane): Promise<{ cas: string[]; signing: string | undefined }> {
  const cm = await lane.kube.get<{ metadata: { annotations?: Record<string, string> }; data?: Record<string, string> }>(resourcePath(RESOURCES.configMaps, { namespace: lane.install.namespace, name: TRUST_BUNDLE_CONFIGMAP }));
  return { cas: bundleFingerprints(cm.data?.[TRUST_BUNDLE_KEY] ?? ''), signing: cm.metadata.annotations?.[ANNOTATIONS.signingCa] };
}

/** What a node's agent and kernel still hold of `other`: a tunnel, TUN routes or blackholes, inbound rules. */
async function stateAbout(lane: MeshLane, on: ClusterNode, other: ClusterNode): Promise<string[]> {
  const tunnels = (await agentStatus(lane, on)).tunnels.filter((t) => t.node === other.name).map((t) => `tunnel ${t.name}`);
  const cidr = other.podCidr;
  const table = (await on.ns.run('ip', ['route', 'show', 'table', '221'])).stdout.split('\n').filter((l) => l.includes(cidr));
  const rules = (await on.ns.run('ip', ['rule', 'show'])).stdout.split('\n').filter((l) => l.includes(cidr));
  return [...tunnels, ...table, ...rules];
}

test('userspace mesh operations on the host kernel: under continuous pings and TCP streams on every pair, rekeys, renewal on every node, a CA rotation and an apiserver outage longer than a Child SA lifetime lose nothing; an agent\'s kill -9 and restart stop its node\'s traffic for a bounded time and recover by themselves; a node joins and leaves', { timeout: 600_000 }, async (t) => {
  assert.equal(process.getuid?.(), 0, 'this test builds network namespaces: run it as root (the lanes do)');
  await hostLaneSocket(t);
  const lane = await startMeshLane(t, { nodes: 4, overlay: 'none', mesh: { datapath: 'auto', dpd: DPD }, label: 'us-ops', agentArgs: AUTO });
  const c = lane.cluster;
  const [a, b, cc, d] = [nodeByName(c, 'node-a'), nodeByName(c, 'node-b'), nodeByName(c, 'node-c'), nodeByName(c, 'node-d')];
  const three = [a, b, cc];
  const ordered = three.flatMap((x) => three.filter((y) => y !== x).map((y) => [x, y] as const));

  await t.test('the plaintext probe (pod-addressed packets on the wire) sees pod traffic before kipsec runs, so its silence later means something', async (tt) => {
    const probe = await plaintextCapture(tt, c);
    await pingMatrix({ ...c, nodes: three }, { count: 1, intervalMs: 200, timeoutMs: 30_000 });
    const r = await probe.stop();
    assert.ok(r.plaintextBetweenPods >= 6, formatReport(r));
  });
  // Started on a quiet wire (a capture started under traffic can look incomplete, see 30-mesh-operations).
  const wire = await plaintextCapture(t, c);
  await lane.startOperator();
  await lane.applyMesh({ datapath: 'auto', dpd: DPD });
  for (const n of three) await lane.startAgent(n);
  const t0 = Date.now();
  await lane.waitAllUp(240_000, three);
  t.diagnostic(`3 nodes meshed ${((Date.now() - t0) / 1000).toFixed(1)} s after the agents started`);
  for (const n of await lane.ipsecNodes()) if (three.some((x) => x.name === n.metadata.name)) assert.equal(n.status?.datapath, 'userspace', n.metadata.name);
  await lane.stopOperator(); // rekeys and restarts need no operator
  const traffic = await SteadyTraffic.start(lane, three);
  try {
    await t.test('Child SA and IKE SA rekeys, each started from both sides of every pair (RFC 7296 §1.3.3, §2.8)', async (tt) => {
      const drops = await traffic.drops();
      const spisBefore = new Set((await childSpis(lane, three)).map(spiOf));
      const ikeBefore = await ikeSpis(lane);
      for (const [from, to] of ordered) {
        for (const what of ['--child', '--ike']) {
          const r = await kipsec(lane, from, ['rekey', to.name, what]);
          assert.equal(r.code, 0, `${from.name}: kipsec rekey ${to.name} ${what}: ${r.stderr}${r.stdout}`);
          await new Promise((res) => setTimeout(res, 1_500));
        }
      }
      await lane.waitAllUp(120_000, three);
      await untilNewIkeSas(lane, ikeBefore, 6, 'every pair reports a new IKE SA', 30_000);
      const after = await childSpis(lane, three);
      assert.equal(after.length, 12, `one SA pair per node pair and side: ${after.join(', ')}`);
      assert.deepEqual(after.filter((x) => spisBefore.has(spiOf(x))), [], 'every Child SA was replaced');
      await traffic.step(tt, 'rekeys', drops);
    });

    await t.test('kill -9 of node-c\'s agent and a new agent: traffic through node-c stops while no agent holds its SAs, for a bounded time, and comes back with no manual step; the other pair loses nothing', async (tt) => {
      const drops = await traffic.drops();
      const t1 = Date.now();
      await lane.withAgentStopped(cc, async () => {
        await lane.agents.get('node-c')!.stop('SIGKILL');
        await new Promise((r) => setTimeout(r, 2_000));
        await lane.startAgent(cc);
      });
      await lane.waitAllUp(120_000, three);
      tt.diagnostic(`every pair up again ${((Date.now() - t1) / 1000).toFixed(1)} s after the kill (2 s of it with no agent)`);
      await traffic.step(tt, 'kill -9 of node-c\'s agent', drops, { outage: cc });
    });

    await t.test('a restart of node-a\'s agent (SIGTERM, exit 0, then a new agent, as a DaemonSet update does): bounded outage through node-a, recovered without a manual step', async (tt) => {
      const drops = await traffic.drops();
      const t1 = Date.now();
      await lane.withAgentStopped(a, async () => {
        const exit = await lane.agents.get('node-a')!.stop('SIGTERM');
        assert.deepEqual(exit, { code: 0, signal: null });
        await lane.startAgent(a);
      });
      await lane.waitAllUp(120_000, three);
      tt.diagnostic(`every pair up again ${((Date.now() - t1) / 1000).toFixed(1)} s after the SIGTERM`);
      await traffic.step(tt, 'restart of node-a\'s agent', drops, { outage: a });
    });

    await lane.startOperator(); // renewal and rotation need the signer

    await t.test('certificate renewal on every node (`kipsec renew`, same key): each node re-authenticates its IKE SAs make-before-break (RFC 7296 §2.8.3)', async (tt) => {
      const drops = await traffic.drops();
      const spisBefore = new Set((await childSpis(lane, three)).map(spiOf));
      for (const n of three) {
        const logFrom = lane.agents.get(n.name)!.log().length;
        const r = await kipsec(lane, n, ['renew']);
        assert.equal(r.code, 0, `${n.name}: kipsec renew: ${r.stderr}${r.stdout}`);
        assert.match(r.stdout, /node certificate renewed: sha256 [0-9a-f]{64}, same key/);
        await until(`${n.name} re-authenticates its 2 IKE SAs`, async () => (/"started":2,.*"IKE SAs re-authenticated with the new certificate"/.test(lane.agents.get(n.name)!.log().slice(logFrom)) ? true : undefined),
          60_000, () => lane.agents.get(n.name)!.log().slice(logFrom).slice(-3000));
      }
      await lane.waitAllUp(60_000, three);
      const after = await until('one SA pair per node pair, every one re-authenticated', async () => {
        const l = await childSpis(lane, three);
        return l.length === 12 && l.every((x) => !spisBefore.has(spiOf(x))) ? l : undefined;
      }, 30_000, async () => (await childSpis(lane, three)).join(', '));
      assert.equal(after.length, 12);
      await traffic.step(tt, 'renewal on every node', drops);
    });

    await t.test('a CA rotation (`kipsec rotate-ca --wait`): every node renews with the next CA and re-authenticates, the old CA leaves the bundle', async (tt) => {
      const drops = await traffic.drops();
      const old = await trustBundle(lane);
      const ikeBefore = await ikeSpis(lane);
      const logFrom = new Map(three.map((n) => [n.name, lane.agents.get(n.name)!.log().length]));
      const t1 = Date.now();
      const r = await kipsec(lane, undefined, ['rotate-ca', '--kubeconfig', process.env['KIPSEC_KUBECONFIG'] ?? '', '--namespace', lane.install.namespace, '--wait', '--timeout', '4m'], 270_000);
      assert.equal(r.code, 0, `kipsec rotate-ca --wait: ${r.stderr}${r.stdout}\n${lane.operator?.log().slice(-3000) ?? ''}`);
      tt.diagnostic(`kipsec rotate-ca --wait took ${((Date.now() - t1) / 1000).toFixed(1)} s`);
      const now = await trustBundle(lane);
      assert.equal(now.cas.length, 1, 'the old CA left the bundle');
      assert.notEqual(now.cas[0], old.cas[0], 'a new CA');
      assert.equal(now.signing, now.cas[0]);
      await untilNewIkeSas(lane, ikeBefore, 6, 'every pair re-authenticated with the new-CA certificates');
      // The end of a pair that goes second re-authenticates after its peer's turn (reauth.ts, ~10 s
      // later) unless the peer's already presented its new certificate: wait for every node's last
      // word on it, so no re-authentication is still to come when the next step starts.
      for (const n of three) {
        await until(`${n.name} is done re-authenticating`, async () => (/"IKE SAs re-authenticated with the new certificate"/.test(lane.agents.get(n.name)!.log().slice(logFrom.get(n.name))) ? true : undefined),
          60_000, () => lane.agents.get(n.name)!.log().slice(logFrom.get(n.name)).slice(-3000));
      }
      await lane.waitAllUp(60_000, three);
      await new Promise((res) => setTimeout(res, 3_000)); // the replaced IKE SAs' Deletes
      await traffic.step(tt, 'CA rotation', drops);
    });

    await lane.stopOperator();

    await t.test(`the Child SA lifetime shortened to ${ESP_LIFE_MS / 1000} s, then the apiserver out of every agent's reach for ${(ESP_LIFE_MS + 10_000) / 1000} s: every Child SA is rekeyed meanwhile, nothing is torn down`, async (tt) => {
      const changedFrom = new Map(three.map((n) => [n.name, lane.agents.get(n.name)!.log().length]));
      await lane.applyMesh({ datapath: 'auto', dpd: DPD, esp: ESP });
      for (const n of three) {
        await until(`${n.name} takes the new lifetimes`, async () => (/"changed":\["mesh\/[^\]]*\].*"msg":"mesh peers changed"/.test(lane.agents.get(n.name)!.log().slice(changedFrom.get(n.name))) ? true : undefined),
          30_000, () => lane.agents.get(n.name)!.log().slice(changedFrom.get(n.name)).slice(-3000));
      }
      for (const [from, to] of [[a, b], [b, cc], [cc, a]] as const) {
        const r = await kipsec(lane, from, ['rekey', to.name, '--child']);
        assert.equal(r.code, 0, `${from.name}: kipsec rekey ${to.name}: ${r.stderr}${r.stdout}`);
        await new Promise((res) => setTimeout(res, 1_500));
      }
      const drops = await traffic.drops();
      const logFrom = new Map(three.map((n) => [n.name, lane.agents.get(n.name)!.log().length]));
      const spisBefore = new Set((await childSpis(lane, three)).map(spiOf));
      for (const n of three) cutApiserverBridge(n.ns.name);
      await new Promise((r) => setTimeout(r, ESP_LIFE_MS + 10_000));
      const during = await childSpis(lane, three);
      const cutLogs = three.map((n) => lane.agents.get(n.name)!.log().slice(logFrom.get(n.name)));
      assert.ok(cutLogs.some((l) => /ECONNREFUSED|unreachable|cannot reach|failed/i.test(l)), `the agents noticed the outage:\n${cutLogs.join('\n').slice(-3000)}`);
      const back = Date.now();
      for (const n of three) await apiserverBridge(n.ns.name, t);
      assert.equal(during.length, 12, during.join(', '));
      assert.deepEqual(during.filter((x) => spisBefore.has(spiOf(x))), [], 'every Child SA was rekeyed while the apiserver was gone');
      await until('every agent writes its status again', async () => {
        const ns = await lane.ipsecNodes();
        return ns.filter((x) => three.some((n) => n.name === x.metadata.name)).every((x) => Date.parse(x.status?.lastUpdateTime ?? '') >= Math.floor(back / 1000) * 1000) ? true : undefined;
      }, 150_000, () => lane.logs(2000));
      await lane.waitAllUp(60_000, three);
      for (const n of three) {
        const log = lane.agents.get(n.name)!.log().slice(logFrom.get(n.name));
        assert.doesNotMatch(log, /"msg":"(mesh peers changed|peer removed|IKE SA down)"/, `${n.name} changed no peer and lost no IKE SA:\n${log.slice(-3000)}`);
      }
      await traffic.step(tt, 'apiserver outage', drops);
    });

    await t.test('at the end of the sequence every TCP stream is intact and no pod packet crossed the wire in clear', async (tt) => {
      await traffic.finish(tt);
      const r = await wire.stop();
      tt.diagnostic(`wire, from before the agents started to the end of the sequence: ${r.packets} pod-addressed packets in clear`);
      assert.equal(r.plaintextBetweenPods, 0, formatReport(r));
    });
  } finally {
    traffic.kill();
  }
  await lane.startOperator(); // a new node's certificate

  await t.test('a node that joins is meshed with every peer, and leaves when the mesh\'s nodeSelector stops selecting it: every peer drops its tunnel, TUN routes, blackholes and rules for it; a pair it does not touch loses nothing', async (tt) => {
    const steady = new ContinuousPing(a.pods[0]!.ns, a.pods[0]!.ip, b.pods[0]!.ip, { intervalMs: 100 });
    try {
      await lane.startAgent(d);
      const nodes = await lane.waitAllUp(120_000);
      const created = Date.parse(nodes.find((x) => x.metadata.name === 'node-d')!.metadata.creationTimestamp ?? '');
      tt.diagnostic(`node-d: all 3 pairs up ${((Date.now() - created) / 1000).toFixed(1)} s after its IPsecNode was created`);
      await lane.assertNoLoss(await pingMatrix(c, { count: 2, intervalMs: 200, timeoutMs: 90_000 }));
      const label = 'kipsec.io/e2e-mesh';
      const setLabel = (n: ClusterNode, v: string | null): Promise<unknown> => lane.kube.mergePatch(`/api/v1/nodes/${n.name}`, { metadata: { labels: { [label]: v } } });
      for (const n of c.nodes) await setLabel(n, 'on');
      await lane.applyMesh({ datapath: 'auto', dpd: DPD, esp: ESP, nodeSelector: { [label]: 'on' } });
      await lane.waitAllUp(60_000);
      const t1 = Date.now();
      await setLabel(d, null);
      for (const p of three) await until(`${p.name} forgets node-d`, async () => ((await stateAbout(lane, p, d)).length === 0 ? true : undefined), 60_000, async () => (await stateAbout(lane, p, d)).join('\n'));
      tt.diagnostic(`nothing of node-d on any peer ${((Date.now() - t1) / 1000).toFixed(1)} s after its label was removed`);
      await lane.waitAllUp(60_000, three);
    } finally {
      const r = await steady.stop();
      tt.diagnostic(`node-a → node-b while node-d joined and left: ${r.sent} pings sent, ${r.received} answered, longest gap ${r.longestGapMs} ms, lost ${r.lost.length ? r.lost.join(',') : 'none'}`);
      assert.ok(r.wasRunning && r.sent > 10, r.tail);
      assert.deepEqual(r.lost, [], 'node-a → node-b lost pings while node-d joined and left');
    }
  });
});
