// Netns lane (host kernel: XFRM policies yes, ESP no): policies through XfrmClient, each scenario
// in a fresh namespace (this file re-executes itself there with XFRM_SCENARIO, because netlink
// sockets belong to the namespace they are opened in). Also ALLOCSPI (works without ESP),
// batched installs, rollback of a policy-only install, and table-220 routes with a source
// address as strongSwan's install_routes does. With KIPSEC_XFRM_RECORD=1 the policy dump is
// written to test/golden/xfrm/dumps/ for the unit lane's decode/re-encode test.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { toHex } from '../../src/common/bytes.js';
import { XfrmClient } from '../../src/xfrm/client.js';
import { IPPROTO_TCP } from '../../src/xfrm/constants.js';
import { XfrmExistsError, XfrmInstallError, XfrmNotFoundError } from '../../src/xfrm/errors.js';
import { NETLINK_XFRM } from '../../src/xfrm/netlink/constants.js';
import { RawNetlinkTransport } from '../../src/xfrm/netlink/raw-transport.js';
import type { NetlinkTransport } from '../../src/xfrm/netlink/transport.js';
import type { PolicySpec } from '../../src/xfrm/policy.js';
import { RtnlClient } from '../../src/xfrm/rtnl/client.js';
import { Netns } from '../lib/netns.js';
import { runScenario, scenarioChild } from '../lib/scenario.js';

const SELF = fileURLToPath(import.meta.url);

class Recording implements NetlinkTransport {
  readonly inner = new RawNetlinkTransport(NETLINK_XFRM);
  readonly received: Uint8Array[] = [];
  get portId(): number { return this.inner.portId; }
  send(d: Uint8Array): void { this.inner.send(d); }
  setReceiver(onD: (d: Uint8Array) => void, onE: (e: Error) => void): void { this.inner.setReceiver((d) => { this.received.push(d.slice()); onD(d); }, onE); }
  addMembership(g: number): void { this.inner.addMembership(g); }
  setRef(r: boolean): void { this.inner.setRef(r); }
  close(): void { this.inner.close(); }
}

const tmpl = (src: string, dst: string, reqid = 7) => [{ src, dst, proto: 'esp' as const, reqid, mode: 'tunnel' as const }];
const out: PolicySpec = { selector: { src: '10.1.0.0/16', dst: '10.2.0.0/16' }, dir: 'out', priority: 1000, templates: tmpl('192.0.2.1', '192.0.2.2') };
const inn: PolicySpec = { selector: { src: '10.2.0.0/16', dst: '10.1.0.0/16' }, dir: 'in', priority: 1000, templates: tmpl('192.0.2.2', '192.0.2.1') };
const fwd: PolicySpec = { ...inn, dir: 'fwd' };

const scenarios: Record<string, () => Promise<unknown>> = {
  async crud() {
    const rec = new Recording();
    const c = new XfrmClient(rec);
    for (const p of [out, inn, fwd]) await c.addPolicy(p);
    const got = await c.getPolicy({ selector: out.selector, dir: 'out' });
    assert.equal(got.priority, 1000);
    assert.deepEqual(got.templates, [{ src: '192.0.2.1', dst: '192.0.2.2', proto: 'esp', reqid: 7, mode: 'tunnel' }]);
    assert.ok(got.index > 0);
    await assert.rejects(c.addPolicy(out), (e: unknown) => e instanceof XfrmExistsError && /policy 10\.1\.0\.0\/16 → 10\.2\.0\.0\/16 dir out: EEXIST/.test(e.message));
    await c.updatePolicy({ ...out, priority: 500 });
    assert.equal((await c.getPolicy({ selector: out.selector, dir: 'out' })).priority, 500);
    // Same selector, but with a mark and an if_id: a different policy.
    const marked: PolicySpec = { ...out, mark: { value: 0x10, mask: 0xff }, ifId: 0x20, priority: 2000 };
    await c.addPolicy(marked);
    const gm = await c.getPolicy({ selector: out.selector, dir: 'out', mark: marked.mark!, ifId: 0x20 });
    assert.equal(gm.priority, 2000);
    assert.deepEqual(gm.mark, { value: 0x10, mask: 0xff });
    assert.equal(gm.ifId, 0x20);
    const ports: PolicySpec = { selector: { src: '10.1.0.0/16', dst: '10.2.0.0/16', proto: IPPROTO_TCP, dport: 443 }, dir: 'out', templates: tmpl('192.0.2.1', '192.0.2.2') };
    await c.addPolicy(ports);
    assert.deepEqual((await c.getPolicy(ports)).selector, ports.selector);
    const v6: PolicySpec = { selector: { src: '2001:db8:1::/48', dst: '2001:db8:2::/48' }, dir: 'out', templates: tmpl('2001:db8::1', '2001:db8::2', 9) };
    await c.addPolicy(v6);
    assert.deepEqual((await c.getPolicy(v6)).templates?.[0], { src: '2001:db8::1', dst: '2001:db8::2', proto: 'esp', reqid: 9, mode: 'tunnel' });
    const block: PolicySpec = { selector: { src: '10.9.0.0/16', dst: '10.8.0.0/16' }, dir: 'out', action: 'block', priority: 10 };
    await c.addPolicy(block);
    assert.equal((await c.getPolicy(block)).action, 'block');
    rec.received.length = 0;
    const all = await c.listPolicies();
    if (process.env.KIPSEC_XFRM_RECORD) {
      const file = fileURLToPath(new URL('../../test/golden/xfrm/dumps/policy-dump-host.json', import.meta.url));
      writeFileSync(file, JSON.stringify({ name: 'policy-dump-host', what: `XfrmClient.listPolicies() reply on the host kernel ${execFileSync('uname', ['-r']).toString().trim()} after e2e/netns/xfrm-policy.test.ts scenario crud`, datagrams: rec.received.map(toHex) }) + '\n');
    }
    assert.equal(all.length, 7);
    for (const p of [out, inn, fwd]) await c.deletePolicy(p);
    await assert.rejects(c.getPolicy(out), XfrmNotFoundError);
    await c.flushPolicies();
    assert.equal((await c.listPolicies()).length, 0);
    c.close();
    return all.length;
  },

  async batch() {
    const c = XfrmClient.open();
    const ps: PolicySpec[] = Array.from({ length: 2000 }, (_, i) => ({
      selector: { src: `10.${(i >> 8) & 0xff}.${i & 0xff}.0/24`, dst: '10.200.0.0/16' }, dir: 'out', priority: 100, templates: tmpl('192.0.2.1', '192.0.2.2', i + 1),
    }));
    const res = await c.addPolicies(ps);
    assert.equal(res.filter((e) => e !== null).length, 0);
    const again = await c.addPolicies(ps.slice(0, 3));
    assert.ok(again.every((e) => e instanceof XfrmExistsError));
    assert.equal((await c.listPolicies()).length, 2000);
    c.close();
    return 2000;
  },

  async rollback() {
    const c = XfrmClient.open();
    await c.addPolicy({ ...fwd, priority: 3 });
    await assert.rejects(c.installChild({ sas: [], policies: [out, inn, fwd] }), (e: unknown) => e instanceof XfrmInstallError && e.rolledBack.length === 2);
    const left = await c.listPolicies();
    assert.deepEqual(left.map((p) => [p.dir, p.priority]), [['fwd', 3]]);
    c.close();
    return 'ok';
  },

  async allocspi() {
    const c = XfrmClient.open();
    const spi = await c.allocSpi({ src: '192.0.2.2', dst: '192.0.2.1', reqid: 1, min: 0x1000, max: 0x1fff });
    assert.ok(spi >= 0x1000 && spi <= 0x1fff);
    const larval = await c.getSa({ dst: '192.0.2.1', spi });
    assert.equal(larval.reqid, 1);
    await c.deleteSa({ dst: '192.0.2.1', spi });
    c.close();
    return spi;
  },

  async routes() {
    execFileSync('ip', ['link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'v1']);
    execFileSync('ip', ['addr', 'add', '192.0.2.1/24', 'dev', 'eth0']);
    for (const d of ['eth0', 'v1']) execFileSync('ip', ['link', 'set', d, 'up']);
    execFileSync('ip', ['addr', 'add', '10.1.0.1/32', 'dev', 'lo']);
    const r = RtnlClient.open();
    // routeGet is `ip route get` in-process: on-link peer, then a peer behind a next hop.
    const eth0 = Number(readFileSync('/sys/class/net/eth0/ifindex', 'utf8'));
    assert.deepEqual(await r.routeGet('192.0.2.2'), { oif: eth0, prefsrc: '192.0.2.1' });
    execFileSync('ip', ['route', 'add', '198.51.100.0/24', 'via', '192.0.2.2']);
    assert.deepEqual(await r.routeGet('198.51.100.7'), { oif: eth0, gateway: '192.0.2.2', prefsrc: '192.0.2.1' });
    await r.ensureRule();
    await r.ensureRule(); // idempotent
    await r.addRoute({ dst: '10.2.0.0/16', src: '10.1.0.1', gateway: '192.0.2.2' });
    await assert.rejects(r.addRoute({ dst: '10.2.0.0/16', src: '10.1.0.1', gateway: '192.0.2.2' }), XfrmExistsError);
    const shown = execFileSync('ip', ['route', 'show', 'table', '220']).toString().trim();
    const rules = execFileSync('ip', ['rule']).toString();
    assert.equal(shown, '10.2.0.0/16 via 192.0.2.2 dev eth0 proto static src 10.1.0.1');
    assert.equal(rules.match(/^220:\s+from all lookup 220/gm)?.length, 1);
    await r.deleteRoute({ dst: '10.2.0.0/16', src: '10.1.0.1', gateway: '192.0.2.2' });
    assert.deepEqual(await r.listRoutes(), []);
    r.close();
    return shown;
  },
};

async function inNs(t: { after(fn: () => unknown): void }, scenario: string): Promise<unknown> {
  return runScenario(await Netns.create(t, `xp${scenario}`), SELF, scenario, { timeoutMs: 120_000 });
}

if (!(await scenarioChild(scenarios))) {
  test('policies: add/get/update/delete/list/flush with priorities, marks, if_id, ports, IPv6 and block; EEXIST/ENOENT typed', async (t) => { await inNs(t, 'crud'); });
  test('2000 policies in one batched call, duplicates reported per policy', async (t) => { await inNs(t, 'batch'); });
  test('a policy-only install failing at its third policy removes the two it added, not the pre-existing one', async (t) => { await inNs(t, 'rollback'); });
  test('ALLOCSPI on the host kernel returns an SPI in range held by a larval SA', async (t) => { await inNs(t, 'allocspi'); });
  test('routes to remote subnets in table 220 with a source address and rule priority 220, like strongSwan install_routes', async (t) => { await inNs(t, 'routes'); });
}
