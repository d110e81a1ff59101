// Netns lane (host kernel): the `kipsec agent` process and the CLI as a user drives them.
// Config errors: one line per problem with the field path, exit status 2, nothing bound.
// A running agent: control socket mode 0600, `kipsec status` table and --json, SIGHUP with a bad
// file keeps the running config, `kipsec reload` applies a good one, SIGTERM exits 0.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { statSync } from 'node:fs';
import { Netns } from '../lib/netns.js';
import { AgentProcess, agentBundle, tunnelYaml } from '../vm/agent-harness.js';

const PSK = 'kipsec e2e: correct horse battery staple';

function cli(args: readonly string[], ns?: Netns): Promise<{ code: number; stdout: string; stderr: string }> {
  const [cmd, argv] = ns ? ['ip', ['netns', 'exec', ns.name, process.execPath, agentBundle(), ...args]] as const : [process.execPath, [agentBundle(), ...args]] as const;
  return new Promise((resolve) => {
    execFile(cmd, argv, { timeout: 60_000 }, (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }));
  });
}

const good = (name: string) => tunnelYaml({ name, local: '192.0.2.1', remote: '192.0.2.2', localSubnets: ['10.1.0.0/24'], remoteSubnets: ['10.2.0.0/24'], startAction: 'respond' });

test('a bad config: one line per problem with its field path, exit 2, nothing bound', async (t) => {
  const ns = await Netns.create(t, 'agcfg');
  await ns.run('ip', ['addr', 'add', '192.0.2.1/24', 'dev', 'lo']);
  const a = await AgentProcess.start(t, ns, { config: good('x'), files: { psk: 'too short\n' } }).catch((e: Error) => e);
  assert.ok(a instanceof Error, 'agent must not start');
  assert.match(a.message, /exited 2 before listening/);
  assert.match(a.message, /x spec\.auth\.psk\.file: PSK in .* is 9 bytes; at least 20 are required/);
  assert.match(a.message, /kipsec agent: 1 config problem; nothing was applied/);
  const ss = await ns.run('ss', ['-uln'], { check: false });
  assert.doesNotMatch(ss.stdout, /:500\b/, 'nothing bound');
});

test('running agent: status table and --json over a 0600 socket, SIGHUP with a bad file keeps config, reload applies, SIGTERM exits 0', async (t) => {
  const ns = await Netns.create(t, 'agrun');
  await ns.run('ip', ['addr', 'add', '192.0.2.1/24', 'dev', 'lo']);
  const agent = await AgentProcess.start(t, ns, { config: good('alpha'), files: { psk: `${PSK}\n` } });
  assert.equal(statSync(agent.socket).mode & 0o777, 0o600);
  const ss = await ns.run('ss', ['-uln']);
  assert.match(ss.stdout, /192\.0\.2\.1:500\b/);
  assert.match(ss.stdout, /192\.0\.2\.1:4500\b/);

  const table = await cli(['status', '--control-socket', agent.socket]);
  assert.equal(table.code, 0, table.stderr);
  assert.match(table.stdout, /alpha: 192\.0\.2\.1 <-> 192\.0\.2\.2 {2}IKE NONE/);
  const json = await cli(['status', '--json', '--control-socket', agent.socket]);
  assert.equal(JSON.parse(json.stdout).tunnels[0].name, 'alpha');
  const unknown = await cli(['initiate', 'nope', '--control-socket', agent.socket]);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /no tunnel named "nope"/);

  // SIGHUP with a broken file: logged, running config kept.
  agent.writeConfig(good('alpha').replace('aes256gcm16-prfsha384-x25519', 'aes257-prfsha384-x25519'));
  process.kill(agent.pid!, 'SIGHUP');
  const deadline = Date.now() + 20_000;
  while (!/config reload refused/.test(agent.log()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  assert.match(agent.log(), /"path":"[^"]*alpha spec\.ike\.proposals\[0\]","problem":"unknown transform \\"aes257\\"","msg":"config problem"/);
  assert.deepEqual((await agent.status()).tunnels.map((x) => x.name), ['alpha']);
  const refused = await cli(['reload', '--control-socket', agent.socket]);
  assert.equal(refused.code, 2);
  assert.match(refused.stderr, /alpha spec\.ike\.proposals\[0\]: unknown transform "aes257"/);

  agent.writeConfig(`${good('alpha')}---\n${good('beta').replace('192.0.2.2', '192.0.2.3')}`);
  const ok = await cli(['reload', '--control-socket', agent.socket]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /1 added, 0 removed, 0 changed, 1 unchanged/);
  assert.deepEqual((await agent.status()).tunnels.map((x) => x.name), ['alpha', 'beta']);
  assert.equal(await agent.stop(), 0);
  assert.ok(!agent.log().includes(PSK));
});

test('kipsec diagnose names each check', async (t) => {
  const ns = await Netns.create(t, 'agdiag');
  const r = await cli(['diagnose'], ns);
  for (const name of ['CAP_NET_ADMIN', 'XFRM netlink', 'kernel ESP', 'native addon']) assert.match(r.stdout, new RegExp(name));
  assert.match(r.stdout, /ok +CAP_NET_ADMIN/);
  assert.match(r.stdout, /ok +XFRM netlink/);
  // This lane runs on the host kernel, which refuses ESP states: diagnose must say so (exit 1).
  if (/FAIL +kernel ESP/.test(r.stdout)) assert.equal(r.code, 1);
});
