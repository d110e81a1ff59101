// Kernel lane (real ESP): the kipsec agent against Libreswan 5 (pluto) with AES-CBC + HMAC-SHA2 and
// MODP groups (issue 17): IKE aes256-sha256-modp2048, ESP aes128-sha256-modp2048 (PFS with MODP
// 2048 on every Child SA rekey), in both roles: "ca" initiated by the agent, "cl" by pluto. Pings
// through both, SPIs matching pluto's. Then, under a continuous 10/s ping on both tunnels, each
// side rekeys each tunnel's Child SA and IKE SA (pluto: `whack --rekey-child/--rekey-ike`; the
// agent: `kipsec rekey`): every rekey changes the SPIs on both sides and no ping is lost.
// RFC 7296 §1.3.2, §1.3.3, §2.8, §2.18; RFC 3602 (AES-CBC), RFC 4868 (HMAC-SHA-256-128), RFC 3526 (MODP 2048).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pair } from '../lib/netns.js';
import { Libreswan, lswConf, type LswConn } from '../lib/libreswan.js';
import { AgentProcess, ContinuousPing, kernelSpis, pingCounts, pollUntil, tunnelYaml } from './agent-harness.js';
import { prepareVm } from './agent-vm.js';

prepareVm();
const PSK = 'kipsec e2e: correct horse battery staple';

test('agent ↔ Libreswan 5 with AES-CBC/SHA2/MODP-2048 in both roles: pings, SPIs match; Child and IKE SA rekeys from either side under continuous ping: none loses a ping except the known one below', async (t) => {
  const tunnels = [
    { name: 'ca', lsw: '192.0.2.50', n: 50, agentStarts: true },
    { name: 'cl', lsw: '192.0.2.51', n: 51, agentStarts: false },
  ] as const;
  const [a, b] = await pair(t, { a: '192.0.2.1/24', b: '192.0.2.50/24' });
  await b.run('ip', ['addr', 'add', '192.0.2.51/24', 'dev', 'eth0']);
  for (const x of tunnels) {
    await a.run('ip', ['addr', 'add', `10.1.${x.n}.1/24`, 'dev', 'lo']);
    await b.run('ip', ['addr', 'add', `10.2.${x.n}.1/24`, 'dev', 'lo']);
  }
  // aes256-sha256-modp2048 / aes128-sha256-modp2048 in Libreswan's syntax (a DH group in esp= is its PFS group).
  const conns: LswConn[] = tunnels.map((x) => ({
    name: x.name, local: x.lsw, remote: '192.0.2.1', localSubnet: `10.2.${x.n}.0/24`, remoteSubnet: `10.1.${x.n}.0/24`,
    ike: 'aes256-sha2_256-modp2048', esp: 'aes128-sha2_256-modp2048', sourceIp: `10.2.${x.n}.1`, auth: { psk: PSK },
  }));
  const conf = lswConf(conns);
  const lsw = await Libreswan.start(t, b, { conns: conf.conns, secrets: conf.secrets });
  const config = tunnels.map((x) => tunnelYaml({ name: x.name, local: '192.0.2.1', remote: x.lsw, localSubnets: [`10.1.${x.n}.0/24`], remoteSubnets: [`10.2.${x.n}.0/24`],
    ike: ['aes256-sha256-modp2048'], esp: ['aes128-sha256-modp2048'], startAction: x.agentStarts ? 'initiate' : 'respond' })).join('---\n');
  const agent = await AgentProcess.start(t, a, { config, files: { psk: `${PSK}\n` } });
  const explain = async (): Promise<string> => `kipsec:\n${await agent.table()}\n${agent.log().slice(-4000)}\npluto states:\n${await lsw.showStates()}\npluto log (no debug lines), tail:\n${lsw.events().slice(-5000)}`;

  for (const x of tunnels) {
    if (!x.agentStarts) {
      const r = await lsw.initiate(x.name, 90);
      assert.equal(r.code, 0, `pluto could not initiate ${x.name}:\n${r.stdout}${r.stderr}\n${await explain()}`);
    }
    await agent.waitEstablished(x.name, 120_000).catch(async (e: unknown) => { throw new Error(`${String(e)}\n${await explain()}`, { cause: e }); });
  }

  const installed = async (name: string) => (await agent.tunnel(name)).children.filter((c) => c.state === 'installed');
  /** Our only installed Child SA and pluto's agree (our inbound is its outbound); returns ours. */
  const agreed = (name: string, not?: { spiIn: string }) => pollUntil(`${name}: pluto's Child SA mirrors ours`, 60_000, async () => {
    const ours = await installed(name);
    const c = ours[0];
    if (ours.length !== 1 || !c || c.spiIn === not?.spiIn) return undefined;
    const theirs = (await lsw.childSas()).filter((k) => k.name === name);
    return theirs.length === 1 && theirs[0]!.spiOut === c.spiIn && theirs[0]!.spiIn === c.spiOut ? { spiIn: c.spiIn, spiOut: c.spiOut } : undefined;
  }, explain);
  const ikeOf = async (name: string): Promise<string> => { const s = (await agent.tunnel(name)).ikeSpis; return s ? `${s.initiator}_i ${s.responder}_r` : '(none)'; };
  const lswIke = async (name: string): Promise<number[]> => (await lsw.states()).filter((s) => s.name === name && s.state === 'ESTABLISHED_IKE_SA').map((s) => s.serial);

  for (const x of tunnels) {
    const ping = await a.run('ping', ['-c', '3', '-i', '0.2', '-W', '3', '-I', `10.1.${x.n}.1`, `10.2.${x.n}.1`], { check: false });
    assert.equal(pingCounts(ping.stdout).received, 3, `${x.name}: ping through the tunnel\n${ping.stdout}${ping.stderr}\n${await explain()}`);
    const s = await agent.tunnel(x.name);
    const esp = (await installed(x.name))[0]!.suite;
    assert.match(s.ikeSuite ?? '', /^aes256-.*sha256.*-modp2048$/, `${x.name}: IKE suite ${s.ikeSuite}`);
    assert.match(esp, /^aes128-sha256/, `${x.name}: ESP suite ${esp}`);
    assert.equal(s.role, x.agentStarts ? 'initiator' : 'responder');
    const c = await agreed(x.name);
    t.diagnostic(`${x.name}: up (${s.role}), IKE ${s.ikeSuite}, ESP ${esp}, SPIs in ${c.spiIn} out ${c.spiOut} match pluto's`);
  }
  t.diagnostic(`kipsec status:\n${await agent.table()}`);

  const pings = tunnels.map((x) => new ContinuousPing(a, `10.1.${x.n}.1`, `10.2.${x.n}.1`));
  await new Promise((r) => setTimeout(r, 2_000));
  const figures: string[] = [];

  /** Wait for a new Child SA on both sides; the old SPIs must leave both kernels. */
  async function childRekeyed(name: string, by: string, old: { spiIn: string; spiOut: string }): Promise<{ spiIn: string; spiOut: string }> {
    const t0 = Date.now();
    const now = await agreed(name, old);
    await pollUntil(`${name}: old SPIs ${old.spiIn}/${old.spiOut} out of both kernels`, 60_000, async () =>
      [...await kernelSpis(a), ...await kernelSpis(b)].some((s) => s === old.spiIn || s === old.spiOut) ? undefined : true, explain);
    figures.push(`${name}: Child SA rekey by ${by}: ${old.spiIn}/${old.spiOut} -> ${now.spiIn}/${now.spiOut} (${Date.now() - t0} ms)`);
    return now;
  }
  /** Wait for new IKE SPIs on our side and exactly one, newer, IKE SA on pluto's; the Child SA stays. */
  async function ikeRekeyed(name: string, by: string, old: string, oldSerial: number, child: { spiIn: string; spiOut: string }): Promise<[string, number]> {
    const t0 = Date.now();
    const now = await pollUntil(`${name}: new IKE SA on both sides`, 60_000, async () => {
      const ours = await ikeOf(name);
      const theirs = await lswIke(name);
      return ours !== old && (await agent.tunnel(name)).ikeState === 'established' && theirs.length === 1 && theirs[0]! > oldSerial ? [ours, theirs[0]!] as [string, number] : undefined;
    }, explain);
    assert.deepEqual(await agreed(name), child, `${name}: the Child SA moved to the new IKE SA unchanged (RFC 7296 §2.18)`);
    figures.push(`${name}: IKE SA rekey by ${by}: ${old} -> ${now[0]} (pluto #${oldSerial} -> #${now[1]}, ${Date.now() - t0} ms)`);
    return now;
  }

  /** /proc/net/xfrm_stat of both namespaces, so a lost ping is charged to the side whose kernel dropped it. */
  const xfrmStats = async (): Promise<Map<string, number>> => {
    const out = new Map<string, number>();
    for (const [side, ns] of [['agent', a], ['pluto', b]] as const) {
      for (const m of (await ns.run('cat', ['/proc/net/xfrm_stat'])).stdout.matchAll(/^(\w+)\s+(\d+)$/gm)) out.set(`${side} ${m[1]!}`, Number(m[2]));
    }
    return out;
  };
  const statDiff = (x: Map<string, number>, y: Map<string, number>): string =>
    [...y].filter(([k, v]) => v !== (x.get(k) ?? 0)).map(([k, v]) => `${k} +${v - (x.get(k) ?? 0)}`).join(', ') || 'none';
  interface Step { tunnel: string; what: string; lost: number[]; xfrm: string }
  const steps: Step[] = [];
  /** Run one rekey and charge the pings lost meanwhile (and ESP for unknown SPIs) to it. */
  async function step<T>(i: number, what: string, run: () => Promise<T>): Promise<T> {
    const pg = pings[i]!;
    pg.mark();
    const x0 = await xfrmStats();
    const out = await run();
    await new Promise((r) => setTimeout(r, 500));
    steps.push({ tunnel: tunnels[i]!.name, what, lost: pg.mark().lost, xfrm: statDiff(x0, await xfrmStats()) });
    return out;
  }

  for (const [i, x] of tunnels.entries()) {
    let child = await agreed(x.name);
    let ike = await ikeOf(x.name);
    let serial = (await lswIke(x.name))[0]!;
    const whack = async (flag: string): Promise<void> => {
      const r = await lsw.whack(['--name', x.name, flag], false, 60_000);
      assert.equal(r.code, 0, `whack ${flag} ${x.name}: ${r.stdout}${r.stderr}`);
    };
    const kipsec = async (args: string[]): Promise<void> => {
      const r = await agent.kipsec(['rekey', x.name, ...args]);
      assert.equal(r.code, 0, `kipsec rekey ${x.name} ${args.join(' ')}: ${r.stdout}${r.stderr}`);
    };
    child = await step(i, 'Child SA rekey by pluto', async () => { await whack('--rekey-child'); return childRekeyed(x.name, 'pluto', child); });
    [ike, serial] = await step(i, 'IKE SA rekey by pluto', async () => { await whack('--rekey-ike'); return ikeRekeyed(x.name, 'pluto', ike, serial, child); });
    child = await step(i, 'Child SA rekey by kipsec', async () => { await kipsec([]); return childRekeyed(x.name, 'kipsec', child); });
    await step(i, 'IKE SA rekey by kipsec', async () => { await kipsec(['--ike']); return ikeRekeyed(x.name, 'kipsec', ike, serial, child); });
    // RFC 7296 §1.3.3: the rekeyed Child SAs ran a fresh MODP 2048 exchange (PFS), so the suite names the group.
    const suite = (await installed(x.name))[0]!.suite;
    assert.equal(suite, 'aes128-sha256-modp2048', `${x.name}: rekeyed Child SA suite`);
  }
  for (const f of figures) t.diagnostic(f);
  for (const s of steps) t.diagnostic(`${s.tunnel}: ${s.what}: ${s.lost.length} pings lost${s.lost.length ? ` (icmp_seq ${s.lost.join(',')})` : ''}, xfrm_stat changes: ${s.xfrm}`);

  await new Promise((r) => setTimeout(r, 1_000));
  // Known loss, not ours to remove: Libreswan 5.2 as the responder of a Child SA rekey starts
  // sending on its new outbound SA when it installs it — in the captures, before or within 10 ms
  // of sending its CREATE_CHILD_SA response. The initiator can key its inbound SA only after
  // processing that response (RFC 7296 §2.17: KEYMAT needs Nr and the new g^ir), so what arrives
  // first meets our larval inbound state and is dropped (XfrmAcquireError at the agent). charon
  // as the initiator against the same pluto in the same VM lost 2–5 pings at 50/s per rekey.
  // Charged to that step; the first subtest below checks it is only that, the todo one records
  // that zero loss is not reached. Every other loss fails.
  const known = (s: Step): boolean => s.what === 'Child SA rekey by kipsec';
  for (const [i, pg] of pings.entries()) {
    const name = tunnels[i]!.name;
    const c = await pg.stop();
    t.diagnostic(`${name}: ${c.received}/${c.sent} pings across 2 Child SA and 2 IKE SA rekeys, longest gap ${c.longestGapMs} ms`);
    assert.ok(c.wasRunning && c.sent > 100, `${name}: ping ran (${c.sent} sent):\n${c.tail}`);
    const charged = new Set(steps.filter((s) => s.tunnel === name && known(s)).flatMap((s) => s.lost));
    assert.deepEqual(c.lost.filter((n) => !charged.has(n)), [], `${name}: pings lost:\n${c.tail}\n${steps.filter((s) => s.tunnel === name).map((s) => `${s.what}: lost ${JSON.stringify(s.lost)}, xfrm_stat ${s.xfrm}`).join('\n')}`);
  }
  t.diagnostic(`pluto: ${lsw.events().split('\n').filter((l) => /rekey|established (IKE|Child) SA|[Dd]elet/.test(l)).slice(-24).join('\n')}`);
  assert.equal(await agent.stop(), 0);
  await t.test('what a Child SA rekey kipsec initiates loses is only ESP that reached our inbound SA before it was keyed (XfrmAcquireError at the agent, one per lost ping at least; no other XFRM error on either side)', () => {
    for (const s of steps.filter(known)) {
      const moved = s.xfrm === 'none' ? [] : s.xfrm.split(', ');
      const acq = moved.map((m) => /^agent XfrmAcquireError \+(\d+)$/.exec(m)).map((m) => Number(m?.[1] ?? NaN));
      assert.ok(acq.every((n) => Number.isFinite(n)), `${s.tunnel}: only agent XfrmAcquireError may move during that rekey, not: ${s.xfrm}`);
      assert.ok((acq[0] ?? 0) >= s.lost.length, `${s.tunnel}: ${s.lost.length} pings lost but XfrmAcquireError +${acq[0] ?? 0}: something else dropped them`);
    }
  });
  await t.test('a Child SA rekey kipsec initiates against Libreswan loses no ping (RFC 7296 §2.8 make-before-break)', { todo: 'Libreswan uses its new outbound SA before the initiator can key its inbound one; charon loses the same' }, () => {
    assert.deepEqual(steps.filter(known).map((s) => `${s.tunnel}: ${s.lost.length} lost, ${s.xfrm}`), steps.filter(known).map((s) => `${s.tunnel}: 0 lost, none`));
  });
});
