// Runs kipsec's processes in the cluster lane the way the kubelet would run deploy/'s containers,
// without a kubelet or a container runtime: the container's `args` and `env` are read from the
// manifest (deploy/agent.yaml, deploy/operator.yaml), $(VAR) references and fieldRef env values
// are filled in, and the process runs
//   ip netns exec NETNS unshare -m --propagation private sh -c '<mounts>; exec setpriv … env -i … node BUNDLE ARGS'
// so it has its pod's view:
//   - the network namespace of its node (hostNetwork pods) or its own;
//   - the volumes: hostPath /var/lib/kipsec and /run/kipsec → the node's folders, the projected
//     service-account token at /var/run/secrets/kubernetes.io/serviceaccount (read-only), an empty
//     /root, and `/` read-only when readOnlyRootFilesystem says so (private mount namespace);
//   - the securityContext: user/group (runAsUser, else the image's USER from deploy/Dockerfile),
//     runAsNonRoot checked, capabilities as a runtime sets them (drop ALL + add X → bounding,
//     permitted and effective = X for root, nothing for others; inheritable and ambient empty),
//     allowPrivilegeEscalation: false → no_new_privs. Not emulated: seccomp, cgroups (limits),
//     probes, the image's filesystem (the guest's root is the machine's, read-only over 9p);
//   - the environment a kubelet gives: the manifest's env, KUBERNETES_SERVICE_HOST/PORT (here
//     127.0.0.1:6443, the lane's apiserver bridge, so @kubernetes/client-node uses its in-cluster
//     config exactly as in a pod), HOSTNAME, the image's PATH, HOME.
// The command is `node <bundle>` (e2e/vm/agent-harness.ts agentBundle(), the CLI bundled with
// esbuild: tsx is too slow under TCG) in place of the image's `node bin/kipsec.js`.
// Processes are tracked by pid; the scope's end (or this process's exit) kills them.
import { spawn, type ChildProcess } from 'node:child_process';
import { chownSync, chmodSync, createWriteStream, mkdirSync, readFileSync, type WriteStream } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { repoPath } from '../../test/lib/paths.js';
import { agentBundle } from '../vm/agent-harness.js';
import { apiserverBridge, LANE_APISERVER, type InClusterDir } from './lane-kube.js';
import type { Scope } from './netns.js';

// ---------- the manifest ----------

interface EnvVar { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }
interface Capabilities { add?: string[]; drop?: string[] }
interface SecurityContext {
  runAsUser?: number; runAsGroup?: number; runAsNonRoot?: boolean; privileged?: boolean;
  allowPrivilegeEscalation?: boolean; readOnlyRootFilesystem?: boolean; capabilities?: Capabilities;
}
export interface ManifestContainer {
  name: string; args?: string[]; command?: string[]; env?: EnvVar[];
  securityContext?: SecurityContext; volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
}
export interface ManifestPod {
  /** The workload that carries the pod template (DaemonSet, Deployment, …). */
  readonly kind: string;
  readonly name: string;
  readonly hostNetwork: boolean;
  readonly terminationGracePeriodSeconds: number;
  readonly securityContext: SecurityContext;
  readonly volumes: readonly { name: string; hostPath?: { path: string }; emptyDir?: object }[];
  readonly container: ManifestContainer;
}

interface PodTemplateSpec {
  hostNetwork?: boolean; terminationGracePeriodSeconds?: number; securityContext?: SecurityContext;
  volumes?: { name: string; hostPath?: { path: string }; emptyDir?: object }[]; containers?: ManifestContainer[];
}
interface Workload { kind?: string; metadata?: { name?: string }; spec?: { template?: { spec?: PodTemplateSpec } } & PodTemplateSpec }

function resolveFile(file: string): string { return isAbsolute(file) ? file : repoPath(file); }

/** Find `container` in the workloads of a manifest text (a YAML stream, e.g. deploy/agent.yaml or `helm template` output). */
export function podFromManifestText(text: string, container: string, where = 'manifest'): ManifestPod {
  for (const d of parseAllDocuments(text)) {
    const w = d.toJS() as Workload | null;
    if (!w?.kind) continue;
    const spec = w.kind === 'Pod' ? w.spec : w.spec?.template?.spec;
    const c = spec?.containers?.find((x) => x.name === container);
    if (!spec || !c) continue;
    return {
      kind: w.kind, name: w.metadata?.name ?? '', hostNetwork: spec.hostNetwork === true,
      terminationGracePeriodSeconds: spec.terminationGracePeriodSeconds ?? 30,
      securityContext: spec.securityContext ?? {}, volumes: spec.volumes ?? [], container: c,
    };
  }
  throw new Error(`pod-runner: no workload with a container "${container}" in ${where}`);
}

/** The pod template of `file` (repo-relative, e.g. deploy/agent.yaml) that runs `container`. */
export function manifestPod(file: string, container: string): ManifestPod {
  return podFromManifestText(readFileSync(resolveFile(file), 'utf8'), container, file);
}

/** The container's `args` exactly as written in the manifest ($(VAR) references not expanded). */
export function manifestArgs(file: string, container: string): string[] {
  return [...(manifestPod(file, container).container.args ?? [])];
}

/**
 * Kubernetes' $(VAR) expansion in args and env values: a reference to a variable defined in the
 * container's env is replaced, $$ is a literal $, an unknown reference stays as written.
 */
export function expandVars(s: string, env: Readonly<Record<string, string>>): string {
  return s.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (m, name: string | undefined) => (name === undefined ? '$' : env[name] ?? m));
}

// ---------- what would run ----------

export interface PodIdentity {
  readonly podName: string;
  readonly namespace: string;
  /** spec.nodeName (undefined for a pod not bound to a node). */
  readonly nodeName: string | undefined;
}

/** The container's environment as the kubelet computes it: the manifest's env in order, fieldRefs filled in. */
export function containerEnv(c: ManifestContainer, id: PodIdentity): Record<string, string> {
  const env: Record<string, string> = {};
  for (const e of c.env ?? []) {
    if (e.value !== undefined) { env[e.name] = expandVars(e.value, env); continue; }
    const path = e.valueFrom?.fieldRef?.fieldPath;
    const fields: Record<string, string | undefined> = { 'spec.nodeName': id.nodeName, 'metadata.namespace': id.namespace, 'metadata.name': id.podName };
    const v = path === undefined ? undefined : fields[path];
    if (v === undefined) throw new Error(`pod-runner: env ${e.name} from ${path ?? 'a source'} is not something the lane fills in${path === 'spec.nodeName' ? ' (the pod has no node)' : ''}`);
    env[e.name] = v;
  }
  return env;
}

/** The runtime's default capabilities (containerd/CRI-O), the base when a container does not drop ALL. */
const RUNTIME_DEFAULT_CAPS = ['CHOWN', 'DAC_OVERRIDE', 'FSETID', 'FOWNER', 'MKNOD', 'NET_RAW', 'SETGID', 'SETUID', 'SETFCAP', 'SETPCAP', 'NET_BIND_SERVICE', 'SYS_CHROOT', 'KILL', 'AUDIT_WRITE'];

function imageUser(): number {
  // deploy/Dockerfile's final `USER n`: what runs when the pod names no runAsUser.
  const users = [...readFileSync(repoPath('deploy/Dockerfile'), 'utf8').matchAll(/^USER\s+(\d+)/gm)];
  const last = users.at(-1);
  return last ? Number(last[1]) : 0;
}

export interface PodPlan {
  readonly pod: ManifestPod;
  /** Container args after $(VAR) expansion, plus the lane's extra args if any. */
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly uid: number;
  readonly gid: number;
  /** Capability names (no CAP_ prefix, upper case) in the bounding set; null = privileged, all of them. */
  readonly capabilities: readonly string[] | null;
  readonly noNewPrivs: boolean;
  readonly readOnlyRoot: boolean;
  /** Bind mounts in order: host folder → path in the pod. */
  readonly mounts: readonly { readonly source: string; readonly target: string; readonly readOnly: boolean }[];
  /** The full command line inside the sandbox: node BUNDLE ARGS (or the test's command). */
  readonly argv: readonly string[];
}

export interface PodSpec {
  /** Manifest file (repo-relative: deploy/agent.yaml) and container name in it. */
  readonly manifest: string;
  readonly container: string;
  /** From lane-kube inClusterDir(): token, CA, namespace, node folders, identity of the pod. */
  readonly dir: InClusterDir;
  /** Network namespace (`ip netns` name): the node's for hostNetwork pods, else the pod's own. */
  readonly netns: string;
  /**
   * Args appended after the manifest's, only where the lane needs something deploy/ does not say;
   * `why` is required and printed at the top of the log.
   */
  readonly extraArgs?: { readonly args: readonly string[]; readonly why: string };
  /** Replace `node BUNDLE` (e.g. a shell that reports what the sandbox looks like). */
  readonly command?: readonly string[];
}

/** What runPod() runs for `spec`, without running it (tests compare it with deploy/ and the chart). */
export function podPlan(spec: PodSpec): PodPlan {
  const pod = manifestPod(spec.manifest, spec.container);
  const c = pod.container;
  const creds = spec.dir.creds;
  const id: PodIdentity = { podName: creds.podName, namespace: creds.namespace, nodeName: creds.nodeName };
  const env = containerEnv(c, id);
  const args = [...(c.args ?? []).map((a) => expandVars(a, env)), ...(spec.extraArgs?.args ?? [])];
  const sc: SecurityContext = { ...pod.securityContext, ...c.securityContext };
  const uid = sc.runAsUser ?? imageUser();
  // The image's USER has no /etc/passwd entry in node:*-slim, so its group is 0 unless runAsGroup says.
  const gid = sc.runAsGroup ?? 0;
  if (sc.runAsNonRoot && uid === 0) throw new Error(`pod-runner: ${pod.name}/${c.name} has runAsNonRoot but would run as uid 0 (the kubelet refuses to start it)`);
  const drop = (sc.capabilities?.drop ?? []).map((x) => x.toUpperCase());
  const add = (sc.capabilities?.add ?? []).map((x) => x.toUpperCase());
  const capabilities = sc.privileged ? null
    : [...new Set([...(drop.includes('ALL') ? [] : RUNTIME_DEFAULT_CAPS.filter((x) => !drop.includes(x))), ...add])];
  // The kubelet's default: allowPrivilegeEscalation is true unless set false (and false is implied by nothing here).
  const noNewPrivs = sc.allowPrivilegeEscalation === false;
  const mounts: { source: string; target: string; readOnly: boolean }[] = [];
  const hostDirs: Record<string, string | undefined> = { '/var/lib/kipsec': spec.dir.varLibKipsec, '/run/kipsec': spec.dir.runKipsec };
  for (const m of c.volumeMounts ?? []) {
    const v = pod.volumes.find((x) => x.name === m.name);
    if (!v) throw new Error(`pod-runner: volumeMount ${m.name} has no volume`);
    let source: string | undefined;
    if (v.hostPath) {
      source = hostDirs[v.hostPath.path];
      if (!source) throw new Error(`pod-runner: hostPath ${v.hostPath.path} has no lane folder${creds.nodeName ? '' : ' (the pod has no node)'}`);
    } else if (v.emptyDir) {
      source = join(spec.dir.root, 'empty', v.name);
    } else throw new Error(`pod-runner: volume ${v.name}: only hostPath and emptyDir are emulated`);
    mounts.push({ source, target: m.mountPath, readOnly: m.readOnly === true });
  }
  // automountServiceAccountToken (the default): the projected token volume, read-only.
  mounts.push({ source: spec.dir.serviceAccount, target: '/var/run/secrets/kubernetes.io/serviceaccount', readOnly: true });
  // The image's /root is empty; the guest's is the machine's (a ~/.kube/config there would win over in-cluster config).
  if (uid === 0) mounts.push({ source: spec.dir.home, target: '/root', readOnly: false });
  const argv = [...(spec.command ?? [process.execPath, agentBundle()]), ...args];
  return { pod, args, env, uid, gid, capabilities, noNewPrivs, readOnlyRoot: sc.readOnlyRootFilesystem === true, mounts, argv };
}

// ---------- running it ----------

export interface PodExit { readonly code: number | null; readonly signal: NodeJS.Signals | null }

export interface PodHandle {
  readonly pid: number;
  readonly podName: string;
  readonly netns: string;
  readonly plan: PodPlan;
  /** stdout and stderr so far, interleaved as they arrived. */
  log(): string;
  running(): boolean;
  /** Resolve with the exit, or reject after timeoutMs. */
  exited(timeoutMs?: number): Promise<PodExit>;
  /** Resolve with the log once `re` matches it; reject if the process exits first or after timeoutMs. */
  waitForLog(re: RegExp, timeoutMs?: number): Promise<string>;
  /** Settle as `p` does, or reject with the log as soon as the process exits first (a crashed pod fails fast). */
  whileRunning<T>(p: Promise<T>): Promise<T>;
  /** Send `signal` (SIGTERM), then SIGKILL after the manifest's terminationGracePeriodSeconds, as the kubelet does. */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<PodExit>;
}

const q = (s: string): string => `'${s.replaceAll("'", `'\\''`)}'`;
const live = new Set<ChildProcess>();
process.on('exit', () => { for (const c of live) if (c.pid) try { process.kill(c.pid, 'SIGKILL'); } catch { /* gone */ } });

/** The image's PATH (node:*-bookworm-slim). */
const IMAGE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Start the pod's process as described in the header; killed by pid at the scope's end. */
export async function runPod(scope: Scope | null, spec: PodSpec): Promise<PodHandle> {
  const plan = podPlan(spec);
  const creds = spec.dir.creds;
  await apiserverBridge(spec.netns, scope ?? undefined);
  // The kubelet gives the projected token to the pod's user, mode 0600, when the pod sets runAsUser.
  const token = join(spec.dir.serviceAccount, 'token');
  chownSync(token, plan.uid, plan.gid); chmodSync(token, 0o600);
  for (const m of plan.mounts) mkdirSync(m.source, { recursive: true });
  const env: Record<string, string> = {
    PATH: IMAGE_PATH, HOSTNAME: plan.pod.hostNetwork && creds.nodeName ? creds.nodeName : creds.podName, HOME: plan.uid === 0 ? '/root' : '/',
    KUBERNETES_SERVICE_HOST: LANE_APISERVER.host, KUBERNETES_SERVICE_PORT: String(LANE_APISERVER.port), KUBERNETES_SERVICE_PORT_HTTPS: String(LANE_APISERVER.port),
    ...plan.env,
  };
  const caps = plan.capabilities;
  const setpriv = ['setpriv', '--reuid', String(plan.uid), '--regid', String(plan.gid), '--clear-groups',
    ...(caps === null ? [] : ['--bounding-set', ['-all', ...caps.map((x) => `+${x.toLowerCase()}`)].join(','), '--inh-caps', '-all', '--ambient-caps', '-all']),
    ...(plan.noNewPrivs ? ['--no-new-privs'] : []), '--'];
  const script = [
    'set -e',
    ...plan.mounts.flatMap((m) => [`mkdir -p ${q(m.target)}`, `mount --bind ${q(m.source)} ${q(m.target)}`, ...(m.readOnly ? [`mount -o remount,bind,ro ${q(m.target)}`] : [])]),
    ...(plan.readOnlyRoot ? ['mount -o remount,bind,ro /'] : []),
    `cd ${q(repoPath())}`,
    `exec ${[...setpriv, 'env', '-i', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), ...plan.argv].map(q).join(' ')}`,
  ].join('\n');
  const child = spawn('ip', ['netns', 'exec', spec.netns, 'unshare', '-m', '--propagation', 'private', 'sh', '-c', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  if (child.pid === undefined) throw new Error(`pod-runner: could not start ${creds.podName}`);
  const pid = child.pid;
  live.add(child);
  let text = spec.extraArgs ? `[pod-runner] extra args ${spec.extraArgs.args.join(' ')}: ${spec.extraArgs.why}\n` : '';
  // Inside the VM the log is also kept for the host ($VM_OUT → .lane-results/cluster-out/pods/).
  let file: WriteStream | undefined;
  const out = process.env['VM_OUT'];
  if (out) { mkdirSync(join(out, 'pods'), { recursive: true }); file = createWriteStream(join(out, 'pods', `${creds.podName}.log`), { flags: 'a' }); file.write(text); }
  const append = (d: Buffer): void => { text += d.toString(); file?.write(d); };
  child.stdout.on('data', append);
  child.stderr.on('data', append);
  let exit: PodExit | undefined;
  const exitP = new Promise<PodExit>((resolve) => child.on('exit', (code, signal) => { exit = { code, signal }; live.delete(child); file?.end(); resolve(exit); }));
  const kill = (sig: NodeJS.Signals): void => { if (!exit) try { process.kill(pid, sig); } catch { /* gone */ } };
  scope?.after(() => kill('SIGKILL'));

  const exited = async (timeoutMs = 60_000): Promise<PodExit> => {
    let timer: NodeJS.Timeout | undefined;
    const t = new Promise<never>((_, rej) => { timer = setTimeout(() => rej(new Error(`pod ${creds.podName} (pid ${pid}) still running after ${timeoutMs} ms:\n${text.slice(-4000)}`)), timeoutMs); });
    try { return await Promise.race([exitP, t]); } finally { clearTimeout(timer); }
  };
  const handle: PodHandle = {
    pid, podName: creds.podName, netns: spec.netns, plan,
    log: () => text,
    running: () => exit === undefined,
    exited,
    async waitForLog(re, timeoutMs = 60_000) {
      const end = Date.now() + timeoutMs;
      for (;;) {
        if (re.test(text)) return text;
        if (exit) throw new Error(`pod ${creds.podName} exited (${exit.code ?? exit.signal}) before its log matched ${re}:\n${text.slice(-4000)}`);
        if (Date.now() > end) throw new Error(`pod ${creds.podName}: log did not match ${re} within ${timeoutMs} ms:\n${text.slice(-4000)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    whileRunning<T>(p: Promise<T>): Promise<T> {
      const died = exitP.then((e): never => { throw new Error(`pod ${creds.podName} exited (${e.code ?? e.signal}) while the test waited for it:\n${text.slice(-4000)}`); });
      died.catch(() => undefined);
      return Promise.race([p, died]);
    },
    async stop(signal = 'SIGTERM', graceMs = plan.pod.terminationGracePeriodSeconds * 1000) {
      if (exit) return exit;
      kill(signal);
      try { return await exited(graceMs); } catch { kill('SIGKILL'); return exited(10_000); }
    },
  };
  return handle;
}
