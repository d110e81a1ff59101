// IPsecTunnel in cluster mode on gateway nodes (DESIGN.md §3, issue 13), on this host's kernel
// (no ESP: the agents run the userspace data path) with the lane's real kube-apiserver — no VM.
// Two nodes labelled kipsec.io/gateway=true run cluster-mode agents as deploy/agent.yaml describes
// them (e2e/lib/mesh-lane.ts) and the operator runs as deploy/operator.yaml does; a "cloud" namespace
// on the same wire runs strongSwan's charon with kernel-libipsec as the remote VPN gateway, the
// VPC's address 10.99.0.10 behind it. What the product promises: one gateway takes the tunnel's
// Lease and brings the tunnel up, the other stands by, IPsecTunnel.status says which; traffic
// crosses the tunnel; with the active agent killed (SIGKILL, by pid) under a 10/s ping the standby
// takes the Lease when it expires and brings the tunnel up itself, the ping resumes with no action
// and the outage is printed; a tunnel with the wrong PSK shows AUTHENTICATION_FAILED in its status
// and as an Event within one retry. The ping target is 10.96.0.10, an address every gateway node
// holds (as kube-proxy in IPVS mode puts every ClusterIP on every node), so the same flow works
// through whichever gateway is active. A third node, node-c, is no gateway: its pod reaches the
// VPC host through the active gateway, the leg from node-c to the gateway encrypted by the mesh
// (the pair's Child SA carries the tunnel's remote subnets, src/agent/gateway/routing.ts), before
// and after the failover.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { RESOURCES, resourcePath } from '../../src/api/kube/client.js';
import type { IPsecTunnel } from '../../src/api/types.js';
import { nodeByName, type ClusterNode, type ClusterPod } from '../lib/cluster-net.js';
import { WireCapture, classifyPcapFile, formatReport } from '../lib/capture.js';
import { eventually, uniqueName } from '../lib/kube.js';
import { hostLaneSocket } from '../lib/lane-kube.js';
import { startMeshLane } from '../lib/mesh-lane.js';
import { StrongSwan } from '../lib/strongswan.js';
import { AUTO_DATAPATH, CLOUD_IKE, CLOUD_IP, SERVICE_IP, SERVICE_NET, VPC_HOST, VPC_NET, startCloud } from '../lib/cloud-gateway.js';
import { ContinuousPing, pingCounts } from '../lib/traffic.js';
import { KubeApiError } from '../../src/api/kube/errors.js';
import { deleteQuietly, serviceAccountUser } from './support.js';

const PSK = 'kipsec gateway tunnel e2e: correct horse battery staple';
const WRONG_PSK = 'kipsec gateway tunnel e2e: not the PSK the cloud holds';
const IKE = CLOUD_IKE;
const AUTO = AUTO_DATAPATH;
const CLOUD_IP2 = '192.0.2.101';
const OTHER_NET = '10.95.0.0/24';
const GATEWAY_ID = 'gw.cluster.test';

/** A second cloud gateway, 192.0.2.101, presenting its address as identity, initiating to `to`. */
function wrongIdConn(to: string): string {
  return `  wrongid {
    version = 2
    local_addrs = ${CLOUD_IP2}
    remote_addrs = ${to}
    proposals = ${IKE}
    local {
      auth = psk
      id = ${CLOUD_IP2}
    }
    remote {
      auth = psk
      id = ${GATEWAY_ID}
    }
    children {
      wrongid {
        local_ts = ${OTHER_NET}
        remote_ts = ${SERVICE_NET},10.244.0.0/16
        esp_proposals = aes256gcm16
        start_action = none
      }
    }
  }
`;
}

function swanConf(wrongIdTo?: string): string {
  return `connections {
  vpc {
    version = 2
    local_addrs = ${CLOUD_IP}
    remote_addrs = %any
    proposals = ${IKE}
    local {
      auth = psk
      id = ${CLOUD_IP}
    }
    remote {
      auth = psk
      id = ${GATEWAY_ID}
    }
    children {
      vpc {
        local_ts = ${VPC_NET}
        remote_ts = ${SERVICE_NET},10.244.0.0/16
        esp_proposals = aes256gcm16
        start_action = none
      }
    }
  }
${wrongIdTo ? wrongIdConn(wrongIdTo) : ''}}
secrets {
  ike-vpc {
    id-a = ${CLOUD_IP}
    id-b = ${GATEWAY_ID}
    secret = "${PSK}"
  }
  ike-wrongid {
    id-a = ${CLOUD_IP2}
    id-b = ${GATEWAY_ID}
    secret = "${PSK}"
  }
}
`;
}

test('IPsecTunnel on two gateway nodes: one active through the Lease, the other standby; a pod on a third node reaches the remote side through the active gateway over ESP; the active agent killed under a 10/s ping, the standby takes over on its own; a wrong PSK shows AUTHENTICATION_FAILED in status and as an Event', { timeout: 400_000 }, async (t) => {
  assert.equal(process.getuid?.(), 0, 'this test builds network namespaces: run it as root (the lanes do)');
  assert.ok(StrongSwan.available(), 'strongSwan (charon, swanctl, libipsec) is not installed: scripts/setup.sh installs it');
  await hostLaneSocket(t);
  const lane = await startMeshLane(t, { nodes: 3, overlay: 'none', mesh: { datapath: 'auto' }, label: 'gw', agentArgs: AUTO });
  const { kube, cluster: c, install } = lane;
  const ns = install.namespace;
  const [a, b] = [nodeByName(c, 'node-a'), nodeByName(c, 'node-b')];
  const nodeC = nodeByName(c, 'node-c');
  const podC = nodeC.pods[0]!;

  // The cloud: on the wire, its VPC address on its loopback; charon answers for the VPC.
  const { ns: cloud, swan } = await startCloud(t, c, { swanctl: swanConf() }, [CLOUD_IP, CLOUD_IP2]);
  // The service address on every gateway node.
  for (const n of [a, b]) await n.ns.run('ip', ['addr', 'add', `${SERVICE_IP}/32`, 'dev', 'lo']);

  // Both nodes are gateways; PSK Secrets readable by the agents by name only (deploy/rbac.yaml).
  for (const n of [a, b]) await kube.mergePatch(resourcePath(RESOURCES.nodes, { name: n.name }), { metadata: { labels: { 'kipsec.io/gateway': 'true' } } });
  const good = uniqueName('gw-vpc');
  const bad = uniqueName('gw-badpsk');
  const noProposal = uniqueName('gw-noprop');
  const wrongId = uniqueName('gw-wrongid');
  const secrets = { [good]: PSK, [bad]: WRONG_PSK };
  for (const [name, psk] of Object.entries(secrets)) {
    await kube.create(resourcePath(RESOURCES.secrets, { namespace: ns }), { apiVersion: 'v1', kind: 'Secret', metadata: { name }, data: { psk: Buffer.from(psk).toString('base64') } });
  }
  const roles = { group: 'rbac.authorization.k8s.io', version: 'v1', plural: 'roles' } as const;
  const bindings = { group: 'rbac.authorization.k8s.io', version: 'v1', plural: 'rolebindings' } as const;
  await kube.create(resourcePath(roles, { namespace: ns }), { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name: 'kipsec-agent-psk' }, rules: [{ apiGroups: [''], resources: ['secrets'], resourceNames: Object.keys(secrets), verbs: ['get'] }] });
  await kube.create(resourcePath(bindings, { namespace: ns }), { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: { name: 'kipsec-agent-psk' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'kipsec-agent-psk' }, subjects: [{ kind: 'ServiceAccount', name: 'kipsec-agent', namespace: ns }] });

  const tunnelPath = (name: string): string => resourcePath(RESOURCES.ipsecTunnels, { name });
  t.after(async () => {
    for (const name of [good, bad, noProposal, wrongId]) {
      await kube.mergePatch(tunnelPath(name), { metadata: { finalizers: [] } }).catch(() => undefined);
      await deleteQuietly(kube, tunnelPath(name));
    }
  });
  const apply = async (name: string, remoteSubnet: string, o: { secret?: string; ike?: string; remoteId?: string; remoteAddress?: string; startAction?: string } = {}): Promise<void> => {
    await kube.create(resourcePath(RESOURCES.ipsecTunnels), {
      apiVersion: 'kipsec.io/v1alpha1', kind: 'IPsecTunnel', metadata: { name },
      spec: {
        local: { id: GATEWAY_ID, subnets: [SERVICE_NET, '10.244.0.0/16'] },
        remote: { address: o.remoteAddress ?? CLOUD_IP, id: o.remoteId ?? CLOUD_IP, subnets: [remoteSubnet] },
        auth: { psk: { secretRef: { name: o.secret ?? name, namespace: ns } } },
        ike: { proposals: [o.ike ?? IKE] }, esp: { proposals: ['aes256gcm16'] },
        ...(o.startAction ? { startAction: o.startAction } : {}),
      },
    });
  };
  const tunnel = (name: string): Promise<IPsecTunnel> => kube.get<IPsecTunnel>(tunnelPath(name));
  // The operator's Events about cluster-scoped objects live in "default" (src/operator/events.ts).
  const events = async (name: string): Promise<{ reason: string; note: string; type: string }[]> =>
    (await kube.get<{ items: { reason: string; note: string; type: string; regarding: { kind: string; name: string } }[] }>(resourcePath(RESOURCES.events, { namespace: 'default' }))).items
      .filter((e) => e.regarding.kind === 'IPsecTunnel' && e.regarding.name === name);
  const explain = (name: string) => ({ what: `IPsecTunnel ${name}`, state: async () => `${JSON.stringify((await tunnel(name).catch(() => undefined))?.status, null, 1)}\n${lane.logs(2500)}\n--- charon ---\n${swan.log().slice(-2500)}` });

  await lane.startOperator();
  await lane.applyMesh({ datapath: 'auto' });
  for (const n of c.nodes) await lane.startAgent(n);
  await lane.waitAllUp(120_000);
  const t0 = Date.now();
  await apply(good, VPC_NET);

  const up = await eventually(async () => {
    const st = (await tunnel(good)).status;
    const gws = st?.gateways ?? [];
    const active = gws.filter((g) => g.role === 'active');
    return gws.length === 2 && active.length === 1 && active[0]!.childSaState === 'established' && st?.conditions?.some((x) => x.type === 'Ready' && x.status === 'True') ? st : undefined;
  }, 60_000, 250, explain(good));
  t.diagnostic(`tunnel established and reported ${((Date.now() - t0) / 1000).toFixed(1)} s after it was applied`);
  const first = up.gateways!.find((g) => g.role === 'active')!;
  const standby = up.gateways!.find((g) => g.role === 'standby')!;
  assert.notEqual(first.node, standby.node);
  assert.equal(standby.ikeSaState, 'none', 'the standby keeps the tunnel down');
  assert.equal(up.activeGateway, first.node, 'status.activeGateway (the Active column of kubectl get ipsectunnels)');
  assert.match(first.negotiatedSuite ?? '', /ESP:aes256gcm16/);
  assert.match(first.inboundSpi ?? '', /^[0-9a-f]{8}$/);
  const [activeNode, standbyNode] = first.node === a.name ? [a, b] : [b, a];

  await t.test('the active gateway reaches the VPC host through the tunnel; charon holds one IKE SA, with the active gateway', async () => {
    const ping = await activeNode.ns.run('ping', ['-n', '-c', '3', '-i', '0.2', '-W', '2', '-I', SERVICE_IP, VPC_HOST], { check: false, timeoutMs: 20_000 });
    assert.equal(pingCounts(ping.stdout).received, 3, `${ping.stdout}\n${await swan.listSas()}`);
    const sas = await swan.listSas();
    assert.match(sas, new RegExp(`remote '${GATEWAY_ID}' @ ${activeNode.ip.replace(/\./g, '\\.')}`), sas);
  });

  /**
   * node-c's pod pings the VPC host through `gw` while the wire is captured: every echo answered;
   * between node-c's pods and the VPC nothing in clear, ESP in UDP to and from node-c; the same
   * capture classified with node-c's own address in place of its pods sees the plain probe the
   * cloud sends it (so the capture and the classifier can see plaintext).
   */
  const podLeg = async (tt: TestContext, pod: ClusterPod, gw: ClusterNode): Promise<void> => {
    const cap = await WireCapture.start(tt, c.wire);
    const ping = await pod.ns.run('ping', ['-n', '-c', '5', '-i', '0.2', '-W', '2', '-I', pod.ip, VPC_HOST], { check: false, timeoutMs: 20_000 });
    await cloud.run('ping', ['-n', '-c', '2', '-i', '0.2', '-W', '1', '-I', VPC_HOST, nodeC.ip], { check: false, timeoutMs: 10_000 });
    const stats = await cap.stop();
    assert.equal(pingCounts(ping.stdout).received, 5, `${pod.name} → ${VPC_HOST} through ${gw.name}: ${ping.stdout}\n${lane.logs(2000)}`);
    assert.ok(stats.complete, JSON.stringify(stats));
    const legs = classifyPcapFile(stats.file, { podCidrs: [{ node: nodeC.name, cidr: nodeC.podCidr }, { node: 'vpc', cidr: VPC_NET }] });
    assert.equal(legs.plaintextBetweenPods, 0, `plaintext between ${nodeC.podCidr} and ${VPC_NET}: ${formatReport(legs)}`);
    assert.ok(legs.espInUdp >= 20, `ESP in UDP: node-c → ${gw.name} → cloud and back, 5 echoes: ${formatReport(legs)}`);
    const probe = classifyPcapFile(stats.file, { podCidrs: [{ node: nodeC.name, cidr: `${nodeC.ip}/32` }, { node: 'vpc', cidr: VPC_NET }] });
    assert.ok(probe.plaintextBetweenPods >= 2, `the plain probe from the cloud to node-c is seen: ${formatReport(probe)}`);
    tt.diagnostic(`${pod.name} → ${VPC_HOST} via ${gw.name}: ${formatReport(legs)}`);
  };

  await t.test('a pod on node-c (no gateway) reaches the VPC host through the active gateway: its remote subnet is routed there over the mesh, and the wire carries that leg as ESP in UDP only', async (tt) => {
    // node-c renegotiates its pair with the gateway once it has seen the Lease: wait for the first answer.
    await eventually(async () => {
      const r = await podC.ns.run('ping', ['-n', '-c', '1', '-W', '1', '-I', podC.ip, VPC_HOST], { check: false, timeoutMs: 5_000 });
      return pingCounts(r.stdout).received === 1 ? true : undefined;
    }, 30_000, 250, { what: `${podC.name} → ${VPC_HOST}`, state: async () => `${(await nodeC.ns.run('ip', ['route', 'show', 'table', '221'])).stdout}\n${lane.logs(2500)}` });
    await podLeg(tt, podC, activeNode);
  });

  await t.test('the active agent killed by pid under a 10/s ping from the VPC: the standby takes the Lease and the tunnel, the ping resumes without action, an ActiveGateway Event says so; the outage is printed', async () => {
    const ping = new ContinuousPing(cloud, VPC_HOST, SERVICE_IP, { intervalMs: 100 });
    const podPing = new ContinuousPing(podC.ns, podC.ip, VPC_HOST, { intervalMs: 100 });
    // mark() counts since the previous mark: sum the windows.
    let answered = 0;
    await eventually(async () => { answered += ping.mark().received; return answered > 5 ? true : undefined; }, 10_000, 200, { what: 'the ping through the tunnel', state: () => swan.listSas() });
    const agent = lane.agents.get(activeNode.name)!;
    const killedAt = Date.now();
    process.kill(agent.pid, 'SIGKILL');
    await agent.exited(10_000).catch(() => undefined);
    const taken = await eventually(async () => {
      const st = (await tunnel(good)).status;
      const g = st?.gateways?.find((x) => x.node === standbyNode.name);
      return g?.role === 'active' && g.childSaState === 'established' ? st : undefined;
    }, 45_000, 250, explain(good));
    const reportedS = (Date.now() - killedAt) / 1000;
    ping.mark();
    let after = 0;
    await eventually(async () => { after += ping.mark().received; return after >= 20 ? true : undefined; }, 30_000, 250, { what: 'the ping after the take-over', state: async () => `${await swan.listSas()}\n${lane.logs(2000)}` });
    podPing.mark();
    let podAfter = 0;
    await eventually(async () => { podAfter += podPing.mark().received; return podAfter >= 20 ? true : undefined; }, 30_000, 250, { what: `${podC.name}'s ping to the VPC after the take-over`, state: async () => `${(await nodeC.ns.run('ip', ['route', 'show', 'table', '221'])).stdout}\n${lane.logs(2500)}` });
    const pr = await podPing.stop();
    console.log(`failover seen from ${podC.name} (node-c, no gateway): outage ${(pr.longestGapMs / 1000).toFixed(1)} s (longest gap of a 10/s ping to the VPC host; ${pr.lost.length} of ${pr.sent} echoes lost)`);
    t.diagnostic(`failover outage from node-c's pod ${(pr.longestGapMs / 1000).toFixed(1)} s, ${pr.lost.length}/${pr.sent} lost`);
    assert.ok(pr.lost.length < pr.sent, 'the pod\'s ping resumed');
    const r = await ping.stop();
    const outageS = r.longestGapMs / 1000;
    console.log(`failover: outage ${outageS.toFixed(1)} s (longest gap of a 10/s ping from the VPC host; ${r.lost.length} of ${r.sent} echoes lost); the new active gateway reported established ${reportedS.toFixed(1)} s after the kill; Lease duration 4 s, retry 1 s`);
    t.diagnostic(`failover outage ${outageS.toFixed(1)} s, ${r.lost.length}/${r.sent} lost`);
    assert.ok(r.lost.length < r.sent, 'the ping resumed');
    const gw = taken.gateways!.find((x) => x.node === standbyNode.name)!;
    assert.match(gw.inboundSpi ?? '', /^[0-9a-f]{8}$/);
    assert.notEqual(gw.inboundSpi, first.inboundSpi, 'a new Child SA from the new gateway');
    const sas = await swan.listSas();
    assert.match(sas, new RegExp(`remote '${GATEWAY_ID}' @ ${standbyNode.ip.replace(/\./g, '\\.')}`), sas);
    // The dead gateway's last report still says active: the operator asks the Lease (status.ts resolveActive).
    const resolved = await eventually(async () => { const st = (await tunnel(good)).status; return st?.activeGateway === standbyNode.name ? st : undefined; }, 15_000, 250, explain(good));
    const dead = resolved.gateways?.find((g) => g.node === activeNode.name);
    assert.equal(dead?.role, 'standby', JSON.stringify(resolved.gateways));
    assert.match(dead?.lastError?.message ?? '', /is held by/);
    const ev = await eventually(async () => (await events(good)).find((e) => e.reason === 'ActiveGateway' && e.note === `${standbyNode.name} is the active gateway now (was ${activeNode.name})`), 15_000, 250, explain(good));
    t.diagnostic(`Event ActiveGateway: ${ev.note}`);
  });

  await t.test('after the failover node-c\'s pod reaches the VPC host through the new active gateway, the leg again ESP in UDP only', async (tt) => {
    await podLeg(tt, podC, standbyNode);
  });

  await t.test('the mesh no longer selects node-c: its pod still reaches the VPC host, by a plain route (table 220) to the active gateway, which forwards it into the tunnel; that leg is in clear (no mesh pair), the tunnel leg ESP', async (tt) => {
    await lane.applyMesh({ datapath: 'auto', nodeSelector: { 'kipsec.io/gateway': 'true' } });
    const via = `${VPC_NET} via ${standbyNode.ip}`;
    await eventually(async () => {
      const routes = (await nodeC.ns.run('ip', ['route', 'show', 'table', '220'])).stdout;
      const r = routes.includes(via) ? await podC.ns.run('ping', ['-n', '-c', '1', '-W', '1', '-I', podC.ip, VPC_HOST], { check: false, timeoutMs: 5_000 }) : undefined;
      return r && pingCounts(r.stdout).received === 1 ? true : undefined;
    }, 30_000, 250, { what: `${podC.name} → ${VPC_HOST} by the route ${via}`, state: async () => `table 220: ${(await nodeC.ns.run('ip', ['route', 'show', 'table', '220'])).stdout}\ntable 221: ${(await nodeC.ns.run('ip', ['route', 'show', 'table', '221'])).stdout}\n${lane.logs(2500)}` });
    const cap = await WireCapture.start(tt, c.wire);
    const ping = await podC.ns.run('ping', ['-n', '-c', '5', '-i', '0.2', '-W', '2', '-I', podC.ip, VPC_HOST], { check: false, timeoutMs: 20_000 });
    const stats = await cap.stop();
    assert.equal(pingCounts(ping.stdout).received, 5, `${podC.name} → ${VPC_HOST} through ${standbyNode.name}: ${ping.stdout}`);
    assert.ok(stats.complete, JSON.stringify(stats));
    const legs = classifyPcapFile(stats.file, { podCidrs: [{ node: nodeC.name, cidr: nodeC.podCidr }, { node: 'vpc', cidr: VPC_NET }] });
    // 5 echoes and 5 answers between node-c and the gateway in clear; the tunnel leg to the cloud ESP in UDP.
    assert.ok(legs.plaintextBetweenPods >= 10 && legs.espInUdp >= 10, formatReport(legs));
    tt.diagnostic(`${podC.name} → ${VPC_HOST} via ${standbyNode.name}, node-c outside the mesh: ${formatReport(legs)}`);
  });

  await t.test('admission (deploy/admission-policy.yaml): an agent may write only tunnel Leases, naming itself the holder; not the operator\'s Lease, not another node as holder', async () => {
    const asAgent = kube.as(serviceAccountUser(ns, 'kipsec-agent', standbyNode.name));
    const leasePath = resourcePath(RESOURCES.leases, { namespace: ns, name: `kipsec-tunnel-${good}` });
    const lease = await kube.get<{ metadata: { resourceVersion: string }; spec: Record<string, unknown> }>(leasePath);
    assert.equal(lease.spec['holderIdentity'], standbyNode.name, 'the new active gateway holds the Lease');
    const denied = async (p: Promise<unknown>, re: RegExp): Promise<void> => {
      const e = await p.then(() => undefined, (x: unknown) => x);
      assert.ok(e instanceof KubeApiError && (e.status === 403 || e.status === 422), `expected a denial, got ${String(e)}`);
      assert.match(e.message, re);
    };
    const put = (body: unknown): Promise<unknown> => asAgent.request('PUT', leasePath, { body, query: { dryRun: 'All' } });
    await denied(put({ ...lease, spec: { ...lease.spec, holderIdentity: activeNode.name } }), /may only hold a tunnel Lease itself/);
    await denied(asAgent.create(resourcePath(RESOURCES.leases, { namespace: ns }), { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: 'kipsec-operator-x' }, spec: { holderIdentity: standbyNode.name } }, { dryRun: 'All' }), /only create and update the Leases of IPsecTunnels/);
    await put(lease); // its own renewal passes
  });

  await t.test('a tunnel with the wrong PSK: AUTHENTICATION_FAILED with its message in IPsecTunnel.status, Degraded GatewayError and a Warning Event, within one retry; one with an IKE proposal the peer refuses: NO_PROPOSAL_CHOSEN with our proposals', async () => {
    const appliedAt = Date.now();
    await apply(bad, '10.98.0.0/24');
    // An IKE proposal charon does not accept (it offers only aes256gcm16-prfsha384-x25519): IKE_SA_INIT answered NO_PROPOSAL_CHOSEN.
    await apply(noProposal, '10.97.0.0/24', { secret: good, ike: 'aes128gcm16-prfsha256-ecp256' });
    const st = await eventually(async () => {
      const s = (await tunnel(bad)).status;
      const g = s?.gateways?.find((x) => x.role === 'active');
      return g?.lastError?.notify === 'AUTHENTICATION_FAILED' ? s : undefined;
    }, 30_000, 250, explain(bad));
    t.diagnostic(`wrong PSK reported ${((Date.now() - appliedAt) / 1000).toFixed(1)} s after the tunnel was applied`);
    const degraded = st.conditions?.find((x) => x.type === 'Degraded');
    assert.equal(degraded?.status, 'True');
    assert.equal(degraded?.reason, 'GatewayError');
    assert.match(degraded?.message ?? '', /AUTHENTICATION_FAILED/);
    assert.equal(st.conditions?.find((x) => x.type === 'Established')?.status, 'False');
    const ev = await eventually(async () => (await events(bad)).find((e) => e.reason === 'GatewayError'), 15_000, 250, explain(bad));
    assert.equal(ev.type, 'Warning');
    assert.match(ev.note, /AUTHENTICATION_FAILED/);
    t.diagnostic(`Event GatewayError: ${ev.note}`);
    const np = await eventually(async () => {
      const g = (await tunnel(noProposal)).status?.gateways?.find((x) => x.role === 'active');
      return g?.lastError?.notify === 'NO_PROPOSAL_CHOSEN' ? g.lastError : undefined;
    }, 30_000, 250, explain(noProposal));
    assert.deepEqual(np.localProposals, ['aes128gcm16-prfsha256-ecp256'], 'our proposal list in the error');
    t.diagnostic(`refused proposal: ${JSON.stringify(np)}`);
  });

  await t.test('a remote gateway presenting another identity than spec.remote.id: the exact cause (the identity it presented) in IPsecTunnel.status and as a Warning Event, at its first attempt', async (tt) => {
    // The remote side initiates (startAction respond here), so it is its IDi we check; as initiator
    // we send the remote id as IDr, and strongSwan then refuses with a bare AUTHENTICATION_FAILED.
    await apply(wrongId, OTHER_NET, { secret: good, remoteId: 'vpn.cloud.test', remoteAddress: CLOUD_IP2, startAction: 'respond' });
    const active = await eventually(async () => (await tunnel(wrongId)).status?.gateways?.find((x) => x.role === 'active')?.node, 30_000, 250, explain(wrongId));
    await swan.reconfigure(swanConf(nodeByName(c, active).ip));
    const initiatedAt = Date.now();
    await swan.initiate('wrongid', 10).catch(() => undefined);
    const st = await eventually(async () => {
      const s = (await tunnel(wrongId)).status;
      return s?.gateways?.find((x) => x.role === 'active')?.lastError ? s : undefined;
    }, 30_000, 250, explain(wrongId));
    const g = st.gateways!.find((x) => x.role === 'active')!;
    tt.diagnostic(`wrong remote identity reported ${((Date.now() - initiatedAt) / 1000).toFixed(1)} s after the peer's attempt: ${JSON.stringify(g.lastError)}`);
    assert.match(g.lastError?.message ?? '', /peer identity .*192\.0\.2\.101.* is not the configured remote id/, JSON.stringify(g.lastError));
    assert.equal(g.lastError?.notify, 'AUTHENTICATION_FAILED');
    assert.match(st.conditions?.find((x) => x.type === 'Degraded')?.message ?? '', /is not the configured remote id/);
    const ev = await eventually(async () => (await events(wrongId)).find((e) => e.reason === 'GatewayError'), 15_000, 250, explain(wrongId));
    assert.equal(ev.type, 'Warning');
    assert.match(ev.note, /192\.0\.2\.101.* is not the configured remote id/);
    tt.diagnostic(`Event GatewayError: ${ev.note}`);
  });
});
