// Kernel lane end to end: two namespaces ping each other through ESP (RFC 4303, AES-GCM per
// RFC 4106) with every SA, policy, route and XFRM interface installed by src/xfrm alone — `ip`
// here only creates the veth/addresses and observes. Policy-based: installChild() + a route in
// table 220 with a source address (strongSwan's install_routes). Route-based: an XFRM interface
// per side (if_id), SAs and catch-all policies bound to it, and a route over the interface.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { SecretBytes } from '../../src/common/secret.js';
import { XfrmClient } from '../../src/xfrm/client.js';
import { RtnlClient } from '../../src/xfrm/rtnl/client.js';
import type { SaSpec } from '../../src/xfrm/sa.js';
import type { PolicySpec } from '../../src/xfrm/policy.js';
import { pair, type Netns } from '../lib/netns.js';
import { nodeArgsFor } from '../lib/scenario.js';

const SELF = fileURLToPath(import.meta.url);

interface Side {
  readonly me: string; readonly peer: string;
  readonly local: string; readonly remote: string; readonly inner: string;
  readonly spiOut: number; readonly spiIn: number;
  readonly ifId?: number;
}

const keyOut = (s: Side): SecretBytes => new SecretBytes(new Uint8Array(36).fill(s.spiOut & 0xff));
const keyIn = (s: Side): SecretBytes => new SecretBytes(new Uint8Array(36).fill(s.spiIn & 0xff));

function child(s: Side): { sas: SaSpec[]; policies: PolicySpec[] } {
  const common = { reqid: 1, mode: 'tunnel' as const, replayWindow: 32, ...(s.ifId !== undefined ? { ifId: s.ifId } : {}) };
  const sas: SaSpec[] = [
    { ...common, src: s.peer, dst: s.me, spi: s.spiIn, aead: { name: 'rfc4106(gcm(aes))', key: keyIn(s), icvBits: 128 } },
    { ...common, src: s.me, dst: s.peer, spi: s.spiOut, aead: { name: 'rfc4106(gcm(aes))', key: keyOut(s), icvBits: 128 }, replayWindow: 0 },
  ];
  const bind = s.ifId !== undefined ? { ifId: s.ifId } : {};
  const out = { src: s.me, dst: s.peer, proto: 'esp' as const, reqid: 1, mode: 'tunnel' as const };
  const inn = { src: s.peer, dst: s.me, proto: 'esp' as const, reqid: 1, mode: 'tunnel' as const };
  const sel = s.ifId !== undefined ? { l: '0.0.0.0/0', r: '0.0.0.0/0' } : { l: s.local, r: s.remote };
  const policies: PolicySpec[] = [
    { selector: { src: sel.l, dst: sel.r }, dir: 'out', priority: 1000, templates: [out], ...bind },
    { selector: { src: sel.r, dst: sel.l }, dir: 'in', priority: 1000, templates: [inn], ...bind },
    { selector: { src: sel.r, dst: sel.l }, dir: 'fwd', priority: 1000, templates: [inn], ...bind },
  ];
  return { sas, policies };
}

const scenarios: Record<string, (s: Side) => Promise<unknown>> = {
  async policyBased(s) {
    const x = XfrmClient.open({ timeoutMs: 60_000 });
    await x.installChild(child(s));
    const r = RtnlClient.open();
    await r.ensureRule();
    await r.addRoute({ dst: s.remote, src: s.inner, gateway: s.peer });
    const routes = await r.listRoutes();
    assert.deepEqual(routes.map((rt) => [rt.dst, rt.src, rt.gateway, rt.protocol]), [[s.remote, s.inner, s.peer, 4]]);
    x.close(); r.close();
    return 'installed';
  },
  async routeBased(s) {
    const r = RtnlClient.open();
    const index = await r.addXfrmInterface({ name: 'ipsec0', ifId: s.ifId!, link: 'eth0', up: true });
    assert.ok(index > 0);
    assert.equal(await r.xfrmInterfaceIfId('ipsec0'), s.ifId);
    const x = XfrmClient.open({ timeoutMs: 60_000 });
    await x.installChild(child(s));
    // Route-based tunnels route by interface: the main table (254), no policy-routing rule needed.
    await r.addRoute({ dst: s.remote, src: s.inner, dev: 'ipsec0', table: 254 });
    x.close(); r.close();
    return index;
  },
  async counters(s) {
    const x = XfrmClient.open({ timeoutMs: 60_000 });
    const out = await x.getAe({ dst: s.peer, spi: s.spiOut, src: s.me });
    const inn = await x.getAe({ dst: s.me, spi: s.spiIn, src: s.peer });
    x.close();
    return { outPackets: Number(out.current?.packets ?? -1n), inPackets: Number(inn.current?.packets ?? -1n), outSeq: out.replay?.oseq ?? out.replayEsn?.oseq ?? -1 };
  },
};

async function inNs(ns: Netns, scenario: string, side: Side): Promise<unknown> {
  const r = await ns.run('env', [`XFRM_SCENARIO=${scenario}`, `XFRM_SIDE=${JSON.stringify(side)}`, process.execPath, ...nodeArgsFor(SELF)], { timeoutMs: 240_000, check: false });
  assert.equal(r.code, 0, `scenario ${scenario} in ${ns.name} exited ${r.code}:\n${r.stderr}\n${r.stdout}`);
  return JSON.parse(r.stdout.trim().split('\n').pop() ?? 'null');
}

async function run(t: { after(fn: () => unknown): void; diagnostic(s: string): void }, scenario: string, ifIds: [number, number] | null): Promise<void> {
  const [a, b] = await pair(t, { a: '192.0.2.1/24', b: '192.0.2.2/24' });
  await a.run('ip', ['addr', 'add', '10.1.0.1/32', 'dev', 'lo']);
  await b.run('ip', ['addr', 'add', '10.2.0.1/32', 'dev', 'lo']);
  const sa: Side = { me: '192.0.2.1', peer: '192.0.2.2', local: '10.1.0.0/16', remote: '10.2.0.0/16', inner: '10.1.0.1', spiOut: 0xa1, spiIn: 0xb2, ...(ifIds ? { ifId: ifIds[0] } : {}) };
  const sb: Side = { me: '192.0.2.2', peer: '192.0.2.1', local: '10.2.0.0/16', remote: '10.1.0.0/16', inner: '10.2.0.1', spiOut: 0xb2, spiIn: 0xa1, ...(ifIds ? { ifId: ifIds[1] } : {}) };
  await inNs(a, scenario, sa);
  await inNs(b, scenario, sb);
  const ping = await a.run('ping', ['-c', '3', '-i', '0.2', '-W', '3', '10.2.0.1'], { check: false });
  const observe = await a.run('ip', ['-s', 'xfrm', 'state'], { check: false });
  assert.match(ping.stdout, /3 received/, `${ping.stdout}\n${ping.stderr}\n${observe.stdout}`);
  const ca = await inNs(a, 'counters', sa) as { outPackets: number; inPackets: number };
  t.diagnostic(`side a counters: ${JSON.stringify(ca)}`);
  assert.ok(ca.outPackets >= 3, `outbound SA counted ${ca.outPackets} packets`);
  assert.ok(ca.inPackets >= 3, `inbound SA counted ${ca.inPackets} packets`);
}

const which = process.env.XFRM_SCENARIO;
if (which) {
  const fn = scenarios[which];
  if (!fn) throw new Error(`unknown scenario ${which}`);
  const side = JSON.parse(process.env.XFRM_SIDE ?? '{}') as Side;
  await fn(side).then((res) => { console.log(JSON.stringify(res)); process.exit(0); }, (e: unknown) => { console.error(e); process.exit(1); });
} else {
  test('policy-based: ping 10.1.0.1 → 10.2.0.1 through ESP SAs, policies and table-220 routes installed only by src/xfrm', async (t) => {
    await run(t, 'policyBased', null);
  });
  test('route-based: ping through XFRM interfaces (if_id 0x20/0x21) with SAs, policies and routes installed only by src/xfrm', async (t) => {
    await run(t, 'routeBased', [0x20, 0x21]);
  });
}
