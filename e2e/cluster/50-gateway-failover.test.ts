// Gateway failover with real kernel ESP on both sides (the cluster lane's VM: host apiserver, the
// operator and the agents as their pods run, XFRM in the kernel). Two nodes are gateways of one
// IPsecTunnel to charon in a "cloud" namespace, which uses the kernel's XFRM too; a third node is
// none. What the product promises (docs/gateway-tunnels.md):
// - one gateway holds the tunnel's Lease and runs it, the other stands by, IPsecTunnel.status says
//   which; with the active agent SIGKILLed (by pid) under a 10/s ping from the VPC host and one
//   from node-c's pod, the standby takes the Lease and brings the tunnel up on its own, both pings
//   resume with no action, the outage and the lost echoes are printed (never judged beyond a
//   generous bound), the status shows the roles swapped and an ActiveGateway Event says so; the
//   same with the active node gone (its wire port down as well): with kernel ESP a dead agent's SAs
//   keep carrying traffic until charon replaces them, a dead node's do not, so the two outages
//   differ; the killed agent started again (the node back) stands by, and once its mesh pairs are
//   up again node-c's pod still reaches the VPC host through the active gateway (node-c's pair with
//   the old gateway ending must not take the VPC's XFRM policies from its pair with the new one);
//   after each takeover a pod on the new gateway reaches the VPC host (its own tunnel's policies,
//   not its mesh pair's with the old gateway, must carry it), and once the old gateway is back as
//   standby a pod on it does too (over its pair with the new one); the times are printed;
// - spec.remote.standbyAddresses (a cloud HA pair): with spec.remote.address unreachable, the
//   active gateway moves to the standby address after REMOTE_FAILOVER_MS without an IKE SA, the
//   tunnel comes up there and status.gateways[].remoteAddress says which address is in use; the
//   same tunnel without standbyAddresses, applied at the same time, is still down then (the move
//   is what brought the first one up).
// The ping target 10.96.0.10 is on both gateways' loopback (as kube-proxy in IPVS mode puts every
// ClusterIP on every node), so the VPC host's flow works through whichever gateway is active.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { RESOURCES, resourcePath } from '../../src/api/kube/client.js';
import { REMOTE_FAILOVER_MS } from '../../src/agent/gateway/compile.js';
import { CLOUD_IKE, CLOUD_IP, SERVICE_IP, SERVICE_NET, VPC_HOST, VPC_NET, startCloud } from '../lib/cloud-gateway.js';
import { nodeByName, type ClusterNode, type ClusterPod } from '../lib/cluster-net.js';
import { activeEstablished, deleteTunnelsAfter, getTunnel, pskSecrets, tunnelEvents, tunnelPath } from '../lib/gateway-tunnel.js';
import { eventually, uniqueName } from '../lib/kube.js';
import { startMeshLane } from '../lib/mesh-lane.js';
import { StrongSwan } from '../lib/strongswan.js';
import { ContinuousPing, pingCounts } from '../lib/traffic.js';

const PSK = 'kipsec gateway failover e2e: correct horse battery staple';
const GATEWAY_ID = 'gw.cluster.test';
/** The cloud HA pair's second address (charon answers there); the first is one nothing answers at. */
const HA_IP = '192.0.2.101';
const DEAD_IP = '192.0.2.103';
const HA_NET = '10.98.0.0/24';
const HA_HOST = '10.98.0.10';
const SINGLE_NET = '10.97.0.0/24';
const LOCAL_SUBNETS = [SERVICE_NET, '10.244.0.0/16'];

/** Charon answers the gateways' shared identity at CLOUD_IP for the VPC, at HA_IP for the HA pair's net. */
function swanctl(): string {
  const conn = (name: string, at: string, net: string): string => `  ${name} {
    version = 2
    local_addrs = ${at}
    remote_addrs = %any
    proposals = ${CLOUD_IKE}
    local {
      auth = psk
      id = ${at}
    }
    remote {
      auth = psk
      id = ${GATEWAY_ID}
    }
    children {
      ${name} {
        local_ts = ${net}
        remote_ts = ${LOCAL_SUBNETS.join(',')}
        esp_proposals = aes256gcm16
        start_action = none
      }
    }
  }
`;
  const secret = (name: string, at: string): string => `  ike-${name} {\n    id-a = ${at}\n    id-b = ${GATEWAY_ID}\n    secret = "${PSK}"\n  }\n`;
  return `connections {\n${conn('vpc', CLOUD_IP, VPC_NET)}${conn('ha', HA_IP, HA_NET)}}\nsecrets {\n${secret('vpc', CLOUD_IP)}${secret('ha', HA_IP)}}\n`;
}

test('gateway failover on kernel ESP: two gateway nodes, one active through the Lease; the active agent SIGKILLed under traffic, the standby takes the Lease and the tunnel, traffic resumes on its own, the outage is printed; spec.remote.standbyAddresses moves to the reachable address of an HA pair', { timeout: 600_000 }, async (t) => {
  assert.ok(StrongSwan.available(), 'strongSwan (charon, swanctl) is not installed: scripts/setup.sh installs it');
  const lane = await startMeshLane(t, { nodes: 3, overlay: 'none', mesh: {}, label: 'gwfail' });
  const { kube, cluster: c, install } = lane;
  const ns = install.namespace;
  const [a, b, nodeC] = [nodeByName(c, 'node-a'), nodeByName(c, 'node-b'), nodeByName(c, 'node-c')];
  const podC = nodeC.pods[0]!;

  // The cloud, with the kernel's XFRM: both HA addresses on the wire (DEAD_IP on none), the VPCs on its loopback.
  const { ns: cloud, swan } = await startCloud(t, c, { swanctl: swanctl(), mode: 'kernel' }, [CLOUD_IP, HA_IP]);
  await cloud.run('ip', ['addr', 'add', `${HA_HOST}/24`, 'dev', 'lo']);
  for (const n of [a, b]) {
    await n.ns.run('ip', ['addr', 'add', `${SERVICE_IP}/32`, 'dev', 'lo']);
    await kube.mergePatch(resourcePath(RESOURCES.nodes, { name: n.name }), { metadata: { labels: { 'kipsec.io/gateway': 'true' } } });
  }
  const [vpc, ha, single] = [uniqueName('gw-vpc'), uniqueName('gw-ha'), uniqueName('gw-single')];
  await pskSecrets(kube, ns, { [vpc]: PSK });
  deleteTunnelsAfter(t, kube, [vpc, ha, single]);
  const apply = (name: string, remote: Record<string, unknown>): Promise<unknown> => kube.create(resourcePath(RESOURCES.ipsecTunnels), {
    apiVersion: 'kipsec.io/v1alpha1', kind: 'IPsecTunnel', metadata: { name },
    spec: { local: { id: GATEWAY_ID, subnets: LOCAL_SUBNETS }, remote, auth: { psk: { secretRef: { name: vpc, namespace: ns } } }, ike: { proposals: [CLOUD_IKE] }, esp: { proposals: ['aes256gcm16'] } },
  });
  const explain = (name: string) => ({ what: `IPsecTunnel ${name}`, state: async () => `${JSON.stringify((await getTunnel(kube, name).catch(() => undefined))?.status, null, 1)}\n${lane.logs(2500)}\n--- charon ---\n${swan.log().slice(-2500)}` });

  await lane.startOperator();
  await lane.applyMesh({});
  for (const n of c.nodes) await lane.startAgent(n);
  await lane.waitAllUp(240_000);
  const t0 = Date.now();
  await apply(vpc, { address: CLOUD_IP, id: CLOUD_IP, subnets: [VPC_NET] });
  const up = await eventually(async () => {
    const st = (await getTunnel(kube, vpc)).status;
    return st?.gateways?.length === 2 && activeEstablished(st.gateways) && st.conditions?.some((x) => x.type === 'Ready' && x.status === 'True') ? st : undefined;
  }, 90_000, 250, explain(vpc));
  t.diagnostic(`tunnel Ready and Established ${((Date.now() - t0) / 1000).toFixed(1)} s after it was applied`);
  const first = activeEstablished(up.gateways)!;
  const standby = up.gateways!.find((g) => g.role === 'standby');
  const [activeNode, standbyNode] = first.node === a.name ? [a, b] : [b, a];
  assert.equal(standby?.node, standbyNode.name, JSON.stringify(up.gateways));
  assert.equal(standby.ikeSaState, 'none', 'the standby keeps the tunnel down');
  assert.equal(up.activeGateway, activeNode.name);
  assert.equal(first.remoteAddress, CLOUD_IP, 'status says which remote address is in use');

  /**
   * The active gateway `from` dies under a 10/s ping from the VPC host and from node-c's pod: its
   * agent SIGKILLed by pid, with `unplug` its wire port down too (the node gone: with kernel ESP a
   * dead agent's SAs keep carrying traffic until the remote side replaces them, a dead node's do
   * not). `to` must take the Lease and the tunnel, both pings resume on their own, the status shows
   * the roles swapped and an ActiveGateway Event says so; the outage and losses are printed.
   */
  const takeover = async (tt: TestContext, from: ClusterNode, to: ClusterNode, o: { readonly unplug: boolean }): Promise<void> => {
    const before = activeEstablished((await getTunnel(kube, vpc)).status?.gateways);
    assert.equal(before?.node, from.name, 'the active gateway to kill');
    // node-c reaches the VPC through the active gateway once its pair with it carries the VPC (first answer).
    await eventually(async () => {
      const r = await podC.ns.run('ping', ['-n', '-c', '1', '-W', '1', '-I', podC.ip, VPC_HOST], { check: false, timeoutMs: 5_000 });
      return pingCounts(r.stdout).received === 1 ? true : undefined;
    }, 60_000, 250, { what: `${podC.name} → ${VPC_HOST} through ${from.name}`, state: nodeCState });
    const fromVpc = new ContinuousPing(cloud, VPC_HOST, SERVICE_IP, { intervalMs: 100 });
    const fromPod = new ContinuousPing(podC.ns, podC.ip, VPC_HOST, { intervalMs: 100 });
    try {
      /** Waits until `p` has `n` answers from now on (mark() counts since the previous mark). */
      const answers = async (p: ContinuousPing, n: number, what: string, timeoutMs: number): Promise<void> => {
        p.mark();
        let got = 0;
        await eventually(async () => { got += p.mark().received; return got >= n ? true : undefined; }, timeoutMs, 200, { what, state: async () => `${await swan.listSas()}\n${lane.logs(2500)}` });
      };
      await answers(fromVpc, 5, 'the ping from the VPC host through the tunnel', 10_000);
      await answers(fromPod, 5, `${podC.name}'s ping to the VPC host`, 10_000);
      const agent = lane.agents.get(from.name)!;
      const killedAt = Date.now();
      if (o.unplug) await c.wire.run('ip', ['link', 'set', from.wirePort, 'down']);
      process.kill(agent.pid, 'SIGKILL');
      await agent.exited(10_000).catch(() => undefined);
      const taken = await eventually(async () => {
        const g = (await getTunnel(kube, vpc)).status?.gateways?.find((x) => x.node === to.name);
        return g?.role === 'active' && g.childSaState === 'established' ? g : undefined;
      }, 60_000, 250, explain(vpc));
      const reportedS = (Date.now() - killedAt) / 1000;
      // The new gateway's own pods: their VPC traffic must leave through its tunnel now, not over its
      // mesh pair with the old gateway (whose policies for the VPC were there first).
      const ownS = await reachesVpc(to.pods[0]!, to, killedAt, 60_000);
      // Resumed: 20 answers, within a generous bound (the measured figures are printed below).
      await answers(fromVpc, 20, 'the ping from the VPC host after the take-over', 60_000);
      await answers(fromPod, 20, `${podC.name}'s ping after the take-over`, 60_000);
      const [rv, rp] = [await fromVpc.stop(), await fromPod.stop()];
      const line = `failover on kernel ESP, ${from.name} ${o.unplug ? 'unplugged and its agent' : 'agent'} SIGKILLed: outage ${(rv.longestGapMs / 1000).toFixed(1)} s from the VPC host (${rv.lost.length} of ${rv.sent} echoes lost), ${(rp.longestGapMs / 1000).toFixed(1)} s from ${podC.name} (${rp.lost.length} of ${rp.sent} lost); ${to.name} reported established ${reportedS.toFixed(1)} s after the kill; ${to.pods[0]!.name} → ${VPC_HOST} 3/3 ${ownS.toFixed(1)} s after the kill (${(ownS - reportedS).toFixed(1)} s after established)`;
      console.log(line);
      tt.diagnostic(line);
      assert.ok(rv.lost.length < rv.sent && rp.lost.length < rp.sent, line);
      assert.notEqual(taken.inboundSpi, before.inboundSpi, 'a new Child SA from the new gateway');
      assert.equal(taken.remoteAddress, CLOUD_IP);
      const sas = await swan.listSas();
      assert.match(sas, new RegExp(`remote '${GATEWAY_ID}' @ ${to.ip.replace(/\./g, '\\.')}`), `charon's IKE SA is with the new gateway:\n${sas}`);
      // The dead gateway's last report still says active: the operator reads the Lease and shows it standby.
      const resolved = await eventually(async () => { const st = (await getTunnel(kube, vpc)).status; return st?.activeGateway === to.name ? st : undefined; }, 15_000, 250, explain(vpc));
      const dead = resolved.gateways?.find((g) => g.node === from.name);
      assert.equal(dead?.role, 'standby', JSON.stringify(resolved.gateways));
      assert.match(dead?.lastError?.message ?? '', /is held by/);
      const ev = await eventually(async () => (await tunnelEvents(kube, vpc)).find((e) => e.reason === 'ActiveGateway' && e.note === `${to.name} is the active gateway now (was ${from.name})`), 15_000, 250, explain(vpc));
      tt.diagnostic(`Event ActiveGateway: ${ev.note}`);
    } finally {
      await fromVpc.stop();
      await fromPod.stop();
    }
  };

  /** A node's view of the VPC: its table 220, its XFRM policies for the VPC subnet (which pair's reqid), the logs. */
  async function vpcState(n: ClusterNode): Promise<string> {
    const routes = (await n.ns.run('ip', ['route', 'show', 'table', '220'], { check: false })).stdout;
    // One policy per block: its first line (the selector) starts at the margin, the rest is indented.
    const policies = (await n.ns.run('ip', ['xfrm', 'policy', 'list'], { check: false })).stdout.split(/\n(?=\S)/).filter((x) => x.includes(VPC_NET)).join('\n');
    return `table 220 on ${n.name}:\n${routes}\nXFRM policies with ${VPC_NET} on ${n.name}:\n${policies}\n${lane.logs(2500)}`;
  }
  function nodeCState(): Promise<string> { return vpcState(nodeC); }

  /**
   * `pod` (on node `on`) gets 3 of 3 echoes from the VPC host in one run, tried until it does
   * within `timeoutMs`; returns the seconds from `since` to that run's end (printed by the caller).
   */
  async function reachesVpc(pod: ClusterPod, on: ClusterNode, since: number, timeoutMs: number): Promise<number> {
    let last = '';
    await eventually(async () => {
      const r = await pod.ns.run('ping', ['-n', '-c', '3', '-i', '0.2', '-W', '1', '-I', pod.ip, VPC_HOST], { check: false, timeoutMs: 10_000 });
      last = r.stdout;
      return pingCounts(r.stdout).received === 3 ? true : undefined;
    }, timeoutMs, 250, { what: `${pod.name} → ${VPC_HOST} 3 of 3`, state: async () => `${last}\n${await vpcState(on)}` });
    return (Date.now() - since) / 1000;
  }

  /** The node back on the wire with its agent running (both as they were before a takeover), whatever the takeover's outcome. */
  const nodeBack = async (n: ClusterNode): Promise<void> => {
    await c.wire.run('ip', ['link', 'set', n.wirePort, 'up']);
    if (!lane.agents.get(n.name)?.running()) await lane.startAgent(n);
  };

  /**
   * `n`'s agent started again (its node back on the wire): it stands by, no error, and `active`
   * keeps the tunnel; once every mesh pair is up again (node-c's pair with `n` ended and made anew),
   * node-c's pod reaches the VPC host through `active`.
   */
  const backAsStandby = async (tt: TestContext, n: ClusterNode, active: ClusterNode): Promise<void> => {
    const backAt = Date.now();
    await nodeBack(n);
    const st = await eventually(async () => {
      const s = (await getTunnel(kube, vpc)).status;
      const back = s?.gateways?.find((g) => g.node === n.name);
      return back?.role === 'standby' && back.lastError === undefined && activeEstablished(s?.gateways)?.node === active.name ? s : undefined;
    }, 60_000, 500, explain(vpc));
    assert.equal(st.activeGateway, active.name);
    const standbyS = (Date.now() - backAt) / 1000;
    // The old gateway's own pods: over its mesh pair with the active gateway now, not its old tunnel.
    const ownS = await reachesVpc(n.pods[0]!, n, backAt, 90_000);
    const line = `${n.name} back (agent started): standby reported ${standbyS.toFixed(1)} s after; ${n.pods[0]!.name} → ${VPC_HOST} through ${active.name} 3/3 ${ownS.toFixed(1)} s after`;
    console.log(line);
    tt.diagnostic(line);
    await lane.waitAllUp(90_000);
    const r = await podC.ns.run('ping', ['-n', '-c', '3', '-i', '0.2', '-W', '2', '-I', podC.ip, VPC_HOST], { check: false, timeoutMs: 20_000 });
    assert.equal(pingCounts(r.stdout).received, 3, `${podC.name} → ${VPC_HOST} through ${active.name} with every pair up again: ${r.stdout}\n${await nodeCState()}`);
  };

  await t.test('the active agent SIGKILLed by pid under a 10/s ping from the VPC host and from node-c\'s pod: the standby takes the Lease and the tunnel, both pings resume without action, the status shows the roles swapped and an ActiveGateway Event says so; the outage is printed', async (tt) => {
    await takeover(tt, activeNode, standbyNode, { unplug: false });
  });

  await t.test('the killed gateway\'s agent started again: it stands by (its own report says standby, no error) and the tunnel stays with the new gateway; its own pod reaches the VPC host through the new gateway; with every mesh pair up again node-c\'s pod reaches it too', async (tt) => {
    await backAsStandby(tt, activeNode, standbyNode);
    const r = await cloud.run('ping', ['-n', '-c', '3', '-i', '0.2', '-W', '2', '-I', VPC_HOST, SERVICE_IP], { check: false, timeoutMs: 20_000 });
    assert.equal(pingCounts(r.stdout).received, 3, r.stdout);
  });

  await t.test('the active gateway node gone (its wire port down, its agent SIGKILLed) under the same pings: the other gateway takes over, both pings resume without action; the outage is printed; the node back, it stands by and node-c\'s pod reaches the VPC host once every pair is up again', async (tt) => {
    // The node comes back whatever happened (later cases need both gateways), but a failed take-over
    // is the error reported: waiting for the roles it did not reach would only hide it.
    try {
      await takeover(tt, standbyNode, activeNode, { unplug: true });
    } catch (e) {
      await nodeBack(standbyNode).catch((back: unknown) => { tt.diagnostic(`bringing ${standbyNode.name} back after the failure failed too: ${String(back)}`); });
      throw e;
    }
    await backAsStandby(tt, standbyNode, activeNode);
  });

  await t.test('spec.remote.standbyAddresses: remote.address unreachable, the active gateway moves to the standby address after REMOTE_FAILOVER_MS without an IKE SA; Established there, status.gateways[].remoteAddress says so, traffic crosses; the same tunnel without standbyAddresses is still down', async (tt) => {
    const applied = Date.now();
    await apply(ha, { address: DEAD_IP, standbyAddresses: [HA_IP], subnets: [HA_NET] });
    await apply(single, { address: DEAD_IP, subnets: [SINGLE_NET] });
    // The remote addresses the active gateway's reports named, in order.
    const seen: string[] = [];
    const st = await eventually(async () => {
      const s = (await getTunnel(kube, ha)).status;
      const at = s?.gateways?.find((x) => x.role === 'active')?.remoteAddress;
      if (at !== undefined && seen.at(-1) !== at) seen.push(at);
      return activeEstablished(s?.gateways) && s?.conditions?.some((x) => x.type === 'Established' && x.status === 'True') ? s : undefined;
    }, 90_000, 250, explain(ha));
    const upS = (Date.now() - applied) / 1000;
    const g = activeEstablished(st.gateways)!;
    const line = `standbyAddresses: Established on ${g.remoteAddress} via ${g.node} ${upS.toFixed(1)} s after the tunnel was applied (REMOTE_FAILOVER_MS ${REMOTE_FAILOVER_MS} ms at ${DEAD_IP} first)`;
    console.log(line);
    tt.diagnostic(line);
    assert.equal(g.remoteAddress, HA_IP, JSON.stringify(g));
    assert.deepEqual(seen, [DEAD_IP, HA_IP], `the status named ${DEAD_IP} first, then ${HA_IP}`);
    const sas = await swan.listSas();
    assert.match(sas, /^ha: #\d+, ESTABLISHED/m, sas);
    const gwNode = nodeByName(c, g.node);
    const r = await gwNode.ns.run('ping', ['-n', '-c', '3', '-i', '0.2', '-W', '2', '-I', SERVICE_IP, HA_HOST], { check: false, timeoutMs: 20_000 });
    assert.equal(pingCounts(r.stdout).received, 3, `${g.node} → ${HA_HOST} through the standby address: ${r.stdout}`);
    // The control: no standby address, so nothing to move to; as long down as the other took to come up.
    const s1 = (await getTunnel(kube, single)).status;
    const g1 = s1?.gateways?.find((x) => x.role === 'active');
    tt.diagnostic(`without standbyAddresses after ${((Date.now() - applied) / 1000).toFixed(1)} s: ${JSON.stringify({ remoteAddress: g1?.remoteAddress, ikeSaState: g1?.ikeSaState, childSaState: g1?.childSaState, established: s1?.conditions?.find((x) => x.type === 'Established')?.status })}`);
    assert.equal(g1?.remoteAddress, DEAD_IP, JSON.stringify(s1?.gateways));
    assert.notEqual(g1.childSaState, 'established');
    assert.equal(s1?.conditions?.find((x) => x.type === 'Established')?.status, 'False');
    await kube.delete(tunnelPath(single));
  });
});
