// Network-namespace hosts for the netns, interop and kernel lanes. Each namespace is named
// `kt-<pid>-<label>-<n>` so the creating process is recoverable from the name: cleanup runs on
// test end, on process exit, and `reapStale()` removes namespaces whose creator is gone (a test
// that was killed). Every command runs with a time bound; processes started in a namespace are
// tracked and killed by pid.
import { execFile, execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { constants as osConstants } from 'node:os';

export interface RunResult { code: number; stdout: string; stderr: string }
export interface RunOptions { timeoutMs?: number; check?: boolean; input?: string }
/** The part of node:test's TestContext we use, so helpers also work outside a test. */
export interface Scope { after(fn: () => unknown): void }

const PREFIX = 'kt-';
const live = new Set<Netns>();
let counter = 0;

function exec(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const timeout = opts.timeoutMs ?? 30_000;
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { timeout, killSignal: 'SIGKILL', maxBuffer: 64 << 20, encoding: 'utf8' }, (err, stdout, stderr) => {
      // A death by signal has no exit code: report it as 128+signal, as a shell would, and name it.
      const signal = err?.signal ?? undefined;
      const code = err ? (typeof err.code === 'number' ? err.code : err.killed ? 124 : signal ? 128 + (osConstants.signals[signal] ?? 0) : 1) : 0;
      const res = { code, stdout, stderr: signal && !err?.killed ? `${stderr}[killed by ${signal}]` : stderr };
      if (code !== 0 && opts.check !== false)
        reject(new Error(`${cmd} ${args.join(' ')} exited ${code}${err?.killed ? ` (killed after ${timeout} ms)` : signal ? ` (${signal})` : ''}: ${stderr.trim() || stdout.trim()}`));
      else resolve(res);
    });
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

export class Netns {
  readonly name: string;
  private readonly children = new Set<ChildProcess>();
  private destroyed = false;

  private constructor(name: string) { this.name = name; }

  /** Create a namespace with loopback up; destroyed when the scope ends. */
  static async create(scope: Scope | null, label: string): Promise<Netns> {
    const safe = label.replace(/[^a-zA-Z0-9]/g, '').slice(0, 12) || 'h';
    const ns = new Netns(`${PREFIX}${process.pid}-${safe}-${counter++}`);
    await exec('ip', ['netns', 'add', ns.name]);
    live.add(ns);
    scope?.after(() => ns.destroy());
    await ns.run('ip', ['link', 'set', 'lo', 'up']);
    return ns;
  }

  /** Run a command inside the namespace; throws on non-zero exit unless check: false. */
  run(cmd: string, args: readonly string[] = [], opts: RunOptions = {}): Promise<RunResult> {
    return exec('ip', ['netns', 'exec', this.name, cmd, ...args], opts);
  }

  /** Start a long-running process inside the namespace; killed (by pid) on destroy. */
  spawn(cmd: string, args: readonly string[], opts: SpawnOptions = {}): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', this.name, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
    this.children.add(child);
    child.on('exit', () => this.children.delete(child));
    return child;
  }

  async addr(ifname: string, cidr: string): Promise<void> {
    await this.run('ip', ['addr', 'add', cidr, 'dev', ifname]);
    await this.run('ip', ['link', 'set', ifname, 'up']);
  }

  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const c of this.children) if (c.pid) try { process.kill(c.pid, 'SIGKILL'); } catch { /* gone */ }
    // Processes started with `ip netns exec` outside our tracking (e.g. charon forks) die with the ns pids list.
    const pids = await exec('ip', ['netns', 'pids', this.name], { check: false });
    for (const p of pids.stdout.split(/\s+/).filter(Boolean)) try { process.kill(Number(p), 'SIGKILL'); } catch { /* gone */ }
    await exec('ip', ['netns', 'del', this.name], { check: false });
    live.delete(this);
  }
}

/** Join two namespaces with a veth pair (eth0 on each side) and address them. */
export async function link(a: Netns, aCidr: string, b: Netns, bCidr: string, ifA = 'eth0', ifB = 'eth0'): Promise<void> {
  await exec('ip', ['link', 'add', ifA, 'netns', a.name, 'type', 'veth', 'peer', 'name', ifB, 'netns', b.name]);
  await a.addr(ifA, aCidr);
  await b.addr(ifB, bCidr);
}

/** Two hosts on one veth link. */
export async function pair(scope: Scope | null, cidrs: { a: string; b: string }): Promise<[Netns, Netns]> {
  const a = await Netns.create(scope, 'a');
  const b = await Netns.create(scope, 'b');
  await link(a, cidrs.a, b, cidrs.b);
  return [a, b];
}

/** N hosts attached to a bridge that lives in its own "switch" namespace. */
export async function lan(scope: Scope | null, cidrs: readonly string[]): Promise<Netns[]> {
  const sw = await Netns.create(scope, 'sw');
  await sw.run('ip', ['link', 'add', 'br0', 'type', 'bridge']);
  await sw.run('ip', ['link', 'set', 'br0', 'up']);
  const hosts: Netns[] = [];
  for (const [i, cidr] of cidrs.entries()) {
    const h = await Netns.create(scope, `h${i}`);
    await exec('ip', ['link', 'add', 'eth0', 'netns', h.name, 'type', 'veth', 'peer', 'name', `p${i}`, 'netns', sw.name]);
    await h.addr('eth0', cidr);
    await sw.run('ip', ['link', 'set', `p${i}`, 'master', 'br0', 'up']);
    hosts.push(h);
  }
  return hosts;
}

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch (e) { return (e as NodeJS.ErrnoException).code === 'EPERM'; }
}

/** Delete kt-<pid>-* namespaces whose creating process no longer exists. Returns their names. */
export function reapStale(): string[] {
  let names: string[];
  try { names = readdirSync('/run/netns'); } catch { return []; }
  const gone: string[] = [];
  for (const n of names) {
    const m = /^kt-(\d+)-/.exec(n);
    if (!m || alive(Number(m[1]))) continue;
    try { execFileSync('ip', ['netns', 'del', n], { stdio: 'ignore', timeout: 10_000 }); gone.push(n); } catch { /* raced */ }
  }
  return gone;
}

// Last-resort cleanup when a test process exits without running its `after` hooks.
process.on('exit', () => {
  for (const ns of live) {
    try { execFileSync('ip', ['netns', 'del', ns.name], { stdio: 'ignore', timeout: 5_000 }); } catch { /* best effort */ }
  }
});
