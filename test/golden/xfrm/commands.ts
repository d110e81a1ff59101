// The `ip xfrm` commands whose requests are recorded in requests.json (see capture.ts). Keys are
// fixed test patterns, never real secrets. The unit test golden.test.ts builds each request with
// src/xfrm and compares bytes.
const rep = (byte: string, n: number): string => '0x' + byte.repeat(n);
export const KEYS = {
  k16: rep('01', 16), k20: rep('02', 20), k32: rep('03', 32), k36: rep('04', 36), k48: rep('05', 48), k64: rep('06', 64),
} as const;

export interface GoldenCommand { readonly name: string; readonly args: readonly string[] }

const sa = ['xfrm', 'state', 'add', 'src', '192.0.2.1', 'dst', '192.0.2.2', 'proto', 'esp', 'spi', '0x1001', 'reqid', '7', 'mode', 'tunnel'];
const pol = (dir: string, extra: readonly string[] = []): string[] => ['xfrm', 'policy', 'add', 'src', '10.1.0.0/16', 'dst', '10.2.0.0/16', 'dir', dir, ...extra];
const tmplOut = ['tmpl', 'src', '192.0.2.1', 'dst', '192.0.2.2', 'proto', 'esp', 'reqid', '7', 'mode', 'tunnel'];

export const GOLDEN_COMMANDS: readonly GoldenCommand[] = [
  { name: 'sa-aes128gcm16', args: [...sa, 'aead', 'rfc4106(gcm(aes))', KEYS.k20, '128'] },
  { name: 'sa-aes256gcm16-esn', args: [...sa, 'replay-window', '128', 'flag', 'esn', 'aead', 'rfc4106(gcm(aes))', KEYS.k36, '128'] },
  { name: 'sa-aes128-sha256', args: [...sa, 'replay-window', '32', 'enc', 'cbc(aes)', KEYS.k16, 'auth-trunc', 'hmac(sha256)', KEYS.k32, '128'] },
  { name: 'sa-aes256-sha384', args: [...sa, 'enc', 'cbc(aes)', KEYS.k32, 'auth-trunc', 'hmac(sha384)', KEYS.k48, '192'] },
  { name: 'sa-aes256-sha512-encap', args: [...sa, 'enc', 'cbc(aes)', KEYS.k32, 'auth-trunc', 'hmac(sha512)', KEYS.k64, '256', 'encap', 'espinudp', '4500', '4500', '0.0.0.0'] },
  { name: 'sa-chacha20poly1305', args: [...sa, 'aead', 'rfc7539esp(chacha20,poly1305)', KEYS.k36, '128'] },
  { name: 'sa-sha1', args: [...sa, 'enc', 'cbc(aes)', KEYS.k16, 'auth-trunc', 'hmac(sha1)', KEYS.k20, '96'] },
  {
    name: 'sa-mark-ifid-limits',
    args: [...sa, 'aead', 'rfc4106(gcm(aes))', KEYS.k20, '128', 'mark', '0x10', 'mask', '0xff', 'output-mark', '0x5', 'mask', '0xff', 'if_id', '0x20',
      'extra-flag', 'dont-encap-dscp', 'limit', 'time-soft', '60', 'limit', 'time-hard', '90', 'limit', 'byte-soft', '1000000', 'limit', 'packet-hard', '5000'],
  },
  { name: 'sa-ipv6', args: ['xfrm', 'state', 'add', 'src', '2001:db8::1', 'dst', '2001:db8::2', 'proto', 'esp', 'spi', '0x2002', 'reqid', '9', 'mode', 'tunnel', 'aead', 'rfc4106(gcm(aes))', KEYS.k20, '128'] },
  { name: 'sa-update', args: ['xfrm', 'state', 'update', ...sa.slice(3), 'aead', 'rfc4106(gcm(aes))', KEYS.k20, '128'] },
  { name: 'sa-delete', args: ['xfrm', 'state', 'delete', 'src', '192.0.2.1', 'dst', '192.0.2.2', 'proto', 'esp', 'spi', '0x1001'] },
  { name: 'sa-get', args: ['xfrm', 'state', 'get', 'src', '192.0.2.1', 'dst', '192.0.2.2', 'proto', 'esp', 'spi', '0x1001'] },
  { name: 'sa-allocspi', args: ['xfrm', 'state', 'allocspi', 'src', '192.0.2.1', 'dst', '192.0.2.2', 'proto', 'esp', 'mode', 'tunnel', 'reqid', '7', 'min', '0x100', 'max', '0x1000'] },
  { name: 'sa-flush-esp', args: ['xfrm', 'state', 'flush', 'proto', 'esp'] },
  { name: 'policy-out', args: pol('out', ['priority', '1000', ...tmplOut]) },
  { name: 'policy-in', args: ['xfrm', 'policy', 'add', 'src', '10.2.0.0/16', 'dst', '10.1.0.0/16', 'dir', 'in', 'priority', '1000', 'tmpl', 'src', '192.0.2.2', 'dst', '192.0.2.1', 'proto', 'esp', 'reqid', '7', 'mode', 'tunnel'] },
  { name: 'policy-fwd', args: ['xfrm', 'policy', 'add', 'src', '10.2.0.0/16', 'dst', '10.1.0.0/16', 'dir', 'fwd', 'priority', '1000', 'tmpl', 'src', '192.0.2.2', 'dst', '192.0.2.1', 'proto', 'esp', 'reqid', '7', 'mode', 'tunnel'] },
  { name: 'policy-mark-ifid', args: pol('out', ['priority', '2000', 'mark', '0x10', 'mask', '0xff', 'if_id', '0x20', ...tmplOut]) },
  { name: 'policy-ports', args: ['xfrm', 'policy', 'add', 'src', '10.1.0.0/16', 'dst', '10.2.0.0/16', 'proto', 'tcp', 'dport', '443', 'dir', 'out', ...tmplOut] },
  { name: 'policy-block', args: pol('out', ['action', 'block', 'priority', '10']) },
  { name: 'policy-ipv6', args: ['xfrm', 'policy', 'add', 'src', '2001:db8:1::/48', 'dst', '2001:db8:2::/48', 'dir', 'out', 'tmpl', 'src', '2001:db8::1', 'dst', '2001:db8::2', 'proto', 'esp', 'reqid', '9', 'mode', 'tunnel'] },
  { name: 'policy-update', args: ['xfrm', 'policy', 'update', ...pol('out', ['priority', '1000', ...tmplOut]).slice(3)] },
  { name: 'policy-delete', args: ['xfrm', 'policy', 'delete', 'src', '10.1.0.0/16', 'dst', '10.2.0.0/16', 'dir', 'out'] },
  { name: 'policy-get', args: ['xfrm', 'policy', 'get', 'src', '10.1.0.0/16', 'dst', '10.2.0.0/16', 'dir', 'out'] },
  { name: 'policy-flush', args: ['xfrm', 'policy', 'flush'] },
];
