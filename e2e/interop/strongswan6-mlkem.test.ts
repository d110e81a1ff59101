// Interop lane (host kernel, no ESP): kipsec's IKE engine against strongSwan 6.1 (built by
// scripts/build-strongswan6.sh, ml plugin) with the hybrid proposal x25519 + ML-KEM-768
// (aes256gcm16-prfsha384-x25519-ke1_mlkem768): IKE_SA_INIT, one IKE_INTERMEDIATE carrying
// ML-KEM-768 (RFC 9242, RFC 9370 §2.2.1), IKE_AUTH over the IntAuth chain, kipsec as initiator
// and as responder. What it proves: charon verifies our AUTH and we verify its AUTH (so both
// IntAuth chains and the SK_p of the updated keys agree), both sides list the same IKE and Child
// SA SPIs, and INFORMATIONAL goes both ways on the established SA: charon's liveness checks
// answered by us, our Delete parsed by charon (so SK_e/SK_a after the key update agree); the Child SA's keys come from the updated SK_d, and charon
// (kernel-libipsec) installs it while kipsec records it (no ESP in this kernel, no data traffic).
// Then the hybrid IKE SA is rekeyed in CREATE_CHILD_SA + IKE_FOLLOWUP_KE (RFC 9370 §2.2.2), by
// kipsec and then by charon (swanctl --rekey --ike): the new IKE SA carries KE1_ML_KEM_768 on both
// sides, the Child SA moves, and the INFORMATIONAL checks above run on the twice-rekeyed SA (so
// both sides derived the same keys over SK(0) | Ni | Nr | SK(1), §2.2.4). Then the Child SA, whose
// ESP proposal has PFS x25519 + ke1_mlkem768 (none in IKE_AUTH), is rekeyed the same way by each
// side: one INSTALLED Child SA with CURVE_25519/KE1_ML_KEM_768 at charon, with the SPIs we recorded.
// Not proven: key agreement of the Child SAs (no ESP traffic here) or by comparing key logs (our
// engine does not export keys).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { pair, type Netns, type Scope } from '../lib/netns.js';
import { StrongSwan, pskConnection } from '../lib/strongswan.js';
import type { IkePeerSpec } from '../lib/ike-peer.js';

const PREFIX = join(process.env['KIPSEC_STRONGSWAN6_CACHE'] ?? join(process.env['XDG_CACHE_HOME'] ?? join(homedir(), '.cache'), 'kipsec-strongswan6'), process.env['STRONGSWAN6_VERSION'] ?? '6.1.0');
const HYBRID = 'aes256gcm16-prfsha384-x25519-ke1_mlkem768';
/** Child SA PFS with ML-KEM too: none in IKE_AUTH (no KE there), x25519 + ML-KEM-768 when rekeyed. */
const ESP_PFS = 'aes256gcm16-x25519-ke1_mlkem768';
const PSK = 'kipsec interop strongswan6: correct horse battery staple';
const K = '192.0.2.1'; const S = '192.0.2.2';
/** A lane that cannot run fails, naming why (scripts/setup.sh builds strongSwan 6 once). */
const needStrongSwan6 = (): void => assert.ok(StrongSwan.availableAt(PREFIX), `no strongSwan 6 under ${PREFIX}: run scripts/build-strongswan6.sh (scripts/setup.sh does)`);

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

  async installed(): Promise<Array<{ inbound: number; outbound: number }>> {
    const n = this.lines.length;
    this.send({ cmd: 'installed' });
    const l = await this.waitFor((x) => this.lines.indexOf(x) >= n && 'installed' in x, 10_000, 'installed');
    return l['installed'] as Array<{ inbound: number; outbound: number }>;
  }
}

const hex8 = (n: number): string => n.toString(16).padStart(8, '0');

async function scenario(t: Scope, kipsecInitiates: boolean): Promise<void> {
  const [k, s] = await pair(t, { a: `${K}/24`, b: `${S}/24` });
  const swan = await StrongSwan.start(t, s, {
    prefix: PREFIX, mode: 'libipsec',
    swanctl: pskConnection({ name: 't', local: S, remote: K, localTs: '10.2.0.0/24', remoteTs: '10.1.0.0/24', proposals: HYBRID, espProposals: ESP_PFS, psk: PSK, extra: 'dpd_delay = 1s' }),
  });
  const peer = await Peer.start(t, k, {
    name: 't', local: K, remote: S, psk: PSK, proposals: [HYBRID], espProposals: [ESP_PFS],
    localTs: ['10.1.0.0/24'], remoteTs: ['10.2.0.0/24'], startAction: 'respond',
  });
  if (kipsecInitiates) peer.send({ cmd: 'initiate' });
  else {
    const init = await swan.initiate('t');
    assert.equal(init.code, 0, `charon's initiate failed:\n${init.stdout}\n${swan.log().slice(-4000)}`);
  }
  await peer.waitFor((l) => (l['event'] as { type?: string } | undefined)?.type === 'child-up', 30_000, 'child-up').catch((e: unknown) => { throw new Error(`${String(e)}\ncharon:\n${swan.log().slice(-6000)}`); });
  const log = swan.log();
  // charon ran the exchange we claim: one IKE_INTERMEDIATE each way with a KE payload, then IKE_AUTH.
  assert.match(log, new RegExp(`${kipsecInitiates ? 'parsed' : 'generating'} IKE_INTERMEDIATE request 1 \\[ KE \\]`));
  assert.match(log, new RegExp(`${kipsecInitiates ? 'generating' : 'parsed'} IKE_INTERMEDIATE response 1 \\[ KE \\]`));
  assert.match(log, /authentication of '192\.0\.2\.1' with pre-shared key successful/, 'charon verified our AUTH over the IntAuth chain');
  const [ike] = await swan.ikeSas();
  assert.ok(ike, await swan.listSas());
  assert.equal(ike.state, 'ESTABLISHED');
  assert.match(ike.block, /AES_GCM_16-256\/PRF_HMAC_SHA2_384\/CURVE_25519\/KE1_ML_KEM_768/, ike.block);
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
    const dir = by === 'kipsec' ? 'parsed' : 'generating';
    const back = by === 'kipsec' ? 'generating' : 'parsed';
    assert.match(seen, new RegExp(`${dir} CREATE_CHILD_SA request \\d+ \\[ [^\\]]*KE[^\\]]* \\]`), seen.slice(-6000));
    assert.match(seen, new RegExp(`${back} CREATE_CHILD_SA response \\d+ \\[ [^\\]]*N\\(ADD_KE\\)[^\\]]* \\]`), seen.slice(-6000));
    assert.match(seen, new RegExp(`${dir} IKE_FOLLOWUP_KE request \\d+ \\[ [^\\]]*KE[^\\]]* \\]`), seen.slice(-6000));
    assert.match(seen, new RegExp(`${back} IKE_FOLLOWUP_KE response \\d+ \\[ KE \\]`), seen.slice(-6000));
    assert.doesNotMatch(seen, /IKE_SA_INIT|IKE_AUTH/, 'a rekey, not a reauthentication');
    assert.match(fresh.block, /AES_GCM_16-256\/PRF_HMAC_SHA2_384\/CURVE_25519\/KE1_ML_KEM_768/, fresh.block);
    assert.equal((await peer.status()).ike?.suite, HYBRID);
    assert.equal((await swan.childSas()).length, 1, 'the Child SA moved to the new IKE SA');
    current = fresh;
  }
  assert.equal(peer.events('ike-rekeyed').length, 2, 'two IKE rekeys on our side');
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
    assert.match(after.suite, /AES_GCM_16-256\/CURVE_25519\/KE1_ML_KEM_768/, after.suite);
    const dir = by === 'kipsec' ? 'parsed' : 'generating';
    const back = by === 'kipsec' ? 'generating' : 'parsed';
    assert.match(seen, new RegExp(`${dir} CREATE_CHILD_SA request \\d+ \\[ [^\\]]*N\\(REKEY_SA\\)[^\\]]*KE[^\\]]* \\]`), seen.slice(-6000));
    assert.match(seen, new RegExp(`${back} CREATE_CHILD_SA response \\d+ \\[ [^\\]]*N\\(ADD_KE\\)[^\\]]* \\]`), seen.slice(-6000));
    assert.match(seen, new RegExp(`${dir} IKE_FOLLOWUP_KE request \\d+ \\[ [^\\]]*KE[^\\]]* \\]`), seen.slice(-6000));
    assert.match(seen, new RegExp(`${back} IKE_FOLLOWUP_KE response \\d+ \\[ [^\\]]*KE[^\\]]* \\]`), seen.slice(-6000));
  }
  assert.equal(peer.events('child-rekeyed').length, 2, 'two Child SA rekeys on our side');
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
}

test('strongSwan 6.1 x25519 + ML-KEM-768 (RFC 9370 ke1_mlkem768 in IKE_INTERMEDIATE): kipsec initiates; AUTH, SPIs, INFORMATIONAL each way, IKE and Child SA rekeys with IKE_FOLLOWUP_KE by each side', async (t) => {
  needStrongSwan6();
  await scenario(t, true);
});

test('strongSwan 6.1 x25519 + ML-KEM-768 (RFC 9370 ke1_mlkem768 in IKE_INTERMEDIATE): charon initiates, kipsec responds; AUTH, SPIs, INFORMATIONAL each way, IKE and Child SA rekeys with IKE_FOLLOWUP_KE by each side', async (t) => {
  needStrongSwan6();
  await scenario(t, false);
});
