// Datagrams larger than an ESP packet buffer. Why: the engine reads the shared NAT-T socket for
// IKE and ESP alike, and IKE messages with certificates are several kilobytes (RFC 7296 §2 only
// asks for 1280-byte support, but IKE_AUTH with a chain is routinely 3–5 KB without RFC 7383
// fragmentation). A reader sized for ESP would cut them, and an oversized ESP datagram must be
// counted as such rather than as a forged ICV.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { sealEsp, ipv4Udp } from './reference.js';
import { SKIP, harness, until, keyFor, addInbound, saStats, IN_SPI } from './harness.js';

test('RFC 3948 §2.2: an IKE datagram of 5,000 bytes (a certificate IKE_AUTH) comes up whole, not cut at the ESP buffer size', { skip: SKIP }, async (t) => {
  const h = await harness(t);
  const ike = Buffer.concat([Buffer.alloc(4), randomBytes(4996)]);
  await h.send(ike);
  await until(() => h.events.some((e) => e.kind === 'ike'), 'the IKE datagram');
  const ev = h.events.find((e) => e.kind === 'ike');
  assert.ok(ev && ev.kind === 'ike');
  assert.equal(ev.data.length, ike.length, 'all 5,000 bytes');
  assert.deepEqual(ev.data, ike);
});

test('RFC 4303 §3.4: an ESP datagram longer than any inner packet the engine accepts is dropped as tooBig before any crypto, and the SA goes on', { skip: SKIP }, async (t) => {
  const h = await harness(t);
  const ref = addInbound(h, 'aes-gcm-16', keyFor('aes-gcm-16', 16));
  const huge = ipv4Udp('10.2.0.9', '10.1.0.5', randomBytes(6000));
  await h.send(sealEsp(ref, huge, { seq: 1 }));
  const small = ipv4Udp('10.2.0.9', '10.1.0.5', randomBytes(10));
  await h.send(sealEsp(ref, small, { seq: 2 }));
  await until(() => saStats(h, 'in', IN_SPI).packets === 1n, 'the small packet delivered');
  const s = saStats(h, 'in', IN_SPI);
  assert.equal(s.drops.tooBig, 1n);
  assert.equal(s.drops.auth, 0n, 'not mistaken for a forgery');
  assert.equal(s.seq, 2n);
});
