// What the agent's informers keep of each watched object (Informer's transform, as the operator's
// src/operator/trim.ts). Every node runs an agent that caches every IPsecNode and every Node's
// metadata, so each byte kept per object is paid N × N across a cluster. Measured with
// bench/agent-watch-memory.ts at 5,000 nodes: the watches held 8.0 KiB of V8 heap per node
// untrimmed, mostly managedFields (the agent's and the operator's server-side applies, the
// kubelet's status updates) that no agent code reads.
//
// Kept, by reader:
//   IPsecNode spec: whole (desired.ts: endpoint, podCIDRs, traffic, identity).
//   IPsecNode status of this node: whole (node-agent.ts reads its conditions back).
//   IPsecNode status of another node: what reconnect.ts reads (lastUpdateTime, peersListed,
//     peersExpected and only the peers entry about this node; `unlistedPeersUp`).
//   Node metadata: name, resourceVersion, uid, labels (the mesh nodeSelector).
//   This node: also spec.podCIDR(s) and status.addresses.
import type { KubeObject } from '../../api/kube/informer.js';
import type { IPsecNode, IPsecNodeStatus } from '../../api/types.js';

type Meta = KubeObject['metadata'] & { uid?: string; labels?: Record<string, string>; managedFields?: unknown };

/** What the agent reads of its own Node (watch.ts NodeObject). */
interface NodeLike { metadata: Meta; spec?: { podCIDR?: string; podCIDRs?: string[] }; status?: { addresses?: { type: string; address: string }[] } }

/** Drops metadata.managedFields in place (the object is freshly parsed and not yet shared). */
export function withoutManagedFields<T extends KubeObject>(o: T): T {
  const m = o.metadata as Meta;
  if (m.managedFields !== undefined) delete m.managedFields;
  return o;
}

/** Name, resourceVersion, uid and labels of an object's metadata. */
function slimMeta(m: Meta): Meta {
  const out: Meta = { name: m.name };
  if (m.resourceVersion !== undefined) out.resourceVersion = m.resourceVersion;
  if (m.uid !== undefined) out.uid = m.uid;
  if (m.labels !== undefined) out.labels = m.labels;
  return out;
}

/** A Node's metadata as the nodeSelector reads it. */
export function trimNodeMeta<T extends KubeObject>(n: T): T {
  return { metadata: slimMeta(n.metadata as Meta) } as T;
}

/** This node's Node: its metadata as above, pod CIDRs and addresses. */
export function trimOwnNode<T extends NodeLike>(n: T): T {
  const spec: NonNullable<NodeLike['spec']> = {};
  if (n.spec?.podCIDR !== undefined) spec.podCIDR = n.spec.podCIDR;
  if (n.spec?.podCIDRs !== undefined) spec.podCIDRs = n.spec.podCIDRs;
  const out: NodeLike = { metadata: slimMeta(n.metadata), spec };
  if (n.status?.addresses !== undefined) out.status = { addresses: n.status.addresses };
  return out as T;
}

/** An IPsecNode as this node's agent reads it: whole for itself, the peer's view of us for others. */
export function trimIpsecNode(self: string): (n: IPsecNode) => IPsecNode {
  return (n) => {
    withoutManagedFields(n);
    if (n.metadata.name === self || n.status === undefined) return n;
    const s = n.status;
    const status: IPsecNodeStatus = {};
    if (s.lastUpdateTime !== undefined) status.lastUpdateTime = s.lastUpdateTime;
    if (s.peersListed !== undefined) status.peersListed = s.peersListed;
    if (s.peersExpected !== undefined) status.peersExpected = s.peersExpected;
    const aboutUs = s.peers?.filter((p) => p.node === self);
    if (aboutUs !== undefined) status.peers = aboutUs;
    n.status = status;
    return n;
  };
}
