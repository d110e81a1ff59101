// NAT mapping changes seen by the userspace engine (RFC 7296 §2.23, RFC 3948): an inbound SA may
// carry the address and port its peer sends from; an *authenticated* packet from anywhere else is
// reported as a 'mapping' event (at most one a second per SA), so the control plane can move the
// SAs the way it does on the kernel's XFRM_MSG_MAPPING. Unauthenticated datagrams report nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import type { EspEvent } from '../../../src/esp/engine.js';
import { sealEsp, ipv4Udp } from './reference.js';
import { SKIP, harness, until, keyFor, addInbound, IN_SPI, REQID, type Harness } from './harness.js';

async function socketFrom(t: { after(fn: () => unknown): void }): Promise<Socket & { port: number }> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  t.after(() => s.close());
  return Object.assign(s, { port: s.address().port });
}

const send = (s: Socket, h: Harness, d: Uint8Array): Promise<void> => new Promise((resolve, reject) => s.send(d, h.engine.port, '127.0.0.1', (e) => (e ? reject(e) : resolve())));
const mappings = (h: Harness): Array<Extract<EspEvent, { kind: 'mapping' }>> => h.events.flatMap((e) => (e.kind === 'mapping' ? [e] : []));
const inners = (h: Harness): number => h.events.filter((e) => e.kind === 'inner').length;

test('RFC 7296 §2.23: an authenticated packet of an inbound SA from a new port is reported once (mapping), and still delivered; the expected peer and a forged packet report nothing', { skip: SKIP }, async (t) => {
  const h = await harness(t);
  const ref = addInbound(h, 'aes-gcm-16', keyFor('aes-gcm-16', 16), { peer: { address: '127.0.0.1', port: h.peerPort } });
  const moved = await socketFrom(t);
  const packet = (seq: number): Uint8Array => sealEsp(ref, ipv4Udp('10.2.0.9', '10.1.0.5', randomBytes(40)), { seq });

  await h.send(packet(1)); // from the expected peer
  await until(() => inners(h) === 1, 'the first packet delivered');
  const forged = packet(2);
  forged[forged.length - 1]! ^= 1; // ICV broken: not authenticated
  await send(moved, h, forged);
  await send(moved, h, packet(3));
  await until(() => inners(h) === 2, 'the packet from the new port delivered too');
  await until(() => mappings(h).length === 1, 'one mapping event');
  assert.deepEqual(mappings(h)[0], { kind: 'mapping', direction: 'in', spi: IN_SPI, reqid: REQID, address: '127.0.0.1', port: moved.port });

  // Within the second: no second report, however many packets come from there.
  for (let seq = 4; seq < 10; seq++) await send(moved, h, packet(seq));
  await until(() => inners(h) === 8, 'six more delivered');
  assert.equal(mappings(h).length, 1, 'at most one report a second per SA');

  // The control plane moves the SA's peer: packets from there are no longer a change.
  h.engine.updateSa({ direction: 'in', spi: IN_SPI, reqid: REQID }, { peer: { address: '127.0.0.1', port: moved.port } });
  await new Promise((r) => setTimeout(r, 1_100));
  await send(moved, h, packet(10));
  await until(() => inners(h) === 9, 'delivered after the move');
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(mappings(h).length, 1, 'no report once the peer is where the SA expects it');
  // And the old port is now the stranger (a second change, after the rate limit's second).
  await h.send(packet(11));
  await until(() => mappings(h).length === 2, 'the old port reported as a new mapping');
  assert.equal(mappings(h)[1]!.port, h.peerPort);
});

test('an inbound SA without a peer reports no mapping (tests and SAs without UDP encapsulation know no source)', { skip: SKIP }, async (t) => {
  const h = await harness(t);
  const ref = addInbound(h, 'chacha20-poly1305', keyFor('chacha20-poly1305', 32));
  const other = await socketFrom(t);
  await send(other, h, sealEsp(ref, ipv4Udp('10.2.0.9', '10.1.0.5', randomBytes(40)), { seq: 1 }));
  await until(() => inners(h) === 1, 'delivered');
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(mappings(h).length, 0);
});
