// The IKE SA checkpoint codec (src/ike/sa/checkpoint-encode.ts, checkpoint-decode.ts): what a
// restarted daemon reads back must be exactly what it wrote, a damaged file must be refused naming
// the field (never a crash, never a half-read SA), and key material must not leak through the usual
// logging paths.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import fc from 'fast-check';
import { CheckpointError, decodeCheckpoint, encodeCheckpoint, type IkeSaCheckpoint } from '../../../../src/ike/sa/checkpoint.js';
import { ExchangeType } from '../../../../src/ike/constants.js';
import { child, HOUR, Pair } from '../pair/harness.js';

/** Real checkpoints: a PSK/GCM SA, and a certificate/CBC SA behind NAT with a PFS rekey in flight. */
async function samples(): Promise<Uint8Array[]> {
  const a = new Pair();
  await a.connect();
  const esp = 'aes128-sha256-modp2048';
  const b = new Pair({
    auth: 'cert', ike: ['aes256-sha384-prfsha384-ecp384'],
    aliceChildren: [child({ espProposals: [esp] })], bobChildren: [child({ espProposals: [esp], rekeyTimeMs: 2 * HOUR, lifeTimeMs: 3 * HOUR }, 'bob')],
    alice: { natTraversal: 'always' },
  });
  await b.connect();
  b.net.fate = (x) => (x.exchange === ExchangeType.CREATE_CHILD_SA && x.response ? 'drop' : 'deliver');
  await b.advance(HOUR);
  return [...a.alice.checkpoints.data.values(), ...a.bob.checkpoints.data.values(), ...b.alice.checkpoints.data.values(), ...b.bob.checkpoints.data.values()];
}

test('decodeCheckpoint(encodeCheckpoint(x)) = x for real SAs of both roles (PSK/GCM; certificates/CBC, NAT, PFS rekey in flight)', async () => {
  const all = await samples();
  assert.equal(all.length, 4);
  let inFlight = 0;
  for (const bytes of all) {
    const cp = decodeCheckpoint(bytes);
    assert.deepEqual(Buffer.from(encodeCheckpoint(cp)), Buffer.from(bytes));
    if (cp.outstanding?.child?.share) inFlight++;
  }
  assert.equal(inFlight, 1, 'the in-flight PFS rekey carries its DH private value');
});

test('a decoded checkpoint prints no key material through JSON, inspect or template strings', async () => {
  const [bytes] = await samples();
  const cp: IkeSaCheckpoint = decodeCheckpoint(bytes!);
  const sk = Buffer.from(cp.skD.expose()).toString('base64');
  for (const text of [JSON.stringify(cp, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)), inspect(cp, { depth: 10 }), `${String(cp.skEi)}`]) {
    assert.ok(!text.includes(sk), 'SK_d visible');
    assert.ok(text.includes('redacted'));
  }
});

test('a checkpoint that is not JSON is refused without quoting its text, which holds key material (V8 quotes the input around a bad token)', async () => {
  const [bytes] = await samples();
  const text = Buffer.from(bytes!).toString();
  const skD = /"skD":"([^"]{8})/.exec(text)?.[1];
  assert.ok(skD, 'the sample has an SK_d');
  // A flipped byte: the quote that opens SK_d's value is gone.
  const broken = new Uint8Array(Buffer.from(text.replace('"skD":"', '"skD":')));
  assert.throws(() => decodeCheckpoint(broken), (e: unknown) => e instanceof CheckpointError && /not JSON/.test(e.message) && !e.message.includes(skD.slice(0, 6)), 'refused, quoting nothing of SK_d');
});

test('damaged checkpoints are refused naming the field', async () => {
  const [bytes] = await samples();
  const json = JSON.parse(Buffer.from(bytes!).toString()) as Record<string, unknown>;
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ ...json, spiI: 'xyz' }, /spiI: expected 16 hex digits/],
    [{ ...json, nextRequestId: -1 }, /nextRequestId: expected an integer/],
    [{ ...json, role: 'observer' }, /role: "observer" is not one of initiator, responder/],
    [{ ...json, children: [{ ...(json['children'] as object[])[0], localTs: [{ family: 'ipv4', start: 'AAAAAAAA', end: 'AAA=', protocol: 0, startPort: 0, endPort: 65535 }] }] }, /children\[0\]\.localTs\[0\]\.start: 6 bytes, want 4\.\.4/],
    [{ ...json, lastResponse: { messageId: 1, datagrams: ['AAAA'] } }, /lastResponse\.datagrams\[0\]: 3 bytes is not an IKE message/],
    [{ ...json, keys: 7 }, /keys: expected an object/],
  ];
  for (const [v, re] of cases) {
    assert.throws(() => decodeCheckpoint(new Uint8Array(Buffer.from(JSON.stringify(v)))), (e: unknown) => e instanceof CheckpointError && re.test(e.message), String(re));
  }
});

test('any mutation of a checkpoint decodes or throws CheckpointError, nothing else (fast-check)', async () => {
  const [bytes] = await samples();
  const json = JSON.parse(Buffer.from(bytes!).toString()) as Record<string, unknown>;
  const keys = Object.keys(json);
  const junk = fc.oneof(fc.string(), fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.array(fc.string(), { maxLength: 3 }), fc.object({ maxDepth: 1 }));
  fc.assert(fc.property(fc.constantFrom(...keys), junk, (k, v) => {
    try { decodeCheckpoint(new Uint8Array(Buffer.from(JSON.stringify({ ...json, [k]: v })))); } catch (e) {
      if (!(e instanceof CheckpointError)) throw e;
    }
  }), { numRuns: 2_000 });
  fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (b) => {
    try { decodeCheckpoint(b); } catch (e) { if (!(e instanceof CheckpointError)) throw e; }
  }), { numRuns: 1_000 });
});

test('a rekey collision in progress (RFC 7296 §2.8.1) round-trips, Child SA and IKE SA; checkpoints written before it existed read as none', async () => {
  // Both rekey at 1 h; the answer to alice's own request and bob's Deletes are held, so she is in
  // the middle of each collision.
  const ikeConfig = { proposals: ['aes256gcm16-prfsha256-x25519'], rekeyTimeMs: HOUR };
  const long = { rekeyTimeMs: 3 * HOUR, lifeTimeMs: 4 * HOUR };
  const dpd = { intervalMs: 0, action: 'restart' } as const; // its requests would be held too
  const pairs = [new Pair({ alice: { dpd }, bob: { dpd } }), new Pair({ alice: { dpd, ike: ikeConfig }, bob: { dpd, ike: ikeConfig }, aliceChildren: [child(long)], bobChildren: [child(long, 'bob')] })];
  const found = { child: 0, ike: 0 };
  for (const p of pairs) {
    await p.connect();
    const toAlice = (x: { to: { address: string } }): boolean => x.to.address === p.alice.config.local.address;
    p.net.fate = (x) => (toAlice(x) && ((x.exchange === ExchangeType.CREATE_CHILD_SA && x.response) || (x.exchange === ExchangeType.INFORMATIONAL && !x.response)) ? 'hold' : 'deliver');
    await p.advance(HOUR);
    for (const bytes of p.alice.checkpoints.data.values()) {
      const cp = decodeCheckpoint(bytes);
      assert.deepEqual(Buffer.from(encodeCheckpoint(cp)), Buffer.from(bytes));
      const col = cp.children.find((c) => c.collision)?.collision;
      if (col) { found.child++; assert.ok(cp.children.some((c) => c.inboundSpi === col.peer), 'the peer\'s new Child SA is on the same IKE SA'); assert.equal(col.nonces.length, 2); }
      if (cp.ikeCollision) { found.ike++; assert.ok(p.alice.checkpoints.data.has(cp.ikeCollision.peer.toString(16).padStart(16, '0')), 'the peer\'s new IKE SA has its own checkpoint'); }
      const old = JSON.parse(Buffer.from(bytes).toString()) as Record<string, unknown>;
      delete old['ikeCollision'];
      old['children'] = (old['children'] as Record<string, unknown>[]).map(({ collision: _, ...c }) => c);
      const read = decodeCheckpoint(new Uint8Array(Buffer.from(JSON.stringify(old))));
      assert.equal(read.ikeCollision, null);
      assert.ok(read.children.every((c) => c.collision === null));
    }
  }
  assert.deepEqual(found, { child: 1, ike: 1 });
});

test('a rekeyed Child SA lingering for its delete delay is in the checkpoint with its delete time, round-trips, and is gone from it once deleted; checkpoints written before it existed read as none (RFC 7296 §2.8, DESIGN.md §9)', async () => {
  const p = new Pair({ aliceChildren: [child({ rekeyTimeMs: HOUR, lifeTimeMs: 2 * HOUR })], bobChildren: [child({ rekeyTimeMs: 2 * HOUR, lifeTimeMs: 3 * HOUR }, 'bob')] });
  await p.connect();
  const [oldSpi] = [...p.alice.kernel.installed.keys()];
  await p.advance(HOUR + 1_000); // alice rekeyed; the old inbound state lingers 5 s
  const [bytes] = [...p.alice.checkpoints.data.values()];
  const cp = decodeCheckpoint(bytes!);
  assert.deepEqual(Buffer.from(encodeCheckpoint(cp)), Buffer.from(bytes!));
  assert.equal(cp.lingering.length, 1);
  assert.equal(cp.lingering[0]!.inboundSpi, oldSpi);
  assert.ok(cp.lingering[0]!.untilMs > p.clock.now(), 'its delete time is still ahead');
  const old = JSON.parse(Buffer.from(bytes!).toString()) as Record<string, unknown>;
  delete old['lingering'];
  assert.deepEqual(decodeCheckpoint(new Uint8Array(Buffer.from(JSON.stringify(old)))).lingering, []);
  await p.advance(10_000);
  assert.deepEqual(decodeCheckpoint([...p.alice.checkpoints.data.values()][0]!).lingering, [], 'deleted: no longer in the checkpoint');
  assert.ok(!p.alice.kernel.installed.has(oldSpi!));
});
