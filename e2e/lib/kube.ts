// The apiserver lane from a test's point of view: a KubeConfig for the real kube-apiserver that
// e2e/apiserver.sh runs. The lane runner exports KIPSEC_KUBECONFIG; run alone, a test starts the
// apiserver itself (it stays up for the next test; `bash e2e/apiserver.sh stop` ends it).
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as k8s from '@kubernetes/client-node';

const here = dirname(fileURLToPath(import.meta.url));

export function kubeconfigPath(): string {
  const fromEnv = process.env['KIPSEC_KUBECONFIG'];
  if (fromEnv) return fromEnv;
  const out = execFileSync('bash', [join(here, '..', 'apiserver.sh'), 'start'], { encoding: 'utf8', timeout: 900_000, stdio: ['ignore', 'pipe', 'inherit'] });
  const path = out.trim().split('\n').pop() ?? '';
  process.env['KIPSEC_KUBECONFIG'] = path;
  return path;
}

export function loadKubeConfig(): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(kubeconfigPath());
  return kc;
}

/** A name unique to this process and call, for objects a test creates. */
let seq = 0;
export function uniqueName(prefix: string): string {
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${seq++}`.toLowerCase();
}

/** Poll until fn returns a value (not undefined), bounded in time. */
export async function eventually<T>(fn: () => Promise<T | undefined>, timeoutMs = 20_000, stepMs = 100): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try { const v = await fn(); if (v !== undefined) return v; } catch (e) { last = e; }
    if (Date.now() > end) throw new Error(`eventually: timed out after ${timeoutMs} ms${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}
