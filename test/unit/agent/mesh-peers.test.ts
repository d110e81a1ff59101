// The mesh as peers (src/agent/mesh/peers.ts): which Child SAs a node pair gets, who initiates,
// what the peer must prove, what is skipped and why; and the mesh settings and traffic detection.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import type { IPsecMesh, IPsecNode } from '../../../src/api/types.js';
import { meshPeers, pairChildren, type MeshIdentity, type MeshSelf } from '../../../src/agent/mesh/peers.js';
import { activeMeshOf, resolveMesh, selects, type MeshSettings } from '../../../src/agent/mesh/settings.js';
import { espCost, maxInnerPacket, resolveTraffic } from '../../../src/agent/mesh/traffic.js';
import { IkeEngine } from '../../../src/ike/engine.js';
import { cryptoRandom } from '../../../src/common/time.js';

const FP_A = 'a'.repeat(64); const FP_B = 'b'.repeat(64);

function mesh(spec: IPsecMesh['spec'] = {}, name = 'default', created = '2026-01-01T00:00:00Z'): IPsecMesh {
  return { apiVersion: 'kipsec.io/v1alpha1', kind: 'IPsecMesh', metadata: { name, creationTimestamp: created }, spec };
}
const settings = (spec: IPsecMesh['spec'] = {}): MeshSettings => resolveMesh(mesh(spec)).settings;

function ipsecNode(name: string, address: string, o: { podCIDRs?: string[]; pins?: boolean; traffic?: IPsecNode['spec']['traffic']; ikePort?: number } = {}): IPsecNode {
  return {
    apiVersion: 'kipsec.io/v1alpha1', kind: 'IPsecNode', metadata: { name },
    spec: {
      endpoint: { address, ...(o.ikePort ? { ikePort: o.ikePort } : {}) }, podCIDRs: o.podCIDRs ?? [],
      ...(o.pins === false ? {} : { identity: { publicKeyFingerprint: FP_A, certFingerprint: FP_B, san: name } }),
      ...(o.traffic ? { traffic: o.traffic } : {}),
    },
  };
}

const id: MeshIdentity = {
  certificate: new Uint8Array([0x30, 0x00]), chain: [], privateKey: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey,
  cas: [new Uint8Array([0x30, 0x00])], certFingerprint: 'c'.repeat(64), bundleDigest: 'd'.repeat(16),
};
const selfA: MeshSelf = { name: 'node-a', address: '192.0.2.11', podCIDRs: ['10.244.1.0/24', 'fd00:1::/64'], traffic: { mode: 'routed' } };

test('routed pair: one tunnel-mode Child SA, all our pod CIDRs to all the peer\'s of the same family, certificate identities are the node names', () => {
  const r = meshPeers(selfA, [ipsecNode('node-b', '192.0.2.12', { podCIDRs: ['10.244.2.0/24', 'fd00:2::/64'] })], settings(), id);
  assert.equal(r.peers.length, 1);
  const p = r.peers[0]!;
  assert.equal(p.name, 'mesh/node-b');
  assert.deepEqual(p.kind, { type: 'mesh', node: 'node-b' });
  assert.deepEqual(p.config.children.map((c) => [c.name, c.mode, c.localTs, c.remoteTs]), [['pods', 'tunnel', ['10.244.1.0/24', 'fd00:1::/64'], ['10.244.2.0/24', 'fd00:2::/64']]]);
  assert.deepEqual(p.config.local.id, { type: 'fqdn', value: 'node-a' });
  assert.deepEqual(p.config.remote.id, { type: 'fqdn', value: 'node-b' });
  assert.equal(p.config.auth.method, 'certificate');
  assert.deepEqual(p.config.auth.method === 'certificate' && p.config.auth.peerPins, { spkiSha256: [FP_A], certSha256: [FP_B] }, 'the peer must present the key its IPsecNode publishes');
  assert.deepEqual(p.config.ike.proposals, ['aes256gcm16-prfsha384-x25519', 'aes256gcm16-prfsha256-ecp256'], 'RFC 8247 defaults');
  assert.equal(p.blocks.length, 2 * 3 * 2, 'strict by default: out/in/fwd per family, each a mark pair');
});

test('the side with the lower address initiates, the other responds (the engine resolves a simultaneous start the same way)', () => {
  const b = meshPeers(selfA, [ipsecNode('node-b', '192.0.2.12', { podCIDRs: ['10.244.2.0/24'] })], settings(), id).peers[0]!;
  assert.equal(b.config.startAction, 'initiate');
  const selfB: MeshSelf = { ...selfA, name: 'node-b', address: '192.0.2.12', podCIDRs: ['10.244.2.0/24'] };
  const a = meshPeers(selfB, [ipsecNode('node-a', '192.0.2.11', { podCIDRs: ['10.244.1.0/24'] })], settings(), id).peers[0]!;
  assert.equal(a.config.startAction, 'respond');
  // 192.0.2.9 < 192.0.2.11 as addresses, not as strings.
  const c = meshPeers(selfA, [ipsecNode('node-c', '192.0.2.9', { podCIDRs: ['10.244.3.0/24'] })], settings(), id).peers[0]!;
  assert.equal(c.config.startAction, 'respond');
});

test('overlay pair (both nodes on the same VXLAN port): two transport-mode Child SAs for the overlay port only, as OVN-Kubernetes protects Geneve', () => {
  const ov = { mode: 'overlay' as const, overlay: { protocol: 'vxlan' as const, port: 8472 } };
  const { children } = pairChildren({ ...selfA, traffic: ov }, { address: '192.0.2.12', podCIDRs: ['10.244.2.0/24'], traffic: ov }, settings());
  assert.deepEqual(children.map((c) => [c.name, c.mode, c.localTs, c.remoteTs]), [
    ['overlay-out', 'transport', ['192.0.2.11/32[udp]'], ['192.0.2.12/32[udp/8472]']],
    ['overlay-in', 'transport', ['192.0.2.11/32[udp/8472]'], ['192.0.2.12/32[udp]']],
  ]);
});

test('nodes that disagree on the overlay fall back to pod CIDRs in tunnel mode and say why', () => {
  const r = pairChildren({ ...selfA, traffic: { mode: 'overlay', overlay: { protocol: 'vxlan', port: 4789 } } }, { address: '192.0.2.12', podCIDRs: ['10.244.2.0/24'], traffic: { mode: 'routed' } }, settings());
  assert.deepEqual(r.children.map((c) => c.name), ['pods']);
  assert.match(r.note ?? '', /traffic modes differ/);
});

test('hostToHost: one transport-mode Child SA for everything between the node addresses, plus the pod CIDRs when routed', () => {
  const m = settings({ traffic: { hostToHost: true } });
  const routed = pairChildren(selfA, { address: '192.0.2.12', podCIDRs: ['10.244.2.0/24'], traffic: { mode: 'routed' } }, m);
  assert.deepEqual(routed.children.map((c) => [c.name, c.mode, c.localTs, c.remoteTs]), [['host', 'transport', ['192.0.2.11/32'], ['192.0.2.12/32']], ['pods', 'tunnel', ['10.244.1.0/24', 'fd00:1::/64'], ['10.244.2.0/24']]]);
  const ov = { mode: 'overlay' as const, overlay: { protocol: 'vxlan' as const, port: 4789 } };
  assert.deepEqual(pairChildren({ ...selfA, traffic: ov }, { address: '192.0.2.12', podCIDRs: [], traffic: ov }, m).children.map((c) => c.name), ['host'], 'host covers the overlay port');
});

test('peers that cannot be set up are skipped with a reason in the product\'s words', () => {
  const r = meshPeers(selfA, [
    ipsecNode('no-id', '192.0.2.20', { podCIDRs: ['10.244.9.0/24'], pins: false }),
    ipsecNode('v6', '2001:db8::1', { podCIDRs: ['fd00:9::/64'] }),
    ipsecNode('inside', '10.244.7.5', { podCIDRs: ['10.244.7.0/24'] }),
    ipsecNode('no-pods', '192.0.2.21'),
    ipsecNode('twin', '192.0.2.11', { podCIDRs: ['10.244.8.0/24'] }),
    ipsecNode('node-a', '192.0.2.11', { podCIDRs: ['10.244.1.0/24'] }),
  ], settings(), id);
  assert.deepEqual(r.peers, []);
  const why = Object.fromEntries(r.skipped.map((s) => [s.node, s.reason]));
  assert.match(why['no-id']!, /has not published its identity/);
  assert.match(why['v6']!, /not of this node's family/);
  assert.match(why['inside']!, /contains a node address: IKE itself would be caught/);
  assert.match(why['no-pods']!, /publishes no pod CIDR/);
  assert.match(why['twin']!, /claims this node's address/);
  assert.equal(why['node-a'], undefined, 'itself is not a peer');
});

test('a renewed certificate or a new trust bundle updates the peer (same SAs); a new address or pod CIDR renegotiates', () => {
  const base = meshPeers(selfA, [ipsecNode('node-b', '192.0.2.12', { podCIDRs: ['10.244.2.0/24'] })], settings(), id).peers[0]!;
  const renewed = meshPeers(selfA, [ipsecNode('node-b', '192.0.2.12', { podCIDRs: ['10.244.2.0/24'] })], settings(), { ...id, certFingerprint: 'e'.repeat(64) }).peers[0]!;
  assert.notEqual(renewed.digest, base.digest); assert.equal(renewed.sessionDigest, base.sessionDigest);
  const moved = meshPeers(selfA, [ipsecNode('node-b', '192.0.2.13', { podCIDRs: ['10.244.2.0/24'] })], settings(), id).peers[0]!;
  assert.notEqual(moved.sessionDigest, base.sessionDigest);
  const grown = meshPeers(selfA, [ipsecNode('node-b', '192.0.2.12', { podCIDRs: ['10.244.2.0/23'] })], settings(), id).peers[0]!;
  assert.notEqual(grown.sessionDigest, base.sessionDigest);
});

test('strict: false installs no block policies (clear traffic allowed while no SA exists, for migration)', () => {
  const p = meshPeers(selfA, [ipsecNode('node-b', '192.0.2.12', { podCIDRs: ['10.244.2.0/24'] })], settings({ strict: false }), id).peers[0]!;
  assert.deepEqual(p.blocks, []);
});

test('every mesh peer config is one the IKE engine accepts (proposals, selectors with ports, pins)', () => {
  const ov = { mode: 'overlay' as const, overlay: { protocol: 'vxlan' as const, port: 4789 } };
  const r = meshPeers({ ...selfA, traffic: ov }, [ipsecNode('node-b', '192.0.2.12', { podCIDRs: ['10.244.2.0/24'], traffic: ov }), ipsecNode('node-c', '192.0.2.13', { podCIDRs: ['10.244.3.0/24'] })], settings({ traffic: { mode: 'auto' } }), id);
  const engine = new IkeEngine({ transport: { send: () => undefined }, kernel: {} as never, clock: { now: () => 0, setTimer: () => ({ cancel: () => undefined }) }, random: cryptoRandom, events: { emit: () => undefined } }, []);
  for (const p of r.peers) engine.addPeer(p.config);
  assert.equal(r.peers.length, 2);
});

test('mesh settings: defaults filled in, durations in ms; the active mesh is the named one, else "default", else the oldest', () => {
  const s = settings({ esp: { rekeyTime: '20m', lifeTime: '30m' }, dpd: { interval: '5s', timeout: '20s' }, nodeSelector: { pool: 'a' } });
  assert.equal(s.espRekeyMs, 1_200_000); assert.equal(s.espLifeMs, 1_800_000); assert.equal(s.dpdIntervalMs, 5_000); assert.equal(s.ikeRekeyMs, 4 * 3_600_000);
  assert.equal(s.strict, true); assert.equal(s.trafficMode, 'auto');
  assert.ok(selects(s, { pool: 'a', other: 'x' })); assert.ok(!selects(s, { pool: 'b' })); assert.ok(!selects(s, undefined));
  assert.ok(selects(settings(), undefined), 'an empty selector selects every node');
  const ms = [mesh({}, 'zeta', '2026-01-01T00:00:00Z'), mesh({}, 'alpha', '2026-02-01T00:00:00Z')];
  assert.equal(activeMeshOf(ms)?.metadata.name, 'zeta');
  assert.equal(activeMeshOf([...ms, mesh({}, 'default', '2026-03-01T00:00:00Z')])?.metadata.name, 'default');
  assert.equal(activeMeshOf(ms, 'alpha')?.metadata.name, 'alpha');
  assert.equal(activeMeshOf(ms, 'nope'), undefined);
});

test('traffic auto: a VXLAN or Geneve device means overlay on its port (flannel.1 on 8472); none means routed; the mesh can fix either', () => {
  const links = [{ index: 1, name: 'lo', mtu: 65536, up: true }, { index: 5, name: 'flannel.1', mtu: 1450, up: true, kind: 'vxlan', udpPort: 8472 }];
  const auto = resolveTraffic({ trafficMode: 'auto', overlay: undefined }, links);
  assert.deepEqual(auto.traffic, { mode: 'overlay', overlay: { protocol: 'vxlan', port: 8472 } });
  assert.equal(auto.source, 'detected');
  assert.match(auto.message, /flannel\.1 \(vxlan port 8472\)/);
  const none = resolveTraffic({ trafficMode: 'auto', overlay: undefined }, links.slice(0, 1));
  assert.deepEqual([none.traffic, none.source], [{ mode: 'routed' }, 'default']);
  assert.equal(resolveTraffic({ trafficMode: 'routed', overlay: undefined }, links).traffic.mode, 'routed');
  const fixed = resolveTraffic({ trafficMode: 'overlay', overlay: { protocol: 'geneve', port: 6081 } }, links);
  assert.deepEqual([fixed.traffic, fixed.source], [{ mode: 'overlay', overlay: { protocol: 'geneve', port: 6081 } }, 'mesh']);
  assert.match(fixed.message, /no geneve device with port 6081 on this node \(found flannel\.1/);
});

test('largest inner packet: AES-GCM-16 tunnel mode over a 1500-byte MTU leaves 1446 (RFC 4303 §2, RFC 4106 §3), NAT-T 8 less, AES-CBC-SHA256 pads to 16', () => {
  const gcm = espCost('aes256gcm16-x25519')!;
  assert.deepEqual(gcm, { iv: 8, icv: 16, block: 4 });
  assert.equal(maxInnerPacket(1500, gcm, { mode: 'tunnel', ipv6: false, encap: false }), 1446);
  assert.equal(maxInnerPacket(1500, gcm, { mode: 'tunnel', ipv6: false, encap: true }), 1438);
  assert.equal(maxInnerPacket(1500, gcm, { mode: 'tunnel', ipv6: true, encap: false }), 1426);
  const cbc = espCost('aes128-sha256')!;
  assert.deepEqual(cbc, { iv: 16, icv: 16, block: 16 });
  // 1500 - 20 - 8 - 16 - 16 = 1440 (a multiple of 16) - 2 = 1438
  assert.equal(maxInnerPacket(1500, cbc, { mode: 'tunnel', ipv6: false, encap: false }), 1438);
  // transport mode keeps the packet's own IP header in front: 1446 + 20
  assert.equal(maxInnerPacket(1500, gcm, { mode: 'transport', ipv6: false, encap: false }), 1466);
  assert.equal(espCost('chacha20poly1305')?.icv, 16);
  assert.equal(espCost('3des-md5'), undefined);
});

test('spec.esp.lifePackets and lifeBytes reach every mesh Child SA; unset, the engine applies its default (2^31 packets without ESN, RFC 4303 §3.3.3)', () => {
  const peer = [ipsecNode('node-b', '192.0.2.12', { podCIDRs: ['10.244.2.0/24'] })];
  const set = meshPeers(selfA, peer, settings({ esp: { lifePackets: 100_000, lifeBytes: 1_073_741_824 } }), id);
  const unset = meshPeers(selfA, peer, settings(), id);
  const children = set.peers.flatMap((p) => p.config.children);
  assert.ok(children.length >= 1);
  for (const c of children) assert.deepEqual([c.lifePackets, c.lifeBytes], [100_000n, 1_073_741_824n], c.name);
  for (const c of unset.peers.flatMap((p) => p.config.children)) assert.deepEqual([c.lifePackets, c.lifeBytes], [undefined, undefined], c.name);
  assert.notEqual(set.peers[0]!.digest, unset.peers[0]!.digest, 'a changed limit changes the peer digest, so it is applied');
});

// Each agent writes its own IPsecNode, so a compromised node could claim another node's pods; the
// policy for that CIDR would then point at it (docs/SECURITY.md, finding 1).
test('two nodes claiming overlapping pod CIDRs are both refused, naming each other; the others are untouched (docs/SECURITY.md: a node may not take another node\'s pods)', () => {
  const r = meshPeers(selfA, [
    ipsecNode('node-b', '192.0.2.12', { podCIDRs: ['10.244.2.0/24'] }),
    ipsecNode('node-c', '192.0.2.13', { podCIDRs: ['10.244.3.0/24'] }),
    ipsecNode('node-evil', '192.0.2.66', { podCIDRs: ['10.244.66.0/24', '10.244.2.128/25'] }),
  ], settings(), id);
  assert.deepEqual(r.peers.map((p) => p.name), ['mesh/node-c']);
  assert.deepEqual(r.skipped.map((s) => s.node).sort(), ['node-b', 'node-evil']);
  assert.match(r.skipped.find((s) => s.node === 'node-b')!.reason, /10\.244\.2\.0\/24.*overlapping node node-evil's 10\.244\.2\.128\/25/);
  assert.match(r.skipped.find((s) => s.node === 'node-evil')!.reason, /overlapping node node-b's 10\.244\.2\.0\/24/);
});

test('a node claiming a pod CIDR that holds this node\'s is refused; a node reusing another\'s endpoint address is refused with it', () => {
  const r = meshPeers(selfA, [
    ipsecNode('node-wide', '192.0.2.20', { podCIDRs: ['10.244.0.0/16'] }),
    ipsecNode('node-b', '192.0.2.12', { podCIDRs: ['fd00:b::/64'] }),
    ipsecNode('node-copy', '192.0.2.12', { podCIDRs: ['10.245.9.0/24'] }),
  ], settings(), id);
  assert.deepEqual(r.peers, []);
  assert.match(r.skipped.find((s) => s.node === 'node-wide')!.reason, /10\.244\.0\.0\/16\) overlapping this node's 10\.244\.1\.0\/24/);
  assert.match(r.skipped.find((s) => s.node === 'node-copy')!.reason, /endpoint address 192\.0\.2\.12 is also claimed by node node-b/);
  assert.match(r.skipped.find((s) => s.node === 'node-b')!.reason, /endpoint address 192\.0\.2\.12 is also claimed by node node-copy/);
});
