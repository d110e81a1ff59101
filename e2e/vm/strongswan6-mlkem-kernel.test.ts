// Kernel lane (real ESP on both sides): the counterpart of e2e/interop/strongswan6-mlkem.test.ts
// with kernel data paths. kipsec's agent (`kipsec agent --standalone`: XFRM over netlink) against
// strongSwan 6.1's charon with kernel-netlink (kernel ESP, not kernel-libipsec), the hybrid
// proposal x25519 + ML-KEM-768 (RFC 9370 ke1_mlkem768 in IKE_INTERMEDIATE, RFC 9242) for the IKE
// SA and for the Child SA's PFS. Two tunnels on one charon and one agent (one boot, one charon and
// one agent start): "ki", which the agent initiates, and "ci", which charon initiates. On each,
// under a 10/s ping:
//   1. the hybrid IKE SA: one IKE_INTERMEDIATE each way with KE, our AUTH verified by charon, the
//      same IKE SPIs and mirrored Child SA SPIs on both sides, in both kernels with the same keys;
//   2. IKE rekeys (CREATE_CHILD_SA + IKE_FOLLOWUP_KE, RFC 9370 §2.2.2), first by kipsec (the
//      control socket's `rekey`), then by charon (`swanctl --rekey --ike`);
//   3. Child SA rekeys with PFS x25519 + ML-KEM-768, by kipsec, then by charon;
//   4. our SIGTERM deletes both IKE SAs at charon (it decrypts our INFORMATIONAL Delete).
// Every ping must come back, and charon's kernel counts traffic both ways on the last Child SA.
// Key agreement with charon's key log (save-keys): every ESP state our kernel held (3 Child SAs
// per tunnel, both directions: 12 SAs) has the SPI, addresses and key (AES-GCM: key and salt)
// charon saved, and charon saved no other; the 6 IKE SAs (3 per tunnel) are exactly those in its
// IKE table. The first Child SA's keys come from SK_d after the IKE_INTERMEDIATE update (§2.2.1),
// the later ones from a rekeyed IKE SA's SK_d with the new x25519 and ML-KEM secrets (§2.2.2), so
// equal ESP keys pin the RFC 9370 key schedule. The agent exports no IKE keys; SK_d..SK_pr are
// compared byte for byte in the host test (its test peer has a key log).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { controlRequest } from '../../src/agent/control/client.js';
import { pair } from '../lib/netns.js';
import { HYBRID_ESP, HYBRID_ESP_SUITE, HYBRID_IKE, HYBRID_IKE_SUITE, assertFollowupKe, assertHybridSetup, compareEspKeys, compareIkeSpis, kernelEspKeys, needStrongSwan6, startStrongSwan6, type EspSa, type Side } from '../lib/strongswan6.js';
import { AgentProcess, ContinuousPing, pollUntil, tunnelYaml } from './agent-harness.js';
import { swanctlConf } from './agent-swan.js';
import { prepareVm } from './agent-vm.js';

prepareVm();
const PSK = 'kipsec e2e strongswan6 kernel: correct horse battery staple';
const AGENT = '192.0.2.1';
const TUNNELS = [
  { name: 'ki', swan: '192.0.2.2', n: 1, initiator: 'kipsec' },
  { name: 'ci', swan: '192.0.2.3', n: 2, initiator: 'charon' },
] as const;

/** Both sides' view of one tunnel once they agree: IKE SPIs "<i>_i <r>_r", our Child SA's SPIs, charon's suites. */
interface Agreed { readonly ike: string; readonly spiIn: string; readonly spiOut: string; readonly ikeBlock: string; readonly childSuite: string }

test('strongSwan 6.1 x25519 + ML-KEM-768 (RFC 9370, RFC 9242) with kernel ESP on both sides: kipsec initiates one tunnel, charon the other; IKE and PFS Child SA rekeys by each side, zero ping loss, our kernel\'s ESP keys and SPIs and our IKE SPIs equal charon\'s save-keys', async (t) => {
  needStrongSwan6();
  const started = Date.now();
  const [a, b] = await pair(t, { a: `${AGENT}/24`, b: `${TUNNELS[0].swan}/24` });
  await b.run('ip', ['addr', 'add', `${TUNNELS[1].swan}/24`, 'dev', 'eth0']);
  for (const x of TUNNELS) {
    await a.run('ip', ['addr', 'add', `10.1.${x.n}.1/24`, 'dev', 'lo']);
    await b.run('ip', ['addr', 'add', `10.2.${x.n}.1/24`, 'dev', 'lo']);
  }
  const swan = await startStrongSwan6(t, b, {
    mode: 'kernel',
    swanctl: swanctlConf(TUNNELS.map((x) => ({ name: x.name, local: x.swan, remote: AGENT, localTs: `10.2.${x.n}.0/24`, remoteTs: `10.1.${x.n}.0/24`, proposals: HYBRID_IKE, espProposals: HYBRID_ESP, auth: { psk: PSK } }))),
  });
  // Lifetimes far beyond the test: every rekey here is one a test step asked for.
  const config = TUNNELS.map((x) => tunnelYaml({ name: x.name, local: AGENT, remote: x.swan, localSubnets: [`10.1.${x.n}.0/24`], remoteSubnets: [`10.2.${x.n}.0/24`],
    ike: [HYBRID_IKE], esp: [HYBRID_ESP], startAction: x.initiator === 'kipsec' ? 'initiate' : 'respond' })).join('---\n');
  const agent = await AgentProcess.start(t, a, { config, files: { psk: `${PSK}\n` } });
  const step = (what: string, since: number): void => t.diagnostic(`${what} (${Date.now() - since} ms)`);
  step('charon 6 and the agent started', started);

  const why = async (): Promise<string> => `kipsec status:\n${await agent.table()}\nswanctl --list-sas:\n${await swan.listSas()}\nagent log tail:\n${agent.log().slice(-5000)}\ncharon log tail:\n${swan.log().slice(-5000)}`;
  /** Every ESP state our kernel held, by SPI (old ones leave after a rekey's delete delay, so each new Child SA is read as it comes). */
  const ours = new Map<string, EspSa>();
  const ikeSas: string[] = [];

  /** Both sides on one IKE SA (not `notIke`) with one installed Child SA (not `notSpiIn`), SPIs mirrored. */
  async function agreed(name: string, notIke?: string, notSpiIn?: string): Promise<Agreed> {
    return pollUntil(`${name}: both sides on one new IKE SA and one new Child SA`, 60_000, async () => {
      const st = await agent.tunnel(name);
      const ike = st.ikeSpis ? `${st.ikeSpis.initiator}_i ${st.ikeSpis.responder}_r` : undefined;
      const kids = st.children.filter((c) => c.state === 'installed');
      if (st.ikeState !== 'established' || !ike || ike === notIke || kids.length !== 1 || kids[0]!.spiIn === notSpiIn) return undefined;
      const theirs = (await swan.ikeSas()).filter((s) => s.name === name);
      if (theirs.length !== 1 || theirs[0]!.state !== 'ESTABLISHED' || `${theirs[0]!.spiI}_i ${theirs[0]!.spiR}_r` !== ike) return undefined;
      const c = (await swan.childSas()).filter((x) => x.name === name && x.state === 'INSTALLED');
      return c.length === 1 && c[0]!.spiIn === kids[0]!.spiOut && c[0]!.spiOut === kids[0]!.spiIn
        ? { ike, spiIn: kids[0]!.spiIn, spiOut: kids[0]!.spiOut, ikeBlock: theirs[0]!.block, childSuite: c[0]!.suite } : undefined;
    }, why, 200);
  }

  /** The Child SA in both kernels: our states recorded for the key comparison, charon's with the same keys. */
  async function inKernels(name: string, s: Agreed): Promise<void> {
    const [mine, theirs] = [await kernelEspKeys(a), await kernelEspKeys(b)];
    for (const spi of [s.spiIn, s.spiOut]) {
      const m = mine.find((x) => x.spi === spi);
      assert.ok(m, `${name}: SPI ${spi} in our kernel:\n${JSON.stringify(mine)}`);
      assert.deepEqual(theirs.find((x) => x.spi === spi), m, `${name}: SPI ${spi} in charon's kernel with the same addresses and key`);
      ours.set(spi, m);
    }
  }

  async function rekey(name: string, by: Side, what: 'ike' | 'child', before: Agreed): Promise<Agreed> {
    const t0 = Date.now();
    const at = swan.log().length;
    if (by === 'kipsec') await controlRequest(agent.socket, 'rekey', { name, ike: what === 'ike', child: what === 'child' }, 60_000);
    else {
      const r = await swan.swanctl(['--rekey', `--${what}`, name], false);
      assert.equal(r.code, 0, `swanctl --rekey --${what} ${name}: ${r.stdout}${r.stderr}`);
    }
    const now = await agreed(name, what === 'ike' ? before.ike : undefined, what === 'child' ? before.spiIn : undefined);
    assertFollowupKe(swan.log().slice(at), by, what);
    if (what === 'ike') {
      assert.match(now.ikeBlock, HYBRID_IKE_SUITE, `${name}: the new IKE SA is hybrid`);
      assert.deepEqual([now.spiIn, now.spiOut], [before.spiIn, before.spiOut], `${name}: the Child SA moved to the new IKE SA unchanged (RFC 7296 §2.18)`);
      ikeSas.push(now.ike);
    } else {
      assert.equal(now.ike, before.ike, `${name}: a Child SA rekey leaves the IKE SA alone`);
      assert.match(now.childSuite, HYBRID_ESP_SUITE, `${name}: the rekeyed Child SA has PFS with x25519 + ML-KEM-768`);
      await inKernels(name, now);
    }
    step(`${name}: ${what === 'ike' ? 'IKE' : 'Child'} SA rekey by ${by}: ${what === 'ike' ? `${before.ike} -> ${now.ike}` : `${before.spiIn}/${before.spiOut} -> ${now.spiIn}/${now.spiOut}`}`, t0);
    return now;
  }

  const pings: Array<[string, ContinuousPing]> = [];
  for (const x of TUNNELS) {
    const t0 = Date.now();
    const at = swan.log().length;
    if (x.initiator === 'charon') {
      const r = await swan.initiate(x.name, 60);
      assert.equal(r.code, 0, `charon could not initiate ${x.name}:\n${r.stdout}${r.stderr}\n${swan.log().slice(-5000)}`);
    }
    let cur = await agreed(x.name);
    const st = await agent.tunnel(x.name);
    assert.equal(st.role, x.initiator === 'kipsec' ? 'initiator' : 'responder');
    assert.equal(st.ikeSuite, HYBRID_IKE, `${x.name}: our IKE SA runs the hybrid suite`);
    assert.match(cur.ikeBlock, HYBRID_IKE_SUITE, `${x.name}: charon's IKE SA runs the hybrid suite`);
    assertHybridSetup(swan.log().slice(at), x.initiator, AGENT);
    await inKernels(x.name, cur);
    ikeSas.push(cur.ike);
    step(`${x.name}: hybrid IKE SA ${cur.ike} and Child SA ${cur.spiIn}/${cur.spiOut} up, ${x.initiator} initiating`, t0);
    pings.push([x.name, new ContinuousPing(a, `10.1.${x.n}.1`, `10.2.${x.n}.1`)]);
    for (const by of ['kipsec', 'charon'] as const) cur = await rekey(x.name, by, 'ike', cur);
    for (const by of ['kipsec', 'charon'] as const) cur = await rekey(x.name, by, 'child', cur);
    const [last] = (await swan.childSas()).filter((c) => c.name === x.name && c.state === 'INSTALLED');
    assert.ok(last && last.packetsIn > 0 && last.packetsOut > 0, `${x.name}: charon's kernel counted pings both ways on the last Child SA:\n${await swan.listSas()}`);
  }

  for (const [name, p] of pings) {
    const c = await p.stop();
    t.diagnostic(`${name}: ${c.received}/${c.sent} pings answered across 2 IKE and 2 Child SA rekeys`);
    assert.ok(c.wasRunning, `${name}: ping ended early:\n${c.tail}`);
    assert.ok(c.sent >= 20, `${name}: ping ran (${c.sent} sent)`);
    assert.deepEqual(c.lost, [], `${name}: pings lost (only the last echo may be in flight at SIGINT):\n${c.tail}`);
  }
  assert.equal(ours.size, 12, `12 ESP SAs in our kernel: 3 Child SAs per tunnel, both directions: ${[...ours.keys()].join(' ')}`);
  for (const n of compareEspKeys([...ours.values()], swan.savedEspKeys())) t.diagnostic(n);
  assert.equal(ikeSas.length, 6, '6 IKE SAs: IKE_AUTH\'s and two rekeys per tunnel');
  for (const n of compareIkeSpis(ikeSas, swan)) t.diagnostic(n);

  const mark = swan.log().length;
  assert.equal(await agent.stop(), 0);
  await pollUntil('charon deleted both IKE SAs on our Delete', 30_000, async () => ((await swan.ikeSas()).length === 0 ? true : undefined), why);
  assert.equal([...swan.log().slice(mark).matchAll(/parsed INFORMATIONAL request \d+ \[ D \]/g)].length, 2, 'charon decrypted our two Deletes');
  step('wall time', started);
});
