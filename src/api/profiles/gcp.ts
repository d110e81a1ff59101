// profile: gcp — Google Cloud VPN (HA VPN; Classic VPN negotiates the same ciphers).
//
// Sources:
//  - "Supported IKE ciphers",
//    https://cloud.google.com/network-connectivity/docs/vpn/concepts/supported-ike-ciphers —
//    the IKEv2 Phase 1 and Phase 2 cipher tables (encryption, integrity, PRF, DH), lifetimes,
//    and "Proposal order" (Cloud VPN initiates as well as responds).
//  - "Cloud VPN cipher changes",
//    https://cloud.google.com/network-connectivity/docs/vpn/deprecations/cipher-changes — the
//    current IKEv2 DH order (Curve25519 first) and DH group 22 (MODP_1024_160) dropped.
//  - "MTU considerations",
//    https://cloud.google.com/network-connectivity/docs/vpn/concepts/mtu-considerations —
//    gateway MTU at most 1460 bytes; 1390 bytes for the systems behind it when MSS clamping
//    and PMTUD are not enough.
//
// What the documents say, as used here:
//  - Phase 1: AES-GCM-16-128/192/256 and AES-CBC-128/192/256 with HMAC-SHA1/SHA2-256/384/512,
//    PRFs HMAC-SHA1/SHA2-256/384/512; DH Curve25519, ECP 256/384/521, MODP 1024..8192 and the
//    2048-bit subgroups (23, 24). Phase 2: the same ciphers and integrity, PFS with the same
//    groups. The tables also list 3DES, HMAC-MD5 and AES-XCBC/CMAC: kipsec has no XCBC/CMAC,
//    and 3DES/MD5 are left out here because kipsec refuses them for gcp anyway (weak,
//    RFC 8247), so a refusal names the weakness rather than Google.
//  - Phase 1 lifetime 36,000 s (10 h), Phase 2 lifetime 10,800 s (3 h). The rekey margin is
//    ours (540 s, as for aws); Google publishes none.
//  - Google recommends one cipher per role ("to prevent frequent changes in cipher selection"),
//    so the preset proposes a single IKE and a single ESP proposal.
//  - HA VPN is route-based with BGP: selectors 0.0.0.0/0 <-> 0.0.0.0/0 and link-local
//    (169.254.0.0/16) BGP addresses on the tunnel -> mode route.
//  - DPD: Cloud VPN uses it but the pages give no interval or timeout; the values here are
//    kipsec's defaults (30 s / 150 s), not Google's.
//  - MTU: 1390 bytes on the XFRM interface, so an encrypted packet (ESP-GCM in UDP adds about
//    65 bytes) still fits the 1460-byte gateway MTU. MSS 1350 = 1390 - 40 (ours, derived).
import type { ProfilePreset } from './preset.js';

const DOC = 'https://cloud.google.com/network-connectivity/docs/vpn/concepts/supported-ike-ciphers';

const COMMON = ['aes128', 'aes192', 'aes256', 'aes128gcm16', 'aes192gcm16', 'aes256gcm16', 'sha1', 'sha256', 'sha384', 'sha512',
  'modp1024', 'modp1536', 'modp2048', 'modp3072', 'modp4096', 'ecp256', 'ecp384', 'ecp521', 'x25519', 'modp2048s224', 'modp2048s256'];

export const gcp: ProfilePreset = {
  name: 'gcp',
  provider: 'Google Cloud VPN',
  sources: [
    { title: 'Cloud VPN: Supported IKE ciphers', url: DOC, section: 'Supported cipher tables (IKEv2 Phase 1 and Phase 2), lifetimes, Proposal order' },
    { title: 'Cloud VPN cipher changes', url: 'https://cloud.google.com/network-connectivity/docs/vpn/deprecations/cipher-changes', section: 'Order modification (IKEv2 DH), deprecated DH group 22' },
    { title: 'Cloud VPN: MTU considerations', url: 'https://cloud.google.com/network-connectivity/docs/vpn/concepts/mtu-considerations', section: 'Gateway MTU versus system MTU; Performance considerations' },
  ],
  ike: { proposals: ['aes256gcm16-prfsha256-x25519'], lifetimeSec: 36_000, rekeyMarginSec: 540 },
  esp: { proposals: ['aes256gcm16-x25519'], lifetimeSec: 10_800, rekeyMarginSec: 540 },
  dpd: { intervalSec: 30, timeoutSec: 150, action: 'restart' },
  mode: 'route',
  trafficSelectors: 'wildcard',
  mtu: 1390,
  mssBytes: 1350,
  startAction: 'initiate',
  accepts: {
    ike: [...COMMON, 'prfsha1', 'prfsha256', 'prfsha384', 'prfsha512'],
    esp: [...COMMON, 'noesn'], // ESN is not in the tables; whether Cloud VPN negotiates it is undocumented
    citation: `Google Cloud VPN supported IKE ciphers: AES-CBC/AES-GCM-16 128/192/256, HMAC-SHA1/SHA2, DH Curve25519, ECP 256-521, MODP 1024-8192, 23, 24, ${DOC}`,
  },
};
