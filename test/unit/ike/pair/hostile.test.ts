// Network input never throws out of engine.receive (DESIGN.md §9): recorded messages of a real
// handshake, mutated (bit flips, truncation, splices, header field changes) and replayed at both
// engines in every state, only ever yield counted drops or notifies; the SAs keep working.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SeededRandom } from '../../../../src/common/time.js';
import { ExchangeType, NotifyError } from '../../../../src/ike/constants.js';
import { decodeMessage } from '../../../../src/ike/codec/message.js';
import { mirrored, Pair } from './harness.js';

function mutate(r: SeededRandom, d: Uint8Array): Uint8Array {
  const b = r.bytes(4);
  const kind = b[0]! % 5;
  const at = ((b[1]! << 8) | b[2]!) % Math.max(1, d.length);
  const out = new Uint8Array(d);
  switch (kind) {
    case 0: out[at] = out[at]! ^ (1 << (b[3]! % 8)); return out;
    case 1: return out.subarray(0, at);
    case 2: { const v = new DataView(out.buffer); if (out.length >= 28) v.setUint32(20, b[3]!); return out; } // message ID
    case 3: if (out.length > 19) { out[19] = b[3]!; } return out; // flags
    default: { const extra = r.bytes(b[3]! % 64); const o = new Uint8Array(out.length + extra.length); o.set(out); o.set(extra, out.length); return o; }
  }
}

test('5,000 mutated datagrams at both engines: no exception escapes, drops are counted, the SAs keep working', async () => {
  const p = new Pair();
  await p.connect();
  const recorded = [...p.net.log];
  const r = new SeededRandom(2026);
  let rejected = 0;
  for (let i = 0; i < 5_000; i++) {
    const src = recorded[i % recorded.length]!;
    const target = i % 2 === 0 ? p.bob.engine : p.alice.engine;
    try { await target.receive(mutate(r, src.datagram), src.from, src.to); } catch { rejected++; }
    p.net.queue.length = 0; // answers to garbage go nowhere
  }
  assert.equal(rejected, 0);
  const drops = { ...p.alice.engine.status().drops };
  for (const [k, v] of Object.entries(p.bob.engine.status().drops)) drops[k] = (drops[k] ?? 0) + v;
  const total = Object.values(drops).reduce((a, b) => a + b, 0);
  assert.ok(total >= 4_000, `most inputs are counted as drops (${total})`);
  assert.equal(drops['internal-error'] ?? 0, 0, JSON.stringify(drops));
  // Still alive: a liveness check round trip and a child rekey work.
  await p.advance(3_600_000 + 10_000);
  assert.equal(p.alice.engine.status().peers[0]?.ike?.state, 'established');
  assert.ok(p.net.log.some((x) => x.exchange === ExchangeType.CREATE_CHILD_SA), 'p.net.log.some((x) => x.exchange === ExchangeType.CREATE_CHILD_SA)');
  assert.ok(mirrored(p.alice.kernel, p.bob.kernel), 'mirrored(p.alice.kernel, p.bob.kernel)');
});

test('an IKE_SA_INIT with an unknown critical payload is answered with UNSUPPORTED_CRITICAL_PAYLOAD naming its type, statelessly (RFC 7296 §2.5)', async () => {
  const p = new Pair();
  p.net.fate = () => 'drop';
  p.alice.engine.initiate('to-bob');
  await p.net.pump();
  const req = p.net.log[0]!;
  // Walk the chain to the last payload, point it at type 200 and append an empty critical payload.
  const d = req.datagram;
  const v = new DataView(d.buffer, d.byteOffset, d.byteLength);
  let at = 28;
  while (v.getUint8(at) !== 0) at += v.getUint16(at + 2);
  const forged = new Uint8Array(d.length + 4);
  forged.set(d);
  forged[at] = 200;
  forged.set([0, 0x80, 0, 4], d.length);
  new DataView(forged.buffer).setUint32(24, forged.length);
  p.net.fate = () => 'deliver';
  await p.bob.engine.receive(forged, req.from, req.to);
  const reply = p.net.queue.at(-1);
  assert.ok(reply !== undefined, 'bob answered');
  const m = decodeMessage(reply.datagram);
  const n = m.notify(NotifyError.UNSUPPORTED_CRITICAL_PAYLOAD);
  assert.deepEqual(n ? [...n.data] : [], [200]);
  assert.equal(m.header.responderSpi, 0n);
  assert.equal(p.bob.engine.status().halfOpen, 0);
});
