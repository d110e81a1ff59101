// What the operator's informers keep of each object (Informer's transform). Every cached object
// loses metadata.managedFields, which no controller reads and which on a server-side-applied
// object is often larger than the object; a Node keeps only what the operator reads — name,
// labels (mesh nodeSelector), addresses (the CSR policy's IP SAN check) — not the kubelet's
// images, conditions, capacity and nodeInfo, ~10 KB a Node parsed (50+ MB at 5,000 Nodes).
import type { NodeLease } from '../api/node-lease.js';
import type { Csr, KNode, Meta } from './kinds.js';

interface WithMeta { metadata: Meta & { managedFields?: unknown } }

/** Drops metadata.managedFields, in place: the object is freshly parsed and not yet shared. */
export function dropManagedFields<T extends WithMeta>(o: T): T {
  if (o.metadata?.managedFields !== undefined) delete o.metadata.managedFields;
  return o;
}

/** A Node as the operator reads it: identity, labels and addresses. */
export function trimNode(n: KNode): KNode {
  const m = n.metadata;
  const metadata: Meta = { name: m.name };
  if (m.uid !== undefined) metadata.uid = m.uid;
  if (m.resourceVersion !== undefined) metadata.resourceVersion = m.resourceVersion;
  if (m.labels !== undefined) metadata.labels = m.labels;
  if (m.deletionTimestamp !== undefined) metadata.deletionTimestamp = m.deletionTimestamp;
  const addresses = n.status?.addresses;
  return addresses ? { metadata, status: { addresses } } : { metadata };
}

/**
 * A CSR without managedFields; once it carries a certificate, only what is read of a signed one:
 * name, uid, resourceVersion, labels (the node it is for), signerName and the certificate (the
 * identity index reads it). The signer is done with it (reconcileCsr returns early), and a signed
 * CSR replaces the approved one in the cache for every node that joins: its request, username,
 * groups, extra, usages and condition messages were ~1 KB a node held, and as much again of
 * old-space garbage per update. In place where it can be: the object is freshly parsed.
 */
export function trimCsr(c: Csr): Csr {
  dropManagedFields(c);
  const certificate = c.status?.certificate;
  if (!certificate) return c;
  const m = c.metadata;
  const metadata: Meta = { name: m.name };
  if (m.uid !== undefined) metadata.uid = m.uid;
  if (m.resourceVersion !== undefined) metadata.resourceVersion = m.resourceVersion;
  if (m.labels !== undefined) metadata.labels = m.labels;
  if (m.deletionTimestamp !== undefined) metadata.deletionTimestamp = m.deletionTimestamp;
  return { metadata, spec: { request: '', signerName: c.spec.signerName }, status: { certificate } };
}

/** A node Lease as the staleness rule reads it: name, holder, renewTime and duration. */
export function trimNodeLease(l: NodeLease): NodeLease {
  const m = l.metadata;
  const s = l.spec ?? {};
  return {
    metadata: { name: m.name, ...(m.namespace !== undefined ? { namespace: m.namespace } : {}), ...(m.resourceVersion !== undefined ? { resourceVersion: m.resourceVersion } : {}) },
    spec: {
      ...(s.holderIdentity !== undefined ? { holderIdentity: s.holderIdentity } : {}),
      ...(s.renewTime !== undefined ? { renewTime: s.renewTime } : {}),
      ...(s.leaseDurationSeconds !== undefined ? { leaseDurationSeconds: s.leaseDurationSeconds } : {}),
    },
  };
}
