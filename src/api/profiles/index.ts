// IPsecTunnel profiles (spec.profile): the presets, the field-by-field merge that gives the
// effective settings the agent runs with, and the "does the provider accept this proposal" check
// in both forms the schema needs — a CEL rule for the CRD and its TypeScript twin for the
// standalone validator. Explicit fields always win; the profile fills the rest; without a
// profile the strongswan preset does (the schema itself no longer defaults these fields, so
// the apiserver cannot fill in a value that would hide the profile's).
import { isIP } from 'node:net';
import { PROFILES, celList, type Profile } from '../transforms.js';
import { AWS_INSIDE, aws } from './aws.js';
import { azure } from './azure.js';
import { gcp } from './gcp.js';
import { durationText, type ProfilePreset } from './preset.js';
import { strongswan } from './strongswan.js';

export type { ProfilePreset, ProfileSource } from './preset.js';

/** `legacy` is strongswan's preset with every weak transform allowed (transforms.ts), for old peers. */
export const PRESETS: Readonly<Record<Profile, ProfilePreset>> = {
  aws, gcp, azure, strongswan, legacy: { ...strongswan, name: 'legacy', provider: 'a legacy IKEv2 peer' },
};

export const DEFAULT_PROFILE: Profile = 'strongswan';

export function presetOf(profile: Profile | undefined): ProfilePreset { return PRESETS[profile ?? DEFAULT_PROFILE]; }

/** Interface name when xfrmInterface.name is not given: `xfrm<ifId>` fits IFNAMSIZ (15) for every u32. */
export function defaultInterfaceName(ifId: number): string { return `xfrm${ifId}`; }

export interface EffectiveXfrmInterface {
  readonly name: string;
  readonly ifId: number;
  readonly insideAddress?: string;
  readonly remoteInsideAddress?: string;
  readonly mtu?: number;
  readonly routeMetric?: number;
}

/** What the agent runs with: every field the profile can set, resolved. */
export interface EffectiveTunnel {
  readonly profile: Profile;
  readonly ike: { readonly proposals: readonly string[]; readonly rekeyTime: string };
  readonly esp: { readonly proposals: readonly string[]; readonly rekeyTime: string; readonly lifeTime: string; readonly lifePackets?: number; readonly lifeBytes?: number };
  readonly dpd: { readonly interval: string; readonly timeout: string; readonly action: 'restart' | 'clear' | 'hold' };
  readonly startAction: 'initiate' | 'respond' | 'on-demand';
  readonly mode: 'policy' | 'route';
  /** Negotiated traffic selectors: the subnets, or 0.0.0.0/0 (and ::/0) for route mode. */
  readonly localTs: readonly string[];
  readonly remoteTs: readonly string[];
  readonly xfrmInterface?: EffectiveXfrmInterface;
  readonly mssBytes?: number;
}

/**
 * The part of an IPsecTunnel spec a profile fills (structurally IPsecTunnelSpec's; spelled out here
 * because types.ts is inferred from resources.ts, which imports this module).
 */
export interface ProfiledSpec {
  readonly profile?: Profile | undefined;
  readonly mode?: 'policy' | 'route' | undefined;
  readonly startAction?: 'initiate' | 'respond' | 'on-demand' | undefined;
  readonly local: { readonly subnets?: readonly string[] | undefined };
  readonly remote: { readonly subnets: readonly string[] };
  readonly ike?: { readonly proposals?: readonly string[] | undefined; readonly rekeyTime?: string | undefined } | undefined;
  readonly esp?: {
    readonly proposals?: readonly string[] | undefined; readonly rekeyTime?: string | undefined; readonly lifeTime?: string | undefined;
    readonly lifePackets?: number | undefined; readonly lifeBytes?: number | undefined;
  } | undefined;
  readonly dpd?: { readonly interval?: string | undefined; readonly timeout?: string | undefined; readonly action?: 'restart' | 'clear' | 'hold' | undefined } | undefined;
  readonly xfrmInterface?: {
    readonly ifId: number; readonly name?: string | undefined; readonly insideAddress?: string | undefined; readonly remoteInsideAddress?: string | undefined;
    readonly mtu?: number | undefined; readonly routeMetric?: number | undefined;
  } | undefined;
}

/** The mode a spec runs in: explicit, else the profile's. */
export function effectiveMode(s: { readonly mode?: 'policy' | 'route' | undefined; readonly profile?: Profile | undefined }): 'policy' | 'route' {
  return s.mode ?? presetOf(s.profile).mode;
}

function wildcardSelectors(subnets: readonly string[]): string[] {
  const v6 = subnets.some((c) => isIP(c.split('/')[0] ?? '') === 6);
  const v4 = subnets.length === 0 || subnets.some((c) => isIP(c.split('/')[0] ?? '') === 4);
  return [...(v4 ? ['0.0.0.0/0'] : []), ...(v6 ? ['::/0'] : [])];
}

/** Merge spec over its profile, field by field. */
export function effectiveTunnel(s: ProfiledSpec): EffectiveTunnel {
  const p = presetOf(s.profile);
  const mode = effectiveMode(s);
  // The profile's selector shape applies when the mode is the profile's too; an explicit mode
  // brings its own shape (route: 0.0.0.0/0 both ways, policy: the subnets).
  const shape = s.mode === undefined ? p.trafficSelectors : mode === 'route' ? 'wildcard' : 'subnets';
  const local = s.local.subnets ?? [];
  const all = [...local, ...s.remote.subnets];
  const x = s.xfrmInterface;
  const mtu = x?.mtu ?? p.mtu;
  const esp = s.esp ?? {};
  const lifeBytes = esp.lifeBytes ?? p.esp.lifeBytes;
  return {
    profile: s.profile ?? DEFAULT_PROFILE,
    ike: {
      proposals: s.ike?.proposals ?? p.ike.proposals,
      rekeyTime: s.ike?.rekeyTime ?? durationText(p.ike.lifetimeSec - p.ike.rekeyMarginSec),
    },
    esp: {
      proposals: esp.proposals ?? p.esp.proposals,
      rekeyTime: esp.rekeyTime ?? durationText(p.esp.lifetimeSec - p.esp.rekeyMarginSec),
      lifeTime: esp.lifeTime ?? durationText(p.esp.lifetimeSec),
      ...(esp.lifePackets !== undefined ? { lifePackets: esp.lifePackets } : {}),
      ...(lifeBytes !== undefined ? { lifeBytes } : {}),
    },
    dpd: {
      interval: s.dpd?.interval ?? durationText(p.dpd.intervalSec),
      timeout: s.dpd?.timeout ?? durationText(p.dpd.timeoutSec),
      action: s.dpd?.action ?? p.dpd.action,
    },
    startAction: s.startAction ?? p.startAction,
    mode,
    localTs: shape === 'wildcard' ? wildcardSelectors(all) : local,
    remoteTs: shape === 'wildcard' ? wildcardSelectors(all) : s.remote.subnets,
    ...(x ? {
      xfrmInterface: {
        name: x.name ?? defaultInterfaceName(x.ifId), ifId: x.ifId,
        ...(x.insideAddress !== undefined ? { insideAddress: x.insideAddress } : {}),
        ...(x.remoteInsideAddress !== undefined ? { remoteInsideAddress: x.remoteInsideAddress } : {}),
        ...(mtu !== undefined ? { mtu } : {}),
        ...(x.routeMetric !== undefined ? { routeMetric: x.routeMetric } : {}),
      },
    } : {}),
    ...(p.mssBytes !== undefined ? { mssBytes: p.mssBytes } : {}),
  };
}

// ---------- the provider-acceptance rule ----------

export type Proto = 'ike' | 'esp';

/** The first token of `proposal` the profile's provider does not accept, or undefined. */
export function refusedToken(profile: Profile | undefined, proto: Proto, proposal: string): string | undefined {
  const acc = presetOf(profile).accepts;
  if (!acc) return undefined;
  return proposal.split('-').find((t) => !acc[proto].includes(t));
}

/** The refusal as the CRD says it: proposal, provider, the token, the document. */
export function refusalMessage(profile: Profile, proto: Proto, proposals: readonly string[]): string | undefined {
  const acc = presetOf(profile).accepts;
  for (const p of proposals) {
    const t = refusedToken(profile, proto, p);
    if (t !== undefined && acc) return `proposal ${p} is not accepted by ${profile} (${t}; ${acc.citation})`;
  }
  return undefined;
}

/** Profiles whose provider limits what it accepts. */
export const LIMITED_PROFILES: readonly Profile[] = PROFILES.filter((p) => PRESETS[p].accepts !== undefined);

/** CEL over the tunnel spec: every `proto` proposal is accepted by the profile's provider. */
export function acceptCel(proto: Proto): string {
  const ok = (p: Profile): string => `self.${proto}.proposals.all(q, q.split('-').all(t, t in ${celList(PRESETS[p].accepts![proto])}))`;
  const bad = LIMITED_PROFILES.map((p) => `(self.profile == '${p}' && !${ok(p)})`).join(' || ');
  return `!has(self.profile) || !has(self.${proto}) || !has(self.${proto}.proposals) || !(${bad})`;
}

/** CEL messageExpression naming the first refused proposal, its provider, the token and the document. */
export function acceptMessageCel(proto: Proto): string {
  const branch = (p: Profile): string => {
    const acc = PRESETS[p].accepts!;
    const L = celList(acc[proto]);
    const bad = `self.${proto}.proposals.filter(q, !q.split('-').all(t, t in ${L}))[0]`;
    return `'proposal ' + ${bad} + ' is not accepted by ${p} (' + ${bad}.split('-').filter(t, !(t in ${L}))[0] + '; ${acc.citation})'`;
  };
  return LIMITED_PROFILES.reduceRight((rest, p) => `self.profile == '${p}' ? ${branch(p)} : ${rest}`, `'proposal not accepted by the profile'`);
}

/** CEL: the mode the tunnel runs in (explicit, else its profile's). */
export function effectiveModeCel(): string {
  const route = PROFILES.filter((p) => PRESETS[p].mode === 'route');
  return `(has(self.mode) ? self.mode : (has(self.profile) && self.profile in ${celList(route)} ? 'route' : 'policy'))`;
}

// ---------- AWS's inside addresses ----------

const v4 = (a: string): number => a.split('.').reduce((x, o) => ((x << 8) | Number(o)) >>> 0, 0);
const maskOf = (bits: number): number => (bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0);

/** Why an insideAddress does not suit AWS, or undefined (also for what the field's own rule refuses). */
export function awsInsideProblem(address: string): string | undefined {
  const [ip = '', bits = ''] = address.split('/');
  if (isIP(ip) !== 4 || !/^[0-9]+$/.test(bits)) return undefined;
  const [net = '', len = '0'] = AWS_INSIDE.within.split('/');
  const inside = ((v4(ip) & maskOf(Number(len))) >>> 0) === v4(net);
  const block = `${[24, 16, 8, 0].map((sh) => (((v4(ip) & maskOf(30)) >>> sh) & 0xff)).join('.')}/30`;
  const reserved = (AWS_INSIDE.reserved as readonly string[]).includes(block);
  if (inside && Number(bits) === AWS_INSIDE.prefix && !reserved) return undefined;
  return `${address} is not an inside address aws accepts (${AWS_INSIDE.citation})`;
}

/**
 * CEL twin of awsInsideProblem, over the tunnel spec. String matching rather than the Kubernetes
 * CIDR library: the apiserver's cost estimate for ten cidr() calls at the spec level exceeded the
 * CRD's budget more than 100 times over (422 on install), while regular expressions over a string
 * of at most 49 characters are cheap. The field's own rule (isCIDR) has checked the syntax.
 */
export function awsInsideCel(): string {
  const x = 'self.xfrmInterface.insideAddress';
  const esc = (t: string): string => t.replaceAll('.', '\\.');
  const [net = '', len = ''] = AWS_INSIDE.within.split('/');
  // The within block is a /16: its first two octets as a literal prefix.
  if (len !== '16') throw new Error(`awsInsideCel handles a /16 only, not ${AWS_INSIDE.within}`);
  const within = `${net.split('.').slice(0, 2).join('.')}.`;
  // A reserved a.b.c.d/30 holds the four addresses d..d+3 of its last octet.
  const reserved = AWS_INSIDE.reserved.map((r) => {
    const [ip = ''] = r.split('/');
    const o = ip.split('.');
    const last = Number(o[3]);
    return `!${x}.matches(r'^${esc(o.slice(0, 3).join('.'))}\\.(${[0, 1, 2, 3].map((k) => last + k).join('|')})/${AWS_INSIDE.prefix}$')`;
  }).join(' && ');
  return `!has(self.profile) || self.profile != 'aws' || !has(self.xfrmInterface) || !has(${x}) || !isCIDR(${x}) || ${x}.contains(':') || ` +
    `(${x}.startsWith('${within}') && ${x}.endsWith('/${AWS_INSIDE.prefix}') && ${reserved})`;
}

