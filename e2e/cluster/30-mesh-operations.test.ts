// Day-2 operations under continuous pings. Rekeys from either side of a pair lose nothing, and go on
// while the apiserver is out of reach, which tears nothing down. A renewed certificate is presented
// at once: the node re-authenticates its IKE SAs make-before-break. Agents restart and nodes come and go. A killed agent and a rolling restart of all agents lose no
// packet: the kernel keeps the SAs while no agent runs and the next agent resumes them. A node that joins is meshed with every peer, a node that "reboots" (agent
// state dir and kernel XFRM state wiped, so a new key, a new certificate and new SPIs) is meshed
// again without its peers waiting for their DPD — it connects with INITIAL_CONTACT and the peers
// replace their stale IKE SA — and a node whose Node object is deleted leaves nothing of itself
// in any peer's kernel (the operator deletes its IPsecNode). Pings between the nodes that are not
// involved run all along and must lose nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { rmSync } from 'node:fs';
import { agentBundle } from '../vm/agent-harness.js';
import { repoPath } from '../../test/lib/paths.js';
import { nodeByName, type ClusterNode } from '../lib/cluster-net.js';
import { eventually } from '../lib/kube.js';
import { apiserverBridge, cutApiserverBridge } from '../lib/lane-kube.js';
import { startMeshLane, type MeshLane } from '../lib/mesh-lane.js';
import { ContinuousPing, pingMatrix } from '../lib/traffic.js';
import { kernelPolicies, kernelStates, xfrmStat } from '../lib/xfrm-text.js';
import { RESOURCES, resourcePath } from '../../src/api/kube/client.js';
import { isNotFound } from '../../src/api/kube/errors.js';
import type { IPsecNode } from '../../src/api/types.js';

// Long enough that a peer's DPD cannot be what brings a rebooted node back within the test's look.
const DPD = { interval: '30s', timeout: '60s' };

/** `probe` returns a value within `timeoutMs`, or the test fails naming `what` and showing `explain()`. */
function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number, explain: () => string | Promise<string>): Promise<T> {
  return eventually(probe, timeoutMs, 500, { what, state: explain });
}

/** `kipsec ARGS` against a node's agent (its control socket). */
function kipsec(lane: MeshLane, on: ClusterNode, args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [agentBundle(), ...args, '--control-socket', lane.controlSocket(on)], { cwd: repoPath(), timeout: 60_000, killSignal: 'SIGKILL', encoding: 'utf8' }, (err, stdout, stderr) => {
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
  t.diagnostic(`${what}: ${r.sent} pings sent, ${r.received} answered, lost ${r.lost.length ? r.lost.join(',') : 'none'}`);
  assert.ok(r.wasRunning, `ping stopped early:\n${r.tail}`);
  assert.ok(r.sent > 10, `too few pings to judge: ${r.sent}`);
  assert.deepEqual(r.lost, [], `${what}: pings lost`);
}

test('mesh operations: rekeys from both sides, agent kill -9 and rolling restart, a fourth node joins, a node reboots with new keys, a node is deleted — no lost ping where none may be lost', async (t) => {
  const lane: MeshLane = await startMeshLane(t, { nodes: 4, overlay: 'none', mesh: { dpd: DPD }, label: 'churn' });
  const c = lane.cluster;
  const [a, b, cc, d] = [nodeByName(c, 'node-a'), nodeByName(c, 'node-b'), nodeByName(c, 'node-c'), nodeByName(c, 'node-d')];
  const three = [a, b, cc];
  await lane.startOperator();
  await lane.applyMesh({ dpd: DPD });
  for (const n of three) await lane.startAgent(n);
  await lane.waitAllUp(300_000, three);
  // Rekeys, restarts and the apiserver outage run with no operator: none of them may need it.
  await lane.stopOperator();

  await t.test('Child SA and IKE SA rekeys, each started from both sides of every pair, lose no ping and raise no XFRM error counter (RFC 7296 §1.3.3, §2.8)', async (tt) => {
    const pairs = three.flatMap((x) => three.filter((y) => y !== x).map((y) => [x, y] as const));
    const pings = pairs.map(([x, y]) => steadyPing(x, y));
    const statBefore = await Promise.all(three.map((n) => xfrmStat(n.ns)));
    const spisBefore = new Set((await Promise.all(three.map((n) => kernelStates(n.ns)))).flat().map((x) => x.spi));
    const ikeBefore = new Map((await lane.ipsecNodes()).flatMap((n) => (n.status?.peers ?? []).map((p) => [`${n.metadata.name}/${p.node}`, p.ikeSpis] as const)));
    for (const [from, to] of pairs) {
      for (const what of ['--child', '--ike']) {
        const r = await kipsec(lane, from, ['rekey', to.name, what]);
        assert.equal(r.code, 0, `${from.name}: kipsec rekey ${to.name} ${what}: ${r.stderr}${r.stdout}`);
        // One exchange at a time: a rekey collision is the engine's business, not this step's.
        await new Promise((res) => setTimeout(res, 3_000));
      }
    }
    await lane.waitAllUp(120_000, three);
    await until('every pair reports a new IKE SA', async () => {
      const now = (await lane.ipsecNodes()).flatMap((n) => (n.status?.peers ?? []).map((p) => [`${n.metadata.name}/${p.node}`, p.ikeSpis] as const));
      return now.length === 6 && now.every(([k, v]) => v !== undefined && v !== ikeBefore.get(k)) ? true : undefined;
    }, 30_000, async () => JSON.stringify({ before: [...ikeBefore], now: (await lane.ipsecNodes()).map((n) => n.status?.peers?.map((p) => [p.node, p.ikeSpis])) }));
    await new Promise((res) => setTimeout(res, 2_000));
    for (const [i, p] of pings.entries()) await assertNoLoss(tt, `${pairs[i]![0].name} → ${pairs[i]![1].name}`, p);
    // The replaced inbound SAs linger 5 s (make-before-break), then one SA pair per node pair remains.
    const spisAfter = await until('the replaced SAs are gone', async () => {
      const l = (await Promise.all(three.map((n) => kernelStates(n.ns)))).flat().map((x) => x.spi);
      return l.length === 12 ? l : undefined;
    }, 30_000, async () => JSON.stringify((await Promise.all(three.map((n) => kernelStates(n.ns)))).map((l) => l.map((x) => [x.src, x.dst, x.spi]))));
    assert.deepEqual(spisAfter.filter((x) => spisBefore.has(x)), [], 'every Child SA was replaced');
    const statAfter = await Promise.all(three.map((n) => xfrmStat(n.ns)));
    for (const [i, n] of three.entries()) assert.deepEqual(statAfter[i], statBefore[i], `${n.name}: /proc/net/xfrm_stat unchanged`);
  });

  await t.test('the apiserver out of every agent\'s reach for 60 s: traffic and Child SA rekeys go on and nothing is torn down; when it is back the agents resync without touching an SA', async (tt) => {
    const pairs = three.flatMap((x) => three.filter((y) => y !== x).map((y) => [x, y] as const));
    const pings = pairs.map(([x, y]) => steadyPing(x, y));
    const logFrom = new Map(three.map((n) => [n.name, lane.agents.get(n.name)!.log().length]));
    const spis = async (n: ClusterNode, peer: ClusterNode): Promise<string[]> => (await stateAbout(n, peer)).states.map((x) => (x as { spi: string }).spi).sort();
    const untouchedBefore = await spis(a, b);
    for (const n of three) cutApiserverBridge(n.ns.name);
    const cutAt = Date.now();
    await new Promise((r) => setTimeout(r, 20_000));
    // Rekeys need no apiserver: node-c's pairs get new Child SAs from each side.
    const rekeyedBefore = [...await spis(a, cc), ...await spis(b, cc)];
    for (const [from, to] of [[cc, a], [b, cc]] as const) {
      const r = await kipsec(lane, from, ['rekey', to.name, '--child']);
      assert.equal(r.code, 0, `${from.name}: kipsec rekey ${to.name}: ${r.stderr}${r.stdout}`);
      await new Promise((res) => setTimeout(res, 3_000));
    }
    await new Promise((r) => setTimeout(r, Math.max(0, cutAt + 60_000 - Date.now())));
    const cutLogs = three.map((n) => lane.agents.get(n.name)!.log().slice(logFrom.get(n.name)));
    assert.ok(cutLogs.some((l) => /ECONNREFUSED|unreachable|cannot reach|failed/i.test(l)), `the agents noticed the outage:\n${cutLogs.join('\n').slice(-3000)}`);
    const back = Date.now();
    for (const n of three) await apiserverBridge(n.ns.name, t);
    await until('every agent writes its status again', async () => {
      const ns = await lane.ipsecNodes();
      return ns.filter((x) => three.some((n) => n.name === x.metadata.name)).every((x) => Date.parse(x.status?.lastUpdateTime ?? '') >= Math.floor(back / 1000) * 1000) ? true : undefined;
    }, 150_000, () => lane.logs(2000));
    await lane.waitAllUp(60_000, three);
    await new Promise((r) => setTimeout(r, 2_000));
    for (const [i, p] of pings.entries()) await assertNoLoss(tt, `${pairs[i]![0].name} → ${pairs[i]![1].name}`, p);
    for (const n of three) {
      const log = lane.agents.get(n.name)!.log().slice(logFrom.get(n.name));
      assert.doesNotMatch(log, /"msg":"(mesh peers changed|peer removed|IKE SA down)"/, `${n.name} changed no peer and lost no IKE SA:\n${log.slice(-3000)}`);
    }
    assert.deepEqual(await spis(a, b), untouchedBefore, 'the pair nobody rekeyed kept its SAs through the outage and the resync');
    const rekeyedAfter = [...await spis(a, cc), ...await spis(b, cc)];
    assert.equal(rekeyedAfter.length, 4);
    assert.deepEqual(rekeyedAfter.filter((x) => rekeyedBefore.includes(x)), [], 'the rekeys during the outage installed new SAs');
  });

  await t.test('kill -9 of an agent and a new agent on the same node lose no ping between it and its peers: the kernel keeps the SAs, the new agent resumes its IKE SAs from their checkpoints', async (tt) => {
    const pings = [steadyPing(cc, a), steadyPing(b, cc), steadyPing(a, b)];
    await lane.withAgentStopped(cc, async () => {
      await lane.agents.get('node-c')!.stop('SIGKILL');
      await new Promise((r) => setTimeout(r, 2_000));
      await lane.startAgent(cc);
    });
    await lane.waitAllUp(300_000, three);
    await new Promise((r) => setTimeout(r, 2_000));
    for (const [i, p] of pings.entries()) await assertNoLoss(tt, ['node-c → node-a', 'node-b → node-c', 'node-a → node-b'][i]!, p);
  });

  await t.test('a rolling restart of every agent (SIGTERM, then a new agent, one node after the other, as a DaemonSet update does) loses no ping on any pair', async (tt) => {
    const pairs = three.flatMap((x) => three.filter((y) => y !== x).map((y) => [x, y] as const));
    const pings = pairs.map(([x, y]) => steadyPing(x, y));
    for (const n of three) {
      await lane.withAgentStopped(n, async () => {
        const exit = await lane.agents.get(n.name)!.stop('SIGTERM');
        assert.deepEqual(exit, { code: 0, signal: null });
        await lane.startAgent(n);
      });
      await lane.waitAllUp(300_000, three);
    }
    await new Promise((r) => setTimeout(r, 2_000));
    for (const [i, p] of pings.entries()) await assertNoLoss(tt, `${pairs[i]![0].name} → ${pairs[i]![1].name}`, p);
  });

  await t.test('a node that joins is meshed with every peer; the time from its IPsecNode\'s creation to its last pair up is reported', async (tt) => {
    await lane.startOperator(); // the new node's certificate, and from here on node collection
    const steady = steadyPing(a, b);
    await lane.startAgent(d);
    const nodes = await lane.waitAllUp(300_000);
    const created = Date.parse(nodes.find((x) => x.metadata.name === 'node-d')!.metadata.creationTimestamp ?? '');
    tt.diagnostic(`node-d: all 3 pairs up ${((Date.now() - created) / 1000).toFixed(1)} s after its IPsecNode was created (creation time has 1 s resolution)`);
    await assertNoLoss(tt, 'node-a → node-b while node-d joined', steady);
    await lane.assertNoLoss(await pingMatrix(c, { count: 2, intervalMs: 200, timeoutMs: 90_000 }));
  });

  await t.test('certificate renewal on every node (`kipsec renew`, same key): each IPsecNode publishes its new certificate and the node re-authenticates its IKE SAs make-before-break (RFC 7296 §2.8.3) with no lost ping and no XFRM error counter', async (tt) => {
    const four = [a, b, cc, d];
    const pairs = four.flatMap((x) => four.filter((y) => y !== x).map((y) => [x, y] as const));
    const pings = pairs.map(([x, y]) => steadyPing(x, y));
    const before = new Map((await lane.ipsecNodes()).map((n) => [n.metadata.name, n.spec.identity]));
    const spisBefore = new Set((await Promise.all(four.map((n) => kernelStates(n.ns)))).flat().map((x) => x.spi));
    const statBefore = await Promise.all(four.map((n) => xfrmStat(n.ns)));
    // One node after the other, as renewals at two thirds of each certificate's life come.
    for (const n of four) {
      const ikeOf = async (): Promise<Map<string, string | undefined>> => new Map(((await lane.ipsecNodes()).find((x) => x.metadata.name === n.name)?.status?.peers ?? []).map((p) => [p.node, p.ikeSpis]));
      const ikeBefore = await ikeOf();
      const logFrom = lane.agents.get(n.name)!.log().length;
      const r = await kipsec(lane, n, ['renew']);
      assert.equal(r.code, 0, `${n.name}: kipsec renew: ${r.stderr}${r.stdout}`);
      assert.match(r.stdout, /node certificate renewed: sha256 [0-9a-f]{64}, same key/);
      await until(`${n.name} re-authenticates its 3 IKE SAs`, async () => (/"started":3,.*"IKE SAs re-authenticated with the new certificate"/.test(lane.agents.get(n.name)!.log().slice(logFrom)) ? true : undefined),
        60_000, () => lane.agents.get(n.name)!.log().slice(logFrom).slice(-3000));
      await until(`${n.name}: a new IKE SA with every peer, and one SA pair each`, async () => {
        const now = await ikeOf();
        const states = await kernelStates(n.ns);
        return now.size === 3 && [...now].every(([peer, spis]) => spis !== undefined && spis !== ikeBefore.get(peer)) && states.length === 6 ? true : undefined;
      }, 60_000, async () => JSON.stringify({ ikeBefore: [...ikeBefore], now: [...await ikeOf()], states: (await kernelStates(n.ns)).length }));
    }
    const now = await lane.ipsecNodes();
    for (const x of now) {
      const was = before.get(x.metadata.name);
      assert.notEqual(x.spec.identity?.certFingerprint, was?.certFingerprint, `${x.metadata.name} publishes its new certificate`);
      assert.equal(x.spec.identity?.publicKeyFingerprint, was?.publicKeyFingerprint, `${x.metadata.name} kept its key`);
    }
    await lane.waitAllUp(60_000);
    await new Promise((r) => setTimeout(r, 2_000));
    for (const [i, p] of pings.entries()) await assertNoLoss(tt, `${pairs[i]![0].name} → ${pairs[i]![1].name}`, p);
    const spisAfter = (await Promise.all(four.map((n) => kernelStates(n.ns)))).flat().map((x) => x.spi);
    assert.deepEqual(spisAfter.filter((x) => spisBefore.has(x)), [], 'every Child SA was replaced by a re-authenticated one');
    const statAfter = await Promise.all(four.map((n) => xfrmStat(n.ns)));
    for (const [i, n] of four.entries()) assert.deepEqual(statAfter[i], statBefore[i], `${n.name}: /proc/net/xfrm_stat unchanged`);
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
        const about = await stateAbout(p, cc);
        assert.equal(about.states.length, 2, `${p.name}: one SA each way with node-c, the stale ones gone: ${JSON.stringify(about.states)}`);
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
