// Day-2 operations, one after another, under continuous traffic on every node pair — pings at
// 10/s each way and a long-lived TCP stream whose every byte is checked as it arrives — with, per
// step, packets sent/received and the longest gap printed, and no lost ping, no stream error, no
// /proc/net/xfrm_stat counter moved, and (a capture of the whole sequence) no pod packet in clear:
// Child SA and IKE SA rekeys from both sides, kill -9 of an agent and a rolling restart of all
// agents with the operator stopped; certificate renewal on every node and a CA rotation
// (`kipsec rotate-ca --wait`), which need the signer; then, the operator stopped again, the mesh's
// Child SA lifetime shortened to 80 s (a live change) and the apiserver out of every agent's reach
// for longer than that, so every Child SA is rekeyed while it is gone. (Short lifetimes only at the
// end: an agent that is down cannot rekey, and with 80 s lives its peers' SAs would reach their
// hard lifetime during a restart under the VM's emulation.) After the sequence, with pings: a
// fourth node joins and is meshed with every peer, leaves when the mesh's nodeSelector stops
// selecting it and comes back; a node "reboots" (agent state dir and kernel XFRM state wiped, so a
// new key, a new certificate and new SPIs) and is meshed again without its peers waiting for their
// DPD — it connects with INITIAL_CONTACT and the peers replace their stale IKE SA —; a node whose
// Node object is deleted leaves nothing of itself in any peer's kernel.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { rmSync } from 'node:fs';
import { agentBundle } from '../vm/agent-harness.js';
import { repoPath } from '../../test/lib/paths.js';
import { nodeByName, podCidrsOf, type Cluster, type ClusterNode } from '../lib/cluster-net.js';
import { classifyPcapFile, formatReport, WireCapture, type CaptureReport } from '../lib/capture.js';
import type { Scope } from '../lib/netns.js';
import { eventually } from '../lib/kube.js';
import { apiserverBridge, cutApiserverBridge } from '../lib/lane-kube.js';
import { startMeshLane, type MeshLane } from '../lib/mesh-lane.js';
import { ContinuousPing, PacedStreams, pingMatrix, pingWindowLine, streamFailures, streamWindowLine, type PodRef } from '../lib/traffic.js';
import { kernelPolicies, kernelStates, xfrmStat } from '../lib/xfrm-text.js';
import { RESOURCES, resourcePath } from '../../src/api/kube/client.js';
import { isNotFound } from '../../src/api/kube/errors.js';
import { ANNOTATIONS, TRUST_BUNDLE_CONFIGMAP, TRUST_BUNDLE_KEY } from '../../src/api/names.js';
import type { IPsecNode } from '../../src/api/types.js';
import { bundleFingerprints } from '../../src/agent/mesh/ca-follow.js';

// Long enough that a peer's DPD cannot be what brings a rebooted node back within the test's look.
const DPD = { interval: '30s', timeout: '60s' };
// Short Child SA lives (the shortest the API allows) so that an apiserver outage can outlast one.
const ESP = { rekeyTime: '1m', lifeTime: '80s' };
const ESP_LIFE_MS = 80_000;

/** `probe` returns a value within `timeoutMs`, or the test fails naming `what` and showing `explain()`. */
function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number, explain: () => string | Promise<string>): Promise<T> {
  return eventually(probe, timeoutMs, 500, { what, state: explain });
}

/** `kipsec ARGS` (against a node's agent, its control socket, when `on` is given). */
function kipsec(lane: MeshLane, on: ClusterNode | undefined, args: readonly string[], timeoutMs = 60_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [agentBundle(), ...args, ...(on ? ['--control-socket', lane.controlSocket(on)] : [])], { cwd: repoPath(), timeout: timeoutMs, killSignal: 'SIGKILL', encoding: 'utf8' }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

/** SAs and policies on `on` that name `other` (its address or its pod CIDR). */
async function stateAbout(on: ClusterNode, other: ClusterNode): Promise<{ states: unknown[]; policies: unknown[] }> {
  const states = (await kernelStates(on.ns)).filter((s) => s.src === other.ip || s.dst === other.ip);
  const policies = (await kernelPolicies(on.ns)).filter((p) => p.src === other.podCidr || p.dst === other.podCidr || p.tmpl?.src === other.ip || p.tmpl?.dst === other.ip);
  return { states, policies };
}

/** Pings between two pods of nodes the step does not touch, at 10/s. */
function steadyPing(from: ClusterNode, to: ClusterNode): ContinuousPing {
  return new ContinuousPing(from.pods[0]!.ns, from.pods[0]!.ip, to.pods[0]!.ip, { intervalMs: 100 });
}

async function assertNoLoss(t: { diagnostic(s: string): void }, what: string, p: ContinuousPing): Promise<void> {
  const r = await p.stop();
  t.diagnostic(`${what}: ${r.sent} pings sent, ${r.received} answered, longest gap ${r.longestGapMs} ms, lost ${r.lost.length ? r.lost.join(',') : 'none'}`);
  assert.ok(r.wasRunning, `ping stopped early:\n${r.tail}`);
  assert.ok(r.sent > 10, `too few pings to judge: ${r.sent}`);
  assert.deepEqual(r.lost, [], `${what}: pings lost`);
}

/**
 * The sequence's traffic: a ping each way between the first pods of every pair of `nodes` (10/s)
 * and one paced TCP stream per pair (1 KiB every 100 ms, every byte checked on arrival). step()
 * closes a window: it prints each pair's numbers and fails on a lost ping, a stream error, a
 * stream that carried nothing, or an XFRM error counter that moved since the previous step.
 */
type PairPing = { readonly from: PodRef; readonly to: PodRef; readonly ping: ContinuousPing };

class SteadyTraffic {
  readonly #lane: MeshLane;
  readonly #nodes: readonly ClusterNode[];
  readonly #pings: readonly PairPing[];
  readonly #streams: PacedStreams;
  #stat: Array<Record<string, number>>;

  private constructor(lane: MeshLane, nodes: readonly ClusterNode[], pings: readonly PairPing[], streams: PacedStreams, stat: Array<Record<string, number>>) {
    this.#lane = lane; this.#nodes = nodes; this.#pings = pings; this.#streams = streams; this.#stat = stat;
  }

  static async start(lane: MeshLane, nodes: readonly ClusterNode[]): Promise<SteadyTraffic> {
    const ref = (n: ClusterNode): PodRef => ({ node: n.name, pod: n.pods[0]!.name, ip: n.pods[0]!.ip });
    const streams = await PacedStreams.start({ ...lane.cluster, nodes: [...nodes] }, { chunkBytes: 1024, intervalMs: 100 });
    const pings = nodes.flatMap((x) => nodes.filter((y) => y !== x).map((y) => ({ from: ref(x), to: ref(y), ping: steadyPing(x, y) })));
    const stat = await Promise.all(nodes.map((n) => xfrmStat(n.ns)));
    return new SteadyTraffic(lane, nodes, pings, streams, stat);
  }

  async step(t: { diagnostic(s: string): void }, what: string): Promise<void> {
    await new Promise((r) => setTimeout(r, 2_000)); // echoes in flight belong to this step
    const windows = this.#pings.map((p) => ({ p, w: p.ping.mark() }));
    const streams = await this.#streams.mark();
    t.diagnostic(`${what}:`);
    for (const { p, w } of windows) t.diagnostic(`  ${pingWindowLine(p, w)}`);
    for (const w of streams) t.diagnostic(`  ${streamWindowLine(w)}`);
    const stat = await Promise.all(this.#nodes.map((n) => xfrmStat(n.ns)));
    const moved = this.#nodes.flatMap((n, i) => Object.entries(stat[i]!).filter(([k, v]) => v !== (this.#stat[i]![k] ?? 0)).map(([k, v]) => `${n.name} ${k} ${this.#stat[i]![k] ?? 0} → ${v}`));
    this.#stat = stat;
    const lost = windows.filter(({ w }) => w.lost.length > 0).map(({ p, w }) => pingWindowLine(p, w));
    const idle = streams.filter((w) => w.bytes === 0).map((w) => `${w.id} carried nothing`);
    const problems = [...lost, ...streamFailures(streams), ...idle, ...moved.map((m) => `xfrm_stat ${m}`)];
    assert.deepEqual(problems, [], `${what}:\n${problems.join('\n')}\n${this.#lane.logs(2000)}`);
    assert.ok(windows.every(({ w }) => w.sent >= 10), `${what}: too few pings to judge: ${windows.map(({ w }) => w.sent).join(',')}`);
  }

  /** End the streams: every byte sent arrived, checked, and the receiver said so on the same connection. */
  async finish(t: { diagnostic(s: string): void }): Promise<void> {
    const finals = await this.#streams.stop();
    const pings = await Promise.all(this.#pings.map(async (p) => ({ p, r: await p.ping.stop() })));
    t.diagnostic('whole sequence:');
    for (const { p, r } of pings) t.diagnostic(`  ${p.from.pod} → ${p.to.pod}: ping ${r.sent} sent, ${r.received} received, longest gap ${r.longestGapMs} ms`);
    for (const f of finals) t.diagnostic(`  ${f.id}: TCP ${f.sent} B sent, ${f.received} B received and checked, ${f.acked ?? '?'} B acknowledged end to end, longest gap ${f.longestGapMs} ms${f.error ? `, ${f.error}` : ''}`);
    assert.deepEqual(streamFailures(finals), []);
    assert.ok(finals.every((f) => f.intact), 'every stream intact');
    assert.deepEqual(pings.filter(({ r }) => r.lost.length > 0).map(({ p, r }) => `${p.from.pod} → ${p.to.pod} lost ${r.lost.length} (seq ${r.lost[0]!}…${r.lost[r.lost.length - 1]!})`), []);
  }

  kill(): void { this.#streams.kill(); for (const p of this.#pings) void p.ping.stop(); }
}

/**
 * A capture of the wire that keeps only packets whose outer addresses are pod addresses: in a
 * routed mesh that is pod traffic in clear (ESP's outer addresses are the nodes'), so a sequence of
 * many minutes captures nothing unless something leaks. Complete (nothing dropped) or not believed.
 */
async function plaintextCapture(t: Scope, c: Cluster): Promise<{ stop(): Promise<CaptureReport> }> {
  const cap = await WireCapture.start(t, c.wire, { filter: ['net', '10.244.0.0/16'] });
  return {
    async stop() {
      const stats = await cap.stop();
      assert.ok(stats.complete, `the capture is incomplete (${JSON.stringify({ captured: stats.captured, received: stats.receivedByFilter, dropped: stats.droppedByKernel, endedEarly: stats.endedEarly })}): a "no plaintext" verdict needs every packet`);
      return classifyPcapFile(stats.file, { podCidrs: podCidrsOf(c) });
    },
  };
}

/** SHA-256 of each CA in the trust bundle, and the one the annotation says signs. */
async function trustBundle(lane: MeshLane): Promise<{ cas: string[]; signing: string | undefined; phase: string | undefined }> {
  const cm = await lane.kube.get<{ metadata: { annotations?: Record<string, string> }; data?: Record<string, string> }>(resourcePath(RESOURCES.configMaps, { namespace: lane.install.namespace, name: TRUST_BUNDLE_CONFIGMAP }));
  return {
    cas: bundleFingerprints(cm.data?.[TRUST_BUNDLE_KEY] ?? ''),
    signing: cm.metadata.annotations?.[ANNOTATIONS.signingCa], phase: cm.metadata.annotations?.[ANNOTATIONS.caRotationPhase],
  };
}

/** Every node's IKE SPIs with every peer, as their statuses report them. */
async function ikeSpis(lane: MeshLane): Promise<Map<string, string | undefined>> {
  return new Map((await lane.ipsecNodes()).flatMap((n) => (n.status?.peers ?? []).map((p) => [`${n.metadata.name}/${p.node}`, p.ikeSpis] as const)));
}

/** Until every node's status names a new IKE SA with each of its `peers` peers (compared with `before`). */
function untilNewIkeSas(lane: MeshLane, before: Map<string, string | undefined>, want: number, what: string, timeoutMs = 60_000): Promise<true> {
  return until(what, async () => {
    const now = await ikeSpis(lane);
    return now.size === want && [...now].every(([k, v]) => v !== undefined && v !== before.get(k)) ? true : undefined;
  }, timeoutMs, async () => JSON.stringify({ before: [...before], now: [...await ikeSpis(lane)] }));
}

test('mesh operations: under continuous pings and TCP streams on every pair, rekeys, an apiserver outage longer than a Child SA lifetime, kill -9, a rolling restart, renewal on every node and a CA rotation lose nothing; then a node joins, leaves by nodeSelector and comes back, one reboots with new keys, one is deleted', async (t) => {
  const lane: MeshLane = await startMeshLane(t, { nodes: 4, overlay: 'none', mesh: { dpd: DPD }, label: 'churn' });
  const c = lane.cluster;
  const [a, b, cc, d] = [nodeByName(c, 'node-a'), nodeByName(c, 'node-b'), nodeByName(c, 'node-c'), nodeByName(c, 'node-d')];
  const three = [a, b, cc];
  const ordered = three.flatMap((x) => three.filter((y) => y !== x).map((y) => [x, y] as const));
  await t.test('the plaintext probe of the sequence (a capture of pod-addressed packets on the wire) sees pod traffic before kipsec runs, so its silence later means something', async () => {
    const probe = await plaintextCapture(t, c);
    await pingMatrix({ ...c, nodes: three }, { count: 1, intervalMs: 200, timeoutMs: 30_000 });
    const r = await probe.stop();
    assert.ok(r.plaintextBetweenPods >= 6, formatReport(r));
  });
  // Started on a quiet wire, before any agent: tcpdump opens its socket before it attaches the
  // filter, and a packet passing in between is counted as received but never written, which
  // makes a capture started under traffic look incomplete (seen once in CI: received 2, captured 0).
  const wire = await plaintextCapture(t, c);
  await lane.startOperator();
  await lane.applyMesh({ dpd: DPD });
  for (const n of three) await lane.startAgent(n);
  await lane.waitAllUp(300_000, three);
  // Rekeys and restarts run with no operator: none of them may need it.
  await lane.stopOperator();
  const traffic = await SteadyTraffic.start(lane, three);
  try {
    await t.test('Child SA and IKE SA rekeys, each started from both sides of every pair (RFC 7296 §1.3.3, §2.8)', async (tt) => {
      const spisBefore = new Set((await Promise.all(three.map((n) => kernelStates(n.ns)))).flat().map((x) => x.spi));
      const ikeBefore = await ikeSpis(lane);
      for (const [from, to] of ordered) {
        for (const what of ['--child', '--ike']) {
          const r = await kipsec(lane, from, ['rekey', to.name, what]);
          assert.equal(r.code, 0, `${from.name}: kipsec rekey ${to.name} ${what}: ${r.stderr}${r.stdout}`);
          // One exchange at a time from the test; the Child SAs' own 1-minute rekeys come on top.
          await new Promise((res) => setTimeout(res, 3_000));
        }
      }
      await lane.waitAllUp(120_000, three);
      await untilNewIkeSas(lane, ikeBefore, 6, 'every pair reports a new IKE SA', 30_000);
      // The replaced inbound SAs linger 5 s (make-before-break), then one SA pair per node pair remains.
      const spisAfter = await until('the replaced SAs are gone', async () => {
        const l = (await Promise.all(three.map((n) => kernelStates(n.ns)))).flat().map((x) => x.spi);
        return l.length === 12 ? l : undefined;
      }, 30_000, async () => JSON.stringify((await Promise.all(three.map((n) => kernelStates(n.ns)))).map((l) => l.map((x) => [x.src, x.dst, x.spi]))));
      assert.deepEqual(spisAfter.filter((x) => spisBefore.has(x)), [], 'every Child SA was replaced');
      await traffic.step(tt, 'rekeys');
    });

    await t.test('kill -9 of an agent and a new agent on the same node: the kernel keeps the SAs, the new agent resumes its IKE SAs from their checkpoints', async (tt) => {
      await lane.withAgentStopped(cc, async () => {
        await lane.agents.get('node-c')!.stop('SIGKILL');
        await new Promise((r) => setTimeout(r, 2_000));
        await lane.startAgent(cc);
      });
      await lane.waitAllUp(300_000, three);
      await traffic.step(tt, 'kill -9 of node-c\'s agent');
    });

    await t.test('a rolling restart of every agent (SIGTERM, then a new agent, one node after the other, as a DaemonSet update does)', async (tt) => {
      for (const n of three) {
        await lane.withAgentStopped(n, async () => {
          const exit = await lane.agents.get(n.name)!.stop('SIGTERM');
          assert.deepEqual(exit, { code: 0, signal: null });
          await lane.startAgent(n);
        });
        await lane.waitAllUp(300_000, three);
      }
      await traffic.step(tt, 'rolling restart');
    });

    await lane.startOperator(); // renewal and rotation need the signer; from here on it runs

    await t.test('certificate renewal on every node (`kipsec renew`, same key): each IPsecNode publishes its new certificate and the node re-authenticates its IKE SAs make-before-break (RFC 7296 §2.8.3)', async (tt) => {
      const before = new Map((await lane.ipsecNodes()).map((n) => [n.metadata.name, n.spec.identity]));
      const spisBefore = new Set((await Promise.all(three.map((n) => kernelStates(n.ns)))).flat().map((x) => x.spi));
      // One node after the other, as renewals at two thirds of each certificate's life come.
      for (const n of three) {
        const ikeOf = async (): Promise<Map<string, string | undefined>> => new Map(((await lane.ipsecNodes()).find((x) => x.metadata.name === n.name)?.status?.peers ?? []).map((p) => [p.node, p.ikeSpis]));
        const ikeBefore = await ikeOf();
        const logFrom = lane.agents.get(n.name)!.log().length;
        const r = await kipsec(lane, n, ['renew']);
        assert.equal(r.code, 0, `${n.name}: kipsec renew: ${r.stderr}${r.stdout}`);
        assert.match(r.stdout, /node certificate renewed: sha256 [0-9a-f]{64}, same key/);
        await until(`${n.name} re-authenticates its 2 IKE SAs`, async () => (/"started":2,.*"IKE SAs re-authenticated with the new certificate"/.test(lane.agents.get(n.name)!.log().slice(logFrom)) ? true : undefined),
          60_000, () => lane.agents.get(n.name)!.log().slice(logFrom).slice(-3000));
        await until(`${n.name}: a new IKE SA with every peer`, async () => {
          const now = await ikeOf();
          return now.size === 2 && [...now].every(([peer, spis]) => spis !== undefined && spis !== ikeBefore.get(peer)) ? true : undefined;
        }, 60_000, async () => JSON.stringify({ ikeBefore: [...ikeBefore], now: [...await ikeOf()] }));
      }
      const now = await lane.ipsecNodes();
      for (const x of now.filter((y) => three.some((n) => n.name === y.metadata.name))) {
        const was = before.get(x.metadata.name);
        assert.notEqual(x.spec.identity?.certFingerprint, was?.certFingerprint, `${x.metadata.name} publishes its new certificate`);
        assert.equal(x.spec.identity?.publicKeyFingerprint, was?.publicKeyFingerprint, `${x.metadata.name} kept its key`);
      }
      await lane.waitAllUp(60_000, three);
      await until('one SA pair per node pair', async () => ((await Promise.all(three.map((n) => kernelStates(n.ns)))).flat().length === 12 ? true : undefined), 30_000, () => 'SAs linger');
      const spisAfter = (await Promise.all(three.map((n) => kernelStates(n.ns)))).flat().map((x) => x.spi);
      assert.deepEqual(spisAfter.filter((x) => spisBefore.has(x)), [], 'every Child SA was replaced by a re-authenticated one');
      await traffic.step(tt, 'renewal on every node');
    });

    await t.test('a CA rotation (`kipsec rotate-ca --wait`): the next CA is trusted by every node before it signs, every node renews and re-authenticates with it, and the old CA leaves the bundle once no node presents it; the IPsecMesh status shows the phases', async (tt) => {
      const old = await trustBundle(lane);
      assert.deepEqual([old.cas.length, old.phase], [1, undefined]);
      const ikeBefore = await ikeSpis(lane);
      // The mesh status, polled all along: the phases and progress messages it showed.
      const seen: string[] = [];
      let polling = true;
      const poller = (async () => {
        while (polling) {
          const m = await lane.mesh().catch(() => undefined);
          const msg = m?.status?.caRotation?.message;
          if (msg && seen[seen.length - 1] !== msg) seen.push(msg);
          await new Promise((r) => setTimeout(r, 500));
        }
      })();
      const r = await kipsec(lane, undefined, ['rotate-ca', '--kubeconfig', process.env['KIPSEC_KUBECONFIG'] ?? '', '--namespace', lane.install.namespace, '--wait', '--timeout', '5m'], 330_000);
      polling = false;
      await poller;
      for (const l of r.stdout.trim().split('\n')) tt.diagnostic(`kipsec rotate-ca: ${l}`);
      for (const l of seen) tt.diagnostic(`IPsecMesh status.caRotation: ${l}`);
      assert.equal(r.code, 0, `kipsec rotate-ca --wait: ${r.stderr}${r.stdout}\n${lane.operator?.log().slice(-3000) ?? ''}`);
      const now = await trustBundle(lane);
      assert.equal(now.cas.length, 1, 'the old CA left the bundle');
      assert.notEqual(now.cas[0], old.cas[0], 'a new CA');
      assert.equal(now.signing, now.cas[0]);
      // The Events are the record of every phase. The status is written at most once a second, so
      // a Trusting phase the nodes finish within that second may never reach it (CI at 9e45bc0
      // saw only Reissuing with a 500 ms poll); the Reissuing phase waits on renewals and shows.
      const phases = await eventually(async () => {
        const evs = (await lane.kube.get<{ items: { reason: string; note: string; eventTime: string; regarding: { kind: string } }[] }>(resourcePath(RESOURCES.events, { namespace: 'default' }))).items
          .filter((e) => e.regarding.kind === 'IPsecMesh' && e.reason.startsWith('CARotation') && e.note.includes(now.cas[0]!))
          .sort((a, b) => a.eventTime.localeCompare(b.eventTime));
        return evs.length >= 3 ? evs : undefined;
      }, 20_000, 500).catch(() => []);
      for (const e of phases) tt.diagnostic(`IPsecMesh Event ${e.eventTime} ${e.reason}: ${e.note}`);
      assert.deepEqual(phases.map((e) => e.reason), ['CARotationStarted', 'CARotationReissuing', 'CARotationFinished'], 'one Event per phase, in order');
      assert.ok(seen.some((l) => l.startsWith('Reissuing:')), `the status showed the reissuing progress: ${seen.join(' | ')}`);
      await eventually(async () => ((await lane.mesh()).status?.caRotation === undefined ? true : undefined), 20_000, 500,
        { what: 'the status has no rotation once it finished', state: async () => JSON.stringify((await lane.mesh()).status?.caRotation) });
      await until('every node presents a new-CA certificate and trusts only the new CA', async () => {
        const ns = (await lane.ipsecNodes()).filter((x) => three.some((n) => n.name === x.metadata.name));
        return ns.length === 3 && ns.every((x) => x.spec.identity?.issuerFingerprint === now.cas[0] && JSON.stringify(x.spec.identity?.trustedCAs) === JSON.stringify(now.cas)) ? true : undefined;
      }, 60_000, async () => JSON.stringify((await lane.ipsecNodes()).map((x) => [x.metadata.name, x.spec.identity])));
      await untilNewIkeSas(lane, ikeBefore, 6, 'every pair re-authenticated with the new-CA certificates');
      await lane.waitAllUp(60_000, three);
      await traffic.step(tt, 'CA rotation');
    });

    await lane.stopOperator(); // the outage, like the restarts, runs with no operator

    await t.test(`the mesh's Child SA lifetime shortened to ${ESP_LIFE_MS / 1000} s (a live change), then the apiserver out of every agent's reach for ${(ESP_LIFE_MS + 10_000) / 1000} s: every Child SA is rekeyed meanwhile, nothing is torn down, and when it is back the agents resync without touching an SA`, async (tt) => {
      // Short lives only from here: an agent that is down (kill -9, restart) cannot rekey, and its
      // peers' SAs must not reach their hard lifetime meanwhile (strongSwan's margin is the same).
      const changedFrom = new Map(three.map((n) => [n.name, lane.agents.get(n.name)!.log().length]));
      await lane.applyMesh({ dpd: DPD, esp: ESP });
      for (const n of three) {
        await until(`${n.name} takes the new lifetimes`, async () => (/"changed":\["mesh\/[^\]]*\].*"msg":"mesh peers changed"/.test(lane.agents.get(n.name)!.log().slice(changedFrom.get(n.name))) ? true : undefined),
          30_000, () => lane.agents.get(n.name)!.log().slice(changedFrom.get(n.name)).slice(-3000));
      }
      // New Child SAs (from one side of each pair) carry the new lifetimes.
      for (const [from, to] of [[a, b], [b, cc], [cc, a]] as const) {
        const r = await kipsec(lane, from, ['rekey', to.name, '--child']);
        assert.equal(r.code, 0, `${from.name}: kipsec rekey ${to.name}: ${r.stderr}${r.stdout}`);
        await new Promise((res) => setTimeout(res, 3_000));
      }
      await until('one SA pair per node pair', async () => ((await Promise.all(three.map((n) => kernelStates(n.ns)))).flat().length === 12 ? true : undefined), 30_000, () => 'SAs linger');
      const logFrom = new Map(three.map((n) => [n.name, lane.agents.get(n.name)!.log().length]));
      const spisBefore = new Set((await Promise.all(three.map((n) => kernelStates(n.ns)))).flat().map((x) => x.spi));
      for (const n of three) cutApiserverBridge(n.ns.name);
      await new Promise((r) => setTimeout(r, ESP_LIFE_MS + 10_000));
      const during = (await Promise.all(three.map((n) => kernelStates(n.ns)))).flat().map((x) => x.spi);
      const cutLogs = three.map((n) => lane.agents.get(n.name)!.log().slice(logFrom.get(n.name)));
      assert.ok(cutLogs.some((l) => /ECONNREFUSED|unreachable|cannot reach|failed/i.test(l)), `the agents noticed the outage:\n${cutLogs.join('\n').slice(-3000)}`);
      const back = Date.now();
      for (const n of three) await apiserverBridge(n.ns.name, t);
      assert.deepEqual(during.filter((x) => spisBefore.has(x)), [], 'every Child SA was rekeyed while the apiserver was gone (none outlives its lifetime)');
      await until('every agent writes its status again', async () => {
        const ns = await lane.ipsecNodes();
        return ns.filter((x) => three.some((n) => n.name === x.metadata.name)).every((x) => Date.parse(x.status?.lastUpdateTime ?? '') >= Math.floor(back / 1000) * 1000) ? true : undefined;
      }, 150_000, () => lane.logs(2000));
      await lane.waitAllUp(60_000, three);
      for (const n of three) {
        const log = lane.agents.get(n.name)!.log().slice(logFrom.get(n.name));
        assert.doesNotMatch(log, /"msg":"(mesh peers changed|peer removed|IKE SA down)"/, `${n.name} changed no peer and lost no IKE SA:\n${log.slice(-3000)}`);
      }
      await traffic.step(tt, 'apiserver outage');
    });

    await t.test('at the end of the sequence every TCP stream is intact (every byte sent arrived, in order, checked, and acknowledged end to end) and no pod packet crossed the wire in clear', async (tt) => {
      await traffic.finish(tt);
      const r = await wire.stop();
      tt.diagnostic(`wire, from before the agents started to the end of the sequence: ${r.packets} pod-addressed packets in clear`);
      assert.equal(r.plaintextBetweenPods, 0, formatReport(r));
    });
  } finally {
    traffic.kill();
  }
  await lane.startOperator(); // a new node's certificate, and node collection

  await t.test('a node that joins is meshed with every peer; the time from its IPsecNode\'s creation to its last pair up is reported', async (tt) => {
    const steady = steadyPing(a, b);
    await lane.startAgent(d);
    const nodes = await lane.waitAllUp(300_000);
    const created = Date.parse(nodes.find((x) => x.metadata.name === 'node-d')!.metadata.creationTimestamp ?? '');
    tt.diagnostic(`node-d: all 3 pairs up ${((Date.now() - created) / 1000).toFixed(1)} s after its IPsecNode was created (creation time has 1 s resolution)`);
    await assertNoLoss(tt, 'node-a → node-b while node-d joined', steady);
    await lane.assertNoLoss(await pingMatrix(c, { count: 2, intervalMs: 200, timeoutMs: 90_000 }));
  });

  await t.test('a node the mesh\'s nodeSelector no longer selects leaves: every peer removes its SAs and policies and the node removes its own; selected again, it is meshed again', async (tt) => {
    const label = 'kipsec.io/e2e-mesh';
    const setLabel = (n: ClusterNode, v: string | null): Promise<unknown> => lane.kube.mergePatch(`/api/v1/nodes/${n.name}`, { metadata: { labels: { [label]: v } } });
    for (const n of c.nodes) await setLabel(n, 'on');
    await lane.applyMesh({ dpd: DPD, esp: ESP, nodeSelector: { [label]: 'on' } });
    await lane.waitAllUp(60_000);
    const steady = steadyPing(a, b);
    const t0 = Date.now();
    await setLabel(d, null);
    for (const p of three) {
      await until(`${p.name} forgets node-d`, async () => {
        const x = await stateAbout(p, d);
        return x.states.length === 0 && x.policies.length === 0 ? true : undefined;
      }, 60_000, async () => JSON.stringify(await stateAbout(p, d)));
    }
    await until('node-d removes its own SAs and policies', async () => ((await kernelStates(d.ns)).length + (await kernelPolicies(d.ns)).length === 0 ? true : undefined),
      60_000, async () => JSON.stringify({ states: await kernelStates(d.ns), policies: await kernelPolicies(d.ns) }));
    tt.diagnostic(`nothing of node-d in any kernel ${((Date.now() - t0) / 1000).toFixed(1)} s after its label was removed`);
    const t1 = Date.now();
    await setLabel(d, 'on');
    await lane.waitAllUp(120_000);
    tt.diagnostic(`node-d meshed again ${((Date.now() - t1) / 1000).toFixed(1)} s after it was selected again`);
    await assertNoLoss(tt, 'node-a → node-b while node-d left and came back', steady);
  });

  await t.test('a node that reboots (state dir and kernel state wiped, new key) is meshed again: its peers replace the stale IKE SA at its INITIAL_CONTACT instead of waiting for DPD, and hold one IKE SA and one SA pair with it', async (tt) => {
    const oldFingerprint = (await lane.ipsecNodes()).find((x) => x.metadata.name === 'node-c')?.spec.identity?.publicKeyFingerprint;
    assert.ok(oldFingerprint, 'node-c published a key');
    const steady = steadyPing(a, b);
    await lane.withAgentStopped(cc, async () => {
      await lane.agents.get('node-c')!.stop('SIGKILL');
      await cc.ns.run('sh', ['-c', 'ip xfrm state flush && ip xfrm policy flush']);
      rmSync(lane.stateDir(cc), { recursive: true, force: true });
      const logLen = new Map([a, b].map((n) => [n.name, lane.agents.get(n.name)!.log().length]));
      const t0 = Date.now();
      await lane.startAgent(cc);
      await lane.waitAllUp(300_000);
      tt.diagnostic(`node-c re-meshed ${((Date.now() - t0) / 1000).toFixed(1)} s after its agent started on an empty node (peers' DPD: ${DPD.interval} + ${DPD.timeout})`);
      const now = (await lane.ipsecNodes()).find((x) => x.metadata.name === 'node-c')!;
      assert.notEqual(now.spec.identity?.publicKeyFingerprint, oldFingerprint, 'node-c has a new key');
      for (const p of [a, b]) {
        const log = lane.agents.get(p.name)!.log().slice(logLen.get(p.name));
        assert.match(log, /"tunnel":"mesh\/node-c".*"reason":"replaced".*"IKE SA down"/, `${p.name} replaced its IKE SA with node-c:\n${log.slice(-3000)}`);
        assert.doesNotMatch(log, /"tunnel":"mesh\/node-c".*"reason":"dpd-timeout"/, `${p.name} did not wait for DPD`);
        // The Child SAs rekey every minute here, and a replaced inbound SA lingers 5 s: look until one pair remains.
        await until(`${p.name}: one SA each way with node-c, the stale ones gone`, async () => ((await stateAbout(p, cc)).states.length === 2 ? true : undefined),
          30_000, async () => JSON.stringify(await stateAbout(p, cc)));
        // Statuses follow within seconds: both sides name the same, single IKE SA.
        await until(`${p.name} and node-c report the same IKE SA`, async () => {
          const ns = await lane.ipsecNodes();
          const ours = ns.find((x) => x.metadata.name === 'node-c')?.status?.peers?.find((x) => x.node === p.name);
          const theirs = ns.find((x) => x.metadata.name === p.name)?.status?.peers?.find((x) => x.node === 'node-c');
          return ours?.state === 'established' && ours.ikeSpis !== undefined && ours.ikeSpis === theirs?.ikeSpis ? true : undefined;
        }, 30_000, async () => JSON.stringify((await lane.ipsecNodes()).map((x) => [x.metadata.name, x.status?.peers?.map((q) => [q.node, q.state, q.ikeSpis])])));
      }
    });
    await assertNoLoss(tt, 'node-a → node-b while node-c rebooted', steady);
    await lane.assertNoLoss(await pingMatrix(c, { count: 2, intervalMs: 200, timeoutMs: 90_000 }));
  });

  await t.test('a node whose Node is deleted leaves: the operator deletes its IPsecNode, its still-running agent does not write it again, and no peer keeps an SA or a policy of it', async (tt) => {
    const steady = steadyPing(a, b);
    const t0 = Date.now();
    await lane.kube.delete(`/api/v1/nodes/${d.name}`);
    for (const p of three) {
      await until(`${p.name} forgets node-d`, async () => {
        const s = await stateAbout(p, d);
        return s.states.length === 0 && s.policies.length === 0 ? true : undefined;
      }, 60_000, async () => JSON.stringify(await stateAbout(p, d)));
    }
    tt.diagnostic(`nothing of node-d in any peer's kernel ${((Date.now() - t0) / 1000).toFixed(1)} s after its Node was deleted`);
    await until('the operator deletes the IPsecNode of a deleted Node', async () => {
      return lane.kube.get<IPsecNode>(resourcePath(RESOURCES.ipsecNodes, { name: d.name })).then(() => undefined, (e: unknown) => (isNotFound(e) ? true : undefined));
    }, 60_000, () => lane.operator?.log().slice(-3000) ?? 'no operator');
    // node-d's agent still runs (a pod outliving its Node until the kubelet goes): it must not fight the operator.
    await new Promise((r) => setTimeout(r, 10_000));
    await assert.rejects(lane.kube.get(resourcePath(RESOURCES.ipsecNodes, { name: d.name })), (e: unknown) => isNotFound(e), 'the IPsecNode stays deleted');
    assert.match(lane.agents.get('node-d')!.log(), /our Node object is gone/);
    await lane.agents.get('node-d')!.stop('SIGTERM');
    await lane.waitAllUp(120_000, three);
    await assertNoLoss(tt, 'node-a → node-b while node-d left', steady);
  });
});
