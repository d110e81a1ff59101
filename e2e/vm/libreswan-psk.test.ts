// Kernel lane (real ESP): the kipsec agent against Libreswan 5 (pluto, built by
// scripts/build-libreswan.sh; kernel XFRM on both sides), PSK, AES-GCM-16-256, in both roles at
// once: tunnel "a2l" is initiated by the agent, tunnel "l2a" by pluto. Each gets a ping through it
// and SPIs that match Libreswan's view (our inbound is its outbound); a clean SIGTERM deletes the
// SAs on both sides. RFC 7296 (IKEv2), RFC 4303/4106 (ESP, AES-GCM).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pair } from '../lib/netns.js';
import { Libreswan, lswConf } from '../lib/libreswan.js';
import { AgentProcess, pingCounts, pollUntil, tunnelYaml } from './agent-harness.js';
import { prepareVm } from './agent-vm.js';

prepareVm();

const PSK = 'kipsec e2e: correct horse battery staple';

test('agent ↔ Libreswan 5 with PSK in both roles: tunnels up, pings encrypted, SPIs match, SIGTERM deletes on both sides', async (t) => {
  const [a, b] = await pair(t, { a: '192.0.2.1/24', b: '192.0.2.2/24' });
  // Two pluto addresses: one IKE SA per agent tunnel (the engine keeps one IKE SA per peer config).
  await b.run('ip', ['addr', 'add', '192.0.2.3/24', 'dev', 'eth0']);
  for (const [ns, addrs] of [[a, ['10.1.1.1/24', '10.1.2.1/24']], [b, ['10.2.1.1/24', '10.2.2.1/24']]] as const)
    for (const x of addrs) await ns.run('ip', ['addr', 'add', x, 'dev', 'lo']);
  // The same suite in both syntaxes: aes256gcm16-prfsha384-x25519 / aes256gcm16.
  const common = { ike: 'aes_gcm256-sha2_384-dh31', esp: 'aes_gcm256', auth: { psk: PSK } } as const;
  const conf = lswConf([
    { ...common, name: 'a2l', local: '192.0.2.2', remote: '192.0.2.1', localSubnet: '10.2.1.0/24', remoteSubnet: '10.1.1.0/24', sourceIp: '10.2.1.1' },
    { ...common, name: 'l2a', local: '192.0.2.3', remote: '192.0.2.1', localSubnet: '10.2.2.0/24', remoteSubnet: '10.1.2.0/24', sourceIp: '10.2.2.1' },
  ]);
  const t0 = Date.now();
  const lsw = await Libreswan.start(t, b, { conns: conf.conns, secrets: conf.secrets });
  t.diagnostic(`pluto up with its conns in ${Date.now() - t0} ms`);
  const config = [
    tunnelYaml({ name: 'a2l', local: '192.0.2.1', remote: '192.0.2.2', localSubnets: ['10.1.1.0/24'], remoteSubnets: ['10.2.1.0/24'], startAction: 'initiate' }),
    tunnelYaml({ name: 'l2a', local: '192.0.2.1', remote: '192.0.2.3', localSubnets: ['10.1.2.0/24'], remoteSubnets: ['10.2.2.0/24'], startAction: 'respond' }),
  ].join('---\n');
  const agent = await AgentProcess.start(t, a, { config, files: { psk: `${PSK}\n` } });
  const explain = async (): Promise<string> => `kipsec:\n${await agent.table()}\n${agent.log().slice(-4000)}\npluto states:\n${await lsw.showStates()}\npluto log (no debug lines), tail:\n${lsw.events().slice(-6000)}`;

  const t1 = Date.now();
  const up = await agent.waitEstablished('a2l', 120_000).catch(async (e: unknown) => { throw new Error(`${String(e)}\n${await explain()}`, { cause: e }); });
  t.diagnostic(`a2l established in ${Date.now() - t1} ms (agent initiator)`);
  const init = await lsw.initiate('l2a', 60);
  assert.equal(init.code, 0, `pluto could not initiate l2a:\n${init.stdout}${init.stderr}\n${await explain()}`);
  await agent.waitEstablished('l2a', 60_000);

  for (const [name, src, dst] of [['a2l', '10.1.1.1', '10.2.1.1'], ['l2a', '10.1.2.1', '10.2.2.1']] as const) {
    const ping = await a.run('ping', ['-c', '3', '-i', '0.2', '-W', '3', '-I', src, dst], { check: false });
    assert.equal(pingCounts(ping.stdout).received, 3, `${name}: ping through the tunnel\n${ping.stdout}${ping.stderr}\n${await explain()}`);
  }
  const theirChildren = await lsw.childSas();
  const status = await agent.status();
  t.diagnostic(`kipsec status:\n${await agent.table()}`);
  t.diagnostic(`pluto --showstates:\n${await lsw.showStates()}`);
  for (const name of ['a2l', 'l2a']) {
    const ours = status.tunnels.find((x) => x.name === name)!;
    const child = ours.children.find((c) => c.state === 'installed')!;
    const theirs = theirChildren.find((c) => c.name === name);
    assert.ok(theirs, `Libreswan lists no Child SA for ${name}:\n${await lsw.showStates()}`);
    assert.equal(child.spiIn, theirs.spiOut, `${name}: our inbound SPI is pluto's outbound`);
    assert.equal(child.spiOut, theirs.spiIn, `${name}: our outbound SPI is pluto's inbound`);
    assert.ok(child.packetsOut >= 3 && child.packetsIn >= 3, `${name}: kernel counters ${JSON.stringify(child)}`);
    assert.equal(ours.ikeSuite, 'aes256gcm16-prfsha384-x25519');
    assert.equal(child.suite.startsWith('aes256gcm16'), true, `${name}: ESP suite ${child.suite}`);
  }
  assert.equal(up.role, 'initiator');
  assert.equal((await agent.tunnel('l2a')).role, 'responder');

  // Pluto's own kernel view: the ESP states in its namespace carry the same SPIs.
  const xs = (await b.run('ip', ['xfrm', 'state'])).stdout;
  for (const c of theirChildren) for (const spi of [c.spiIn, c.spiOut]) assert.match(xs, new RegExp(`spi 0x${spi}`));

  const code = await agent.stop();
  assert.equal(code, 0, 'SIGTERM: clean exit');
  assert.equal((await a.run('ip', ['xfrm', 'state'])).stdout.trim(), '', 'agent removed its SAs');
  // Our Delete notifies: pluto drops both IKE SAs, their Child SAs and their kernel states. It then
  // revives l2a, the conn it was told to bring up (Libreswan 5 keeps such a conn up): a fresh
  // IKE_SA_INIT towards the agent that is gone, which is fine; nothing may stay established.
  const gone = await pollUntil('pluto dropped the SAs after our Delete', 20_000, async () => {
    const left = (await lsw.states()).filter((s) => s.state.startsWith('ESTABLISHED'));
    return left.length === 0 ? true : undefined;
  }, async () => `${await lsw.showStates()}\n${lsw.events().slice(-4000)}`);
  assert.equal(gone, true);
  const xsAfter = (await b.run('ip', ['xfrm', 'state'])).stdout;
  for (const c of theirChildren) assert.doesNotMatch(xsAfter, new RegExp(`spi 0x${c.spiIn}`), `pluto removed the inbound state of ${c.name}`);
  t.diagnostic(`pluto after our Delete:\n${lsw.events().split('\n').filter((l) => /[Dd]elet|reviv/.test(l)).join('\n')}`);
});
