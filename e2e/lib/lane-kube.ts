// The cluster lane's Kubernetes side, for tests running inside the lane's VM (e2e/cluster-inside.sh):
// the real kube-apiserver on the host, reached at https://127.0.0.1:6443 from the guest's root
// namespace and, through apiserverBridge(), from inside every node namespace. No kubelet,
// controller-manager or scheduler runs: the test creates Node objects itself, and pods exist only
// as API objects that anchor real pod-bound service-account tokens (TokenRequest), which
// e2e/lib/pod-runner.ts hands to processes laid out as a pod sees its files.
//
//   const install = await installKipsec(t, uniqueName('kipsec'));     // CRDs, RBAC, admission policy
//   await createNode(t, 'node-a', { internalIP: '192.0.2.11', podCIDRs: ['10.244.1.0/24'] });
//   const creds = await agentCredentials(t, install, 'node-a');       // a DaemonSet pod's token
//   const dir = inClusterDir(creds);                                    // serviceaccount/ + host dirs
// `t` is the test's context (anything with after()): what a helper creates is removed at its end.
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { repoPath } from '../../test/lib/paths.js';
import { KubeClient, RESOURCES, resourcePath } from '../../src/api/kube/client.js';
import { KubeApiError } from '../../src/api/kube/errors.js';
import { AGENT_SERVICE_ACCOUNT, OPERATOR_SERVICE_ACCOUNT } from '../../src/api/names.js';
import { applyDeployFile, deleteQuietly, ensureNamespace, installKipsecCrds, serviceAccountUser } from '../apiserver/support.js';
import { prepareVm } from '../vm/agent-vm.js';
import { eventually, loadKubeConfig } from './kube.js';
import type { Scope } from './netns.js';

/** Where every process in the lane finds the apiserver (the guest-side bridge, e2e/cluster-inside.sh). */
export const LANE_APISERVER = { host: '127.0.0.1', port: 6443 } as const;
/** The guest's unix socket that carries apiserver connections out of any network namespace. */
export const LANE_KUBE_SOCKET = '/run/kipsec-lane/kube.sock';

const PODS = { group: '', version: 'v1', plural: 'pods' } as const;

function requireLane(): string {
  const path = process.env['KIPSEC_KUBECONFIG'];
  if (!path || !(process.env['KIPSEC_IN_VM'] || process.env[ON_HOST]))
    throw new Error('lane-kube: the cluster lane runs inside its VM with KIPSEC_KUBECONFIG set (`node scripts/run-lanes.mjs cluster`), or on this host after hostLaneSocket()');
  return path;
}

const ON_HOST = 'KIPSEC_LANE_ON_HOST';
/** The unix socket apiserverBridge() forwards to: the VM's, or the one hostLaneSocket() made. */
function laneKubeSocket(): string { return process.env['KIPSEC_LANE_KUBE_SOCKET'] ?? LANE_KUBE_SOCKET; }

/**
 * The lane on this host, without the VM (the apiserver lane's userspace mesh, where the host kernel
 * has what the test needs): a unix socket forwarding each connection to the apiserver that
 * KIPSEC_KUBECONFIG names, standing in for the VM's bridge, so apiserverBridge() and everything
 * built on it work unchanged. socat is killed by pid and the socket removed at the scope's end.
 */
export async function hostLaneSocket(scope: Scope, timeoutMs = 10_000): Promise<void> {
  const server = loadKubeConfig().getCurrentCluster()?.server;
  if (!server) throw new Error('lane-kube: KIPSEC_KUBECONFIG names no server');
  const u = new URL(server);
  const dir = mkdtempSync(join(tmpdir(), 'kipsec-lane-sock-'));
  const sock = join(dir, 'kube.sock');
  const child = spawn('socat', [`UNIX-LISTEN:${sock},fork,mode=600`, `TCP:${u.hostname}:${u.port || '443'}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  const pid = child.pid;
  if (pid === undefined) throw new Error('lane-kube: could not start socat for the host lane socket');
  scope.after(() => {
    try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    try { rmSync(sock, { force: true }); rmdirSync(dir); } catch { /* best effort */ }
    delete process.env[ON_HOST]; delete process.env['KIPSEC_LANE_KUBE_SOCKET'];
  });
  for (const end = Date.now() + timeoutMs; !existsSync(sock); await new Promise((r) => setTimeout(r, 50))) {
    if (child.exitCode !== null || Date.now() > end) throw new Error(`lane-kube: socat did not listen on ${sock} within ${timeoutMs} ms`);
  }
  process.env['KIPSEC_LANE_KUBE_SOCKET'] = sock;
  process.env[ON_HOST] = '1';
}

/** The lane's admin kubeconfig (server https://127.0.0.1:6443, the host's CA and admin certificate). */
export function laneKubeConfig(): KubeConfig {
  requireLane();
  prepareVm();   // credit the VM's entropy pool before the first TLS handshake
  return loadKubeConfig();
}

let admin: KubeClient | undefined;
/**
 * The lane's admin client, one per test process. It needs no closing: Node's keep-alive agent
 * unrefs idle sockets, so it never holds the process open.
 */
export function laneKube(): KubeClient {
  admin ??= new KubeClient(laneKubeConfig());
  return admin;
}

/** The apiserver's CA certificate (PEM): what a pod finds in serviceaccount/ca.crt. */
export function laneCaPem(): string {
  const kc = laneKubeConfig();
  const c = kc.getCurrentCluster();
  if (c?.caFile) return readFileSync(c.caFile, 'utf8');
  if (c?.caData) return Buffer.from(c.caData, 'base64').toString('utf8');
  throw new Error('lane-kube: the lane kubeconfig names no certificate authority');
}

/**
 * A binary e2e/apiserver.sh built (kube-apiserver, etcd, helm, kubectl) for the pinned version;
 * inside the VM the host's cache is visible at the same path.
 */
export function laneBin(name: 'helm' | 'kubectl' | 'kube-apiserver' | 'etcd'): string {
  const mod = readFileSync(repoPath('e2e/k8s-build/go.mod'), 'utf8');
  const ver = /^\s*k8s\.io\/kubernetes (v[0-9.]+)$/m.exec(mod)?.[1];
  if (!ver) throw new Error('lane-kube: no k8s.io/kubernetes version in e2e/k8s-build/go.mod');
  const path = join(process.env['KIPSEC_CACHE'] ?? join(homedir(), '.cache', 'kipsec'), 'bin', ver, name);
  if (!existsSync(path)) throw new Error(`lane-kube: ${path} is missing: \`bash e2e/apiserver.sh build\` builds it`);
  return path;
}

// ---------- the apiserver inside node namespaces ----------

const bridges = new Map<string, number>();

function execQuiet(cmd: string, args: readonly string[], timeoutMs = 10_000): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs, killSignal: 'SIGKILL', encoding: 'utf8' }, (err, stdout) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout });
    });
  });
}

/**
 * https://127.0.0.1:6443 inside network namespace `netns` (by name, as `ip netns` knows it): a
 * socat listener there that forwards each connection to the guest's unix socket (unix sockets
 * cross network namespaces). Idempotent per namespace; the listener dies with the namespace, at
 * the scope's end, or when this process exits. Returns its pid.
 */
export async function apiserverBridge(netns: string, scope?: Scope, timeoutMs = 15_000): Promise<number> {
  const known = bridges.get(netns);
  if (known !== undefined && alive(known)) return known;
  await execQuiet('ip', ['-n', netns, 'link', 'set', 'lo', 'up']);
  const child = spawn('ip', ['netns', 'exec', netns, 'socat', `TCP-LISTEN:${LANE_APISERVER.port},bind=${LANE_APISERVER.host},fork,reuseaddr`, `UNIX-CONNECT:${laneKubeSocket()}`],
    { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr?.on('data', (d: Buffer) => { err += d.toString(); });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`apiserverBridge: could not start socat in ${netns}`);
  bridges.set(netns, pid);
  const stop = (): void => { bridges.delete(netns); try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } };
  scope?.after(stop);
  const end = Date.now() + timeoutMs;
  for (;;) {
    const ss = await execQuiet('ip', ['netns', 'exec', netns, 'ss', '-Hltn', `sport = :${LANE_APISERVER.port}`]);
    if (ss.stdout.includes(`${LANE_APISERVER.host}:${LANE_APISERVER.port}`)) return pid;
    if (child.exitCode !== null) { stop(); throw new Error(`apiserverBridge: socat in ${netns} exited ${child.exitCode}: ${err.trim()}`); }
    if (Date.now() > end) { stop(); throw new Error(`apiserverBridge: socat in ${netns} not listening within ${timeoutMs} ms: ${err.trim()}`); }
    await new Promise((r) => setTimeout(r, 100));
  }
}

function alive(pid: number): boolean { try { process.kill(pid, 0); return true; } catch { return false; } }

/**
 * Cut namespace `netns` off the apiserver, as a control-plane outage looks from a node: the bridge
 * and every connection it carries (socat forks one child per connection) are killed, by pid, so
 * open watches break and new connections are refused. apiserverBridge() brings it back.
 */
export function cutApiserverBridge(netns: string): void {
  const pid = bridges.get(netns);
  if (pid === undefined) return;
  bridges.delete(netns);
  for (const child of childrenOf(pid)) try { process.kill(child, 'SIGKILL'); } catch { /* gone */ }
  try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
}

/** Pids whose parent is `pid` (/proc/<pid>/stat field 4; the command name in parentheses may hold spaces). */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    let stat: string;
    try { stat = readFileSync(`/proc/${e}/stat`, 'utf8'); } catch { continue; }
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (ppid === pid) out.push(Number(e));
  }
  return out;
}

process.on('exit', () => { for (const pid of bridges.values()) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } });

// ---------- kipsec installed as deploy/ installs it ----------

export interface KipsecInstall {
  readonly kube: KubeClient;
  /** Where the operator and agents run, their service accounts, the CA Secret and trust bundle. */
  readonly namespace: string;
  /** Remove what install applied (RBAC, policy, namespace); the CRDs stay (shared, idempotent). */
  uninstall(): Promise<void>;
}

/**
 * The CRDs (built from src/api, as crds/ is), namespace `ns`, deploy/rbac.yaml and
 * deploy/admission-policy.yaml as they are, "kipsec-system" replaced by `ns` and cluster-scoped
 * names suffixed with it (e2e/apiserver/support.ts applyDeployFile) so one lane run can install
 * kipsec several times. Resolves once the admission policy is enforced (a foreign IPsecNode write
 * by the agent's user is refused), since the apiserver compiles policies asynchronously.
 */
export async function installKipsec(scope: Scope | null, ns: string): Promise<KipsecInstall> {
  const kube = laneKube();
  await installKipsecCrds(kube);
  await ensureNamespace(kube, ns);
  const undo = [await applyDeployFile(kube, 'rbac.yaml', ns), await applyDeployFile(kube, 'admission-policy.yaml', ns)];
  const probe = kube.as(serviceAccountUser(ns, AGENT_SERVICE_ACCOUNT, 'kipsec-lane-probe-node'));
  const body = { apiVersion: 'kipsec.io/v1alpha1', kind: 'IPsecNode', metadata: { name: 'kipsec-lane-probe-other' }, spec: { endpoint: { address: '192.0.2.1' } } };
  await eventually(async () => {
    try { await probe.create(resourcePath(RESOURCES.ipsecNodes), body, { dryRun: 'All' }); return undefined; } catch (e) {
      if (e instanceof KubeApiError && (e.status === 403 || e.status === 422) && /own node/.test(e.message)) return true;
      throw e;
    }
  }, 60_000, 250);
  const install: KipsecInstall = {
    kube, namespace: ns,
    async uninstall() {
      for (const u of undo.reverse()) await u();
      await deleteQuietly(kube, resourcePath(RESOURCES.namespaces, { name: ns }));
    },
  };
  scope?.after(() => install.uninstall());
  return install;
}

// ---------- Nodes ----------

export interface NodeOptions {
  readonly internalIP: string;
  /** spec.podCIDRs (spec.podCIDR is the first), as the node IPAM controller would set them. */
  readonly podCIDRs?: readonly string[];
  readonly labels?: Readonly<Record<string, string>>;
}

export interface NodeObject { metadata: { name: string; uid: string; labels?: Record<string, string> }; spec?: { podCIDR?: string; podCIDRs?: string[] }; status?: unknown }

/**
 * A Node object as a kubelet registers it (kubernetes.io/hostname and os labels, Ready condition,
 * InternalIP and Hostname addresses through the /status subresource). Deleted at the scope's end,
 * with the IPsecNode of the same name (agents elsewhere in the lane would otherwise see a ghost peer).
 */
export async function createNode(scope: Scope | null, name: string, o: NodeOptions): Promise<NodeObject> {
  const kube = laneKube();
  const cidrs = o.podCIDRs ?? [];
  await kube.create<NodeObject>(resourcePath(RESOURCES.nodes), {
    apiVersion: 'v1', kind: 'Node',
    metadata: { name, labels: { 'kubernetes.io/hostname': name, 'kubernetes.io/os': 'linux', 'kubernetes.io/arch': 'amd64', ...o.labels } },
    spec: cidrs.length ? { podCIDR: cidrs[0], podCIDRs: [...cidrs] } : {},
  });
  scope?.after(async () => {
    await deleteQuietly(kube, resourcePath(RESOURCES.ipsecNodes, { name }));
    await deleteQuietly(kube, resourcePath(RESOURCES.nodes, { name }));
  });
  const now = new Date().toISOString();
  return kube.mergePatch<NodeObject>(resourcePath(RESOURCES.nodes, { name, sub: 'status' }), {
    status: {
      addresses: [{ type: 'InternalIP', address: o.internalIP }, { type: 'Hostname', address: name }],
      conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'kipsec cluster lane', lastHeartbeatTime: now, lastTransitionTime: now }],
    },
  });
}

// ---------- pod-bound service-account tokens ----------

export type PodRole = 'agent' | 'operator';

export interface PodCredentials {
  readonly role: PodRole;
  readonly namespace: string;
  readonly serviceAccount: string;
  /** The Pod object the token is bound to (it must exist for the token to authenticate). */
  readonly podName: string;
  readonly podUid: string;
  /** spec.nodeName of that Pod: the apiserver puts it into the token user's extra info. */
  readonly nodeName: string | undefined;
  readonly token: string;
  readonly expiresAt: string;
}

interface PodObject { metadata: { name: string; uid: string } }

async function podToken(scope: Scope | null, install: KipsecInstall, role: PodRole, nodeName: string | undefined): Promise<PodCredentials> {
  const { kube, namespace } = install;
  const serviceAccount = role === 'agent' ? AGENT_SERVICE_ACCOUNT : OPERATOR_SERVICE_ACCOUNT;
  const app = role === 'agent' ? 'kipsec-agent' : 'kipsec-operator';
  // Only an anchor: no kubelet runs it. The labels are the workload's, so selectors find it.
  const pod = await kube.create<PodObject>(resourcePath(PODS, { namespace }), {
    apiVersion: 'v1', kind: 'Pod',
    metadata: { generateName: `${app}-`, labels: { 'app.kubernetes.io/name': app, 'app.kubernetes.io/part-of': 'kipsec' } },
    spec: {
      serviceAccountName: serviceAccount, automountServiceAccountToken: false,
      ...(nodeName ? { nodeName } : {}), ...(role === 'agent' ? { hostNetwork: true } : {}),
      containers: [{ name: role, image: 'kipsec-lane.invalid/none:0' }],
    },
  });
  scope?.after(() => deleteQuietly(kube, resourcePath(PODS, { namespace, name: pod.metadata.name })));
  // What the kubelet asks for a projected token: the apiserver's audiences, 3607 s, bound to the pod.
  const tr = await kube.create<{ status: { token: string; expirationTimestamp: string } }>(
    `${resourcePath(RESOURCES.namespaces, { name: namespace })}/serviceaccounts/${serviceAccount}/token`, {
      apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest',
      spec: { expirationSeconds: 3607, boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: pod.metadata.name, uid: pod.metadata.uid } },
    });
  return { role, namespace, serviceAccount, podName: pod.metadata.name, podUid: pod.metadata.uid, nodeName, token: tr.status.token, expiresAt: tr.status.expirationTimestamp };
}

/** The token a kipsec-agent DaemonSet pod on `node` gets (pod-bound, so it names the node). */
export function agentCredentials(scope: Scope | null, install: KipsecInstall, node: string): Promise<PodCredentials> {
  return podToken(scope, install, 'agent', node);
}

/** The token a kipsec-operator pod gets; `node` is where it is scheduled (none: not yet bound). */
export function operatorCredentials(scope: Scope | null, install: KipsecInstall, node?: string): Promise<PodCredentials> {
  return podToken(scope, install, 'operator', node);
}

/** A client that authenticates with the token itself (no impersonation): what the pod's process gets. */
export function tokenClient(creds: PodCredentials, scope?: Scope): KubeClient {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'lane', server: `https://${LANE_APISERVER.host}:${LANE_APISERVER.port}`, caData: Buffer.from(laneCaPem()).toString('base64'), skipTLSVerify: false }],
    users: [{ name: creds.serviceAccount, token: creds.token }],
    contexts: [{ name: 'lane', cluster: 'lane', user: creds.serviceAccount }], currentContext: 'lane',
  });
  const kube = new KubeClient(kc);
  scope?.after(() => kube.close());
  return kube;
}

// ---------- the files a pod sees ----------

export interface InClusterDir {
  /** This pod's folder (removed when the process exits). */
  readonly root: string;
  /** Mounted at /var/run/secrets/kubernetes.io/serviceaccount: token, ca.crt, namespace. */
  readonly serviceAccount: string;
  /** An empty HOME, so nothing like ~/.kube/config of the machine steers the process. */
  readonly home: string;
  /** hostPath /var/lib/kipsec and /run/kipsec of the pod's node (shared by that node's pods). */
  readonly varLibKipsec: string | undefined;
  readonly runKipsec: string | undefined;
  readonly creds: PodCredentials;
}

let base: string | undefined;
function laneBase(): string {
  if (base) return base;
  base = mkdtempSync(join(tmpdir(), `kipsec-lane-${process.pid}-`));
  const b = base;
  process.on('exit', () => { if (!process.env['KIPSEC_KEEP_LANE_DIRS']) try { rmSync(b, { recursive: true, force: true }); } catch { /* best effort */ } });
  return b;
}

/**
 * A folder laid out as the pod for `creds` sees its volumes: serviceaccount/{token,ca.crt,namespace}
 * (ca.crt = the apiserver's CA) and, for a pod on a node, that node's host folders behind the
 * agent's hostPath volumes. The node folders persist across pods of the same node, as host paths do.
 * Files are 0644 here; e2e/lib/pod-runner.ts gives the token to the container's user, mode 0600, as
 * the kubelet does when the pod sets runAsUser.
 */
export function inClusterDir(creds: PodCredentials): InClusterDir {
  const b = laneBase();
  const root = join(b, 'pods', creds.podName);
  const serviceAccount = join(root, 'serviceaccount');
  const home = join(root, 'home');
  mkdirSync(serviceAccount, { recursive: true, mode: 0o755 });
  mkdirSync(home, { recursive: true, mode: 0o755 });
  writeFileSync(join(serviceAccount, 'token'), creds.token, { mode: 0o644 });
  writeFileSync(join(serviceAccount, 'ca.crt'), laneCaPem(), { mode: 0o644 });
  writeFileSync(join(serviceAccount, 'namespace'), creds.namespace, { mode: 0o644 });
  let varLibKipsec: string | undefined; let runKipsec: string | undefined;
  if (creds.nodeName) {
    varLibKipsec = join(b, 'nodes', creds.nodeName, 'var-lib-kipsec');
    runKipsec = join(b, 'nodes', creds.nodeName, 'run-kipsec');
    mkdirSync(varLibKipsec, { recursive: true, mode: 0o755 });   // hostPath DirectoryOrCreate: 0755
    mkdirSync(runKipsec, { recursive: true, mode: 0o755 });
  }
  return { root, serviceAccount, home, varLibKipsec, runKipsec, creds };
}
