// profile: azure — Azure VPN Gateway (route-based, site-to-site connection).
//
// Sources:
//  - "About cryptographic requirements and Azure VPN gateways",
//    https://learn.microsoft.com/en-us/azure/vpn-gateway/vpn-gateway-about-compliance-crypto —
//    section "IPsec and IKE policy parameters": the algorithms a custom IPsec/IKE policy may
//    name (IKE encryption, IKE integrity, DH group, IPsec encryption, IPsec integrity, PFS
//    group, QM SA lifetime), and that the default policy uses DH group 2 for IKE.
//  - "About VPN devices and IPsec/IKE parameters for Site-to-Site VPN Gateway connections",
//    https://learn.microsoft.com/en-us/azure/vpn-gateway/vpn-gateway-about-vpn-devices —
//    section "Default IPsec/IKE parameters": SA lifetimes (IKE 28,800 s; IPsec 27,000 s and
//    102,400,000 KB), DPD.
//  - "VPN Gateway FAQ", https://learn.microsoft.com/en-us/azure/vpn-gateway/vpn-gateway-vpn-faq —
//    TCP MSS clamping at 1350 bytes (and an MTU of 1400 on the tunnel).
//  - "Configure IPsec/IKE policy for S2S VPN", https://learn.microsoft.com/en-us/azure/vpn-gateway/ipsec-ike-policy-howto
//    — a custom policy must name every algorithm of both phases; one policy per connection.
//
// What the documents say, as used here:
//  - Custom policy: IKE encryption GCMAES256, GCMAES128, AES256, AES192, AES128, DES3, DES;
//    IKE integrity SHA384, SHA256, SHA1, MD5; DH group DHGroup24 (2048-bit, 256-bit subgroup),
//    ECP384, ECP256, DHGroup14/DHGroup2048, DHGroup2, DHGroup1. IPsec encryption GCMAES256/192/128,
//    AES256/192/128, DES3, DES; IPsec integrity GCMAES* (with GCM encryption), SHA256, SHA1, MD5;
//    PFS group PFS24, ECP384, ECP256, PFS2048, PFS2, PFS1, PFSMM or None. No Curve25519, no
//    ChaCha20-Poly1305, no SHA-512. DES and DH group 1 have kipsec tokens that kipsec refuses as
//    weak for every profile; DES3 and DHGroup2 pass for azure (transforms.ts), because the
//    default policy needs them.
//  - The preset proposes GCMAES256 + SHA384 + ECP384 for IKE and GCMAES256 + PFS ECP384 for ESP:
//    that needs a custom IPsec/IKE policy on the Azure connection (docs/profiles/azure.md says
//    how). A gateway on its default policy needs IKE "aes256-sha256-modp1024" instead.
//  - Lifetimes: IKE 28,800 s, IPsec (quick mode) 27,000 s and 102,400,000 KB. Rekey margin 540 s
//    is ours.
//  - DPD timeout 45 s (connection setting, 9..3600 s); the 15 s interval is ours (three misses).
//  - A route-based gateway negotiates all-to-all (0.0.0.0/0) selectors unless the connection sets
//    UsePolicyBasedTrafficSelectors -> mode route, selectors 0.0.0.0/0.
//  - MTU 1400 / MSS 1350 (FAQ). Azure initiates as well as responds; we initiate anyway.
import type { ProfilePreset } from './preset.js';

const DOC = 'https://learn.microsoft.com/en-us/azure/vpn-gateway/vpn-gateway-about-compliance-crypto';

const DH = ['modp2048s256', 'ecp384', 'ecp256', 'modp2048', 'modp1024', 'modp768'];

export const azure: ProfilePreset = {
  name: 'azure',
  provider: 'Azure VPN Gateway',
  sources: [
    { title: 'About cryptographic requirements and Azure VPN gateways', url: DOC, section: 'IPsec and IKE policy parameters' },
    { title: 'About VPN devices and IPsec/IKE parameters for Site-to-Site VPN Gateway connections', url: 'https://learn.microsoft.com/en-us/azure/vpn-gateway/vpn-gateway-about-vpn-devices', section: 'Default IPsec/IKE parameters' },
    { title: 'VPN Gateway FAQ', url: 'https://learn.microsoft.com/en-us/azure/vpn-gateway/vpn-gateway-vpn-faq', section: 'MTU and TCP MSS clamping' },
  ],
  ike: { proposals: ['aes256gcm16-prfsha384-ecp384'], lifetimeSec: 28_800, rekeyMarginSec: 540 },
  esp: { proposals: ['aes256gcm16-ecp384'], lifetimeSec: 27_000, rekeyMarginSec: 540, lifeBytes: 102_400_000 * 1024 },
  dpd: { intervalSec: 15, timeoutSec: 45, action: 'restart' },
  mode: 'route',
  trafficSelectors: 'wildcard',
  mtu: 1400,
  mssBytes: 1350,
  startAction: 'initiate',
  accepts: {
    ike: ['aes256gcm16', 'aes128gcm16', 'aes256', 'aes192', 'aes128', '3des', 'des', 'sha384', 'sha256', 'sha1', 'md5',
      'prfsha384', 'prfsha256', 'prfsha1', 'prfmd5', ...DH],
    esp: ['aes256gcm16', 'aes192gcm16', 'aes128gcm16', 'aes256', 'aes192', 'aes128', '3des', 'des', 'sha256', 'sha1', 'md5', ...DH, 'noesn'],
    citation: `Azure VPN Gateway IPsec/IKE policy parameters: GCMAES/AES/DES3, SHA384/SHA256/SHA1, DH 24/ECP384/ECP256/14/2/1 (no Curve25519, no SHA512), ${DOC}`,
  },
};
