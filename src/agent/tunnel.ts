// The agent's compiled view of one IPsecTunnel: durations in milliseconds, proposals parsed,
// credentials read from their files. Built once per (re)load by config.ts; everything
// downstream (IKE driver, kernel port, status) works from this and never re-reads YAML.
import type { EffectiveXfrmInterface } from '../api/profiles/index.js';
import type { Profile } from '../api/transforms.js';
import type { SecretBytes } from '../common/secret.js';
import type { PolicyProposal } from '../ike/policy/index.js';

export type StartAction = 'initiate' | 'respond' | 'on-demand';
export type DpdAction = 'restart' | 'clear' | 'hold';

export type TunnelAuth =
  | { readonly kind: 'psk'; readonly psk: SecretBytes; readonly file: string }
  | {
    readonly kind: 'certificate';
    readonly certPem: string; readonly keyPem: SecretBytes; readonly caPem: string;
    readonly certFile: string; readonly keyFile: string; readonly caFile: string;
  };

export interface TunnelConfig {
  readonly name: string;
  /** spec.profile, or strongswan: where the values the spec left out came from. */
  readonly profile: Profile;
  readonly localAddress: string;
  readonly localId: string;
  readonly localSubnets: readonly string[];
  readonly remoteAddress: string;
  readonly remoteId: string | undefined;
  readonly remoteSubnets: readonly string[];
  /** The selectors negotiated: the subnets (policy mode) or 0.0.0.0/0 both ways (route mode). */
  readonly localTs: readonly string[];
  readonly remoteTs: readonly string[];
  readonly auth: TunnelAuth;
  /** As written (strongSwan syntax), for status and error messages. */
  readonly ikeProposalText: readonly string[];
  readonly espProposalText: readonly string[];
  readonly ikeProposals: readonly PolicyProposal[];
  readonly espProposals: readonly PolicyProposal[];
  readonly ikeRekeyMs: number;
  readonly espRekeyMs: number;
  readonly espLifeMs: number;
  /** Hard limits per Child SA; undefined: the engine's default (2^31 packets without ESN). */
  readonly espLifePackets: bigint | undefined;
  readonly espLifeBytes: bigint | undefined;
  readonly dpdIntervalMs: number;
  readonly dpdTimeoutMs: number;
  readonly dpdAction: DpdAction;
  readonly startAction: StartAction;
  readonly mode: 'policy' | 'route';
  readonly xfrmIfId: number | undefined;
  /** Route mode: the XFRM interface the tunnel's SAs and policies are bound to (if_id), its inside address, MTU. */
  readonly xfrmInterface: EffectiveXfrmInterface | undefined;
  /** Policy mode: routes to the remote subnets in table 220 (spec.installRoutes); false in route mode. */
  readonly installRoutes: boolean;
  /** Route mode: the remote subnets routed over the XFRM interface (spec.installRoutes). */
  readonly interfaceRoutes: boolean;
  readonly allowWeak: boolean;
  /** Fingerprint of everything that matters for IKE/kernel, so reload can tell "changed" from "same". */
  readonly digest: string;
}

/**
 * The preferred reqid of a name: FNV-1a folded into 0x4b000000..0x4bffffff (`K` = 0x4b marks ours,
 * away from strongSwan's small sequential reqids). reqids.ts allocates from it, moving on to the
 * next free value when two names hash alike; the allocation is kept for as long as the kernel
 * holds state, so a restarted agent recognises the SAs it installed before (DESIGN.md §5).
 */
export function reqidFor(name: string): number {
  let h = 0x811c9dc5;
  for (const ch of Buffer.from(name, 'utf8')) { h ^= ch; h = Math.imul(h, 0x01000193) >>> 0; }
  return (REQID_BASE | (h & 0x00ffffff)) >>> 0;
}

export const REQID_BASE = 0x4b000000;
export function isOurReqid(reqid: number): boolean { return (reqid & 0xff000000) >>> 0 === REQID_BASE; }
