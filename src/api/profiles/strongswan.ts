// profile: strongswan — the plain default for every standards-following IKEv2 peer (strongSwan,
// Libreswan, routers), used when spec.profile is absent. These are the values the IPsecTunnel
// schema defaulted to before profiles existed, so a tunnel without a profile behaves as it did.
//
// Sources:
//  - strongSwan swanctl.conf reference, https://docs.strongswan.org/docs/latest/swanctl/swanctlConf.html
//    — connections.<conn>.rekey_time 4h (IKE), children.<child>.rekey_time 1h and life_time
//    "default: 110% of rekey_time" (66m): the lifetimes and margins below.
//  - RFC 8247 §2-3 and RFC 8221 §5 (AES-GCM-16 and Curve25519/ECP-256 are MUST/SHOULD+): the
//    proposals (src/api/fields.ts DEFAULT_IKE_PROPOSALS / DEFAULT_ESP_PROPOSALS).
//  - DPD 30 s / 150 s and policy mode are kipsec's own defaults (strongSwan's dpd_delay is off
//    by default; a site-to-site link wants a dead peer noticed).
import { DEFAULT_ESP_PROPOSALS, DEFAULT_IKE_PROPOSALS } from '../fields.js';
import type { ProfilePreset } from './preset.js';

export const strongswan: ProfilePreset = {
  name: 'strongswan',
  provider: 'strongSwan',
  sources: [
    { title: 'strongSwan swanctl.conf', url: 'https://docs.strongswan.org/docs/latest/swanctl/swanctlConf.html', section: 'connections.<conn>.rekey_time, children.<child>.rekey_time and life_time' },
    { title: 'RFC 8247 Algorithm Implementation Requirements and Usage Guidance for IKEv2', url: 'https://www.rfc-editor.org/rfc/rfc8247', section: '2-3' },
  ],
  // 4h rekey: the margin is what the rekey time leaves of an IKE SA that never hard-expires.
  ike: { proposals: DEFAULT_IKE_PROPOSALS, lifetimeSec: 4 * 3600, rekeyMarginSec: 0 },
  esp: { proposals: DEFAULT_ESP_PROPOSALS, lifetimeSec: 66 * 60, rekeyMarginSec: 6 * 60 },
  dpd: { intervalSec: 30, timeoutSec: 150, action: 'restart' },
  mode: 'policy',
  trafficSelectors: 'subnets',
  startAction: 'initiate',
};
