// bench/handshake-vs-strongswan — IKEv2 responder capacity of `kipsec agent --standalone` next to
// strongSwan's charon (Debian 5.9), same machine, same proposals, same initiator load (issue 5).
// Targets: agent ≥ 1.5× charon's handshake rate; agent RSS within 2× of charon's at 1,000 IKE SAs.
//
// What runs where, and why:
//  - Both responders install real Child SAs (XFRM states + policies + routes), so they need a
//    kernel with ESP. The host kernel of these machines has none, so the wrapper
//    `bash bench/handshake-vs-strongswan.sh` runs this file inside the kernel-lane VM (Debian's
//    kernel under QEMU TCG, e2e/kernel-vm.sh). Everything runs in there — generator, agent,
//    charon — so both responders are emulated alike; absolute rates are TCG rates (several times
//    below native), the ratios are the figures. On a machine whose kernel has ESP, run it
//    directly: `node --import tsx bench/handshake-vs-strongswan.ts` (root, strongSwan installed).
//  - Three network namespaces: `gen` (the load generator) with a veth to `agent` (198.51.100.1)
//    and one to `swan` (203.0.113.1). Initiator i sends from its own outer address 10.64.x.y
//    (a local route for 10.64.0.0/16 on gen's lo, so every address binds) and asks for a Child SA
//    between its inner 10.65.x.y/32 and the responder's 10.200.0.0/16, so each Child SA gets
//    distinct policies. Each responder has 10.200.0.1 on lo, so both install routes (table 220).
//  - One load generator process: our IKEv2 engine (src/ike IkeEngine) as initiator with an
//    in-memory KernelIpsec that only hands out SPIs, one UDP socket per initiator address. The
//    same process, peers, proposals (PSK, aes256gcm16-prfsha256-x25519 / aes256gcm16) and
//    concurrency serve both responders.
//  - Responder configs, each as its users would write it for many peers: the agent gets one
//    IPsecTunnel per initiator (remote address/id = the initiator, remote subnet = its /32;
//    the agent's schema has no %any remote), charon one connection with remote_addrs
//    10.64.0.0/16, remote id %any, remote_ts 10.65.0.0/16 narrowed to each initiator's /32, and a
//    PSK without ids. Both at their default log level (agent: info to a file; charon: level 1
//    to a file), DPD every 30 s on both, everything else at defaults (cookie threshold 10 on both;
//    the default concurrency of 8 stays below it, so no COOKIE round trips).
//
// Measurements:
//  1. Memory: on fresh responders, RSS (VmRSS; RssAnon alongside) idle with the config loaded,
//     then holding 500 and 1,000 established IKE SAs with one Child SA each, each sample after
//     20 s idle; the slope between the two is the memory per SA (the kernel's XFRM state and
//     policy counts are printed as the check that both really hold them).
//  2. Rate: handshake cycles (IKE_SA_INIT + IKE_AUTH with the Child SA, then an IKE Delete, as
//     strongSwan's load-tester does with delete_after_established) at a fixed concurrency, in
//     alternating slices (agent, charon, charon, agent, …) so machine noise hits both alike; each
//     slice fills the pipeline for a ramp before its counted window. Reported:
//     - handshakes/s of wall time. The generator shares the VM's 2 vCPUs with the responder
//       (its CPU use is printed): this is the rate the whole machine sustains with that
//       responder, so the generator's own cost dilutes the ratio.
//     - handshakes per CPU-second of the responder process (utime+stime of all its threads and
//       reaped children, from /proc): the responder's capacity, independent of how the vCPUs
//       were shared. charon is multi-threaded, the agent is one Node thread plus V8's helpers.
//  3. Instead of 1 and 2, `--burst N [--burst-first swan]`: N initiators at once against each fresh
//     responder in turn, time until all have their Child SA, give-ups, and RSS holding the N SAs
//     (bench/handshake/burst.ts).
// Figures only: nothing here asserts a timing (performance never decides pass/fail).
//
//   bash bench/handshake-vs-strongswan.sh [--rounds 4] [--slice 20] [--ramp 5] [--concurrency 8] [--sas 1000] [--warmup 10] [--rate-only] [--auth psk|cert] | [--burst 5000]
//   --auth cert: ECDSA P-256 certificates (bench/handshake/certs.ts) instead of the PSK, on every side.
//   On the host kernel, both responders on their userspace data paths (kipsec's ESP engine,
//   charon's kernel-libipsec), no VM: node --import tsx bench/handshake-vs-strongswan.ts --datapath userspace
//   (KIPSEC_BENCH_THREADS=1: per-thread CPU of each responder per slice; KIPSEC_BENCH_PROFILE=1 with
//   KVM_OUT=DIR: a V8 CPU profile of the agent in DIR; KIPSEC_BENCH_NODE_FLAGS="...": the agent's
//   Node/V8 flags instead of deploy/agent.yaml's NODE_OPTIONS, "" for none)
import { execFileSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { Netns, link } from '../e2e/lib/netns.js';
import { StrongSwan } from '../e2e/lib/strongswan.js';
import { agentBundle } from '../e2e/vm/agent-harness.js';
import { prepareVm } from '../e2e/vm/agent-vm.js';
import { runBurst } from './handshake/burst.js';
import { makeBenchCerts } from './handshake/certs.js';
import { GeneratorProcess, generatorMain } from './handshake/generator.js';
import { agentEventLoopDelay, agentMemory, agentWarnings, CLK_TCK, espProblem, pidOf, procStat, startAgent, swanctl, swanFiles, threadTicks, xfrmCounts, type EventLoopDelay, type ProcStat } from './handshake/responders.js';
import { ESP_PROPOSAL, IKE_PROPOSAL, MAX_INITIATORS, median, RESPONDER, sleep, TARGETS, type PoolReply, type RateReply, type Target } from './handshake/scenario.js';

interface Options { auth: 'psk' | 'cert'; rateOnly: boolean; rounds: number; sliceSec: number; rampSec: number; concurrency: number; sas: number; warmupSec: number; datapath: 'kernel' | 'userspace'; burst: number; burstOrder: readonly Target[] }

function options(argv: readonly string[]): Options {
  const num = (flag: string, d: number): number => {
    const i = argv.indexOf(flag);
    if (i < 0) return d;
    const v = Number(argv[i + 1]);
    if (!Number.isFinite(v) || v <= 0) throw new Error(`${flag} needs a positive number`);
    return v;
  };
  const dp = argv.includes('--datapath') ? argv[argv.indexOf('--datapath') + 1] : 'kernel';
  if (dp !== 'kernel' && dp !== 'userspace') throw new Error('--datapath must be kernel or userspace');
  const auth = argv.includes('--auth') ? argv[argv.indexOf('--auth') + 1] : 'psk';
  if (auth !== 'psk' && auth !== 'cert') throw new Error('--auth must be psk or cert');
  const burst = num('--burst', 0);
  const first = argv.includes('--burst-first') ? argv[argv.indexOf('--burst-first') + 1] : 'agent';
  if (first !== 'agent' && first !== 'swan') throw new Error('--burst-first must be agent or swan');
  const o: Options = {
    auth, rateOnly: argv.includes('--rate-only'), rounds: num('--rounds', 4), sliceSec: num('--slice', 20), rampSec: num('--ramp', 5), concurrency: num('--concurrency', 8), sas: burst > 0 ? burst : num('--sas', 1000), warmupSec: num('--warmup', 10), datapath: dp,
    burst, burstOrder: first === 'agent' ? TARGETS : [...TARGETS].reverse(),
  };
  if (o.sas > MAX_INITIATORS) throw new Error(`--sas and --burst at most ${MAX_INITIATORS}`);
  return o;
}

const lines: string[] = [];
function out(line = ''): void {
  console.log(line);
  lines.push(line);
  if (process.env['VM_OUT']) { mkdirSync(process.env['VM_OUT'], { recursive: true }); writeFileSync(join(process.env['VM_OUT'], 'handshake-vs-strongswan.txt'), lines.join('\n') + '\n'); }
}
const loadavg = (): string => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
const mb = (kb: number): string => (kb / 1024).toFixed(1);


async function driverMain(o: Options): Promise<void> {
  prepareVm();
  const t0 = Date.now();
  const stamp = (): string => `${((Date.now() - t0) / 1000).toFixed(0)}s`;
  if (!StrongSwan.available()) throw new Error('strongSwan is not installed (charon + swanctl)');
  out(`bench/handshake-vs-strongswan: kernel ${execFileSync('uname', ['-r']).toString().trim()}${process.env['KIPSEC_IN_VM'] ? ' (kernel-lane VM, QEMU TCG)' : ''}, node ${process.version}, ${cpus().length} CPUs, load ${loadavg()}`);
  out(`  data paths: ${o.datapath === 'userspace' ? 'userspace (kipsec ESP engine vs charon kernel-libipsec)' : 'kernel XFRM on both'}`);
  const authText = o.auth === 'cert' ? 'ECDSA P-256 certificates (one CA, one per initiator; SHA-256 signatures)' : 'PSK';
  out(o.burst > 0
    ? `  ${authText}, IKE ${IKE_PROPOSAL}, ESP ${ESP_PROPOSAL}; burst: ${o.burst} initiators at once per responder`
    : `  ${authText}, IKE ${IKE_PROPOSAL}, ESP ${ESP_PROPOSAL}; ${o.sas} initiators; concurrency ${o.concurrency}; ${o.rounds} rounds × (${o.rampSec} s ramp + ${o.sliceSec} s window) per responder`);

  const certs = o.auth === 'cert' ? makeBenchCerts(o.sas) : undefined;
  const gen = await Netns.create(null, 'gen');
  const nsA = await Netns.create(null, 'agent');
  const nsS = await Netns.create(null, 'swan');
  const killed: ChildProcess[] = [];
  // Interrupted: kill what runs in the namespaces (by pid, Netns.destroy) and remove them.
  const cleanup = async (): Promise<void> => {
    for (const c of killed) if (c.pid && c.exitCode === null) { try { process.kill(c.pid, 'SIGKILL'); } catch { /* gone */ } }
    for (const ns of [gen, nsA, nsS]) await ns.destroy();
    if (certs) rmSync(certs, { recursive: true, force: true });
  };
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => { void cleanup().finally(() => process.exit(130)); });
  let agentRef: { dir: string; child: ChildProcess } | undefined;
  let swanRef: StrongSwan | undefined;
  // Both responders' logs go to $VM_OUT (the wrapper's KVM_OUT on the host), kept for a look after the run.
  const saveLogs = (): void => {
    const dir = process.env['VM_OUT'];
    if (!dir) return;
    mkdirSync(dir, { recursive: true });
    if (agentRef) { try { copyFileSync(join(agentRef.dir, 'agent.log'), join(dir, 'agent.log')); } catch { /* none */ } }
    if (swanRef) { try { copyFileSync(join(swanRef.dir, 'charon.log'), join(dir, 'charon.log')); } catch { /* none */ } }
  };
  try {
    const esp = o.datapath === 'kernel' ? await espProblem(nsA) : null;
    if (esp !== null) throw new Error(`this kernel takes no ESP state (${esp}); run \`bash bench/handshake-vs-strongswan.sh\` (the kernel-lane VM)`);
    for (const [t, ns] of [['agent', nsA], ['swan', nsS]] as const) {
      const r = RESPONDER[t];
      await link(gen, `${r.gen}/24`, ns, `${r.address}/24`, r.dev, 'eth0');
      await ns.run('ip', ['route', 'add', '10.64.0.0/16', 'via', r.gen]);
      await ns.run('ip', ['route', 'add', '10.65.0.0/16', 'via', r.gen]);
      await ns.run('ip', ['addr', 'add', '10.200.0.1/32', 'dev', 'lo']);
    }
    // Every 10.64.x.y is local in `gen` (AnyIP), so each initiator binds its own address.
    await gen.run('ip', ['route', 'add', 'local', '10.64.0.0/16', 'dev', 'lo']);

    out(`[${stamp()}] starting charon and the agent (${o.sas} tunnels)`);
    // Userspace data paths on both sides: kipsec's ESP engine, charon's kernel-libipsec.
    const swan = await StrongSwan.start(null, nsS, { mode: o.datapath === 'userspace' ? 'libipsec' : 'kernel', swanctl: swanctl(certs), ...(certs ? { files: swanFiles(certs) } : {}), logLevels: { ike: 1, cfg: 1 } });
    swanRef = swan;
    const swanPid = pidOf(nsS, 'charon');
    const agent = await startAgent(nsA, o.sas, 600_000, o.datapath, certs);
    agentRef = agent;
    killed.push(agent.child);
    const pids: Record<Target, number> = { agent: agent.pid, swan: swanPid };
    out(`[${stamp()}] responders up (agent pid ${agent.pid}, charon pid ${swanPid}); starting the load generator`);
    const g = new GeneratorProcess(gen, o.sas, certs);
    await g.ready(600_000);
    // A burst's per-SA memory is measured from this sample: 20 s idle, as after the burst, so the
    // agent's startup garbage (5,000 tunnels parsed) is collected first (3 s read 189 MiB, 20 s 97).
    await sleep(o.burst > 0 ? 20_000 : 3_000);
    const idle = { agent: procStat(pids.agent), swan: procStat(pids.swan) };

    if (o.burst > 0) {
      const agentStatus = async (): Promise<unknown> => {
        const t = Date.now();
        const st = JSON.parse(execFileSync(process.execPath, [agentBundle(), 'status', '--json', '--control-socket', join(agent.dir, 'agent.sock')], { timeout: 180_000, maxBuffer: 256 << 20 }).toString()) as unknown;
        out(`    (kipsec status --json took ${((Date.now() - t) / 1000).toFixed(1)} s)`);
        return st;
      };
      await runBurst({ g, n: o.burst, order: o.burstOrder, pids, ns: { agent: nsA, swan: nsS }, idle, out, stamp, agentStatus, agentMemory: () => agentMemory(agent.pid, agent.dir) });
    } else {
      // ── 1. handshake rate, interleaved slices (first: a responder that fails at 1,000 SAs
      //    must not cost this figure) ──
      for (const t of TARGETS) await g.send<RateReply>({ cmd: 'rate', target: t, rampMs: 0, ms: o.warmupSec * 1000, concurrency: o.concurrency }, 600_000);
      const acc: Record<Target, { inWindow: number; total: number; failed: number; windowMs: number; cpuTicks: number; genCpuMs: number; elapsedMs: number; medians: number[]; perRound: number[]; perRoundCpu: number[] }> = {
        agent: { inWindow: 0, total: 0, failed: 0, windowMs: 0, cpuTicks: 0, genCpuMs: 0, elapsedMs: 0, medians: [], perRound: [], perRoundCpu: [] },
        swan: { inWindow: 0, total: 0, failed: 0, windowMs: 0, cpuTicks: 0, genCpuMs: 0, elapsedMs: 0, medians: [], perRound: [], perRoundCpu: [] },
      };
      const loads: string[] = [loadavg()];
      const eld: EventLoopDelay[] = [];
      for (let round = 0; round < o.rounds; round++) {
        const order: readonly Target[] = round % 2 === 0 ? TARGETS : [...TARGETS].reverse();
        for (const t of order) {
          if (t === 'agent') await agentEventLoopDelay(pids.agent, agent.dir); // a fresh histogram for this slice
          const before = procStat(pids[t]);
          const threadsBefore = process.env['KIPSEC_BENCH_THREADS'] ? threadTicks(pids[t]) : undefined;
          const r = await g.send<RateReply>({ cmd: 'rate', target: t, rampMs: o.rampSec * 1000, ms: o.sliceSec * 1000, concurrency: o.concurrency }, (o.rampSec + o.sliceSec) * 1000 + 600_000);
          const after = procStat(pids[t]);
          const ticks = after.cpuTicks - before.cpuTicks;
          if (t === 'agent') {
            const d = await agentEventLoopDelay(pids.agent, agent.dir);
            if (d) eld.push(d);
            out(`    agent event-loop delay in the slice: p50 ${d?.p50.toFixed(1) ?? '?'} ms, p99 ${d?.p99.toFixed(1) ?? '?'} ms, max ${d?.max.toFixed(1) ?? '?'} ms`);
          }
          if (threadsBefore) {
            const busy = [...threadTicks(pids[t])].map(([k, v]) => [k, v - (threadsBefore.get(k) ?? 0)] as const).filter(([, v]) => v > 0).sort((a, b) => b[1] - a[1]);
            out(`    ${t} threads (CPU s): ${busy.slice(0, 8).map(([k, v]) => `${k} ${(v / CLK_TCK).toFixed(1)}`).join(', ')}`);
          }
          const a = acc[t];
          a.inWindow += r.inWindow; a.total += r.total; a.failed += r.failed; a.windowMs += r.windowMs; a.cpuTicks += ticks; a.genCpuMs += r.cpuMs; a.elapsedMs += r.elapsedMs;
          a.medians.push(r.medianMs); a.perRound.push(r.inWindow / (r.windowMs / 1000)); a.perRoundCpu.push(r.total / Math.max(1e-9, ticks / CLK_TCK));
          out(`[${stamp()}] round ${round + 1} ${t.padEnd(5)}: ${(r.inWindow / (r.windowMs / 1000)).toFixed(1).padStart(7)} hs/s, ${r.total} cycles, responder CPU ${(ticks / CLK_TCK).toFixed(1)} s (child processes ${((after.childTicks - before.childTicks) / CLK_TCK).toFixed(1)} s), generator CPU ${(r.cpuMs / 1000).toFixed(1)} s, median ${r.medianMs.toFixed(0)} ms, ${r.failed} failed, load ${loadavg()}`);
        }
        loads.push(loadavg());
      }

      const rate = (t: Target): number => acc[t].inWindow / (acc[t].windowMs / 1000);
      const perCpu = (t: Target): number => acc[t].total / Math.max(1e-9, acc[t].cpuTicks / CLK_TCK);
      const util = (t: Target): number => (acc[t].cpuTicks / CLK_TCK) / (acc[t].elapsedMs / 1000);
      const roundRatios = acc.agent.perRound.map((x, i) => x / (acc.swan.perRound[i] ?? NaN));
      out('');
      out(`handshake rate (cycles: IKE_SA_INIT + IKE_AUTH with Child SA, then Delete; ${o.rounds} × ${o.sliceSec} s per responder)`);
      out(`  ${'responder'.padEnd(22)}${'hs/s (wall)'.padStart(12)}${'hs/CPU-s'.padStart(10)}${'CPU used'.padStart(10)}${'gen CPU'.padStart(9)}${'median ms'.padStart(11)}${'failed'.padStart(8)}`);
      for (const t of TARGETS) {
        const label = t === 'agent' ? 'kipsec agent' : 'strongSwan charon 5.9';
        out(`  ${label.padEnd(22)}${rate(t).toFixed(1).padStart(12)}${perCpu(t).toFixed(1).padStart(10)}${`${(util(t) * 100).toFixed(0)}%`.padStart(10)}${`${((acc[t].genCpuMs / acc[t].elapsedMs) * 100).toFixed(0)}%`.padStart(9)}${median(acc[t].medians).toFixed(0).padStart(11)}${String(acc[t].failed).padStart(8)}`);
      }
      const ratio = rate('agent') / rate('swan'); const ratioCpu = perCpu('agent') / perCpu('swan');
      out(`  agent / charon: ${ratio.toFixed(2)}× wall rate (rounds: ${roundRatios.map((x) => x.toFixed(2)).join(' ')}), ${ratioCpu.toFixed(2)}× per responder CPU-second; target ≥ 1.5×: ${ratio >= 1.5 ? 'met' : 'NOT met'} (wall), ${ratioCpu >= 1.5 ? 'met' : 'NOT met'} (per CPU-s)`);
      out('  ("CPU used": responder CPU seconds per wall second of its slices, 100% = one vCPU; "gen CPU": the same for the load generator)');
      if (eld.length > 0) {
        out(`  agent event-loop delay under load (KIPSEC_IKE_CRYPTO_WORKERS=${process.env['KIPSEC_IKE_CRYPTO_WORKERS'] ?? 'unset: one per core'}), per slice: p50 ${median(eld.map((d) => d.p50)).toFixed(1)} ms (median of slices), p99 ${median(eld.map((d) => d.p99)).toFixed(1)} ms (median), worst p99 ${Math.max(...eld.map((d) => d.p99)).toFixed(1)} ms, max ${Math.max(...eld.map((d) => d.max)).toFixed(1)} ms`);
      }
      out('');
      if (!o.rateOnly) await memory();
      out(`load average (guest) during the rate rounds: ${loads.join(' | ')}; total ${stamp()}`);
    }
    async function memory(): Promise<void> {
      // ── 2. memory at N established IKE SAs ──
      // Sampled at N/2 and at N SAs, each after 20 s idle (as a daemon holding its SAs mostly is:
      // V8's memory reducer and glibc's trim get the same chance on both sides), with the CPU each
      // responder used in that idle window (DPD every 30 s, timers). The slope between the two
      // samples is the cost per SA; the idle sample (before any SA) also holds startup garbage.
      const half: Record<Target, ProcStat> = { ...idle };
      const held: Record<Target, ProcStat> = { ...idle };
      const xfrm: Record<Target, { states: number; policies: number }> = { agent: { states: 0, policies: 0 }, swan: { states: 0, policies: 0 } };
      const mid = Math.floor(o.sas / 2);
      for (const t of TARGETS) {
        for (const [from, to] of [[0, mid], [mid, o.sas]] as const) {
          const r = await g.send<PoolReply>({ cmd: 'establish', target: t, from, to, concurrency: o.concurrency, timeoutMs: 3_000_000 }, 3_100_000);
          out(`[${stamp()}] ${t}: IKE SAs ${from}..${to - 1}: ${r.done} established in ${(r.elapsedMs / 1000).toFixed(1)} s (${(r.done / (r.elapsedMs / 1000)).toFixed(1)}/s), ${r.failed} failed${r.firstError ? ` (first: ${r.firstError})` : ''}`);
          const before = procStat(pids[t]);
          await sleep(20_000);
          const now = procStat(pids[t]);
          if (to === mid) half[t] = now; else held[t] = now;
          out(`    ${t} holding ${to} SAs: RSS ${mb(now.rssKb)} MiB, CPU while idle 20 s: ${(((now.cpuTicks - before.cpuTicks) / CLK_TCK / 20) * 100).toFixed(0)}% of a vCPU`);
        }
        xfrm[t] = await xfrmCounts(t === 'agent' ? nsA : nsS);
      }
      out(`memory (VmRSS) of the responder process`);
      out(`  ${'responder'.padEnd(22)}${'idle MiB'.padStart(10)}${`${mid} SAs`.padStart(10)}${`${o.sas} SAs`.padStart(10)}${'KiB/SA'.padStart(9)}${'peak MiB'.padStart(10)}${'anon MiB (idle/half/full)'.padStart(27)}${'XFRM states/policies'.padStart(22)}`);
      const perSa = (t: Target): number => (held[t].rssKb - half[t].rssKb) / Math.max(1, o.sas - mid);
      for (const t of TARGETS) {
        const label = t === 'agent' ? 'kipsec agent' : 'strongSwan charon 5.9';
        out(`  ${label.padEnd(22)}${mb(idle[t].rssKb).padStart(10)}${mb(half[t].rssKb).padStart(10)}${mb(held[t].rssKb).padStart(10)}${perSa(t).toFixed(1).padStart(9)}${mb(held[t].hwmKb).padStart(10)}${`${mb(idle[t].anonKb)}/${mb(half[t].anonKb)}/${mb(held[t].anonKb)}`.padStart(27)}${`${xfrm[t].states}/${xfrm[t].policies}`.padStart(22)}`);
      }
      const memRatio = held.agent.rssKb / held.swan.rssKb;
      out(`  agent / charon at ${o.sas} SAs: ${memRatio.toFixed(2)}× RSS (target ≤ 1.5× at 5,000: ${memRatio <= 1.5 ? 'met' : 'NOT met'}); per SA (slope ${mid}→${o.sas}): ${(perSa('agent') / Math.max(0.1, perSa('swan'))).toFixed(2)}×`);
      out('  ("KiB/SA": RSS growth from the half to the full sample per added SA; "anon": RssAnon, private memory without mapped binaries and libraries; "peak": VmHWM)');
      out('');
    }
    out(agentWarnings(join(agent.dir, 'agent.log')));
    await g.send({ cmd: 'exit' }, 30_000).catch(() => undefined);
    saveLogs();
    await swan.stop();
    // SIGTERM, so the agent exits cleanly (and writes its CPU profile when asked to).
    try { process.kill(agent.pid, 'SIGTERM'); } catch { /* killed after its burst */ }
    for (let i = 0; i < 600 && agent.child.exitCode === null && agent.child.signalCode === null; i++) await sleep(100);
  } catch (e) {
    // A responder that died is a finding: say how, with the end of its log and any OOM kill.
    const c = agentRef?.child;
    if (agentRef && c && (c.exitCode !== null || c.signalCode !== null)) {
      out(`agent exited (${c.exitCode ?? c.signalCode}) during the run; the end of its log:`);
      try { out(readFileSync(join(agentRef.dir, 'agent.log'), 'utf8').split('\n').slice(-40).join('\n')); } catch { /* none */ }
      try { out(execFileSync('dmesg').toString().split('\n').filter((l) => /oom|killed process/i.test(l)).slice(-5).join('\n') || '(no OOM kill in dmesg)'); } catch { /* none */ }
    }
    saveLogs();
    throw e;
  } finally {
    await cleanup();
  }
}

if (process.argv.includes('--generator')) {
  const n = Number(process.argv[process.argv.indexOf('--generator') + 1]);
  await generatorMain(n, process.argv.includes('--certs') ? process.argv[process.argv.indexOf('--certs') + 1] : undefined);
} else {
  await driverMain(options(process.argv.slice(2))).then(() => process.exit(0), (e: unknown) => { console.error(e); process.exit(1); });
}
