// The tunnel Lease through apiserver outages (src/agent/gateway/lease.ts): a control-plane outage
// must not take site-to-site tunnels down (fail-static, as the mesh's SAs live on through one), nor
// hand every tunnel to a standby the moment it ends. Two candidates against one in-memory Lease
// store standing in for the apiserver (each with its own reachability), on a manual clock: this
// tests the candidacy rules; e2e/apiserver/tunnel-gateway.test.ts runs them against kube-apiserver.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../../../src/common/time.js';
import type { KubeClient } from '../../../../src/api/kube/client.js';
import { KubeApiError, KubeUnavailableError } from '../../../../src/api/kube/errors.js';
import { TunnelLease, apiserverUnavailable, type Lease } from '../../../../src/agent/gateway/lease.js';

class LeaseStore {
  lease: Lease | undefined;
  #rv = 0;
  get(): Lease {
    if (!this.lease) throw new KubeApiError(404, 'NotFound', 'leases "kipsec-tunnel-to-vpc" not found');
    return structuredClone(this.lease);
  }
  create(body: Lease): Lease {
    if (this.lease) throw new KubeApiError(409, 'AlreadyExists', 'already exists');
    this.lease = { ...structuredClone(body), metadata: { ...body.metadata, resourceVersion: String(++this.#rv) } };
    return structuredClone(this.lease);
  }
  update(body: Lease): Lease {
    if (body.metadata.resourceVersion !== this.lease?.metadata.resourceVersion) throw new KubeApiError(409, 'Conflict', 'the object has been modified');
    this.lease = { ...structuredClone(body), metadata: { ...body.metadata, resourceVersion: String(++this.#rv) } };
    return structuredClone(this.lease);
  }
}

/** One node's view of the apiserver: `down` is that node's outage; `refuse` an answer that is not one. */
function view(store: LeaseStore): { kube: KubeClient; down: boolean; refuse: KubeApiError | undefined } {
  const v = { down: false, refuse: undefined as KubeApiError | undefined, kube: undefined as unknown as KubeClient };
  const gate = <T>(fn: () => T): Promise<T> => {
    if (v.down) return Promise.reject(new KubeUnavailableError('connect ECONNREFUSED 127.0.0.1:6443', undefined));
    if (v.refuse) return Promise.reject(v.refuse);
    try { return Promise.resolve(fn()); } catch (e) { return Promise.reject(e); }
  };
  v.kube = {
    get: () => gate(() => store.get()),
    create: (_path: string, body: Lease) => gate(() => store.create(body)),
    update: (_path: string, body: Lease) => gate(() => store.update(body)),
  } as unknown as KubeClient;
  return v;
}

function setup(): { clock: ManualClock; store: LeaseStore; a: TunnelLease; b: TunnelLease; va: ReturnType<typeof view>; vb: ReturnType<typeof view>; round: (n?: number) => Promise<void> } {
  const clock = new ManualClock();
  const store = new LeaseStore();
  const va = view(store); const vb = view(store);
  const a = new TunnelLease({ kube: va.kube, namespace: 'kipsec-system', name: 'kipsec-tunnel-to-vpc', identity: 'node-a', clock });
  const b = new TunnelLease({ kube: vb.kube, namespace: 'kipsec-system', name: 'kipsec-tunnel-to-vpc', identity: 'node-b', clock });
  // One retry period (1 s): each candidate ticks once, node-b first when it matters (it would win a race).
  const round = async (n = 1): Promise<void> => { for (let i = 0; i < n; i++) { clock.advance(1_000); await b.tick(); await a.tick(); } };
  return { clock, store, a, b, va, vb, round };
}

test('apiserverUnavailable: no answer, 5xx and 429 are an outage; 403, 404 and 409 are answers', () => {
  assert.equal(apiserverUnavailable(new KubeUnavailableError('ECONNRESET', undefined)), true);
  assert.equal(apiserverUnavailable(new Error('socket hang up')), true);
  assert.equal(apiserverUnavailable(new KubeApiError(503, 'ServiceUnavailable', 'etcd')), true);
  assert.equal(apiserverUnavailable(new KubeApiError(429, 'TooManyRequests', 'slow down')), true);
  for (const s of [403, 404, 409, 422]) assert.equal(apiserverUnavailable(new KubeApiError(s, 'x', 'y')), false, String(s));
});

test('the active gateway keeps its tunnel through an apiserver outage of 10 minutes (fail-static), renews when it is back, and the standby does not take over as the outage ends', async () => {
  const { a, b, va, vb, round, store } = setup();
  await a.tick();
  await round(2);
  assert.deepEqual([a.held, b.held], [true, false], 'node-a created the Lease and holds it');
  va.down = true; vb.down = true;
  await round(600);
  assert.deepEqual([a.held, b.held], [true, false], 'nobody can reach the apiserver: node-a stays active');
  assert.notEqual(a.outageSinceMs, undefined);
  va.down = false; vb.down = false;
  await round(10);
  assert.deepEqual([a.held, b.held], [true, false], 'node-b saw a record it could not read for 10 minutes as fresh, so node-a renewed first');
  assert.equal(store.lease?.spec?.holderIdentity, 'node-a');
  assert.equal(a.outageSinceMs, undefined);
});

test('a gateway cut off from the apiserver alone stays active until it can read the Lease, then steps down at once for the one that took over', async () => {
  const { a, b, va, round, store } = setup();
  await a.tick();
  await round(2);
  va.down = true;
  await round(6);
  assert.equal(store.lease?.spec?.holderIdentity, 'node-b', 'node-b took the Lease after its record stood still for 4 s');
  assert.deepEqual([a.held, b.held], [true, true], 'the price of fail-static: both active while node-a cannot read the Lease');
  va.down = false;
  await round(1);
  assert.deepEqual([a.held, b.held], [false, true], 'node-a read the Lease and stood down');
});

test('an answer that is not an outage (a 403 from the admission policy) ends the holding after renewDeadline (3 s), as without an outage', async () => {
  const { a, va, round } = setup();
  await a.tick();
  await round(1);
  assert.equal(a.held, true);
  va.refuse = new KubeApiError(403, 'Forbidden', 'leases is forbidden');
  await round(2);
  assert.equal(a.held, true, 'renewed 2 s ago');
  await round(2);
  assert.equal(a.held, false, 'no renewal for more than 3 s');
  assert.equal(a.outageSinceMs, undefined);
});
