// The peer-source seam: the pure plan (what a new snapshot adds, updates, renegotiates, removes),
// the reqid table (collision-free, stable across restarts) and the strict-mode block policies
// (one pair per IPsec policy, coexisting with it in the kernel's identity rules).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { planPeers, type DesiredPeer, type PeerSnapshot } from '../../../src/agent/source.js';
import { ReqidTable, fileReqidStore, reqidKey } from '../../../src/agent/reqids.js';
import { blockKey, blockPolicies, isStrictBlock, StrictPolicies, STRICT_MARK_BIT, STRICT_PRIORITY } from '../../../src/agent/strict.js';
import { reqidFor, isOurReqid } from '../../../src/agent/tunnel.js';
import type { PeerConfig } from '../../../src/ike/engine.js';
import { SecretBytes } from '../../../src/common/secret.js';
import { FakeXfrm } from './fakes.js';
import type { PolicyState } from '../../../src/xfrm/index.js';

function config(name: string, children: PeerConfig['children']): PeerConfig {
  return {
    name, local: { address: '192.0.2.11', id: { type: 'fqdn', value: 'a' } }, remote: { address: '192.0.2.12', id: { type: 'fqdn', value: 'b' } },
    auth: { method: 'psk', secret: new SecretBytes(new Uint8Array(32)) }, ike: { proposals: ['aes256gcm16-prfsha384-x25519'], rekeyTimeMs: 3_600_000 },
    children, dpd: { intervalMs: 30_000, action: 'restart' }, startAction: 'initiate',
  };
}

const pods = { name: 'pods', localTs: ['10.244.1.0/24'], remoteTs: ['10.244.2.0/24'], espProposals: ['aes256gcm16'], mode: 'tunnel', rekeyTimeMs: 60_000, lifeTimeMs: 70_000 } as const;

function peer(name: string, digest: string, session = 's1'): DesiredPeer {
  return { name, config: config(name, [pods]), digest, sessionDigest: session, installRoutes: false, ikeProposalText: [], espProposalText: [], blocks: [], kind: { type: 'mesh', node: name } };
}

const running = (...ps: [string, string, string][]) => new Map(ps.map(([n, d, s]) => [n, { digest: d, sessionDigest: s }]));
const snap = (synced: boolean, ...ps: DesiredPeer[]): PeerSnapshot => ({ synced, peers: ps });

test('a snapshot adds new peers, updates changed ones, renegotiates when the SA-shaping digest changed, and removes missing ones', () => {
  const p = planPeers(running(['a', 'd1', 's1'], ['b', 'd1', 's1'], ['c', 'd1', 's1'], ['gone', 'd1', 's1']),
    snap(true, peer('a', 'd1'), peer('b', 'd2'), peer('c', 'd2', 's2'), peer('new', 'd1')));
  assert.deepEqual(p.add.map((x) => x.name), ['new']);
  assert.deepEqual(p.update.map((x) => x.name), ['b']);
  assert.deepEqual(p.renegotiate.map((x) => x.name), ['c']);
  assert.deepEqual(p.remove, ['gone']);
  assert.deepEqual(p.unchanged, ['a']);
});

test('a snapshot that is not synced never removes a peer (a partial list is not a departure)', () => {
  const p = planPeers(running(['a', 'd1', 's1'], ['b', 'd1', 's1']), snap(false, peer('a', 'd1')));
  assert.deepEqual(p.remove, []);
  assert.deepEqual(p.unchanged, ['a']);
});

test('a snapshot naming one peer twice is refused', () => {
  assert.throws(() => planPeers(new Map(), snap(true, peer('a', 'd'), peer('a', 'd'))), /names "a" twice/);
});

test('a standalone tunnel keeps the reqid its name always hashed to (kernel state of older agents is recognised)', () => {
  const t = new ReqidTable();
  assert.equal(t.allocate(reqidKey('to-aws', 'to-aws')), reqidFor('to-aws'));
  assert.equal(t.allocate(reqidKey('mesh/node-b', 'pods')), reqidFor('mesh/node-b/pods'));
});

test('two keys that hash to the same reqid get different ones; node names need no renaming to dodge a clash', () => {
  // Find two keys with the same FNV-1a reqid (24 bits: a few thousand tries).
  const seen = new Map<number, string>();
  let pair: [string, string] | undefined;
  for (let i = 0; i < 200_000 && !pair; i++) {
    const k = `mesh/node-${i}/pods`;
    const r = reqidFor(k);
    const other = seen.get(r);
    if (other) pair = [other, k]; else seen.set(r, k);
  }
  assert.ok(pair, 'a hash collision exists among 200,000 node names');
  const t = new ReqidTable();
  const a = t.allocate(pair[0]); const b = t.allocate(pair[1]);
  assert.equal(a, reqidFor(pair[0]));
  assert.notEqual(a, b);
  assert.ok(isOurReqid(b));
  assert.equal(t.keyOf(b), pair[1]);
});

test('the reqid table survives a restart through the state directory, so the kernel state keeps its owner', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kipsec-reqids-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const first = new ReqidTable(fileReqidStore(dir));
  first.allocateAll(['mesh/b/pods', 'mesh/a/pods']);
  const second = new ReqidTable(fileReqidStore(dir));
  assert.deepEqual(second.entries().sort(), first.entries().sort());
  second.release(['mesh/a/pods']);
  assert.equal(new ReqidTable(fileReqidStore(dir)).get('mesh/a/pods'), undefined);
  assert.match(readFileSync(join(dir, 'reqids.json'), 'utf8'), /mesh\/b\/pods/);
  second.clear();
  assert.equal(new ReqidTable(fileReqidStore(dir)).size, 0);
});

test('a reqid table file that is not ours is an error naming the file, not a silent reset', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kipsec-reqids-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  fileReqidStore(dir).save({ 'x/y': 7 });
  assert.throws(() => new ReqidTable(fileReqidStore(dir)), /reqids\.json: entry "x\/y" is not a kipsec reqid/);
});

test('strict mode: a tunnel-mode child gets out, in and fwd blocks, each as two policies split on one mark bit', () => {
  const bs = blockPolicies(config('mesh/b', [pods]));
  assert.equal(bs.length, 6);
  for (const b of bs) { assert.equal(b.action, 'block'); assert.equal(b.priority, STRICT_PRIORITY); assert.equal(b.mark?.mask, STRICT_MARK_BIT); }
  assert.ok(STRICT_PRIORITY > 2_000, 'the IPsec policies (priority 2000) win while an SA exists');
  const out = bs.filter((b) => b.dir === 'out');
  assert.deepEqual(out.map((b) => [b.selector.src, b.selector.dst, b.mark?.value]), [['10.244.1.0/24', '10.244.2.0/24', 0], ['10.244.1.0/24', '10.244.2.0/24', STRICT_MARK_BIT]]);
  assert.deepEqual(bs.filter((b) => b.dir === 'fwd').map((b) => [b.selector.src, b.selector.dst]), [['10.244.2.0/24', '10.244.1.0/24'], ['10.244.2.0/24', '10.244.1.0/24']]);
});

test('strict mode: transport-mode overlay children block exactly the overlay port, no fwd (OVN-Kubernetes style selectors)', () => {
  const ovl = (name: string, l: string, r: string) => ({ ...pods, name, mode: 'transport' as const, localTs: [l], remoteTs: [r] });
  const bs = blockPolicies(config('mesh/b', [ovl('overlay-out', '192.0.2.11/32[udp]', '192.0.2.12/32[udp/4789]'), ovl('overlay-in', '192.0.2.11/32[udp/4789]', '192.0.2.12/32[udp]')]));
  assert.ok(bs.every((b) => b.dir !== 'fwd'));
  const sels = bs.filter((b) => b.mark?.value === 0).map((b) => `${b.dir} ${b.selector.src}:${b.selector.sport ?? '*'} > ${b.selector.dst}:${b.selector.dport ?? '*'} proto ${b.selector.proto}`);
  assert.deepEqual(sels.sort(), [
    'in 192.0.2.12/32:* > 192.0.2.11/32:4789 proto 17', 'in 192.0.2.12/32:4789 > 192.0.2.11/32:* proto 17',
    'out 192.0.2.11/32:* > 192.0.2.12/32:4789 proto 17', 'out 192.0.2.11/32:4789 > 192.0.2.12/32:* proto 17',
  ].sort());
});

test('strict policies: set() adds before it removes, a selector two peers share stays until both are gone, reconcile() adopts what a previous run left and removes strays', async () => {
  const x = new FakeXfrm();
  // The fake identifies policies by direction and selector only; give it mark awareness like the kernel.
  const key = (p: { dir: string; selector: { src: string; dst: string }; mark?: { value: number; mask?: number } }) => `${p.dir}|${p.selector.src}|${p.selector.dst}|${p.mark?.value ?? 0}/${p.mark?.mask ?? 0}`;
  x.updatePolicy = async (p) => { x.calls.push(`upd ${key(p)}`); x.policies = x.policies.filter((q) => key(q) !== key(p)); x.policies.push({ ...p, index: 0, current: { bytes: 0n, packets: 0n, add_time: 0n, use_time: 0n } } as PolicyState); };
  x.deletePolicy = async (p) => { x.calls.push(`del ${key(p)}`); x.policies = x.policies.filter((q) => key(q) !== key(p)); };
  const s = new StrictPolicies(x);
  const bPods = blockPolicies(config('mesh/b', [pods]));
  const cPods = blockPolicies(config('mesh/c', [pods])); // same selectors (an overlapping CIDR)
  await s.set('mesh/b', bPods);
  await s.set('mesh/c', cPods);
  assert.equal(x.policies.length, 6);
  await s.remove('mesh/b');
  assert.equal(x.policies.length, 6, 'still wanted by mesh/c');
  await s.remove('mesh/c');
  assert.equal(x.policies.length, 0);

  // A previous run left b's blocks and a stray one; the new run wants b only.
  await s.set('mesh/b', bPods);
  const stray = blockPolicies(config('mesh/old', [{ ...pods, remoteTs: ['10.244.9.0/24'] }]));
  for (const p of stray) await x.updatePolicy(p);
  x.calls = [];
  const fresh = new StrictPolicies(x);
  const r = await fresh.reconcile(new Map([['mesh/b', bPods]]));
  assert.equal(r.removed, stray.length);
  assert.equal(r.added, 0, 'b\'s blocks were already in: adopted, not re-added (no gap)');
  assert.ok(!x.calls.some((c) => c.startsWith('upd')));
  assert.ok(x.policies.every((p) => isStrictBlock(p)));
  assert.deepEqual(new Set(x.policies.map(blockKey)), new Set(bPods.map(blockKey)));
});

test('a removed peer whose Delete goes unanswered: its kernel state is removed after the grace period, and only then are its reqids free; a peer back within the grace keeps them', async () => {
  const { PeerApplier } = await import('../../../src/agent/applier.js');
  const { logSink } = await import('./fakes.js');
  const removedReqids: number[][] = [];
  const bound: string[][] = [];
  const x = new FakeXfrm();
  const reqids = new ReqidTable();
  const a = new PeerApplier({ log: logSink().log, reqids, strict: new StrictPolicies(x), bind: async (ad) => { bound.push([...ad]); }, removeKernelState: async (r) => { removedReqids.push([...r]); return r.size; }, removalGraceMs: 50 });
  const calls: string[] = [];
  const engine = { addPeer: (p: PeerConfig) => calls.push(`add ${p.name}`), removePeer: async (n: string) => { calls.push(`remove ${n}`); }, initiate: () => undefined } as never;
  await a.prepare({ synced: true, peers: [peer('mesh/b', 'd1'), peer('mesh/c', 'd1')] });
  a.attach(engine);
  const rb = reqids.get('mesh/b/pods')!;
  await a.apply({ synced: true, peers: [peer('mesh/c', 'd1')] });
  assert.deepEqual(calls, ['remove mesh/b']);
  assert.equal(reqids.get('mesh/b/pods'), rb, 'still reserved while its SAs may linger');
  await new Promise((r) => setTimeout(r, 200));
  assert.deepEqual(removedReqids, [[rb]]);
  assert.equal(reqids.get('mesh/b/pods'), undefined, 'free after the sweep');
  // c leaves and comes back before the sweep: its new SAs must not be swept away.
  const rc = reqids.get('mesh/c/pods')!;
  await a.apply({ synced: true, peers: [] });
  await a.apply({ synced: true, peers: [peer('mesh/c', 'd1')] });
  await new Promise((r) => setTimeout(r, 200));
  assert.deepEqual(removedReqids, [[rb]]);
  assert.equal(reqids.get('mesh/c/pods'), rc);
  assert.deepEqual(bound, [['192.0.2.11']], 'the socket stays bound: no rebinding, no closing while Deletes are in flight');
  a.close();
});
