// What this node's pod traffic looks like on the wire (IPsecMesh spec.traffic.mode), and how much
// room ESP leaves for it.
//
// `auto` looks for an overlay device: a VXLAN (RFC 7348) or Geneve (RFC 8926) interface means the
// CNI tunnels pod packets node-to-node in UDP (flannel's flannel.1 on 8472, Calico's vxlan.calico
// and Cilium's cilium_vxlan on 4789/8472, cilium_geneve on 6081), so pod CIDR selectors would
// never see a pod packet on the wire and the overlay's UDP is what must be encrypted. Without one,
// the network is routed (kindnet, Calico BGP, flannel host-gw, cloud VPC routes).
import type { LinkInfo } from '../../xfrm/index.js';
import type { NodeTraffic } from './peers.js';
import type { MeshSettings } from './settings.js';

export interface ResolvedTraffic {
  readonly traffic: NodeTraffic;
  readonly source: 'mesh' | 'detected' | 'default';
  readonly message: string;
}

const OVERLAY_KINDS = ['vxlan', 'geneve'] as const;
type OverlayKind = (typeof OVERLAY_KINDS)[number];
const isOverlay = (k: string | undefined): k is OverlayKind => (OVERLAY_KINDS as readonly string[]).includes(k ?? '');

export function resolveTraffic(m: Pick<MeshSettings, 'trafficMode' | 'overlay'>, links: readonly LinkInfo[]): ResolvedTraffic {
  const overlays = links.filter((l) => isOverlay(l.kind) && l.udpPort !== undefined).sort((a, b) => Number(b.up) - Number(a.up) || a.name.localeCompare(b.name));
  const seen = overlays.map((l) => `${l.name} (${l.kind} port ${l.udpPort})`).join(', ');
  if (m.trafficMode === 'routed') return { traffic: { mode: 'routed' }, source: 'mesh', message: 'routed (IPsecMesh spec.traffic.mode): pod CIDRs in tunnel mode' };
  if (m.trafficMode === 'overlay') {
    if (!m.overlay) return { traffic: { mode: 'routed' }, source: 'default', message: 'IPsecMesh spec.traffic.mode is overlay without spec.traffic.overlay: falling back to routed' };
    const ov = m.overlay;
    const found = overlays.some((l) => l.kind === ov.protocol && l.udpPort === ov.port);
    return {
      traffic: { mode: 'overlay', overlay: ov }, source: 'mesh',
      message: `${ov.protocol} port ${ov.port} in transport mode (IPsecMesh spec.traffic)${found ? '' : `; no ${ov.protocol} device with port ${ov.port} on this node${seen ? ` (found ${seen})` : ''}`}`,
    };
  }
  const first = overlays[0];
  if (first && isOverlay(first.kind) && first.udpPort !== undefined) {
    return { traffic: { mode: 'overlay', overlay: { protocol: first.kind, port: first.udpPort } }, source: 'detected', message: `overlay detected: ${seen}; ${first.kind} port ${first.udpPort} in transport mode` };
  }
  return { traffic: { mode: 'routed' }, source: 'default', message: 'no VXLAN or Geneve device on this node: routed, pod CIDRs in tunnel mode' };
}

/** ESP's cost per packet for one negotiated suite (strongSwan's names, e.g. "aes256gcm16", "aes128-sha256"). */
export interface EspCost { readonly iv: number; readonly icv: number; readonly block: number }

export function espCost(suite: string): EspCost | undefined {
  const s = suite.split('-').filter((t) => !/^(x25519|x448|ecp\d+|modp\d+|curve\d+|ke\d|mlkem\d+|esn|noesn)$/.test(t));
  if (s.some((t) => /^aes\d+gcm(8|12|16)$/.test(t))) {
    const icv = Number(/gcm(8|12|16)$/.exec(s.find((t) => /gcm/.test(t))!)![1]);
    return { iv: 8, icv, block: 4 }; // RFC 4106: 8-octet IV, 4-octet alignment
  }
  if (s.includes('chacha20poly1305')) return { iv: 8, icv: 16, block: 4 }; // RFC 7634
  if (s.some((t) => /^aes\d+$/.test(t))) {
    const integ = s.find((t) => /^sha(1|256|384|512)$/.test(t));
    const icv = integ === 'sha1' ? 12 : integ === 'sha256' ? 16 : integ === 'sha384' ? 24 : integ === 'sha512' ? 32 : undefined;
    return icv === undefined ? undefined : { iv: 16, icv, block: 16 }; // RFC 3602 CBC, RFC 4868 truncation
  }
  return undefined;
}

/**
 * The largest inner packet that fits an outer MTU (RFC 4303 §2: ESP header 8, IV, payload padded
 * with pad-length and next-header octets to the block, ICV; tunnel mode adds the outer IP header,
 * NAT-T an 8-octet UDP header, RFC 3948). The overhead reported is MTU minus that.
 */
export function maxInnerPacket(mtu: number, cost: EspCost, o: { readonly mode: 'tunnel' | 'transport'; readonly ipv6: boolean; readonly encap: boolean }): number {
  // Tunnel mode encrypts the whole inner packet behind a new IP header; transport mode keeps the
  // packet's own header in front and encrypts what follows it.
  const ip = o.ipv6 ? 40 : 20;
  const room = mtu - ip - (o.encap ? 8 : 0) - 8 - cost.iv - cost.icv;
  const padded = Math.floor(room / cost.block) * cost.block - 2;
  return o.mode === 'tunnel' ? padded : padded + ip;
}
