// Kernel lane (real ESP): the kipsec agent against Libreswan 5 (pluto) with ECDSA P-256
// certificates from one test CA (RFC 7427 digital signatures; pluto's key and certificate
// imported into its NSS database from a PKCS#12 file made with openssl), IKE with ECP-256, in
// both roles at once: "c2l" initiated by the agent, "l2c" by pluto. Each gets a ping through it
// and SPIs that match pluto's view. RFC 7296, RFC 7427, RFC 4106.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pair } from '../lib/netns.js';
import { Libreswan, lswConf, type LswConn } from '../lib/libreswan.js';
import { scratchDir } from '../../test/lib/tmp.js';
import { AgentProcess, pingCounts, tunnelYaml } from './agent-harness.js';
import { prepareVm } from './agent-vm.js';

prepareVm();

interface Certs { ca: string; agentCrt: string; agentKey: string; lswCrt: string; lswKey: string }

/** A P-256 CA and two end entities whose SANs are their IKE identities (IP addresses). */
function makeCerts(lswIps: readonly string[]): Certs {
  const d = scratchDir('kipsec-lsw-certs-');
  const ossl = (args: string[]): void => { execFileSync('openssl', args, { cwd: d, stdio: ['ignore', 'ignore', 'pipe'], timeout: 60_000 }); };
  ossl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/O=kipsec e2e/CN=test CA']);
  for (const [who, ips] of [['agent', ['192.0.2.1']], ['lsw', lswIps]] as const) {
    ossl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${who}.key`, '-out', `${who}.csr`, '-subj', `/O=kipsec e2e/CN=${who}`]);
    writeFileSync(join(d, `${who}.ext`), `subjectAltName=${ips.map((ip) => `IP:${ip}`).join(',')}\nkeyUsage=digitalSignature\n`);
    ossl(['x509', '-req', '-in', `${who}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${who}.crt`, '-days', '1', '-extfile', `${who}.ext`]);
  }
  const r = (f: string): string => readFileSync(join(d, f), 'utf8');
  return { ca: r('ca.crt'), agentCrt: r('agent.crt'), agentKey: r('agent.key'), lswCrt: r('lsw.crt'), lswKey: r('lsw.key') };
}

test('agent ↔ Libreswan 5 with ECDSA P-256 certificates in both roles: tunnels up, pings, SPIs match', async (t) => {
  const tunnels = [
    { name: 'c2l', lsw: '192.0.2.30', n: 40, start: 'initiate' },
    { name: 'l2c', lsw: '192.0.2.31', n: 41, start: 'respond' },
  ] as const;
  const c = makeCerts(tunnels.map((x) => x.lsw));
  const [a, b] = await pair(t, { a: '192.0.2.1/24', b: '192.0.2.30/24' });
  await b.run('ip', ['addr', 'add', '192.0.2.31/24', 'dev', 'eth0']);
  for (const x of tunnels) {
    await a.run('ip', ['addr', 'add', `10.1.${x.n}.1/24`, 'dev', 'lo']);
    await b.run('ip', ['addr', 'add', `10.2.${x.n}.1/24`, 'dev', 'lo']);
  }
  // aes256gcm16-prfsha384-ecp256 / aes256gcm16 in Libreswan's syntax.
  const conns: LswConn[] = tunnels.map((x) => ({
    name: x.name, local: x.lsw, remote: '192.0.2.1', localSubnet: `10.2.${x.n}.0/24`, remoteSubnet: `10.1.${x.n}.0/24`,
    ike: 'aes_gcm256-sha2_384-dh19', esp: 'aes_gcm256', sourceIp: `10.2.${x.n}.1`,
    auth: { cert: 'lsw', localId: x.lsw, remoteId: '192.0.2.1' },
  }));
  const conf = lswConf(conns);
  const lsw = await Libreswan.start(t, b, {
    conns: conf.conns, secrets: conf.secrets,
    trust: [{ nickname: 'kipsec-test-ca', pem: c.ca }],
    identities: [{ nickname: 'lsw', certPem: c.lswCrt, keyPem: c.lswKey }],
  });
  const certAuth = '{certificate: {certFile: agent.crt, keyFile: agent.key, caFile: ca.crt}}';
  const config = tunnels.map((x) => tunnelYaml({ name: x.name, local: '192.0.2.1', remote: x.lsw, localSubnets: [`10.1.${x.n}.0/24`], remoteSubnets: [`10.2.${x.n}.0/24`],
    ike: ['aes256gcm16-prfsha384-ecp256'], auth: certAuth, remoteId: x.lsw, startAction: x.start })).join('---\n');
  const agent = await AgentProcess.start(t, a, { config, files: { 'agent.crt': c.agentCrt, 'agent.key': c.agentKey, 'ca.crt': c.ca } });
  const explain = async (): Promise<string> => `kipsec:\n${await agent.table()}\n${agent.log().slice(-4000)}\npluto states:\n${await lsw.showStates()}\npluto log (no debug lines), tail:\n${lsw.events().slice(-6000)}`;

  await agent.waitEstablished('c2l', 120_000).catch(async (e: unknown) => { throw new Error(`${String(e)}\n${await explain()}`, { cause: e }); });
  const init = await lsw.initiate('l2c', 60);
  assert.equal(init.code, 0, `pluto could not initiate l2c:\n${init.stdout}${init.stderr}\n${await explain()}`);
  await agent.waitEstablished('l2c', 60_000);

  const theirs = await lsw.childSas();
  for (const x of tunnels) {
    const ping = await a.run('ping', ['-c', '3', '-i', '0.2', '-W', '3', '-I', `10.1.${x.n}.1`, `10.2.${x.n}.1`], { check: false });
    assert.equal(pingCounts(ping.stdout).received, 3, `${x.name}: ping through the tunnel\n${ping.stdout}${ping.stderr}\n${await explain()}`);
    const ours = await agent.tunnel(x.name);
    const child = ours.children.find((k) => k.state === 'installed')!;
    const their = theirs.find((k) => k.name === x.name);
    assert.ok(their, `Libreswan lists no Child SA for ${x.name}:\n${await lsw.showStates()}`);
    assert.deepEqual([child.spiIn, child.spiOut], [their.spiOut, their.spiIn], `${x.name}: SPIs match pluto's`);
    assert.equal(ours.ikeSuite, 'aes256gcm16-prfsha384-ecp256');
    assert.equal(ours.role, x.start === 'initiate' ? 'initiator' : 'responder');
  }
  // Pluto authenticated us with our certificate's signature, not a PSK.
  assert.match(lsw.events(), /authenticated peer[^\n]*ecdsa/i, `pluto's log:\n${lsw.events().slice(-3000)}`);
  t.diagnostic(`kipsec status:\n${await agent.table()}`);
  t.diagnostic(`pluto: ${lsw.events().split('\n').filter((l) => /authenticated|established Child SA/.test(l)).join('\n')}`);
  assert.equal(await agent.stop(), 0);
});
