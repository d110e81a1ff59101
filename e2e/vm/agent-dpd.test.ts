// Kernel lane (real ESP): dead peer detection (RFC 7296 §2.4 liveness checks). The link to the
// strongSwan peer goes down; after dpd.interval without traffic the agent sends an empty
// INFORMATIONAL, its retransmissions run out, the IKE SA goes down (action: restart), and when the
// link returns the agent re-establishes on its own: new IKE SPIs, ping passes again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pair } from '../lib/netns.js';
import { StrongSwan } from '../lib/strongswan.js';
import { AgentProcess, pingCounts, tunnelYaml } from './agent-harness.js';
import { swanctlConf } from './agent-swan.js';
import { prepareVm } from './agent-vm.js';

prepareVm();
const PSK = 'kipsec e2e: correct horse battery staple';

test('DPD: a dead peer is detected and the tunnel recovers when it returns (action restart)', async (t) => {
  const [a, b] = await pair(t, { a: '192.0.2.1/24', b: '192.0.2.2/24' });
  await a.run('ip', ['addr', 'add', '10.1.0.1/24', 'dev', 'lo']);
  await b.run('ip', ['addr', 'add', '10.2.0.1/24', 'dev', 'lo']);
  await StrongSwan.start(t, b, {
    mode: 'kernel',
    swanctl: swanctlConf([{ name: 'd', local: '192.0.2.2', remote: '192.0.2.1', localTs: '10.2.0.0/24', remoteTs: '10.1.0.0/24', proposals: 'aes256gcm16-prfsha384-x25519', espProposals: 'aes256gcm16', auth: { psk: PSK } }]),
  });
  const config = tunnelYaml({ name: 'd', local: '192.0.2.1', remote: '192.0.2.2', localSubnets: ['10.1.0.0/24'], remoteSubnets: ['10.2.0.0/24'], extra: '  dpd: {interval: 10s, timeout: 60s, action: restart}\n' });
  const agent = await AgentProcess.start(t, a, { config, files: { psk: `${PSK}\n` } });
  const up = await agent.waitEstablished('d', 120_000);
  // The peer vanishes: its link goes down (no Delete, no answer to anything).
  await b.run('ip', ['link', 'set', 'eth0', 'down']);
  const t0 = Date.now();
  const down = await agent.waitFor('d', (s) => s.ikeState !== 'established' || JSON.stringify(s.ikeSpis) !== JSON.stringify(up.ikeSpis), 300_000, 'DPD declares the peer dead');
  t.diagnostic(`peer declared dead after ${Date.now() - t0} ms: state ${down.ikeState}, last error ${JSON.stringify(down.lastError)}`);
  // dpd.interval 10 s + dpd.timeout 60 s (+ slack for the emulated VM), well under the ≈165 s
  // retransmission schedule that applies when the timeout is not honoured.
  assert.ok(Date.now() - t0 < 150_000, `DPD took ${Date.now() - t0} ms; spec.dpd.timeout is 60 s`);
  await b.run('ip', ['link', 'set', 'eth0', 'up']);
  const t1 = Date.now();
  const back = await agent.waitFor('d', (s) => s.ikeState === 'established' && s.children.some((c) => c.state === 'installed') && JSON.stringify(s.ikeSpis) !== JSON.stringify(up.ikeSpis), 300_000, 're-established after the peer returned');
  t.diagnostic(`re-established ${Date.now() - t1} ms after the link came back: IKE ${JSON.stringify(back.ikeSpis)}`);
  const ping = await a.run('ping', ['-c', '3', '-i', '0.2', '-W', '3', '-I', '10.1.0.1', '10.2.0.1'], { check: false });
  assert.equal(pingCounts(ping.stdout).received, 3, `ping after recovery:\n${ping.stdout}\n${await agent.table()}`);
  assert.equal(await agent.stop(), 0);
});
