// Netns lane (host kernel): the real `kipsec agent` as a responder under an IKE_SA_INIT flood
// from 320 source addresses (docs/SECURITY.md §3: cookieThreshold 10 half-open SAs,
// halfOpenPerAddress 5, halfOpenLimit 1,000, halfOpenTimeoutMs 30 s).
//
//   legit (192.0.2.14) ── eth1 ─┐
//                               victim: kipsec agent, IKE on 192.0.2.1 (lo)
//   flooder (320 aliases on lo) ── eth0 ─┘   routes only between these namespaces
//
// The victim has a tunnel (startAction respond) for each of 300 flood addresses, because an
// IKE_SA_INIT from an address no tunnel names is dropped as `no-peer-config` before any limit
// (SECURITY.md §2a): the flood plays an attacker who spoofs configured peers. 20 more addresses
// are configured nowhere and must get no answer at all. 60 of the 300 answer each COOKIE to take
// half-open slots (60 × 5 stays below halfOpenLimit; with all 300 answering, the 1,000 slots fill
// and every IKE_SA_INIT is dropped before the COOKIE check until they time out — SECURITY.md §6,
// Known gaps: measured once, the legitimate peer then got in on its 4th retransmission, 47.7 s
// after its first try, only because the flood had stopped). During the flood a second agent (the
// legitimate peer) starts and initiates.
// Asserted: the flood reached the agent, COOKIEs were demanded and stopped once the half-open
// SAs timed out, no address got more than 5 half-open SAs, the legitimate IKE SA came up before
// its first retransmission, and the agent's peak memory stayed bounded.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Netns, link } from '../lib/netns.js';
import { AgentProcess, tunnelYaml } from '../vm/agent-harness.js';
import { repoPath } from '../../test/lib/paths.js';
import type { FloodPlan, FloodReport } from '../lib/ike-flood.js';
import type { AgentStatus } from '../../src/agent/status.js';
import { COOKIE_THRESHOLD, HALF_OPEN_LIMIT, HALF_OPEN_PER_ADDRESS, HALF_OPEN_TIMEOUT_MS, RETRANSMIT_BASE, RETRANSMIT_TIMEOUT_MS, RETRANSMIT_TRIES } from '../../src/ike/sa/defaults.js';

const PSK = 'kipsec e2e: flood test pre-shared key';
const PROPOSAL = 'aes256gcm16-prfsha384-x25519';
const VICTIM = '192.0.2.1';
const LEGIT = '192.0.2.14';

const range = (prefix: string, from: number, to: number): string[] => Array.from({ length: to - from + 1 }, (_, i) => `${prefix}${from + i}`);
/** 300 configured flood sources and 20 that no tunnel names (documentation ranges, RFC 5737). */
const CONFIGURED = [...range('198.51.100.', 1, 200), ...range('203.0.113.', 1, 100)];
const UNCONFIGURED = range('203.0.113.', 201, 220);
/** Every fifth configured source answers COOKIEs: 60 × 5 = 300 half-open at most, below halfOpenLimit. */
const COOKIE_ANSWERERS = CONFIGURED.filter((_, i) => i % 5 === 0);

/**
 * 2,000 new IKE_SA_INIT/s for 12 s (24,000 requests, 75 per address), against a threshold of 10
 * half-open SAs that live 30 s; shorter than that timeout, so every half-open SA the flood obtained
 * is still held when it ends.
 */
const RATE = 2_000;
const FLOOD_MS = 12_000;

/** One IKE_SA_INIT retransmission schedule: the gaps before each retransmit (4 s × 1.8ⁿ). */
const SCHEDULE_MS = Array.from({ length: RETRANSMIT_TRIES + 1 }, (_, n) => Math.round(RETRANSMIT_TIMEOUT_MS * RETRANSMIT_BASE ** n));

/** VmRSS and VmHWM of a process, in KiB (/proc/<pid>/status). */
function memory(pid: number): { rss: number; hwm: number } {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? NaN);
  return { rss: kib('VmRSS'), hwm: kib('VmHWM') };
}
const mib = (kib: number): string => `${(kib / 1024).toFixed(1)} MiB`;

/** User + system CPU seconds of a process (/proc/<pid>/stat fields 14 and 15, at USER_HZ = 100). */
function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

function victimConfig(): string {
  const flood = CONFIGURED.map((remote, i) => tunnelYaml({
    name: `f${i}`, local: VICTIM, remote, localSubnets: ['10.1.0.0/24'], remoteSubnets: [`10.${100 + (i >> 8)}.${i & 255}.0/24`], ike: [PROPOSAL], startAction: 'respond',
  }));
  const legit = tunnelYaml({ name: 'legit', local: VICTIM, remote: LEGIT, localSubnets: ['10.1.0.0/24'], remoteSubnets: ['10.2.0.0/24'], ike: [PROPOSAL], startAction: 'respond' });
  return [...flood, legit].join('---\n');
}

test('IKE_SA_INIT flood from 320 addresses: COOKIEs on then off, at most 5 half-open per address, a legitimate peer connects, memory bounded', { timeout: 150_000 }, async (t) => {
  const victim = await Netns.create(t, 'fvictim');
  const flooder = await Netns.create(t, 'fflood');
  const legitNs = await Netns.create(t, 'flegit');
  await victim.run('ip', ['addr', 'add', `${VICTIM}/32`, 'dev', 'lo']);
  await link(victim, '192.0.2.9/30', flooder, '192.0.2.10/30');
  await link(victim, '192.0.2.13/30', legitNs, `${LEGIT}/30`, 'eth1', 'eth0');
  await victim.run('ip', ['-batch', '-'], { input: 'route add 198.51.100.0/24 via 192.0.2.10\nroute add 203.0.113.0/24 via 192.0.2.10\n' });
  await flooder.run('ip', ['-batch', '-'], { input: `${[...CONFIGURED, ...UNCONFIGURED].map((a) => `addr add ${a}/32 dev lo`).join('\n')}\nroute add ${VICTIM}/32 via 192.0.2.9\n` });
  await legitNs.run('ip', ['route', 'add', `${VICTIM}/32`, 'via', '192.0.2.13']);

  // info, not debug: at debug the agent logs every datagram, and the test would hold the flood's log.
  const agent = await AgentProcess.start(t, victim, { config: victimConfig(), files: { psk: `${PSK}\n` }, logLevel: 'info' });
  const pid = agent.pid!;
  await new Promise((r) => setTimeout(r, 1_000));
  const before = memory(pid);
  const s0 = await agent.status();
  assert.equal(s0.tunnels.length, CONFIGURED.length + 1);
  assert.equal(s0.ike?.cookiesActive, false, 'no COOKIEs before the flood');
  t.diagnostic(`victim agent pid ${pid}, ${s0.tunnels.length} tunnels; before the flood: VmRSS ${mib(before.rss)}, VmHWM ${mib(before.hwm)}`);

  // Watch the agent through its control socket (the same answer as `kipsec status --json`) and /proc while the flood runs.
  const seen = { polls: 0, maxHalfOpen: 0, cookiesOnAt: 0, maxRss: before.rss, last: s0 as AgentStatus, rssEvery4s: [] as string[] };
  let watching = true;
  const cpu0 = cpuSeconds(pid);
  const floodStart = Date.now();
  const watcher = (async () => {
    const deadline = floodStart + 90_000;
    while (watching && Date.now() < deadline) {
      const s = await agent.status().catch(() => undefined);
      if (s?.ike) {
        seen.polls++; seen.last = s;
        seen.maxHalfOpen = Math.max(seen.maxHalfOpen, s.ike.halfOpen);
        if (s.ike.cookiesActive && seen.cookiesOnAt === 0) seen.cookiesOnAt = Date.now();
      }
      const rss = memory(pid).rss;
      seen.maxRss = Math.max(seen.maxRss, rss);
      const at = Math.floor((Date.now() - floodStart) / 4_000) * 4;
      if (seen.rssEvery4s.length <= at / 4) seen.rssEvery4s.push(`${at}s ${mib(rss)}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  })();
  t.after(() => { watching = false; });

  const plan: FloodPlan = {
    target: VICTIM, port: 500, sources: [...CONFIGURED, ...UNCONFIGURED], answerCookies: COOKIE_ANSWERERS,
    rate: RATE, durationMs: FLOOD_MS, maxRequests: RATE * FLOOD_MS / 1000, proposal: PROPOSAL, drainMs: 1_000,
  };
  const floodProc = flooder.spawn(process.execPath, ['--import', 'tsx', repoPath('e2e/lib/ike-flood.ts'), JSON.stringify(plan)], { cwd: repoPath() });
  let floodOut = ''; let floodErr = '';
  floodProc.stdout?.on('data', (d: Buffer) => { floodOut += d.toString(); });
  floodProc.stderr?.on('data', (d: Buffer) => { floodErr += d.toString(); });
  const floodExit = new Promise<number | null>((r) => floodProc.on('exit', (code) => r(code)));

  // The legitimate peer starts once the agent demands COOKIEs, so its IKE_SA_INIT meets the flood.
  const onDeadline = Date.now() + 20_000;
  while (seen.cookiesOnAt === 0 && Date.now() < onDeadline && floodProc.exitCode === null) await new Promise((r) => setTimeout(r, 100));
  assert.ok(seen.cookiesOnAt > 0, `COOKIEs never switched on; last status ${JSON.stringify(seen.last.ike)}; flooder stderr: ${floodErr}`);
  const legitCfg = tunnelYaml({ name: 'victim', local: LEGIT, remote: VICTIM, localSubnets: ['10.2.0.0/24'], remoteSubnets: ['10.1.0.0/24'], ike: [PROPOSAL], startAction: 'initiate' });
  const legitStart = Date.now();
  const legit = await AgentProcess.start(t, legitNs, { config: legitCfg, files: { psk: `${PSK}\n` } });
  const up = await legit.waitFor('victim', (x) => x.ikeState === 'established', 30_000, 'IKE SA established');
  const legitWallMs = Date.now() - legitStart;
  const floodRunning = floodProc.exitCode === null;
  const upLine = legit.log().split('\n').find((l) => l.includes('"msg":"IKE SA established"')) ?? '';
  const handshakeMs = Number(/"handshakeMs":(\d+)/.exec(upLine)?.[1] ?? NaN);
  // Our datagrams to the victim up to the establishment: 2 IKE_SA_INIT (plain, then with the COOKIE) and 1 IKE_AUTH, more if any was retransmitted.
  const upAt = legit.log().indexOf('"msg":"IKE SA established"');
  const out = [...legit.log().slice(0, upAt).matchAll(/"remote":"192\.0\.2\.1:500","bytes":(\d+),"msg":"datagram out"/g)].map((m) => Number(m[1]));
  const inn = [...legit.log().slice(0, upAt).matchAll(/"remote":"192\.0\.2\.1:500","bytes":(\d+),"msg":"datagram in"/g)].map((m) => Number(m[1]));
  t.diagnostic(`legitimate peer: IKE SA established ${handshakeMs} ms after its first IKE_SA_INIT (engine clock), ${legitWallMs} ms after its process started; flood still running: ${floodRunning}; datagrams out ${JSON.stringify(out)} B, in ${JSON.stringify(inn)} B; retransmission schedule ${SCHEDULE_MS.join(', ')} ms (≈${Math.round(SCHEDULE_MS.reduce((a, b) => a + b, 0) / 1000)} s in all)`);
  const child = up.children.length > 0 ? `Child SA installed (${up.children[0]!.state})` : `no Child SA: ${JSON.stringify(up.lastError ?? (await agent.tunnel('legit')).lastError ?? 'no error recorded')}`;
  t.diagnostic(`legitimate peer: ${child}`);

  const floodCode = await Promise.race([floodExit, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), FLOOD_MS + 30_000))]);
  assert.equal(floodCode, 0, `flooder exited ${String(floodCode)}: ${floodErr}`);
  const report = JSON.parse(floodOut.trim().split('\n').pop() ?? '{}') as FloodReport;
  const floodEnd = Date.now();
  const floodCpu = cpuSeconds(pid) - cpu0;

  // COOKIEs off again once the half-open SAs the flood left have timed out (30 s after they were
  // made): wait for none to be left, which is later than the count falling below the threshold.
  const offDeadline = Date.now() + HALF_OPEN_TIMEOUT_MS + 15_000;
  let last = await agent.status();
  while (last.ike?.halfOpen !== 0 && Date.now() < offDeadline) { await new Promise((r) => setTimeout(r, 500)); last = await agent.status(); }
  const cookiesOffMs = Date.now() - floodStart;
  watching = false;
  await watcher;
  const after = memory(pid);
  const cli = await agent.kipsec(['status', '--json']);
  assert.equal(cli.code, 0, cli.stderr);
  const final = JSON.parse(cli.stdout) as AgentStatus;
  const ike = final.ike!;
  const drop = (r: string): number => ike.drops[r] ?? 0;

  const perAddress = Object.values(report.createdByAddress);
  const maxPerAddress = Math.max(0, ...perAddress);
  const atLimit = perAddress.filter((n) => n === HALF_OPEN_PER_ADDRESS).length;
  const rate = Math.round(report.sent / (report.sendingMs / 1000));
  t.diagnostic(`flood: ${report.sent} IKE_SA_INIT in ${report.sendingMs} ms (${rate}/s) from ${plan.sources.length} addresses (${CONFIGURED.length} configured, ${UNCONFIGURED.length} not), ${report.sentWithCookie} resent with a COOKIE by ${COOKIE_ANSWERERS.length} addresses; answers: ${report.cookies} COOKIE, ${report.created} full responses, ${report.other} other ${JSON.stringify(report.otherNotifies)}; send errors ${report.sendErrors}`);
  t.diagnostic(`half-open: ${perAddress.length} addresses got state, at most ${maxPerAddress} each (${atLimit} at the limit of ${HALF_OPEN_PER_ADDRESS}); the agent's peak half-open count ${seen.maxHalfOpen} (${seen.polls} polls); COOKIEs on ${seen.cookiesOnAt - floodStart} ms after the flooder started, off ${cookiesOffMs} ms after (flood ended at ${floodEnd - floodStart} ms)`);
  t.diagnostic(`agent: ${ike.udp.received} datagrams received, ${floodCpu.toFixed(1)} CPU s until the flood ended; drops ${JSON.stringify(ike.drops)}`);
  t.diagnostic(`memory of the agent: VmRSS ${mib(before.rss)} before, ${mib(seen.maxRss)} highest seen, ${mib(after.rss)} after; VmHWM ${mib(before.hwm)} before, ${mib(after.hwm)} after (the peak is the larger: VmHWM is updated lazily); VmRSS from the flood's start: ${seen.rssEvery4s.join(', ')}`);

  // The flood happened and reached the agent (so nothing below passes vacuously).
  assert.ok(!report.cutOff, 'the flooder finished on its own');
  assert.ok(report.sent >= plan.maxRequests * 0.95, `the flooder sent ${report.sent} of ${plan.maxRequests}`);
  // Not all: a busy agent's socket buffer may overflow (here ~10% were lost at 8,000/s, none at 2,000/s).
  assert.ok(ike.udp.received >= report.sent * 0.75, `the agent received ${ike.udp.received} of the ${report.sent} + ${report.sentWithCookie} datagrams`);
  assert.ok(rate > 1_000, `flood rate ${rate}/s`);
  // COOKIEs: demanded during the flood, most requests answered with one, off again afterwards.
  assert.ok(drop('cookie-sent') >= report.sent * 0.5, `cookie-sent ${drop('cookie-sent')} of ${report.sent}`);
  assert.ok(report.cookies >= drop('cookie-sent') * 0.9, `the flooder saw ${report.cookies} COOKIEs of ${drop('cookie-sent')} sent`);
  assert.equal(ike.cookiesActive, false, `COOKIEs still demanded ${cookiesOffMs} ms after the flood started: ${JSON.stringify(ike)}`);
  assert.ok(seen.maxHalfOpen >= COOKIE_THRESHOLD, `peak half-open ${seen.maxHalfOpen} reached the threshold ${COOKIE_THRESHOLD}`);
  // Every half-open SA the flood obtained was torn down by the timeout: none is left behind.
  assert.equal(ike.halfOpen, 0);
  assert.equal(drop('half-open-timeout'), report.created, `${drop('half-open-timeout')} half-open SAs timed out, the flooder got ${report.created}`);
  // Per-address limit: no address holds more than 5 half-open SAs (the flood is shorter than the
  // 30 s half-open timeout, so every full response it got is a half-open SA it still held), the
  // cookie answerers reached it, and the agent dropped their further attempts.
  assert.ok(report.sendingMs + plan.drainMs < HALF_OPEN_TIMEOUT_MS);
  assert.ok(maxPerAddress <= HALF_OPEN_PER_ADDRESS, `an address got ${maxPerAddress} half-open SAs: ${JSON.stringify(report.createdByAddress)}`);
  assert.ok(atLimit >= COOKIE_ANSWERERS.length * 0.9, `${atLimit} of ${COOKIE_ANSWERERS.length} cookie answerers reached the limit`);
  assert.ok(drop('half-open-per-address') > 0, 'the agent dropped attempts beyond the per-address limit');
  assert.ok(seen.maxHalfOpen <= HALF_OPEN_PER_ADDRESS * perAddress.length, `peak half-open ${seen.maxHalfOpen} > ${HALF_OPEN_PER_ADDRESS} × ${perAddress.length} addresses`);
  assert.equal(drop('half-open-limit'), 0, `the engine-wide bound (${HALF_OPEN_LIMIT}) was not needed`);
  // Addresses no tunnel names got nothing, and were counted.
  for (const a of UNCONFIGURED) assert.equal(report.answersByAddress[a] ?? 0, 0, `${a} is configured nowhere yet got an answer`);
  assert.ok(drop('no-peer-config') >= (report.sent * UNCONFIGURED.length / plan.sources.length) * 0.75, `no-peer-config ${drop('no-peer-config')}`);
  // The legitimate peer: established during the flood, before its first retransmission was due.
  assert.ok(floodRunning, 'the legitimate peer connected while the flood was still running');
  assert.ok(handshakeMs < SCHEDULE_MS[0]!, `handshake took ${handshakeMs} ms; the first retransmission is due at ${SCHEDULE_MS[0]} ms`);
  assert.equal(out.length, 3, `IKE_SA_INIT, its COOKIE resend and IKE_AUTH, nothing retransmitted: ${JSON.stringify(out)}`);
  // It was challenged too: the first answer is a bare header plus the COOKIE notify, and its second
  // IKE_SA_INIT is the first with exactly that notify added (§2.6).
  assert.equal(out[1]! - out[0]!, inn[0]! - 28, `the resend carries the ${inn[0]! - 28}-byte COOKIE notify: out ${JSON.stringify(out)}, in ${JSON.stringify(inn)}`);
  assert.equal((await agent.tunnel('legit')).ikeState, 'established', 'the victim agrees');
  // Memory: this agent (301 tunnels) idles near 85 MiB; 200 MiB leaves room for V8's heap to grow
  // under load, yet fails if each of the flood's 24,000 requests left ~5 KiB behind (the ~300
  // half-open SAs it may keep are a few MiB). The kernel updates VmHWM lazily, so a sampled VmRSS
  // can be above it: the peak is the larger of the two.
  const peak = Math.max(after.hwm, seen.maxRss, after.rss);
  assert.ok(peak < 200 * 1024, `the agent's peak RSS is ${mib(peak)}`);
  assert.ok(agent.pid === pid && (await agent.status()).pid === pid, 'the agent is the same process');
  assert.equal(await legit.stop(), 0);
  assert.equal(await agent.stop(), 0);
});
