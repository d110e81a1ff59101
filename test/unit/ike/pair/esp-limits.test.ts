// Child SA volume limits as they reach the kernel port (issue 14, ESP sequence exhaustion): without
// ESN every SA gets a packet limit well below 2^32 so the 32-bit sequence number never wraps and
// the kernel never sits at its hard limit dropping everything until the time-based rekey
// (RFC 4303 §3.3.3); configured packet and byte limits reach both directions, soft at 90%; a soft
// expire starts a make-before-break rekey. The VM lane shows the same with the real kernel
// (e2e/vm/esp-limits.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NON_ESN_LIFE_PACKETS } from '../../../../src/ike/sa/defaults.js';
import { child, mirrored, Pair } from './harness.js';

function installed(p: Pair): ReturnType<Pair['alice']['kernel']['installed']['get']>[] {
  return [...p.alice.kernel.installed.values(), ...p.bob.kernel.installed.values()];
}

test('a Child SA without ESN gets a hard packet limit of 2^31 and a soft one at 90% in both directions, both ends (RFC 4303 §3.3.3: the sequence number must not cycle)', async () => {
  const p = new Pair({ aliceChildren: [child({ espProposals: ['aes256gcm16-noesn'] })], bobChildren: [child({ espProposals: ['aes256gcm16-noesn'] }, 'bob')] });
  await p.connect();
  const sas = installed(p);
  assert.equal(sas.length, 2);
  for (const c of sas) {
    assert.equal(c!.inbound.esn, false);
    for (const sa of [c!.inbound, c!.outbound]) {
      assert.equal(sa.lifetimes.hardPackets, NON_ESN_LIFE_PACKETS);
      assert.equal(sa.lifetimes.softPackets, (NON_ESN_LIFE_PACKETS * 9n) / 10n);
      assert.ok(sa.lifetimes.hardPackets < 2n ** 32n);
    }
  }
});

test('a Child SA with ESN negotiated gets no default packet limit: its 64-bit sequence number does not wrap (RFC 4303 §2.2.1)', async () => {
  const p = new Pair({ aliceChildren: [child({ espProposals: ['aes256gcm16-esn'] })], bobChildren: [child({ espProposals: ['aes256gcm16-esn'] }, 'bob')] });
  await p.connect();
  for (const c of installed(p)) {
    assert.equal(c!.inbound.esn, true, 'ESN proposed by both ends is installed');
    assert.equal(c!.inbound.lifetimes.hardPackets, 0n);
    assert.equal(c!.outbound.lifetimes.hardPackets, 0n);
  }
});

test('configured lifePackets and lifeBytes reach both directions of both ends, soft at 90% (strongSwan life_packets/rekey_packets semantics)', async () => {
  const limits = { lifePackets: 1_000n, lifeBytes: 1_048_576n };
  const p = new Pair({ aliceChildren: [child({ espProposals: ['aes256gcm16-esn'], ...limits })], bobChildren: [child({ espProposals: ['aes256gcm16-esn'], ...limits }, 'bob')] });
  await p.connect();
  for (const c of installed(p)) {
    for (const sa of [c!.inbound, c!.outbound]) {
      assert.deepEqual([sa.lifetimes.hardPackets, sa.lifetimes.softPackets], [1_000n, 900n]);
      assert.deepEqual([sa.lifetimes.hardBytes, sa.lifetimes.softBytes], [1_048_576n, 943_718n]);
    }
  }
});

for (const role of ['alice', 'bob'] as const) {
  test(`a soft expire of the inbound SA at ${role} (the packet limit's 90%) rekeys the Child SA make-before-break, SPIs change, the ends stay mirrored (RFC 7296 §2.8)`, async () => {
    const p = new Pair();
    await p.connect();
    const me = p[role];
    const [before] = [...me.kernel.installed.keys()];
    me.engine.expired(before!, false);
    await p.net.pump();
    await p.advance(10_000);
    const after = [...me.kernel.installed.keys()];
    assert.equal(after.length, 1);
    assert.notEqual(after[0], before, 'a new Child SA replaced the expiring one');
    assert.ok(mirrored(p.alice.kernel, p.bob.kernel), 'mirrored');
  });
}
