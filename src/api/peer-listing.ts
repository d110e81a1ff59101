// How to read an IPsecNode's status.peers: which mesh peers it lists (status.peersListed) and so
// what a missing entry means. The agent writes it (agent/mesh/node-status.ts); the operator's pair
// rules and the agent's reconnect check read it through here, so both read it the same way.
import type { IPsecNodeStatus } from './types.js';

/**
 * A peer missing from the list is up: the node lists only those that are not up, and expects as
 * many peers as the mesh has other nodes (else it has not caught up with a join or a leave yet,
 * and a missing peer is unknown). `meshSize` counts the node itself.
 */
export function unlistedPeersUp(s: Pick<IPsecNodeStatus, 'peersListed' | 'peersExpected'> | undefined, meshSize: number): boolean {
  return s?.peersListed === 'notUp' && s.peersExpected === meshSize - 1;
}
