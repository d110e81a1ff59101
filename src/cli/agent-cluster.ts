// `kipsec agent --node-name NAME …` (cluster mode): composes the cluster agent (src/agent/mesh)
// from the Kubernetes client, XFRM/rtnetlink, the native addon, the metrics server and the agent
// core, and runs it until SIGTERM/SIGINT. The data path is chosen by the node agent once the mesh is
// listed (src/agent/mesh/datapath.ts): kernel XFRM, or the userspace ESP engine over a TUN device
// with the peers' pod CIDRs routed into it (src/agent/userspace/mesh-routes.ts). Exit status: 0 after SIGTERM, 2 for usage problems, 1
// when the agent cannot start (no netlink, no kubeconfig, the metrics port taken).
import { resolve } from 'node:path';
import { errorMessage } from '../common/errors.js';
import { systemClock } from '../common/time.js';
import { KubeClient } from '../api/kube/client.js';
import { loadInCluster, loadKubeconfigFile, type KubeCredentials } from '../api/kube/kubeconfig.js';
import { DEFAULT_NAMESPACE } from '../api/names.js';
import { Agent } from '../agent/daemon.js';
import { DEFAULT_CONTROL_SOCKET } from '../agent/control/protocol.js';
import { createLogger, type Logger } from '../agent/log.js';
import { AgentMetrics, startMetricsServer } from '../agent/metrics.js';
import { NodeIdentity } from '../agent/mesh/identity.js';
import { NodeAgent } from '../agent/mesh/node-agent.js';
import { NodePublisher } from '../agent/mesh/publisher.js';
import { TunnelGateways } from '../agent/gateway/gateways.js';
import { GatewayRouteTable } from '../agent/gateway/node-routes.js';
import { TableRoutes } from '../agent/routes.js';
import { XfrmInterfaces } from '../agent/xfrm-interfaces.js';
import { prepareStateDir } from '../agent/mesh/state-dir.js';
import { MeshWatch } from '../agent/mesh/watch.js';
import { probeKernelEsp } from '../agent/diagnose.js';
import type { DatapathFlag } from '../agent/mesh/datapath.js';
import type { RetransmitOptions } from './retransmit.js';
import { loadTuning } from '../agent/native.js';
import { UserspaceDatapath } from '../agent/userspace/datapath.js';
import { EspXfrm } from '../agent/userspace/esp-xfrm.js';
import { MeshTunRoutes } from '../agent/userspace/mesh-routes.js';
import { EspSockets } from '../agent/userspace/sockets.js';
import { loadEspNative } from '../esp/index.js';
import { RtnlClient, XfrmClient } from '../xfrm/index.js';
import { XfrmLinks } from '../xfrm/rtnl/xfrm-links.js';
import { EXIT_FAILURE, EXIT_OK, type CliIo } from './commands.js';

export interface ClusterArgs {
  readonly node: string;
  readonly kubeconfig: string | undefined;
  readonly namespace: string | undefined;
  readonly mesh: string | undefined;
  readonly stateDir: string | undefined;
  readonly controlSocket: string | undefined;
  readonly metricsPort: number;
  readonly metricsAddress: string;
  readonly nodeIp: string | undefined;
  readonly logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  readonly ikePort: number;
  readonly nattPort: number;
  readonly datapath: DatapathFlag;
  readonly retransmit: RetransmitOptions;
}

export const DEFAULT_STATE_DIR = '/var/lib/kipsec';

function kubeClient(a: ClusterArgs): KubeClient {
  let kc: KubeCredentials;
  if (a.kubeconfig) kc = loadKubeconfigFile(a.kubeconfig);
  else if (process.env['KUBERNETES_SERVICE_HOST']) kc = loadInCluster();
  else throw new Error('no --kubeconfig given and not running in a pod (KUBERNETES_SERVICE_HOST is not set)');
  return new KubeClient(kc, { maxSockets: 8 });
}

export async function runClusterAgent(a: ClusterArgs, io: CliIo): Promise<number> {
  const log: Logger = createLogger({ level: a.logLevel }).child({ node: a.node });
  let kube: KubeClient;
  try { kube = kubeClient(a); } catch (e) { io.err(`kipsec agent: cannot load the cluster credentials: ${errorMessage(e)}`); return EXIT_FAILURE; }
  const tuning = loadTuning();
  if (!tuning.available) log.warn({ reason: tuning.description }, 'native addon missing: no UDP_ENCAP (NAT-T ESP-in-UDP) and no per-socket IKE bypass');
  let xfrm: XfrmClient; let rtnl: RtnlClient;
  try { xfrm = XfrmClient.open(); rtnl = RtnlClient.open(); } catch (e) {
    io.err(`kipsec agent: cannot open netlink (XFRM/rtnetlink): ${errorMessage(e)}; run \`kipsec diagnose\``);
    return EXIT_FAILURE;
  }
  const stateDir = resolve(a.stateDir ?? DEFAULT_STATE_DIR);
  let dirs;
  try { dirs = prepareStateDir(stateDir); } catch (e) { io.err(`kipsec agent: state directory ${stateDir}: ${errorMessage(e)}`); return EXIT_FAILURE; }
  if (dirs.discarded > 0) log.info({ files: dirs.discarded }, 'the kernel rebooted since the IKE SA checkpoints were written; they describe SAs it no longer has and were discarded');
  const namespace = a.namespace ?? process.env['POD_NAMESPACE'] ?? DEFAULT_NAMESPACE;
  const controlSocket = resolve(a.controlSocket ?? DEFAULT_CONTROL_SOCKET);
  const metrics = new AgentMetrics(true);
  // Made once the data path is chosen userspace: the engine opens when the node address binds.
  let esp: UserspaceDatapath | undefined;
  const userspace = (): UserspaceDatapath => {
    if (!esp) { loadEspNative(); esp = new UserspaceDatapath({ rtnl, log: log.child({ part: 'esp' }) }); }
    return esp;
  };
  const watch = new MeshWatch(kube, { node: a.node, namespace, clock: systemClock, log: log.child({ part: 'watch' }) });
  const publisher = new NodePublisher({ kube, node: a.node, namespace, clock: systemClock, log: log.child({ part: 'publish' }) });
  // Route-mode tunnels' XFRM interfaces (kernel data path; the userspace one refuses route mode).
  const links = new XfrmInterfaces(rtnl, () => XfrmLinks.open(), log.child({ part: 'links' }));
  const gateways = new TunnelGateways({ kube, node: a.node, namespace, labels: () => watch.labelsOf(a.node), clock: systemClock, log: log.child({ part: 'gateway' }), links });
  const node = new NodeAgent({
    node: a.node, ...(a.mesh ? { meshName: a.mesh } : {}), ...(a.nodeIp ? { nodeIp: a.nodeIp } : {}), ikePort: a.ikePort, nattPort: a.nattPort,
    kube, watch, publisher, gateways, metrics, clock: systemClock, log,
    gatewayRoutes: new GatewayRouteTable(rtnl, log.child({ part: 'gateway-routes' })),
    links: () => rtnl.listLinks(),
    identity: (ips) => {
      const id = new NodeIdentity({ kube, node: a.node, nodeIps: ips, dir: dirs.identity, namespace, clock: systemClock, log: log.child({ part: 'identity' }) });
      // Certificate-authenticated IPsecTunnels present the node's identity, renewals included.
      gateways.useIdentity(() => id.meshIdentity(watch.trustBundle()));
      return id;
    },
    datapath: {
      flag: a.datapath,
      kernelEsp: () => probeKernelEsp(xfrm),
      routes: (c) => (c.datapath === 'userspace' ? new MeshTunRoutes({ rtnl, datapath: userspace(), log: log.child({ part: 'routes' }) }) : undefined),
    },
    // Userspace: no state directory — the SAs live in this process and die with it.
    agent: (cluster, c) => (c.datapath === 'userspace'
      ? new Agent({
        log, controlSocket, xfrm: new EspXfrm(userspace()), tuning, retransmit: a.retransmit, ikePort: a.ikePort, nattPort: a.nattPort, cluster, datapath: 'userspace', datapathReason: c.reason, espStatus: () => userspace().statusView(),
        sockets: new EspSockets({ ikePort: a.ikePort, nattPort: a.nattPort, datapath: userspace(), log: log.child({ part: 'udp' }), tuning }),
      })
      // Kernel: a gateway's tunnel routes its remote subnets in table 220 (spec.installRoutes), as standalone.
      : new Agent({ log, controlSocket, stateDir: dirs.sa, xfrm, tuning, routes: new TableRoutes(rtnl, log.child({ part: 'routes' })), retransmit: a.retransmit, ikePort: a.ikePort, nattPort: a.nattPort, cluster, datapath: 'kernel', datapathReason: c.reason })),
  });
  let server: import('node:http').Server | undefined;
  if (a.metricsPort > 0) {
    try {
      const s = await startMetricsServer(metrics, { healthy: () => true, ready: () => node.ready(), refresh: () => node.refreshMetrics() }, a.metricsPort, a.metricsAddress);
      server = s.server;
      log.info({ address: a.metricsAddress, port: s.port }, 'metrics and health endpoints listening');
    } catch (e) {
      io.err(`kipsec agent: cannot listen on ${a.metricsAddress}:${a.metricsPort} for metrics: ${errorMessage(e)}`);
      xfrm.close(); rtnl.close(); kube.close();
      return EXIT_FAILURE;
    }
  }
  return new Promise<number>((done) => {
    let stopping = false;
    const stop = (sig: string): void => {
      if (stopping) return;
      stopping = true;
      log.info({ signal: sig }, 'signal received');
      node.stop().then((kernel) => {
        log.info({ kernel }, kernel === 'kept' ? 'agent stopped; SAs and policies stay in the kernel for the next agent' : 'agent stopped');
        server?.close(); rtnl.close(); kube.close();
        done(EXIT_OK);
      }, (e: unknown) => { log.error({ err: errorMessage(e) }, 'shutdown failed'); done(EXIT_FAILURE); });
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
    node.start().catch((e: unknown) => {
      log.error({ err: errorMessage(e) }, 'cluster agent failed to start');
      io.err(`kipsec agent: cannot start: ${errorMessage(e)}`);
      void node.stop().finally(() => { server?.close(); rtnl.close(); kube.close(); done(EXIT_FAILURE); });
    });
  });
}
