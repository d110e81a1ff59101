// Traffic selector parsing and narrowing (RFC 7296 §2.9, §3.13.1), and the §2.8.1 nonce rule.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError } from '../../../../src/common/errors.js';
import { fromHex } from '../../../../src/common/bytes.js';
import { ourRekeyLoses } from '../../../../src/ike/exchanges/collision.js';
import { CookieJar } from '../../../../src/ike/exchanges/cookie.js';
import { SeededRandom } from '../../../../src/common/time.js';
import { bytesToIp, ipToBytes } from '../../../../src/ike/sa/addr.js';
import { formatTs, intersectTs, narrowTs, parseTs, prefixLengthOf, toPortTs, tsWithin } from '../../../../src/ike/sa/ts.js';

test('parses CIDRs, single addresses and ranges into inclusive address ranges (RFC 7296 §3.13.1)', () => {
  assert.equal(formatTs(parseTs('10.1.2.3/16')), '10.1.0.0/16');
  assert.equal(formatTs(parseTs('192.0.2.7')), '192.0.2.7/32');
  assert.equal(formatTs(parseTs('10.0.0.1-10.0.0.9')), '10.0.0.1-10.0.0.9');
  assert.equal(formatTs(parseTs('2001:db8::/32')), '2001:db8::/32');
  assert.equal(formatTs(parseTs('0.0.0.0/0')), '0.0.0.0/0');
  assert.equal(prefixLengthOf(parseTs('::/0')), 0);
});

test('rejects malformed selectors with a ConfigError naming the field', () => {
  for (const bad of ['10.1.0.0/33', 'example.com', '10.0.0.9-10.0.0.1', '10.0.0.1-::1']) {
    assert.throws(() => parseTs(bad, 'spec.local.subnets[0]'), (e: unknown) => e instanceof ConfigError && e.path === 'spec.local.subnets[0]');
  }
});

test('narrowing is the intersection of proposed and configured selectors; disjoint or cross-family is empty (RFC 7296 §2.9)', () => {
  const n = narrowTs([parseTs('10.0.0.0/8')], [parseTs('10.2.3.0/24'), parseTs('192.168.0.0/16')]);
  assert.deepEqual(n.map(formatTs), ['10.2.3.0/24']);
  assert.equal(intersectTs(parseTs('10.0.0.0/24'), parseTs('10.0.1.0/24')), null);
  assert.equal(intersectTs(parseTs('10.0.0.0/8'), parseTs('::/0')), null);
  assert.deepEqual(narrowTs([parseTs('10.0.0.5-10.0.1.5')], [parseTs('10.0.1.0/24')]).map(formatTs), ['10.0.1.0-10.0.1.5']);
});

test('tsWithin accepts narrowed replies and refuses widened ones (the initiator check of RFC 7296 §2.9)', () => {
  assert.ok(tsWithin(parseTs('10.1.0.0/20'), [parseTs('10.1.0.0/16')]));
  assert.ok(!tsWithin(parseTs('10.0.0.0/8'), [parseTs('10.1.0.0/16')]));
});

test('kernel selectors carry the prefix length only when the range is one CIDR block', () => {
  assert.equal(toPortTs(parseTs('10.1.0.0/16')).prefixLength, 16);
  assert.equal(toPortTs(parseTs('10.0.0.1-10.0.0.9')).prefixLength, null);
  assert.equal(toPortTs(parseTs('10.0.0.1-10.0.0.9')).endAddress, '10.0.0.9');
});

test('IPv6 text round-trips through bytes with RFC 5952 compression', () => {
  for (const a of ['2001:db8::1', '::', '::1', 'fe80::1:2:3:4', '2001:db8:0:1:1:1:1:1']) assert.equal(bytesToIp(ipToBytes(a)), a);
  assert.equal(bytesToIp(ipToBytes('::ffff:192.0.2.1')), '::ffff:c000:201');
});

test('RFC 7296 §2.8.1: the exchange holding the lowest of the four nonces produced the redundant SA', () => {
  const low = fromHex('00'.repeat(16)); const mid = fromHex('80'.repeat(16)); const high = fromHex('ff'.repeat(16));
  assert.equal(ourRekeyLoses([low, high], [mid, high]), true);
  assert.equal(ourRekeyLoses([mid, high], [high, low]), false);
  // Both sides reach opposite conclusions from the same four nonces: exactly one deletes.
  const a = [mid, high]; const b = [low, high];
  assert.notEqual(ourRekeyLoses(a, b), ourRekeyLoses(b, a));
});

test('RFC 7296 §2.6 cookies: bound to Ni, initiator address and SPIi; the previous secret still verifies after one rotation', () => {
  const jar = new CookieJar(new SeededRandom(5));
  const ni = fromHex('11'.repeat(32));
  const c = jar.make(ni, '192.0.2.1', 42n);
  assert.ok(jar.verify(c, ni, '192.0.2.1', 42n));
  assert.ok(!jar.verify(c, ni, '192.0.2.9', 42n));
  assert.ok(!jar.verify(c, ni, '192.0.2.1', 43n));
  assert.ok(!jar.verify(c, fromHex('12'.repeat(32)), '192.0.2.1', 42n));
  jar.rotate();
  assert.ok(jar.verify(c, ni, '192.0.2.1', 42n));
  jar.rotate();
  assert.ok(!jar.verify(c, ni, '192.0.2.1', 42n));
});
