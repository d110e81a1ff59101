// Kernel lane (real ESP): the agent's rekeys colliding with charon's (RFC 7296 §2.8.1), four
// times for the Child SA (with PFS, x25519; the nonces decide who wins) and once for the IKE SA. To make the requests cross reliably, everything
// charon sends is delayed 2 s (netem on its link) and the agent's rekey goes out over the control
// socket as soon as charon has logged its own request: charon then gets ours while its own is
// outstanding and we get charon's while ours is. charon's log must say it saw the collision.
// Afterwards exactly one Child SA and one IKE SA remain, the same on both sides and in both
// kernels; no SA is reported down (a collision is not an outage) and no ping is lost.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { controlRequest } from '../../src/agent/control/client.js';
import { pair } from '../lib/netns.js';
import { StrongSwan } from '../lib/strongswan.js';
import { AgentProcess, ContinuousPing, kernelSpis, pollUntil, tunnelYaml } from './agent-harness.js';
import { swanctlConf } from './agent-swan.js';
import { prepareVm } from './agent-vm.js';

prepareVm();
const PSK = 'kipsec e2e: correct horse battery staple';

test('simultaneous rekeys by the agent and by charon (crossing on the wire): one Child SA and one IKE SA survive, SPIs agree on both sides, no SA reported down, zero ping loss (RFC 7296 §2.8.1)', async (t) => {
  const [a, b] = await pair(t, { a: '192.0.2.1/24', b: '192.0.2.2/24' });
  await a.run('ip', ['addr', 'add', '10.1.1.1/24', 'dev', 'lo']);
  await b.run('ip', ['addr', 'add', '10.2.1.1/24', 'dev', 'lo']);
  const esp = 'aes256gcm16-x25519';
  const swan = await StrongSwan.start(t, b, {
    mode: 'kernel',
    swanctl: swanctlConf([{ name: 'coll', local: '192.0.2.2', remote: '192.0.2.1', localTs: '10.2.1.0/24', remoteTs: '10.1.1.0/24', proposals: 'aes256gcm16-prfsha384-x25519', espProposals: esp, auth: { psk: PSK } }]),
  });
  const agent = await AgentProcess.start(t, a, { config: tunnelYaml({ name: 'coll', local: '192.0.2.1', remote: '192.0.2.2', localSubnets: ['10.1.1.0/24'], remoteSubnets: ['10.2.1.0/24'], esp: [esp] }), files: { psk: `${PSK}\n` } });
  await agent.waitEstablished('coll', 120_000).catch((e: unknown) => { throw new Error(`${String(e)}\ncharon log tail:\n${swan.log().slice(-6000)}`); });
  const why = async (): Promise<string> => `kipsec status:\n${await agent.table()}\nswanctl --list-sas:\n${await swan.listSas()}\nxfrm a: ${(await kernelSpis(a)).join(' ')}\nxfrm b: ${(await kernelSpis(b)).join(' ')}\nagent log tail:\n${agent.log().slice(-5000)}\ncharon log tail:\n${swan.log().slice(-5000)}`;

  const ping = new ContinuousPing(a, '10.1.1.1', '10.2.1.1');
  await new Promise((r) => setTimeout(r, 2_000));
  await b.run('tc', ['qdisc', 'add', 'dev', 'eth0', 'root', 'netem', 'delay', '2000ms']);
  const logFrom = agent.log().length;

  /** One collision; returns charon's verdict ("won": charon's SA stays, the agent lost). */
  const collide = async (what: 'child' | 'ike'): Promise<'won' | 'lost'> => {
    const mark = swan.log().length;
    const started = Date.now();
    const sw = swan.swanctl(['--rekey', what === 'ike' ? '--ike' : '--child', 'coll'], false);
    // Ours follows as fast as we see charon's (its log is line-flushed): the sooner it does, the
    // sooner our exchange ends, before charon has installed the SA of its own exchange.
    await pollUntil(`charon sends its ${what} rekey request`, 60_000, async () => (/generating CREATE_CHILD_SA request/.test(swan.log().slice(mark)) ? true : undefined), why, 20);
    const r = await controlRequest(agent.socket, 'rekey', { name: 'coll', ike: what === 'ike', child: what === 'child' }, 30_000) as { ike: boolean; children: unknown[] };
    assert.ok(what === 'ike' ? r.ike : r.children.length === 1, `agent started its ${what} rekey: ${JSON.stringify(r)}`);
    assert.equal((await sw).code, 0, `swanctl --rekey --${what}`);
    const seen = await pollUntil(`charon detects the ${what} rekey collision`, 60_000, async () => /(CHILD|IKE)_SA rekey collision (won|lost)[^\n]*/.exec(swan.log().slice(mark)) ?? undefined, why);
    t.diagnostic(`${what}: charon: ${seen[0]} (${Date.now() - started} ms)`);
    return seen[2] === 'won' ? 'won' : 'lost';
  };

  const ike0 = await (async () => { const s = (await agent.tunnel('coll')).ikeSpis!; return `${s.initiator}_i ${s.responder}_r`; })();
  // Who wins is down to the nonces (random on both sides): four rounds give both outcomes with
  // probability 7/8; each is reported.
  let child1 = (await agent.tunnel('coll')).children[0]!;
  const verdicts: string[] = [];
  for (let round = 1; round <= 4; round++) {
    const before = child1;
    verdicts.push(await collide('child'));
    // Settled: one Child SA per side, mirrored, the other three gone from both kernels.
    child1 = await pollUntil(`round ${round}: one Child SA, mirrored, and only its SPIs in both kernels`, 120_000, async () => {
      const ours = (await agent.tunnel('coll')).children;
      const theirs = (await swan.childSas()).filter((c) => c.name === 'coll');
      if (ours.length !== 1 || ours[0]!.state !== 'installed' || theirs.length !== 1 || theirs[0]!.state !== 'INSTALLED') return undefined;
      const c = ours[0]!;
      if (c.spiIn === before.spiIn || theirs[0]!.spiIn !== c.spiOut || theirs[0]!.spiOut !== c.spiIn) return undefined;
      const k = [...await kernelSpis(a), ...await kernelSpis(b)].sort();
      return JSON.stringify(k) === JSON.stringify([c.spiIn, c.spiIn, c.spiOut, c.spiOut].sort()) ? c : undefined;
    }, why);
    t.diagnostic(`child collision ${round}: ${before.spiIn}/${before.spiOut} -> ${child1.spiIn}/${child1.spiOut}, suite ${child1.suite}`);
    assert.equal(child1.suite, esp);
  }
  t.diagnostic(`Child SA collisions: the agent lost ${verdicts.filter((v) => v === 'won').length}, won ${verdicts.filter((v) => v === 'lost').length}`);

  await collide('ike');
  const ike1 = await pollUntil('one IKE SA, the same on both sides, with the Child SA on it', 120_000, async () => {
    const s = await agent.tunnel('coll');
    const mine = (await swan.ikeSas()).filter((x) => x.name === 'coll');
    if (s.ikeState !== 'established' || !s.ikeSpis || mine.length !== 1 || mine[0]!.state !== 'ESTABLISHED') return undefined;
    if (mine[0]!.spiI !== s.ikeSpis.initiator || mine[0]!.spiR !== s.ikeSpis.responder || `${s.ikeSpis.initiator}_i ${s.ikeSpis.responder}_r` === ike0) return undefined;
    return new RegExp(`\\bin\\s+${child1.spiOut}\\b`).test(mine[0]!.block) ? `${s.ikeSpis.initiator}_i ${s.ikeSpis.responder}_r` : undefined;
  }, why);
  t.diagnostic(`IKE collision: ${ike0} -> ${ike1}`);

  // The survivors work: a plain agent rekey of both on the new IKE SA.
  await b.run('tc', ['qdisc', 'change', 'dev', 'eth0', 'root', 'netem', 'delay', '0ms']); // queued packets still leave: nothing dropped
  const r = await agent.kipsec(['rekey', 'coll', '--ike', '--child']);
  assert.equal(r.code, 0, `${r.stdout}${r.stderr}`);
  await pollUntil('rekeyed again after the collisions', 120_000, async () => {
    const s = await agent.tunnel('coll');
    const c = s.children.filter((x) => x.state === 'installed');
    const k = [...await kernelSpis(a), ...await kernelSpis(b)];
    return s.ikeState === 'established' && `${s.ikeSpis?.initiator}_i ${s.ikeSpis?.responder}_r` !== ike1 && c.length === 1 && c[0]!.spiIn !== child1.spiIn && k.length === 4 ? true : undefined;
  }, why);
  const downs = agent.log().slice(logFrom).split('\n').filter((l) => /"msg":"(IKE SA down|child SA down)"/.test(l));
  assert.deepEqual(downs, [], 'a collision is not an SA going down');

  await new Promise((r2) => setTimeout(r2, 2_000));
  const c = await ping.stop();
  // The kernel's own account of drops (XfrmInNoStates: ESP for an SPI not installed, …).
  for (const [label, ns] of [['agent', a], ['charon', b]] as const) {
    const stat = (await ns.run('cat', ['/proc/net/xfrm_stat'])).stdout.split('\n').filter((l) => /\s[1-9]\d*$/.test(l)).join(', ');
    t.diagnostic(`xfrm_stat ${label}: ${stat || 'all zero'}`);
  }
  t.diagnostic(`${c.received}/${c.sent} pings across 4 Child SA collisions, an IKE SA collision and a rekey of both`);
  assert.ok(c.wasRunning && c.sent > 100, `ping ran throughout (${c.sent} sent):\n${c.tail}`);
  assert.deepEqual(c.lost, [], `pings lost (only the last echo may be in flight at SIGINT):\n${c.tail}`);
  assert.equal(await agent.stop(), 0);
});
