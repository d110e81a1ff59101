// strongSwan 6.1 (scripts/build-strongswan6.sh) as the RFC 9370 peer of the interop and kernel
// lanes: where the cached build is, the hybrid x25519 + ML-KEM-768 proposals, charon started with
// save-keys, charon's side of the exchanges as its log shows them (RFC 9242 IKE_INTERMEDIATE,
// RFC 9370 §2.2.2 IKE_FOLLOWUP_KE), and key agreement with charon's key log: save-keys' ESP and
// IKE tables (Wireshark's formats) and its `ike 4` key dumps, compared with ours.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Netns, Scope } from './netns.js';
import { StrongSwan, type SavedEspKeys, type SwanDatapath } from './strongswan.js';

/**
 * The build's prefix (the same expression as scripts/build-strongswan6.sh's). The kernel VM sees
 * this machine's files, so the host's cache serves it too; it gets only KIPSEC_* variables, so a
 * cache elsewhere is named with KIPSEC_STRONGSWAN6_CACHE there, not XDG_CACHE_HOME.
 */
const STRONGSWAN6_PREFIX = join(process.env['KIPSEC_STRONGSWAN6_CACHE'] ?? join(process.env['XDG_CACHE_HOME'] ?? join(homedir(), '.cache'), 'kipsec-strongswan6'), process.env['STRONGSWAN6_VERSION'] ?? '6.1.0');
/** IKE: x25519 in IKE_SA_INIT, ML-KEM-768 in one IKE_INTERMEDIATE (RFC 9370 §2.2.1). */
export const HYBRID_IKE = 'aes256gcm16-prfsha384-x25519-ke1_mlkem768';
/** Child SA PFS with ML-KEM too: none in IKE_AUTH (no KE there), x25519 + ML-KEM-768 when rekeyed. */
export const HYBRID_ESP = 'aes256gcm16-x25519-ke1_mlkem768';
/** How `swanctl --list-sas` names the hybrid IKE and rekeyed Child SA suites. */
export const HYBRID_IKE_SUITE = /AES_GCM_16-256\/PRF_HMAC_SHA2_384\/CURVE_25519\/KE1_ML_KEM_768/;
export const HYBRID_ESP_SUITE = /AES_GCM_16-256\/CURVE_25519\/KE1_ML_KEM_768/;

/** A lane that cannot run fails, naming why (scripts/setup.sh builds strongSwan 6 once). */
export function needStrongSwan6(): void {
  assert.ok(StrongSwan.availableAt(STRONGSWAN6_PREFIX), `no strongSwan 6 under ${STRONGSWAN6_PREFIX}: run scripts/build-strongswan6.sh (scripts/setup.sh does)`);
  assert.ok(existsSync(join(STRONGSWAN6_PREFIX, 'lib/ipsec/plugins/libstrongswan-save-keys.so')), `the strongSwan 6 under ${STRONGSWAN6_PREFIX} has no save-keys plugin: re-run scripts/build-strongswan6.sh (its cache key changed)`);
}

/** charon 6 in `ns` with save-keys on; `ikeKeyDumps` adds `ike 4` (every derivation's keys in its log, for compareIkeKeys). */
export function startStrongSwan6(scope: Scope, ns: Netns, o: { swanctl: string; mode: SwanDatapath; ikeKeyDumps?: boolean }): Promise<StrongSwan> {
  return StrongSwan.start(scope, ns, { prefix: STRONGSWAN6_PREFIX, mode: o.mode, saveKeys: true, swanctl: o.swanctl, ...(o.ikeKeyDumps ? { logLevels: { ike: 4 } } : {}) });
}

export const hex8 = (n: number): string => n.toString(16).padStart(8, '0');

export type Side = 'kipsec' | 'charon';

/**
 * charon ran the hybrid IKE SA setup we claim (`log`: its log since before the IKE_SA_INIT):
 * one IKE_INTERMEDIATE each way with a KE payload (RFC 9242, RFC 9370 §2.2.1), then it verified
 * our AUTH (`kipsecId`, PSK) over the IntAuth chain.
 */
export function assertHybridSetup(log: string, initiator: Side, kipsecId: string): void {
  const [sent, got] = initiator === 'kipsec' ? ['parsed', 'generating'] : ['generating', 'parsed'];
  assert.match(log, new RegExp(`${sent} IKE_INTERMEDIATE request 1 \\[ KE \\]`), log.slice(-6000));
  assert.match(log, new RegExp(`${got} IKE_INTERMEDIATE response 1 \\[ KE \\]`), log.slice(-6000));
  assert.match(log, new RegExp(`authentication of '${kipsecId.replace(/\./g, '\\.')}' with pre-shared key successful`), 'charon verified our AUTH over the IntAuth chain');
}

/**
 * charon's log of one rekey of the hybrid SAs (`seen`: its log since the rekey started), RFC 9370
 * §2.2.2: CREATE_CHILD_SA {[N(REKEY_SA)], SA, Ni, KE(x25519), [TS]} answered with
 * N(ADDITIONAL_KEY_EXCHANGE), then IKE_FOLLOWUP_KE {KE(ML-KEM-768), N(ADD_KE)} and its KE answer.
 */
export function assertFollowupKe(seen: string, by: Side, what: 'ike' | 'child'): void {
  const [req, resp] = by === 'kipsec' ? ['parsed', 'generating'] : ['generating', 'parsed'];
  const tail = seen.slice(-6000);
  assert.match(seen, new RegExp(`${req} CREATE_CHILD_SA request \\d+ \\[ [^\\]]*${what === 'child' ? 'N\\(REKEY_SA\\)[^\\]]*' : ''}KE[^\\]]* \\]`), tail);
  assert.match(seen, new RegExp(`${resp} CREATE_CHILD_SA response \\d+ \\[ [^\\]]*N\\(ADD_KE\\)[^\\]]* \\]`), tail);
  assert.match(seen, new RegExp(`${req} IKE_FOLLOWUP_KE request \\d+ \\[ [^\\]]*KE[^\\]]* \\]`), tail);
  assert.match(seen, new RegExp(`${resp} IKE_FOLLOWUP_KE response \\d+ \\[ ${what === 'ike' ? 'KE' : '[^\\]]*KE[^\\]]*'} \\]`), tail);
  if (what === 'ike') assert.doesNotMatch(seen, /IKE_SA_INIT|IKE_AUTH/, 'a rekey, not a reauthentication');
}

/** One direction of a Child SA as our side installed it: SPI (8 hex digits), outer addresses, key (hex; AES-GCM: key and salt). */
export interface EspSa { readonly spi: string; readonly src: string; readonly dst: string; readonly key: string }

/**
 * Our ESP SAs against charon's save-keys ESP table, both ways: each of ours is there with the
 * same addresses and key, and charon saved no SA we did not install.
 */
export function compareEspKeys(ours: readonly EspSa[], theirs: readonly SavedEspKeys[]): string[] {
  const notes: string[] = [];
  for (const o of ours) {
    const what = `SA ${o.spi} ${o.src} → ${o.dst}`;
    const line = theirs.find((x) => x.spi === o.spi);
    assert.ok(line, `charon saved no ESP keys for SPI ${o.spi} (${o.src} → ${o.dst}); its table:\n${JSON.stringify(theirs, null, 1)}`);
    assert.deepEqual([line.src, line.dst], [o.src, o.dst], `${what}: charon's addresses`);
    assert.equal(line.encrKey, o.key, `${what}: charon's ESP key (${line.encr}) = ours`);
    notes.push(`${what}: ${line.encr} key ${o.key.slice(0, 16)}… (${o.key.length / 2} bytes) equal`);
  }
  const extra = theirs.filter((x) => !ours.some((o) => o.spi === x.spi));
  assert.deepEqual(extra, [], 'charon saved keys only for SAs we installed');
  return notes;
}

/** Every ESP state in a namespace's kernel with its key, as `ip xfrm state` prints it (AEAD: key and salt). */
export async function kernelEspKeys(ns: Netns): Promise<EspSa[]> {
  const text = (await ns.run('ip', ['xfrm', 'state'])).stdout;
  return text.split(/^(?=src )/m).flatMap((b) => {
    const head = /^src (\S+) dst (\S+)\s+proto esp spi 0x([0-9a-f]+)/.exec(b);
    const key = /^\s*(?:aead|enc) \S+ 0x([0-9a-f]+)/m.exec(b);
    return head && key ? [{ spi: head[3]!.padStart(8, '0'), src: head[1]!, dst: head[2]!, key: key[1]! }] : [];
  });
}

/** Our IKE SAs ("<spi>_i <spi>_r") are exactly those charon's save-keys IKE table names (it writes a line per key derivation). */
export function compareIkeSpis(ours: readonly string[], swan: StrongSwan): string[] {
  const table = swan.savedIkeKeys();
  const theirs = [...new Set(table.map((x) => `${x.spiI}_i ${x.spiR}_r`))];
  assert.deepEqual([...theirs].sort(), [...ours].sort(), `save-keys' IKE SAs = ours:\n${JSON.stringify(table, null, 1)}`);
  return ours.map((o) => `IKE SA ${o}: in save-keys' table (${table.filter((x) => `${x.spiI}_i ${x.spiR}_r` === o).length} derivations, ${table.find((x) => `${x.spiI}_i ${x.spiR}_r` === o)?.encr ?? '?'})`);
}

const SK = [['skD', 'Sk_d'], ['skAi', 'Sk_ai'], ['skAr', 'Sk_ar'], ['skEi', 'Sk_ei'], ['skEr', 'Sk_er'], ['skPi', 'Sk_pi'], ['skPr', 'Sk_pr']] as const;

/**
 * Each IKE SA's final keys from our engine's key log (hex) against charon's: its `ike 4` dumps
 * (all of SK_d..SK_pr, per derivation) and save-keys' table (SK_e/SK_a by SPIs: which SA they belong to).
 */
export function compareIkeKeys(ours: ReadonlyArray<Record<string, string>>, swan: StrongSwan): string[] {
  const logged = swan.loggedIkeKeys();
  const table = swan.savedIkeKeys();
  const notes: string[] = [];
  for (const o of ours) {
    const at = logged.findIndex((d) => d.Sk_d === o['skD']);
    assert.ok(at >= 0, `charon logged no derivation with our SK_d for ${o['spiI']}_i ${o['spiR']}_r (${logged.length} derivations logged)`);
    for (const [ourName, theirName] of SK) assert.equal(logged[at]![theirName] ?? '', o[ourName], `${theirName} of ${o['spiI']}_i ${o['spiR']}_r`);
    const line = table.filter((x) => x.spiI === o['spiI'] && x.spiR === o['spiR']).at(-1);
    assert.ok(line, `charon's save-keys table has no line for ${o['spiI']}_i ${o['spiR']}_r:\n${JSON.stringify(table, null, 1)}`);
    assert.deepEqual([line.skEi, line.skEr], [o['skEi'], o['skEr']], `save-keys SK_ei/SK_er of ${o['spiI']}_i ${o['spiR']}_r`);
    notes.push(`IKE SA ${o['spiI']}_i ${o['spiR']}_r: SK_d..SK_pr equal charon's derivation #${at + 1} of ${logged.length}; save-keys SK_e equal (${line.encr})`);
  }
  return notes;
}
