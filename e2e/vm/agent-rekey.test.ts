// Kernel lane (real ESP): rekeys under a continuous ping (RFC 7296 §1.3.3, §2.8; DESIGN.md §5
// make-before-break). Two tunnels, one without and one with PFS (x25519 in the ESP proposal):
// charon rekeys the Child SA and the IKE SA, then the agent rekeys the Child SA on its own timer
// (esp.rekeyTime 1m, the schema's minimum). Each rekey must change the SPIs on both sides and
// lose no ping. IKE and Child SA rekeys the agent initiates on command (`kipsec rekey`; the
// schema's minimum ike.rekeyTime, 5m, is too long for this lane) are in agent-rekey-cmd.test.ts,
// collisions with charon's rekeys in agent-rekey-collision.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pair } from '../lib/netns.js';
import { StrongSwan } from '../lib/strongswan.js';
import { AgentProcess, pingCounts, pollUntil, tunnelYaml } from './agent-harness.js';
import { swanctlConf } from './agent-swan.js';
import { prepareVm } from './agent-vm.js';

prepareVm();
const PSK = 'kipsec e2e: correct horse battery staple';

test('child and IKE rekeys from both sides, with and without PFS, under continuous ping: zero loss', async (t) => {
  const [a, b] = await pair(t, { a: '192.0.2.1/24', b: '192.0.2.2/24' });
  await b.run('ip', ['addr', 'add', '192.0.2.3/24', 'dev', 'eth0']);
  const tunnels = [
    { name: 'nopfs', swan: '192.0.2.2', n: 1, esp: 'aes256gcm16' },
    { name: 'pfs', swan: '192.0.2.3', n: 2, esp: 'aes256gcm16-x25519' },
  ] as const;
  for (const x of tunnels) {
    await a.run('ip', ['addr', 'add', `10.1.${x.n}.1/24`, 'dev', 'lo']);
    await b.run('ip', ['addr', 'add', `10.2.${x.n}.1/24`, 'dev', 'lo']);
  }
  const swan = await StrongSwan.start(t, b, {
    mode: 'kernel',
    swanctl: swanctlConf(tunnels.map((x) => ({ name: x.name, local: x.swan, remote: '192.0.2.1', localTs: `10.2.${x.n}.0/24`, remoteTs: `10.1.${x.n}.0/24`, proposals: 'aes256gcm16-prfsha384-x25519', espProposals: x.esp, auth: { psk: PSK } }))),
  });
  const config = tunnels.map((x) => tunnelYaml({ name: x.name, local: '192.0.2.1', remote: x.swan, localSubnets: [`10.1.${x.n}.0/24`], remoteSubnets: [`10.2.${x.n}.0/24`], esp: [x.esp],
    espExtra: 'rekeyTime: 1m, lifeTime: 3m', extra: '  dpd: {interval: 10s, timeout: 30s}\n' })).join('---\n');
  const agent = await AgentProcess.start(t, a, { config, files: { psk: `${PSK}\n` } });
  for (const x of tunnels) await agent.waitEstablished(x.name, 120_000);

  const spis = async (name: string): Promise<string> => (await agent.tunnel(name)).children.filter((c) => c.state === 'installed').map((c) => `${c.spiIn}/${c.spiOut}`).join(',');
  const ikeSpis = async (name: string): Promise<string> => JSON.stringify((await agent.tunnel(name)).ikeSpis);
  const pings = tunnels.map((x) => a.run('ping', ['-c', '1200', '-i', '0.1', '-W', '2', '-I', `10.1.${x.n}.1`, `10.2.${x.n}.1`], { check: false, timeoutMs: 300_000 }));
  await new Promise((r) => setTimeout(r, 3_000));

  for (const x of tunnels) {
    const before = await spis(x.name);
    const r = await swan.swanctl(['--rekey', '--child', x.name], false);
    assert.equal(r.code, 0, `charon child rekey ${x.name}: ${r.stdout}${r.stderr}`);
    await agent.waitFor(x.name, (s) => s.children.some((c) => c.state === 'installed' && `${c.spiIn}/${c.spiOut}` !== before) && s.children.length === 1, 60_000, 'child rekeyed by charon');
    t.diagnostic(`${x.name}: charon child rekey ${before} -> ${await spis(x.name)}`);
    const ikeBefore = await ikeSpis(x.name);
    const r2 = await swan.swanctl(['--rekey', '--ike', x.name], false);
    assert.equal(r2.code, 0, `charon IKE rekey ${x.name}: ${r2.stdout}${r2.stderr}`);
    await agent.waitFor(x.name, (s) => JSON.stringify(s.ikeSpis) !== ikeBefore && s.ikeState === 'established', 60_000, 'IKE SA rekeyed by charon');
    t.diagnostic(`${x.name}: charon IKE rekey ${ikeBefore} -> ${await ikeSpis(x.name)}`);
  }
  // Our own timer: esp.rekeyTime 1m (jittered down) since install.
  for (const x of tunnels) {
    const before = await spis(x.name);
    await agent.waitFor(x.name, (s) => s.children.some((c) => c.state === 'installed' && `${c.spiIn}/${c.spiOut}` !== before) && s.children.length === 1, 120_000, 'child rekeyed by the agent');
    t.diagnostic(`${x.name}: agent child rekey ${before} -> ${await spis(x.name)}`);
  }
  const results = await Promise.all(pings);
  for (const [i, res] of results.entries()) {
    const c = pingCounts(res.stdout);
    t.diagnostic(`${tunnels[i]!.name}: ${c.received}/${c.sent} pings across the rekeys`);
    assert.equal(c.received, c.sent, `${tunnels[i]!.name}: pings lost:\n${res.stdout.split('\n').slice(-3).join('\n')}`);
  }
  // The agent's 1-minute timer keeps rekeying, so a single look can land mid-rekey (old child
  // 'rekeying', no child 'installed'): poll for a moment with one installed Child SA on our side
  // that charon mirrors.
  for (const x of tunnels) {
    await pollUntil(`${x.name}: SPIs agree after rekeys`, 60_000, async () => {
      const ours = (await agent.tunnel(x.name)).children;
      if (ours.length !== 1 || ours[0]!.state !== 'installed') return undefined;
      const sw = (await swan.childSas()).find((c) => c.spiIn === ours[0]!.spiOut);
      return sw && sw.spiOut === ours[0]!.spiIn ? true : undefined;
    }, async () => `ours: ${JSON.stringify((await agent.tunnel(x.name)).children)}\n${await swan.listSas()}`);
  }
  assert.equal(await agent.stop(), 0);
});
