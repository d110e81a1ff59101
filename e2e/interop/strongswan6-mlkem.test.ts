// Interop lane (host kernel, userspace ESP on both sides): kipsec's IKE engine against strongSwan
// 6.1 (built by scripts/build-strongswan6.sh: ml, kernel-libipsec, save-keys) with the hybrid
// proposal x25519 + ML-KEM-768 (aes256gcm16-prfsha384-x25519-ke1_mlkem768): IKE_SA_INIT, one
// IKE_INTERMEDIATE carrying ML-KEM-768 (RFC 9242, RFC 9370 §2.2.1), IKE_AUTH over the IntAuth
// chain, kipsec as initiator and as responder. ESP: kipsec's userspace engine (e2e/lib/ike-peer-esp.ts,
// ESP in UDP over a TUN device) against charon's kernel-libipsec (the same over its own TUN). The
// host kernel has XFRM but no esp4, so kernel ESP would need the VM lane; both userspace paths do
// the same RFC 4303/3948 processing with the keys IKE derived, so traffic and key agreement are
// proven here at a fraction of the VM's cost (the VM lane's kernel ESP adds nothing to RFC 9370).
// What it proves:
//  - charon verifies our AUTH and we verify its AUTH (both IntAuth chains and SK_p agree), both
//    sides list the same IKE and Child SA SPIs, INFORMATIONAL goes both ways (SK_e/SK_a agree);
//  - ping both ways and a TCP transfer each way through the hybrid Child SA, after IKE_AUTH, after
//    an IKE rekey by each side (CREATE_CHILD_SA + IKE_FOLLOWUP_KE, RFC 9370 §2.2.2: the new IKE SA
//    carries KE1_ML_KEM_768) and after a Child SA rekey by each side with PFS x25519 + ML-KEM-768;
//  - key agreement end to end, compared with charon's save-keys output (as the golden tests use
//    charon's key log): every Child SA's ESP keys and SPIs, both directions, equal ours. The first
//    Child SA's keys come from SK_d after the IKE_INTERMEDIATE update (§2.2.1), the rekeyed ones
//    from the twice-rekeyed IKE SA's SK_d (§2.2.4: SK(0) | Ni | Nr | SK(1)) with the new x25519
//    and ML-KEM secrets (§2.2.2), so equal ESP keys pin the whole RFC 9370 key schedule. Our
//    SK_e/SK_a/SK_p are not compared byte for byte (the engine exports no IKE keys); they agree
//    because each side decrypts and authenticates the other's messages.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { pair, type Netns, type Scope } from '../lib/netns.js';
import { StrongSwan, pskConnection } from '../lib/strongswan.js';
import { HYBRID_ESP as ESP_PFS, HYBRID_ESP_SUITE, HYBRID_IKE as HYBRID, HYBRID_IKE_SUITE, assertFollowupKe, assertHybridSetup, compareEspKeys, compareIkeKeys, hex8, needStrongSwan6, startStrongSwan6 } from '../lib/strongswan6.js';
import { socatTransfer } from '../lib/traffic.js';
import type { IkePeerSpec } from '../lib/ike-peer.js';
import type { InstalledKeys } from '../lib/ike-peer-esp.js';

const PSK = 'kipsec interop strongswan6: correct horse battery staple';
const K = '192.0.2.1'; const S = '192.0.2.2';
/** Inner addresses (on lo) inside the protected subnets. */
const K_IP = '10.1.0.1'; const S_IP = '10.2.0.1';
const TRANSFER_BYTES = 256 << 10;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The ike-peer process: JSON lines in, JSON lines out. */
class Peer {
  readonly lines: Array<Record<string, unknown>> = [];
  private readonly child: ChildProcess;
  private constructor(child: ChildProcess) {
    this.child = child;
    createInterface({ input: child.stdout! }).on('line', (l) => { try { this.lines.push(JSON.parse(l) as Record<string, unknown>); } catch { /* not ours */ } });
  }

  static async start(scope: Scope, ns: Netns, spec: IkePeerSpec): Promise<Peer> {
    const file = fileURLToPath(new URL('../lib/ike-peer.ts', import.meta.url));
    const child = ns.spawn(process.execPath, ['--import', 'tsx', file], { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, KIPSEC_IKE_PEER: JSON.stringify(spec) }, cwd: fileURLToPath(new URL('../..', import.meta.url)) });
    const p = new Peer(child);
    scope.after(() => { if (child.pid) try { process.kill(child.pid, 'SIGKILL'); } catch { /* gone */ } });
    await p.waitFor((l) => l['ready'] === true, 30_000, 'peer ready');
    return p;
  }

  send(cmd: Record<string, unknown>): void { this.child.stdin!.write(`${JSON.stringify(cmd)}\n`); }

  async waitFor(pred: (l: Record<string, unknown>) => boolean, ms: number, what: string): Promise<Record<string, unknown>> {
    for (const end = Date.now() + ms; Date.now() < end; await sleep(100)) {
      const hit = this.lines.find(pred);
      if (hit) return hit;
    }
    throw new Error(`timed out waiting for ${what}; peer said:\n${this.lines.map((l) => JSON.stringify(l)).join('\n')}`);
  }

  events(type: string): Array<Record<string, unknown>> {
    return this.lines.flatMap((l) => { const e = l['event'] as Record<string, unknown> | undefined; return e?.['type'] === type ? [e] : []; });
  }

  async status(): Promise<{ ike: { ikeSpis: string; state: string; suite: string } | null }> {
    const n = this.lines.length;
    this.send({ cmd: 'status' });
    const l = await this.waitFor((x) => this.lines.indexOf(x) >= n && 'status' in x, 10_000, 'status');
    const st = l['status'] as { peers: Array<{ ike: unknown }> };
    return st.peers[0] as never;
  }

  /** Every Child SA our ESP engine was given, with its keys (hex). */
  async keys(): Promise<InstalledKeys[]> {
    const n = this.lines.length;
    this.send({ cmd: 'keys' });
    const l = await this.waitFor((x) => this.lines.indexOf(x) >= n && 'keys' in x, 10_000, 'keys');
    return l['keys'] as InstalledKeys[];
  }

  /** The final keys of each RFC 9370 IKE SA our engine derived (its key log), hex. */
  async ikeKeys(): Promise<Array<Record<string, string>>> {
    const n = this.lines.length;
    this.send({ cmd: 'ike-keys' });
    const l = await this.waitFor((x) => this.lines.indexOf(x) >= n && 'ikeKeys' in x, 10_000, 'ike-keys');
    return l['ikeKeys'] as Array<Record<string, string>>;
  }

  async installed(): Promise<Array<{ inbound: number; outbound: number }>> {
    const n = this.lines.length;
    this.send({ cmd: 'installed' });
    const l = await this.waitFor((x) => this.lines.indexOf(x) >= n && 'installed' in x, 10_000, 'installed');
    return l['installed'] as Array<{ inbound: number; outbound: number }>;
  }
}

/**
 * Ping both ways and one TCP transfer each way through the tunnel, then check that charon's one
 * INSTALLED Child SA (the newest) counted packets both ways: the traffic used the current SAs.
 */
async function traffic(phase: string, k: Netns, s: Netns, swan: StrongSwan, dir: string, port: number): Promise<void> {
  const before = (await swan.childSas()).filter((c) => c.state === 'INSTALLED');
  for (const [from, src, dst] of [[k, K_IP, S_IP], [s, S_IP, K_IP]] as const) {
    const ping = await from.run('ping', ['-c', '3', '-i', '0.2', '-W', '2', '-I', src, dst], { timeoutMs: 20_000, check: false });
    assert.match(ping.stdout, /3 received/, `${phase}: ping ${src} → ${dst}: ${ping.stdout}${ping.stderr}\n${await swan.listSas()}`);
  }
  await socatTransfer(dir, k, s, S_IP, port, TRANSFER_BYTES);
  await socatTransfer(dir, s, k, K_IP, port + 1, TRANSFER_BYTES);
  const [now] = (await swan.childSas()).filter((c) => c.state === 'INSTALLED');
  assert.ok(now && before.length === 1 && now.spiIn === before[0]!.spiIn, `${phase}: one Child SA throughout:\n${await swan.listSas()}`);
  assert.ok(now.packetsIn > before[0]!.packetsIn && now.packetsOut > before[0]!.packetsOut, `${phase}: the current Child SA carried the traffic both ways:\n${await swan.listSas()}`);
}

async function scenario(t: Scope & { diagnostic(m: string): void }, kipsecInitiates: boolean): Promise<void> {
  const started = Date.now();
  const [k, s] = await pair(t, { a: `${K}/24`, b: `${S}/24` });
  await k.run('ip', ['addr', 'add', `${K_IP}/24`, 'dev', 'lo']);
  await s.run('ip', ['addr', 'add', `${S_IP}/24`, 'dev', 'lo']);
  const work = mkdtempSync(join(tmpdir(), 'kipsec-swan6-'));
  t.after(() => rmSync(work, { recursive: true, force: true }));
  const swan = await startStrongSwan6(t, s, {
    mode: 'libipsec', ikeKeyDumps: true,
    swanctl: pskConnection({ name: 't', local: S, remote: K, localTs: '10.2.0.0/24', remoteTs: '10.1.0.0/24', proposals: HYBRID, espProposals: ESP_PFS, psk: PSK, extra: 'dpd_delay = 1s' }),
  });
  const peer = await Peer.start(t, k, {
    name: 't', local: K, remote: S, psk: PSK, proposals: [HYBRID], espProposals: [ESP_PFS],
    localTs: ['10.1.0.0/24'], remoteTs: ['10.2.0.0/24'], startAction: 'respond',
    datapath: 'userspace', tun: 'kipsec0', tunAddress: K_IP,
  });
  if (kipsecInitiates) peer.send({ cmd: 'initiate' });
  else {
    const init = await swan.initiate('t');
    assert.equal(init.code, 0, `charon's initiate failed:\n${init.stdout}\n${swan.log().slice(-4000)}`);
  }
  await peer.waitFor((l) => (l['event'] as { type?: string } | undefined)?.type === 'child-up', 30_000, 'child-up').catch((e: unknown) => { throw new Error(`${String(e)}\ncharon:\n${swan.log().slice(-6000)}`); });
  const log = swan.log();
  assertHybridSetup(log, kipsecInitiates ? 'kipsec' : 'charon', K);
  const [ike] = await swan.ikeSas();
  assert.ok(ike, await swan.listSas());
  assert.equal(ike.state, 'ESTABLISHED');
  assert.match(ike.block, HYBRID_IKE_SUITE, ike.block);
  const ours = await peer.status();
  assert.equal(ours.ike?.state, 'established');
  assert.equal(ours.ike?.suite, HYBRID);
  assert.equal(ours.ike?.ikeSpis, `${ike.spiI}_i ${ike.spiR}_r`, 'both sides name the same IKE SA');
  const [child] = await swan.childSas();
  const [rec] = await peer.installed();
  assert.ok(child && rec, `charon: ${await swan.listSas()}\nkipsec: ${JSON.stringify(rec)}`);
  assert.equal(child.state, 'INSTALLED');
  assert.equal(child.spiIn, hex8(rec.outbound), 'charon receives on the SPI we send to');
  assert.equal(child.spiOut, hex8(rec.inbound), 'charon sends to the SPI we receive on');
  assert.match(log, /remote host is behind NAT/, 'charon encapsulates ESP in UDP because we fake NAT detection (RFC 7296 §2.23), as the userspace engine needs');
  await traffic('after IKE_AUTH', k, s, swan, work, 5001);
  // IKE rekeys of the hybrid SA (RFC 9370 §2.2.2): CREATE_CHILD_SA {SA, Ni, KE(x25519)} then
  // IKE_FOLLOWUP_KE {KE(ML-KEM-768), N(ADDITIONAL_KEY_EXCHANGE)}, first ours, then charon's.
  let current = ike;
  for (const by of ['kipsec', 'charon'] as const) {
    const oldSpis = `${current.spiI}_i ${current.spiR}_r`;
    const at = swan.log().length;
    if (by === 'kipsec') peer.send({ cmd: 'rekey', ike: true });
    else {
      const r = await swan.swanctl(['--rekey', '--ike', 't'], false);
      assert.equal(r.code, 0, `swanctl --rekey --ike failed:\n${r.stdout}`);
    }
    let fresh = current;
    for (let i = 0; i < 100; i++) {
      const sas = await swan.ikeSas();
      const ours2 = await peer.status();
      const only = sas.length === 1 ? sas[0] : undefined;
      if (only && only.state === 'ESTABLISHED' && `${only.spiI}_i ${only.spiR}_r` !== oldSpis && ours2.ike?.ikeSpis === `${only.spiI}_i ${only.spiR}_r`) { fresh = only; break; }
      await sleep(200);
    }
    const seen = swan.log().slice(at);
    assert.notEqual(`${fresh.spiI}_i ${fresh.spiR}_r`, oldSpis, `${by}'s IKE rekey left no new IKE SA:\n${await swan.listSas()}\n${seen.slice(-6000)}`);
    assertFollowupKe(seen, by, 'ike');
    assert.match(fresh.block, HYBRID_IKE_SUITE, fresh.block);
    assert.equal((await peer.status()).ike?.suite, HYBRID);
    assert.equal((await swan.childSas()).length, 1, 'the Child SA moved to the new IKE SA');
    current = fresh;
  }
  assert.equal(peer.events('ike-rekeyed').length, 2, 'two IKE rekeys on our side');
  await traffic('after the IKE rekeys', k, s, swan, work, 5003);
  // Child SA rekeys with PFS and ML-KEM (RFC 9370 §2.2.2): CREATE_CHILD_SA {N(REKEY_SA), SA, Ni,
  // KE(x25519), TS} then IKE_FOLLOWUP_KE {KE(ML-KEM-768)}, first ours, then charon's.
  for (const by of ['kipsec', 'charon'] as const) {
    const [before] = await swan.childSas();
    assert.ok(before);
    const at = swan.log().length;
    if (by === 'kipsec') peer.send({ cmd: 'rekey' });
    else {
      const r = await swan.swanctl(['--rekey', '--child', 't'], false);
      assert.equal(r.code, 0, `swanctl --rekey --child failed:\n${r.stdout}`);
    }
    let after: typeof before | undefined;
    for (let i = 0; i < 100 && after === undefined; i++) {
      const cs = await swan.childSas();
      const recs = await peer.installed();
      // Both sides keep the old inbound state a while (charon's delete_rekeyed_delay shows it
      // REKEYED, our rekeyDeleteDelayMs): one INSTALLED Child SA at charon, and our record of it.
      const live = cs.filter((c) => c.state === 'INSTALLED');
      const only = live.length === 1 ? live[0] : undefined;
      if (only && only.spiIn !== before.spiIn && recs.some((x) => only.spiIn === hex8(x.outbound) && only.spiOut === hex8(x.inbound))) after = only;
      else await sleep(200);
    }
    const seen = swan.log().slice(at);
    assert.ok(after, `${by}'s Child SA rekey left no single new Child SA at charon with our record of it:\n${await swan.listSas()}\n${JSON.stringify(await peer.installed())}\n${seen.slice(-6000)}`);
    assert.match(after.suite, HYBRID_ESP_SUITE, after.suite);
    assertFollowupKe(seen, by, 'child');
    await traffic(`after the Child SA rekey by ${by}`, k, s, swan, work, by === 'kipsec' ? 5005 : 5007);
  }
  assert.equal(peer.events('child-rekeyed').length, 2, 'two Child SA rekeys on our side');
  const keys = await peer.keys();
  assert.equal(keys.length, 3, `three Child SAs on our side (IKE_AUTH's and two rekeys): ${keys.map((c) => `${hex8(c.inbound)}/${hex8(c.outbound)}`).join(' ')}`);
  assert.ok(keys.every((c) => c.algorithm === 'aes-gcm-16'));
  // Each Child SA both ways: our outbound SA is charon's inbound one, and the reverse.
  const sas = keys.flatMap((c) => [{ spi: hex8(c.outbound), src: K, dst: S, key: c.outKey }, { spi: hex8(c.inbound), src: S, dst: K, key: c.inKey }]);
  for (const n of compareEspKeys(sas, swan.savedEspKeys())) t.diagnostic(n);
  const ikeKeys = await peer.ikeKeys();
  assert.equal(ikeKeys.length, 3, 'three hybrid IKE SAs keyed on our side: IKE_AUTH\'s and two rekeys');
  for (const n of compareIkeKeys(ikeKeys, swan)) t.diagnostic(n);
  // charon's first derivation is IKE_SA_INIT's (SKEYSEED from x25519 alone): the keys the SA runs
  // on are the next one, after ML-KEM-768 in IKE_INTERMEDIATE (RFC 9370 §2.2.1).
  assert.notEqual(swan.loggedIkeKeys()[0]?.Sk_d, ikeKeys[0]!['skD'], 'our first IKE SA runs on the updated keys, not IKE_SA_INIT\'s');
  assert.equal(swan.loggedIkeKeys()[1]?.Sk_d, ikeKeys[0]!['skD'], 'they are charon\'s second derivation, after IKE_INTERMEDIATE');
  // INFORMATIONAL each way: charon's liveness checks (dpd_delay 1 s) are answered by us, and our
  // Delete of the IKE SA is parsed (decrypted, ICV checked) by charon, which then drops the SA.
  const mark = swan.log().length;
  for (let i = 0; i < 50 && !/parsed INFORMATIONAL response \d+ \[ \]/.test(swan.log().slice(mark)); i++) await sleep(100);
  assert.match(swan.log().slice(mark), /parsed INFORMATIONAL response \d+ \[ \]/, 'charon decrypted our answer to its liveness check');
  assert.equal((await peer.status()).ike?.state, 'established');
  peer.send({ cmd: 'terminate' });
  await peer.waitFor((l) => l['terminated'] === true, 20_000, 'terminate');
  assert.match(swan.log().slice(mark), /parsed INFORMATIONAL request \d+ \[ D \]/, 'charon decrypted our Delete');
  assert.deepEqual(await swan.ikeSas(), [], 'charon deleted the IKE SA on our Delete');
  assert.deepEqual(peer.events('error'), [], 'no errors on our side');
  t.diagnostic(`wall time ${Date.now() - started} ms`);
}

test('strongSwan 6.1 x25519 + ML-KEM-768 (RFC 9370 ke1_mlkem768 in IKE_INTERMEDIATE): kipsec initiates; AUTH, SPIs, INFORMATIONAL each way, IKE and Child SA rekeys with IKE_FOLLOWUP_KE by each side, ping and TCP through each Child SA, ESP keys equal charon\'s save-keys', async (t) => {
  needStrongSwan6();
  await scenario(t, true);
});

test('strongSwan 6.1 x25519 + ML-KEM-768 (RFC 9370 ke1_mlkem768 in IKE_INTERMEDIATE): charon initiates, kipsec responds; AUTH, SPIs, INFORMATIONAL each way, IKE and Child SA rekeys with IKE_FOLLOWUP_KE by each side, ping and TCP through each Child SA, ESP keys equal charon\'s save-keys', async (t) => {
  needStrongSwan6();
  await scenario(t, false);
});
