// Route mode end to end in one process: two route-mode tunnel configs (profile aws on our side,
// a cloud-like responder on the other) negotiate through two real IKE engines (the ike-pair
// harness), the Child SA the engine hands the kernel carries if_id 41 and 0.0.0.0/0 selectors
// (RFC 7296 §2.9: what both sides proposed), and the agent's kernel port turns that into XFRM
// states and policies that each carry XFRMA_IF_ID 41 — the if_id the interface was made with.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfigText, type ConfigFs } from '../../../src/agent/config.js';
import { XfrmKernel } from '../../../src/agent/kernel.js';
import { peerConfigOf } from '../../../src/agent/peers.js';
import type { KernelChildSa } from '../../../src/ike/ports.js';
import { ALICE, BOB, Pair } from '../ike/pair/harness.js';
import { FakeXfrm, logSink } from './fakes.js';

const PSK = 'correct horse battery staple';
const fs: ConfigFs = { readText: () => PSK, readBytes: () => new Uint8Array(Buffer.from(PSK)), mode: () => 0o600 };

function routeTunnel(local: string, remote: string, profile: string): ReturnType<typeof peerConfigOf> {
  const r = loadConfigText(`apiVersion: kipsec.io/v1alpha1
kind: IPsecTunnel
metadata: {name: t}
spec:
  profile: ${profile}
  local: {address: ${local}, subnets: [10.1.0.0/16]}
  remote: {address: ${remote}, subnets: [172.31.0.0/16]}
  auth: {psk: {file: psk}}
  xfrmInterface: {ifId: 41, insideAddress: 169.254.10.2/30}
`, '/etc/kipsec', fs);
  assert.ok(r.ok, JSON.stringify(!r.ok && r.problems));
  return peerConfigOf(r.tunnels[0]!);
}

test('route mode through two IKE engines: the negotiated Child SA has 0.0.0.0/0 selectors and if_id 41, and every XFRM state and policy the kernel port makes carries XFRMA_IF_ID 41', async () => {
  const ours = routeTunnel(ALICE, BOB, 'aws');
  const theirs = routeTunnel(BOB, ALICE, 'aws');
  const p = new Pair({
    ike: [...ours.ike.proposals], aliceChildren: [...ours.children], bobChildren: [...theirs.children],
  });
  await p.connect();
  const installed = p.alice.kernel.ops('install') as KernelChildSa[];
  assert.equal(installed.length, 1, 'one Child SA');
  const sa = installed[0]!;
  assert.equal(sa.ifId, 41);
  const cidr = (t: { startAddress: string; prefixLength: number | null }): string => `${t.startAddress}/${String(t.prefixLength)}`;
  assert.deepEqual(sa.policies.map((x) => `${x.direction} ${cidr(x.source)} > ${cidr(x.destination)}`), ['out 0.0.0.0/0 > 0.0.0.0/0', 'in 0.0.0.0/0 > 0.0.0.0/0', 'fwd 0.0.0.0/0 > 0.0.0.0/0']);

  const xfrm = new FakeXfrm();
  const k = new XfrmKernel({ xfrm, log: logSink().log, reqidOf: () => 0x4b000041, wantsRoutes: () => false });
  await k.installChildSa(sa);
  assert.deepEqual(xfrm.sas.map((s) => s.ifId), [41, 41]);
  assert.deepEqual(xfrm.policies.map((x) => [x.dir, x.selector.src, x.selector.dst, x.ifId]), [
    ['out', '0.0.0.0/0', '0.0.0.0/0', 41], ['in', '0.0.0.0/0', '0.0.0.0/0', 41], ['fwd', '0.0.0.0/0', '0.0.0.0/0', 41],
  ]);
});
