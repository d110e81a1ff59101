// Kernel lane (real ESP): the kipsec agent against Libreswan 5 (pluto), issue 17.
// 1. pluto crashes and restarts with the same config (SIGKILL, kernel state flushed as `ipsec
//    start` does after a crash, started again), under a continuous ping on two tunnels:
//    "rl" (pluto initiates, auto=start, initial-contact=yes): the new pluto's IKE_AUTH carries
//    INITIAL_CONTACT and the agent replaces its stale IKE SA at once (RFC 7296 §2.4); "ra" (the
//    agent initiates, pluto only listens, Libreswan's default initial-contact=no): the agent's DPD
//    finds the peer gone (dpd 5s/15s) and re-establishes
//    (dpd.action restart). Both measured: restart to new IKE SA, and the ping outage. Nothing of
//    the tunnels leaves in clear meanwhile (the Child SAs' policies stay until replaced).
// 2. IKEv1 (RFC 9395 deprecates it; kipsec speaks only IKEv2): the same pluto, with
//    `ikev1-policy=accept`, has IKEv1-only conns (`keyexchange=ikev1`: real Main and Aggressive
//    Mode). "v1" (a tunnel whose remote is pluto's Main Mode address) gets no IKE state and a
//    lastError in `kipsec status` naming the peer and IKEv1; pluto retransmitting its first
//    message yields one agent log line, not one per datagram; an IKEv1 peer no tunnel names
//    (Aggressive Mode) gets a log line of its own. "v2to1" shows the other direction: what pluto
//    does with our IKEv2 IKE_SA_INIT to an IKEv1-only conn.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pair } from '../lib/netns.js';
import { Libreswan, lswConf, type LswConn } from '../lib/libreswan.js';
import { WireCapture } from '../lib/capture.js';
import { AgentProcess, ContinuousPing, pollUntil, tunnelYaml } from './agent-harness.js';
import { prepareVm } from './agent-vm.js';

prepareVm();
const PSK = 'kipsec e2e: correct horse battery staple';

interface LogLine { msg?: string; tunnel?: string; remote?: string; reason?: string; code?: string; exchange?: string }
function logLines(text: string): LogLine[] {
  return text.split('\n').flatMap((l) => { try { return [JSON.parse(l) as LogLine]; } catch { return []; } });
}

test('Libreswan restart is detected (INITIAL_CONTACT, DPD) and re-established; IKEv1 Main/Aggressive Mode from pluto get no state and a rate-limited report naming the peer (RFC 9395)', async (t) => {
  const [a, b] = await pair(t, { a: '192.0.2.1/24', b: '192.0.2.60/24' });
  for (const x of ['192.0.2.61', '192.0.2.62', '192.0.2.63', '192.0.2.64']) await b.run('ip', ['addr', 'add', `${x}/24`, 'dev', 'eth0']);
  for (const n of [60, 61, 62, 63]) {
    await a.run('ip', ['addr', 'add', `10.1.${n}.1/24`, 'dev', 'lo']);
    await b.run('ip', ['addr', 'add', `10.2.${n}.1/24`, 'dev', 'lo']);
  }
  const v2 = { ike: 'aes_gcm256-sha2_384-dh31', esp: 'aes_gcm256', auth: { psk: PSK } } as const;
  const ikev1 = { ike: 'aes256-sha2_256-modp2048', esp: 'aes128-sha2_256', auth: { psk: PSK } } as const;
  const conn = (name: string, lsw: string, n: number, more: Partial<LswConn>): LswConn => ({ ...v2, name, local: lsw, remote: '192.0.2.1', localSubnet: `10.2.${n}.0/24`, remoteSubnet: `10.1.${n}.0/24`, sourceIp: `10.2.${n}.1`, ...more });
  const conf = lswConf([
    conn('ra', '192.0.2.60', 60, {}),
    // Libreswan sends INITIAL_CONTACT only with initial-contact=yes (ra keeps the default: no).
    conn('rl', '192.0.2.61', 61, { auto: 'start', extra: ['initial-contact=yes'] }),
    conn('v1m', '192.0.2.62', 62, { ...ikev1, extra: ['keyexchange=ikev1'] }),
    conn('v1a', '192.0.2.63', 63, { ...ikev1, extra: ['keyexchange=ikev1', 'aggressive=yes'] }),
    conn('v1s', '192.0.2.64', 64, { ...ikev1, extra: ['keyexchange=ikev1'] }),
  ]);
  // Libreswan 5 builds IKEv1 in but drops IKEv1 unless told otherwise.
  const lsw = await Libreswan.start(t, b, { conns: conf.conns, secrets: conf.secrets, setup: 'ikev1-policy=accept' });
  const tun = (name: string, remote: string, n: number, startAction: 'initiate' | 'respond') =>
    tunnelYaml({ name, local: '192.0.2.1', remote, localSubnets: [`10.1.${n}.0/24`], remoteSubnets: [`10.2.${n}.0/24`], startAction, extra: '  dpd: {interval: 5s, timeout: 15s, action: restart}\n' });
  const config = [tun('ra', '192.0.2.60', 60, 'initiate'), tun('rl', '192.0.2.61', 61, 'respond'), tun('v1', '192.0.2.62', 62, 'respond'), tun('v2to1', '192.0.2.63', 63, 'initiate')].join('---\n');
  const agent = await AgentProcess.start(t, a, { config, files: { psk: `${PSK}\n` } });
  const explain = async (): Promise<string> => `kipsec:\n${await agent.table()}\n${agent.log().slice(-4000)}\npluto states:\n${await lsw.showStates()}\npluto log (no debug lines), tail:\n${lsw.events().slice(-5000)}`;
  const fail = async (e: unknown): Promise<never> => { throw new Error(`${String(e)}\n${await explain()}`, { cause: e }); };
  const up = { ra: await agent.waitEstablished('ra', 120_000).catch(fail), rl: await agent.waitEstablished('rl', 120_000).catch(fail) };

  // ── 1. pluto restart ──
  // Echo requests of the tunnels' subnets leaving the agent's link in clear: none while pluto is
  // down, DPD runs and both tunnels come back (the Child SAs' policies stay meanwhile). Captured
  // at the sender: a receiver's capture also shows what XFRM decrypted. A control flow outside
  // every tunnel (10.1.99.1 → 10.2.99.1) shows the capture sees it when there is some.
  const clear = await WireCapture.start(t, a, { iface: 'eth0', filter: ['icmp', 'and', 'src', 'net', '10.1.0.0/16'] });
  const pings = { ra: new ContinuousPing(a, '10.1.60.1', '10.2.60.1'), rl: new ContinuousPing(a, '10.1.61.1', '10.2.61.1') };
  await new Promise((r) => setTimeout(r, 2_000));
  const logBefore = agent.log().length;
  const t0 = Date.now();
  await lsw.restart();
  const plutoUpMs = Date.now() - t0;
  const back: Record<string, number> = {};
  await pollUntil('both tunnels re-established after the pluto restart', 120_000, async () => {
    for (const name of ['ra', 'rl'] as const) {
      if (back[name] !== undefined) continue;
      const s = await agent.tunnel(name);
      if (s.ikeState === 'established' && s.children.some((c) => c.state === 'installed') && JSON.stringify(s.ikeSpis) !== JSON.stringify(up[name].ikeSpis)) back[name] = Date.now() - t0;
    }
    return Object.keys(back).length === 2 ? true : undefined;
  }, explain);
  // Judged: the echoes sent once both are seen re-established (those of the outage, still
  // unanswered when the status said so, are not).
  for (const pg of Object.values(pings)) pg.markSent();
  await new Promise((r) => setTimeout(r, 3_000));
  const after = { ra: pings.ra.mark(), rl: pings.rl.mark() };
  t.diagnostic(`pluto: ${(await lsw.status()).split('\n').flatMap((l) => (/"r[al]":.*initial-contact/.test(l) ? [(l.match(/"r[al]"|initial-contact:\w+/g) ?? []).join(' ')] : [])).join('; ')}`);
  t.diagnostic(`pluto log on INITIAL_CONTACT:\n${lsw.log().split('\n').filter((l) => /initial.contact/i.test(l)).slice(-8).join('\n')}`);
  const downs = logLines(agent.log().slice(logBefore)).filter((l) => l.msg === 'IKE SA down');
  for (const name of ['ra', 'rl'] as const) {
    const c = await pings[name].stop();
    const why = downs.filter((d) => d.tunnel === name).map((d) => d.reason).join(',');
    t.diagnostic(`${name}: pluto killed and up again in ${plutoUpMs} ms; new IKE SA ${back[name]} ms after the kill (old one down: ${why}); ping ${c.received}/${c.sent}, outage ${c.longestGapMs} ms`);
    assert.ok(c.wasRunning, `${name}: ping ran:\n${c.tail}`);
    if (!(after[name].received >= 20 && after[name].lost.length === 0)) {
      assert.fail(`${name}: every ping passes once re-established: ${JSON.stringify(after[name])}\nping tail:\n${c.tail}\n` +
        `agent log on ${name} since the kill:\n${logLines(agent.log().slice(logBefore)).filter((l) => l.tunnel === name).slice(-40).map((l) => JSON.stringify(l)).join('\n')}\n` +
        `xfrm at pluto:\n${(await b.run('ip', ['-s', 'xfrm', 'state'])).stdout}\n${await explain()}`);
    }
  }
  await a.run('ip', ['addr', 'add', '10.1.99.1/32', 'dev', 'lo']);
  await b.run('ip', ['addr', 'add', '10.2.99.1/32', 'dev', 'lo']);
  await a.run('ip', ['route', 'add', '10.2.99.1/32', 'via', '192.0.2.60']);
  await b.run('ip', ['route', 'add', '10.1.99.1/32', 'via', '192.0.2.1']);
  const control = await a.run('ping', ['-c', '3', '-i', '0.2', '-W', '2', '-I', '10.1.99.1', '10.2.99.1'], { check: false });
  const cap = await clear.stop();
  const read = async (expr: readonly string[]): Promise<string[]> => (await a.run('tcpdump', ['-nn', '-r', clear.file, ...expr], { check: false })).stdout.split('\n').filter((l) => l.trim() !== '');
  const controlSeen = await read(['host', '10.1.99.1']);
  const leaked = await read(['not', 'host', '10.1.99.1']);
  t.diagnostic(`ICMP in clear leaving the agent's link during the restart: ${leaked.length} of the tunnels', ${controlSeen.length} of the control flow`);
  assert.ok(cap.complete, `the capture holds every packet: ${JSON.stringify(cap)}`);
  assert.ok(controlSeen.length >= 3, `the capture sees ICMP in clear (control flow):\n${control.stdout}\n${controlSeen.join('\n')}`);
  assert.deepEqual(leaked.slice(0, 10), [], 'no echo of the tunnels in clear while they were down');
  // The stale IKE SA goes: replaced by INITIAL_CONTACT (RFC 7296 §2.4) if pluto sends one, else by DPD.
  assert.ok(downs.some((d) => d.tunnel === 'rl' && (d.reason === 'replaced' || d.reason === 'dpd-timeout')), `rl: the stale IKE SA was dropped:\n${JSON.stringify(downs)}`);
  assert.ok(downs.some((d) => d.tunnel === 'ra' && d.reason === 'dpd-timeout'), `ra: DPD found the restarted pluto:\n${JSON.stringify(downs)}`);

  // ── 2. IKEv1 ──
  const v1Before = agent.log().length;
  for (const name of ['v1m', 'v1a', 'v1s']) {
    const r = await lsw.whack(['--name', name, '--initiate', '--asynchronous'], false);
    assert.equal(r.code, 0, `whack --initiate ${name}: ${r.stdout}${r.stderr}`);
  }
  const v1 = await agent.waitFor('v1', (s) => s.lastError?.message.includes('IKEv1') === true, 60_000, 'IKEv1 reported in status');
  // Let pluto retransmit its first messages a few times (0.5 s, then doubling).
  await new Promise((r) => setTimeout(r, 8_000));
  const lines = logLines(agent.log().slice(v1Before)).filter((l) => /IKEv1/.test(l.msg ?? ''));
  const status = await agent.status();
  const table = await agent.table();
  t.diagnostic(`kipsec status (IKEv1 part):\n${table}`);
  t.diagnostic(`agent log, IKEv1 lines:\n${lines.map((l) => JSON.stringify(l)).join('\n')}`);
  const plutoV1 = lsw.events().split('\n').filter((l) => /"v1[mas]"|IKEv1|"v2to1"|192\.0\.2\.1\b.*(IKE_SA_INIT|no .*connection)/.test(l));
  t.diagnostic(`pluto log, IKEv1 conns and our IKEv2 to them:\n${plutoV1.slice(-30).join('\n')}`);
  t.diagnostic(`pluto states:\n${await lsw.showStates()}`);

  assert.equal(v1.ikeState === 'established', false, 'no IKE SA with an IKEv1 peer');
  assert.equal(v1.children.length, 0);
  assert.match(v1.lastError!.message, /^192\.0\.2\.62:500 sent an IKEv1 Main Mode request, dropped: IKEv1 is not supported \(RFC 9395\)/);
  assert.match(table, /last error [^\n]*192\.0\.2\.62:500 sent an IKEv1 Main Mode request/, '`kipsec status` shows it');
  const forV1 = lines.filter((l) => l.tunnel === 'v1');
  assert.equal(forV1.length, 1, `one log line for pluto's Main Mode and its retransmissions:\n${JSON.stringify(forV1)}`);
  assert.equal(forV1[0]!.code, 'ERR_IKE_V1_UNSUPPORTED');
  const stranger = lines.filter((l) => l.remote === '192.0.2.64:500');
  assert.equal(stranger.length, 1, `one log line for the IKEv1 peer no tunnel names:\n${JSON.stringify(lines)}`);
  assert.equal(stranger[0]!.exchange, 'Main Mode');
  const aggressive = lines.filter((l) => l.tunnel === 'v2to1' || l.remote === '192.0.2.63:500');
  assert.ok(aggressive.some((l) => /Aggressive Mode/.test(l.msg ?? '')), `Aggressive Mode named:\n${JSON.stringify(lines)}`);
  assert.ok((status.ike?.drops['ikev1'] ?? 0) > lines.length, `drops counted per datagram (${JSON.stringify(status.ike?.drops)}), reported once per address`);
  // Pluto got no answer: its IKEv1 states are still at their first message.
  const v1States = (await lsw.states()).filter((s) => s.name.startsWith('v1'));
  assert.ok(v1States.length >= 3 && v1States.every((s) => /(MAIN|AGGR)_I1$/.test(s.state)), `pluto's IKEv1 states: ${JSON.stringify(v1States)}`);
  assert.equal(await agent.stop(), 0);
});
