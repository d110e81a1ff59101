// bench/operator-scale: N Nodes and N agents' CSRs in a real apiserver; the operator (a child
// process, with the NODE_OPTIONS of deploy/operator.yaml) starts and we time, from its start,
// (1) until every CSR is approved and signed, (2) until every IPsecNode, after its agent published
// the certificate fingerprint, is reconciled (IdentityVerified=True). Reports the operator's memory
// and its apiserver requests per node, and the apiserver's own request count per node.
//   KIPSEC_KUBECONFIG=... node --import tsx bench/operator-scale.ts [N...]   (default 1000)
// KIPSEC_BENCH_PUBLISH=agents|after-signing (below), KIPSEC_BENCH_NODES=bare|kubelet (below),
// KIPSEC_BENCH_PROF=DIR (the operator's --cpu-prof), KIPSEC_BENCH_HEAPSNAP=FILE (the operator's heap
// snapshot at the end), KIPSEC_BENCH_TSX=1 (below), KIPSEC_BENCH_NODE_OPTIONS='...' (instead of the
// deploy's NODE_OPTIONS, for experiments; the output says which were used), KIPSEC_BENCH_OPERATOR_AUTH
// (below).
import { execFileSync, fork } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { KubeClient, RESOURCES, resourcePath } from '../src/api/kube/client.js';
import { SIGNER_NAME } from '../src/api/names.js';
import { createCsr, generateKeyPair } from '../src/pki/index.js';
import { applyDeployFile, installKipsecCrds, ensureNamespace, cleanupNamespace } from '../e2e/apiserver/support.js';
import { kubeconfigPath, loadKubeConfig } from '../e2e/lib/kube.js';
import { kubeletNode } from './lib/kube-shapes.js';
import { apiserverCpuSec } from './lib/apiserver-cpu.js';
import { serviceAccountKubeconfig } from './lib/service-account-kubeconfig.js';

interface Csr { metadata: { name: string; resourceVersion?: string }; status?: { certificate?: string } }
interface INode { metadata: { name: string; resourceVersion?: string }; status?: { conditions?: { type: string; status: string }[] } }

async function pool<T>(items: readonly T[], n: number, fn: (x: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  // Each item is retried a few times: a loaded 2-CPU apiserver drops the odd connection.
  const withRetry = async (x: T, i: number): Promise<void> => {
    for (let attempt = 1; ; attempt++) {
      try { await fn(x, i); return; } catch (e) {
        if (attempt >= 5) throw e; await new Promise((r) => setTimeout(r, 200 * attempt)); }
    }
  };
  await Promise.all(Array.from({ length: n }, async () => { for (;;) { const i = next++; if (i >= items.length) return; await withRetry(items[i]!, i); } }));
}

/**
 * KIPSEC_BENCH_NODES=kubelet (default): Nodes shaped like a kubelet's — labels, annotations,
 * addresses, five conditions, capacity, nodeInfo and 24 cached images (~8 KB of JSON, plus the
 * managedFields the apiserver adds) — since what an informer holds of a real Node is mostly what
 * the operator never reads. `bare`: name and label only (the figures before 2026-12).
 */
const NODE_SHAPE = process.env['KIPSEC_BENCH_NODES'] === 'bare' ? 'bare' : 'kubelet';

/**
 * KIPSEC_BENCH_PUBLISH=agents (default): each simulated agent publishes its certificate's
 * fingerprint as soon as its CSR's certificate appears (the bench watches the CSRs), at most
 * PUBLISHERS at once, as a fleet of agents would. `after-signing`: the method before 2026-12-07,
 * every fingerprint published only after all CSRs are signed, 64 at a time.
 */
const PUBLISH_MODE = process.env['KIPSEC_BENCH_PUBLISH'] === 'after-signing' ? 'after-signing' : 'agents';
const PUBLISHERS = 64;

/** The operator's NODE_OPTIONS as deploy/operator.yaml sets them, so the bench runs it as deployed. */
function deployNodeOptions(yaml = readFileSync(new URL('../deploy/operator.yaml', import.meta.url), 'utf8')): string {
  return /\{name: NODE_OPTIONS, value: "([^"]*)"\}/.exec(yaml)?.[1] ?? '';
}

/**
 * The operator runs as deployed, compiled JavaScript without a loader: the child bundled with
 * esbuild (npm packages external, as e2e/vm/agent-harness.ts does for the agent). Under tsx the
 * same operator starts at ~200 MiB RSS instead of ~120 (tsx's loader thread, sources and source
 * maps), which would hide what the operator itself holds. KIPSEC_BENCH_TSX=1 runs the .ts file.
 */
function childEntry(): string {
  const src = new URL('./operator-scale-child.ts', import.meta.url).pathname;
  if (process.env['KIPSEC_BENCH_TSX']) return src;
  const repo = new URL('..', import.meta.url).pathname;
  // Inside the checkout, so the bundle's bare imports find node_modules.
  mkdirSync(`${repo}build`, { recursive: true });
  const out = mkdtempSync(`${repo}build/bench-operator-`);
  process.on('exit', () => rmSync(out, { recursive: true, force: true }));
  const esbuild = `${repo}node_modules/.bin/esbuild`;
  // The polyfill must run before @peculiar/x509 loads: a module of its own, imported first.
  execFileSync(esbuild, [`${repo}src/pki/reflect-polyfill.ts`, '--format=esm', '--platform=node', '--target=node20', `--outfile=${out}/reflect-polyfill.mjs`, '--log-level=warning']);
  execFileSync(esbuild, [src, '--bundle', '--platform=node', '--format=esm', '--packages=external', '--target=node20', `--outfile=${out}/child.mjs`, '--log-level=warning', '--banner:js=import "./reflect-polyfill.mjs";']);
  return `${out}/child.mjs`;
}

/**
 * KIPSEC_BENCH_OPERATOR_AUTH=serviceaccount (default): the operator authenticates as deployed, with
 * a token of the kipsec-operator ServiceAccount (TokenRequest; deploy/rbac.yaml's permissions), so
 * the apiserver checks a bearer token it caches, and RBAC is the deploy's. `admin`: the lane's admin
 * client certificate (the figures before 2026-12-07 evening): the apiserver verifies the client
 * certificate's chain on every request (x509 authenticator, one ECDSA verification each), ~0.3 ms
 * of its CPU per request on this machine, which a deployed operator does not cost it.
 */
const OPERATOR_AUTH = process.env['KIPSEC_BENCH_OPERATOR_AUTH'] === 'admin' ? 'admin' : 'serviceaccount';

async function operatorKubeconfig(admin: KubeClient, ns: string, dir: string): Promise<string> {
  return OPERATOR_AUTH === 'admin' ? kubeconfigPath() : serviceAccountKubeconfig(admin, ns, 'kipsec-operator', dir);
}

/** 1-, 5- and 15-minute load averages: the machine is shared, and a loaded one stretches every figure. */
function loadAvg(): string { try { return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' '); } catch { return '?'; } }

async function apiserverRequests(kube: KubeClient): Promise<number> {
  const text = await kube.getText('/metrics').catch(() => '');
  let sum = 0;
  for (const line of text.split('\n')) if (line.startsWith('apiserver_request_total{')) sum += Number(line.split(' ').pop());
  return sum;
}

async function listAll<T>(kube: KubeClient, path: string, labelSelector: string): Promise<T[]> {
  const out: T[] = []; let cont: string | undefined;
  do { const p = await kube.get<{ items: T[]; metadata: { continue?: string } }>(path, { labelSelector, limit: 1000, continue: cont }); out.push(...p.items); cont = p.metadata.continue || undefined; } while (cont);
  return out;
}

async function run(n: number): Promise<Record<string, unknown>> {
  const admin = new KubeClient(loadKubeConfig(), { maxSockets: 64 });
  const tag = `bench-${process.pid}-${n}`;
  const ns = `kipsec-${tag}`;
  const label = `kipsec.io/test=${tag}`;
  await installKipsecCrds(admin);
  await ensureNamespace(admin, ns);
  const rbacCleanup = await applyDeployFile(admin, 'rbac.yaml', ns);
  const mesh = `mesh-${tag}`;
  await admin.create(resourcePath(RESOURCES.ipsecMeshes), { apiVersion: 'kipsec.io/v1alpha1', kind: 'IPsecMesh', metadata: { name: mesh, labels: { 'kipsec.io/test': tag } }, spec: { nodeSelector: { 'kipsec.io/test': tag } } });
  const names = Array.from({ length: n }, (_, i) => `${tag}-node-${i}`);
  const t0 = Date.now();
  const key = await generateKeyPair(); // one key per node would be realistic; the signer's work is the same
  const createOnce = (path: string, body: unknown): Promise<unknown> => admin.create(path, body).catch((e: unknown) => { if ((e as { status?: number }).status !== 409) throw e; });
  await pool(names, 64, async (name, i) => {
    const ip = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
    await createOnce(resourcePath(RESOURCES.nodes), NODE_SHAPE === 'bare'
      ? { apiVersion: 'v1', kind: 'Node', metadata: { name, labels: { 'kipsec.io/test': tag } } }
      : kubeletNode(name, ip, tag));
    await createOnce(resourcePath(RESOURCES.ipsecNodes), { apiVersion: 'kipsec.io/v1alpha1', kind: 'IPsecNode', metadata: { name, labels: { 'kipsec.io/test': tag } }, spec: { endpoint: { address: ip } } });
    const agent = admin.as({ user: `system:serviceaccount:${ns}:kipsec-agent`, groups: ['system:serviceaccounts', 'system:authenticated'], extra: { 'authentication.kubernetes.io/node-name': [name] } });
    const pem = await createCsr(i === 0 ? key : await generateKeyPair(), name);
    await agent.create(resourcePath(RESOURCES.csrs), { apiVersion: 'certificates.k8s.io/v1', kind: 'CertificateSigningRequest', metadata: { name: `${name}-csr`, labels: { 'kipsec.io/test': tag, 'kipsec.io/node': name } }, spec: { request: Buffer.from(pem).toString('base64'), signerName: SIGNER_NAME, usages: ['digital signature', 'client auth', 'server auth'] } }).catch((e: unknown) => { if ((e as { status?: number }).status !== 409) throw e; });
  });
  const setupMs = Date.now() - t0;

  // Track completion with watches (what a real observer pays), not by re-listing thousands of
  // objects every few hundred ms — that polling alone saturates a 2-CPU apiserver.
  const signedSet = new Map<string, string>();
  const verifiedSet = new Set<string>();
  // What an agent does with its certificate: publish the fingerprint in its IPsecNode's spec.
  const publish = async (csrName: string, certB64: string): Promise<void> => {
    const der = Buffer.from(Buffer.from(certB64, 'base64').toString('utf8').replace(/-----[^-]+-----|\s/g, ''), 'base64');
    const node = csrName.replace(/-csr$/, '');
    await admin.mergePatch(resourcePath(RESOURCES.ipsecNodes, { name: node }), { spec: { identity: { certFingerprint: createHash('sha256').update(der).digest('hex') } } });
  };
  // agents mode: a certificate seen on the CSR watch is published by the next free agent slot.
  const toPublish: [string, string][] = [];
  let publishing = 0; let published = 0; let firstPublishMs = 0; let lastPublishMs = 0;
  const publishNext = (): void => {
    while (publishing < PUBLISHERS && toPublish.length > 0) {
      const [csrName, cert] = toPublish.shift()!;
      publishing++;
      if (firstPublishMs === 0) firstPublishMs = Date.now();
      void pool([csrName], 1, () => publish(csrName, cert)).then(() => { published++; lastPublishMs = Date.now(); }, (e: unknown) => { console.error('publish failed', csrName, e); })
        .finally(() => { publishing--; publishNext(); });
    }
  };
  const onSigned = (csrName: string, cert: string): void => {
    if (signedSet.has(csrName)) return;
    signedSet.set(csrName, cert);
    if (PUBLISH_MODE === 'agents') { toPublish.push([csrName, cert]); publishNext(); }
  };
  const stopWatch = new AbortController();
  const follow = <T extends { metadata: { resourceVersion?: string } }>(path: string, on: (o: T) => void): void => {
    const loop = async (): Promise<void> => {
      let rv = '';
      while (!stopWatch.signal.aborted) {
        try {
          if (rv === '') {
            (await listAll<T>(admin, path, label)).forEach(on);
            rv = (await admin.get<{ metadata: { resourceVersion: string } }>(path, { labelSelector: label, limit: 1 })).metadata.resourceVersion;
          }
          // Short watches resumed from the last resourceVersion: a stalled stream costs at most 10 s.
          await admin.watch<T>(path, { labelSelector: label, resourceVersion: rv, allowWatchBookmarks: true, timeoutSeconds: 10 }, (e) => {
            if (e.type === 'ERROR') { rv = ''; return; }
            rv = e.object.metadata.resourceVersion ?? rv;
            if (e.type === 'ADDED' || e.type === 'MODIFIED') on(e.object);
          }, stopWatch.signal);
        } catch { rv = ''; }
      }
    };
    void loop();
  };
  follow<Csr>(resourcePath(RESOURCES.csrs), (c) => { if (c.status?.certificate) onSigned(c.metadata.name, c.status.certificate); });
  follow<INode>(resourcePath(RESOURCES.ipsecNodes), (x) => { if (x.status?.conditions?.some((c) => c.type === 'IdentityVerified' && c.status === 'True')) verifiedSet.add(x.metadata.name); });
  const until = async (done: () => boolean, what: () => string): Promise<void> => {
    if (process.env["KIPSEC_BENCH_DEBUG"]) console.error("waiting", what());
    const end = Date.now() + 900_000;
    while (!done()) { if (Date.now() > end) throw new Error(`timed out: ${what()}`); await new Promise((r) => setTimeout(r, 100)); }
  };

  const reqBefore = await apiserverRequests(admin);
  const nodeOptions = process.env['KIPSEC_BENCH_NODE_OPTIONS'] ?? deployNodeOptions();
  const prof = process.env['KIPSEC_BENCH_PROF'];
  const authDir = mkdtempSync('/tmp/kipsec-bench-operator-auth-');
  process.on('exit', () => rmSync(authDir, { recursive: true, force: true }));
  const child = fork(childEntry(), [await operatorKubeconfig(admin, ns, authDir), ns, label, mesh], {
    execArgv: [...(process.env['KIPSEC_BENCH_TSX'] ? ['--import', 'tsx'] : []), '--expose-gc', ...(prof ? ['--cpu-prof', `--cpu-prof-dir=${prof}`] : [])],
    env: { ...process.env, NODE_OPTIONS: nodeOptions }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const ask = (): Promise<Record<string, unknown>> => new Promise((r) => { const h = (m: { stats?: Record<string, unknown> }): void => { if (m.stats) { child.off('message', h); r(m.stats); } }; child.on('message', h); child.send({ cmd: 'stats' }); });
  const tStart = Date.now(); const loadAtStart = loadAvg();
  const apiCpu0 = apiserverCpuSec(); const benchCpu0 = process.cpuUsage();
  // KIPSEC_BENCH_TIMELINE=1: progress every 2 s on stderr (seconds since the operator's start).
  let mem = '';
  child.on('message', (m: { mem?: Record<string, number> }) => { if (m.mem) mem = Object.entries(m.mem).map(([k, v]) => `${k}=${v}`).join(' '); });
  const timeline = process.env['KIPSEC_BENCH_TIMELINE'] ? setInterval(() => {
    console.error(`t=${((Date.now() - tStart) / 1000).toFixed(0)}s signed=${signedSet.size} published=${published} verified=${verifiedSet.size} apiserverCpu=${((apiserverCpuSec() ?? 0) - (apiCpu0 ?? 0)).toFixed(1)}s operator: ${mem}`);
    child.send({ cmd: 'mem' });
  }, 2000) : undefined;
  await new Promise<void>((r) => child.on('message', (m: { ready?: boolean }) => { if (m.ready) r(); }));
  const readyMs = Date.now() - tStart;

  // (1) all CSRs signed (in agents mode the agents publish meanwhile)
  await until(() => signedSet.size >= n, () => `${signedSet.size}/${n} signed`);
  const signedMs = Date.now() - tStart;
  const apiCpuSigned = apiserverCpuSec();
  const afterSign = await ask();

  // (2) every agent published its certificate fingerprint; all IPsecNodes reconciled
  if (PUBLISH_MODE === 'after-signing') {
    firstPublishMs = Date.now();
    await pool([...signedSet.entries()], PUBLISHERS, async ([csrName, certB64]) => { await publish(csrName, certB64); published++; });
    lastPublishMs = Date.now();
  } else {
    await until(() => published >= n, () => `${published}/${n} published`);
  }
  await until(() => verifiedSet.size >= n, () => `${verifiedSet.size}/${n} IPsecNodes verified`);
  const reconciledMs = Date.now() - tStart; const loadAtReconciled = loadAvg();
  const apiCpuReconciled = apiserverCpuSec(); const benchCpu = process.cpuUsage(benchCpu0);
  clearInterval(timeline);
  const publishedEndMs = lastPublishMs - tStart;
  await new Promise((r) => setTimeout(r, 2000)); // let the batched mesh status land
  const final = await ask();
  const snapPath = process.env['KIPSEC_BENCH_HEAPSNAP'];
  if (snapPath) await new Promise<void>((r) => { child.on('message', (m: { snapped?: boolean }) => { if (m.snapped) r(); }); child.send({ cmd: 'heapsnap', path: snapPath }); });
  const reqAfter = await apiserverRequests(admin);
  stopWatch.abort();
  child.send({ cmd: 'stop' });
  await new Promise((r) => child.on('exit', r));

  // cleanup
  for (const r of [RESOURCES.csrs, RESOURCES.ipsecNodes, RESOURCES.nodes] as const) await admin.request('DELETE', resourcePath(r), { query: { labelSelector: label } }).catch(() => undefined);
  await admin.delete(resourcePath(RESOURCES.ipsecMeshes, { name: mesh })).catch(() => undefined);
  await rbacCleanup();
  await cleanupNamespace(admin, ns, tag);
  admin.close();
  const req = final['requests'] as { total: number; writes: number; byVerb: Record<string, number>; byResource: Record<string, number> };
  const perNode = (x: number): number => +(x / n).toFixed(3);
  const cpuSec = (s: Record<string, unknown>): number => ((s['cpuUserMs'] as number) + (s['cpuSystemMs'] as number)) / 1000;
  return {
    nodes: n, nodeShape: NODE_SHAPE, loadAvgAtStart: loadAtStart, loadAvgAtReconciled: loadAtReconciled, operatorStartedAt: new Date(tStart).toISOString(), setupSec: setupMs / 1000, operatorStartSec: readyMs / 1000,
    // Both from the operator's start; reconcileAfterPublishSec: from the last agent's publish to the last IdentityVerified.
    publishMode: PUBLISH_MODE, operatorNodeOptions: nodeOptions, operatorAuth: OPERATOR_AUTH,
    allSignedSec: signedMs / 1000, firstPublishSec: (firstPublishMs - tStart) / 1000, lastPublishSec: publishedEndMs / 1000, allReconciledSec: reconciledMs / 1000, reconcileAfterPublishSec: (reconciledMs - publishedEndMs) / 1000,
    operatorPeakRssMiB: Math.round(final['peakRssMiB'] as number), operatorRssMiB: Math.round(final['rssMiB'] as number), operatorHeapMiB: Math.round(final['heapUsedMiB'] as number),
    operatorHeapTotalMiB: Math.round(final['heapTotalMiB'] as number), operatorArrayBuffersMiB: Math.round(final['arrayBuffersMiB'] as number), peakRssDuringSigningMiB: Math.round(afterSign['peakRssMiB'] as number), rssAfterSigningMiB: Math.round(afterSign['rssMiB'] as number), heapAfterSigningMiB: Math.round(afterSign['heapUsedMiB'] as number),
    operatorRequests: req.total, operatorRequestsPerNode: perNode(req.total), operatorWritesPerNode: perNode(req.writes), byVerb: req.byVerb,
    // Exactly which writes: per node (CSR approval, CSR certificate, IPsecNode IdentityVerified) and
    // per run (Lease renewals, mesh status, Events), as counts.
    writes: Object.fromEntries(Object.entries(req.byResource).filter(([k]) => !k.startsWith('GET '))),
    writesPerNodeByResource: Object.fromEntries(Object.entries(req.byResource).filter(([k]) => !k.startsWith('GET ')).map(([k, v]) => [k, perNode(v)])),
    reads: Object.fromEntries(Object.entries(req.byResource).filter(([k]) => k.startsWith('GET '))),
    apiserverRequestsDuringRunPerNode: perNode(reqAfter - reqBefore),
    operatorCpuSigningSec: cpuSec(afterSign), operatorCpuSec: cpuSec(final),
    // From the operator's start to all signed / all reconciled; the bench's own CPU (watches, publishing) until reconciled.
    apiserverEtcdCpuSigningSec: apiCpu0 !== undefined && apiCpuSigned !== undefined ? +(apiCpuSigned - apiCpu0).toFixed(1) : undefined,
    apiserverEtcdCpuSec: apiCpu0 !== undefined && apiCpuReconciled !== undefined ? +(apiCpuReconciled - apiCpu0).toFixed(1) : undefined,
    benchCpuSec: +((benchCpu.user + benchCpu.system) / 1e6).toFixed(1),
    issued: final['issued'],
  };
}

const sizes = process.argv.slice(2).map(Number).filter((x) => x > 0);
for (const n of sizes.length ? sizes : [1000]) {
  const r = await run(n);
  process.stdout.write(`${JSON.stringify(r)}\n`);
}
