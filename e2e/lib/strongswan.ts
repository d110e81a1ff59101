// The strongSwan lane: a real charon (Debian's strongSwan 5.9) inside a network namespace,
// configured from a generated swanctl.conf and driven with swanctl over its own VICI socket.
// Two data paths: 'kernel' programs kernel XFRM (needs ESP: the VM lane), 'libipsec' does ESP in
// userspace over a TUN device and always encapsulates in UDP 4500, so it runs on the host kernel.
// Each charon gets a private /run (its pid file path is compiled in), so several run at once.
// `prefix` runs another build instead, e.g. strongSwan 6 from scripts/build-strongswan6.sh.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import type { Netns, RunResult, Scope } from './netns.js';

export type SwanDatapath = 'kernel' | 'libipsec';

/** One Child SA as `swanctl --list-sas` prints it (SPIs in hex, strongSwan's in/out view). */
export interface SwanChild {
  name: string; state: string; mode: string; suite: string;
  spiIn: string; bytesIn: number; packetsIn: number;
  spiOut: string; bytesOut: number; packetsOut: number;
}

/** One IKE SA as `swanctl --list-sas` prints it, with the text of its Child SAs (`block`). */
export interface SwanIke { name: string; state: string; spiI: string; spiR: string; block: string }

export interface SwanOptions {
  /** Full swanctl.conf text (connections + secrets). */
  swanctl: string;
  mode?: SwanDatapath;
  /** Extra files relative to the swanctl dir, e.g. { 'x509ca/ca.pem': pem, 'private/key.pem': pem }. */
  files?: Readonly<Record<string, string | Uint8Array>>;
  /** charon log levels per subsystem; default ike=2 cfg=2 (4 dumps keys, for golden captures). */
  logLevels?: Readonly<Record<string, number>>;
  /** Extra lines inside charon { } of strongswan.conf. */
  charonExtra?: string;
  /** Prefix each log line with the connection name and IKE SA number (`<conn|1>`), to tell tunnels apart. */
  logIkeName?: boolean;
  /**
   * Install prefix of another strongSwan build (libexec/ipsec/charon, sbin/swanctl), e.g. the
   * strongSwan 6 of scripts/build-strongswan6.sh; default: Debian's 5.9 under /usr.
   */
  prefix?: string;
  /**
   * Load the save-keys plugin (a scripts/build-strongswan6.sh build has it): charon writes every
   * IKE SA's SK_e/SK_a and every Child SA's ESP keys, in Wireshark's formats, under `<dir>/keys`
   * (read them with savedIkeKeys / savedEspKeys).
   */
  saveKeys?: boolean;
}

/** One line of save-keys' `ikev2_decryption_table`: an IKE SA's SPIs and SK_e/SK_a (hex, lower case). */
export interface SavedIkeKeys { spiI: string; spiR: string; skEi: string; skEr: string; encr: string; skAi: string; skAr: string; integ: string }

/** One key derivation as charon logs it at `ike 4` (hex, lower case), SKEYSEED first. */
export type LoggedIkeKeys = Partial<Record<'SKEYSEED' | 'Sk_d' | 'Sk_ai' | 'Sk_ar' | 'Sk_ei' | 'Sk_er' | 'Sk_pi' | 'Sk_pr', string>>;

/** One line of save-keys' `esp_sa`: one direction of a Child SA (SPI 8 hex digits, keys hex, lower case). */
export interface SavedEspKeys { src: string; dst: string; spi: string; encr: string; encrKey: string; integ: string; integKey: string }

/** Plugins a scripts/build-strongswan6.sh build has (openssl does the crypto, ml does ML-KEM). */
const PLUGINS6 = 'random nonce openssl ml pem pkcs1 pkcs8 x509 revocation constraints pubkey kdf socket-default vici updown';

const PLUGINS = 'random nonce openssl pem pkcs1 pkcs8 x509 revocation constraints pubkey curve25519 gmp hmac gcm aes sha1 sha2 kdf chapoly socket-default vici updown';

export class StrongSwan {
  readonly dir: string;
  readonly ns: Netns;
  private pid = 0;
  private readonly swanctlBin: string;

  private constructor(ns: Netns, dir: string, swanctlBin: string) { this.ns = ns; this.dir = dir; this.swanctlBin = swanctlBin; }

  /** charon, swanctl and the plugins PLUGINS names that other packages ship (openssl: ECP, RSA-PSS; gcm). */
  static available(): boolean {
    return existsSync('/usr/lib/ipsec/charon') && existsSync('/usr/sbin/swanctl')
      && existsSync('/usr/lib/ipsec/plugins/libstrongswan-openssl.so') && existsSync('/usr/lib/ipsec/plugins/libstrongswan-gcm.so');
  }

  /** A strongSwan build under `prefix` (scripts/build-strongswan6.sh prints it) with charon, swanctl and the ml plugin. */
  static availableAt(prefix: string): boolean {
    return existsSync(join(prefix, 'libexec/ipsec/charon')) && existsSync(join(prefix, 'sbin/swanctl')) && existsSync(join(prefix, 'lib/ipsec/plugins/libstrongswan-ml.so'));
  }

  static async start(scope: Scope | null, ns: Netns, opts: SwanOptions): Promise<StrongSwan> {
    const prefix = opts.prefix;
    if (prefix !== undefined && !StrongSwan.availableAt(prefix)) throw new Error(`no strongSwan build under ${prefix} (run scripts/build-strongswan6.sh)`);
    if (prefix === undefined && !StrongSwan.available()) throw new Error('strongSwan is not installed (apt-get install strongswan-charon strongswan-swanctl libcharon-extra-plugins libstrongswan-standard-plugins libstrongswan-extra-plugins)');
    const charon = prefix === undefined ? '/usr/lib/ipsec/charon' : join(prefix, 'libexec/ipsec/charon');
    const dir = mkdtempSync(join(tmpdir(), 'kipsec-swan-'));
    const s = new StrongSwan(ns, dir, prefix === undefined ? 'swanctl' : join(prefix, 'sbin/swanctl'));
    scope?.after(() => s.stop());
    for (const sub of ['x509', 'x509ca', 'private', 'ecdsa', 'rsa', 'pkcs8']) mkdirSync(join(dir, sub), { recursive: true });
    for (const [rel, content] of Object.entries(opts.files ?? {})) {
      mkdirSync(dirname(join(dir, rel)), { recursive: true });
      writeFileSync(join(dir, rel), content, { mode: 0o600 });
    }
    writeFileSync(join(dir, 'swanctl.conf'), opts.swanctl, { mode: 0o600 });
    const mode = opts.mode ?? 'libipsec';
    const kplug = mode === 'libipsec' ? 'kernel-libipsec kernel-netlink' : 'kernel-netlink';
    const levels = { default: 1, ike: 2, cfg: 2, ...opts.logLevels };
    // flush_line: line-buffered, so log() read in the middle of a test shows all charon did so far
    // (block buffering hid the last lines, e.g. the AUTH verification a test was looking for).
    const saveKeys = opts.saveKeys ? ` save-keys { esp = yes\n ike = yes\n wireshark_keys = ${dir}/keys }` : '';
    if (opts.saveKeys) mkdirSync(join(dir, 'keys'));
    const levelLines = Object.entries(levels).map(([k, v]) => `${k} = ${v}`).join('\n        ');
    writeFileSync(join(dir, 'strongswan.conf'), `charon {
  load = ${prefix === undefined ? PLUGINS : PLUGINS6} ${kplug}${opts.saveKeys ? ' save-keys' : ''}
  filelog {
    log {
      path = ${dir}/charon.log
      time_format = %H:%M:%S
      flush_line = yes
      ike_name = ${opts.logIkeName ? 'yes' : 'no'}
      ${levelLines}
    }
  }
  plugins {
    vici { socket = unix://${dir}/charon.vici }
   ${saveKeys}
  }
  ${opts.charonExtra ?? ''}
}
`);
    const child = ns.spawn('unshare', ['-m', 'sh', '-c', 'mount -t tmpfs tmpfs /run && exec "$0"', charon], {
      env: { ...process.env, STRONGSWAN_CONF: join(dir, 'strongswan.conf') },
      stdio: ['ignore', 'ignore', 'ignore'],
    });
    s.pid = child.pid ?? 0;
    // Inside the kernel VM (TCG emulation) charon alone takes ~7 s to open its VICI socket.
    const deadline = Date.now() + (process.env['KIPSEC_IN_VM'] ? 60_000 : 10_000);
    while (!existsSync(join(dir, 'charon.vici'))) {
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`charon did not start in ${ns.name}:\n${s.log()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    await s.load();
    return s;
  }

  /** swanctl against this charon, with this charon's swanctl dir for credentials. */
  swanctl(args: readonly string[], check = true, timeoutMs = 30_000): Promise<RunResult> {
    return this.ns.run('env', [`SWANCTL_DIR=${this.dir}`, this.swanctlBin, ...args, '--uri', `unix://${this.dir}/charon.vici`], { check, timeoutMs });
  }

  async load(): Promise<void> {
    await this.swanctl(['--load-all', '--noprompt', '--file', join(this.dir, 'swanctl.conf')]);
  }

  /** Replace swanctl.conf and reload it. */
  async reconfigure(swanctl: string): Promise<void> {
    writeFileSync(join(this.dir, 'swanctl.conf'), swanctl, { mode: 0o600 });
    await this.load();
  }

  async initiate(child: string, timeoutSec = 20): Promise<RunResult> {
    // swanctl's own --timeout must end first, or the 30 s default bound kills it with no output.
    return this.swanctl(['--initiate', '--child', child, '--timeout', String(timeoutSec)], false, (timeoutSec + 30) * 1000);
  }

  async listSas(): Promise<string> { return (await this.swanctl(['--list-sas'])).stdout; }

  /** IKE SA states by connection name, e.g. { t: 'ESTABLISHED' }. */
  async ikeStates(): Promise<Record<string, string>> {
    const out: Record<string, string> = {};
    for (const m of (await this.listSas()).matchAll(/^(\S+): #\d+, (\w+), IKEv2/gm)) out[m[1]!] = m[2]!;
    return out;
  }

  /** IKE SAs with their SPIs (16 hex digits each) and the lines below each (its Child SAs). */
  async ikeSas(): Promise<SwanIke[]> {
    const text = await this.listSas();
    const heads = [...text.matchAll(/^(\S+): #\d+, (\w+), IKEv2, ([0-9a-f]{16})_i\*? ([0-9a-f]{16})_r\*?/gm)];
    return heads.map((m, i) => ({ name: m[1]!, state: m[2]!, spiI: m[3]!, spiR: m[4]!, block: text.slice(m.index, heads[i + 1]?.index ?? text.length) }));
  }

  /** Child SAs: name, state and SPIs (hex, as strongSwan prints them: in first, out second). */
  async childSas(): Promise<SwanChild[]> {
    const res: SwanChild[] = [];
    const text = await this.listSas();
    const re = /^\s+(\S+): #\d+, reqid \d+, (\w+), ([\w-]+), ESP:(\S+)[^\n]*\n\s+installed[^\n]*\n\s+in\s+([0-9a-f]{8})[^,]*,\s+(\d+) bytes,\s+(\d+) packets[^\n]*\n\s+out\s+([0-9a-f]{8})[^,]*,\s+(\d+) bytes,\s+(\d+) packets/gm;
    for (const m of text.matchAll(re))
      res.push({ name: m[1]!, state: m[2]!, mode: m[3]!, suite: m[4]!, spiIn: m[5]!, bytesIn: Number(m[6]), packetsIn: Number(m[7]), spiOut: m[8]!, bytesOut: Number(m[9]), packetsOut: Number(m[10]) });
    return res;
  }

  /** save-keys' IKE table (saveKeys): one line per key derivation, oldest first (an SA's last line holds its keys). */
  savedIkeKeys(): SavedIkeKeys[] {
    return csvLines(join(this.dir, 'keys', 'ikev2_decryption_table')).flatMap((f) => (f.length < 8 ? [] : [{
      spiI: bare(f[0]!), spiR: bare(f[1]!), skEi: bare(f[2]!), skEr: bare(f[3]!), encr: f[4]!, skAi: bare(f[5]!), skAr: bare(f[6]!), integ: f[7]!,
    }]));
  }

  /**
   * Every IKE key derivation in charon's log (needs logLevels { ike: 4 }), oldest first: its
   * `%B` dumps "Sk_d secret => 48 bytes @ 0x…" then "   0: AA BB …" lines, as the golden
   * captures read them (test/golden/ike/pcap-to-json.ts).
   */
  loggedIkeKeys(): LoggedIkeKeys[] {
    const lines = this.log().split('\n');
    const out: LoggedIkeKeys[] = [];
    for (let i = 0; i < lines.length; i++) {
      const m = /\] (?:<[^>]*> )?(SKEYSEED|Sk_\w+ secret) => (\d+) bytes/.exec(lines[i]!);
      if (!m) continue;
      const label = m[1]!.replace(' secret', '') as keyof LoggedIkeKeys;
      const want = Number(m[2]);
      let hex = '';
      for (let j = i + 1; j < lines.length && hex.length < want * 2; j++) {
        const d = /\s\d+: ((?:[0-9A-F]{2} )+)/.exec(lines[j]!);
        if (!d) break;
        hex += d[1]!.replace(/ /g, '').toLowerCase();
      }
      if (label === 'SKEYSEED') out.push({});
      const cur = out[out.length - 1];
      if (cur && hex.length === want * 2) cur[label] = hex;
    }
    return out;
  }

  /** save-keys' ESP table (saveKeys): one line per Child SA direction, oldest first. */
  savedEspKeys(): SavedEspKeys[] {
    return csvLines(join(this.dir, 'keys', 'esp_sa')).flatMap((f) => (f.length < 8 ? [] : [{
      src: f[1]!, dst: f[2]!, spi: bare(f[3]!).padStart(8, '0'), encr: f[4]!, encrKey: bare(f[5]!), integ: f[6]!, integKey: bare(f[7]!),
    }]));
  }

  log(): string {
    try { return readFileSync(join(this.dir, 'charon.log'), 'utf8'); } catch { return '(no charon.log)'; }
  }

  async stop(): Promise<void> {
    if (this.pid) { try { process.kill(this.pid, 'SIGTERM'); } catch { /* gone */ } }
    // charon runs under `ip netns exec … unshare`: wait for it, then make sure.
    for (let i = 0; i < 30 && this.pid && alive(this.pid); i++) await new Promise((r) => setTimeout(r, 100));
    if (this.pid) { try { process.kill(this.pid, 'SIGKILL'); } catch { /* gone */ } }
    this.pid = 0;
    if (!process.env['KIPSEC_KEEP_SWAN']) rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Comma-separated lines, double quotes around fields stripped (save-keys' formats quote every text field). */
function csvLines(path: string): string[][] {
  let text: string;
  try { text = readFileSync(path, 'utf8'); } catch { return []; }
  return text.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('#')).map((l) => l.split(',').map((x) => x.trim().replace(/^"|"$/g, '')));
}

/** A hex field as lower-case digits only (save-keys writes `0x…` for some, bare digits for others). */
const bare = (h: string): string => h.replace(/^0x/i, '').replace(/:/g, '').toLowerCase();

function alive(pid: number): boolean { try { process.kill(pid, 0); return true; } catch { return false; } }

/** A PSK connection in swanctl syntax; one setting per line (swanctl.conf requires it). */
export function pskConnection(o: {
  name: string; local: string; remote: string; localTs: string; remoteTs: string;
  proposals: string; espProposals: string; psk: string; startAction?: 'none' | 'trap' | 'start';
  extra?: string; childExtra?: string;
}): string {
  return `connections {
  ${o.name} {
    version = 2
    local_addrs = ${o.local}
    remote_addrs = ${o.remote}
    proposals = ${o.proposals}
    ${o.extra ?? ''}
    local {
      auth = psk
      id = ${o.local}
    }
    remote {
      auth = psk
      id = ${o.remote}
    }
    children {
      ${o.name} {
        local_ts = ${o.localTs}
        remote_ts = ${o.remoteTs}
        esp_proposals = ${o.espProposals}
        start_action = ${o.startAction ?? 'none'}
        ${o.childExtra ?? ''}
      }
    }
  }
}
secrets {
  ike-${o.name} {
    id-a = ${o.local}
    id-b = ${o.remote}
    secret = "${o.psk}"
  }
}
`;
}
