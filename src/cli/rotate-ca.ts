// `kipsec rotate-ca [--kubeconfig PATH | --cluster] [--namespace NS] [--wait] [--timeout DURATION]`:
// asks the operator to rotate the cluster CA now (the kipsec.io/rotate-ca annotation on its CA
// Secret; incident response, and tests), and with --wait follows the phases (operator/ca-rotation.ts)
// from the trust bundle ConfigMap and the IPsecNodes until the old CA has left the bundle. The
// progress is read from objects any agent can read too; only the request needs the Secret.
import { errorMessage } from '../common/errors.js';
import { parseDurationMs } from '../common/duration.js';
import type { KubeClient } from '../api/kube/client.js';
import { RESOURCES, resourcePath } from '../api/kube/client.js';
import { ANNOTATIONS, CA_SECRET, DEFAULT_NAMESPACE, TRUST_BUNDLE_CONFIGMAP, TRUST_BUNDLE_KEY } from '../api/names.js';
import type { IPsecNode } from '../api/types.js';
import { bundleFingerprints } from '../agent/mesh/ca-follow.js';
import { nodeCaViews, rotationProgress, rotationStatus } from '../operator/ca-rotation.js';
import { parseArgs, str, UsageError } from './args.js';
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, type CliIo } from './commands.js';
import { kubeClient, listAll } from './mesh-status.js';

interface BundleMap { metadata: { annotations?: Record<string, string> }; data?: Record<string, string> }
interface CaSecret { metadata: { annotations?: Record<string, string> }; data?: Record<string, string> }

/** The phase as the bundle ConfigMap shows it, and the CA the phase is about. */
export function bundlePhase(b: BundleMap): { phase: 'Idle' | 'Trusting' | 'Reissuing'; signing: string | undefined; newCa: string | undefined; cas: string[] } {
  const cas = bundleFingerprints(b.data?.[TRUST_BUNDLE_KEY] ?? '');
  const signing = b.metadata.annotations?.[ANNOTATIONS.signingCa];
  const p = b.metadata.annotations?.[ANNOTATIONS.caRotationPhase];
  const phase = p === 'Trusting' || p === 'Reissuing' ? p : 'Idle';
  // Trusting: the new CA is the bundle's CA that does not sign yet; Reissuing: the one that signs.
  const newCa = phase === 'Trusting' ? cas.find((c) => c !== signing) : phase === 'Reissuing' ? signing : undefined;
  return { phase, signing, newCa, cas };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function runRotateCa(args: readonly string[], io: CliIo): Promise<number> {
  let kube: KubeClient;
  try {
    const p = parseArgs(args, { values: ['kubeconfig', 'namespace', 'timeout'], booleans: ['cluster', 'wait'] });
    if (p.positionals.length > 0) throw new UsageError(`unexpected argument ${p.positionals[0]!}`);
    const ns = str(p, 'namespace') ?? DEFAULT_NAMESPACE;
    const timeoutMs = parseDurationMs(str(p, 'timeout') ?? '15m', '--timeout');
    kube = await kubeClient(p);
    try { return await rotate(kube, ns, p.flags.has('wait'), timeoutMs, io); } finally { kube.close(); }
  } catch (e) {
    if (e instanceof UsageError) { io.err(`kipsec rotate-ca: ${e.message}`); return EXIT_USAGE; }
    io.err(`kipsec rotate-ca: ${errorMessage(e)}`);
    return EXIT_FAILURE;
  }
}

async function rotate(kube: KubeClient, ns: string, wait: boolean, timeoutMs: number, io: CliIo): Promise<number> {
  const secretPath = resourcePath(RESOURCES.secrets, { namespace: ns, name: CA_SECRET });
  const bundlePath = resourcePath(RESOURCES.configMaps, { namespace: ns, name: TRUST_BUNDLE_CONFIGMAP });
  const s = await kube.get<CaSecret>(secretPath).catch((e: unknown) => { throw new Error(`cannot read Secret ${ns}/${CA_SECRET} (is the operator installed in ${ns}? --namespace): ${errorMessage(e)}`); });
  const running = s.data?.['next.crt'] !== undefined || s.data?.['previous.crt'] !== undefined;
  const before = bundlePhase(await kube.get<BundleMap>(bundlePath));
  if (running) io.out(`a CA rotation is already in progress (${before.phase}); not starting another`);
  else {
    await kube.mergePatch(secretPath, { metadata: { annotations: { [ANNOTATIONS.caRotateRequested]: 'true' } } });
    io.out(`CA rotation requested (current CA ${before.signing?.slice(0, 16) ?? '?'}…); the operator adds the next CA to the trust bundle`);
  }
  if (!wait) { io.out(`follow it: kubectl get ipsecmesh -o jsonpath='{.items[*].status.caRotation}', or kipsec rotate-ca --wait`); return EXIT_OK; }
  const deadline = Date.now() + timeoutMs;
  let last = '';
  let seenRotation = running;
  for (;;) {
    const b = bundlePhase(await kube.get<BundleMap>(bundlePath));
    let line: string;
    if (b.phase === 'Idle') {
      line = `Idle: signing with CA ${b.signing?.slice(0, 16) ?? '?'}…, ${b.cas.length} CA(s) in the bundle`;
      if (seenRotation || (b.signing !== undefined && b.signing !== before.signing)) { if (line !== last) io.out(line); io.out('CA rotation finished: the old CA has left the trust bundle'); return EXIT_OK; }
    } else {
      seenRotation = true;
      const nodes = nodeCaViews(await listAll<IPsecNode>(kube, resourcePath(RESOURCES.ipsecNodes)));
      line = b.newCa ? rotationStatus(rotationProgress(b.phase, b.newCa, nodes), b.newCa, undefined).message ?? b.phase : `${b.phase}: the new CA is not in the bundle yet`;
    }
    if (line !== last) { io.out(line); last = line; }
    if (Date.now() > deadline) { io.err(`kipsec rotate-ca: not finished within the timeout; last: ${line}`); return EXIT_FAILURE; }
    await sleep(2_000);
  }
}
