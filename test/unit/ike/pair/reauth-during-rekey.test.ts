// A make-before-break reauthentication (RFC 7296 §2.8.3) that completes while an IKE SA rekey
// (§1.3.2, §2.18) of the SA it replaces is still in flight (found by the state fuzz,
// test/unit/ike/fuzz). The reauthentication queues the Delete of the old IKE SA; the rekey then
// hands the old SA's work to its successor, which is what the reauthentication replaces now.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ExchangeType } from '../../../../src/ike/constants.js';
import { Pair } from './harness.js';

test('a reauthentication that completes while the old IKE SA is being rekeyed deletes the rekeyed successor: one IKE SA and one Child SA pair remain, and they rekey (RFC 7296 §2.8.3, §2.18)', async () => {
  // Why: the Delete queued on the old SA was dropped when the rekey moved its tasks to the
  // successor, so both peers kept the successor and its superseded Child SA for good, and an
  // operator Child SA rekey failed (the newest IKE SA had no installed Child SA).
  const p = new Pair();
  await p.connect();
  /* CREATE_CHILD_SA { SA, Ni, KEi } -->  (bob answers; the answer is held) */
  p.net.fate = (x) => (x.exchange === ExchangeType.CREATE_CHILD_SA && x.response ? 'hold' : 'deliver');
  p.alice.engine.rekey('to-bob', { ike: true });
  await p.net.pump();
  assert.equal(p.net.held.length, 1, 'the IKE rekey answer is held');
  /* IKE_SA_INIT, IKE_AUTH of the new IKE SA <--> while the rekey is outstanding */
  p.alice.engine.rekey('to-bob', { reauth: true });
  await p.net.pump();
  assert.equal(p.alice.events.filter((e) => e.type === 'ike-up').length, 2, 'the new IKE SA is up');
  /* <-- the held CREATE_CHILD_SA answer: alice's rekey completes after the reauthentication */
  p.net.fate = () => 'deliver';
  p.net.releaseHeld();
  await p.net.pump();
  await p.advance(60_000);
  assert.equal(p.alice.engine.sizes().ikeSas, 1, `alice: ${JSON.stringify(p.alice.engine.sizes())}`);
  assert.equal(p.bob.engine.sizes().ikeSas, 1, `bob: ${JSON.stringify(p.bob.engine.sizes())}`);
  assert.equal(p.alice.kernel.installed.size, 1);
  assert.equal(p.bob.kernel.installed.size, 1);
  const before = p.alice.events.filter((e) => e.type === 'child-rekeyed').length;
  p.alice.engine.rekey('to-bob', { child: true });
  await p.net.pump();
  assert.equal(p.alice.events.filter((e) => e.type === 'child-rekeyed').length, before + 1);
});
