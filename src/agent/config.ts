// Loading the standalone config (`--config FILE`): a YAML stream of IPsecTunnel objects checked
// with src/api's schema validator (the same one the CRD is generated from), then the checks only
// the agent can make — credential files exist, are private and usable — and finally compiled into
// TunnelConfig. All-or-nothing: a single problem means no config, so nothing is half-applied and a
// reload with a bad file leaves the running config alone.
import { readFileSync, statSync } from 'node:fs';
import { createPrivateKey, createPublicKey, createHash, X509Certificate, type KeyObject } from 'node:crypto';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { parseDurationMs } from '../common/duration.js';
import { ConfigError, errorMessage } from '../common/errors.js';
import { SecretBytes } from '../common/secret.js';
import { formatProblem, parseTunnelConfig, type Problem } from '../api/config.js';
import type { IPsecTunnel } from '../api/types.js';
import { effectiveTunnel } from '../api/profiles/index.js';
import { PROFILE_WEAK_ALLOWED, type Profile } from '../api/transforms.js';
import { parseProposals, type PolicyProposal } from '../ike/policy/index.js';
import { internStrings, newInterned } from './intern.js';
import { pemBlocks } from './peers.js';
import type { TunnelAuth, TunnelConfig } from './tunnel.js';

/**
 * Shortest PSK accepted, in bytes. RFC 7296 §2.15 asks for a key as strong as the negotiated
 * keys; 20 octets is where dictionary-sized secrets stop and cloud gateways' generated PSKs
 * (AWS: 8..64 chars, typically 32) still pass.
 */
export const MIN_PSK_BYTES = 20;

export type LoadResult =
  | { readonly ok: true; readonly tunnels: readonly TunnelConfig[] }
  | { readonly ok: false; readonly problems: readonly Problem[] };

/** Filesystem access, injectable so unit tests need no real files. */
export interface ConfigFs {
  readText(path: string): string;
  readBytes(path: string): Uint8Array;
  /** Permission bits (st_mode & 0o7777). */
  mode(path: string): number;
}

export const nodeFs: ConfigFs = {
  readText: (p) => readFileSync(p, 'utf8'),
  readBytes: (p) => new Uint8Array(readFileSync(p)),
  mode: (p) => statSync(p).mode & 0o7777,
};

/** Load and check FILE; problem paths are prefixed with the file name. */
export function loadConfigFile(file: string, fs: ConfigFs = nodeFs): LoadResult {
  let text: string;
  try { text = fs.readText(file); } catch (e) {
    return { ok: false, problems: [{ path: file, message: `cannot read config: ${errnoText(e)}` }] };
  }
  const res = loadConfigText(text, dirname(resolve(file)), fs);
  if (res.ok) return res;
  return { ok: false, problems: res.problems.map((p) => ({ path: `${file}: ${p.path}`, message: p.message })) };
}

/** Check a config's text; relative credential paths resolve against baseDir. */
export function loadConfigText(text: string, baseDir: string, fs: ConfigFs = nodeFs): LoadResult {
  const parsed = parseTunnelConfig(text, 'standalone');
  const problems: Problem[] = [...parsed.problems];
  if (parsed.tunnels.length === 0 && problems.length === 0) problems.push({ path: '', message: 'no IPsecTunnel objects in the config' });
  const tunnels: TunnelConfig[] = [];
  const seen = newInterned();
  const psks = new Map<string, SecretBytes>(); // one key per PSK file, not one per tunnel naming it
  for (const t of parsed.tunnels.map((x) => internStrings(x, seen))) {
    const out: Problem[] = [];
    const compiled = compileTunnel(t, baseDir, fs, psks, out);
    for (const p of out) problems.push({ path: `${t.metadata.name} ${p.path}`, message: p.message });
    if (compiled) tunnels.push(compiled);
  }
  problems.push(...interfaceClashes(tunnels));
  // Objects the schema refused still get their credential files checked, so one run of the
  // agent reports every problem, not the schema's first and the files' on the next try.
  if (parsed.problems.length > 0) {
    const compiled = new Set(parsed.tunnels.map((t) => t.metadata.name));
    for (const doc of parseAllDocuments(text)) {
      if (doc.errors.length > 0) continue;
      const v = doc.toJS() as { metadata?: { name?: unknown }; spec?: { auth?: { psk?: { file?: unknown }; certificate?: Record<string, unknown> } } } | null;
      const name = typeof v?.metadata?.name === 'string' ? v.metadata.name : undefined;
      if (!v || name === undefined || compiled.has(name)) continue;
      const out: Problem[] = [];
      const pskFile = v.spec?.auth?.psk?.file;
      if (typeof pskFile === 'string') readPsk(isAbsolute(pskFile) ? pskFile : resolve(baseDir, pskFile), 'spec.auth.psk.file', fs, out)?.wipe();
      const c = v.spec?.auth?.certificate;
      if (c && typeof c === 'object') {
        const s = (k: string): string | undefined => (typeof c[k] === 'string' ? c[k] : undefined);
        const files = { ...(s('certFile') ? { certFile: s('certFile')! } : {}), ...(s('keyFile') ? { keyFile: s('keyFile')! } : {}), ...(s('caFile') ? { caFile: s('caFile')! } : {}) };
        readCerts(files, baseDir, 'spec.auth.certificate', fs, out);
      }
      for (const p of out) problems.push({ path: `${name} ${p.path}`, message: p.message });
    }
  }
  // One line per problem: the YAML parser's messages carry a multi-line excerpt; keep its first line.
  return problems.length > 0 ? { ok: false, problems: problems.map(oneLine) } : { ok: true, tunnels };
}

/** Two route-mode tunnels may share neither an if_id (their SAs would mix) nor an interface name. */
function interfaceClashes(tunnels: readonly TunnelConfig[]): Problem[] {
  const out: Problem[] = [];
  const ids = new Map<number, string>(); const names = new Map<string, string>();
  for (const t of tunnels) {
    const x = t.xfrmInterface;
    if (!x) continue;
    const a = ids.get(x.ifId); const b = names.get(x.name);
    if (a !== undefined) out.push({ path: `${t.name} spec.xfrmInterface.ifId`, message: `if_id ${x.ifId} is also tunnel ${a}'s` });
    if (b !== undefined) out.push({ path: `${t.name} spec.xfrmInterface.name`, message: `interface ${x.name} is also tunnel ${b}'s` });
    ids.set(x.ifId, a ?? t.name); names.set(x.name, b ?? t.name);
  }
  return out;
}

function oneLine(p: Problem): Problem {
  const first = (s: string): string => s.split('\n')[0]!.trim();
  return { path: first(p.path), message: first(p.message) };
}

export function formatProblems(problems: readonly Problem[]): string[] { return problems.map(formatProblem); }

function errnoText(e: unknown): string {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code ?? errorMessage(e);
}

function duration(text: string | undefined, fallback: string, path: string, out: Problem[]): number {
  try { return parseDurationMs(text ?? fallback, path); } catch (e) {
    out.push({ path, message: e instanceof ConfigError ? e.message.slice(path.length + 2) : errorMessage(e) });
    return 0;
  }
}

function proposals(texts: readonly string[], proto: 'ike' | 'esp', allowWeak: boolean, path: string, out: Problem[]): PolicyProposal[] {
  const res: PolicyProposal[] = [];
  texts.forEach((t, i) => {
    const p = `${path}[${i}]`;
    try { res.push(...parseProposals([t], proto, { allowWeak, path: p, additionalKeyExchanges: true })); } catch (e) {
      out.push({ path: p, message: e instanceof ConfigError ? e.message.slice(p.length + 2) : errorMessage(e) });
    }
  });
  return res;
}

function readPsk(file: string, path: string, fs: ConfigFs, out: Problem[]): SecretBytes | undefined {
  let mode: number;
  try { mode = fs.mode(file); } catch (e) { out.push({ path, message: `cannot read PSK file ${file}: ${errnoText(e)}` }); return undefined; }
  if ((mode & 0o077) !== 0) {
    out.push({ path, message: `PSK file ${file} has mode 0${mode.toString(8)}; it must not be readable by group or others (chmod 600 ${file})` });
    return undefined;
  }
  let raw: Uint8Array;
  try { raw = fs.readBytes(file); } catch (e) { out.push({ path, message: `cannot read PSK file ${file}: ${errnoText(e)}` }); return undefined; }
  const bytes = decodePsk(raw);
  raw.fill(0);
  if (bytes.length < MIN_PSK_BYTES) {
    bytes.fill(0);
    out.push({ path, message: `PSK in ${file} is ${bytes.length} bytes; at least ${MIN_PSK_BYTES} are required` });
    return undefined;
  }
  return new SecretBytes(bytes);
}

/** strongSwan's PSK forms: `0x<hex>`, `0s<base64>`, else the text itself minus a trailing newline. */
export function decodePsk(raw: Uint8Array): Uint8Array {
  let end = raw.length;
  while (end > 0 && (raw[end - 1] === 0x0a || raw[end - 1] === 0x0d)) end--;
  const body = raw.subarray(0, end);
  const head = Buffer.from(body.subarray(0, 2)).toString('latin1');
  if (head === '0x' && /^[0-9a-fA-F]+$/.test(Buffer.from(body.subarray(2)).toString('latin1')) && (body.length - 2) % 2 === 0)
    return new Uint8Array(Buffer.from(Buffer.from(body.subarray(2)).toString('latin1'), 'hex'));
  if (head === '0s') return new Uint8Array(Buffer.from(Buffer.from(body.subarray(2)).toString('latin1'), 'base64'));
  return body.slice();
}

function readCerts(c: { certFile?: string; keyFile?: string; caFile?: string }, baseDir: string, path: string, fs: ConfigFs, out: Problem[]): TunnelAuth | undefined {
  const files = { certFile: c.certFile, keyFile: c.keyFile, caFile: c.caFile };
  const texts: Partial<Record<keyof typeof files, string>> = {};
  for (const [k, f] of Object.entries(files) as [keyof typeof files, string | undefined][]) {
    if (f === undefined) continue; // the schema already reported it
    const abs = isAbsolute(f) ? f : resolve(baseDir, f);
    try { texts[k] = fs.readText(abs); } catch (e) { out.push({ path: `${path}.${k}`, message: `cannot read ${abs}: ${errnoText(e)}` }); continue; }
    if (k === 'keyFile') {
      const mode = fs.mode(abs);
      if ((mode & 0o077) !== 0) out.push({ path: `${path}.${k}`, message: `private key file ${abs} has mode 0${mode.toString(8)}; it must not be readable by group or others (chmod 600 ${abs})` });
    }
    try {
      if (k === 'keyFile') createPrivateKey(texts[k]); else new X509Certificate(texts[k]);
    } catch {
      out.push({ path: `${path}.${k}`, message: `${abs} is not a usable ${k === 'keyFile' ? 'PEM private key' : 'PEM certificate'}` });
      delete texts[k];
    }
  }
  const { certFile, keyFile, caFile } = files;
  if (texts.certFile && certFile) checkBlocks(texts.certFile, resolve(baseDir, certFile), `${path}.certFile`, out);
  if (texts.caFile && caFile) checkBlocks(texts.caFile, resolve(baseDir, caFile), `${path}.caFile`, out);
  if (texts.certFile && texts.keyFile && certFile && keyFile) checkKeyMatches(texts.certFile, texts.keyFile, resolve(baseDir, certFile), resolve(baseDir, keyFile), path, out);
  if (!texts.certFile || !texts.keyFile || !texts.caFile || !certFile || !keyFile || !caFile) return undefined;
  return {
    kind: 'certificate', certPem: texts.certFile, keyPem: new SecretBytes(new Uint8Array(Buffer.from(texts.keyFile))), caPem: texts.caFile,
    certFile: resolve(baseDir, certFile), keyFile: resolve(baseDir, keyFile), caFile: resolve(baseDir, caFile),
  };
}

/** Every PEM block of a certificate file must be a certificate (a chain file has several). */
function checkBlocks(text: string, abs: string, path: string, out: Problem[]): void {
  const blocks = pemBlocks(text);
  blocks.forEach((der, i) => {
    try { new X509Certificate(der); } catch { out.push({ path, message: `certificate ${i + 1} of ${blocks.length} in ${abs} does not parse` }); }
  });
}

function spki(k: KeyObject): string { return k.export({ type: 'spki', format: 'der' }).toString('hex'); }

/**
 * The key must belong to the first certificate of certFile: that one goes in the first CERT
 * payload and must verify our AUTH signature (RFC 7296 §3.6, §2.15); the rest are intermediates.
 * Otherwise the peer answers AUTHENTICATION_FAILED and nothing says why, so say it here.
 */
function checkKeyMatches(certText: string, keyText: string, certAbs: string, keyAbs: string, path: string, out: Problem[]): void {
  let want: string;
  try { want = spki(createPublicKey(keyText)); } catch { return; } // already reported as unusable
  const keys = pemBlocks(certText).map((der) => { try { return spki(new X509Certificate(der).publicKey); } catch { return ''; } });
  if (keys[0] === want) return;
  const at = keys.indexOf(want);
  out.push(at > 0
    ? { path: `${path}.certFile`, message: `the certificate for ${keyAbs} is number ${at + 1} of ${keys.length} in ${certAbs}; put the end-entity certificate first, then its intermediates` }
    : { path: `${path}.keyFile`, message: `${keyAbs} is not the private key of the certificate in ${certAbs}` });
}

function compileTunnel(t: IPsecTunnel, baseDir: string, fs: ConfigFs, psks: Map<string, SecretBytes>, out: Problem[]): TunnelConfig | undefined {
  const s = t.spec;
  // Explicit fields over the profile's (strongswan without one): what this agent runs with.
  const e = effectiveTunnel(s);
  const profile: Profile = e.profile;
  const allowWeak = PROFILE_WEAK_ALLOWED[profile].length > 0;
  const before = out.length;
  let auth: TunnelAuth | undefined;
  if (s.auth.psk?.file !== undefined) {
    const f = isAbsolute(s.auth.psk.file) ? s.auth.psk.file : resolve(baseDir, s.auth.psk.file);
    const psk = psks.get(f) ?? readPsk(f, 'spec.auth.psk.file', fs, out);
    if (psk) psks.set(f, psk);
    if (psk) auth = { kind: 'psk', psk, file: f };
  } else if (s.auth.certificate) {
    auth = readCerts(s.auth.certificate, baseDir, 'spec.auth.certificate', fs, out);
  }
  const ikeText = e.ike.proposals;
  const espText = e.esp.proposals;
  // A path says where the value came from, so an error in a profile's value names the profile.
  const from = (explicit: unknown, path: string): string => (explicit !== undefined ? path : `${path} (from profile ${profile})`);
  const ikeProposals = proposals(ikeText, 'ike', allowWeak, from(s.ike?.proposals, 'spec.ike.proposals'), out);
  const espProposals = proposals(espText, 'esp', allowWeak, from(s.esp?.proposals, 'spec.esp.proposals'), out);
  const ikeRekeyMs = duration(e.ike.rekeyTime, '4h', from(s.ike?.rekeyTime, 'spec.ike.rekeyTime'), out);
  const espRekeyMs = duration(e.esp.rekeyTime, '1h', from(s.esp?.rekeyTime, 'spec.esp.rekeyTime'), out);
  const espLifeMs = duration(e.esp.lifeTime, '66m', from(s.esp?.lifeTime, 'spec.esp.lifeTime'), out);
  const dpdIntervalMs = duration(e.dpd.interval, '30s', from(s.dpd?.interval, 'spec.dpd.interval'), out);
  const dpdTimeoutMs = duration(e.dpd.timeout, '150s', from(s.dpd?.timeout, 'spec.dpd.timeout'), out);
  // The schema compares explicit values only; a profile's value mixed with an explicit one is checked here.
  if (espLifeMs <= espRekeyMs) out.push({ path: from(s.esp?.lifeTime, 'spec.esp.lifeTime'), message: `must be longer than rekeyTime (${e.esp.rekeyTime}); the SA must outlive its rekey` });
  if (dpdTimeoutMs >= espRekeyMs) out.push({ path: from(s.dpd?.timeout, 'spec.dpd.timeout'), message: `must be shorter than esp.rekeyTime (${e.esp.rekeyTime})` });
  if (dpdTimeoutMs <= dpdIntervalMs) out.push({ path: from(s.dpd?.timeout, 'spec.dpd.timeout'), message: `must be longer than interval (${e.dpd.interval})` });
  if (e.mode === 'route' && e.xfrmInterface === undefined) out.push({ path: 'spec.xfrmInterface', message: `route mode${s.mode === undefined ? ` (profile ${profile})` : ''} needs xfrmInterface (ifId, insideAddress); or set mode: policy` });
  // The engine's on-demand trap policies carry no if_id yet: with 0.0.0.0/0 selectors they would
  // catch every packet of the host, not just what is routed into the interface.
  if (e.mode === 'route' && e.startAction === 'on-demand') out.push({ path: from(s.startAction, 'spec.startAction'), message: 'on-demand is not available with route mode yet (its trap policies would match all traffic); use initiate or respond' });
  const localAddress = s.local.address;
  if (localAddress === undefined) out.push({ path: 'spec.local.address', message: 'Required value' });
  if (out.length > before || !auth || localAddress === undefined) return undefined;
  const core = {
    name: t.metadata.name, profile,
    localAddress, localId: s.local.id ?? localAddress, localSubnets: s.local.subnets ?? [],
    remoteAddress: s.remote.address, remoteId: s.remote.id, remoteSubnets: s.remote.subnets,
    localTs: e.localTs, remoteTs: e.remoteTs,
    ikeProposalText: ikeText, espProposalText: espText, ikeProposals, espProposals,
    ikeRekeyMs, espRekeyMs, espLifeMs, dpdIntervalMs, dpdTimeoutMs,
    espLifePackets: e.esp.lifePackets === undefined ? undefined : BigInt(e.esp.lifePackets),
    espLifeBytes: e.esp.lifeBytes === undefined ? undefined : BigInt(e.esp.lifeBytes),
    dpdAction: e.dpd.action, startAction: e.startAction,
    mode: e.mode, xfrmIfId: e.mode === 'route' ? e.xfrmInterface?.ifId : undefined,
    xfrmInterface: e.mode === 'route' ? e.xfrmInterface : undefined,
    // Route mode routes over its interface (xfrm-interfaces.ts); the table-220 routes of policy
    // mode would send every destination of the 0.0.0.0/0 selectors to the peer's next hop.
    installRoutes: (s.installRoutes ?? true) && e.mode === 'policy', interfaceRoutes: (s.installRoutes ?? true) && e.mode === 'route', allowWeak,
  } as const;
  // The digest covers credentials through a hash only, so it can be logged or compared freely.
  const credDigest = auth.kind === 'psk' ? createHash('sha256').update(auth.psk.expose()).digest('hex')
    : createHash('sha256').update(auth.certPem).update(auth.keyPem.expose()).update(auth.caPem).digest('hex');
  const digest = createHash('sha256').update(JSON.stringify({ ...core, ikeProposals: undefined, espProposals: undefined }, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))).update(credDigest).digest().toString('hex', 0, 8); // flat, not a slice of a 64-digit string
  return { ...core, auth, digest };
}
