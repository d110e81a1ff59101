// Kernel lane (real ESP): rekeys the AGENT initiates, on the operator's `kipsec rekey` (issue 5:
// "Child and IKE rekeys initiated by either side, with and without PFS, under continuous pings
// with zero loss"; the charon-initiated half is agent-rekey.test.ts). Two tunnels against one
// charon: "nopfs" (ESP without a KE method; the agent is the original IKE initiator) and "pfs"
// (esp aes256gcm16-x25519; charon initiated it, so the agent rekeys from the original responder's
// role). On each, under a 10/s ping:
//   1. `kipsec rekey NAME --ike`: new IKE SPIs in our status and in `swanctl --list-sas`, the old
//      IKE SA gone on both sides, the Child SA moved unchanged to the new IKE SA (RFC 7296 §2.18);
//   2. `kipsec rekey NAME`: a Child SA rekey on that new IKE SA (§1.3.3, KE payloads with PFS),
//      new SPIs on both sides, the old ones gone from both kernels after the delete delay (§2.8);
//   3. `kipsec rekey NAME --ike --child`: both again, IKE SA first.
// Every ping must come back. Collisions with charon's rekeys: agent-rekey-collision.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pair } from '../lib/netns.js';
import { StrongSwan } from '../lib/strongswan.js';
import { AgentProcess, ContinuousPing, kernelSpis, pollUntil, tunnelYaml } from './agent-harness.js';
import { swanctlConf } from './agent-swan.js';
import { prepareVm } from './agent-vm.js';

prepareVm();
const PSK = 'kipsec e2e: correct horse battery staple';

test('agent-initiated IKE and Child SA rekeys (kipsec rekey), with and without PFS, from both original roles, under continuous ping: zero loss (RFC 7296 §1.3.2, §1.3.3, §2.8, §2.18)', async (t) => {
  const [a, b] = await pair(t, { a: '192.0.2.1/24', b: '192.0.2.2/24' });
  await b.run('ip', ['addr', 'add', '192.0.2.3/24', 'dev', 'eth0']);
  const tunnels = [
    { name: 'nopfs', swan: '192.0.2.2', n: 1, esp: 'aes256gcm16', agentStarts: true },
    { name: 'pfs', swan: '192.0.2.3', n: 2, esp: 'aes256gcm16-x25519', agentStarts: false },
  ] as const;
  for (const x of tunnels) {
    await a.run('ip', ['addr', 'add', `10.1.${x.n}.1/24`, 'dev', 'lo']);
    await b.run('ip', ['addr', 'add', `10.2.${x.n}.1/24`, 'dev', 'lo']);
  }
  const swan = await StrongSwan.start(t, b, {
    mode: 'kernel',
    swanctl: swanctlConf(tunnels.map((x) => ({ name: x.name, local: x.swan, remote: '192.0.2.1', localTs: `10.2.${x.n}.0/24`, remoteTs: `10.1.${x.n}.0/24`, proposals: 'aes256gcm16-prfsha384-x25519', espProposals: x.esp, auth: { psk: PSK } }))),
  });
  // Lifetimes far beyond the test: every rekey here is one the operator asked for.
  const config = tunnels.map((x) => tunnelYaml({ name: x.name, local: '192.0.2.1', remote: x.swan, localSubnets: [`10.1.${x.n}.0/24`], remoteSubnets: [`10.2.${x.n}.0/24`], esp: [x.esp],
    startAction: x.agentStarts ? 'initiate' : 'respond', extra: '  dpd: {interval: 10s, timeout: 30s}\n' })).join('---\n');
  const agent = await AgentProcess.start(t, a, { config, files: { psk: `${PSK}\n` } });
  for (const x of tunnels) {
    if (!x.agentStarts) {
      const r = await swan.initiate(x.name, 60);
      assert.equal(r.code, 0, `charon could not initiate ${x.name}:\n${r.stdout}${r.stderr}`);
    }
    const up = await agent.waitEstablished(x.name, 120_000).catch((e: unknown) => { throw new Error(`${String(e)}\ncharon log tail:\n${swan.log().slice(-6000)}`); });
    assert.equal(up.role, x.agentStarts ? 'initiator' : 'responder');
  }

  const pings = tunnels.map((x) => new ContinuousPing(a, `10.1.${x.n}.1`, `10.2.${x.n}.1`));
  await new Promise((r) => setTimeout(r, 3_000));

  const ikeText = async (name: string): Promise<string> => { const s = (await agent.tunnel(name)).ikeSpis; return s ? `${s.initiator}_i ${s.responder}_r` : '(none)'; };
  const installed = async (name: string) => (await agent.tunnel(name)).children.filter((c) => c.state === 'installed');
  const why = (name: string) => async (): Promise<string> => `kipsec status:\n${await agent.table()}\nswanctl --list-sas:\n${await swan.listSas()}\nxfrm a: ${(await kernelSpis(a)).join(' ')}\nxfrm b: ${(await kernelSpis(b)).join(' ')}\nagent log tail:\n${agent.log().slice(-5000)}\ncharon log tail:\n${swan.log().slice(-4000)}\n(${name})`;

  /** The IKE SA was rekeyed by us: new SPIs on both sides, the old one gone from charon. */
  async function ikeRekeyed(name: string, before: string): Promise<string> {
    const now = await pollUntil(`${name}: new IKE SA in our status`, 60_000, async () => {
      const s = await agent.tunnel(name);
      const txt = await ikeText(name);
      return s.ikeState === 'established' && txt !== before ? txt : undefined;
    }, why(name));
    assert.equal((await agent.tunnel(name)).role, 'initiator', `${name}: the rekey initiator is the new SA's original initiator (RFC 7296 §2.18)`);
    const [spiI, spiR] = now.split(' ').map((s) => s.slice(0, 16));
    await pollUntil(`${name}: charon lists only the new IKE SA`, 60_000, async () => {
      const mine = (await swan.ikeSas()).filter((s) => s.name === name);
      return mine.length === 1 && mine[0]!.spiI === spiI && mine[0]!.spiR === spiR && mine[0]!.state === 'ESTABLISHED' ? true : undefined;
    }, why(name));
    return now;
  }

  /** Our Child SA and charon's agree, and charon lists it under the IKE SA with `ikeSpiI`. */
  async function childAgrees(name: string, ikeSpiI: string): Promise<{ spiIn: string; spiOut: string }> {
    return pollUntil(`${name}: charon's Child SA mirrors ours on the current IKE SA`, 60_000, async () => {
      const ours = await installed(name);
      if (ours.length !== 1) return undefined;
      const ike = (await swan.ikeSas()).find((s) => s.name === name && s.spiI === ikeSpiI);
      const c = ours[0]!;
      return ike && new RegExp(`\\bin\\s+${c.spiOut}\\b`).test(ike.block) && new RegExp(`\\bout\\s+${c.spiIn}\\b`).test(ike.block) ? { spiIn: c.spiIn, spiOut: c.spiOut } : undefined;
    }, why(name));
  }

  /** Child SA rekeyed: new SPIs on both sides, the old ones gone from both kernels after the delete delay. */
  async function childRekeyed(name: string, old: { spiIn: string; spiOut: string }, ikeSpiI: string): Promise<{ spiIn: string; spiOut: string }> {
    await pollUntil(`${name}: a new Child SA in our status`, 60_000, async () => {
      const c = await installed(name);
      return c.length === 1 && c[0]!.spiIn !== old.spiIn && c[0]!.spiOut !== old.spiOut ? true : undefined;
    }, why(name));
    const now = await childAgrees(name, ikeSpiI);
    const t0 = Date.now();
    await pollUntil(`${name}: old SPIs ${old.spiIn}/${old.spiOut} out of both kernels`, 60_000, async () => {
      const gone = [...await kernelSpis(a), ...await kernelSpis(b)].every((s) => s !== old.spiIn && s !== old.spiOut);
      return gone ? true : undefined;
    }, why(name));
    t.diagnostic(`${name}: old Child SA out of both kernels ${Date.now() - t0} ms after the new one showed on both sides`);
    const k = [...await kernelSpis(a), ...await kernelSpis(b)];
    for (const s of [now.spiIn, now.spiOut]) assert.equal(k.filter((x) => x === s).length, 2, `${name}: SPI ${s} installed in both kernels`);
    assert.equal((await installed(name))[0]!.suite, tunnels.find((x) => x.name === name)!.esp, `${name}: the suite shows PFS exactly when the ESP proposal has a KE method`);
    return now;
  }

  const kipsec = async (args: string[], expect: RegExp): Promise<void> => {
    const t0 = Date.now();
    const r = await agent.kipsec(['rekey', ...args]);
    assert.equal(r.code, 0, `kipsec rekey ${args.join(' ')}: exit ${r.code}\n${r.stdout}${r.stderr}`);
    assert.match(r.stdout, expect);
    t.diagnostic(`kipsec rekey ${args.join(' ')} (${Date.now() - t0} ms): ${r.stdout.trim().replace(/\n/g, ' | ')}`);
  };

  for (const x of tunnels) {
    // 1. IKE SA rekey; the Child SA moves to the new IKE SA unchanged.
    const ike0 = await ikeText(x.name);
    const child0 = await childAgrees(x.name, ike0.slice(0, 16));
    await kipsec([x.name, '--ike'], new RegExp(`^${x.name}: IKE SA rekey started \\(IKE SA ${ike0}\\)$`, 'm'));
    const ike1 = await ikeRekeyed(x.name, ike0);
    t.diagnostic(`${x.name}: agent IKE rekey ${ike0} -> ${ike1}`);
    assert.deepEqual(await childAgrees(x.name, ike1.slice(0, 16)), child0, `${x.name}: same Child SA, now under the new IKE SA`);

    // 2. Child SA rekey, on the new IKE SA.
    await kipsec([x.name], new RegExp(`^${x.name}: Child SA ${x.name} rekey started \\(SPIs in ${child0.spiIn}, out ${child0.spiOut}\\)$`, 'm'));
    const child1 = await childRekeyed(x.name, child0, ike1.slice(0, 16));
    assert.equal(await ikeText(x.name), ike1, `${x.name}: a Child SA rekey leaves the IKE SA alone`);
    t.diagnostic(`${x.name}: agent child rekey ${child0.spiIn}/${child0.spiOut} -> ${child1.spiIn}/${child1.spiOut}`);

    // 3. Both: the IKE SA first, then the Child SA on its successor.
    await kipsec([x.name, '--ike', '--child'], /IKE SA rekey started[\s\S]*Child SA .* rekey started/);
    const ike2 = await ikeRekeyed(x.name, ike1);
    const child2 = await childRekeyed(x.name, child1, ike2.slice(0, 16));
    t.diagnostic(`${x.name}: agent IKE + child rekey ${ike1} -> ${ike2}, ${child1.spiIn}/${child1.spiOut} -> ${child2.spiIn}/${child2.spiOut}`);
  }

  await new Promise((r) => setTimeout(r, 2_000));
  for (const [i, pg] of pings.entries()) {
    const name = tunnels[i]!.name;
    const c = await pg.stop();
    t.diagnostic(`${name}: ${c.received}/${c.sent} pings across 2 IKE and 2 Child SA rekeys`);
    assert.ok(c.wasRunning, `${name}: ping ended before the rekeys were done:\n${c.tail}`);
    assert.ok(c.sent > 100, `${name}: ping ran (${c.sent} sent)`);
    assert.deepEqual(c.lost, [], `${name}: pings lost (only the last echo may be in flight at SIGINT):\n${c.tail}`);
  }
  assert.equal(await agent.stop(), 0);
});
