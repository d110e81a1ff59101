// Kernel lane (real ESP): the kipsec agent against real strongSwan (kernel datapath on both
// sides), PSK, in both roles at once: tunnel "a2s" is initiated by the agent, tunnel "s2a" by
// charon. Each gets a ping through it, SPIs that match strongSwan's view (our inbound is its
// outbound), kernel counters in `kipsec status`, and a clean SIGTERM that deletes the SAs on
// both sides (Delete notifies). RFC 7296 (IKEv2), RFC 4303/4106 (ESP, AES-GCM).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pair } from '../lib/netns.js';
import { StrongSwan } from '../lib/strongswan.js';
import { AgentProcess, pingCounts, tunnelYaml } from './agent-harness.js';
import { swanctlConf } from './agent-swan.js';
import { prepareVm } from './agent-vm.js';

prepareVm();

const PSK = 'kipsec e2e: correct horse battery staple';

test('agent ↔ strongSwan with PSK in both roles: tunnels up, pings encrypted, SPIs match, SIGTERM deletes on both sides', async (t) => {
  const [a, b] = await pair(t, { a: '192.0.2.1/24', b: '192.0.2.2/24' });
  // Two charon addresses: strongSwan would otherwise carry both tunnels' Child SAs in one IKE SA
  // between the same gateways, which the engine does not do (one IKE SA per peer config).
  await b.run('ip', ['addr', 'add', '192.0.2.3/24', 'dev', 'eth0']);
  for (const [ns, addrs] of [[a, ['10.1.1.1/24', '10.1.2.1/24']], [b, ['10.2.1.1/24', '10.2.2.1/24']]] as const)
    for (const x of addrs) await ns.run('ip', ['addr', 'add', x, 'dev', 'lo']);
  const common = { proposals: 'aes256gcm16-prfsha384-x25519', espProposals: 'aes256gcm16', auth: { psk: PSK } } as const;
  const swan = await StrongSwan.start(t, b, {
    mode: 'kernel',
    swanctl: swanctlConf([
      { ...common, name: 'a2s', local: '192.0.2.2', remote: '192.0.2.1', localTs: '10.2.1.0/24', remoteTs: '10.1.1.0/24' },
      { ...common, name: 's2a', local: '192.0.2.3', remote: '192.0.2.1', localTs: '10.2.2.0/24', remoteTs: '10.1.2.0/24' },
    ]),
  });
  const config = [
    tunnelYaml({ name: 'a2s', local: '192.0.2.1', remote: '192.0.2.2', localSubnets: ['10.1.1.0/24'], remoteSubnets: ['10.2.1.0/24'], startAction: 'initiate' }),
    tunnelYaml({ name: 's2a', local: '192.0.2.1', remote: '192.0.2.3', localSubnets: ['10.1.2.0/24'], remoteSubnets: ['10.2.2.0/24'], startAction: 'respond' }),
  ].join('---\n');
  const agent = await AgentProcess.start(t, a, { config, files: { psk: `${PSK}\n` } });

  const t0 = Date.now();
  const up = await agent.waitEstablished('a2s');
  t.diagnostic(`a2s established in ${Date.now() - t0} ms (agent initiator)`);
  const init = await swan.initiate('s2a');
  assert.equal(init.code, 0, `charon could not initiate s2a:\n${init.stdout}\n${agent.log().slice(-4000)}`);
  await agent.waitEstablished('s2a');

  for (const [name, src, dst] of [['a2s', '10.1.1.1', '10.2.1.1'], ['s2a', '10.1.2.1', '10.2.2.1']] as const) {
    const ping = await a.run('ping', ['-c', '3', '-i', '0.2', '-W', '3', '-I', src, dst], { check: false });
    assert.equal(pingCounts(ping.stdout).received, 3, `${name}: ping through the tunnel\n${ping.stdout}${ping.stderr}`);
  }
  const swanChildren = await swan.childSas();
  const status = await agent.status();
  t.diagnostic(`kipsec status:\n${await agent.table()}`);
  for (const name of ['a2s', 's2a']) {
    const ours = status.tunnels.find((x) => x.name === name)!;
    const child = ours.children.find((c) => c.state === 'installed')!;
    const theirs = swanChildren.find((c) => c.name === name);
    assert.ok(theirs, `strongSwan lists no child ${name}:\n${await swan.listSas()}`);
    assert.equal(child.spiIn, theirs.spiOut, `${name}: our inbound SPI is charon's outbound`);
    assert.equal(child.spiOut, theirs.spiIn, `${name}: our outbound SPI is charon's inbound`);
    assert.ok(child.packetsOut >= 3 && child.packetsIn >= 3, `${name}: kernel counters ${JSON.stringify(child)}`);
    assert.equal(ours.ikeSuite, 'aes256gcm16-prfsha384-x25519');
    assert.equal(child.suite.startsWith('aes256gcm16'), true);
  }
  assert.equal(up.role, 'initiator');
  assert.equal((await agent.tunnel('s2a')).role, 'responder');

  // The ESP really is in the kernel: XFRM states carry our SPIs.
  const xs = (await a.run('ip', ['xfrm', 'state'])).stdout;
  for (const c of status.tunnels.flatMap((x) => x.children)) assert.match(xs, new RegExp(`spi 0x${c.spiIn}`));

  const code = await agent.stop();
  assert.equal(code, 0, 'SIGTERM: clean exit');
  assert.equal((await a.run('ip', ['xfrm', 'state'])).stdout.trim(), '', 'agent removed its SAs');
  assert.equal((await a.run('ip', ['xfrm', 'policy'])).stdout.trim(), '', 'agent removed its policies');
  const deadline = Date.now() + 15_000;
  while (Object.keys(await swan.ikeStates()).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  assert.deepEqual(await swan.ikeStates(), {}, `charon still has IKE SAs after our Delete:\n${await swan.listSas()}`);
});
