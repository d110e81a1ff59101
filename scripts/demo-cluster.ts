// The README's demo: kipsec in a cluster. A real kube-apiserver + etcd, kipsec installed from
// deploy/ (CRDs, RBAC, admission policy), the operator, and three nodes with two pods each — the
// nodes network namespaces on one bridge (the wire), each running `kipsec agent --node-name` as
// the DaemonSet does. It shows pods pinging across nodes, a capture of the wire holding ESP only,
// `kubectl get ipsecnodes` and `kipsec status`.
//
// The nodes need a kernel with ESP, which these machines lack, so the demo starts the apiserver
// here (e2e/apiserver.sh) and always runs the cluster inside the kernel VM (e2e/kernel-vm.sh: Debian's
// kernel), whose only network is an isolated QEMU link to that apiserver — the cluster lane's
// setup, so the demo and the lane cannot drift apart. Everything it creates is removed at the end.
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoPath } from '../test/lib/paths.js';

const say = (s: string): void => { process.stdout.write(`${s}\n`); };

function hostSide(): number {
  say('demo: starting kube-apiserver + etcd on this machine (e2e/apiserver.sh; the first run builds them from the Go module proxy, ~6 min)…');
  const dir = mkdtempSync(join(tmpdir(), 'kipsec-demo-apiserver-'));
  const env = { ...process.env, KIPSEC_APISERVER_DIR: dir };
  const start = spawnSync('bash', [repoPath('e2e/apiserver.sh'), 'start'], { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 1_800_000 });
  const adminKc = start.stdout.trim().split('\n').pop() ?? '';
  if (start.status !== 0 || !adminKc) { say('demo: the apiserver did not start'); return 1; }
  try {
    const port = readFileSync(join(dir, 'port'), 'utf8').trim();
    const kc = join(dir, 'guest.kubeconfig');
    writeFileSync(kc, readFileSync(adminKc, 'utf8').replace(/server: https:\/\/127\.0\.0\.1:\d+/, 'server: https://127.0.0.1:6443'));
    say('demo: the cluster runs inside the kernel VM (Debian\'s kernel with ESP, under QEMU: ~30 s boot, everything slower inside)…');
    const script = join(dir, 'demo-in-vm.sh');
    writeFileSync(script, `exec node --import tsx scripts/demo-cluster.ts --in-vm\n`);
    const r = spawnSync('bash', [repoPath('e2e/kernel-vm.sh'), repoPath('e2e/cluster-inside.sh'), script], {
      cwd: repoPath(), stdio: 'inherit', timeout: 1_800_000,
      // Single-threaded TCG, as the cluster lane runs it (scripts/run-lanes.mjs says why).
      env: { ...env, KIPSEC_KUBECONFIG: kc, KVM_TIMEOUT: '1500', KVM_ACCEL: 'tcg,thread=single', KVM_NIC: `user,model=virtio-net-pci,restrict=on,guestfwd=tcp:10.0.2.100:6443-cmd:socat - TCP:127.0.0.1:${port}` },
    });
    return r.status ?? 1;
  } finally {
    spawnSync('bash', [repoPath('e2e/apiserver.sh'), 'stop'], { env, stdio: 'ignore' });
  }
}

function sh(cmd: string, args: readonly string[]): Promise<string> {
  return new Promise((resolve) => { execFile(cmd, args, { encoding: 'utf8', timeout: 120_000, maxBuffer: 16 << 20, cwd: repoPath() }, (err, stdout, stderr) => resolve(err ? `${stdout}${stderr}` : stdout)); });
}

async function inVm(): Promise<number> {
  // Loaded only here: these need the VM's kernel and the lane's apiserver bridge.
  const { startMeshLane } = await import('../e2e/lib/mesh-lane.js');
  const { podCidrsOf } = await import('../e2e/lib/cluster-net.js');
  const { WireCapture, classifyPcapFile, formatReport } = await import('../e2e/lib/capture.js');
  const { pingMatrix } = await import('../e2e/lib/traffic.js');
  const { laneBin } = await import('../e2e/lib/lane-kube.js');
  const { agentBundle } = await import('../e2e/vm/agent-harness.js');
  const scope: { fns: (() => unknown)[]; after(fn: () => unknown): void } = { fns: [], after(fn) { this.fns.push(fn); } };
  try {
    say(`demo: kernel ${execFileSync('uname', ['-r']).toString().trim()} with ESP; installing kipsec from deploy/ (CRDs, RBAC, admission policy)`);
    const lane = await startMeshLane(scope, { nodes: 3, overlay: 'none', mesh: {}, label: 'demo' });
    const c = lane.cluster;
    for (const n of c.nodes) say(`demo: ${n.name}: ${n.ip} on the wire, pod CIDR ${n.podCidr}, pods ${n.pods.map((p) => p.ip).join(' ')}`);
    say('demo: starting the operator (deploy/operator.yaml: its CA signs the nodes\' certificates)');
    await lane.startOperator();
    say('demo: kubectl apply IPsecMesh default: {}   (defaults: AES-GCM-256, X25519, strict mode)');
    await lane.applyMesh({});
    say('demo: starting kipsec agent on every node (deploy/agent.yaml: root with NET_ADMIN, pod-bound token)');
    const t0 = Date.now();
    for (const n of c.nodes) await lane.startAgent(n);
    await lane.waitAllUp(300_000);
    say(`demo: every node pair encrypted ${((Date.now() - t0) / 1000).toFixed(1)} s after the agents started\n`);
    const kubectl = laneBin('kubectl'); const kc = process.env['KIPSEC_KUBECONFIG']!;
    say('$ kubectl get ipsecnodes');
    say((await sh(kubectl, ['--kubeconfig', kc, 'get', 'ipsecnodes'])).trimEnd());
    say('\n$ kubectl get ipsecmesh');
    say((await sh(kubectl, ['--kubeconfig', kc, 'get', 'ipsecmesh'])).trimEnd());

    say('\ndemo: every pod pings every pod on the other nodes, while tcpdump records the wire');
    const cap = await WireCapture.start(scope, c.wire);
    const pings = await pingMatrix(c, { count: 3, intervalMs: 200, timeoutMs: 90_000 });
    const stats = await cap.stop();
    for (const p of pings) say(`  ${p.from.node}/${p.from.ip} -> ${p.to.node}/${p.to.ip}: ${p.received}/${p.sent} replies`);
    const report = classifyPcapFile(stats.file, { podCidrs: podCidrsOf(c) });
    say('\n$ tcpdump -r wire.pcap -nn | head   (what the wire saw)');
    say((await sh('tcpdump', ['-r', stats.file, '-nn', '-c', '8'])).split('\n').filter((l) => l && !l.startsWith('reading')).map((l) => `  ${l}`).join('\n'));
    say(`  … ${formatReport(report)}`);

    const a = c.nodes[0]!;
    say(`\n$ kipsec status   (on ${a.name}, through its control socket)`);
    say((await sh(process.execPath, [agentBundle(), 'status', '--control-socket', lane.controlSocket(a)])).trimEnd());
    say('\n$ kipsec status --kubeconfig …   (the whole mesh, from the IPsecNode statuses)');
    say((await sh(process.execPath, [agentBundle(), 'status', '--kubeconfig', kc])).trimEnd());

    const lost = pings.filter((p) => p.received !== p.sent).length;
    const ok = lost === 0 && report.plaintextBetweenPods === 0 && report.esp > 0 && stats.complete;
    say(`\ndemo: ${ok ? 'OK' : 'FAILED'}: ${pings.length - lost}/${pings.length} pod pairs answered; ${report.esp} ESP packets and ${report.plaintextBetweenPods} plaintext packets between pod CIDRs on the wire`);
    return ok ? 0 : 1;
  } finally {
    for (const fn of scope.fns.reverse()) { try { await fn(); } catch { /* best effort */ } }
  }
}

async function main(): Promise<number> {
  if (process.getuid?.() !== 0) { say('demo: needs root (network namespaces, XFRM)'); return 1; }
  return process.argv.includes('--in-vm') ? inVm() : hostSide();
}

let code = 1;
try { code = await main(); } catch (e) { say(`demo: ${e instanceof Error ? e.stack ?? e.message : String(e)}`); }
process.exit(code);
