// Cluster mode (DESIGN.md §3 mesh): every node keeps one IKE SA per peer node, authenticated with
// ECDSA P-256 certificates from one cluster CA (SAN = the node's DNS name, RFC 7427 signatures),
// and protects the overlay's UDP port with two transport-mode Child SAs per pair, the way
// OVN-Kubernetes configures libreswan for Geneve/VXLAN between nodes:
//   to-port:   local X/32[udp]       remote Y/32[udp/4789]   (our packets to the peer's port)
//   from-port: local X/32[udp/4789]  remote Y/32[udp]        (the peer's packets to our port)
// The peer's config is the mirror image, so each side's to-port pairs with the other's from-port
// and the responder must pick the child whose selectors match exactly (RFC 7296 §2.9).
// Every node starts its links, so both ends of a pair initiate at once: lifecycle.ts
// resolveDuplicates keeps the SA initiated by the lower address.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { ExchangeType } from '../../../../src/ike/constants.js';
import type { ChildConfig, PeerConfig } from '../../../../src/ike/engine.js';
import type { IkeEvent, KernelChildSa } from '../../../../src/ike/ports.js';
import { buildCert, dn } from '../crypto/cert-builder.js';
import { ALICE, BOB, HOUR, mirrored, Pair, type FakeKernel, type Side } from './harness.js';

const VXLAN = 4789;
const NODE = { alice: 'node-a.cluster.local', bob: 'node-b.cluster.local' } as const;
const ADDR = { alice: ALICE, bob: BOB } as const;
type Who = keyof typeof NODE;
const other = (w: Who): Who => (w === 'alice' ? 'bob' : 'alice');

interface MeshPki { readonly ca: Uint8Array; readonly nodes: Record<Who, { readonly cert: Uint8Array; readonly key: KeyObject }> }
let meshPkiCache: MeshPki | undefined;
/** One cluster CA and an ECDSA P-256 certificate per node, SAN = its DNS name. */
function meshPki(nowMs: number): MeshPki {
  if (meshPkiCache) return meshPkiCache;
  const ec = () => generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const ca = ec();
  const base = { notBeforeMs: nowMs - 86_400_000, notAfterMs: nowMs + 365 * 86_400_000 };
  const CA = dn('kipsec cluster CA');
  const caDer = buildCert({ ...base, subject: CA, issuer: CA, publicKey: ca.publicKey, signingKey: ca.privateKey, ca: true, keyUsage: [5, 6] });
  const node = (name: string, serial: number) => {
    const k = ec();
    return { cert: buildCert({ ...base, serial, subject: dn(name), issuer: CA, publicKey: k.publicKey, signingKey: ca.privateKey, keyUsage: [0], dns: [name] }), key: k.privateKey };
  };
  meshPkiCache = { ca: caDer, nodes: { alice: node(NODE.alice, 10), bob: node(NODE.bob, 11) } };
  return meshPkiCache;
}

function overlayChildren(me: Who): ChildConfig[] {
  const x = ADDR[me]; const y = ADDR[other(me)];
  const c = { espProposals: ['aes256gcm16'], mode: 'transport' as const, rekeyTimeMs: HOUR, lifeTimeMs: 1.1 * HOUR };
  return [
    { name: 'to-port', localTs: [`${x}/32[udp]`], remoteTs: [`${y}/32[udp/${VXLAN}]`], ...c },
    { name: 'from-port', localTs: [`${x}/32[udp/${VXLAN}]`], remoteTs: [`${y}/32[udp]`], ...c },
  ];
}

/** The peer config a node's agent builds for the other node (PeerConfig name "mesh/<node>"). */
function meshPeer(me: Who, nowMs: number, over: Partial<PeerConfig> = {}): Partial<PeerConfig> {
  const pki = meshPki(nowMs);
  return {
    name: `mesh/${NODE[other(me)]}`,
    local: { address: ADDR[me], id: { type: 'fqdn', value: NODE[me] } },
    remote: { address: ADDR[other(me)], id: { type: 'fqdn', value: NODE[other(me)] } },
    auth: { method: 'certificate', certificate: pki.nodes[me].cert, privateKey: pki.nodes[me].key, cas: [pki.ca] },
    children: overlayChildren(me),
    startAction: 'initiate',
    dpd: { intervalMs: 30_000, action: 'restart' },
    ...over,
  };
}

function meshPair(o: { alice?: Partial<PeerConfig>; bob?: Partial<PeerConfig>; seeds?: readonly [number, number] } = {}): Pair {
  const now = Date.UTC(2026, 10, 27, 12); // the Pair clock's start
  return new Pair({ alice: meshPeer('alice', now, o.alice), bob: meshPeer('bob', now, o.bob), ...(o.seeds ? { seeds: o.seeds } : {}) });
}

/** IKE SAs this side holds for the peer: every ike-up not yet followed by its ike-down. */
function liveIkeSas(s: Side): string[] {
  const live = new Set<string>();
  for (const e of s.events) {
    if (e.type === 'ike-up') live.add(e.ikeSpis);
    else if (e.type === 'ike-down') live.delete(e.ikeSpis);
    else if (e.type === 'ike-rekeyed') { live.delete(e.oldIkeSpis); live.add(e.ikeSpis); }
  }
  return [...live];
}

/** The policies both overlay children need on `me`'s side: out + in each (transport mode: no fwd). */
function expectedPolicies(me: Who): string[] {
  const x = `${ADDR[me]}/32`; const y = `${ADDR[other(me)]}/32`;
  return [
    `out ${x}[17] > ${y}[17/${VXLAN}]`, `in ${y}[17/${VXLAN}] > ${x}[17]`,
    `out ${x}[17/${VXLAN}] > ${y}[17]`, `in ${y}[17] > ${x}[17/${VXLAN}]`,
  ].sort();
}

function installedByChild(k: FakeKernel): Map<string, KernelChildSa[]> {
  const m = new Map<string, KernelChildSa[]>();
  for (const sa of k.installed.values()) m.set(sa.child, [...(m.get(sa.child) ?? []), sa]);
  return m;
}

/** Past the duplicate's Child SAs' linger (rekeyDeleteDelayMs, lifecycle.ts teardown). */
const LINGERED = 10_000;

/** One IKE SA with the same SPIs on both sides, one Child SA pair per child config, every selector in the kernel. */
function assertOneMeshSa(p: Pair): void {
  const a = liveIkeSas(p.alice); const b = liveIkeSas(p.bob);
  assert.equal(a.length, 1, `alice holds one IKE SA (${a.join(', ')})`);
  assert.deepEqual(b, a, 'bob holds the same IKE SA');
  const sa = p.alice.engine.status().peers[0]!.ike!;
  assert.equal(sa.state, 'established');
  assert.equal(sa.ikeSpis, a[0]);
  assert.equal(p.bob.engine.status().peers[0]!.ike!.ikeSpis, a[0]);
  for (const [who, s] of [['alice', p.alice], ['bob', p.bob]] as const) {
    const byChild = installedByChild(s.kernel);
    assert.deepEqual([...byChild.keys()].sort(), ['from-port', 'to-port'], `${who}: both children installed`);
    for (const [name, list] of byChild) assert.equal(list.length, 1, `${who}: one Child SA for ${name}`);
    assert.deepEqual([...s.kernel.policies.keys()].sort(), expectedPolicies(who), `${who}: no traffic selector left uninstalled`);
    for (const [key, owner] of s.kernel.policies) assert.equal(owner.reqid, byChild.get(owner.child)![0]!.reqid, `${who}: ${key} points at its child's reqid`);
  }
  assert.ok(mirrored(p.alice.kernel, p.bob.kernel), 'each inbound SPI and key is the other side\'s outbound');
  for (const s of [p.alice, p.bob]) assert.deepEqual(s.engine.status().peers[0]!.adoptedChildren, [], `${s.name}: nothing left over from a duplicate`);
}

function childUps(events: readonly IkeEvent[]): Array<Extract<IkeEvent, { type: 'child-up' }>> {
  return events.flatMap((e) => (e.type === 'child-up' ? [e] : []));
}

test('overlay Child SA pair: the first child in IKE_AUTH, the second by CREATE_CHILD_SA, the responder picks the mirrored config for each (RFC 7296 §2.9, §1.3.1)', async () => {
  const p = meshPair({ bob: { startAction: 'respond' } });
  p.alice.engine.initiate(`mesh/${NODE.bob}`);
  await p.net.pump();
  assert.deepEqual(p.net.log.map((x) => [x.exchange, x.response]), [[34, false], [34, true], [35, false], [35, true], [36, false], [36, true]],
    'IKE_SA_INIT, IKE_AUTH with to-port, CREATE_CHILD_SA with from-port');
  const a = childUps(p.alice.events); const b = childUps(p.bob.events);
  assert.deepEqual(a.map((e) => [e.child, e.localTs, e.remoteTs]), [
    ['to-port', [`${ALICE}/32[17]`], [`${BOB}/32[17/${VXLAN}]`]],
    ['from-port', [`${ALICE}/32[17/${VXLAN}]`], [`${BOB}/32[17]`]],
  ]);
  assert.deepEqual(b.map((e) => [e.child, e.localTs, e.remoteTs]), [
    ['from-port', [`${BOB}/32[17/${VXLAN}]`], [`${ALICE}/32[17]`]],
    ['to-port', [`${BOB}/32[17]`], [`${ALICE}/32[17/${VXLAN}]`]],
  ], 'bob answered alice\'s to-port with his from-port and her from-port with his to-port, unnarrowed');
  assertOneMeshSa(p);
});

test('overlay Child SA pair: the kernel gets transport-mode policies with protocol 17 and the single VXLAN port on the right side (RFC 7296 §3.13.1)', async () => {
  const p = meshPair({ bob: { startAction: 'respond' } });
  p.alice.engine.initiate(`mesh/${NODE.bob}`);
  await p.net.pump();
  const sa = installedByChild(p.alice.kernel);
  const to = sa.get('to-port')![0]!; const from = sa.get('from-port')![0]!;
  for (const c of [to, from]) {
    assert.equal(c.mode, 'transport');
    assert.deepEqual(c.policies.map((x) => x.direction), ['out', 'in']);
    for (const pol of c.policies) {
      assert.equal(pol.source.protocol, 17); assert.equal(pol.destination.protocol, 17);
      assert.equal(pol.source.prefixLength, 32); assert.equal(pol.destination.prefixLength, 32);
      assert.equal(pol.tunnelSource, pol.direction === 'out' ? ALICE : BOB);
    }
  }
  const ports = (c: KernelChildSa) => c.policies.map((x) => [x.direction, x.source.startAddress, x.source.startPort, x.source.endPort, x.destination.startAddress, x.destination.startPort, x.destination.endPort]);
  assert.deepEqual(ports(to), [['out', ALICE, 0, 0xffff, BOB, VXLAN, VXLAN], ['in', BOB, VXLAN, VXLAN, ALICE, 0, 0xffff]]);
  assert.deepEqual(ports(from), [['out', ALICE, VXLAN, VXLAN, BOB, 0, 0xffff], ['in', BOB, 0, 0xffff, ALICE, VXLAN, VXLAN]]);
  assert.notEqual(to.reqid, from.reqid, 'each child has its own reqid, so the two policy sets do not replace each other');
});

test('overlay Child SA pair from the other role: bob initiates, alice picks the mirrored configs (RFC 7296 §2.9, both roles)', async () => {
  const p = meshPair({ alice: { startAction: 'respond' } });
  p.bob.engine.initiate(`mesh/${NODE.alice}`);
  await p.net.pump();
  assert.deepEqual(childUps(p.alice.events).map((e) => e.child), ['from-port', 'to-port']);
  assertOneMeshSa(p);
});

test('mesh simultaneous start: both nodes initiate at the same moment, one IKE SA and one Child SA per child config remain, same SPIs, every selector installed', async () => {
  for (const seeds of [[11, 22], [22, 11], [5, 6], [1001, 7]] as const) {
    const p = meshPair({ seeds });
    p.alice.engine.start();
    p.bob.engine.start();
    await p.net.pump();
    await p.advance(15_000); // REKEY_RETRY_MS and Delete round trips, well before DPD
    assertOneMeshSa(p);
    assert.equal(p.alice.engine.status().peers[0]!.ike!.role, 'initiator', 'the SA initiated by the lower address (alice) stays');
    for (const s of [p.alice, p.bob]) {
      assert.deepEqual(s.events.filter((e) => e.type === 'ike-down').map((e) => e.type === 'ike-down' && e.reason), ['replaced'], `${s.name}: the duplicate went as replaced`);
      // The duplicate's Child SAs went only once the survivor had their successors: never a
      // moment without the policies, so no overlay packet left in clear.
      assert.deepEqual(s.kernel.removedPolicies, [], `${s.name}: no policy was ever removed`);
    }
    // ...and it stays that way through DPD, child rekeys and an IKE rekey.
    await p.advance(4 * HOUR + 60_000);
    assertOneMeshSa(p);
  }
});

// The moment the simultaneous-start test only sees the end of: the duplicate is deleted while the
// survivor's CREATE_CHILD_SA for the second child is still on its way. Its Child SA stays in the
// kernel (reported as adopted) so its policies never leave, and lingers once the successor is in
// (the peer may send on its side of it until it has the successor too), then goes.
test('mesh simultaneous start: a duplicate\'s Child SA the survivor has not negotiated yet stays (adopted) until its successor is installed, then lingers and goes keeping the policies', async () => {
  const p = meshPair();
  p.net.fate = (x) => (x.exchange === ExchangeType.CREATE_CHILD_SA ? 'hold' : 'deliver');
  p.alice.engine.start();
  p.bob.engine.start();
  await p.net.pump();
  assert.equal(liveIkeSas(p.alice).length, 1, 'the duplicate is gone');
  const held = (s: Side) => s.engine.status().peers[0]!.adoptedChildren.map((c) => [c.name, c.adopted]);
  assert.deepEqual(held(p.alice), [['from-port', true]], 'alice keeps the duplicate\'s from-port');
  assert.deepEqual(held(p.bob), [['to-port', true]], 'bob keeps the duplicate\'s to-port');
  for (const [who, s] of [['alice', p.alice], ['bob', p.bob]] as const) {
    assert.deepEqual([...s.kernel.policies.keys()].sort(), expectedPolicies(who), `${who}: every selector still has its policy`);
    assert.deepEqual(s.kernel.removedPolicies, []);
  }
  p.net.fate = () => 'deliver';
  p.net.releaseHeld();
  await p.net.pump();
  await p.advance(LINGERED);
  assertOneMeshSa(p);
  for (const s of [p.alice, p.bob]) {
    assert.deepEqual(s.kernel.removedPolicies, []);
    assert.ok(s.events.some((e) => e.type === 'child-down' && e.reason === 'replaced'), `${s.name}: the kept Child SA went as replaced`);
  }
  // terminate() takes everything out, policies included.
  await p.alice.engine.terminate(`mesh/${NODE.bob}`);
  await p.net.pump();
  for (const s of [p.alice, p.bob]) {
    assert.equal(s.kernel.installed.size, 0);
    assert.deepEqual([...s.kernel.policies.keys()], [], `${s.name}: no policy left behind`);
  }
});

test('mesh start where only the lower address initiates (the other responds): one SA comes up at once', async () => {
  const p = meshPair({ bob: { startAction: 'respond' } });
  p.alice.engine.start();
  p.bob.engine.start();
  await p.net.pump();
  assertOneMeshSa(p);
  assert.equal(p.net.log.filter((x) => x.exchange === ExchangeType.IKE_SA_INIT).length, 2, 'one IKE_SA_INIT exchange');
  assert.ok(!p.alice.events.concat(p.bob.events).some((e) => e.type === 'ike-down' || e.type === 'error'), 'nothing failed or was replaced');
});

// Both ends of a dead link notice it: the responder's DPD restarts the link (dpd.action restart)
// while the initiator's does too, so new IKE SAs cross much as at a simultaneous start, each
// possibly with INITIAL_CONTACT (RFC 7296 §2.4). Whatever the timing, one SA must remain.
const DPD_TIMINGS = [
  // Same schedule on both sides: both give up at the same instant and their IKE_SA_INITs cross.
  { name: 'both restart at once', bob: { intervalMs: 30_000, action: 'restart' as const }, crossed: true },
  // Bob gives up 5 s earlier: his restart is still retransmitting IKE_SA_INIT when alice restarts.
  { name: 'the responder restarts first, still retransmitting', bob: { intervalMs: 30_000, action: 'restart' as const, timeoutMs: 160_000 }, crossed: true },
  // Bob gives up long before: his attempt has exhausted its retransmissions when the link heals.
  { name: 'the responder restarts long before', bob: { intervalMs: 20_000, action: 'restart' as const, timeoutMs: 25_000 }, crossed: false },
];

for (const t of DPD_TIMINGS) {
  test(`DPD restart on both sides after a partition (${t.name}): the pair ends with one SA (RFC 7296 §2.4)`, async () => {
    const p = meshPair({ bob: { dpd: t.bob } }); // startAction initiate on both, as in the mesh
    p.alice.engine.start();
    p.bob.engine.start();
    await p.net.pump();
    await p.advance(LINGERED);
    assertOneMeshSa(p);
    const first = liveIkeSas(p.alice)[0];
    assert.equal(p.bob.engine.status().peers[0]!.ike!.role, 'responder');
    // The link is dead until both sides have declared the other dead.
    let partitioned = true;
    let healedAt = 0;
    const dead = (s: Side): boolean => s.events.some((e) => e.type === 'ike-down' && e.reason === 'dpd-timeout');
    p.net.fate = () => {
      if (partitioned && dead(p.alice) && dead(p.bob)) { partitioned = false; healedAt = p.clock.now(); }
      return partitioned ? 'drop' : 'deliver';
    };
    await p.advance(10 * 60_000);
    assert.ok(dead(p.bob) && dead(p.alice), 'both declared the other dead');
    const inits = (from: string) => p.net.log.filter((x) => x.exchange === ExchangeType.IKE_SA_INIT && !x.response && x.from.address === from && x.atMs >= healedAt);
    assert.ok(inits(ALICE).length > 0, 'alice restarted the link');
    assert.equal(inits(BOB).length > 0, t.crossed, t.crossed ? 'bob\'s restart reached alice too' : 'bob\'s restart had given up');
    assertOneMeshSa(p);
    assert.notEqual(liveIkeSas(p.alice)[0], first, 'a new IKE SA');
    await p.advance(HOUR);
    assertOneMeshSa(p);
  });
}

test('mesh peers identify each other by the DNS SAN of their node certificates (RFC 7296 §3.5, RFC 4945 §3.1)', async () => {
  const p = meshPair({ bob: { startAction: 'respond' } });
  p.alice.engine.start();
  await p.net.pump();
  assert.equal(p.alice.engine.status().peers[0]!.ike!.remoteId, NODE.bob);
  assert.equal(p.bob.engine.status().peers[0]!.ike!.remoteId, NODE.alice);
  assert.deepEqual(p.alice.engine.status().peers.map((x) => x.name), [`mesh/${NODE.bob}`]);
});

