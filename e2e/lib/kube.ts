// The apiserver lane from a test's point of view: a KubeConfig for the real kube-apiserver that
// e2e/apiserver.sh runs. The lane runner exports KIPSEC_KUBECONFIG; run alone, a test starts the
// apiserver itself (it stays up for the next test; `bash e2e/apiserver.sh stop` ends it).
import { execFileSync } from 'node:child_process';
import * as k8s from '@kubernetes/client-node';
import { repoPath } from '../../test/lib/paths.js';

export function kubeconfigPath(): string {
  const fromEnv = process.env['KIPSEC_KUBECONFIG'];
  if (fromEnv) return fromEnv;
  const out = execFileSync('bash', [repoPath('e2e/apiserver.sh'), 'start'], { encoding: 'utf8', timeout: 900_000, stdio: ['ignore', 'pipe', 'inherit'] });
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
export async function eventually<T>(fn: () => Promise<T | undefined>, timeoutMs = 20_000, stepMs = 100, explain?: { readonly what: string; readonly state: () => string | Promise<string> }): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try { const v = await fn(); if (v !== undefined) return v; } catch (e) { last = e; }
    if (Date.now() > end) {
      if (explain) throw new Error(`${explain.what}: not within ${timeoutMs} ms${last ? ` (last error: ${String(last)})` : ''}:\n${await explain.state()}`);
      throw new Error(`eventually: timed out after ${timeoutMs} ms${last ? `: ${String(last)}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

/**
 * Start watching `path` and resolve with the first event type for which `match(obj)` holds.
 * Returns once the watch is running (so the caller can then create the object); `event` settles
 * later. A new CRD's watch cache answers 429 while it initialises: restart, as client-go does.
 */
export async function watchFor(kc: k8s.KubeConfig, path: string, match: (obj: unknown) => boolean, timeoutMs = 15_000): Promise<{ event: Promise<string>; stop(): void }> {
  let stopped = false;
  let current: { abort(): void } | undefined;
  let settle: (v: string) => void = () => undefined;
  let fail: (e: Error) => void = () => undefined;
  const event = new Promise<string>((res, rej) => { settle = res; fail = rej; });
  const timer = setTimeout(() => fail(new Error(`no matching watch event on ${path} within ${timeoutMs} ms`)), timeoutMs);
  const stop = (): void => { stopped = true; clearTimeout(timer); current?.abort(); };
  void event.then(stop, stop);
  let attempts = 0;
  const start = async (): Promise<void> => {
    if (stopped) return;
    attempts++;
    current = await new k8s.Watch(kc).watch(path, {}, (type, obj: unknown) => { if (match(obj)) settle(type); }, (err) => {
      if (stopped) return;
      const code = (err as { statusCode?: number } | null)?.statusCode;
      if (code === 429 && attempts < 100) setTimeout(() => { void start().catch((e: unknown) => fail(e as Error)); }, 200);
      else fail(new Error(`watch on ${path} ended: ${err ? (err as Error).message : 'closed'}`));
    });
  };
  await start();
  return { event, stop };
}
