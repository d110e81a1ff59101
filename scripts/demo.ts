// The README's demo: two hosts as network namespaces, an IKEv2 tunnel between them, an encrypted
// ping through it, and the SA table. Until the kipsec agent lands (issue 5) both ends are real
// strongSwan peers (libipsec data path, which works on kernels without ESP); then side A becomes
// kipsec. Everything it creates is removed when it ends.
import { pair } from '../e2e/lib/netns.js';
import { StrongSwan, pskConnection } from '../e2e/lib/strongswan.js';

const scope: { fns: (() => unknown)[]; after(fn: () => unknown): void } = { fns: [], after(fn) { this.fns.push(fn); } };
const say = (s: string): void => { process.stdout.write(`${s}\n`); };

async function main(): Promise<number> {
  if (process.getuid?.() !== 0) { say('demo: needs root (network namespaces)'); return 1; }
  say('demo: hosts A (192.0.2.1, subnet 10.1.0.0/24) and B (192.0.2.2, subnet 10.2.0.0/24) as network namespaces');
  const [a, b] = await pair(scope, { a: '192.0.2.1/24', b: '192.0.2.2/24' });
  await a.run('ip', ['addr', 'add', '10.1.0.1/24', 'dev', 'lo']);
  await b.run('ip', ['addr', 'add', '10.2.0.1/24', 'dev', 'lo']);
  const common = { name: 'demo', proposals: 'aes256gcm16-prfsha384-x25519', espProposals: 'aes256gcm16', psk: 'demo only: correct horse battery staple' };
  say('demo: A = strongSwan (the kipsec agent takes this side once issue 5 lands), B = strongSwan');
  const sa = await StrongSwan.start(scope, a, { swanctl: pskConnection({ ...common, local: '192.0.2.1', remote: '192.0.2.2', localTs: '10.1.0.0/24', remoteTs: '10.2.0.0/24' }) });
  const sb = await StrongSwan.start(scope, b, { swanctl: pskConnection({ ...common, local: '192.0.2.2', remote: '192.0.2.1', localTs: '10.2.0.0/24', remoteTs: '10.1.0.0/24' }) });
  const init = await sa.initiate('demo');
  if (init.code !== 0) { say(`demo: tunnel did not come up:\n${init.stdout}`); return 1; }
  say('demo: tunnel up; ping 10.2.0.1 from 10.1.0.1 through ESP-in-UDP');
  const ping = await a.run('ping', ['-c', '3', '-i', '0.3', '-W', '3', '-I', '10.1.0.1', '10.2.0.1'], { check: false });
  say(ping.stdout.trim());
  say('\ndemo: SAs on A');
  say((await sa.listSas()).trimEnd());
  const [child] = await sa.childSas();
  void sb;
  const ok = ping.code === 0 && child !== undefined && child.packetsOut > 0;
  say(`\ndemo: ${ok ? 'OK' : 'FAILED'}: ${child ? `${child.packetsOut} packets out / ${child.packetsIn} in through SPI ${child.spiOut}/${child.spiIn}` : 'no child SA'}`);
  return ok ? 0 : 1;
}

let code = 1;
try { code = await main(); } catch (e) { say(`demo: ${e instanceof Error ? e.message : String(e)}`); }
for (const fn of scope.fns.reverse()) await fn();
process.exit(code);
