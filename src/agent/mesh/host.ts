// What the cluster agent reads of its host and its CA view for the IPsecNode (node-agent.ts).
import { networkInterfaces } from 'node:os';
import type { LinkInfo } from '../../xfrm/index.js';
import type { CaView } from './ca-follow.js';

export function localAddresses(): string[] {
  return Object.values(networkInterfaces()).flatMap((l) => (l ?? []).map((a) => a.address));
}

/** MTU of the interface that holds `address`. */
export function mtuOf(links: readonly LinkInfo[], address: string): number | undefined {
  const ifname = Object.entries(networkInterfaces()).find(([, as]) => (as ?? []).some((a) => a.address === address))?.[0];
  return links.find((l) => l.name === ifname)?.mtu;
}

/** IPsecNode spec.identity fields of a CA view (the schema allows 8 trusted CAs). */
export function caFields(v: CaView | undefined): { issuerFingerprint?: string; trustedCAs?: string[] } {
  if (!v) return {};
  return { ...(v.issuer ? { issuerFingerprint: v.issuer } : {}), trustedCAs: v.trusted.slice(0, 8) };
}
