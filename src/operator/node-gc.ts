// Garbage collection of IPsecNodes whose Node is gone. An agent writes the IPsecNode named after
// its node and nothing else removes it: the agent leaves with the node, agents set no
// ownerReferences, and a cluster need not run the garbage collector for them anyway. A stale
// IPsecNode is a ghost peer every agent keeps trying to reach, and a mesh that never gets Ready.
// So the operator deletes it — when the Node is deleted, and on start for IPsecNodes naming a Node
// that does not exist:
//  - only once both caches have synced: a partial list must never delete anything;
//  - only after the apiserver itself says the Node is not there (the Node cache may lag behind the
//    IPsecNode cache, e.g. for a Node created just before its agent published);
//  - only the object it looked at (uid precondition): an IPsecNode created again in the meantime
//    by an agent whose Node is back stays.
import { RESOURCES, resourcePath } from '../api/kube/client.js';
import { isConflict, isNotFound } from '../api/kube/errors.js';
import { API_VERSION, KINDS } from '../api/names.js';
import type { ObjectMeta } from '../api/types.js';
import type { Ctx } from './context.js';

/** Event reason on the IPsecNode (cluster-scoped, so the Event lives in "default"). */
export const NODE_GONE_REASON = 'NodeGone';
/** While the caches have not synced, look again this much later. */
const UNSYNCED_RETRY_MS = 1000;

/**
 * The IPsecNodes to delete: those whose Node does not exist, and none at all before the caches
 * synced. Objects already being deleted are left to finish.
 */
export function orphanedIpsecNodes<T extends { readonly metadata: Pick<ObjectMeta, 'name' | 'deletionTimestamp'> }>(
  ipsecNodes: readonly T[], nodeExists: (name: string) => boolean, synced: boolean,
): T[] {
  if (!synced) return [];
  return ipsecNodes.filter((n) => n.metadata.deletionTimestamp === undefined && !nodeExists(n.metadata.name));
}

/** Reconcile one IPsecNode name: delete it if its Node is gone. Returns a requeue delay or undefined. */
export async function collectIpsecNode(ctx: Ctx, name: string): Promise<number | undefined> {
  const { nodes, ipsecNodes } = ctx.caches;
  const n = ipsecNodes.get(name);
  if (!n) return undefined;
  const synced = nodes.hasSynced && ipsecNodes.hasSynced;
  if (!synced) return UNSYNCED_RETRY_MS;
  if (orphanedIpsecNodes([n], (x) => nodes.get(x) !== undefined, synced).length === 0) return undefined;
  try {
    await ctx.kube.get(resourcePath(RESOURCES.nodes, { name }));
    return undefined; // the Node exists: our cache lags, its add event is on the way
  } catch (e) { if (!isNotFound(e)) throw e; }
  const uid = n.metadata.uid;
  try {
    await ctx.kube.request('DELETE', resourcePath(RESOURCES.ipsecNodes, { name }), {
      body: { apiVersion: 'v1', kind: 'DeleteOptions', ...(uid ? { preconditions: { uid } } : {}) },
    });
  } catch (e) {
    // Gone already, or a new IPsecNode by that name (its own add event brings it back here).
    if (isNotFound(e) || isConflict(e)) return undefined;
    throw e;
  }
  const note = `deleted IPsecNode ${name}: Node ${name} does not exist`;
  ctx.log.info({ ipsecNode: name, uid }, 'deleted the IPsecNode of a Node that does not exist');
  ctx.metrics.ipsecNodesCollected.inc();
  ctx.events.emit({ apiVersion: API_VERSION, kind: KINDS.IPsecNode.kind, name, ...(uid ? { uid } : {}) }, 'Normal', NODE_GONE_REASON, 'Delete', note);
  return undefined;
}
