// Kernel lane smoke test: this VM's kernel has real ESP. Two namespaces joined by a veth ping each
// other through ESP tunnel-mode SAs and policies installed with `ip xfrm` (iproute2), and the SA
// packet counters prove the traffic went through ESP. RFC 4303 (ESP), RFC 4106 (AES-GCM in ESP).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Netns, pair } from '../lib/netns.js';

test('ping between two namespaces through ip-xfrm ESP SAs (rfc4106(gcm(aes)), tunnel mode)', async (t) => {
  const [a, b] = await pair(t, { a: '192.0.2.1/24', b: '192.0.2.2/24' });
  const key = '0x' + '11'.repeat(36); // 32-byte AES key + 4-byte salt
  for (const [ns, me, peer] of [[a, '192.0.2.1', '192.0.2.2'], [b, '192.0.2.2', '192.0.2.1']] as const) {
    await ns.run('ip', ['xfrm', 'state', 'add', 'src', me, 'dst', peer, 'proto', 'esp', 'spi', me === '192.0.2.1' ? '0x1001' : '0x1002', 'reqid', '1', 'mode', 'tunnel', 'aead', 'rfc4106(gcm(aes))', key, '128']);
    await ns.run('ip', ['xfrm', 'state', 'add', 'src', peer, 'dst', me, 'proto', 'esp', 'spi', me === '192.0.2.1' ? '0x1002' : '0x1001', 'reqid', '1', 'mode', 'tunnel', 'aead', 'rfc4106(gcm(aes))', key, '128']);
    await ns.run('ip', ['xfrm', 'policy', 'add', 'src', `${me}/32`, 'dst', `${peer}/32`, 'dir', 'out', 'tmpl', 'src', me, 'dst', peer, 'proto', 'esp', 'reqid', '1', 'mode', 'tunnel']);
    for (const dir of ['in', 'fwd'])
      await ns.run('ip', ['xfrm', 'policy', 'add', 'src', `${peer}/32`, 'dst', `${me}/32`, 'dir', dir, 'tmpl', 'src', peer, 'dst', me, 'proto', 'esp', 'reqid', '1', 'mode', 'tunnel']);
  }
  const ping = await a.run('ping', ['-c', '3', '-i', '0.2', '-W', '10', '192.0.2.2'], { timeoutMs: 60_000 });
  assert.match(ping.stdout, /3 received/);
  const st = await a.run('ip', ['-s', 'xfrm', 'state', 'get', 'src', '192.0.2.1', 'dst', '192.0.2.2', 'proto', 'esp', 'spi', '0x1001']);
  const m = /lifetime current:\s*\n\s*(\d+)\(bytes\), (\d+)\(packets\)/.exec(st.stdout);
  assert.ok(m, `no counters in:\n${st.stdout}`);
  assert.ok(Number(m[2]) >= 3, `outbound SA counted ${m[2]} packets, want >= 3`);
});

test('kernel in the VM accepts what the host kernel refuses: an ESP state', async (t) => {
  const ns = await Netns.create(t, 'esp');
  const r = await ns.run('ip', ['xfrm', 'state', 'add', 'src', '198.51.100.1', 'dst', '198.51.100.2', 'proto', 'esp', 'spi', '0x2001', 'mode', 'tunnel', 'aead', 'rfc4106(gcm(aes))', '0x' + '22'.repeat(20), '128']);
  assert.equal(r.code, 0);
});
