// The leader fence: the API client the controllers get refuses every write unless this operator
// holds the lease at that moment (LeaderElector.isLeader, which is false as soon as the last
// renewal is renewDeadline old). A check at reconcile start alone leaves the whole reconcile —
// reads, parsing, signing, an await on a slow apiserver — between the check and the write; here
// the check is the last thing before the request is sent. It narrows the window, it cannot close
// it (a process may pause between the check and the send): the resourceVersion every write carries
// (optimistic concurrency) is what turns a deposed leader's late, stale write into a 409.
import { KipsecError } from '../common/errors.js';
import type { KubeClient } from '../api/kube/client.js';

/** What the controllers use of the API client. */
export type OperatorKube = Pick<KubeClient, 'get' | 'create' | 'update' | 'delete' | 'mergePatch' | 'apply' | 'request'>;

/** A write was about to be sent while this operator does not hold the lease. */
export class NotLeaderError extends KipsecError {
  constructor(what: string) { super('ERR_NOT_LEADER', `not the leader: refused to send ${what}`); }
}
export const isNotLeader = (e: unknown): boolean => e instanceof NotLeaderError;

type Query = Parameters<KubeClient['get']>[1];
type RequestOptions = Parameters<KubeClient['request']>[2];

/** `kube` with every non-GET request checked against `mayWrite()` immediately before it is sent. */
export function fencedKube(kube: OperatorKube, mayWrite: () => boolean): OperatorKube {
  // A refusal is a rejected promise, like every failed request, never a synchronous throw.
  const guarded = <R>(verb: string, path: string, send: () => Promise<R>): Promise<R> =>
    (mayWrite() ? send() : Promise.reject(new NotLeaderError(`${verb} ${path}`)));
  return {
    get: <T>(path: string, query?: Query, accept?: string) => kube.get<T>(path, query, accept),
    create: <T>(path: string, body: unknown, query?: Query) => guarded('POST', path, () => kube.create<T>(path, body, query)),
    update: <T>(path: string, body: unknown) => guarded('PUT', path, () => kube.update<T>(path, body)),
    delete: <T>(path: string, query?: Query) => guarded('DELETE', path, () => kube.delete<T>(path, query)),
    mergePatch: <T>(path: string, patch: unknown, fieldManager?: string) => guarded('PATCH', path, () => kube.mergePatch<T>(path, patch, fieldManager)),
    apply: <T>(path: string, obj: unknown, fieldManager: string, force?: boolean) => guarded('PATCH (apply)', path, () => kube.apply<T>(path, obj, fieldManager, force)),
    request: <T>(method: string, path: string, opts?: RequestOptions) =>
      (method === 'GET' ? kube.request<T>(method, path, opts) : guarded(method, path, () => kube.request<T>(method, path, opts))),
  };
}
