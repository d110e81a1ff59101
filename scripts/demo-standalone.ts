// `bash scripts/demo.sh --standalone`: the standalone agent next to strongSwan. Two hosts as network namespaces — A runs the kipsec agent, B runs strongSwan
// (charon, kernel data path) — an IKEv2 tunnel between them, an encrypted ping through it, and
// `kipsec status`. It needs a kernel with ESP; where the host kernel has none (the machines this
// project is developed on), it runs itself inside the kernel VM (e2e/kernel-vm.sh) and says so.
// Everything it creates is removed when it ends.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Netns, pair } from '../e2e/lib/netns.js';
import { StrongSwan } from '../e2e/lib/strongswan.js';
import { AgentProcess, pingCounts, tunnelYaml } from '../e2e/vm/agent-harness.js';
import { swanctlConf } from '../e2e/vm/agent-swan.js';
import { prepareVm } from '../e2e/vm/agent-vm.js';
import { repoPath } from '../test/lib/paths.js';

const scope: { fns: (() => unknown)[]; after(fn: () => unknown): void } = { fns: [], after(fn) { this.fns.push(fn); } };
const say = (s: string): void => { process.stdout.write(`${s}\n`); };
const PSK = 'demo only: correct horse battery staple';

/** Does this kernel accept an ESP state? Probed in a throw-away namespace. */
async function kernelHasEsp(): Promise<boolean> {
  const ns = await Netns.create(null, 'probe');
  try {
    const r = await ns.run('ip', ['xfrm', 'state', 'add', 'src', '192.0.2.1', 'dst', '192.0.2.2', 'proto', 'esp', 'spi', '0x100', 'mode', 'tunnel', 'aead', 'rfc4106(gcm(aes))', `0x${'11'.repeat(20)}`, '128'], { check: false });
    return r.code === 0;
  } finally { await ns.destroy(); }
}

function inVm(): number {
  say('demo: this kernel has no ESP (`ip xfrm state add … proto esp` is refused), so the demo runs inside the kernel VM');
  say('demo: booting Debian\'s kernel under QEMU (e2e/kernel-vm.sh; ~30 s boot, everything slower inside)…');
  const dir = mkdtempSync(join(tmpdir(), 'kipsec-demo-'));
  const script = join(dir, 'demo-in-vm.sh');
  writeFileSync(script, `set -e\nmodprobe -q esp4 || true\nmodprobe -q xfrm_user || true\nip link set lo up\nexec node --import tsx scripts/demo-standalone.ts --in-vm\n`);
  const r = spawnSync('bash', [repoPath('e2e/kernel-vm.sh'), script], { cwd: repoPath(), stdio: 'inherit', timeout: 900_000 });
  return r.status ?? 1;
}

async function main(): Promise<number> {
  if (process.getuid?.() !== 0) { say('demo: needs root (network namespaces)'); return 1; }
  if (!process.argv.includes('--in-vm') && !(await kernelHasEsp())) return inVm();
  prepareVm();
  say(`demo: kernel ${execFileSync('uname', ['-r']).toString().trim()} with ESP`);
  say('demo: host A (192.0.2.1, subnet 10.1.0.0/24) runs kipsec; host B (192.0.2.2, subnet 10.2.0.0/24) runs strongSwan');
  const [a, b] = await pair(scope, { a: '192.0.2.1/24', b: '192.0.2.2/24' });
  await a.run('ip', ['addr', 'add', '10.1.0.1/24', 'dev', 'lo']);
  await b.run('ip', ['addr', 'add', '10.2.0.1/24', 'dev', 'lo']);
  const swan = await StrongSwan.start(scope, b, {
    mode: 'kernel',
    swanctl: swanctlConf([{ name: 'demo', local: '192.0.2.2', remote: '192.0.2.1', localTs: '10.2.0.0/24', remoteTs: '10.1.0.0/24', proposals: 'aes256gcm16-prfsha384-x25519', espProposals: 'aes256gcm16', auth: { psk: PSK } }]),
  });
  say('demo: strongSwan (charon) listening on B');
  const config = tunnelYaml({ name: 'demo', local: '192.0.2.1', remote: '192.0.2.2', localSubnets: ['10.1.0.0/24'], remoteSubnets: ['10.2.0.0/24'] });
  say(`demo: kipsec agent --standalone --config tunnels.yaml on A, with:\n${config.replace(/^/gm, '    ')}`);
  const agent = await AgentProcess.start(scope, a, { config, files: { psk: `${PSK}\n` }, logLevel: 'info' });
  const t0 = Date.now();
  await agent.waitEstablished('demo', 120_000);
  say(`demo: tunnel up in ${((Date.now() - t0) / 1000).toFixed(1)} s; ping 10.2.0.1 from 10.1.0.1 through kernel ESP`);
  const ping = await a.run('ping', ['-c', '3', '-i', '0.3', '-W', '3', '-I', '10.1.0.1', '10.2.0.1'], { check: false });
  say(ping.stdout.trim());
  say('\ndemo: kipsec status on A');
  say(await agent.table());
  say('\ndemo: strongSwan on B (swanctl --list-sas)');
  say((await swan.listSas()).trimEnd());
  const st = await agent.tunnel('demo');
  const child = st.children.find((c) => c.state === 'installed');
  const [theirs] = await swan.childSas();
  const spisMatch = child !== undefined && theirs !== undefined && child.spiIn === theirs.spiOut && child.spiOut === theirs.spiIn;
  const ok = pingCounts(ping.stdout).received === 3 && child !== undefined && child.packetsOut >= 3 && spisMatch;
  say(`\ndemo: ${ok ? 'OK' : 'FAILED'}: ${child ? `${child.packetsOut} packets out / ${child.packetsIn} in through SPIs ${child.spiOut}/${child.spiIn}${spisMatch ? ' (strongSwan agrees)' : ' (strongSwan disagrees!)'}` : 'no child SA'}`);
  await agent.stop();
  return ok ? 0 : 1;
}

let code = 1;
try { code = await main(); } catch (e) { say(`demo: ${e instanceof Error ? e.message : String(e)}`); }
for (const fn of scope.fns.reverse()) await fn();
process.exit(code);
