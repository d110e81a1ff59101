// `kipsec operator [--kubeconfig PATH] [--namespace NS] [--health-port N] [--log-level L]
//  [--identity NAME] [--cert-manager]`: runs the operator until SIGTERM/SIGINT.
import { hostname } from 'node:os';
import { systemClock } from '../common/time.js';
import { errorMessage } from '../common/errors.js';
import { KubeClient } from '../api/kube/client.js';
import { loadDefaultKubeconfig, loadKubeconfigFile, type KubeCredentials } from '../api/kube/kubeconfig.js';
import { DEFAULT_NAMESPACE } from '../api/names.js';
import { Operator } from '../operator/operator.js';
import { rootLogger } from '../operator/logger.js';

export interface OperatorCliIo { out(line: string): void; err(line: string): void }

interface Args { kubeconfig?: string; namespace: string; healthPort: number; logLevel: string; identity: string; certManager: boolean }

function parseArgs(argv: readonly string[]): Args | string {
  const a: Args = { namespace: process.env['POD_NAMESPACE'] ?? DEFAULT_NAMESPACE, healthPort: 8080, logLevel: 'info', identity: process.env['POD_NAME'] ?? `${hostname()}-${process.pid}`, certManager: false };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!; const v = argv[i + 1];
    const need = (): string => { if (v === undefined) throw new Error(`${k} needs a value`); i++; return v; };
    try {
      switch (k) {
        case '--kubeconfig': a.kubeconfig = need(); break;
        case '--namespace': a.namespace = need(); break;
        case '--health-port': a.healthPort = Number(need()); break;
        case '--log-level': a.logLevel = need(); break;
        case '--identity': a.identity = need(); break;
        case '--cert-manager': a.certManager = true; break;
        default: return `unknown option ${k}`;
      }
    } catch (e) { return errorMessage(e); }
  }
  if (!Number.isInteger(a.healthPort) || a.healthPort < 0 || a.healthPort > 65535) return '--health-port must be 0..65535';
  return a;
}

/** Entry point for the CLI table: returns the exit status once the operator has stopped. */
export async function runOperator(argv: readonly string[], io: OperatorCliIo): Promise<number> {
  const a = parseArgs(argv);
  if (typeof a === 'string') { io.err(`kipsec operator: ${a}`); return 2; }
  const log = rootLogger(a.logLevel);
  let kc: KubeCredentials;
  try {
    kc = a.kubeconfig ? loadKubeconfigFile(a.kubeconfig) : loadDefaultKubeconfig();
  } catch (e) { io.err(`kipsec operator: cannot load kubeconfig: ${errorMessage(e)}`); return 1; }
  const kube = new KubeClient(kc);
  const op = new Operator({ kube, namespace: a.namespace, identity: a.identity, clock: systemClock, log, healthPort: a.healthPort, certManager: a.certManager, defaultMetrics: true });
  let stopping: Promise<void> | undefined;
  const stop = (sig: string): void => { if (!stopping) { log.info({ signal: sig }, 'shutting down'); stopping = op.stop(); } };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  // A timer that keeps the process alive from the start: the clock's timers are unref'd, so while
  // the informers retry an apiserver that does not answer yet nothing else would, and Node exited
  // with 13 (an unsettled top-level await) — a crash loop in a pod until the apiserver is back.
  const done = new Promise<void>((resolve) => { const t = setInterval(() => { if (stopping) { clearInterval(t); void stopping.then(resolve); } }, 200); });
  const starting = op.start();
  starting.catch(() => undefined); // a start that fails after SIGTERM won the race is no unhandled rejection
  try {
    await Promise.race([starting, done]);
  } catch (e) {
    log.error({ err: errorMessage(e) }, 'operator failed to start');
    stopping ??= op.stop();
    await done;
    return 1;
  }
  await done;
  return 0;
}
