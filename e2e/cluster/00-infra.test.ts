// The cluster lane's plumbing, before any agent runs in it: the host's apiserver reached from the
// VM (root namespace and node namespaces), real pod-bound service-account tokens and the real
// admission policy, the operator run from deploy/operator.yaml as its pod would run, and the
// agent's pod as deploy/ and the Helm chart describe it. If one of these fails, every other test
// in e2e/cluster/ would fail for a reason that has nothing to do with kipsec.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { KubeClient, RESOURCES, resourcePath } from '../../src/api/kube/client.js';
import { KubeApiError } from '../../src/api/kube/errors.js';
import { LEADER_LEASE, TRUST_BUNDLE_CONFIGMAP, TRUST_BUNDLE_KEY } from '../../src/api/names.js';
import { repoPath } from '../../test/lib/paths.js';
import { eventually, uniqueName } from '../lib/kube.js';
import { Netns } from '../lib/netns.js';
import {
  agentCredentials, apiserverBridge, createNode, inClusterDir, installKipsec, laneBin, laneKube, laneKubeConfig,
  operatorCredentials, tokenClient,
} from '../lib/lane-kube.js';
import { containerEnv, expandVars, manifestArgs, podFromManifestText, podPlan, runPod } from '../lib/pod-runner.js';

function run(cmd: string, args: readonly string[], input?: string, timeoutMs = 120_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const c = execFile(cmd, args, { timeout: timeoutMs, killSignal: 'SIGKILL', encoding: 'utf8', maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
    if (input !== undefined) c.stdin?.end(input);
  });
}

const ipsecNode = (name: string, ip: string): unknown => ({ apiVersion: 'kipsec.io/v1alpha1', kind: 'IPsecNode', metadata: { name }, spec: { endpoint: { address: ip } } });
const refused = (e: unknown, re: RegExp): boolean => e instanceof KubeApiError && (e.status === 403 || e.status === 422) && re.test(e.message);

test('the host apiserver answers at https://127.0.0.1:6443 in the guest and in a fresh network namespace (bridge over a unix socket), with concurrent connections; the guest reaches nothing else', async (t) => {
  const kube = laneKube();
  // Eight requests at once on eight connections: QEMU's guestfwd spawns one host socat per connection.
  const many = await Promise.all(Array.from({ length: 8 }, () => new KubeClient(laneKubeConfig())).map(async (k) => {
    try { return await k.get<{ kind: string }>('/api/v1/namespaces'); } finally { k.close(); }
  }));
  assert.deepEqual(many.map((r) => r.kind), Array(8).fill('NamespaceList'));
  assert.equal((await kube.get<{ kind: string }>('/api/v1/namespaces/default')).kind, 'Namespace');

  // A node namespace has its own loopback: the bridge gives it the same address and certificate.
  const ns = await Netns.create(t, 'apibr');
  await apiserverBridge(ns.name, t);
  const kc = laneKubeConfig();
  const user = kc.getCurrentUser(); const cluster = kc.getCurrentCluster();
  assert.ok(user?.certFile && user.keyFile && cluster?.caFile, 'the lane kubeconfig names certificate files');
  const r = await ns.run('curl', ['-sS', '--max-time', '60', '--cacert', cluster.caFile, '--cert', user.certFile, '--key', user.keyFile, 'https://127.0.0.1:6443/api/v1/namespaces/default'], { timeoutMs: 90_000 });
  assert.match(r.stdout, /"kind": "Namespace"/);

  // restrict=on: the host behind QEMU's gateway address is not reachable, not even the apiserver's own port.
  const hostPort = process.env['KIPSEC_LANE_APISERVER_HOST_PORT'];
  assert.ok(hostPort, 'the lane runner passes the host port');
  const direct = await run('socat', ['-u', 'OPEN:/dev/null', `TCP:10.0.2.2:${hostPort},connect-timeout=5`], undefined, 20_000);
  assert.notEqual(direct.code, 0, `the guest connected to the host at 10.0.2.2:${hostPort}: QEMU's NIC is not restricted`);
});

test('a pod-bound kipsec-agent token (TokenRequest bound to a Pod on node A) names node A, may create and patch IPsecNode A, and the real admission policy refuses IPsecNode B', async (t) => {
  const install = await installKipsec(t, uniqueName('kipsec-infra'));
  const a = uniqueName('node-a'); const b = uniqueName('node-b');
  await createNode(t, a, { internalIP: '192.0.2.11', podCIDRs: ['10.244.1.0/24'] });
  await createNode(t, b, { internalIP: '192.0.2.12', podCIDRs: ['10.244.2.0/24'] });
  const node = await laneKube().get<{ spec: { podCIDR?: string; podCIDRs?: string[] }; status: { addresses: { type: string; address: string }[] } }>(resourcePath(RESOURCES.nodes, { name: a }));
  assert.deepEqual([node.spec.podCIDR, node.spec.podCIDRs], ['10.244.1.0/24', ['10.244.1.0/24']]);
  assert.deepEqual(node.status.addresses.find((x) => x.type === 'InternalIP')?.address, '192.0.2.11');

  const agent = tokenClient(await agentCredentials(t, install, a), t);
  const review = await agent.create<{ status: { userInfo: { username: string; extra?: Record<string, string[]> } } }>('/apis/authentication.k8s.io/v1/selfsubjectreviews', { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' });
  assert.equal(review.status.userInfo.username, `system:serviceaccount:${install.namespace}:kipsec-agent`);
  assert.deepEqual(review.status.userInfo.extra?.['authentication.kubernetes.io/node-name'], [a], 'the apiserver puts the pod\'s node into the token user');

  await agent.create(resourcePath(RESOURCES.ipsecNodes), ipsecNode(a, '192.0.2.11'));
  await agent.mergePatch(resourcePath(RESOURCES.ipsecNodes, { name: a }), { spec: { podCIDRs: ['10.244.1.0/24'] } });
  await agent.mergePatch(resourcePath(RESOURCES.ipsecNodes, { name: a, sub: 'status' }), { status: { datapath: 'kernel' } });
  await assert.rejects(agent.create(resourcePath(RESOURCES.ipsecNodes), ipsecNode(b, '192.0.2.12')), (e: unknown) => refused(e, new RegExp(`own node \\(${a}\\), not ${b}`)));

  // The operator's token: its own service account, no node; it reads IPsecNodes and may not write them.
  const operator = tokenClient(await operatorCredentials(t, install), t);
  const opReview = await operator.create<{ status: { userInfo: { username: string; extra?: Record<string, string[]> } } }>('/apis/authentication.k8s.io/v1/selfsubjectreviews', { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' });
  assert.equal(opReview.status.userInfo.username, `system:serviceaccount:${install.namespace}:kipsec-operator`);
  assert.equal(opReview.status.userInfo.extra?.['authentication.kubernetes.io/node-name'], undefined);
  assert.ok((await operator.get<{ items: unknown[] }>(resourcePath(RESOURCES.ipsecNodes))).items.length >= 1);
  await assert.rejects(operator.create(resourcePath(RESOURCES.ipsecNodes), ipsecNode(b, '192.0.2.12')), (e: unknown) => refused(e, /cannot create/));
});

test('pod-runner gives each process its manifest\'s sandbox: agent as root with only NET_ADMIN+NET_BIND_SERVICE and no_new_privs, operator as 65532 with no capabilities and a read-only root, both with the token and in-cluster env', async (t) => {
  const install = await installKipsec(t, uniqueName('kipsec-sbx'));
  const node = uniqueName('node-s');
  await createNode(t, node, { internalIP: '192.0.2.21', podCIDRs: ['10.244.3.0/24'] });
  const host = await Netns.create(t, 'sbx');
  // The shell prints what the process sees; the manifest's args follow as "$@".
  const probe = ['sh', '-c', [
    'id -u; id -g; grep -E "^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs):" /proc/self/status',
    'cat /var/run/secrets/kubernetes.io/serviceaccount/namespace; echo',
    'head -c 3 /var/run/secrets/kubernetes.io/serviceaccount/token; echo',
    'echo "svc=$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT node=${NODE_NAME:-} pod=${POD_NAME:-} podns=${POD_NAMESPACE:-} opts=${NODE_OPTIONS:-} home=$HOME"',
    'if touch /kipsec-lane-rw-probe 2>/dev/null; then echo root=rw; rm -f /kipsec-lane-rw-probe; else echo root=ro; fi',
    'if [ -d /var/lib/kipsec ]; then echo state > /var/lib/kipsec/written-by-pod && echo hostpath=ok; fi',
    'echo "args=$*"',
  ].join('; '), 'sh'];

  const agentDir = inClusterDir(await agentCredentials(t, install, node));
  const agent = await runPod(t, { manifest: 'deploy/agent.yaml', container: 'agent', dir: agentDir, netns: host.name, command: probe });
  assert.deepEqual(await agent.exited(60_000), { code: 0, signal: null }, agent.log());
  const al = agent.log();
  assert.match(al, /^0\n0\n/, 'the agent runs as root (runAsUser: 0)');
  assert.match(al, /CapEff:\s+0000000000001400/, 'effective = NET_ADMIN + NET_BIND_SERVICE');
  assert.match(al, /CapBnd:\s+0000000000001400/);
  assert.match(al, /CapInh:\s+0{16}/); assert.match(al, /CapAmb:\s+0{16}/);
  assert.match(al, /NoNewPrivs:\s+1/, 'allowPrivilegeEscalation: false');
  assert.match(al, new RegExp(`^${install.namespace}$`, 'm'));
  assert.match(al, /^eyJ$/m, 'the token is a JWT');
  assert.match(al, new RegExp(`svc=127.0.0.1:6443 node=${node} pod= podns=${install.namespace} opts=--max-semi-space-size=1 home=/root`));
  assert.match(al, /root=rw/);
  assert.match(al, /hostpath=ok/);
  assert.equal(readFileSync(join(agentDir.varLibKipsec!, 'written-by-pod'), 'utf8'), 'state\n', '/var/lib/kipsec is the node\'s folder');
  assert.match(al, new RegExp(`args=agent --node-name ${node} --state-dir /var/lib/kipsec --control-socket /run/kipsec/agent.sock --metrics-port 9964`));

  const opDir = inClusterDir(await operatorCredentials(t, install));
  const op = await runPod(t, { manifest: 'deploy/operator.yaml', container: 'operator', dir: opDir, netns: host.name, command: probe });
  assert.deepEqual(await op.exited(60_000), { code: 0, signal: null }, op.log());
  const ol = op.log();
  assert.match(ol, /^65532\n0\n/, 'runAsUser 65532 (pod securityContext)');
  for (const c of ['CapPrm', 'CapEff', 'CapBnd', 'CapAmb']) assert.match(ol, new RegExp(`${c}:\\s+0{16}`), c);
  assert.match(ol, /NoNewPrivs:\s+1/);
  assert.match(ol, /^eyJ$/m, 'the token file is readable by the pod\'s user (kubelet: owner = runAsUser, 0600)');
  assert.match(ol, new RegExp(`pod=${opDir.creds.podName} podns=${install.namespace} opts=--max-semi-space-size=4 --max-old-space-size=384 home=/`));
  assert.match(ol, /root=ro/, 'readOnlyRootFilesystem: true');
  assert.match(ol, /args=operator --health-port 8080/);
});

test('kipsec operator run from deploy/operator.yaml as its pod would (in-cluster config through the bridge, pod-bound token, 65532, no capabilities) becomes leader, publishes the trust bundle, and leaves on SIGTERM with status 0', async (t) => {
  const install = await installKipsec(t, uniqueName('kipsec-op'));
  const kube = laneKube();
  const podNs = await Netns.create(t, 'op');   // not hostNetwork: a network namespace of its own
  const dir = inClusterDir(await operatorCredentials(t, install));
  const op = await runPod(t, { manifest: 'deploy/operator.yaml', container: 'operator', dir, netns: podNs.name });
  assert.deepEqual(op.plan.args, ['operator', '--health-port', '8080'], 'deploy/operator.yaml\'s args, nothing added');
  try {
    const lease = await op.whileRunning(eventually(async () => {
      const l = await kube.get<{ spec: { holderIdentity?: string } }>(resourcePath(RESOURCES.leases, { namespace: install.namespace, name: LEADER_LEASE }));
      return l.spec.holderIdentity ? l : undefined;
    }, 240_000, 500));
    assert.equal(lease.spec.holderIdentity, dir.creds.podName, 'its identity is POD_NAME from the fieldRef');
    const cm = await op.whileRunning(eventually(async () => {
      const c = await kube.get<{ data?: Record<string, string> }>(resourcePath(RESOURCES.configMaps, { namespace: install.namespace, name: TRUST_BUNDLE_CONFIGMAP }));
      return c.data?.[TRUST_BUNDLE_KEY]?.includes('BEGIN CERTIFICATE') ? c : undefined;
    }, 240_000, 500));
    assert.match(cm.data![TRUST_BUNDLE_KEY]!, /-----END CERTIFICATE-----/);
    // The health endpoint on the manifest's port, inside the pod's namespace.
    const health = await podNs.run('curl', ['-sS', '--max-time', '20', 'http://127.0.0.1:8080/healthz'], { timeoutMs: 30_000 });
    assert.match(health.stdout, /ok/i);
  } catch (e) {
    throw new Error(`${(e as Error).message}\n--- operator log ---\n${op.log().slice(-6000)}`, { cause: e });
  }
  const exit = await op.stop('SIGTERM');
  assert.deepEqual(exit, { code: 0, signal: null }, op.log().slice(-4000));
});

test('helm template charts/kipsec and deploy/ pass the apiserver\'s server-side dry run (kubectl apply --dry-run=server), and the agent DaemonSet\'s args and env in both are what pod-runner runs', async (t) => {
  const install = await installKipsec(t, uniqueName('kipsec-dry'));
  const ns = install.namespace;
  const kubeconfig = process.env['KIPSEC_KUBECONFIG']!;
  const helm = await run(laneBin('helm'), ['template', 'kipsec', repoPath('charts/kipsec'), '--namespace', ns, '--kube-version', '1.36.3'], undefined, 300_000);
  assert.equal(helm.code, 0, helm.stderr);
  const kubectl = laneBin('kubectl');
  const dry = async (what: string, text: string): Promise<string> => {
    const r = await run(kubectl, ['--kubeconfig', kubeconfig, 'apply', '--dry-run=server', '-n', ns, '-f', '-'], text, 300_000);
    assert.equal(r.code, 0, `${what}: ${r.stderr}`);
    return r.stdout;
  };
  const fromHelm = await dry('helm template', helm.stdout);
  for (const k of ['daemonset.apps/kipsec-agent', 'deployment.apps/kipsec-operator', 'validatingadmissionpolicy.admissionregistration.k8s.io/kipsec-agent-own-ipsecnode']) assert.match(fromHelm, new RegExp(`${k}.*\\(server dry run\\)`), k);
  const deployFiles = ['rbac.yaml', 'operator.yaml', 'agent.yaml', 'admission-policy.yaml'].map((f) => repoPath('deploy', f));
  for (const f of deployFiles) assert.ok(existsSync(f), f);
  await dry('deploy/', deployFiles.map((f) => readFileSync(f, 'utf8').replaceAll('kipsec-system', ns)).join('\n---\n'));

  // The args: deploy/ = chart = what pod-runner runs (after the kubelet's $(NODE_NAME) expansion).
  const chartAgent = podFromManifestText(helm.stdout, 'agent', 'helm template');
  assert.deepEqual(chartAgent.container.args, manifestArgs('deploy/agent.yaml', 'agent'));
  assert.deepEqual(podFromManifestText(helm.stdout, 'operator', 'helm template').container.args, manifestArgs('deploy/operator.yaml', 'operator'));
  const node = uniqueName('node-d');
  await createNode(t, node, { internalIP: '192.0.2.31' });
  const dir = inClusterDir(await agentCredentials(t, install, node));
  const plan = podPlan({ manifest: 'deploy/agent.yaml', container: 'agent', dir, netns: 'unused' });
  const chartEnv = containerEnv(chartAgent.container, { podName: dir.creds.podName, namespace: ns, nodeName: node });
  assert.deepEqual(plan.args, chartAgent.container.args!.map((a) => expandVars(a, chartEnv)));
  assert.deepEqual(plan.env, chartEnv);
  assert.deepEqual(plan.args.slice(0, 3), ['agent', '--node-name', node]);
  assert.deepEqual([plan.uid, plan.capabilities, plan.noNewPrivs], [0, ['NET_ADMIN', 'NET_BIND_SERVICE'], true]);
  assert.deepEqual(plan.mounts.map((m) => m.target), ['/var/lib/kipsec', '/run/kipsec', '/var/run/secrets/kubernetes.io/serviceaccount', '/root']);
});
