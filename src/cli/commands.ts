// The `kipsec` command table. A command that is not built yet says so and exits non-zero, so no
// script mistakes a placeholder for a working command.

export interface CliIo {
  out(line: string): void;
  err(line: string): void;
}

export interface Command {
  readonly name: string;
  readonly usage: string;
  readonly summary: string;
  /** More for `kipsec COMMAND --help`: options and exit status, one string with line breaks. */
  readonly help?: string;
  /** Absent while the capability is not built (the command then says so and exits 3). */
  readonly run?: (args: readonly string[], io: CliIo) => Promise<number>;
}

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;
/** Exit status of a command whose capability has not been built yet. */
export const EXIT_NOT_BUILT = 3;

// Command modules load on use (dynamic import), so `kipsec status` never loads the IKE engine.
export const COMMANDS: readonly Command[] = [
  { name: 'agent', usage: 'agent --node-name NAME [--kubeconfig PATH] [--state-dir DIR] [--metrics-port N] … | agent --standalone --config FILE …', summary: 'run the per-node IKEv2 agent',
    help: [
      'cluster mode (the DaemonSet runs this on every node):',
      '  --node-name NAME        the Node this agent runs on (required)',
      '  --kubeconfig PATH       default: the pod\'s service account (in-cluster)',
      '  --namespace NS          where the operator keeps the trust bundle (default $POD_NAMESPACE or kipsec-system)',
      '  --mesh NAME             the IPsecMesh to follow (default: "default", else the oldest)',
      '  --node-ip IP            the IKE endpoint (default: the Node\'s first InternalIP)',
      '  --state-dir DIR         node key and certificate (identity/), IKE SA checkpoints (sa/); default /var/lib/kipsec',
      '  --control-socket PATH   for `kipsec status` on the node (default /run/kipsec/agent.sock)',
      '  --metrics-port N        /metrics, /healthz, /readyz (default 9964; 0: off); --metrics-address A (default 0.0.0.0)',
      '  On SIGTERM the SAs and policies stay in the kernel while the mesh selects the node (a restart',
      '  drops nothing); they are removed when the IPsecMesh is gone or no longer selects it.',
      'standalone mode:',
      '  --standalone --config FILE   a YAML stream of IPsecTunnel objects; SIGHUP or `kipsec reload` re-reads it',
      '  --state-dir DIR         IKE SA checkpoints (default: state/ next to the control socket); SIGTERM deletes the SAs',
      '  --datapath D            kernel (XFRM, default), userspace (ESP in UDP over the TUN device kipsec0: AEAD',
      '                          suites only, no ESN, no on-demand, SAs die with the process), or auto (kernel',
      '                          when it accepts an ESP state, else userspace)',
      'both: --log-level L, --ike-port N, --natt-port N, --datapath D (cluster mode: default auto, which follows the IPsecMesh)',
      '  --retransmit-timeout D, --retransmit-base B, --retransmit-tries N   IKE retransmissions at D x B^n,',
      '                          n = 0..N (charon\'s retransmit_*: default 4s, 1.8, 5: gives up after ~165 s)',
      'exit status: 0 after SIGTERM, 1 cannot start, 2 usage or config problem, 3 a data path this version does not have',
    ].join('\n'),
    run: async (a, io) => (await import('./agent.js')).runAgent(a, io) },
  { name: 'operator', usage: 'operator [--kubeconfig PATH] [--namespace NS]', summary: 'run the cluster operator (CRDs, identity, status)',
    run: async (a, io) => (await import('./operator.js')).runOperator(a, io) },
  { name: 'status', usage: 'status [--json] [--control-socket PATH] | status --cluster|--kubeconfig PATH [--mesh NAME] [--json]', summary: 'show tunnels, SAs, counters and last errors of a running agent, or (--cluster) the mesh\'s node pairs',
    help: [
      'this node (default): asks the local agent over its control socket',
      '  --control-socket PATH   the agent\'s socket (default $KIPSEC_CONTROL_SOCKET or /run/kipsec/agent.sock)',
      '',
      'the whole mesh (no control socket): reads the IPsecNodes and the IPsecMesh from the apiserver and',
      'prints a node x node matrix of what each node\'s agent reports about each peer, the pairs',
      'established/expected and nodes ready/total, then every pair that is not established with the',
      'error its sides report (e.g. the IKE notify)',
      '  --kubeconfig PATH   credentials from this kubeconfig file',
      '  --cluster           credentials as kubectl finds them: $KUBECONFIG, ~/.kube/config, else the',
      '                      pod\'s service account (in-cluster, e.g. `kubectl exec` into an agent pod)',
      '  --mesh NAME         the IPsecMesh whose nodeSelector picks the nodes (default: "default", else',
      '                      the oldest; with no IPsecMesh every IPsecNode is shown)',
      '  cells: UP established (or rekeying), .. connecting, XX failed, ? not reported or the row\'s',
      '         status is stale (no update for over 3 minutes), - self',
      '',
      '--json    print the data instead of the table',
      'exit status: 0 printed (whatever the state of the tunnels), 1 agent or apiserver unreachable,',
      '2 usage error.',
    ].join('\n'),
    run: async (a, io) => (await import('./control.js')).runStatus(a, io) },
  { name: 'initiate', usage: 'initiate NAME [--control-socket PATH]', summary: 'bring a tunnel up now',
    run: async (a, io) => (await import('./control.js')).runInitiate(a, io) },
  { name: 'terminate', usage: 'terminate NAME [--control-socket PATH]', summary: 'take a tunnel down, sending delete notifies',
    run: async (a, io) => (await import('./control.js')).runTerminate(a, io) },
  { name: 'rekey', usage: 'rekey NAME [--child] [--ike] [--reauth] [--control-socket PATH]', summary: 'rekey a tunnel\'s SAs now (like swanctl --rekey)',
    help: [
      'options:',
      '  --child   rekey every installed Child SA (the default): new SPIs and keys, with PFS when',
      '            esp.proposals name a DH group; the old SAs stay a few seconds (make-before-break)',
      '  --ike     rekey the IKE SA: new IKE SPIs and keys; the Child SAs move to the new IKE SA',
      '            unchanged. With both flags the IKE SA goes first, then the Child SAs on the new one.',
      '  --reauth  re-authenticate (RFC 7296 §2.8.3), make-before-break: a new IKE SA with the current',
      '            certificates and new Child SAs, then the old IKE SA is deleted; no packet waits.',
      '  --control-socket PATH   the agent\'s socket (default $KIPSEC_CONTROL_SOCKET or /run/kipsec/agent.sock)',
      '',
      'Returns once the rekey has started; `kipsec status` shows the new SPIs, the agent log the outcome.',
      'exit status: 0 started, 1 refused by the agent (unknown tunnel, no established IKE SA,',
      'no installed Child SA, rekey already running) or agent unreachable, 2 usage error.',
    ].join('\n'),
    run: async (a, io) => (await import('./control.js')).runRekey(a, io) },
  { name: 'renew', usage: 'renew [--control-socket PATH]', summary: 'cluster mode: get a new node certificate for the same key now',
    help: [
      'The agent asks the operator\'s signer for a certificate now, as it does by itself at two thirds of',
      'the certificate\'s life, publishes its fingerprint in the IPsecNode, and re-authenticates every',
      'IKE SA with it, make-before-break (a new IKE SA and Child SAs, then the old ones go).',
      '  --control-socket PATH   the agent\'s socket (default $KIPSEC_CONTROL_SOCKET or /run/kipsec/agent.sock)',
      'exit status: 0 renewed, 1 refused (standalone agent, signer refused or unreachable), 2 usage error.',
    ].join('\n'),
    run: async (a, io) => (await import('./control.js')).runRenew(a, io) },
  { name: 'rotate-ca', usage: 'rotate-ca [--kubeconfig PATH | --cluster] [--namespace NS] [--wait] [--timeout DURATION]', summary: 'cluster: rotate the node CA now, in phases, without cutting any node off',
    help: [
      'Asks the operator to rotate its CA now (as it does by itself 30 days before the CA expires):',
      '  Trusting   the next CA joins the trust bundle; the current CA still signs, until every node\'s',
      '             agent reports that its IKE engine trusts the next one',
      '  Reissuing  the next CA signs; every agent renews its certificate and re-authenticates its IKE',
      '             SAs with it (make-before-break), until every node presents a new-CA certificate',
      '  then the old CA leaves the trust bundle. A node whose agent is down holds the phase; the',
      '  IPsecMesh status (.status.caRotation) names the nodes a phase waits for.',
      '  --kubeconfig PATH | --cluster   credentials, as for `kipsec status --cluster`',
      '  --namespace NS      the operator\'s namespace (default kipsec-system)',
      '  --wait              print the progress until the rotation finished',
      '  --timeout DURATION  with --wait (default 15m)',
      'exit status: 0 requested (or, with --wait, finished), 1 apiserver error or timeout, 2 usage error.',
    ].join('\n'),
    run: async (a, io) => (await import('./rotate-ca.js')).runRotateCa(a, io) },
  { name: 'reload', usage: 'reload [--control-socket PATH]', summary: 're-read the agent config (same as SIGHUP)',
    run: async (a, io) => (await import('./control.js')).runReload(a, io) },
  { name: 'diagnose', usage: 'diagnose', summary: 'check this machine: kernel ESP, XFRM, netlink, capabilities',
    run: async (a, io) => (await import('./diagnose.js')).runDiagnose(a, io) },
];
