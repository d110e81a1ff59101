// Kernel lane (real ESP): NAT traversal (RFC 7296 §2.23, RFC 3948). The agent sits behind a
// router namespace that rewrites its address (10.0.0.2 ↔ 203.0.113.1). This machine's userspace
// has neither iptables nor nft, so the router uses tc's stateless `nat` action instead of
// MASQUERADE: addresses change, ports stay — enough for NAT_DETECTION to differ, so both sides
// float to UDP 4500 and the kernel carries ESP in UDP, which only works when the agent's 4500
// socket has UDP_ENCAP set (the native addon). A ping crosses the NAT through the tunnel.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Netns, link } from '../lib/netns.js';
import { StrongSwan } from '../lib/strongswan.js';
import { AgentProcess, pingCounts, tunnelYaml } from './agent-harness.js';
import { swanctlConf } from './agent-swan.js';
import { prepareVm } from './agent-vm.js';

prepareVm();
const PSK = 'kipsec e2e: correct horse battery staple';

test('NAT-T through a NAT router: detection, float to 4500, kernel ESP-in-UDP, ping', async (t) => {
  const a = await Netns.create(t, 'natA');
  const r = await Netns.create(t, 'natR');
  const b = await Netns.create(t, 'natB');
  await link(a, '10.0.0.2/24', r, '10.0.0.1/24', 'eth0', 'eth0');
  await link(r, '203.0.113.1/24', b, '203.0.113.2/24', 'eth1', 'eth0');
  await r.run('sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
  await a.run('ip', ['route', 'add', 'default', 'via', '10.0.0.1']);
  await a.run('ip', ['addr', 'add', '10.1.0.1/24', 'dev', 'lo']);
  await b.run('ip', ['addr', 'add', '10.2.0.1/24', 'dev', 'lo']);
  // 1:1 NAT on the router's outside interface (egress: source 10.0.0.2 → 203.0.113.1; ingress: back).
  await r.run('tc', ['qdisc', 'add', 'dev', 'eth1', 'root', 'handle', '1:', 'prio']);
  await r.run('tc', ['filter', 'add', 'dev', 'eth1', 'parent', '1:', 'protocol', 'ip', 'prio', '10', 'u32', 'match', 'ip', 'src', '10.0.0.2/32', 'action', 'nat', 'egress', '10.0.0.2/32', '203.0.113.1']);
  await r.run('tc', ['qdisc', 'add', 'dev', 'eth1', 'ingress']);
  await r.run('tc', ['filter', 'add', 'dev', 'eth1', 'parent', 'ffff:', 'protocol', 'ip', 'prio', '10', 'u32', 'match', 'ip', 'dst', '203.0.113.1/32', 'action', 'nat', 'ingress', '203.0.113.1/32', '10.0.0.2']);

  const swan = await StrongSwan.start(t, b, {
    mode: 'kernel',
    swanctl: swanctlConf([{ name: 'nat', local: '203.0.113.2', remote: '10.0.0.2', remoteAddrs: '%any', remotePskId: '10.0.0.2',
      localTs: '10.2.0.0/24', remoteTs: '10.1.0.0/24', proposals: 'aes256gcm16-prfsha384-x25519', espProposals: 'aes256gcm16', auth: { psk: PSK } }]),
  });
  const config = tunnelYaml({ name: 'nat', local: '10.0.0.2', remote: '203.0.113.2', localSubnets: ['10.1.0.0/24'], remoteSubnets: ['10.2.0.0/24'] });
  const agent = await AgentProcess.start(t, a, { config, files: { psk: `${PSK}\n` } });
  const st = await agent.waitEstablished('nat', 120_000);
  assert.equal(st.natDetected, true, 'NAT detected');
  assert.equal(st.remotePort, 4500, 'floated to 4500');
  const child = st.children.find((c) => c.state === 'installed')!;
  assert.equal(child.encap, true, 'Child SA uses ESP-in-UDP');
  const xs = (await a.run('ip', ['xfrm', 'state'])).stdout;
  assert.match(xs, /encap type espinudp sport 4500 dport 4500/);
  const ping = await a.run('ping', ['-c', '3', '-i', '0.2', '-W', '3', '-I', '10.1.0.1', '10.2.0.1'], { check: false });
  assert.equal(pingCounts(ping.stdout).received, 3, `ping across the NAT:\n${ping.stdout}\n${await agent.table()}\n${await swan.listSas()}`);
  const [theirs] = await swan.childSas();
  assert.ok(theirs && theirs.spiIn === child.spiOut && theirs.spiOut === child.spiIn, `SPIs agree:\n${await swan.listSas()}`);
  t.diagnostic(`kipsec status behind NAT:\n${await agent.table()}`);
  assert.equal(await agent.stop(), 0);
});
