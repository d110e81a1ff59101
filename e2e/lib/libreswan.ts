// The Libreswan lane: a real pluto (Libreswan 5, built by scripts/build-libreswan.sh into a cached
// private prefix, since Debian 12's 4.10 failed to install its own Child SAs and its package
// conflicts with strongSwan's) inside a network namespace, configured from a generated ipsec.conf
// and ipsec.secrets, with its own NSS database, log and control socket in a per-test scratch
// folder, and driven with addconn and whack over that socket. pluto programs kernel XFRM, so SAs
// only install where the kernel has ESP (the VM lane); IKE itself runs anywhere.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { scratchDir } from '../../test/lib/tmp.js';
import type { Netns, RunResult, Scope } from './netns.js';

/** The version scripts/build-libreswan.sh builds by default (trixie's). */
export const LIBRESWAN_VERSION = process.env['LIBRESWAN_VERSION'] ?? '5.2';

/** The build's prefix: KIPSEC_LIBRESWAN_DIR, else the build script's cache path for the version. */
export function libreswanPrefix(): string {
  const given = process.env['KIPSEC_LIBRESWAN_DIR'];
  if (given) return given;
  const cache = process.env['KIPSEC_LIBRESWAN_CACHE']
    ?? join(process.env['XDG_CACHE_HOME'] ?? join(homedir(), '.cache'), 'kipsec-libreswan');
  return join(cache, LIBRESWAN_VERSION);
}

/** One Child SA as `whack --showstates` prints it. SPIs are 8 hex digits, Libreswan's in/out view. */
export interface LswChild {
  serial: number; name: string; state: string; ikeSerial: number;
  spiIn: string; spiOut: string;
  /** As pluto prints them, e.g. `252B`, `1KB`; empty when the kernel gave none. */
  bytesIn: string; bytesOut: string;
}

/** One IKE or Child SA state line of `whack --showstates`. */
export interface LswState { serial: number; name: string; state: string }

export interface LswIdentity {
  /** NSS nickname, what a conn's `leftcert=` names. */
  readonly nickname: string;
  readonly certPem: string;
  readonly keyPem: string;
}

export interface LibreswanOptions {
  /** The conn sections of ipsec.conf (see lswConf). */
  readonly conns: string;
  readonly secrets?: string;
  /** Extra lines for `config setup`. */
  readonly setup?: string;
  /** plutodebug (default `base`: enough to see each exchange's payloads and notifies). */
  readonly debug?: string;
  /** CA certificates (PEM) trusted for peer authentication (`certutil -t CT,,`). */
  readonly trust?: readonly { readonly nickname: string; readonly pem: string }[];
  /** Our own certificates with private keys, imported through a PKCS#12 file (pk12util). */
  readonly identities?: readonly LswIdentity[];
}

// whack returns as soon as pluto has answered; an initiate waits for the exchange (bounded here).
const P12_PASS = 'kipsec-e2e';

export class Libreswan {
  readonly dir: string;
  readonly ns: Netns;
  readonly prefix: string;
  private pid = 0;

  private constructor(ns: Netns, dir: string, prefix: string) { this.ns = ns; this.dir = dir; this.prefix = prefix; }

  /** The built pluto, whack and addconn, and NSS's certutil/pk12util (libnss3-tools). */
  static available(prefix = libreswanPrefix()): boolean {
    return ['pluto', 'whack', 'addconn'].every((p) => existsSync(join(prefix, 'libexec/ipsec', p)))
      && existsSync('/usr/bin/certutil') && existsSync('/usr/bin/pk12util');
  }

  private get exec(): string { return join(this.prefix, 'libexec/ipsec'); }
  get ctl(): string { return join(this.dir, 'run/pluto.ctl'); }
  get conf(): string { return join(this.dir, 'ipsec.conf'); }
  private get nssDb(): string { return `sql:${join(this.dir, 'nss')}`; }

  static async start(scope: Scope | null, ns: Netns, opts: LibreswanOptions): Promise<Libreswan> {
    const prefix = libreswanPrefix();
    if (!Libreswan.available(prefix)) throw new Error(`Libreswan is not built at ${prefix} (run: bash scripts/build-libreswan.sh; NSS tools: apt-get install libnss3-tools)`);
    const s = new Libreswan(ns, scratchDir('kipsec-lsw-'), prefix);
    scope?.after(() => s.stop());
    for (const sub of ['nss', 'run', 'certs']) mkdirSync(join(s.dir, sub), { recursive: true });
    s.initNss(opts);
    s.writeConf(opts.conns, opts.setup, opts.debug);
    writeFileSync(join(s.dir, 'ipsec.secrets'), opts.secrets ?? '', { mode: 0o600 });
    await s.launch();
    return s;
  }

  /** Start pluto on this folder's config, NSS db and secrets, wait for its control socket, add every conn. */
  private async launch(): Promise<void> {
    const prefix = this.prefix;
    // PATH: pluto runs its updown as `ipsec _updown`; strongSwan's /usr/sbin/ipsec must not answer.
    const env = { ...process.env, PATH: `${join(prefix, 'sbin')}:${process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin'}` };
    const child = this.ns.spawn(join(this.exec, 'pluto'), ['--nofork', '--config', this.conf, '--logfile', join(this.dir, 'pluto.log'),
      '--rundir', join(this.dir, 'run'), '--dumpdir', join(this.dir, 'run'), '--nssdir', join(this.dir, 'nss'),
      '--secretsfile', join(this.dir, 'ipsec.secrets'), '--ipsecdir', this.dir], { env, stdio: ['ignore', 'ignore', 'ignore'] });
    // `ip netns exec` execs pluto (--nofork), so this pid is pluto's own.
    this.pid = child.pid ?? 0;
    // Under the VM's TCG emulation with the build read over 9p, NSS and pluto start slowly.
    const deadline = Date.now() + (process.env['KIPSEC_IN_VM'] ? 60_000 : 15_000);
    while (!existsSync(this.ctl)) {
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`pluto did not start in ${this.ns.name} (exit ${child.exitCode}):\n${this.log()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    await this.addconn(['--autoall']);
  }

  /**
   * A pluto crash and restart: SIGKILL (no Deletes; its kernel SAs and policies stay), the stale
   * control socket and lock file removed and the kernel's IPsec state flushed as `ipsec start` does
   * when no pluto runs (_stackmanager start_xfrm: "in case pluto crashed"), then the same config
   * started again. pluto truncates its --logfile, so the old log is kept as pluto.log.1.
   */
  async restart(): Promise<void> {
    if (this.pid) { try { process.kill(this.pid, 'SIGKILL'); } catch { /* gone */ } }
    for (let i = 0; i < 50 && this.pid && alive(this.pid); i++) await new Promise((r) => setTimeout(r, 100));
    this.pid = 0;
    for (const f of ['pluto.ctl', 'pluto.pid']) rmSync(join(this.dir, 'run', f), { force: true });
    if (existsSync(join(this.dir, 'pluto.log'))) renameSync(join(this.dir, 'pluto.log'), join(this.dir, 'pluto.log.1'));
    await this.ns.run('ip', ['xfrm', 'state', 'flush']);
    await this.ns.run('ip', ['xfrm', 'policy', 'flush']);
    await this.launch();
  }

  private initNss(opts: LibreswanOptions): void {
    // The NSS tools run outside the namespace: they only touch files.
    const run = (cmd: string, args: readonly string[]): void => {
      try { execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 }); } catch (e) {
        const err = e as { stderr?: Buffer; stdout?: Buffer };
        throw new Error(`${cmd} ${args.join(' ')}: ${err.stderr?.toString() ?? ''}${err.stdout?.toString() ?? ''}`, { cause: e });
      }
    };
    run('certutil', ['-N', '-d', this.nssDb, '--empty-password']);
    for (const ca of opts.trust ?? []) {
      const f = join(this.dir, 'certs', `${ca.nickname}.pem`);
      writeFileSync(f, ca.pem);
      run('certutil', ['-A', '-d', this.nssDb, '-n', ca.nickname, '-t', 'CT,,', '-a', '-i', f]);
    }
    for (const id of opts.identities ?? []) {
      const base = join(this.dir, 'certs', id.nickname);
      writeFileSync(`${base}.crt`, id.certPem);
      writeFileSync(`${base}.key`, id.keyPem, { mode: 0o600 });
      run('openssl', ['pkcs12', '-export', '-in', `${base}.crt`, '-inkey', `${base}.key`, '-name', id.nickname,
        '-passout', `pass:${P12_PASS}`, '-out', `${base}.p12`]);
      run('pk12util', ['-i', `${base}.p12`, '-d', this.nssDb, '-W', P12_PASS]);
    }
  }

  private writeConf(conns: string, setup = '', debug = 'base'): void {
    writeFileSync(this.conf, `config setup\n  plutodebug=${debug}\n${setup ? `  ${setup.trim()}\n` : ''}\n${conns}`);
  }

  /** whack against this pluto's control socket. */
  whack(args: readonly string[], check = true, timeoutMs = 30_000): Promise<RunResult> {
    return this.ns.run(join(this.exec, 'whack'), ['--ctlsocket', this.ctl, ...args], { check, timeoutMs });
  }

  /** addconn (what `ipsec add` runs) with this pluto's ipsec.conf, e.g. ['--autoall'] or a conn name. */
  addconn(args: readonly string[], check = true): Promise<RunResult> {
    return this.ns.run(join(this.exec, 'addconn'), ['--config', this.conf, '--ctlsocket', this.ctl, ...args], { check, timeoutMs: 60_000 });
  }

  /** Replace the conns (and secrets), reread the secrets and (re)add the named conns. */
  async reconfigure(conns: string, names: readonly string[], secrets?: string): Promise<void> {
    this.writeConf(conns);
    if (secrets !== undefined) {
      writeFileSync(join(this.dir, 'ipsec.secrets'), secrets, { mode: 0o600 });
      await this.whack(['--rereadsecrets']);
    }
    for (const n of names) await this.addconn([n]);
  }

  /** `ipsec up NAME`: whack waits for the IKE SA and first Child SA (exit 0) or their failure. */
  initiate(name: string, timeoutSec = 30): Promise<RunResult> {
    return this.whack(['--name', name, '--initiate'], false, timeoutSec * 1000);
  }

  /** `ipsec down NAME`: deletes its SAs (Delete notifies to the peer). */
  terminate(name: string): Promise<RunResult> { return this.whack(['--name', name, '--terminate'], false); }

  async showStates(): Promise<string> { return (await this.whack(['--showstates'])).stdout; }
  async trafficStatus(): Promise<string> { return (await this.whack(['--trafficstatus'])).stdout; }
  async status(): Promise<string> { return (await this.whack(['--status'])).stdout; }

  /** Every IKE and Child SA state, e.g. { serial: 1, name: 't', state: 'ESTABLISHED_IKE_SA' }. */
  async states(): Promise<LswState[]> {
    return parseStates(await this.showStates());
  }

  /** Established Child SAs with SPIs: Libreswan prints the outbound SAID (@peer) first, then the inbound (@us). */
  async childSas(): Promise<LswChild[]> {
    return parseChildSas(await this.showStates());
  }

  log(): string {
    try { return readFileSync(join(this.dir, 'pluto.log'), 'utf8'); } catch { return '(no pluto.log)'; }
  }

  /** The log without plutodebug's `| ` lines: exchanges, notifies, SA installs, errors. */
  events(): string {
    return this.log().split('\n').filter((l) => !/^\w{3} [ \d]\d [\d:.]+: \|/.test(l)).join('\n');
  }

  /** SIGTERM (pluto deletes its SAs and tells the peer), then SIGKILL if it lingers. */
  async stop(): Promise<void> {
    if (this.pid) { try { process.kill(this.pid, 'SIGTERM'); } catch { /* gone */ } }
    for (let i = 0; i < 50 && this.pid && alive(this.pid); i++) await new Promise((r) => setTimeout(r, 100));
    if (this.pid) { try { process.kill(this.pid, 'SIGKILL'); } catch { /* gone */ } }
    this.pid = 0;
  }
}

function alive(pid: number): boolean { try { process.kill(pid, 0); return true; } catch { return false; } }

// `#N: "name"[inst] addr:500 ESTABLISHED_CHILD_SA (story); …; IKE SA #M; …` (5.x dropped the STATE_V2_ prefix).
const STATE_LINE = /^#(\d+): "([^"]+)"[^\n]*?:\d+(?:\(tcp\))? ([A-Z][A-Z0-9_]+) \([^\n]*?(?:IKE SA #(\d+)[^\n]*)?$/gm;

/** State lines of `whack --showstates`. */
export function parseStates(text: string): LswState[] {
  return [...text.matchAll(STATE_LINE)]
    .map((m) => ({ serial: Number(m[1]), name: m[2]!, state: m[3]! }));
}

/** Child SA lines joined with their state lines (for the parent IKE SA number). */
export function parseChildSas(text: string): LswChild[] {
  const states = new Map<number, { state: string; ike: number }>();
  for (const m of text.matchAll(STATE_LINE)) states.set(Number(m[1]), { state: m[3]!, ike: m[4] ? Number(m[4]) : 0 });
  const out: LswChild[] = [];
  const re = /^#(\d+): "([^"]+)"\S* [^\n]*?\besp\.([0-9a-f]+)@\S+ esp\.([0-9a-f]+)@\S+[^\n]*?Traffic:(?: ESPin=(\S+))?(?: ESPout=(\S+))?/gm;
  for (const m of text.matchAll(re)) {
    const serial = Number(m[1]);
    const st = states.get(serial);
    out.push({ serial, name: m[2]!, state: st?.state ?? '', ikeSerial: st?.ike ?? 0,
      spiOut: m[3]!.padStart(8, '0'), spiIn: m[4]!.padStart(8, '0'), bytesIn: m[5] ?? '', bytesOut: m[6] ?? '' });
  }
  return out;
}

/** One conn for lswConf. Proposals are in Libreswan's syntax, e.g. ike `aes_gcm256-sha2_384-dh31`, esp `aes_gcm256`. */
export interface LswConn {
  readonly name: string;
  readonly local: string;
  readonly remote: string;
  readonly localSubnet: string;
  readonly remoteSubnet: string;
  readonly ike: string;
  readonly esp: string;
  /** PSK, or ECDSA certificates (RFC 7427): our NSS nickname and the identities on both sides. */
  readonly auth: { readonly psk: string } | { readonly cert: string; readonly localId: string; readonly remoteId: string };
  /** add: wait for the peer or `initiate()`; start: initiate when loaded. */
  readonly auto?: 'add' | 'start' | 'ondemand';
  /** leftsourceip: pluto's updown then routes the remote subnet from this address (replies need it). */
  readonly sourceIp?: string;
  /** Extra `key=value` lines for the conn. */
  readonly extra?: readonly string[];
}

/** ipsec.conf conn sections and ipsec.secrets for a set of conns ("left" is always Libreswan). */
export function lswConf(conns: readonly LswConn[]): { conns: string; secrets: string } {
  const text = conns.map((c) => {
    const lines = [
      `left=${c.local}`, `right=${c.remote}`, `leftsubnet=${c.localSubnet}`, `rightsubnet=${c.remoteSubnet}`,
      `ike=${c.ike}`, `esp=${c.esp}`, `auto=${c.auto ?? 'add'}`,
    ];
    if ('psk' in c.auth) lines.push('authby=secret', `leftid=${c.local}`, `rightid=${c.remote}`);
    else lines.push('authby=ecdsa', `leftcert=${c.auth.cert}`, `leftid=${c.auth.localId}`, `rightid=${c.auth.remoteId}`, 'leftsendcert=always');
    if (c.sourceIp) lines.push(`leftsourceip=${c.sourceIp}`);
    lines.push(...(c.extra ?? []));
    return `conn ${c.name}\n${lines.map((l) => `  ${l}`).join('\n')}\n`;
  }).join('\n');
  const seen = new Set<string>();
  const secrets: string[] = [];
  for (const c of conns) {
    if (!('psk' in c.auth)) continue;
    const k = `${c.local} ${c.remote}`;
    if (seen.has(k)) continue;
    seen.add(k);
    secrets.push(`${k} : PSK "${c.auth.psk}"`);
  }
  return { conns: text, secrets: secrets.length ? `${secrets.join('\n')}\n` : '' };
}
