// `kipsec status | initiate | terminate | rekey | reload`: one request to a running agent's control socket
// (`kipsec status --cluster | --kubeconfig PATH` reads the whole mesh from the apiserver instead: mesh-status.ts).
import { DEFAULT_CONTROL_SOCKET, type RekeyResult, type RenewResult } from '../agent/control/protocol.js';
import { controlRequest, ControlError } from '../agent/control/client.js';
import { formatStatus, type AgentStatus } from '../agent/status.js';
import { parseArgs, str, UsageError } from './args.js';
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, type CliIo } from './commands.js';

function socketPath(p: ReturnType<typeof parseArgs>): string {
  return str(p, 'control-socket') ?? process.env['KIPSEC_CONTROL_SOCKET'] ?? DEFAULT_CONTROL_SOCKET;
}

async function guarded(io: CliIo, cmd: string, fn: () => Promise<number>): Promise<number> {
  try { return await fn(); } catch (e) {
    if (e instanceof UsageError) { io.err(`kipsec ${cmd}: ${e.message}`); return EXIT_USAGE; }
    if (e instanceof ControlError) {
      // Config problems come back as lines; print each on its own line, like the agent does at start.
      for (const line of e.message.split('\n')) io.err(`kipsec ${cmd}: ${line}`);
      return e.code === 'ERR_CONFIG' ? EXIT_USAGE : EXIT_FAILURE;
    }
    throw e;
  }
}

export function runStatus(args: readonly string[], io: CliIo): Promise<number> {
  return guarded(io, 'status', async () => {
    const p = parseArgs(args, { values: ['control-socket', 'kubeconfig', 'mesh'], booleans: ['json', 'cluster'] });
    if (p.positionals.length > 0) throw new UsageError(`unexpected argument ${p.positionals[0]!}`);
    // The mesh from the apiserver (every node's view) instead of this node's agent.
    const cluster = p.flags.has('cluster') || p.flags.has('kubeconfig');
    if (cluster && p.flags.has('control-socket')) throw new UsageError('--control-socket asks the local agent; --cluster/--kubeconfig read the mesh from the apiserver: pick one');
    if (!cluster && p.flags.has('mesh')) throw new UsageError('--mesh needs --cluster or --kubeconfig PATH');
    if (cluster) return (await import('./mesh-status.js')).runMeshStatus(p, io);
    const s = await controlRequest(socketPath(p), 'status') as AgentStatus;
    if (p.flags.has('json')) io.out(JSON.stringify(s, null, 2));
    else for (const l of formatStatus(s, Date.now())) io.out(l);
    return EXIT_OK;
  });
}

function byName(cmd: 'initiate' | 'terminate') {
  return (args: readonly string[], io: CliIo): Promise<number> => guarded(io, cmd, async () => {
    const p = parseArgs(args, { values: ['control-socket'], booleans: [] });
    const [name, extra] = p.positionals;
    if (name === undefined || extra !== undefined) throw new UsageError(`usage: kipsec ${cmd} NAME`);
    await controlRequest(socketPath(p), cmd, name);
    io.out(`${name}: ${cmd === 'initiate' ? 'initiating' : 'terminated'}`);
    return EXIT_OK;
  });
}

export const runInitiate = byName('initiate');
export const runTerminate = byName('terminate');

export function runReload(args: readonly string[], io: CliIo): Promise<number> {
  return guarded(io, 'reload', async () => {
    const p = parseArgs(args, { values: ['control-socket'], booleans: [] });
    if (p.positionals.length > 0) throw new UsageError(`unexpected argument ${p.positionals[0]!}`);
    const r = await controlRequest(socketPath(p), 'reload') as { added: string[]; removed: string[]; changed: string[]; unchanged: string[] };
    io.out(`reloaded: ${r.added.length} added, ${r.removed.length} removed, ${r.changed.length} changed, ${r.unchanged.length} unchanged`);
    return EXIT_OK;
  });
}

export function runRenew(args: readonly string[], io: CliIo): Promise<number> {
  return guarded(io, 'renew', async () => {
    const p = parseArgs(args, { values: ['control-socket'], booleans: [] });
    if (p.positionals.length > 0) throw new UsageError(`unexpected argument ${p.positionals[0]!}`);
    // The signer may take a while (an operator that relays to cert-manager); its own wait is bounded.
    const r = await controlRequest(socketPath(p), 'renew', undefined, 180_000) as RenewResult;
    io.out(`node certificate renewed: sha256 ${r.fingerprint}, same key (sha256 ${r.publicKeyFingerprint}), valid until ${r.notAfter}`);
    return EXIT_OK;
  });
}

export function runRekey(args: readonly string[], io: CliIo): Promise<number> {
  return guarded(io, 'rekey', async () => {
    const p = parseArgs(args, { values: ['control-socket'], booleans: ['ike', 'child', 'reauth'] });
    const [name, extra] = p.positionals;
    if (name === undefined || extra !== undefined) throw new UsageError('usage: kipsec rekey NAME [--child] [--ike] [--reauth]');
    if (p.flags.has('reauth') && (p.flags.has('ike') || p.flags.has('child'))) throw new UsageError('--reauth replaces the IKE SA and every Child SA: it takes neither --ike nor --child');
    const r = await controlRequest(socketPath(p), 'rekey', { name, ike: p.flags.has('ike'), child: p.flags.has('child'), reauth: p.flags.has('reauth') }) as RekeyResult;
    if (r.reauth) { io.out(`${name}: re-authentication started (a new IKE SA replaces ${r.ikeSpis}, make-before-break)`); return EXIT_OK; }
    if (r.ike) io.out(`${name}: IKE SA rekey started (IKE SA ${r.ikeSpis})`);
    for (const c of r.children) io.out(`${name}: Child SA ${c.name} rekey started (SPIs in ${c.spiIn}, out ${c.spiOut})`);
    return EXIT_OK;
  });
}
