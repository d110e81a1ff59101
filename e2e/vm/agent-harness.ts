// Runs the real `kipsec agent --standalone` (through tsx, as a user would from a checkout) inside
// a test namespace, with its config, PSK/cert files and control socket in a private temp folder.
// Talks to it over the control socket (a filesystem unix socket, reachable from any namespace).
// Processes are tracked by pid: stop() sends SIGTERM, crash() SIGKILL, the scope's end kills.
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync, existsSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { repoPath } from '../../test/lib/paths.js';
import { controlRequest } from '../../src/agent/control/client.js';
import type { ControlCommand } from '../../src/agent/control/protocol.js';
import { formatStatus, type AgentStatus, type TunnelStatus } from '../../src/agent/status.js';
import type { Netns, Scope } from '../lib/netns.js';

let bundle: string | undefined;

/**
 * The CLI bundled once per test process with esbuild. Why: under the VM's TCG emulation, tsx
 * transpiling ~150 modules on every agent start took over 60 s; the bundle starts in a few. It
 * lives at build/e2e-<pid>/ — two levels below the checkout, where src/xfrm/native.ts's relative
 * path to native/build still resolves. The VM lanes build it once on the host
 * (e2e/lib/build-agent-bundle.ts) and pass it in KIPSEC_AGENT_BUNDLE.
 */
export function agentBundle(): string {
  if (bundle) return bundle;
  // A prebuilt bundle (same layout: two levels below the checkout), e.g. to try an engine patch.
  const given = process.env['KIPSEC_AGENT_BUNDLE'];
  if (given) return (bundle = given);
  const out = repoPath('build', `e2e-${process.pid}`);
  process.on('exit', () => { try { rmSync(out, { recursive: true, force: true }); } catch { /* best effort */ } });
  bundle = buildAgentBundle(out);
  return bundle;
}

/**
 * Bundle the CLI into `out` (two levels below the checkout); returns the entry point, out/main.mjs.
 * `packages: 'bundle'` inlines node_modules too (the VM lanes: under TCG an agent took 8.6–9.2 s
 * from exec to its first log line with them loaded file by file, ~450 files each resolved and read
 * over 9p, 3.6 s so); 'external' (the default) loads them from node_modules as the image does,
 * which the benches' memory figures assume.
 */
export function buildAgentBundle(out: string, packages: 'external' | 'bundle' = 'external'): string {
  const esbuild = repoPath('node_modules/.bin/esbuild');
  // ESM hoists imports: inlined into the bundle, src/pki/reflect-polyfill.ts could run after
  // @peculiar/x509, which it must precede (tsyringe throws at load without Reflect metadata).
  // So it is a module of its own, imported first by every chunk (a no-op once Reflect has it).
  execFileSync(esbuild, [repoPath('src/pki/reflect-polyfill.ts'), '--format=esm', '--platform=node', '--target=node20', `--outfile=${out}/reflect-polyfill.mjs`, '--log-level=warning'], { timeout: 60_000, stdio: ['ignore', 'ignore', 'inherit'] });
  // The IKE crypto worker (src/ike/crypto/pool.ts) is a second entry point: crypto-worker.mjs beside the chunks.
  // Bundled packages' CommonJS `require` calls need a real require in ESM output; the addons stay files.
  execFileSync(esbuild, [repoPath('src/cli/main.ts'), repoPath('src/ike/crypto/crypto-worker.ts'), '--bundle', '--splitting', '--platform=node', '--format=esm',
    packages === 'bundle' ? '--external:*.node' : '--packages=external', '--target=node20', `--outdir=${out}`, '--entry-names=[name]', '--out-extension:.js=.mjs', '--log-level=warning',
    '--banner:js=import "./reflect-polyfill.mjs"; import { createRequire as __kipsecRequire } from "node:module"; const require = __kipsecRequire(import.meta.url);'],
    { timeout: 120_000, stdio: ['ignore', 'ignore', 'inherit'] });
  return `${out}/main.mjs`;
}

export interface AgentOptions {
  /** The YAML stream (IPsecTunnel objects); file paths in it are relative to the agent's folder. */
  readonly config: string;
  /** Extra files for the agent's folder (PSK files are written mode 0600). */
  readonly files?: Readonly<Record<string, string>>;
  readonly logLevel?: string;
  /** More `kipsec agent` arguments, e.g. ['--datapath', 'userspace']. */
  readonly args?: readonly string[];
}

export class AgentProcess {
  readonly ns: Netns;
  readonly dir: string;
  readonly socket: string;
  #child: ChildProcess | undefined;
  #log = '';
  #exit: Promise<number | null> = Promise.resolve(null);
  readonly #args: readonly string[];

  private constructor(ns: Netns, dir: string, args: readonly string[]) { this.ns = ns; this.dir = dir; this.socket = join(dir, 'agent.sock'); this.#args = args; }

  static async start(scope: Scope, ns: Netns, o: AgentOptions): Promise<AgentProcess> {
    const dir = mkdtempSync(join(tmpdir(), 'kipsec-agent-e2e-'));
    const a = new AgentProcess(ns, dir, o.args ?? []);
    scope.after(async () => { await a.crash(); if (!process.env['KIPSEC_KEEP_AGENT']) rmSync(dir, { recursive: true, force: true }); });
    for (const [rel, text] of Object.entries(o.files ?? {})) {
      mkdirSync(dirname(join(dir, rel)), { recursive: true });
      writeFileSync(join(dir, rel), text, { mode: 0o600 });
    }
    writeFileSync(join(dir, 'tunnels.yaml'), o.config);
    await a.launch(o.logLevel ?? 'debug');
    return a;
  }

  /** Start (or restart after crash/stop) the agent process and wait for its control socket. */
  async launch(logLevel = 'debug', timeoutMs = 60_000): Promise<void> {
    rmSync(this.socket, { force: true });
    const child = this.ns.spawn(process.execPath, [agentBundle(), 'agent', '--standalone',
      '--config', join(this.dir, 'tunnels.yaml'), '--control-socket', this.socket, '--log-level', logLevel, ...this.#args], { cwd: repoPath() });
    this.#child = child;
    const append = (d: Buffer): void => { this.#log += d.toString(); };
    child.stdout?.on('data', append);
    child.stderr?.on('data', append);
    this.#exit = new Promise((r) => child.on('exit', (code) => r(code)));
    const deadline = Date.now() + timeoutMs;
    while (!existsSync(this.socket)) {
      if (child.exitCode !== null) throw new Error(`agent exited ${child.exitCode} before listening:\n${this.#log}`);
      if (Date.now() > deadline) throw new Error(`agent did not listen within ${timeoutMs} ms:\n${this.#log}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  get pid(): number | undefined { return this.#child?.pid; }
  log(): string { return this.#log; }
  writeConfig(yaml: string): void { writeFileSync(join(this.dir, 'tunnels.yaml'), yaml); }
  readConfig(): string { return readFileSync(join(this.dir, 'tunnels.yaml'), 'utf8'); }

  request(cmd: ControlCommand, name?: string): Promise<unknown> { return controlRequest(this.socket, cmd, name, 60_000); }

  /** Run the real `kipsec` CLI (the same bundle) against this agent's control socket, as an operator would. */
  kipsec(args: readonly string[], timeoutMs = 60_000): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      execFile(process.execPath, [agentBundle(), ...args, '--control-socket', this.socket], { cwd: repoPath(), timeout: timeoutMs, encoding: 'utf8' }, (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
        resolve({ code, stdout, stderr: err !== null && typeof err.code !== 'number' ? `${stderr}${err.message}` : stderr });
      });
    });
  }
  async status(): Promise<AgentStatus> { return await this.request('status') as AgentStatus; }
  async tunnel(name: string): Promise<TunnelStatus> {
    const t = (await this.status()).tunnels.find((x) => x.name === name);
    if (!t) throw new Error(`no tunnel ${name} in status`);
    return t;
  }
  async table(): Promise<string> { return formatStatus(await this.status(), Date.now()).join('\n'); }

  /** Poll until `pred` holds for the tunnel (bounded), returning its status. */
  async waitFor(name: string, pred: (t: TunnelStatus) => boolean, timeoutMs = 90_000, what = 'condition'): Promise<TunnelStatus> {
    const deadline = Date.now() + timeoutMs;
    let last: TunnelStatus | undefined;
    while (Date.now() < deadline) {
      last = await this.tunnel(name).catch(() => undefined);
      if (last && pred(last)) return last;
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error(`tunnel ${name}: ${what} not reached in ${timeoutMs} ms; last status ${JSON.stringify(last)}\nagent log tail:\n${this.#log.slice(-6000)}`);
  }

  waitEstablished(name: string, timeoutMs = 90_000): Promise<TunnelStatus> {
    return this.waitFor(name, (t) => t.ikeState === 'established' && t.children.some((c) => c.state === 'installed'), timeoutMs, 'IKE established with an installed child');
  }

  /** SIGTERM and wait for the exit status (bounded). */
  async stop(timeoutMs = 30_000): Promise<number | null> {
    const c = this.#child;
    if (!c?.pid || c.exitCode !== null) return c?.exitCode ?? null;
    process.kill(c.pid, 'SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const t = new Promise<'timeout'>((r) => { timer = setTimeout(() => r('timeout'), timeoutMs); });
    const res = await Promise.race([this.#exit, t]);
    clearTimeout(timer);
    if (res === 'timeout') { await this.crash(); throw new Error(`agent did not exit within ${timeoutMs} ms of SIGTERM:\n${this.#log.slice(-4000)}`); }
    return res;
  }

  /** SIGKILL: what a crash looks like to the kernel (nothing cleaned up). */
  async crash(): Promise<void> {
    const c = this.#child;
    if (!c?.pid || c.exitCode !== null || c.signalCode !== null) return;
    // `ip netns exec` execs node, so the pid is the agent's own.
    try { process.kill(c.pid, 'SIGKILL'); } catch { /* gone */ }
    await this.#exit;
  }
}

/** One IPsecTunnel object for the agent's YAML stream. */
export function tunnelYaml(o: {
  name: string; local: string; remote: string; localSubnets: readonly string[]; remoteSubnets: readonly string[];
  auth?: string; ike?: readonly string[]; esp?: readonly string[]; startAction?: 'initiate' | 'respond' | 'on-demand';
  localId?: string; remoteId?: string; extra?: string;
  /** Extra fields inside `esp: {…}`, e.g. "rekeyTime: 1m, lifeTime: 3m". */
  espExtra?: string;
}): string {
  return `apiVersion: kipsec.io/v1alpha1
kind: IPsecTunnel
metadata: {name: ${o.name}}
spec:
  local: {address: ${o.local}, subnets: [${o.localSubnets.join(', ')}]${o.localId ? `, id: "${o.localId}"` : ''}}
  remote: {address: ${o.remote}, subnets: [${o.remoteSubnets.join(', ')}]${o.remoteId ? `, id: "${o.remoteId}"` : ''}}
  auth: ${o.auth ?? '{psk: {file: psk}}'}
  ike: {proposals: [${(o.ike ?? ['aes256gcm16-prfsha384-x25519']).join(', ')}]}
  esp: {proposals: [${(o.esp ?? ['aes256gcm16']).join(', ')}]${o.espExtra ? `, ${o.espExtra}` : ''}}
  startAction: ${o.startAction ?? 'initiate'}
${o.extra ?? ''}`;
}

// pingCounts and ContinuousPing live in e2e/lib/traffic.ts (the cluster lane uses them too).
export { ContinuousPing, pingCounts } from '../lib/traffic.js';

/** SPIs (8 hex digits) of the ESP states in a namespace's kernel. */
export async function kernelSpis(ns: Netns): Promise<string[]> {
  return [...(await ns.run('ip', ['xfrm', 'state'])).stdout.matchAll(/proto esp spi 0x([0-9a-f]{8})/g)].map((m) => m[1]!);
}

/** Poll `probe` until it returns a value (bounded); on timeout the error carries `explain()`. */
export async function pollUntil<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>, explain: () => Promise<string>, everyMs = 300): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const v = await probe();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`${what} not reached in ${timeoutMs} ms:\n${await explain()}`);
}
