// IKEv1 requests (RFC 9395 deprecates IKEv1; RFC 7296 §1.5 answers only a *higher* major version
// with INVALID_MAJOR_VERSION). Why this exists: an IKEv1-only peer (Libreswan `keyexchange=ikev1`,
// old routers) used to vanish into the `decode` drop counter, so the tunnel just looked dead. Now it
// gets no state and no answer, but a rate-limited report naming its address: the tunnel's lastError
// when a tunnel's remote is that address, else an engine warning.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SeededRandom } from '../../../../src/common/time.js';
import { IkeEngine } from '../../../../src/ike/engine.js';
import type { IkeEvent } from '../../../../src/ike/ports.js';
import { IKEV1_NOTICE_ADDRESSES, IKEV1_NOTICE_INTERVAL_MS } from '../../../../src/ike/sa/ikev1.js';
import { ALICE, BOB, FakeKernel, Pair } from './harness.js';

/**
 * An IKEv1 Main Mode (or Aggressive Mode) first message as Libreswan sends it, minus vendor IDs:
 * RFC 2408 §3.1 header (cookies, next payload SA=1, version 0x10, exchange type, flags 0, message
 * ID 0, length), §3.4 SA payload (DOI 1 IPsec, SIT_IDENTITY_ONLY), §3.5 proposal (PROTO_ISAKMP,
 * SPI size 0, one transform), §3.6 transform (KEY_IKE) with RFC 2409 Appendix A basic attributes:
 * AES-CBC (7), key length 256, SHA2-256 (4), pre-shared key (1), MODP group 14.
 */
function ikev1Request(exchange: 2 | 4): Uint8Array {
  const attrs = [[1, 7], [14, 256], [2, 4], [3, 1], [4, 14]].flatMap(([t, v]) => [0x80, t!, v! >> 8, v! & 0xff]);
  const transform = [0, 0, 0, 8 + attrs.length, 1, 1, 0, 0, ...attrs]; // last, reserved, length, #1, KEY_IKE, reserved2
  const proposal = [0, 0, 0, 8 + transform.length, 1, 1, 0, 1, ...transform]; // last, #1, PROTO_ISAKMP, SPI size 0, 1 transform
  const sa = [0, 0, 0, 12 + proposal.length, 0, 0, 0, 1, 0, 0, 0, 1, ...proposal]; // no next payload, DOI 1, situation 1
  const total = 28 + sa.length;
  const header = [0x1a, 0x2b, 0x3c, 0x4d, 0x5e, 0x6f, 0x70, 0x81, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0x10, exchange, 0, 0, 0, 0, 0, total >>> 24, (total >>> 16) & 0xff, (total >>> 8) & 0xff, total & 0xff];
  return new Uint8Array([...header, ...sa]);
}

const errors = (events: readonly IkeEvent[]) => events.filter((e): e is Extract<IkeEvent, { type: 'error' }> => e.type === 'error');

test('RFC 9395, RFC 7296 §1.5: an IKEv1 Main Mode request from a tunnel\'s remote gets no state and no answer, and the tunnel\'s lastError names the peer and IKEv1 once a minute', async () => {
  const p = new Pair();
  const bob = p.bob;
  const d = ikev1Request(2);
  for (let i = 0; i < 5; i++) await bob.engine.receive(d, { address: ALICE, port: 500 }, { address: BOB, port: 500 });
  await bob.engine.idle();
  assert.deepEqual(bob.engine.sizes(), { ikeSas: 0, halfOpen: 0, childSas: 0, reassemblyBytes: 0 }, 'no state for IKEv1');
  assert.equal(p.net.queue.length, 0, 'nothing sent back: an IKEv1 peer cannot read an IKEv2 notify');
  const st = bob.engine.status();
  assert.equal(st.drops['ikev1'], 5);
  assert.equal(st.drops['decode'], undefined, 'a distinct drop reason, not a decode error');
  const errs = errors(bob.events);
  assert.equal(errs.length, 1, 'retransmissions within the minute are not reported again');
  assert.equal(errs[0]!.peer, 'to-alice');
  assert.equal(errs[0]!.error.code, 'ERR_IKE_V1_UNSUPPORTED');
  assert.equal(errs[0]!.error.origin, 'remote');
  assert.match(errs[0]!.error.message, /^192\.0\.2\.1:500 sent an IKEv1 Main Mode request, dropped: IKEv1 is not supported \(RFC 9395\)/);
  assert.equal(st.peers[0]!.lastError?.code, 'ERR_IKE_V1_UNSUPPORTED', 'kept as the peer\'s lastError for status');

  p.clock.advance(IKEV1_NOTICE_INTERVAL_MS);
  await bob.engine.receive(ikev1Request(4), { address: ALICE, port: 500 }, { address: BOB, port: 500 });
  assert.equal(errors(bob.events).length, 2, 'reported again after the interval');
  assert.match(errors(bob.events)[1]!.error.message, /IKEv1 Aggressive Mode request/);

  // The same peer speaking IKEv2 afterwards is served normally.
  await p.connect();
  assert.equal(bob.engine.status().peers[0]!.ike?.state, 'established');
});

test('RFC 9395: an IKEv1 request from an address no tunnel names is logged (address, exchange) once a minute per address, with a bounded table', async () => {
  const p = new Pair();
  const warns: { obj: Record<string, unknown>; msg: string }[] = [];
  const events: IkeEvent[] = [];
  const log = { debug: () => undefined, info: () => undefined, warn: (obj: Record<string, unknown>, msg: string) => { warns.push({ obj, msg }); } };
  const engine = new IkeEngine({ transport: p.net.transportFor(), kernel: new FakeKernel(0xc0000001), clock: p.clock, random: new SeededRandom(5), events: { emit: (e) => events.push(e) }, log }, [p.bob.config]);
  const stranger = { address: '198.51.100.7', port: 500 };
  for (let i = 0; i < 3; i++) await engine.receive(ikev1Request(4), stranger, { address: BOB, port: 500 });
  assert.equal(warns.length, 1);
  assert.deepEqual(warns[0]!.obj, { remote: '198.51.100.7:500', local: '192.0.2.2:500', exchange: 'Aggressive Mode' });
  assert.match(warns[0]!.msg, /^198\.51\.100\.7:500 sent an IKEv1 Aggressive Mode request, dropped: IKEv1 is not supported \(RFC 9395\)/);
  assert.equal(events.length, 0, 'no tunnel to blame');
  assert.equal(engine.status().drops['ikev1'], 3);
  assert.equal(p.net.queue.length, 0);

  // Spoofed sources evict the oldest entry rather than grow the table: the stranger is reported again.
  for (let i = 0; i < IKEV1_NOTICE_ADDRESSES; i++) await engine.receive(ikev1Request(2), { address: `10.9.${i >> 8}.${i & 0xff}`, port: 500 }, { address: BOB, port: 500 });
  warns.length = 0;
  await engine.receive(ikev1Request(2), stranger, { address: BOB, port: 500 });
  assert.equal(warns.length, 1);
  assert.deepEqual(engine.sizes(), { ikeSas: 0, halfOpen: 0, childSas: 0, reassemblyBytes: 0 });
  await engine.close();
});
