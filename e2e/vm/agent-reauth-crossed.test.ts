// Kernel lane (real ESP): both ends re-authenticate the same IKE SA at once (RFC 7296 §2.8.3,
// make-before-break), as two mesh nodes do when a CA rotation renews both certificates within
// seconds. Two kipsec agents; every packet on the link is delayed 300 ms (netem on both sides), and
// both `rekey --reauth` requests go out together, so each IKE_SA_INIT leaves before the other
// arrives. The engine keeps the new IKE SA of the lower address (src/ike/sa/reauth.ts
// settleReauthCollision) and both agents must say they saw the crossing. Afterwards one IKE SA
// and one Child SA pair remain, the same in both kernels; pings both ways lose nothing and the
// kernels' XFRM error counters do not move.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { controlRequest } from '../../src/agent/control/client.js';
import { pair } from '../lib/netns.js';
import { xfrmStat } from '../lib/xfrm-text.js';
import { AgentProcess, ContinuousPing, kernelSpis, pollUntil, tunnelYaml } from './agent-harness.js';
import { prepareVm } from './agent-vm.js';

prepareVm();
const PSK = 'kipsec e2e: crossed reauthentications';
const ROUNDS = 2;

test('both ends re-authenticate one IKE SA at once (requests crossing on the wire): one new IKE SA and one Child SA pair remain, mirrored in both kernels, both agents report the crossing, zero ping loss both ways, no XFRM error counter moves (RFC 7296 §2.8.3)', async (t) => {
  const [a, b] = await pair(t, { a: '192.0.2.1/24', b: '192.0.2.2/24' });
  await a.run('ip', ['addr', 'add', '10.1.1.1/24', 'dev', 'lo']);
  await b.run('ip', ['addr', 'add', '10.2.1.1/24', 'dev', 'lo']);
  const side = (local: string, remote: string, ls: string, rs: string, startAction: 'initiate' | 'respond') =>
    tunnelYaml({ name: 'x', local, remote, localSubnets: [ls], remoteSubnets: [rs], startAction, esp: ['aes256gcm16-x25519'] });
  const agentA = await AgentProcess.start(t, a, { config: side('192.0.2.1', '192.0.2.2', '10.1.1.0/24', '10.2.1.0/24', 'initiate'), files: { psk: `${PSK}\n` } });
  const agentB = await AgentProcess.start(t, b, { config: side('192.0.2.2', '192.0.2.1', '10.2.1.0/24', '10.1.1.0/24', 'respond'), files: { psk: `${PSK}\n` } });
  await agentA.waitEstablished('x', 120_000);
  await agentB.waitEstablished('x', 120_000);
  const why = async (): Promise<string> => `a:\n${await agentA.table()}\nb:\n${await agentB.table()}\nxfrm a: ${(await kernelSpis(a)).join(' ')}\nxfrm b: ${(await kernelSpis(b)).join(' ')}\nagent a log tail:\n${agentA.log().slice(-5000)}\nagent b log tail:\n${agentB.log().slice(-5000)}`;
  const spis = async (x: AgentProcess): Promise<string> => { const s = (await x.tunnel('x')).ikeSpis; return s ? `${s.initiator}_i ${s.responder}_r` : ''; };

  const pingsFrom = new Date().toISOString();
  // 600 ms round trip under netem: an echo unanswered for 1 s (the default grace) at a mark may be
  // late, not lost, when the VM stalls; 3 s tells the two apart.
  const pingAB = new ContinuousPing(a, '10.1.1.1', '10.2.1.1', { graceMs: 3_000 });
  const pingBA = new ContinuousPing(b, '10.2.1.1', '10.1.1.1', { graceMs: 3_000 });
  await new Promise((r) => setTimeout(r, 2_000));
  const stat0 = { a: await xfrmStat(a), b: await xfrmStat(b) };
  for (const ns of [a, b]) await ns.run('tc', ['qdisc', 'add', 'dev', 'eth0', 'root', 'netem', 'delay', '300ms']);

  for (let round = 1; round <= ROUNDS; round++) {
    const old = await spis(agentA);
    const logFrom = { a: agentA.log().length, b: agentB.log().length };
    const started = Date.now();
    const [ra, rb] = await Promise.all([agentA, agentB].map((x) => controlRequest(x.socket, 'rekey', { name: 'x', ike: false, child: false, reauth: true }, 30_000) as Promise<{ reauth?: boolean }>));
    assert.ok(ra?.reauth === true && rb?.reauth === true, `both re-authentications started: ${JSON.stringify([ra, rb])}`);
    const settled = await pollUntil(`round ${round}: one new IKE SA on both sides and one Child SA pair in both kernels`, 90_000, async () => {
      const [sa, sb] = [await spis(agentA), await spis(agentB)];
      if (sa === '' || sa === old || sa !== sb) return undefined;
      const [ka, kb] = [(await kernelSpis(a)).sort(), (await kernelSpis(b)).sort()];
      return ka.length === 2 && JSON.stringify(ka) === JSON.stringify(kb) ? { ike: sa, esp: ka } : undefined;
    }, why);
    const logA = agentA.log().slice(logFrom.a); const logB = agentB.log().slice(logFrom.b);
    const crossed = (log: string): string | undefined => /reauthentications crossed[^"]*|duplicates ours[^"]*/.exec(log)?.[0];
    t.diagnostic(`round ${round}: ${old} -> ${settled.ike} (ESP ${settled.esp.join(' ')}) in ${Date.now() - started} ms; a: ${crossed(logA) ?? '-'}; b: ${crossed(logB) ?? '-'}`);
    assert.ok(crossed(logA) && crossed(logB), `both agents saw the crossing (otherwise this round proved nothing):\n${await why()}`);
    assert.equal((await agentA.tunnel('x')).role, 'initiator', 'the new IKE SA of the lower address (a) stayed');
    // Echoes answered so far: the window closes at the highest one answered, so none is in flight.
    const [wab, wba] = [pingAB.mark(), pingBA.mark()];
    t.diagnostic(`round ${round}: pings a→b ${wab.received}/${wab.sent} (longest gap ${wab.longestGapMs} ms), b→a ${wba.received}/${wba.sent} (longest gap ${wba.longestGapMs} ms)`);
    if (wab.lost.length + wba.lost.length > 0) assert.fail(`round ${round}: pings lost a→b [${wab.lost.join(' ')}], b→a [${wba.lost.join(' ')}], max RTT ${wab.maxRttMs} / ${wba.maxRttMs} ms (seq 1 at ${pingsFrom}, one each 100 ms; round from ${new Date(started).toISOString()}; a: ${crossed(logA)}; b: ${crossed(logB)}):\n${await why()}`);
  }

  // `change`, not `del`: deleting the qdisc drops what it holds (300 ms of pings each way).
  for (const ns of [a, b]) await ns.run('tc', ['qdisc', 'change', 'dev', 'eth0', 'root', 'netem', 'delay', '0ms']);
  await new Promise((r) => setTimeout(r, 2_000));
  const [ab, ba] = [await pingAB.stop(), await pingBA.stop()];
  const stat1 = { a: await xfrmStat(a), b: await xfrmStat(b) };
  const moved = (s0: Record<string, number>, s1: Record<string, number>): string[] => Object.keys(s1).filter((k) => s1[k] !== (s0[k] ?? 0)).map((k) => `${k} ${s0[k] ?? 0}→${s1[k]}`);
  t.diagnostic(`pings a→b ${ab.received}/${ab.sent} (longest gap ${ab.longestGapMs} ms), b→a ${ba.received}/${ba.sent} (longest gap ${ba.longestGapMs} ms); xfrm_stat a: ${moved(stat0.a, stat1.a).join(', ') || 'unchanged'}, b: ${moved(stat0.b, stat1.b).join(', ') || 'unchanged'}`);
  for (const [dir, c] of [['a→b', ab], ['b→a', ba]] as const) {
    assert.ok(c.wasRunning && c.sent > 50, `${dir}: ping ran throughout (${c.sent} sent):\n${c.tail}`);
    assert.deepEqual(c.lost, [], `${dir}: pings lost (only the echo in flight at SIGINT may be missing):\n${c.tail}`);
  }
  assert.deepEqual(moved(stat0.a, stat1.a), [], 'a: XFRM error counters');
  assert.deepEqual(moved(stat0.b, stat1.b), [], 'b: XFRM error counters');
  assert.equal(await agentA.stop(), 0);
  assert.equal(await agentB.stop(), 0);
});
