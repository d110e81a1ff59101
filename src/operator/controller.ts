// One controller's worker loops: the leader check, metrics and how a failed reconcile is reported.
// A failure never ends the controller (runWorkers requeues it with per-key backoff); what differs
// by cause is only how loud the report is:
//  - 409 Conflict: a write carried a resourceVersion that is no longer current (Kubernetes API
//    conventions, "Concurrency Control and Consistency"): someone wrote the object between our read
//    and our write. Expected in normal operation; retried after the cache has caught up.
//  - NotLeaderError: the lease ran out before a write (fence.ts). Retried while this term lasts;
//    a real loss shuts the queue down, and the next term starts from every key.
//  - anything else, thrown values that are not Errors included: a warning with the key.
import { errorMessage } from '../common/errors.js';
import { isConflict } from '../api/kube/errors.js';
import { NotLeaderError, isNotLeader } from './fence.js';
import type { Logger } from './logger.js';
import type { OperatorMetrics } from './metrics.js';
import { runWorkers, type WorkQueue } from './queue.js';

export type FailureKind = 'conflict' | 'not-leader' | 'error';

export function failureKind(e: unknown): FailureKind {
  return isConflict(e) ? 'conflict' : isNotLeader(e) ? 'not-leader' : 'error';
}

/** A printable message for any thrown value, even one whose toString throws. */
export function describeThrown(e: unknown): string {
  try { return errorMessage(e); } catch { /* e.g. Object.create(null) */ }
  try { return `non-Error value ${Object.prototype.toString.call(e)}`; } catch { return 'unprintable thrown value'; }
}

export interface ControllerDeps {
  readonly log: Logger;
  readonly metrics: OperatorMetrics;
  /** The freshness-checked leader test (LeaderElector.isLeader). */
  readonly isLeader: () => boolean;
}

/** Run `workers` loops of `reconcile` over `queue` until the queue shuts down. */
export function runController(name: string, queue: WorkQueue<string>, workers: number, reconcile: (key: string) => Promise<number | undefined>, d: ControllerDeps): Promise<void> {
  return runWorkers(queue, workers, async (k) => {
    // The lease may have run out while this key waited (a paused process, a hung renewal). Thrown,
    // not dropped: if the renewal was only late, this term goes on and the key must still be done.
    if (!d.isLeader()) throw new NotLeaderError(`reconcile of ${name} ${k}`);
    const end = d.metrics.reconcileSeconds.startTimer({ controller: name });
    try {
      const r = await reconcile(k);
      d.metrics.reconciles.inc({ controller: name, result: 'ok' });
      return r;
    } finally { end(); d.metrics.queueDepth.set({ controller: name }, queue.length); }
  }, (k, e, retryMs) => {
    const kind = failureKind(e);
    d.metrics.reconciles.inc({ controller: name, result: kind });
    const fields = { controller: name, key: k, retryMs, err: describeThrown(e) };
    if (kind === 'conflict') d.log.debug(fields, 'write conflicted with a newer version of the object; will retry');
    else if (kind === 'not-leader') d.log.debug(fields, 'not the leader at write time; will retry while this term lasts');
    else d.log.warn(fields, 'reconcile failed; will retry');
  });
}
