// Interop lane (host kernel, no ESP needed: these fail before any Child SA is installed): the
// kipsec agent against real strongSwan when the two cannot agree. `kipsec status` must name the
// IKE notify and, for NO_PROPOSAL_CHOSEN, show both proposal lists when we are the responder (we
// saw the peer's offer; as initiator the peer does not tell, RFC 7296 §2.7). Wrong PSKs show
// AUTHENTICATION_FAILED. RFC 7296 §2.7, §2.15, §3.10.1.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pair } from '../lib/netns.js';
import { StrongSwan } from '../lib/strongswan.js';
import { AgentProcess, tunnelYaml } from '../vm/agent-harness.js';
import { swanctlConf } from '../vm/agent-swan.js';
import { prepareVm } from '../vm/agent-vm.js';
import { formatStatus } from '../../src/agent/status.js';

prepareVm();
const PSK = 'kipsec e2e: correct horse battery staple';

test('NO_PROPOSAL_CHOSEN and AUTHENTICATION_FAILED show in kipsec status with the notify and proposal lists', async (t) => {
  const [a, b] = await pair(t, { a: '192.0.2.1/24', b: '192.0.2.2/24' });
  await b.run('ip', ['addr', 'add', '192.0.2.3/24', 'dev', 'eth0']);
  const base = { local: '192.0.2.2', remote: '192.0.2.1', espProposals: 'aes128gcm16' } as const;
  // Two charon identities on B: .2 offers only what the agent refuses; .3 has a different PSK.
  const swan = await StrongSwan.start(t, b, {
    swanctl: swanctlConf([
      { ...base, name: 'noprop-in', localTs: '10.2.1.0/24', remoteTs: '10.1.1.0/24', proposals: 'aes128-sha256-modp3072', auth: { psk: PSK } },
      { ...base, name: 'noprop-out', localTs: '10.2.2.0/24', remoteTs: '10.1.2.0/24', proposals: 'aes128-sha256-modp3072', auth: { psk: PSK } },
      { ...base, local: '192.0.2.3', name: 'badpsk', localTs: '10.2.3.0/24', remoteTs: '10.1.3.0/24', proposals: 'aes256gcm16-prfsha384-x25519', auth: { psk: 'a different secret, long enough to pass' } },
    ]),
  });
  const ours = ['aes256gcm16-prfsha384-x25519'];
  const config = [
    tunnelYaml({ name: 'noprop-in', local: '192.0.2.1', remote: '192.0.2.2', localSubnets: ['10.1.1.0/24'], remoteSubnets: ['10.2.1.0/24'], ike: ours, startAction: 'respond' }),
    tunnelYaml({ name: 'noprop-out', local: '192.0.2.1', remote: '192.0.2.2', localSubnets: ['10.1.2.0/24'], remoteSubnets: ['10.2.2.0/24'], ike: ours, startAction: 'initiate' }),
    tunnelYaml({ name: 'badpsk', local: '192.0.2.1', remote: '192.0.2.3', localSubnets: ['10.1.3.0/24'], remoteSubnets: ['10.2.3.0/24'], ike: ours, startAction: 'initiate' }),
  ].join('---\n');
  const agent = await AgentProcess.start(t, a, { config, files: { psk: `${PSK}\n` } });

  // We initiate; charon answers NO_PROPOSAL_CHOSEN.
  const out = await agent.waitFor('noprop-out', (x) => x.lastError?.notify === 'NO_PROPOSAL_CHOSEN', 60_000, 'NO_PROPOSAL_CHOSEN as initiator');
  assert.deepEqual(out.lastError?.localProposals, ours);
  // charon initiates with its proposal; we refuse and can name what it offered.
  await swan.initiate('noprop-in', 10);
  const inn = await agent.waitFor('noprop-in', (x) => x.lastError?.notify === 'NO_PROPOSAL_CHOSEN', 60_000, 'NO_PROPOSAL_CHOSEN as responder');
  assert.deepEqual(inn.lastError?.localProposals, ours);
  assert.ok(inn.lastError?.remoteProposals?.some((p) => /aes128.*sha256.*modp3072/.test(p)), `peer proposals: ${JSON.stringify(inn.lastError)}`);
  // Different PSKs: one side's AUTH does not verify.
  const bad = await agent.waitFor('badpsk', (x) => x.lastError?.notify === 'AUTHENTICATION_FAILED', 60_000, 'AUTHENTICATION_FAILED');
  assert.equal(bad.ikeState === 'established', false);

  const table = formatStatus(await agent.status(), Date.now()).join('\n');
  t.diagnostic(`kipsec status:\n${table}`);
  assert.match(table, /NO_PROPOSAL_CHOSEN/);
  assert.match(table, /our proposals: +aes256gcm16-prfsha384-x25519/);
  assert.match(table, /peer proposals: +.*modp3072/);
  assert.match(table, /AUTHENTICATION_FAILED/);
  assert.ok(!agent.log().includes(PSK), 'PSK never logged');
  assert.equal(await agent.stop(), 0);
});
