// Shared by the gateway policy tests (failover-renegotiation, removed-peer-policies): a node's
// desired peers as src/agent/source.ts builds them, and the Child SAs the engine would hand to the
// kernel port for them, with every local × remote selector as out/in/fwd policies at priority 2000.
import type { DesiredPeer } from '../../../../src/agent/source.js';
import { SecretBytes } from '../../../../src/common/secret.js';
import type { ChildConfig, PeerConfig } from '../../../../src/ike/engine.js';
import type { KernelChildSa, KernelPolicy, KernelSa, TrafficSelector } from '../../../../src/ike/ports.js';

export const NODE_A = '192.0.2.11';
export const NODE_B = '192.0.2.12';
export const CHARON = '192.0.2.100';
export const PODS_A = '10.244.1.0/24';
export const PODS_B = '10.244.2.0/24';
export const CLUSTER = '10.244.0.0/16';
export const VPC = '10.99.0.0/24';

export const child = (name: string, localTs: readonly string[], remoteTs: readonly string[]): ChildConfig =>
  ({ name, localTs: [...localTs], remoteTs: [...remoteTs], espProposals: ['aes256gcm16'], mode: 'tunnel', rekeyTimeMs: 3_600_000, lifeTimeMs: 3_900_000 });

export interface PeerShape {
  /** This node: its address and name (the local id). */
  readonly local: { readonly address: string; readonly node: string };
  readonly remote: string;
  readonly children: readonly ChildConfig[];
  readonly kind: DesiredPeer['kind'];
  /** digest and sessionDigest (default: the name). */
  readonly session?: string;
  readonly blocks?: (config: PeerConfig) => DesiredPeer['blocks'];
}

export function desiredPeer(name: string, s: PeerShape): DesiredPeer {
  const config: PeerConfig = {
    name, local: { address: s.local.address, id: { type: 'fqdn', value: s.local.node } }, remote: { address: s.remote, id: { type: 'fqdn', value: name } },
    auth: { method: 'psk', secret: new SecretBytes(new Uint8Array(32)) }, ike: { proposals: ['aes256gcm16-prfsha384-x25519'], rekeyTimeMs: 3_600_000 },
    children: [...s.children], dpd: { intervalMs: 30_000, action: 'restart' }, startAction: 'respond',
  };
  const session = s.session ?? name;
  return { name, config, digest: session, sessionDigest: session, installRoutes: false, ikeProposalText: [], espProposalText: [], blocks: s.blocks?.(config) ?? [], kind: s.kind };
}

const ts = (cidr: string): TrafficSelector => { const [a, p] = cidr.split('/'); return { family: 'ipv4', startAddress: a!, endAddress: a!, prefixLength: Number(p), protocol: 0, startPort: 0, endPort: 65535 }; };
const life = { softSec: 3000, hardSec: 3600, softBytes: 0n, hardBytes: 0n, softPackets: 0n, hardPackets: 0n };
const sa = (spi: number, src: string, dst: string): KernelSa => ({ spi, source: src, destination: dst, esn: false, replayWindow: 32, encap: null, lifetimes: life,
  algorithms: { kind: 'aead', name: 'rfc4106(gcm(aes))', key: new SecretBytes(new Uint8Array(36)), icvBits: 128 } });

/** A negotiated Child SA of `p` (its first child, every local × remote selector) as the engine hands it to the kernel port. */
export function childSaOf(p: DesiredPeer, inSpi: number): KernelChildSa {
  const c = p.config.children[0]!;
  const [me, them] = [p.config.local.address, p.config.remote.address];
  const policies = c.localTs.flatMap((l) => c.remoteTs.flatMap((r): KernelPolicy[] => [
    { direction: 'out', source: ts(l), destination: ts(r), tunnelSource: me, tunnelDestination: them, priority: 2000 },
    { direction: 'in', source: ts(r), destination: ts(l), tunnelSource: them, tunnelDestination: me, priority: 2000 },
    { direction: 'fwd', source: ts(r), destination: ts(l), tunnelSource: them, tunnelDestination: me, priority: 2000 },
  ]));
  return { peer: p.name, child: c.name, reqid: 1, mode: 'tunnel', inbound: sa(inSpi, them, me), outbound: sa(inSpi + 0x1000000, me, them), policies, outboundActive: true, ifId: null, mark: null };
}
