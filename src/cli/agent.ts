// `kipsec agent --standalone --config FILE …`: composes the agent from its parts (logger, XFRM
// netlink, rtnetlink routes, the native addon) and runs until SIGTERM/SIGINT. SIGHUP reloads.
// Exit status: 0 after a clean shutdown, 2 for usage or config problems (one line each, nothing
// applied), 1 when the agent could not start for another reason.
// --state-dir (default: "state" next to the control socket, i.e. /run/kipsec/state) keeps the IKE SA
// checkpoints that let a crashed or killed agent resume its IKE SAs without dropping traffic.
import { dirname, join, resolve } from 'node:path';
import { errorMessage } from '../common/errors.js';
import { Agent, ConfigLoadError } from '../agent/daemon.js';
import { DEFAULT_CONTROL_SOCKET } from '../agent/control/protocol.js';
import { createLogger, isLogLevel } from '../agent/log.js';
import { loadTuning } from '../agent/native.js';
import { TableRoutes } from '../agent/routes.js';
import { RtnlClient, XfrmClient } from '../xfrm/index.js';
import { parseArgs, str, UsageError } from './args.js';
import { EXIT_FAILURE, EXIT_NOT_BUILT, EXIT_OK, EXIT_USAGE, type CliIo } from './commands.js';

function port(v: string | undefined, fallback: number, name: string): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new UsageError(`--${name} must be a port number`);
  return n;
}

export async function runAgent(args: readonly string[], io: CliIo): Promise<number> {
  let p;
  try {
    p = parseArgs(args, { values: ['config', 'control-socket', 'state-dir', 'datapath', 'log-level', 'ike-port', 'natt-port'], booleans: ['standalone'] });
    if (p.positionals.length > 0) throw new UsageError(`unexpected argument ${p.positionals[0]!}`);
  } catch (e) {
    io.err(`kipsec agent: ${errorMessage(e)}`);
    return EXIT_USAGE;
  }
  if (!p.flags.has('standalone')) {
    io.err('kipsec agent: cluster mode (without --standalone) is not built yet (issue 6: operator); nothing was done');
    return EXIT_NOT_BUILT;
  }
  const config = str(p, 'config');
  if (config === undefined) { io.err('kipsec agent: --config FILE is required with --standalone'); return EXIT_USAGE; }
  const datapath = str(p, 'datapath') ?? 'kernel';
  if (datapath === 'userspace' || datapath === 'auto') { io.err(`kipsec agent: --datapath ${datapath} is not built yet (userspace ESP datapath); use --datapath kernel`); return EXIT_NOT_BUILT; }
  if (datapath !== 'kernel') { io.err(`kipsec agent: --datapath must be kernel, userspace or auto`); return EXIT_USAGE; }
  const level = str(p, 'log-level') ?? 'info';
  if (!isLogLevel(level)) { io.err(`kipsec agent: --log-level must be one of fatal, error, warn, info, debug, trace, silent`); return EXIT_USAGE; }
  let ikePort: number; let nattPort: number;
  try { ikePort = port(str(p, 'ike-port'), 500, 'ike-port'); nattPort = port(str(p, 'natt-port'), 4500, 'natt-port'); } catch (e) { io.err(`kipsec agent: ${errorMessage(e)}`); return EXIT_USAGE; }

  const log = createLogger({ level });
  const tuning = loadTuning();
  if (!tuning.available) log.warn({ reason: tuning.description }, 'native addon missing: no UDP_ENCAP (NAT-T ESP-in-UDP) and no per-socket IKE bypass');
  let xfrm: XfrmClient;
  let rtnl: RtnlClient;
  try { xfrm = XfrmClient.open(); rtnl = RtnlClient.open(); } catch (e) {
    io.err(`kipsec agent: cannot open netlink (XFRM/rtnetlink): ${errorMessage(e)}; run \`kipsec diagnose\``);
    return EXIT_FAILURE;
  }
  const controlSocket = resolve(str(p, 'control-socket') ?? DEFAULT_CONTROL_SOCKET);
  const agent = new Agent({
    log, configFile: resolve(config), controlSocket, stateDir: resolve(str(p, 'state-dir') ?? join(dirname(controlSocket), 'state')),
    xfrm, tuning, routes: new TableRoutes(rtnl, log.child({ part: 'routes' })), ikePort, nattPort,
  });
  try { await agent.start(); } catch (e) {
    if (e instanceof ConfigLoadError) {
      for (const pr of e.problems) io.err(`${pr.path}: ${pr.message}`);
      io.err(`kipsec agent: ${e.problems.length} config problem${e.problems.length === 1 ? '' : 's'}; nothing was applied`);
      await agent.abandon().catch(() => { /* nothing opened */ });
      rtnl.close();
      return EXIT_USAGE;
    }
    io.err(`kipsec agent: cannot start: ${errorMessage(e)}`);
    await agent.abandon().catch(() => { /* best effort */ });
    rtnl.close();
    return EXIT_FAILURE;
  }

  return new Promise<number>((done) => {
    const stop = (sig: string): void => {
      log.info({ signal: sig }, 'signal received');
      process.off('SIGHUP', hup);
      agent.shutdown().then(() => { rtnl.close(); done(EXIT_OK); }, (e: unknown) => { log.error({ err: errorMessage(e) }, 'shutdown failed'); done(EXIT_FAILURE); });
    };
    const hup = (): void => {
      agent.reload().catch((e: unknown) => { if (!(e instanceof ConfigLoadError)) log.error({ err: errorMessage(e) }, 'reload failed'); });
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
    process.on('SIGHUP', hup);
  });
}
