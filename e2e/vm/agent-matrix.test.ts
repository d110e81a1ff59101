// Kernel lane (real ESP): the agent against strongSwan across a proposal matrix covering every DH
// group (MODP 2048/3072/4096, ECP 256/384/521, Curve25519), PRF (HMAC-SHA2-256/384/512) and ESP
// cipher (AES-GCM-16 128/256, AES-CBC 128/256 with HMAC-SHA2-256/384/512, ChaCha20-Poly1305) the
// engine offers, roles alternating, one charon and one agent serving all tunnels at once (a VM
// boot is expensive); then ECDSA certificates in both roles. Each tunnel: a ping through it and
// SPIs that match strongSwan's. RFC 7296, RFC 8247, RFC 4106, RFC 7634, RFC 4868, RFC 7427.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pair, type Netns } from '../lib/netns.js';
import { StrongSwan } from '../lib/strongswan.js';
import { AgentProcess, pingCounts, tunnelYaml } from './agent-harness.js';
import { swanctlConf, type SwanConn } from './agent-swan.js';
import { prepareVm } from './agent-vm.js';

prepareVm();
const PSK = 'kipsec e2e: correct horse battery staple';

const MATRIX: readonly { ike: string; esp: string }[] = [
  { ike: 'aes256gcm16-prfsha384-x25519', esp: 'aes256gcm16' },
  { ike: 'aes128gcm16-prfsha256-ecp256', esp: 'aes128gcm16' },
  { ike: 'aes256-sha384-ecp384', esp: 'aes256-sha384' },
  { ike: 'aes128-sha256-modp2048', esp: 'aes128-sha256' },
  { ike: 'chacha20poly1305-prfsha512-ecp521', esp: 'chacha20poly1305' },
  { ike: 'aes256-sha512-modp3072', esp: 'aes256-sha512-modp3072' },
  { ike: 'aes128-sha256-modp4096', esp: 'aes128gcm16' },
];

async function checkTunnels(t: { diagnostic(s: string): void }, a: Netns, agent: AgentProcess, swan: StrongSwan, names: readonly string[], subnetOf: (i: number) => number): Promise<void> {
  const swanChildren = await swan.childSas();
  for (const [i, name] of names.entries()) {
    const n = subnetOf(i);
    // First traffic may meet a tunnel a moment after both sides report it up (the emulated VM
    // runs several handshakes at once): wait, bounded, for one echo, and say how long it took.
    const t0 = Date.now();
    for (let k = 0; k < 10; k++) {
      const probe = await a.run('ping', ['-c', '1', '-W', '1', '-I', `10.1.${n}.1`, `10.2.${n}.1`], { check: false });
      if (pingCounts(probe.stdout).received === 1) break;
    }
    if (Date.now() - t0 > 1_500) t.diagnostic(`${name}: first echo after ${Date.now() - t0} ms`);
    const ping = await a.run('ping', ['-c', '2', '-i', '0.2', '-W', '3', '-I', `10.1.${n}.1`, `10.2.${n}.1`], { check: false });
    assert.equal(pingCounts(ping.stdout).received, 2, `${name}: ping through the tunnel\n${ping.stdout}${ping.stderr}`);
    const ours = (await agent.tunnel(name)).children.find((c) => c.state === 'installed')!;
    const theirs = swanChildren.find((c) => c.name === name);
    assert.ok(theirs, `${name}: strongSwan has no child\n${await swan.listSas()}`);
    assert.deepEqual([ours.spiIn, ours.spiOut], [theirs.spiOut, theirs.spiIn], `${name}: SPIs match strongSwan's`);
    t.diagnostic(`${name}: IKE ${(await agent.tunnel(name)).ikeSuite} ESP ${ours.suite} / charon ${theirs.suite}, SPIs ${ours.spiIn}/${ours.spiOut}`);
  }
}

test('proposal matrix: every DH group, PRF and ESP cipher the engine offers, roles alternating, ping + SPIs per tunnel', async (t) => {
  const [a, b] = await pair(t, { a: '192.0.2.1/24', b: '192.0.2.2/24' });
  const conns: SwanConn[] = [];
  const yaml: string[] = [];
  const names: string[] = [];
  for (const [i, m] of MATRIX.entries()) {
    const name = `m${i}`;
    const swanAddr = `192.0.2.${10 + i}`;
    names.push(name);
    await b.run('ip', ['addr', 'add', `${swanAddr}/24`, 'dev', 'eth0']);
    await a.run('ip', ['addr', 'add', `10.1.${i}.1/24`, 'dev', 'lo']);
    await b.run('ip', ['addr', 'add', `10.2.${i}.1/24`, 'dev', 'lo']);
    conns.push({ name, local: swanAddr, remote: '192.0.2.1', localTs: `10.2.${i}.0/24`, remoteTs: `10.1.${i}.0/24`, proposals: m.ike, espProposals: m.esp, auth: { psk: PSK } });
    yaml.push(tunnelYaml({ name, local: '192.0.2.1', remote: swanAddr, localSubnets: [`10.1.${i}.0/24`], remoteSubnets: [`10.2.${i}.0/24`], ike: [m.ike], esp: [m.esp], startAction: i % 2 === 0 ? 'initiate' : 'respond' }));
  }
  const swan = await StrongSwan.start(t, b, { mode: 'kernel', swanctl: swanctlConf(conns) });
  const agent = await AgentProcess.start(t, a, { config: yaml.join('---\n'), files: { psk: `${PSK}\n` } });
  const t0 = Date.now();
  for (const [i, name] of names.entries()) {
    if (i % 2 === 1) {
      const r = await swan.initiate(name, 60);
      assert.equal(r.code, 0, `charon initiating ${name} (${MATRIX[i]!.ike}):\n${r.stdout}`);
    }
  }
  for (const name of names) await agent.waitEstablished(name, 180_000);
  t.diagnostic(`${names.length} tunnels established in ${Date.now() - t0} ms`);
  await checkTunnels(t, a, agent, swan, names, (i) => i);
  t.diagnostic(`kipsec status:\n${await agent.table()}`);
  assert.equal(await agent.stop(), 0);
});

interface Certs { ca: string; agentCrt: string; agentKey: string; swanCrt: string; swanKey: string }

function makeCerts(): Certs {
  const d = mkdtempSync(join(tmpdir(), 'kipsec-certs-'));
  const ossl = (args: string[]): void => { execFileSync('openssl', args, { cwd: d, stdio: ['ignore', 'ignore', 'pipe'], timeout: 60_000 }); };
  ossl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/O=kipsec e2e/CN=test CA']);
  for (const [who, ip] of [['agent', '192.0.2.1'], ['swan', '192.0.2.30']] as const) {
    ossl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${who}.key`, '-out', `${who}.csr`, '-subj', `/O=kipsec e2e/CN=${who}`]);
    writeFileSync(join(d, `${who}.ext`), `subjectAltName=IP:${ip}\nkeyUsage=digitalSignature\n`);
    ossl(['x509', '-req', '-in', `${who}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${who}.crt`, '-days', '1', '-extfile', `${who}.ext`]);
  }
  const r = (f: string): string => readFileSync(join(d, f), 'utf8');
  return { ca: r('ca.crt'), agentCrt: r('agent.crt'), agentKey: r('agent.key'), swanCrt: r('swan.crt'), swanKey: r('swan.key') };
}

test('ECDSA P-256 certificates (RFC 7427) in both roles: tunnels up, ping, SPIs match', async (t) => {
  const c = makeCerts();
  const [a, b] = await pair(t, { a: '192.0.2.1/24', b: '192.0.2.30/24' });
  for (const i of [40, 41]) { await a.run('ip', ['addr', 'add', `10.1.${i}.1/24`, 'dev', 'lo']); await b.run('ip', ['addr', 'add', `10.2.${i}.1/24`, 'dev', 'lo']); }
  const auth = { cert: 'swan.crt', localId: '192.0.2.30', remoteId: '192.0.2.1' };
  const conns: SwanConn[] = [
    { name: 'c40', local: '192.0.2.30', remote: '192.0.2.1', localTs: '10.2.40.0/24', remoteTs: '10.1.40.0/24', proposals: 'aes256gcm16-prfsha384-ecp256', espProposals: 'aes256gcm16', auth },
  ];
  const swan = await StrongSwan.start(t, b, { mode: 'kernel', swanctl: swanctlConf(conns), files: { 'x509/swan.crt': c.swanCrt, 'private/swan.key': c.swanKey, 'x509ca/ca.crt': c.ca } });
  const certAuth = '{certificate: {certFile: agent.crt, keyFile: agent.key, caFile: ca.crt}}';
  const config = tunnelYaml({ name: 'c40', local: '192.0.2.1', remote: '192.0.2.30', localSubnets: ['10.1.40.0/24'], remoteSubnets: ['10.2.40.0/24'], ike: ['aes256gcm16-prfsha384-ecp256'], auth: certAuth, remoteId: '192.0.2.30' });
  const agent = await AgentProcess.start(t, a, { config, files: { 'agent.crt': c.agentCrt, 'agent.key': c.agentKey, 'ca.crt': c.ca } });
  await agent.waitEstablished('c40', 120_000);
  await checkTunnels(t, a, agent, swan, ['c40'], () => 40);
  // The other role: charon initiates the same tunnel after we let it go.
  await agent.request('terminate', 'c40');
  const r = await swan.initiate('c40', 60);
  assert.equal(r.code, 0, `charon initiating with certificates:\n${r.stdout}\n${agent.log().slice(-3000)}`);
  const st = await agent.waitEstablished('c40', 120_000);
  assert.equal(st.role, 'responder');
  await checkTunnels(t, a, agent, swan, ['c40'], () => 40);
  assert.equal(await agent.stop(), 0);
});
