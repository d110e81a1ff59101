// Proposals as plain data, and strongSwan's proposal syntax in both directions.
//
//   IKE:  aes256gcm16-prfsha384-x25519      aes128-sha256-modp2048 (PRF derived from integrity)
//   ESP:  aes256gcm16-x25519 (a KE method here means PFS on rekey)    aes128-sha256-esn
//
// One string is one proposal; several keywords of the same kind are alternatives in preference
// order (strongSwan: "their order defines the preference in descending order"), and the order of
// different kinds does not matter. Errors are ConfigErrors naming the offending token.
import { ConfigError } from '../../common/errors.js';
import { ADDITIONAL_KE_TYPES, DhId, EsnId, IntegId, PrfId, TransformType, isAdditionalKeyExchangeType } from '../constants.js';
import { keywordBySpelling, keywordFor, transformName, type Keyword } from './keywords.js';

export type SaProtocol = 'ike' | 'esp';

/** One transform; `keyLength` is the KEY_LENGTH attribute in bits (variable-length ciphers only). */
export interface PolicyTransform {
  readonly type: number;
  readonly id: number;
  readonly keyLength?: number;
}

/** A proposal: all transforms, several per type meaning "any of these, in this order". */
export interface PolicyProposal {
  readonly protocol: SaProtocol;
  readonly transforms: readonly PolicyTransform[];
}

export interface ParseOptions {
  /** Permit 3DES, MD5, MODP 768/1024/1536 (a profile for legacy peers sets this). */
  readonly allowWeak?: boolean;
  /** Field path for errors, e.g. "spec.ike.proposals[0]". */
  readonly path?: string;
  /**
   * Accept RFC 9370 additional key exchanges (ke1_mlkem768 ...): callers whose proposals reach the
   * engine, which runs them (IKE_INTERMEDIATE, IKE_FOLLOWUP_KE), opt in; elsewhere a proposal
   * asking for them gets a ConfigError saying so.
   */
  readonly additionalKeyExchanges?: boolean;
}

/** Why ke1_..ke7_ transforms are refused while the multi-KE exchanges are missing. */
export const ADDITIONAL_KE_NOT_NEGOTIATED = 'multiple key exchanges (RFC 9370 ke1_..ke7_) are not yet negotiated by kipsec here (only where IKE_INTERMEDIATE or IKE_FOLLOWUP_KE runs them: IKE SA setup, IKE rekey, Child SAs in CREATE_CHILD_SA)';

/** strongSwan: PRF derived from an integrity algorithm when an IKE proposal names none. */
const PRF_FOR_INTEG: Readonly<Record<number, number>> = {
  [IntegId.AUTH_HMAC_SHA1_96]: PrfId.PRF_HMAC_SHA1,
  [IntegId.AUTH_HMAC_SHA2_256_128]: PrfId.PRF_HMAC_SHA2_256,
  [IntegId.AUTH_HMAC_SHA2_384_192]: PrfId.PRF_HMAC_SHA2_384,
  [IntegId.AUTH_HMAC_SHA2_512_256]: PrfId.PRF_HMAC_SHA2_512,
  [IntegId.AUTH_HMAC_MD5_96]: PrfId.PRF_HMAC_MD5,
};

function toTransform(k: Keyword): PolicyTransform {
  return k.keyLength === undefined ? { type: k.type, id: k.id } : { type: k.type, id: k.id, keyLength: k.keyLength };
}

function sameTransform(a: PolicyTransform, b: PolicyTransform): boolean {
  return a.type === b.type && a.id === b.id && a.keyLength === b.keyLength;
}

export function isAeadTransform(t: PolicyTransform): boolean {
  return t.type === TransformType.ENCR && keywordFor(t.type, t.id, t.keyLength)?.aead === true;
}

/** Parse one proposal string for `protocol`. */
export function parseProposal(text: string, protocol: SaProtocol, opts: ParseOptions = {}): PolicyProposal {
  const path = opts.path ?? `${protocol} proposal`;
  const tokens = text.trim().split('-');
  if (tokens.length === 0 || tokens.some((t) => t.length === 0)) throw new ConfigError(path, `empty transform in proposal "${text}"`);
  const transforms: PolicyTransform[] = [];
  for (const token of tokens) {
    const k = keywordBySpelling(token);
    if (!k) throw new ConfigError(path, `unknown transform "${token}" in proposal "${text}"`);
    if (k.additionalOnly) throw new ConfigError(path, `"${token}" is supported only as an additional key exchange (e.g. x25519-ke1_${k.name}), not as the IKE_SA_INIT key exchange`);
    if (k.status === 'unsupported') throw new ConfigError(path, `transform "${token}" is not supported by kipsec`);
    if (isAdditionalKeyExchangeType(k.type) && !opts.additionalKeyExchanges) throw new ConfigError(path, `"${token}": ${ADDITIONAL_KE_NOT_NEGOTIATED}; remove it from proposal "${text}"`);
    if (k.status === 'refused') throw new ConfigError(path, `transform "${token}" is insecure and not implemented (RFC 8247)`);
    if (k.status === 'weak' && !opts.allowWeak) throw new ConfigError(path, `transform "${token}" is weak (RFC 8247); it needs a profile with allowWeak`);
    if (protocol === 'ike' && k.type === TransformType.ESN) throw new ConfigError(path, `"${token}" is only valid in ESP proposals`);
    if (protocol === 'esp' && k.type === TransformType.PRF) throw new ConfigError(path, `"${token}" (a PRF) is only valid in IKE proposals`);
    const t = toTransform(k);
    if (!transforms.some((x) => sameTransform(x, t))) transforms.push(t);
  }
  return finish(transforms, protocol, path, text);
}

function finish(transforms: PolicyTransform[], protocol: SaProtocol, path: string, text: string): PolicyProposal {
  const of = (type: number): PolicyTransform[] => transforms.filter((t) => t.type === type);
  const encr = of(TransformType.ENCR);
  if (encr.length === 0) throw new ConfigError(path, `proposal "${text}" has no encryption algorithm`);
  const aead = encr.filter(isAeadTransform);
  if (aead.length > 0 && aead.length < encr.length)
    throw new ConfigError(path, `proposal "${text}" mixes AEAD and non-AEAD encryption; use two proposals`);
  const integ = of(TransformType.INTEG);
  if (aead.length > 0 && integ.length > 0) throw new ConfigError(path, `proposal "${text}" combines AEAD encryption with an integrity algorithm`);
  if (aead.length === 0 && integ.length === 0) throw new ConfigError(path, `proposal "${text}" needs an integrity algorithm (or an AEAD cipher)`);
  const out = [...transforms];
  if (protocol === 'ike') {
    if (of(TransformType.PRF).length === 0) {
      if (aead.length > 0) throw new ConfigError(path, `AEAD proposal "${text}" needs a PRF (e.g. prfsha256)`);
      for (const i of integ) {
        const prf = PRF_FOR_INTEG[i.id];
        if (prf !== undefined && !out.some((t) => t.type === TransformType.PRF && t.id === prf)) out.push({ type: TransformType.PRF, id: prf });
      }
    }
    if (of(TransformType.DH).length === 0) throw new ConfigError(path, `IKE proposal "${text}" needs a key exchange method (e.g. x25519)`);
  }
  // RFC 9370 runs additional key exchanges after the Transform Type 4 one; without it they have nothing to follow.
  if (transforms.some((t) => isAdditionalKeyExchangeType(t.type) && t.id !== DhId.NONE) && !transforms.some((t) => t.type === TransformType.DH && t.id !== DhId.NONE))
    throw new ConfigError(path, `proposal "${text}" has additional key exchanges but no key exchange method for them to follow (e.g. x25519)`);
  if (protocol === 'ike') {
    // IKE proposals never carry ESN.
  } else if (of(TransformType.ESN).length === 0) {
    out.push({ type: TransformType.ESN, id: EsnId.NO_ESN });
  }
  return { protocol, transforms: sortByType(out) };
}

/** Keep each type's preference order; types as strongSwan prints them (ENCR, INTEG, PRF, KE, ADDKE1..7, ESN). */
function sortByType(ts: readonly PolicyTransform[]): PolicyTransform[] {
  const order: readonly number[] = [TransformType.ENCR, TransformType.INTEG, TransformType.PRF, TransformType.DH, ...ADDITIONAL_KE_TYPES, TransformType.ESN];
  return order.flatMap((type) => ts.filter((t) => t.type === type)).concat(ts.filter((t) => !order.includes(t.type)));
}

/** Parse a list of proposal strings (a config field); errors name the element. */
export function parseProposals(texts: readonly string[], protocol: SaProtocol, opts: ParseOptions = {}): PolicyProposal[] {
  const base = opts.path ?? `${protocol}.proposals`;
  if (texts.length === 0) throw new ConfigError(base, 'at least one proposal is required');
  return texts.map((t, i) => parseProposal(t, protocol, { ...opts, path: `${base}[${i}]` }));
}

/**
 * strongSwan syntax for a proposal. An ESP proposal prints "esn"/"noesn" only when it differs
 * from the default (NO_ESN alone), so parse(format(p)) == p. Unknown IDs print as e.g. "encr57".
 */
export function formatProposal(p: PolicyProposal): string {
  const ts = p.protocol === 'esp' && p.transforms.filter((t) => t.type === TransformType.ESN).length === 1 && p.transforms.some((t) => t.type === TransformType.ESN && t.id === EsnId.NO_ESN)
    ? p.transforms.filter((t) => t.type !== TransformType.ESN)
    : p.transforms;
  return sortByType(ts).map((t) => transformName(t.type, t.id, t.keyLength)).join('-');
}

/** "IKE:aes256gcm16-prfsha384-x25519" style, as used in NO_PROPOSAL_CHOSEN messages. */
export function describeProposal(p: PolicyProposal): string {
  return `${p.protocol.toUpperCase()}:${formatProposal(p)}`;
}

/**
 * The proposals without KE methods, for the first Child SA in IKE_AUTH (RFC 7296 §1.2: those SA
 * payloads carry no Transform Type 4; omit it rather than send NONE; RFC 9370: nor ADDKE types).
 * PFS applies from the first CREATE_CHILD_SA rekey on. Proposals that become identical are merged.
 */
export function withoutKeyExchange(ps: readonly PolicyProposal[]): PolicyProposal[] {
  const out: PolicyProposal[] = [];
  for (const p of ps) {
    const q: PolicyProposal = { protocol: p.protocol, transforms: p.transforms.filter((t) => t.type !== TransformType.DH && !isAdditionalKeyExchangeType(t.type)) };
    const key = formatProposal(q);
    if (!out.some((o) => o.protocol === q.protocol && formatProposal(o) === key)) out.push(q);
  }
  return out;
}
