// The native addon on the host (no namespace needed: every call acts on sockets/devices this
// process owns). Why: Node cannot set UDP_ENCAP or IP_XFRM_POLICY itself, and the IKE daemon
// depends on both (RFC 3948 NAT-T decapsulation; IKE bypassing its own policies).
// Needs the addon built (`npm run build:native`, done by `npm install`); setsockopt of bypass
// policies needs CAP_NET_ADMIN, which the lanes have.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { existsSync, closeSync, readFileSync, readlinkSync } from 'node:fs';
import { dgramFd, loadNative, openTun, setIpsecBypass, setRecvBuffer, setUdpEncap, NativeError } from '../../src/xfrm/native.js';
import { IKE_RECV_BUFFER } from '../../src/agent/native.js';
import { UDP_ENCAP_ESPINUDP } from '../../src/xfrm/constants.js';

async function bound(type: 'udp4' | 'udp6', addr: string): Promise<Socket> {
  const s = createSocket(type);
  await new Promise<void>((r) => s.bind(0, addr, r));
  return s;
}

test('dgramFd: a bound node:dgram socket exposes its descriptor, without a DeprecationWarning (DEP0112); an unbound one is a clear error', async () => {
  const warnings: string[] = [];
  const onWarning = (w: Error & { code?: string }): void => { warnings.push(`${w.code ?? ''} ${w.message}`); };
  process.on('warning', onWarning);
  const s = await bound('udp4', '127.0.0.1');
  const fd = dgramFd(s);
  assert.ok(fd > 2);
  assert.ok(readlinkSync(`/proc/self/fd/${fd}`).startsWith('socket:'), 'the descriptor is a socket');
  s.close();
  await new Promise((r) => setImmediate(r));
  process.off('warning', onWarning);
  assert.deepEqual(warnings, []);
  assert.throws(() => dgramFd(createSocket('udp4')), { code: 'ERR_NATIVE_NO_FD' });
});

test('setUdpEncap sets UDP_ENCAP_ESPINUDP on the socket (read back with getsockopt), RFC 3948', async () => {
  const s = await bound('udp4', '127.0.0.1');
  assert.equal(loadNative().getUdpEncap(dgramFd(s)), 0);
  setUdpEncap(s);
  assert.equal(loadNative().getUdpEncap(dgramFd(s)), UDP_ENCAP_ESPINUDP);
  s.close();
});

test('setIpsecBypass installs in+out bypass policies on IPv4 and IPv6 sockets', async () => {
  const s4 = await bound('udp4', '127.0.0.1');
  setIpsecBypass(s4);
  s4.close();
  const s6 = await bound('udp6', '::1');
  setIpsecBypass(s6);
  s6.close();
});

test('setRecvBuffer raises a socket\'s receive buffer past net.core.rmem_max (SO_RCVBUFFORCE, as root), as the agent does for its IKE sockets so a burst of IKE_SA_INIT is not dropped before it is read', async () => {
  const max = Number(readFileSync('/proc/sys/net/core/rmem_max', 'utf8'));
  const want = Math.max(max, IKE_RECV_BUFFER) + (1 << 20);
  const s = await bound('udp4', '127.0.0.1');
  try {
    setRecvBuffer(s, want);
    // The kernel doubles what it is given (socket(7), SO_RCVBUF) and reports the doubled value.
    assert.equal(s.getRecvBufferSize(), 2 * want, `rmem_max ${max}`);
  } finally { s.close(); }
  assert.throws(() => loadNative().setRecvBuffer(0, 0), TypeError);
});

test('native errors carry the errno name: setsockopt on a closed fd is EBADF, a bad family is a TypeError', () => {
  assert.throws(() => loadNative().setUdpEncap(1_000_000), (e: unknown) => (e as { code?: string }).code === 'EBADF');
  assert.throws(() => loadNative().setIpsecBypass(0, 99), TypeError);
});

test('openTun opens a TUN device when /dev/net/tun exists', { skip: !existsSync('/dev/net/tun') && 'no /dev/net/tun' }, () => {
  const t = openTun('kt' + (process.pid % 100000));
  assert.ok(t.fd > 2);
  assert.match(t.name, /^kt\d+$/);
  closeSync(t.fd);
});

test('loadNative names the fix when the addon is missing', () => {
  assert.throws(() => loadNative('/nonexistent/kipsec_native.node'), (e: unknown) => e instanceof NativeError && e.code === 'ERR_NATIVE_NOT_BUILT' && /npm run build:native/.test(e.message));
});
