// Kernel lane (real ESP), the container image: `kipsec agent --standalone` run from the image's
// root filesystem — its Node, its addon, its dist/ — against strongSwan (kernel datapath), PSK,
// the agent initiating. The image lane (test/image/image.test.ts, on the host, before this lane)
// builds build/image/kipsec-<version>.oci.tar and unpacks its layers into build/image/rootfs,
// which this VM sees through its overlay; the agent is chrooted there in a fresh mount namespace
// inside the test namespace, with /proc, /dev, /run and /tmp mounted as a runtime would and its
// config bind-mounted at /run/kt. Checks: the tunnel comes up, a ping crosses it, the SPIs are
// charon's, the process runs the image's node and has the image's addon mapped, the image's own
// `kipsec status` reads the agent, and SIGTERM deletes the SAs on both sides.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoPath } from '../../test/lib/paths.js';
import { controlRequest } from '../../src/agent/control/client.js';
import type { AgentStatus } from '../../src/agent/status.js';
import { pair, type Netns } from '../lib/netns.js';
import { StrongSwan } from '../lib/strongswan.js';
import { pingCounts, tunnelYaml } from './agent-harness.js';
import { swanctlConf } from './agent-swan.js';
import { prepareVm } from './agent-vm.js';

prepareVm();

const PSK = 'kipsec e2e: the image, not the checkout';
const ROOTFS = repoPath('build', 'image', 'rootfs');
// The image config's entrypoint and PATH (the image lane asserts the config says exactly this).
const ENTRYPOINT = ['/usr/local/bin/node', '/app/bin/kipsec.js'];
const PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

const RUNNER = `set -e
R=$1; D=$2; shift 2
mount --make-rprivate /
mount -t proc proc "$R/proc"
mount --rbind /dev "$R/dev"
mount -t tmpfs -o mode=755 tmpfs "$R/run"
mount -t tmpfs -o mode=1777 tmpfs "$R/tmp"
mkdir "$R/run/kt"
mount --bind "$D" "$R/run/kt"
exec chroot "$R" /usr/bin/env -i -C /app ${PATH} "$@"`;

/** `kipsec ARGS` from the image, in namespace ns; dir is visible inside as /run/kt. */
function imageKipsec(ns: Netns, dir: string, args: readonly string[]): ReturnType<Netns['spawn']> {
  return ns.spawn('unshare', ['--mount', '--fork', '--kill-child', 'sh', '-c', RUNNER, 'sh', ROOTFS, dir, ...ENTRYPOINT, ...args]);
}

function collect(child: ReturnType<Netns['spawn']>): { out: () => string; exit: Promise<number> } {
  let out = '';
  child.stdout?.on('data', (b: Buffer) => { out += b.toString(); });
  child.stderr?.on('data', (b: Buffer) => { out += b.toString(); });
  return { out: () => out, exit: new Promise((r) => child.on('close', (code) => r(code ?? 128))) };
}

test('the image\'s standalone agent ↔ strongSwan: tunnel up, ping encrypted, image node + addon, SIGTERM deletes on both sides', async (t) => {
  const manifest = join(ROOTFS, '.manifest');
  assert.ok(existsSync(manifest), `${ROOTFS} is missing: the image lane unpacks it (bash scripts/test.sh image, or node scripts/run-lanes.mjs image vm)`);
  t.diagnostic(`image ${readFileSync(manifest, 'utf8').trim()}`);

  const [a, b] = await pair(t, { a: '192.0.2.1/24', b: '192.0.2.2/24' });
  await a.run('ip', ['addr', 'add', '10.1.1.1/24', 'dev', 'lo']);
  await b.run('ip', ['addr', 'add', '10.2.1.1/24', 'dev', 'lo']);
  const swan = await StrongSwan.start(t, b, {
    mode: 'kernel',
    swanctl: swanctlConf([{ name: 'img', local: '192.0.2.2', remote: '192.0.2.1', localTs: '10.2.1.0/24', remoteTs: '10.1.1.0/24', proposals: 'aes256gcm16-prfsha384-x25519', espProposals: 'aes256gcm16', auth: { psk: PSK } }]),
  });

  const dir = mkdtempSync(join(tmpdir(), 'kipsec-image-agent-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'psk'), `${PSK}\n`, { mode: 0o600 });
  writeFileSync(join(dir, 'tunnels.yaml'), tunnelYaml({ name: 'img', local: '192.0.2.1', remote: '192.0.2.2', localSubnets: ['10.1.1.0/24'], remoteSubnets: ['10.2.1.0/24'], startAction: 'initiate' }));
  const socket = join(dir, 'agent.sock');
  const child = imageKipsec(a, dir, ['agent', '--standalone', '--config', '/run/kt/tunnels.yaml', '--control-socket', '/run/kt/agent.sock', '--log-level', 'debug']);
  const agent = collect(child);
  t.after(() => { try { process.kill(child.pid!, 'SIGKILL'); } catch { /* gone */ } });

  // Up: the control socket, then the tunnel (TCG: Node loads dist/ from 9p, slow but bounded).
  const t0 = Date.now();
  let status: AgentStatus | undefined;
  for (const deadline = Date.now() + 240_000; ; await new Promise((r) => setTimeout(r, 500))) {
    assert.ok(child.exitCode === null, `the image's agent exited ${child.exitCode}:\n${agent.out()}`);
    assert.ok(Date.now() < deadline, `no established tunnel within 240 s; last status ${JSON.stringify(status)}\n${agent.out().slice(-6000)}`);
    if (!existsSync(socket)) continue;
    status = await (controlRequest(socket, 'status', undefined, 30_000) as Promise<AgentStatus>).catch(() => undefined);
    const img = status?.tunnels.find((x) => x.name === 'img');
    if (img?.ikeState === 'established' && img.children.some((c) => c.state === 'installed')) break;
  }
  t.diagnostic(`img established ${((Date.now() - t0) / 1000).toFixed(1)} s after the image's agent started`);

  // The process is the image's: its root is ROOTFS, its binary the image's node, the addon mapped
  // (paths in maps are as seen from here, i.e. under ROOTFS).
  const pid = Number(readFileSync(`/proc/${child.pid!}/task/${child.pid!}/children`, 'utf8').trim().split(/\s+/)[0]);
  assert.equal(readlinkSync(`/proc/${pid}/root`), ROOTFS);
  const maps = readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n').map((l) => l.slice(l.indexOf('/')));
  assert.ok(maps.includes(join(ROOTFS, 'usr/local/bin/node')), 'the process runs the image\'s node');
  assert.ok(maps.includes(join(ROOTFS, 'app/native/build/Release/kipsec_native.node')), 'the image\'s addon is mapped');

  const ping = await a.run('ping', ['-c', '3', '-i', '0.2', '-W', '3', '-I', '10.1.1.1', '10.2.1.1'], { check: false });
  assert.equal(pingCounts(ping.stdout).received, 3, `ping through the tunnel\n${ping.stdout}${ping.stderr}`);
  const ours = (await (controlRequest(socket, 'status', undefined, 30_000) as Promise<AgentStatus>)).tunnels.find((x) => x.name === 'img')!;
  const child0 = ours.children.find((c) => c.state === 'installed')!;
  const theirs = (await swan.childSas()).find((c) => c.name === 'img');
  assert.ok(theirs, `strongSwan lists no child img:\n${await swan.listSas()}`);
  assert.equal(child0.spiIn, theirs.spiOut, 'our inbound SPI is charon\'s outbound');
  assert.equal(child0.spiOut, theirs.spiIn, 'our outbound SPI is charon\'s inbound');
  assert.ok(child0.packetsOut >= 3 && child0.packetsIn >= 3, `kernel counters ${JSON.stringify(child0)}`);

  // The image's own CLI reads the agent over its control socket.
  const cli = collect(imageKipsec(a, dir, ['status', '--control-socket', '/run/kt/agent.sock']));
  assert.equal(await cli.exit, 0, cli.out());
  assert.match(cli.out(), /img/);
  t.diagnostic(`kipsec status (from the image):\n${cli.out()}`);

  process.kill(pid, 'SIGTERM');
  assert.equal(await agent.exit, 0, `SIGTERM: clean exit\n${agent.out().slice(-4000)}`);
  assert.equal((await a.run('ip', ['xfrm', 'state'])).stdout.trim(), '', 'the agent removed its SAs');
  assert.equal((await a.run('ip', ['xfrm', 'policy'])).stdout.trim(), '', 'the agent removed its policies');
  const deadline = Date.now() + 15_000;
  while (Object.keys(await swan.ikeStates()).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  assert.deepEqual(await swan.ikeStates(), {}, `charon still has IKE SAs after our Delete:\n${await swan.listSas()}`);
});
