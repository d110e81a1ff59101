// Lease-based leader election decisions (client-go leaderelection semantics): expiry is judged by
// how long the *observed* record stayed unchanged on our own clock, not by the holder's timestamps.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decide, microTime, type Lease } from '../../../src/operator/leader.js';

const lease = (holder: string, renewTime = '2026-01-01T00:00:00.000000Z'): Lease => ({ metadata: { name: 'l', namespace: 'n' }, spec: { holderIdentity: holder, leaseDurationSeconds: 15, renewTime } });

test('no lease: create it; our lease: renew; released lease: acquire', () => {
  assert.deepEqual(decide(undefined, 'me', undefined, 0, 15_000), { action: 'create' });
  assert.deepEqual(decide(lease('me'), 'me', undefined, 0, 15_000), { action: 'renew' });
  assert.deepEqual(decide(lease(''), 'me', undefined, 0, 15_000), { action: 'acquire' });
});

test("another holder's lease is taken only after it stayed unchanged for leaseDuration on our clock", () => {
  const l = lease('other');
  const seen = { holder: 'other', renewTime: l.spec!.renewTime!, observedAtMs: 1000 };
  assert.deepEqual(decide(l, 'me', seen, 1000 + 14_999, 15_000), { action: 'wait', holder: 'other' });
  assert.deepEqual(decide(l, 'me', seen, 1000 + 15_000, 15_000), { action: 'acquire' });
  // The holder renewed (renewTime changed): what we observed is stale, so wait.
  assert.deepEqual(decide(lease('other', '2026-01-01T00:00:10.000000Z'), 'me', seen, 1000 + 60_000, 15_000), { action: 'wait', holder: 'other' });
  // Never observed before: wait (the caller records the observation now).
  assert.deepEqual(decide(l, 'me', undefined, 10 ** 12, 15_000), { action: 'wait', holder: 'other' });
});

test('MicroTime has six fractional digits', () => {
  assert.equal(microTime(Date.UTC(2026, 0, 1, 0, 0, 0, 123)), '2026-01-01T00:00:00.123000Z');
});
