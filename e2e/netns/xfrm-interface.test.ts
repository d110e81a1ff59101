// Netns lane: route-based tunnels (mode: route) against the running kernel, each scenario in a
// fresh network namespace (the file re-runs itself there; netlink sockets belong to their namespace).
//  - interface: an aws-profile tunnel's XFRM interface as XfrmInterfaces makes it — kind xfrm with
//    the if_id, the alias that marks it as ours, the inside /30, the profile's MTU 1446, the
//    remote subnets routed over it — and the tunnel's 0.0.0.0/0 policies carry the same if_id;
//    removal leaves no interface, address, route or policy.
//  - agent: the standalone `kipsec agent` with that config creates the interface before any SA
//    and removes it on SIGTERM.
// The kernel decides which half runs. This host's kernel (6.18, no modules) has XFRM policies but
// neither esp4 nor XFRM interfaces (`ip link add x type xfrm` says "Unknown device type"): here
// the tests check that route mode is refused with a message naming the missing kernel feature and
// that nothing is left behind, and that policies still carry the if_id. On a kernel with
// CONFIG_XFRM_INTERFACE (the VM lane's Debian kernel) the same file checks the interface itself.
// Traffic through the interface needs ESP too: the VM lane will show that.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { loadConfigText } from '../../src/agent/config.js';
import { SecretBytes } from '../../src/common/secret.js';
import { createLogger } from '../../src/agent/log.js';
import { toPolicySpec, toSaSpec } from '../../src/agent/kernel.js';
import { peerConfigOf } from '../../src/agent/peers.js';
import type { TunnelConfig } from '../../src/agent/tunnel.js';
import { XfrmInterfaces } from '../../src/agent/xfrm-interfaces.js';
import type { KernelPolicy, KernelSa } from '../../src/ike/ports.js';
import { XfrmClient } from '../../src/xfrm/client.js';
import { XfrmUnsupportedError } from '../../src/xfrm/errors.js';
import { RtnlClient } from '../../src/xfrm/rtnl/client.js';
import { XfrmLinks } from '../../src/xfrm/rtnl/xfrm-links.js';
import { AgentProcess } from '../vm/agent-harness.js';
import { Netns } from '../lib/netns.js';
import { runScenario, scenarioChild } from '../lib/scenario.js';

const SELF = fileURLToPath(import.meta.url);
const PSK = 'correct horse battery staple, twenty+';
const NO_XFRMI = /route needs XFRM interfaces, which this kernel does not have \(CONFIG_XFRM_INTERFACE/;

const config = (startAction = 'initiate') => `apiVersion: kipsec.io/v1alpha1
kind: IPsecTunnel
metadata: {name: to-aws-1}
spec:
  local: {address: 192.0.2.1, subnets: [10.1.0.0/16]}
  remote: {address: 203.0.113.10, subnets: [172.31.0.0/16, 172.30.0.0/16]}
  auth: {psk: {file: psk}}
  profile: aws
  startAction: ${startAction}
  xfrmInterface: {ifId: 41, insideAddress: 169.254.10.2/30, remoteInsideAddress: 169.254.10.1}
`;

const UPLINK = [
  ['link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth1'], ['link', 'set', 'eth1', 'up'],
  ['addr', 'add', '192.0.2.1/24', 'dev', 'eth0'], ['addr', 'add', '10.1.0.1/16', 'dev', 'eth0'], ['link', 'set', 'eth0', 'up'],
  ['route', 'add', '203.0.113.0/24', 'via', '192.0.2.254'],
];

const ip = (...args: string[]): string => execFileSync('ip', args).toString();

/** Whether the kernel of this namespace can make an XFRM interface at all (asked the iproute2 way). */
function kernelHasXfrmi(): boolean {
  const r = spawnSync('ip', ['link', 'add', 'kprobe0', 'type', 'xfrm', 'if_id', '1']);
  if (r.status === 0) execFileSync('ip', ['link', 'del', 'kprobe0']);
  return r.status === 0;
}

/** Nothing of the tunnel in the kernel: no XFRM link, inside address, route to the remote subnets, policy, state. */
function leftovers(): Record<string, unknown> {
  return {
    links: ip('-d', 'link', 'show', 'type', 'xfrm').trim(), addrs: ip('addr', 'show').includes('169.254.10.2'),
    routes: ip('route', 'show').match(/172\.3[01]\./g) ?? [], policies: ip('xfrm', 'policy').trim(), states: ip('xfrm', 'state').trim(),
  };
}
const NOTHING = { links: '', addrs: false, routes: [], policies: '', states: '' };

/** What the engine hands the kernel for this tunnel's Child SA: 0.0.0.0/0 both ways (peers.ts → child-sa.ts). */
function policiesOf(t: TunnelConfig): KernelPolicy[] {
  const wildcard = { family: 'ipv4', prefixLength: 0, protocol: 0, startPort: 0, endPort: 65535, startAddress: '0.0.0.0', endAddress: '255.255.255.255' } as const;
  const mk = (direction: KernelPolicy['direction'], out: boolean): KernelPolicy => ({
    direction, source: wildcard, destination: wildcard, priority: 2000,
    tunnelSource: out ? t.localAddress : t.remoteAddress, tunnelDestination: out ? t.remoteAddress : t.localAddress,
  });
  return [mk('out', true), mk('in', false), mk('fwd', false)];
}

const scenarios: Record<string, () => Promise<unknown>> = {
  /** XfrmLinks' alias and address calls work on any link, so this kernel can show them on a veth. */
  async addresses() {
    for (const a of UPLINK) execFileSync('ip', a);
    const index = Number(execFileSync('cat', ['/sys/class/net/eth1/ifindex']).toString());
    const l = XfrmLinks.open();
    await l.setAlias(index, 'kipsec:probe');
    assert.match(ip('link', 'show', 'dev', 'eth1'), /alias kipsec:probe/);
    await l.addAddress(index, '169.254.10.2/30');
    await l.addAddress(index, '169.254.10.2/30'); // replace: idempotent
    await l.addAddress(index, '2001:db8:1::2/64');
    assert.match(ip('-4', 'addr', 'show', 'dev', 'eth1'), /inet 169\.254\.10\.2\/30 scope global eth1/);
    const listed = (await l.addresses(index)).map((a) => a.cidr).filter((c) => !c.startsWith('fe80:')).sort();
    assert.deepEqual(listed, ['169.254.10.2/30', '2001:db8:1::2/64']);
    await l.deleteAddress(index, '169.254.10.2/30');
    assert.doesNotMatch(ip('addr', 'show', 'dev', 'eth1'), /169\.254\.10\.2/);
    assert.deepEqual(await l.list(), [], 'no XFRM links here, and veths are not listed as such');
    l.close();
    return listed;
  },
  async interface() {
    for (const a of UPLINK) execFileSync('ip', a);
    const xfrmi = kernelHasXfrmi();
    const r = loadConfigText(config(), '/etc/kipsec', { readText: () => PSK, readBytes: () => new Uint8Array(Buffer.from(PSK)), mode: () => 0o600 });
    assert.ok(r.ok, JSON.stringify(!r.ok && r.problems));
    const t = r.tunnels[0]!;
    const child = peerConfigOf(t).children[0]!;
    assert.deepEqual([child.localTs, child.remoteTs, child.ifId], [['0.0.0.0/0'], ['0.0.0.0/0'], 41]);
    const rtnl = RtnlClient.open();
    const x = new XfrmInterfaces(rtnl, () => XfrmLinks.open(), createLogger({ level: 'silent' }));
    if (xfrmi) {
      await x.sync([t]);
      await x.sync([t]); // a second run (a restarted agent) adopts, changes nothing
      const link = ip('-d', 'link', 'show', 'dev', 'xfrm41');
      assert.match(link, /mtu 1446\b/);
      assert.match(link, /if_id 0x29/);
      assert.match(link, /alias kipsec:to-aws-1/);
      assert.match(ip('-4', 'addr', 'show', 'dev', 'xfrm41'), /inet 169\.254\.10\.2\/30 /);
      const routes = ip('route', 'show', 'dev', 'xfrm41');
      assert.match(routes, /^172\.31\.0\.0\/16 proto static scope link src 10\.1\.0\.1/m);
      assert.match(routes, /^172\.30\.0\.0\/16 proto static scope link src 10\.1\.0\.1/m);
      assert.match(ip('route', 'get', '172.31.5.5'), /dev xfrm41 /);
    } else {
      await assert.rejects(x.sync([t]), (e: Error) => /^XFRM interface set-up failed .*to-aws-1: spec\.mode: /.test(e.message) && NO_XFRMI.test(e.message));
      assert.deepEqual(leftovers(), NOTHING);
    }
    // No table-220 route (policy mode's) in route mode: the table is empty or was never made.
    const t220 = spawnSync('ip', ['route', 'show', 'table', '220'], { encoding: 'utf8' });
    assert.ok(t220.stdout.trim() === '' && (t220.status === 0 || /FIB table does not exist/.test(t220.stderr)), t220.stdout + t220.stderr);

    // The Child SA's policies and state as the kernel port makes them (kernel.ts): if_id on each.
    const xfrm = XfrmClient.open();
    const c = { mode: 'tunnel', ifId: child.ifId ?? null, mark: null } as const;
    for (const p of policiesOf(t)) await xfrm.addPolicy(toPolicySpec(p, c, 0x4b000041));
    const pol = ip('xfrm', 'policy');
    assert.equal(pol.match(/^src 0\.0\.0\.0\/0 dst 0\.0\.0\.0\/0 $/gm)?.length, 3, pol);
    assert.equal(pol.match(/if_id 0x29/g)?.length, 3, pol);
    const sa = {
      source: t.localAddress, destination: t.remoteAddress, spi: 0xc0ffee01, algorithms: { kind: 'aead', name: 'rfc4106(gcm(aes))', key: new SecretBytes(new Uint8Array(36)), icvBits: 128 },
      lifetimes: { softSec: 3000, hardSec: 3600, softBytes: 0n, hardBytes: 0n, softPackets: 0n, hardPackets: 0n }, replayWindow: 0, esn: false, encap: null,
    } as const satisfies Partial<KernelSa>;
    const spec = toSaSpec(sa as unknown as KernelSa, c, 0x4b000041);
    assert.equal(spec.ifId, 41);
    const state = await xfrm.addSa(spec).then(() => ip('xfrm', 'state'), (e: unknown) => e);
    // Without esp4 the kernel refuses the state; with it, the state carries the if_id.
    const stateResult = state instanceof XfrmUnsupportedError ? `refused by this kernel: ${state.message}`
      : typeof state === 'string' && /if_id 0x29/.test(state) ? 'installed with if_id 0x29' : `unexpected: ${String(state)}`;
    assert.doesNotMatch(stateResult, /^unexpected/);

    // Removal: the interface (its address and routes go with it), then the policies and states.
    assert.equal(await x.removeAll(), xfrmi ? 1 : 0);
    for (const p of policiesOf(t)) await xfrm.deletePolicy(toPolicySpec(p, c, 0x4b000041));
    await xfrm.flushSas();
    assert.deepEqual(leftovers(), NOTHING);
    xfrm.close(); rtnl.close();
    return { xfrmi, stateResult };
  },
};

if (!(await scenarioChild(scenarios))) {
  test('XfrmLinks on a veth: IFLA_IFALIAS, RTM_NEWADDR (replace, idempotent) / RTM_GETADDR / RTM_DELADDR for IPv4 and IPv6; the xfrm-only dump lists nothing else', async (t) => {
    await runScenario(await Netns.create(t, 'xfrmad'), SELF, 'addresses', { timeoutMs: 60_000 });
  });

  test('mode: route (profile aws): an XFRM interface with if_id 41, alias, inside /30, MTU 1446 and routes over it, or a refusal naming the missing kernel feature; 0.0.0.0/0 policies carry the if_id; removal leaves nothing', async (t) => {
    const res = await runScenario(await Netns.create(t, 'xfrmif'), SELF, 'interface', { timeoutMs: 120_000 }) as { xfrmi: boolean; stateResult: string };
    t.diagnostic(`XFRM interfaces on this kernel: ${res.xfrmi ? 'yes, interface checked' : 'no, refusal checked'}; ESP state with if_id: ${res.stateResult}`);
  });

  test('standalone agent, mode: route: the interface exists before any SA and SIGTERM takes it with its routes; without kernel support the agent does not start and leaves nothing', async (t) => {
    const ns = await Netns.create(t, 'xfrmag');
    for (const a of UPLINK) await ns.run('ip', a);
    const probe = await ns.run('ip', ['link', 'add', 'kprobe0', 'type', 'xfrm', 'if_id', '1'], { check: false });
    const nothing = async (): Promise<void> => {
      assert.equal((await ns.run('ip', ['link', 'show', 'type', 'xfrm'])).stdout.trim(), '');
      assert.doesNotMatch((await ns.run('ip', ['route', 'show'])).stdout, /172\.3[01]\./);
      assert.equal((await ns.run('ip', ['xfrm', 'policy'])).stdout.trim(), '');
    };
    if (probe.code !== 0) {
      const e = await AgentProcess.start(t, ns, { config: config('respond'), files: { psk: `${PSK}\n` }, logLevel: 'info' }).then(() => undefined, (x: Error) => x);
      assert.ok(e, 'the agent must not start without XFRM interfaces');
      assert.match(e.message, /agent exited 1 before listening/);
      assert.match(e.message, /kipsec agent: cannot start: XFRM interface set-up failed .*to-aws-1: spec\.mode: route needs XFRM interfaces/);
      await nothing();
      t.diagnostic('this kernel has no XFRM interfaces: refusal checked');
      return;
    }
    await ns.run('ip', ['link', 'del', 'kprobe0']);
    // respond: the peer is absent; the interface must not wait for an SA anyway.
    const agent = await AgentProcess.start(t, ns, { config: config('respond'), files: { psk: `${PSK}\n` }, logLevel: 'info' });
    const link = (await ns.run('ip', ['-d', 'link', 'show', 'dev', 'xfrm41'])).stdout;
    assert.match(link, /if_id 0x29/);
    assert.match(link, /mtu 1446\b/);
    assert.match((await ns.run('ip', ['route', 'show', 'dev', 'xfrm41'])).stdout, /^172\.31\.0\.0\/16 proto static scope link src 10\.1\.0\.1/m);
    assert.match(agent.log(), /"msg":"XFRM interface ready"/);
    assert.equal(await agent.stop(), 0, agent.log().slice(-3000));
    await nothing();
    assert.match(agent.log(), /removed XFRM interfaces of route-mode tunnels/);
  });
}
