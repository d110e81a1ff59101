// Lease-based leader election decisions (client-go leaderelection semantics): expiry is judged by
// how long the *observed* record stayed unchanged on our own clock, not by the holder's timestamps.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KubeClient } from '../../../src/api/kube/client.js';
import { KubeApiError } from '../../../src/api/kube/errors.js';
import { ManualClock } from '../../../src/common/time.js';
import { decide, LeaderElector, microTime, type Lease } from '../../../src/operator/leader.js';
import type { Logger } from '../../../src/operator/logger.js';

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

/** A Lease API whose answers the test releases: `hang` makes every request wait until release(). */
class LeaseApi {
  lease: Lease | undefined;
  hang = false;
  readonly #waiting: (() => void)[] = [];
  #rv = 0;
  #gate(): Promise<void> { return this.hang ? new Promise((r) => this.#waiting.push(r)) : Promise.resolve(); }
  release(): void { for (const r of this.#waiting.splice(0)) r(); }
  async get<T>(): Promise<T> {
    await this.#gate();
    if (!this.lease) throw new KubeApiError(404, 'NotFound', 'lease not found');
    return structuredClone(this.lease) as T;
  }
  async create<T>(_path: string, body: Lease): Promise<T> {
    await this.#gate();
    this.lease = { ...body, metadata: { ...body.metadata, resourceVersion: String(++this.#rv) } };
    return structuredClone(this.lease) as T;
  }
  async update<T>(_path: string, body: Lease): Promise<T> {
    await this.#gate();
    if (body.metadata.resourceVersion !== this.lease?.metadata.resourceVersion) throw new KubeApiError(409, 'Conflict', 'stale resourceVersion');
    this.lease = { ...body, metadata: { ...body.metadata, resourceVersion: String(++this.#rv) } };
    return structuredClone(this.lease) as T;
  }
}

const quiet = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined } as unknown as Logger;
/** Let the elector's promise chains run between clock steps. */
const settle = async (): Promise<void> => { for (let i = 0; i < 20; i++) await Promise.resolve(); };

test('a leader whose lease renewal hangs (partition, no answer) steps down at renewDeadline, before leaseDuration lets another take over (client-go leaderelection renewDeadline)', async () => {
  const clock = new ManualClock(); const api = new LeaseApi(); const log: string[] = [];
  const cfg = { namespace: 'n', name: 'l', identity: 'a', leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 };
  const e = new LeaderElector(api as unknown as KubeClient, cfg, clock, quiet, { onStartedLeading: () => log.push(`lead ${clock.now()}`), onStoppedLeading: () => log.push(`stop ${clock.now()}`) });
  const t0 = clock.now();
  void e.run();
  await settle();
  assert.ok(e.isLeader, 'leading after creating the lease');
  for (let i = 0; i < 3; i++) { clock.advance(2_000); await settle(); }
  assert.ok(e.isLeader, 'renewing');
  const lastRenew = clock.now();
  api.hang = true;
  // No answer from here on: the renewals started at +2 s, +4 s … never return.
  for (let ms = 0; ms < 9_000; ms += 1_000) { clock.advance(1_000); await settle(); }
  assert.ok(e.isLeader, 'still within renewDeadline of the last renewal');
  clock.advance(1_000); await settle();
  assert.equal(e.isLeader, false, 'no longer leader once the last renewal is renewDeadline old, whatever the loop is doing');
  assert.deepEqual(log, [`lead ${t0}`, `stop ${lastRenew + 10_000}`], 'stepped down at renewDeadline without waiting for the hung request');
  assert.ok(lastRenew + 10_000 < lastRenew + cfg.leaseDurationMs, 'before a standby may acquire (leaseDuration after it saw the last renewal)');
  api.release(); await settle();
  assert.equal(e.isLeader, false, 'the late answer does not make it leader again by itself');
  await e.stop();
});

test('a paused leader (no timer ran for longer than renewDeadline) is not leader the moment it resumes, before its election loop has run', async () => {
  const clock = new ManualClock(); const api = new LeaseApi();
  const e = new LeaderElector(api as unknown as KubeClient, { namespace: 'n', name: 'l', identity: 'a', leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 }, clock, quiet, { onStartedLeading: () => undefined, onStoppedLeading: () => undefined });
  void e.run();
  await settle();
  assert.ok(e.isLeader);
  // The process stops (SIGSTOP, a VM freeze): the clock moves on and no callback runs.
  const frozen = clock as unknown as { t: number };
  frozen.t += 12_000;
  assert.equal(e.isLeader, false, 'the first code to run after the pause sees the lease as lost');
  await e.stop();
});
