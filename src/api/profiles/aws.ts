// profile: aws — AWS Site-to-Site VPN (virtual private gateway or transit gateway).
//
// Sources:
//  - "Tunnel options for your AWS Site-to-Site VPN connection",
//    https://docs.aws.amazon.com/vpn/latest/s2svpn/VPNTunnels.html — the option list: Phase 1/2
//    encryption, integrity and DH group numbers, lifetimes, rekey margin and fuzz, DPD timeout
//    and action, startup action, inside tunnel IPv4 CIDR.
//  - Amazon EC2 API Reference, ModifyVpnTunnelOptionsSpecification,
//    https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_ModifyVpnTunnelOptionsSpecification.html
//    — the same options with their valid values and constraints.
//  - "Site-to-Site VPN quotas", https://docs.aws.amazon.com/vpn/latest/s2svpn/vpn-limits.html —
//    MTU and MSS of a VPN connection.
//
// What the documents say, as used here:
//  - Phase 1 encryption AES128 | AES256 | AES128-GCM-16 | AES256-GCM-16; integrity SHA1 | SHA2-256
//    | SHA2-384 | SHA2-512; DH groups 2, 14-24. Phase 2: the same ciphers and integrity; DH groups
//    2, 5, 14-24. No Curve25519 (group 31), no ChaCha20-Poly1305, no AES-192: a peer offering only
//    those gets NO_PROPOSAL_CHOSEN. Groups 17 and 18 (MODP 6144/8192) have no kipsec token.
//  - Phase 1 lifetime 28,800 s (900..28,800), Phase 2 lifetime 3,600 s (900..3,600).
//  - Rekey margin time 270 s with rekey fuzz 100 %: AWS rekeys between 270 and 540 s before the
//    Phase 2 lifetime ends. We rekey 540 s before, so we are the one that starts it, not AWS
//    in the middle of ours (a collision is handled, but costs a round trip).
//  - DPD timeout 40 s (>= 30); "the endpoint will consider the peer dead 30 seconds after the
//    first failed keep-alive" — keep-alives every 10 s. AWS's own action defaults to Clear;
//    ours is restart, because with the default startup action "Add" AWS never initiates: if we
//    cleared, nobody would bring the tunnel back.
//  - Startup action "Add" (default): the customer gateway must initiate -> startAction initiate.
//  - Local/remote IPv4 network CIDR default 0.0.0.0/0 (route-based: selectors 0.0.0.0/0 both ways), the
//    inside tunnel CIDR a /30 out of 169.254.0.0/16 (AWS takes the first host address, the
//    customer gateway the second) -> mode route with an XFRM interface.
//  - MTU 1446 and MSS 1406 bytes (quotas page). Uncertain: AWS's downloadable device
//    configurations use smaller values for some devices (e.g. MSS 1379); 1446 is the documented
//    maximum, so the interface MTU here is that maximum.
//  - ESN is not among the tunnel options; whether the endpoint negotiates it is not documented, so
//    only "noesn" is accepted.
import type { ProfilePreset } from './preset.js';

const DOC = 'https://docs.aws.amazon.com/vpn/latest/s2svpn/VPNTunnels.html';

/**
 * Tunnel options, "Inside tunnel IPv4 CIDR": a /30 from 169.254.0.0/16, and AWS reserves these
 * (API ModifyVpnTunnelOptionsSpecification, TunnelInsideCidr constraints).
 */
export const AWS_INSIDE = {
  within: '169.254.0.0/16',
  prefix: 30,
  reserved: ['169.254.0.0/30', '169.254.1.0/30', '169.254.2.0/30', '169.254.3.0/30', '169.254.4.0/30', '169.254.5.0/30', '169.254.169.252/30'],
  citation: `Tunnel options: inside tunnel IPv4 CIDR, a /30 from 169.254.0.0/16 outside 169.254.0.0/30-169.254.5.0/30 and 169.254.169.252/30, ${DOC}`,
} as const;

export const aws: ProfilePreset = {
  name: 'aws',
  provider: 'AWS Site-to-Site VPN',
  sources: [
    { title: 'Tunnel options for your AWS Site-to-Site VPN connection', url: DOC, section: 'Phase 1/2 encryption, integrity, DH group numbers, lifetimes, rekey margin time, DPD timeout, startup action, inside tunnel IPv4 CIDR' },
    { title: 'Amazon EC2 API Reference: ModifyVpnTunnelOptionsSpecification', url: 'https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_ModifyVpnTunnelOptionsSpecification.html', section: 'valid values and constraints' },
    { title: 'Site-to-Site VPN quotas', url: 'https://docs.aws.amazon.com/vpn/latest/s2svpn/vpn-limits.html', section: 'MTU and MSS' },
  ],
  ike: { proposals: ['aes256gcm16-prfsha384-ecp384', 'aes256-sha256-modp2048'], lifetimeSec: 28_800, rekeyMarginSec: 540 },
  esp: { proposals: ['aes256gcm16-ecp384', 'aes256-sha256-modp2048'], lifetimeSec: 3_600, rekeyMarginSec: 540 },
  dpd: { intervalSec: 10, timeoutSec: 40, action: 'restart' },
  mode: 'route',
  trafficSelectors: 'wildcard',
  mtu: 1446,
  mssBytes: 1406,
  startAction: 'initiate',
  accepts: {
    ike: ['aes128', 'aes256', 'aes128gcm16', 'aes256gcm16', 'sha1', 'sha256', 'sha384', 'sha512', 'prfsha1', 'prfsha256', 'prfsha384', 'prfsha512',
      'modp1024', 'modp2048', 'modp3072', 'modp4096', 'ecp256', 'ecp384', 'ecp521', 'modp1024s160', 'modp2048s224', 'modp2048s256'],
    esp: ['aes128', 'aes256', 'aes128gcm16', 'aes256gcm16', 'sha1', 'sha256', 'sha384', 'sha512',
      'modp1024', 'modp1536', 'modp2048', 'modp3072', 'modp4096', 'ecp256', 'ecp384', 'ecp521', 'modp1024s160', 'modp2048s224', 'modp2048s256', 'noesn'],
    citation: `AWS Site-to-Site VPN tunnel options: AES128/AES256[-GCM-16], SHA1/SHA2, DH groups 2, 14-24 (Phase 2 also 5), ${DOC}`,
  },
};
