// The shape of an IPsecTunnel profile (spec.profile): one cloud gateway's published parameters as
// data — proposals, lifetimes and rekey margins, DPD, mode, traffic-selector shape, MTU, which side
// starts — plus the transforms that gateway accepts at all. A profile fills only what the tunnel
// leaves out (index.ts merges field by field); `accepts` is what the CRD checks explicit
// proposals against, so a proposal the gateway would answer with NO_PROPOSAL_CHOSEN is refused
// at `kubectl apply`, naming the provider and its document.
import type { Profile } from '../transforms.js';

/** Where a figure comes from: the provider's page and the section on it. */
export interface ProfileSource {
  readonly title: string;
  readonly url: string;
  readonly section: string;
}

export interface ProfilePreset {
  readonly name: Profile;
  /** The provider's product name, as error messages and docs say it. */
  readonly provider: string;
  readonly sources: readonly ProfileSource[];
  readonly ike: {
    readonly proposals: readonly string[];
    /** The gateway's IKE SA lifetime; we rekey rekeyMarginSec before it ends. */
    readonly lifetimeSec: number;
    readonly rekeyMarginSec: number;
  };
  readonly esp: {
    readonly proposals: readonly string[];
    /** The gateway's Child SA lifetime: ours must not outlive it (the gateway would drop the SA first). */
    readonly lifetimeSec: number;
    readonly rekeyMarginSec: number;
    /** Hard byte limit of a Child SA where the gateway publishes one. */
    readonly lifeBytes?: number;
  };
  readonly dpd: { readonly intervalSec: number; readonly timeoutSec: number; readonly action: 'restart' | 'clear' | 'hold' };
  /** route: an XFRM interface and 0.0.0.0/0 selectors, as the cloud gateways negotiate. */
  readonly mode: 'policy' | 'route';
  /** wildcard: 0.0.0.0/0 <-> 0.0.0.0/0 whatever the subnets; subnets: local.subnets <-> remote.subnets. */
  readonly trafficSelectors: 'wildcard' | 'subnets';
  /** Inner MTU of the XFRM interface (route mode) from the provider's document. */
  readonly mtu?: number;
  /** The TCP MSS the provider documents (not yet clamped by kipsec: shown in docs and status only). */
  readonly mssBytes?: number;
  /** initiate where the gateway only responds by default (then nobody else brings the tunnel up). */
  readonly startAction: 'initiate' | 'respond' | 'on-demand';
  /**
   * Proposal tokens the gateway accepts, per protocol, and the citation a refusal quotes.
   * Undefined: whatever kipsec implements (the weak-transform rule still applies).
   */
  readonly accepts?: {
    readonly ike: readonly string[];
    readonly esp: readonly string[];
    readonly citation: string;
  };
}

/** Seconds as the shortest duration string the schema accepts ("7h51m", "51m", "45s"). */
export function durationText(sec: number): string {
  const h = Math.floor(sec / 3600); const m = Math.floor((sec % 3600) / 60); const s = sec % 60;
  const out = `${h > 0 ? `${h}h` : ''}${m > 0 ? `${m}m` : ''}${s > 0 ? `${s}s` : ''}`;
  return out === '' ? '0s' : out;
}
