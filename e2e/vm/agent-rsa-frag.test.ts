// Kernel lane (real ESP): certificate authentication with an RSA-4096 chain (root CA →
// intermediate CA → end entity, each side with its own intermediate) across a router that drops
// every IP fragment, as some firewalls and cloud paths do. The IKE_AUTH messages carry the end
// entity and the intermediate in CERT payloads (RFC 7296 §3.6) plus a 512-byte RSA signature
// (RFC 7427), about 4 KB: far above any path MTU, so without RFC 7383 IKE fragmentation the
// kernel splits them into IP fragments and the router eats them.
//
// This machine's userspace has neither iptables nor nft: the router drops fragments with a tc
// flower filter on `ip_flags frag` (MF set or non-zero fragment offset) on both ingresses, and
// its counters show what it dropped.
//
// One charon and one agent serve four tunnels at once (a VM boot and the retransmission schedule
// of the negative controls are expensive, ~36 s as both sides are set here; the tests run concurrently):
//   frag-out    agent initiates, charon responds, charon signs PKCS#1 v1.5   — must work
//   frag-in     charon initiates, agent responds, charon signs RSASSA-PSS    — must work
//   nofrag-out  agent initiates, charon has `fragmentation = no`             — must fail
//   nofrag-in   charon initiates, charon has `fragmentation = no`            — must fail
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Netns, link, type Scope } from '../lib/netns.js';
import { makeRsaChain, type RsaChain } from '../lib/rsa-chain.js';
import { StrongSwan } from '../lib/strongswan.js';
import { AgentProcess, pingCounts, tunnelYaml } from './agent-harness.js';
import { swanctlConf, type SwanConn } from './agent-swan.js';
import { prepareVm } from './agent-vm.js';

prepareVm();

const AGENT_ID = 'agent.kipsec.test';
const SWAN_ID = 'swan.kipsec.test';
const AGENT = '192.0.2.2';
const IKE = 'aes256gcm16-prfsha384-ecp256';
const ESP = 'aes256gcm16';

interface Tunnel {
  readonly name: string;
  /** Subnet and charon address index: 10.1.n.0/24 ↔ 10.2.n.0/24, charon at 198.51.100.(10+n). */
  readonly n: number;
  readonly initiator: 'agent' | 'charon';
  readonly fragmentation: 'yes' | 'no';
  /** charon's own signature scheme: `pubkey` is PKCS#1 v1.5, `rsa/pss-…` RSASSA-PSS (RFC 7427). */
  readonly swanAuth: string;
}

const TUNNELS: readonly Tunnel[] = [
  { name: 'frag-out', n: 1, initiator: 'agent', fragmentation: 'yes', swanAuth: 'pubkey' },
  { name: 'frag-in', n: 2, initiator: 'charon', fragmentation: 'yes', swanAuth: 'rsa/pss-sha384' },
  { name: 'nofrag-out', n: 3, initiator: 'agent', fragmentation: 'no', swanAuth: 'pubkey' },
  { name: 'nofrag-in', n: 4, initiator: 'charon', fragmentation: 'no', swanAuth: 'pubkey' },
];
const swanAddr = (t: Tunnel): string => `198.51.100.${10 + t.n}`;
const byName = (name: string): Tunnel => TUNNELS.find((t) => t.name === name)!;

/** Everything the tests share; cleaned up in reverse order after the last test. */
interface Rig { a: Netns; r: Netns; b: Netns; agent: AgentProcess; swan: StrongSwan; chain: RsaChain }
let rig: Rig;
const cleanups: (() => unknown)[] = [];
const scope: Scope = { after: (fn) => { cleanups.push(fn); } };

/** Drop every IPv4 fragment arriving on `dev` (flower's ip_flags frag: MF set or offset ≠ 0). */
async function dropFragments(r: Netns, dev: string): Promise<void> {
  await r.run('tc', ['qdisc', 'add', 'dev', dev, 'ingress']);
  await r.run('tc', ['filter', 'add', 'dev', dev, 'ingress', 'protocol', 'ip', 'prio', '1', 'flower', 'ip_flags', 'frag', 'action', 'drop']);
}

/** Packets the fragment filter on `dev` has dropped so far (from `tc -s`). */
async function fragmentsDropped(r: Netns, dev: string): Promise<number> {
  const out = (await r.run('tc', ['-s', 'filter', 'show', 'dev', dev, 'ingress'])).stdout;
  const m = /gact action drop[\s\S]*?Sent \d+ bytes (\d+) pkt/.exec(out);
  if (!m) throw new Error(`no drop counter in tc output:\n${out}`);
  return Number(m[1]);
}

async function dropCounters(): Promise<{ fromAgent: number; fromSwan: number }> {
  return { fromAgent: await fragmentsDropped(rig.r, 'eth0'), fromSwan: await fragmentsDropped(rig.r, 'eth1') };
}

/**
 * charon's log lines for one connection. With ike_name = yes charon prefixes `<conn|N>` once the
 * IKE SA has its config and `<N>` before (a responder learns it only in IKE_AUTH), so the SA
 * numbers are collected from both the named lines and packets to or from the connection's address.
 */
function swanLines(tun: Tunnel): string[] {
  const lines = rig.swan.log().split('\n');
  const ids = new Set<string>();
  const addr = `${swanAddr(tun)}[`;
  for (const l of lines) {
    const named = new RegExp(`<${tun.name}\\|(\\d+)>`).exec(l);
    if (named) ids.add(named[1]!);
    const bare = /<(\d+)> .*(?:sending|received) packet: from (\S+) to (\S+)/.exec(l);
    if (bare && (bare[2]!.startsWith(addr) || bare[3]!.startsWith(addr))) ids.add(bare[1]!);
  }
  return lines.filter((l) => { const m = /<(?:[^|>]+\|)?(\d+)>/.exec(l); return m !== null && ids.has(m[1]!); });
}

function swanctl(t: Tunnel): SwanConn {
  return {
    name: t.name, local: swanAddr(t), remote: AGENT, localTs: `10.2.${t.n}.0/24`, remoteTs: `10.1.${t.n}.0/24`,
    proposals: IKE, espProposals: ESP, extra: `fragmentation = ${t.fragmentation}`,
    auth: { cert: 'swan.crt', localId: SWAN_ID, remoteId: AGENT_ID, localAuth: t.swanAuth },
  };
}

before(async () => {
  const t0 = Date.now();
  const phases: string[] = [];
  const phase = (what: string): void => { phases.push(`${what} ${Date.now() - t0} ms`); };
  const chain = makeRsaChain({ agentSan: `DNS:${AGENT_ID}`, swanSan: `DNS:${SWAN_ID}` });
  phase(`chain (keys: ${chain.keysGenerated} generated)`);
  const a = await Netns.create(scope, 'rsaA');
  const r = await Netns.create(scope, 'rsaR');
  const b = await Netns.create(scope, 'rsaB');
  await link(a, `${AGENT}/24`, r, '192.0.2.1/24', 'eth0', 'eth0');
  await link(r, '198.51.100.1/24', b, '198.51.100.2/24', 'eth1', 'eth0');
  await r.run('sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
  await a.run('ip', ['route', 'add', 'default', 'via', '192.0.2.1']);
  await b.run('ip', ['route', 'add', 'default', 'via', '198.51.100.1']);
  for (const t of TUNNELS) {
    await a.run('ip', ['addr', 'add', `10.1.${t.n}.1/24`, 'dev', 'lo']);
    await b.run('ip', ['addr', 'add', `10.2.${t.n}.1/24`, 'dev', 'lo']);
    await b.run('ip', ['addr', 'add', `${swanAddr(t)}/24`, 'dev', 'eth0']);
  }
  await dropFragments(r, 'eth0');
  await dropFragments(r, 'eth1');
  phase('namespaces');
  const swan = await StrongSwan.start(scope, b, {
    mode: 'kernel', logIkeName: true,
    swanctl: swanctlConf(TUNNELS.map(swanctl)),
    // Its own intermediate goes in x509/ (untrusted, only to build the chain it sends); only the
    // root is a trust anchor, so the agent's intermediate must arrive in a CERT payload.
    files: { 'x509/swan.crt': chain.swanCrt, 'x509/swan-ca.crt': chain.swanCa, 'private/swan.key': chain.swanKey, 'x509ca/root.crt': chain.root },
    // A shorter retransmission schedule (3 s × 1.8^n, 3 retransmits ≈ 36 s) so the negative
    // control with charon as initiator ends in bounded time.
    charonExtra: 'retransmit_timeout = 3\n  retransmit_base = 1.8\n  retransmit_tries = 3',
  });
  phase('charon');
  const certAuth = '{certificate: {certFile: agent-chain.crt, keyFile: agent.key, caFile: root.crt}}';
  const config = TUNNELS.map((t) => tunnelYaml({
    name: t.name, local: AGENT, remote: swanAddr(t), localSubnets: [`10.1.${t.n}.0/24`], remoteSubnets: [`10.2.${t.n}.0/24`],
    ike: [IKE], esp: [ESP], auth: certAuth, remoteId: SWAN_ID, startAction: t.initiator === 'agent' ? 'initiate' : 'respond',
  })).join('---\n');
  // The chain file: our end-entity certificate first, then the intermediate that issued it.
  // The agent gets charon's shorter schedule too (--retransmit-*; its default is charon's default,
  // ≈165 s to give up), so its own negative control ends in ~36 s.
  const agent = await AgentProcess.start(scope, a, {
    config, files: { 'agent-chain.crt': chain.agentCrt + chain.agentCa, 'agent.key': chain.agentKey, 'root.crt': chain.root },
    args: ['--retransmit-timeout', '3s', '--retransmit-base', '1.8', '--retransmit-tries', '3'],
  });
  phase('agent');
  rig = { a, r, b, agent, swan, chain };
  process.stderr.write(`# rig up: ${phases.join(', ')}\n`);
}, { timeout: 600_000 });

after(async () => {
  // Inside the VM, keep both logs for the host (kernel-vm.sh copies $VM_OUT to $KVM_OUT).
  const out = process.env['VM_OUT'];
  if (out && rig) {
    mkdirSync(join(out, 'agent-rsa-frag'), { recursive: true });
    writeFileSync(join(out, 'agent-rsa-frag', 'charon.log'), rig.swan.log());
    writeFileSync(join(out, 'agent-rsa-frag', 'agent.log'), rig.agent.log());
  }
  for (const fn of cleanups.reverse()) { try { await fn(); } catch { /* keep cleaning */ } }
});

/** A ping through the tunnel (bounded wait for the first echo) and SPIs equal to charon's. */
async function pingAndSpis(t: { diagnostic(s: string): void }, tun: Tunnel): Promise<void> {
  const { a, agent, swan } = rig;
  const src = `10.1.${tun.n}.1`;
  const dst = `10.2.${tun.n}.1`;
  for (let k = 0; k < 10; k++) {
    const probe = await a.run('ping', ['-c', '1', '-W', '1', '-I', src, dst], { check: false });
    if (pingCounts(probe.stdout).received === 1) break;
  }
  const ping = await a.run('ping', ['-c', '3', '-i', '0.2', '-W', '3', '-I', src, dst], { check: false });
  assert.equal(pingCounts(ping.stdout).received, 3, `${tun.name}: ping through the tunnel\n${ping.stdout}${ping.stderr}`);
  const ours = (await agent.tunnel(tun.name)).children.find((c) => c.state === 'installed');
  const theirs = (await swan.childSas()).find((c) => c.name === tun.name);
  assert.ok(ours, `${tun.name}: no installed child in kipsec status`);
  assert.ok(theirs, `${tun.name}: strongSwan has no child\n${await swan.listSas()}`);
  assert.deepEqual([ours.spiIn, ours.spiOut], [theirs.spiOut, theirs.spiIn], `${tun.name}: SPIs match strongSwan's`);
  assert.ok(theirs.packetsIn >= 3 && theirs.packetsOut >= 3, `${tun.name}: charon counted the pings: ${JSON.stringify(theirs)}`);
  t.diagnostic(`${tun.name}: ESP ${ours.suite} / charon ${theirs.suite}, SPIs in ${ours.spiIn} out ${ours.spiOut}`);
}

/** What charon's log says about fragments and signatures on one connection. */
function swanEvidence(tun: Tunnel): { weSplit: number; theySplit: number; ourScheme: string | undefined; theirScheme: string | undefined; certReq: boolean } {
  const lines = swanLines(tun);
  // charon: "received fragment #2 of 4, reassembled fragmented IKE message (3912 bytes)" and
  // "splitting IKE message (3850 bytes) into 4 fragments"; "authentication of 'X' with SCHEME successful".
  const reassembled = lines.filter((l) => /reassembled fragmented IKE message/.test(l)).length;
  const split = lines.filter((l) => /splitting IKE message/.test(l)).length;
  const ours = lines.map((l) => new RegExp(`authentication of '${AGENT_ID}' with (\\S+) successful`).exec(l)?.[1]).find(Boolean);
  const theirs = lines.map((l) => new RegExp(`authentication of '${SWAN_ID}' \\(myself\\) with (\\S+) successful`).exec(l)?.[1]).find(Boolean);
  // Our CERTREQ names the root by its key hash (RFC 7296 §3.7); charon resolves it to the name.
  const certReq = lines.some((l) => /received cert request for "O=kipsec e2e, CN=RSA-4096 root CA"/.test(l));
  return { weSplit: reassembled, theySplit: split, ourScheme: ours, theirScheme: theirs, certReq };
}

describe('RSA-4096 chain over a path that drops IP fragments', { concurrency: true }, () => {
  test('the router drops IPv4 fragments: a 3000-byte ping dies, a small one passes, tc counts the drops', async (t) => {
    const before = await dropCounters();
    const big = await rig.a.run('ping', ['-c', '2', '-W', '2', '-s', '3000', '198.51.100.2'], { check: false });
    const small = await rig.a.run('ping', ['-c', '2', '-W', '2', '198.51.100.2'], { check: false });
    const now = await dropCounters();
    assert.equal(pingCounts(big.stdout).received, 0, `3000-byte ping crossed the router:\n${big.stdout}`);
    assert.equal(pingCounts(small.stdout).received, 2, `small ping did not cross the router:\n${small.stdout}${small.stderr}`);
    // Each 3028-byte echo request leaves the agent's namespace as 3 fragments (1500-byte MTU).
    assert.ok(now.fromAgent - before.fromAgent >= 6, `fragments dropped from the agent side: ${before.fromAgent} → ${now.fromAgent}`);
    t.diagnostic(`fragments dropped by the router: agent side ${now.fromAgent}, strongSwan side ${now.fromSwan}`);
  });

  test('without IKE fragmentation the agent\'s IKE_AUTH never arrives: ERR_IKE_TIMEOUT in kipsec status (RFC 7296 §2.4, control for RFC 7383)', { timeout: 400_000 }, async (t) => {
    const tun = byName('nofrag-out');
    // 90 s: the flags' schedule gives up after 3 + 5.4 + 9.7 + 17.5 ≈ 36 s; the default one (≈165 s)
    // would not, so this also shows that --retransmit-* reach the engine.
    const st = await rig.agent.waitFor(tun.name, (x) => x.lastError !== undefined, 90_000, 'a failure reported for the unfragmented IKE_AUTH');
    const err = st.lastError!;
    t.diagnostic(`kipsec status says: ${err.notify ? `${err.notify}: ` : ''}${err.message}`);
    assert.notEqual(st.ikeState, 'established');
    assert.match(err.message, /IKE_AUTH|ike-auth/, 'the failure names the exchange that got lost');
    assert.match(err.message, /no response/);
    assert.match(err.message, /one \d+-byte IP packet \(over 1280\) because the peer did not announce IKE fragmentation/, 'the failure names the likely cause');
    const lines = swanLines(tun);
    assert.ok(lines.some((l) => /parsed IKE_SA_INIT request/.test(l)), `charon saw our IKE_SA_INIT:\n${lines.join('\n')}`);
    assert.ok(!lines.some((l) => /IKE_AUTH request/.test(l)), `charon must never see the fragmented IKE_AUTH:\n${lines.join('\n')}`);
    const c = await dropCounters();
    assert.ok(c.fromAgent > 6, `the router dropped the IKE_AUTH fragments (counter ${c.fromAgent})`);
    t.diagnostic(`fragments dropped so far: agent side ${c.fromAgent}, strongSwan side ${c.fromSwan}`);
  });

  test('without IKE fragmentation charon\'s IKE_AUTH never arrives: charon gives up, agent has no SA (control for RFC 7383)', { timeout: 300_000 }, async (t) => {
    const tun = byName('nofrag-in');
    const before = await dropCounters();
    const r = await rig.swan.initiate(tun.name, 120);
    assert.notEqual(r.code, 0, `charon established ${tun.name} although its IKE_AUTH must be IP-fragmented:\n${r.stdout}`);
    t.diagnostic(`swanctl --initiate: ${r.stdout.split('\n').filter((l) => /giving up|failed|retransmit/.test(l)).join(' | ')}`);
    assert.match(r.stdout, /giving up after \d+ retransmits/);
    const after = await dropCounters();
    assert.ok(after.fromSwan > before.fromSwan, `the router dropped charon's IKE_AUTH fragments (${before.fromSwan} → ${after.fromSwan})`);
    const st = await rig.agent.tunnel(tun.name);
    assert.notEqual(st.ikeState, 'established');
  });

  test('RFC 7383 §2.5 fragments carry the RSA-4096 chain, agent → charon: CERT chain (RFC 7296 §3.6/§3.7), RSASSA-PSS / PKCS#1 v1.5 (RFC 7427), ping, SPIs', { timeout: 400_000 }, async (t) => {
    const tun = byName('frag-out');
    const st = await rig.agent.waitEstablished(tun.name, 300_000);
    assert.equal(st.role, 'initiator');
    const ev = swanEvidence(tun);
    t.diagnostic(`charon: reassembled ${ev.weSplit} fragmented message(s) from us, split ${ev.theySplit}; verified us with ${ev.ourScheme}, signed with ${ev.theirScheme}`);
    assert.ok(ev.weSplit >= 1, `charon reassembled our fragmented IKE_AUTH:\n${swanLines(tun).join('\n')}`);
    assert.ok(ev.theySplit >= 1, 'charon fragmented its IKE_AUTH response');
    assert.match(ev.ourScheme ?? '', /RSA_EMSA_PSS/, 'we sign with RSASSA-PSS (RFC 7427)');
    assert.ok(ev.certReq, 'charon understood our CERTREQ as a request for the root CA (RFC 7296 §3.7)');
    assert.match(ev.theirScheme ?? '', /RSA_EMSA_PKCS1/, 'charon signed with PKCS#1 v1.5 and we verified it');
    await pingAndSpis(t, tun);
  });

  test('RFC 7383 §2.5 fragments carry the RSA-4096 chain, charon → agent: CERT chain (RFC 7296 §3.6/§3.7), RSASSA-PSS both ways (RFC 7427), ping, SPIs', { timeout: 400_000 }, async (t) => {
    const tun = byName('frag-in');
    const r = await rig.swan.initiate(tun.name, 180);
    assert.equal(r.code, 0, `charon initiating ${tun.name}:\n${r.stdout}\n${rig.agent.log().slice(-4000)}`);
    const st = await rig.agent.waitEstablished(tun.name, 120_000);
    assert.equal(st.role, 'responder');
    const ev = swanEvidence(tun);
    t.diagnostic(`charon: reassembled ${ev.weSplit} fragmented message(s) from us, split ${ev.theySplit}; verified us with ${ev.ourScheme}, signed with ${ev.theirScheme}`);
    assert.ok(ev.theySplit >= 1, `charon fragmented its IKE_AUTH request:\n${swanLines(tun).join('\n')}`);
    assert.ok(ev.weSplit >= 1, 'charon reassembled our fragmented IKE_AUTH response');
    assert.match(ev.ourScheme ?? '', /RSA_EMSA_PSS/, 'we sign with RSASSA-PSS (RFC 7427)');
    assert.ok(ev.certReq, 'charon understood our CERTREQ as a request for the root CA (RFC 7296 §3.7)');
    assert.match(ev.theirScheme ?? '', /RSA_EMSA_PSS/, 'charon signed with RSASSA-PSS and we verified it');
    await pingAndSpis(t, tun);
    t.diagnostic(`kipsec status:\n${await rig.agent.table()}`);
  });
});
