// Interop lane smoke test: two real strongSwan charons in network namespaces establish an IKEv2
// SA (AES-GCM-256 / PRF-SHA384 / Curve25519, PSK) and pass pings through their Child SA. The
// libipsec data path does ESP in userspace, so this runs on the host kernel, which has no ESP.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pair } from '../lib/netns.js';
import { StrongSwan, pskConnection } from '../lib/strongswan.js';

test('two strongSwan peers establish IKE and Child SAs and ping through them (libipsec)', async (t) => {
  const [a, b] = await pair(t, { a: '192.0.2.1/24', b: '192.0.2.2/24' });
  await a.run('ip', ['addr', 'add', '10.1.0.1/32', 'dev', 'lo']);
  await b.run('ip', ['addr', 'add', '10.2.0.1/32', 'dev', 'lo']);
  const common = { name: 't', proposals: 'aes256gcm16-prfsha384-x25519', espProposals: 'aes256gcm16', psk: 'correct horse battery staple 0123456789' };
  const sa = await StrongSwan.start(t, a, { swanctl: pskConnection({ ...common, local: '192.0.2.1', remote: '192.0.2.2', localTs: '10.1.0.1/32', remoteTs: '10.2.0.1/32' }) });
  const sb = await StrongSwan.start(t, b, { swanctl: pskConnection({ ...common, local: '192.0.2.2', remote: '192.0.2.1', localTs: '10.2.0.1/32', remoteTs: '10.1.0.1/32' }) });
  const init = await sa.initiate('t');
  assert.equal(init.code, 0, `initiate failed:\n${init.stdout}\n${sa.log().slice(-3000)}`);
  assert.deepEqual(await sa.ikeStates(), { t: 'ESTABLISHED' });
  assert.deepEqual(await sb.ikeStates(), { t: 'ESTABLISHED' });
  const [ca] = await sa.childSas();
  const [cb] = await sb.childSas();
  assert.ok(ca && cb, `no child SA listed:\n${await sa.listSas()}`);
  assert.equal(ca.state, 'INSTALLED');
  // The two ends agree on SPIs: one side's inbound is the other's outbound.
  assert.equal(ca.spiIn, cb.spiOut);
  assert.equal(ca.spiOut, cb.spiIn);
  const ping = await a.run('ping', ['-c', '3', '-i', '0.3', '-W', '3', '-I', '10.1.0.1', '10.2.0.1'], { check: false });
  assert.match(ping.stdout, /3 received/, ping.stdout + ping.stderr);
  const [after] = await sa.childSas();
  assert.ok(after && after.packetsOut >= 3 && after.packetsIn >= 3, `child SA counters: ${JSON.stringify(after)}`);
});
