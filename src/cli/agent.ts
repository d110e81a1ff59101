// `kipsec agent`: the per-node daemon, in one of two modes.
//   --node-name NAME …               cluster mode (agent-cluster.ts): peers from the IPsecMesh and
//                                    IPsecNodes, identity from the operator's signer
//   --standalone --config FILE …     a plain IKEv2 daemon driven by a YAML stream of IPsecTunnels
// Standalone: composes the agent from its parts (logger, XFRM netlink, rtnetlink routes, the native
// addon) and runs until SIGTERM/SIGINT; SIGHUP reloads. --state-dir (default: "state" next to the
// control socket, i.e. /run/kipsec/state) keeps the IKE SA checkpoints that let a crashed or killed
// agent resume its IKE SAs without dropping traffic.
// --datapath kernel (XFRM), userspace (the ESP engine over a TUN device, src/agent/userspace), or
// auto (kernel when it accepts an ESP state, else userspace; logged and shown in `kipsec status`).
// Cluster mode takes all three too; unset there means auto, which follows IPsecMesh spec.datapath
// (src/agent/mesh/datapath.ts says what happens when the flag and the mesh disagree).
// Exit status: 0 after a clean shutdown, 2 for usage or config problems (one line each, nothing
// applied), 3 for a data path that is not built (or not for this mode), 1 when the agent could not start otherwise.
import { dirname, join, resolve } from 'node:path';
import { isIP } from 'node:net';
import { errorMessage } from '../common/errors.js';
import { Agent, ConfigLoadError } from '../agent/daemon.js';
import { DEFAULT_CONTROL_SOCKET } from '../agent/control/protocol.js';
import { createLogger, isLogLevel } from '../agent/log.js';
import { probeKernelEsp } from '../agent/diagnose.js';
import { loadTuning } from '../agent/native.js';
import { TableRoutes } from '../agent/routes.js';
import { XfrmInterfaces } from '../agent/xfrm-interfaces.js';
import { XfrmLinks } from '../xfrm/rtnl/xfrm-links.js';
import { TunRoutes, UserspaceDatapath } from '../agent/userspace/datapath.js';
import { EspXfrm } from '../agent/userspace/esp-xfrm.js';
import { userspacePeer } from '../agent/userspace/peer.js';
import { EspSockets } from '../agent/userspace/sockets.js';
import { loadEspNative } from '../esp/index.js';
import { RtnlClient, XfrmClient } from '../xfrm/index.js';
import { parseArgs, str, UsageError } from './args.js';
import { RETRANSMIT_FLAGS, retransmitOptions, type RetransmitOptions } from './retransmit.js';
import { EXIT_FAILURE, EXIT_NOT_BUILT, EXIT_OK, EXIT_USAGE, type CliIo } from './commands.js';

function port(v: string | undefined, fallback: number, name: string, min = 1): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > 65535) throw new UsageError(`--${name} must be a port number${min === 0 ? ' (0 turns it off)' : ''}`);
  return n;
}

/** The agent's metrics port: hostNetwork, so one per node (registered as kipsec's in the Prometheus port list). */
export const DEFAULT_METRICS_PORT = 9964;

const NODE_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** `--datapath auto`: kernel when it accepts an ESP state (diagnose's probe), else userspace. */
async function chooseDatapath(xfrm: XfrmClient): Promise<{ readonly datapath: 'kernel' | 'userspace'; readonly reason: string }> {
  const esp = await probeKernelEsp(xfrm);
  return esp.ok ? { datapath: 'kernel', reason: 'the kernel accepts ESP states' } : { datapath: 'userspace', reason: `the kernel refuses ESP states: ${esp.reason}` };
}

export async function runAgent(args: readonly string[], io: CliIo): Promise<number> {
  let p;
  try {
    p = parseArgs(args, {
      values: ['config', 'control-socket', 'state-dir', 'datapath', 'log-level', 'ike-port', 'natt-port', 'node-name', 'kubeconfig', 'namespace', 'mesh', 'metrics-port', 'metrics-address', 'node-ip', ...RETRANSMIT_FLAGS],
      booleans: ['standalone'],
    });
    if (p.positionals.length > 0) throw new UsageError(`unexpected argument ${p.positionals[0]!}`);
  } catch (e) {
    io.err(`kipsec agent: ${errorMessage(e)}`);
    return EXIT_USAGE;
  }
  const datapath = str(p, 'datapath') ?? (p.flags.has('standalone') ? 'kernel' : 'auto');
  if (datapath !== 'kernel' && datapath !== 'userspace' && datapath !== 'auto') { io.err('kipsec agent: --datapath must be kernel, userspace or auto'); return EXIT_USAGE; }
  const level = str(p, 'log-level') ?? 'info';
  if (!isLogLevel(level)) { io.err('kipsec agent: --log-level must be one of fatal, error, warn, info, debug, trace, silent'); return EXIT_USAGE; }
  let ikePort: number; let nattPort: number;
  let retransmit: RetransmitOptions;
  try {
    ikePort = port(str(p, 'ike-port'), 500, 'ike-port'); nattPort = port(str(p, 'natt-port'), 4500, 'natt-port');
    retransmit = retransmitOptions(p);
  } catch (e) { io.err(`kipsec agent: ${errorMessage(e)}`); return EXIT_USAGE; }

  const node = str(p, 'node-name');
  const standalone = p.flags.has('standalone');
  const clusterOnly = ['node-name', 'kubeconfig', 'namespace', 'mesh', 'metrics-port', 'metrics-address', 'node-ip'].filter((f) => p.flags.has(f));
  if (standalone && clusterOnly.length > 0) { io.err(`kipsec agent: --${clusterOnly[0]!} is for cluster mode; --standalone takes its tunnels from --config`); return EXIT_USAGE; }
  if (!standalone) {
    if (node === undefined) { io.err('kipsec agent: give --node-name NAME (cluster mode) or --standalone --config FILE'); return EXIT_USAGE; }
    if (p.flags.has('config')) { io.err('kipsec agent: --config is for --standalone; in cluster mode the peers come from the IPsecMesh and IPsecNodes'); return EXIT_USAGE; }
    if (!NODE_NAME.test(node) || node.length > 253) { io.err(`kipsec agent: --node-name "${node}" is not a Kubernetes node name (lower-case DNS subdomain)`); return EXIT_USAGE; }
    const nodeIp = str(p, 'node-ip');
    if (nodeIp !== undefined && isIP(nodeIp) === 0) { io.err(`kipsec agent: --node-ip "${nodeIp}" is not an IP address`); return EXIT_USAGE; }
    let metricsPort: number;
    try { metricsPort = port(str(p, 'metrics-port'), DEFAULT_METRICS_PORT, 'metrics-port', 0); } catch (e) { io.err(`kipsec agent: ${errorMessage(e)}`); return EXIT_USAGE; }
    // Loaded on use: the standalone agent needs neither the Kubernetes client nor the PKI.
    const { runClusterAgent } = await import('./agent-cluster.js');
    return runClusterAgent({
      node, kubeconfig: str(p, 'kubeconfig'), namespace: str(p, 'namespace'), mesh: str(p, 'mesh'), stateDir: str(p, 'state-dir'),
      controlSocket: str(p, 'control-socket'), metricsPort, metricsAddress: str(p, 'metrics-address') ?? '0.0.0.0', nodeIp,
      logLevel: level, ikePort, nattPort, datapath, retransmit,
    }, io);
  }
  const config = str(p, 'config');
  if (config === undefined) { io.err('kipsec agent: --config FILE is required with --standalone'); return EXIT_USAGE; }
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
  const chosen = datapath === 'auto' ? await chooseDatapath(xfrm) : { datapath, reason: 'asked for' };
  if (datapath === 'auto') log.info({ datapath: chosen.datapath, reason: chosen.reason }, 'datapath chosen');
  const base = { log, configFile: resolve(config), controlSocket, tuning, ikePort, nattPort, retransmit };
  let agent: Agent;
  if (chosen.datapath === 'userspace') {
    try { loadEspNative(); } catch (e) { io.err(`kipsec agent: --datapath userspace: ${errorMessage(e)}`); xfrm.close(); rtnl.close(); return EXIT_NOT_BUILT; }
    // The kernel holds nothing of ours: no XFRM socket, and no state directory (SAs die with the process).
    xfrm.close();
    const dp = new UserspaceDatapath({ rtnl, log: log.child({ part: 'esp' }) });
    agent = new Agent({
      ...base, datapath: 'userspace', espStatus: () => dp.statusView(), adaptPeer: userspacePeer, xfrm: new EspXfrm(dp), routes: new TunRoutes(rtnl, dp, log.child({ part: 'routes' })),
      sockets: new EspSockets({ ikePort, nattPort, datapath: dp, log: log.child({ part: 'udp' }), tuning }),
    });
  } else {
    agent = new Agent({
      ...base, stateDir: resolve(str(p, 'state-dir') ?? join(dirname(controlSocket), 'state')),
      xfrm, routes: new TableRoutes(rtnl, log.child({ part: 'routes' })), links: new XfrmInterfaces(rtnl, () => XfrmLinks.open(), log.child({ part: 'links' })),
    });
  }
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
