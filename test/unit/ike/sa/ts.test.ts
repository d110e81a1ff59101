// Traffic selector parsing and narrowing (RFC 7296 §2.9, §3.13.1), and the §2.8.1 nonce rule.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError } from '../../../../src/common/errors.js';
import { fromHex } from '../../../../src/common/bytes.js';
import { ourRekeyLoses } from '../../../../src/ike/steps/collision.js';
import { COOKIE_SECRET_LIFETIME_MS, CookieJar } from '../../../../src/ike/exchanges/cookie.js';
import { ManualClock, SeededRandom } from '../../../../src/common/time.js';
import { bytesToIp, ipToBytes } from '../../../../src/ike/sa/addr.js';
import { formatTs, fromWireTs, intersectTs, narrowTs, parseTs, prefixLengthOf, toPortTs, toWireTs, tsWithin, type TsRange } from '../../../../src/ike/sa/ts.js';

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

// The mesh's overlay child pairs (OVN-Kubernetes style) name a protocol and port next to the node
// address; the agent writes them as text, so the text form must carry what the payload carries.
test('parses "[proto/port]" selectors: protocol by number or name, one port, a port range, or any port (RFC 7296 §3.13.1)', () => {
  const cases: Array<[string, Partial<TsRange> & { text: string }]> = [
    ['192.0.2.11/32[udp]', { protocol: 17, startPort: 0, endPort: 0xffff, text: '192.0.2.11/32[17]' }],
    ['192.0.2.12/32[udp/4789]', { protocol: 17, startPort: 4789, endPort: 4789, text: '192.0.2.12/32[17/4789]' }],
    ['10.0.0.0/8[tcp/80-90]', { protocol: 6, startPort: 80, endPort: 90, text: '10.0.0.0/8[6/80-90]' }],
    ['[17/4789]', { protocol: 17, startPort: 4789, endPort: 4789, text: '0.0.0.0/0[17/4789]' }],
    ['[icmp]', { protocol: 1, startPort: 0, endPort: 0xffff, text: '0.0.0.0/0[1]' }],
    ['2001:db8::/32[ipv6-icmp]', { protocol: 58, text: '2001:db8::/32[58]' }],
    ['10.0.0.1-10.0.0.9[sctp/3868]', { protocol: 132, startPort: 3868, endPort: 3868, text: '10.0.0.1-10.0.0.9[132/3868]' }],
    ['10.1.0.0/16[UDP/any]', { protocol: 17, startPort: 0, endPort: 0xffff, text: '10.1.0.0/16[17]' }],
    ['10.1.0.0/16[any]', { protocol: 0, startPort: 0, endPort: 0xffff, text: '10.1.0.0/16' }],
    [' 192.0.2.7 [47] ', { protocol: 47, text: '192.0.2.7/32[47]' }],
  ];
  for (const [text, want] of cases) {
    const ts = parseTs(text);
    for (const k of ['protocol', 'startPort', 'endPort'] as const) if (want[k] !== undefined) assert.equal(ts[k], want[k], `${text}: ${k}`);
    assert.equal(formatTs(ts), want.text, text);
  }
  assert.equal(parseTs('[udp]').family, 'ipv4', 'no addresses: IPv4 any');
});

// Status, events and errors print selectors with formatTs; what they print must be valid config.
test('parseTs(formatTs(x)) gives x back for every protocol and port combination, including what a peer sends (RFC 7296 §3.13.1)', () => {
  const bases = ['10.1.0.0/16', '192.0.2.7', '10.0.0.1-10.0.0.9', '::/0', '2001:db8::1-2001:db8::ff'];
  const suffixes = ['', '[6]', '[17/4789]', '[6/80-90]', '[1/2048]', '[255/0-65534]', '[17/0]', '[132/65535]'];
  for (const b of bases) for (const x of suffixes) {
    const ts = parseTs(`${b}${x}`);
    assert.deepEqual(parseTs(formatTs(ts)), ts, `${b}${x}`);
    // and through the payload form (a peer's narrowed reply)
    assert.deepEqual(parseTs(formatTs(fromWireTs(toWireTs(ts)))), ts, `${b}${x} via the wire`);
  }
});

test('rejects malformed "[proto/port]" with a ConfigError naming the field and quoting the text', () => {
  const bad: Array<[string, RegExp]> = [
    ['10.0.0.0/8[]', /empty "\[\]"/],
    ['10.0.0.0/8[udp', /must end the selector/],
    ['10.0.0.0/8[udp]x', /must end the selector/],
    ['10.0.0.0/8[udp][tcp]', /must end the selector/],
    ['10.0.0.0/8[gre]', /protocol "gre" is neither a number 0\.\.255 nor one of icmp, tcp, udp, ipv6-icmp, sctp/],
    ['10.0.0.0/8[256]', /protocol "256"/],
    ['10.0.0.0/8[udp/]', /port "" is not a number 0\.\.65535/],
    ['10.0.0.0/8[udp/65536]', /port "65536"/],
    ['10.0.0.0/8[udp/http]', /port "http"/],
    ['10.0.0.0/8[tcp/90-80]', /port range 90-80 is descending/],
    ['10.0.0.0/8[tcp/80-]', /port "" is not a number/],
    ['10.0.0.0/8[0/53]', /a port needs a protocol/],
    ['10.0.0.0/8[any/53]', /a port needs a protocol/],
    ['example.com[udp]', /is not a CIDR, address or range/],
    ['10.0.0.0/[udp]', /bad prefix length/],
    ['10.0.0.0/', /bad prefix length/],
  ];
  for (const [text, message] of bad) {
    assert.throws(() => parseTs(text, 'children[0].localTs[1]'), (e: unknown) => {
      assert.ok(e instanceof ConfigError, text);
      assert.equal(e.path, 'children[0].localTs[1]');
      assert.match(e.message, message, text);
      assert.ok(e.message.includes(`"${text}"`), `${text}: the message quotes the text (${e.message})`);
      return true;
    }, text);
  }
});

test('narrowing and the kernel selectors keep protocol and ports: a node\'s [udp] against the peer\'s [udp/4789] (RFC 7296 §2.9)', () => {
  const n = narrowTs([parseTs('192.0.2.11/32[udp]')], [parseTs('192.0.2.11/32[udp/4789]')]);
  assert.deepEqual(n.map(formatTs), ['192.0.2.11/32[17/4789]']);
  assert.equal(intersectTs(parseTs('192.0.2.11/32[udp]'), parseTs('192.0.2.11/32[tcp]')), null);
  assert.ok(tsWithin(parseTs('192.0.2.11/32[udp/4789]'), [parseTs('192.0.2.11/32[udp]')]));
  assert.ok(!tsWithin(parseTs('192.0.2.11/32[udp]'), [parseTs('192.0.2.11/32[udp/4789]')]));
  const k = toPortTs(parseTs('192.0.2.12/32[udp/4789]'));
  assert.deepEqual([k.protocol, k.startPort, k.endPort, k.prefixLength], [17, 4789, 4789, 32]);
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

test('prefixLengthOf is the one n for which [start, end] is start/n, for random ranges of both families (near-CIDR ones included)', () => {
  // The definition: mask start to n bits, set the rest for end, compare; null when no n fits.
  const byDefinition = (r: TsRange): number | null => {
    for (let n = 0; n <= r.start.length * 8; n++) {
      const ok = Array.from(r.start).every((b, i) => {
        const keep = Math.max(0, Math.min(8, n - 8 * i)); const mask = keep === 0 ? 0 : (0xff << (8 - keep)) & 0xff;
        return (b & mask) === b && r.end[i] === ((b & mask) | (~mask & 0xff));
      });
      if (ok) return n;
    }
    return null;
  };
  const random = new SeededRandom(7);
  for (let k = 0; k < 3000; k++) {
    const len = k % 2 === 0 ? 4 : 16;
    const start = random.bytes(len); const bits = random.bytes(1)[0]! % (len * 8 + 1);
    const cidr = parseTs(`${bytesToIp(start)}/${bits}`);
    // Two times in three one bit of start or end flipped, so that most cases are not a CIDR block.
    const ends = [cidr.start.slice(), cidr.end.slice()] as const;
    const flip = random.bytes(3);
    if (flip[0]! % 3 > 0) ends[flip[0]! % 2]![flip[1]! % len]! ^= 1 << (flip[2]! % 8);
    const r: TsRange = { ...cidr, start: ends[0], end: ends[1] };
    assert.equal(prefixLengthOf(r), byDefinition(r), `${bytesToIp(r.start)}-${bytesToIp(r.end)}`);
  }
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

test('RFC 7296 §2.6: the COOKIE secret changes every 120 s (strongSwan SECRET_SWITCH) without anyone calling rotate(); a cookie lives through one switch, not two', () => {
  const clock = new ManualClock();
  const jar = new CookieJar(new SeededRandom(5), clock);
  const ni = fromHex('11'.repeat(32));
  const c = jar.make(ni, '192.0.2.1', 42n);
  clock.advance(COOKIE_SECRET_LIFETIME_MS - 1);
  assert.deepEqual(jar.make(ni, '192.0.2.1', 42n), c, 'the same secret within its lifetime');
  clock.advance(1);
  const next = jar.make(ni, '192.0.2.1', 42n);
  assert.notDeepEqual(next, c, 'a new secret after 120 s');
  assert.equal(next[0], (c[0]! + 1) & 0xff, 'with the next version byte');
  assert.ok(jar.verify(c, ni, '192.0.2.1', 42n), 'the previous secret still verifies');
  clock.advance(COOKIE_SECRET_LIFETIME_MS);
  assert.ok(!jar.verify(c, ni, '192.0.2.1', 42n), 'two switches later it does not');
  assert.ok(jar.verify(next, ni, '192.0.2.1', 42n));
  // Idle for long: nothing issued before is accepted.
  clock.advance(10 * COOKIE_SECRET_LIFETIME_MS);
  assert.ok(!jar.verify(next, ni, '192.0.2.1', 42n));
});
