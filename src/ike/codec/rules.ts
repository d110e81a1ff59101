// Which payloads may appear in each exchange (RFC 7296 §1.2-§1.5 message diagrams, with
// RFC 7383 SKF, RFC 7296 §2.16 EAP and §3.15 CP), checked once on the outer chain and once on the
// decrypted inner chain before any exchange handler runs (strongSwan's message.c does the same).
// A violation is PayloadNotAllowedError, answered with INVALID_SYNTAX.
// Bounds are [min, max]; a message carrying an error notify (type < 16384) or a COOKIE only needs
// to satisfy the max bounds, since such replies carry nothing else (§2.6, §2.21). Unknown
// non-critical payloads are always allowed: §2.5 says to skip them.
import { ExchangeType, NotifyStatus } from '../constants.js';
import { PayloadNotAllowedError } from './errors.js';
import { exchangeName } from './message.js';
import { MAX_PAYLOADS } from './limits.js';
import { payloadLabel, type IkePayload, type KnownPayloadKind } from './payload.js';

type Bounds = readonly [min: number, max: number];
export type PayloadRule = Partial<Record<KnownPayloadKind, Bounds>>;
export interface ExchangeRules {
  readonly outer: PayloadRule;
  /** Inside SK/SKF; undefined when the exchange is never encrypted (IKE_SA_INIT). */
  readonly inner?: PayloadRule;
}

const ANY: Bounds = [0, MAX_PAYLOADS];
const ONE: Bounds = [1, 1];
const OPT: Bounds = [0, 1];

/** Encrypted exchanges: the outer chain is exactly one SK or one SKF (checked in checkOuter). */
const ENCRYPTED_OUTER: PayloadRule = { sk: OPT, skf: OPT };

export const EXCHANGE_RULES: ReadonlyMap<number, { readonly request: ExchangeRules; readonly response: ExchangeRules }> = new Map([
  [ExchangeType.IKE_SA_INIT, {
    // HDR, SAi1, KEi, Ni, [N(COOKIE)], [N...], [V...]
    request: { outer: { sa: ONE, ke: ONE, nonce: ONE, notify: ANY, vendor: ANY } },
    // HDR, SAr1, KEr, Nr, [CERTREQ], [N...], [V...]  or  HDR, N(error or COOKIE)
    response: { outer: { sa: ONE, ke: ONE, nonce: ONE, certreq: ANY, notify: ANY, vendor: ANY } },
  }],
  [ExchangeType.IKE_AUTH, {
    // SK {IDi, [CERT+], [N(INITIAL_CONTACT)], [CERTREQ+], [IDr], AUTH, [CP], SAi2, TSi, TSr, [N+], [V+]}
    // AUTH, SA and TS are optional here: EAP rounds (§2.16) and childless IKE_AUTH (RFC 6023).
    request: { outer: ENCRYPTED_OUTER, inner: { idi: OPT, cert: ANY, certreq: ANY, idr: OPT, auth: OPT, cp: OPT, sa: OPT, tsi: OPT, tsr: OPT, notify: ANY, vendor: ANY, eap: OPT } },
    response: { outer: ENCRYPTED_OUTER, inner: { idr: OPT, cert: ANY, auth: OPT, cp: OPT, sa: OPT, tsi: OPT, tsr: OPT, notify: ANY, vendor: ANY, eap: OPT } },
  }],
  [ExchangeType.CREATE_CHILD_SA, {
    // SK {[N(REKEY_SA)], SA, Ni, [KEi], [TSi, TSr]}; IKE rekey: SK {SA, Ni, KEi}
    request: { outer: ENCRYPTED_OUTER, inner: { sa: ONE, nonce: ONE, ke: OPT, tsi: OPT, tsr: OPT, notify: ANY, vendor: ANY } },
    response: { outer: ENCRYPTED_OUTER, inner: { sa: ONE, nonce: ONE, ke: OPT, tsi: OPT, tsr: OPT, notify: ANY, vendor: ANY } },
  }],
  [ExchangeType.IKE_INTERMEDIATE, {
    // RFC 9242 §3, RFC 9370 §2.2.1: SK {KEi(n)} / SK {KEr(n)}; no KE is not a rule violation here
    // (IKE_INTERMEDIATE may carry other data), the exchange code refuses a missing KE itself.
    request: { outer: ENCRYPTED_OUTER, inner: { ke: OPT, notify: ANY, vendor: ANY } },
    response: { outer: ENCRYPTED_OUTER, inner: { ke: OPT, notify: ANY, vendor: ANY } },
  }],
  [ExchangeType.IKE_FOLLOWUP_KE, {
    // RFC 9370 §2.2.2: SK {KEi(n), N(ADDITIONAL_KEY_EXCHANGE)} / SK {KEr(n), [N(ADDITIONAL_KEY_EXCHANGE)]}
    request: { outer: ENCRYPTED_OUTER, inner: { ke: OPT, notify: ANY, vendor: ANY } },
    response: { outer: ENCRYPTED_OUTER, inner: { ke: OPT, notify: ANY, vendor: ANY } },
  }],
  [ExchangeType.INFORMATIONAL, {
    // SK {[N+], [D+], [CP]}, possibly empty (liveness check, §1.4)
    request: { outer: ENCRYPTED_OUTER, inner: { notify: ANY, delete: ANY, cp: OPT, vendor: ANY } },
    response: { outer: ENCRYPTED_OUTER, inner: { notify: ANY, delete: ANY, cp: OPT, vendor: ANY } },
  }],
]);

function rulesFor(exchangeType: number, response: boolean): ExchangeRules {
  const rules = EXCHANGE_RULES.get(exchangeType);
  if (rules === undefined)
    throw new PayloadNotAllowedError('ERR_IKE_EXCHANGE_TYPE', `exchange type ${exchangeType}`, exchangeName(exchangeType), response, 'outer', 'is not supported');
  return response ? rules.response : rules.request;
}

function relaxed(payloads: readonly IkePayload[]): boolean {
  return payloads.some((p) => p.kind === 'notify' && (p.type < 16384 || p.type === NotifyStatus.COOKIE));
}

/** The payloads a rule requires at least once (min > 0), listed once per rule: checked on every message. */
const requiredOf = new WeakMap<PayloadRule, ReadonlyArray<readonly [KnownPayloadKind, number]>>();
function required(rule: PayloadRule): ReadonlyArray<readonly [KnownPayloadKind, number]> {
  let r = requiredOf.get(rule);
  if (r === undefined) {
    r = (Object.entries(rule) as Array<[KnownPayloadKind, Bounds]>).filter(([, b]) => b[0] > 0).map(([k, b]) => [k, b[0]] as const);
    requiredOf.set(rule, r);
  }
  return r;
}

function check(rule: PayloadRule, payloads: readonly IkePayload[], exchangeType: number, response: boolean, where: 'outer' | 'encrypted'): void {
  const counts = new Map<KnownPayloadKind, number>();
  for (const p of payloads) {
    if (p.kind === 'unknown') continue;
    const bounds = rule[p.kind];
    if (bounds === undefined) throw new PayloadNotAllowedError('ERR_IKE_PAYLOAD_NOT_ALLOWED', payloadLabel(p.kind), exchangeName(exchangeType), response, where, 'is not allowed');
    const n = (counts.get(p.kind) ?? 0) + 1;
    if (n > bounds[1]) throw new PayloadNotAllowedError('ERR_IKE_PAYLOAD_TOO_MANY', payloadLabel(p.kind), exchangeName(exchangeType), response, where, `appears ${n} times, want at most ${bounds[1]}`);
    counts.set(p.kind, n);
  }
  if (relaxed(payloads)) return;
  for (const [kind, min] of required(rule)) {
    if ((counts.get(kind) ?? 0) < min) throw new PayloadNotAllowedError('ERR_IKE_PAYLOAD_MISSING', payloadLabel(kind), exchangeName(exchangeType), response, where, 'is missing');
  }
}

/** Check the outer chain of a decoded message (before decryption). */
export function checkOuterPayloads(exchangeType: number, response: boolean, payloads: readonly IkePayload[]): void {
  const rules = rulesFor(exchangeType, response);
  check(rules.outer, payloads, exchangeType, response, 'outer');
  if (rules.inner !== undefined) {
    const envelopes = payloads.filter((p) => p.kind === 'sk' || p.kind === 'skf').length;
    if (envelopes !== 1)
      throw new PayloadNotAllowedError('ERR_IKE_PAYLOAD_MISSING', 'SK', exchangeName(exchangeType), response, 'outer', envelopes === 0 ? 'is missing' : 'appears more than once');
  }
}

/** Check the decrypted inner chain of an SK/SKF message. */
export function checkInnerPayloads(exchangeType: number, response: boolean, payloads: readonly IkePayload[]): void {
  const rules = rulesFor(exchangeType, response);
  if (rules.inner === undefined)
    throw new PayloadNotAllowedError('ERR_IKE_PAYLOAD_NOT_ALLOWED', 'SK', exchangeName(exchangeType), response, 'outer', 'is not allowed');
  check(rules.inner, payloads, exchangeType, response, 'encrypted');
}

/** Convenience: check a message as it stands (outer if it carries SK/SKF or is IKE_SA_INIT, else inner). */
export function checkPayloads(m: { readonly header: { readonly exchangeType: number; readonly response: boolean }; readonly payloads: readonly IkePayload[] },
  where: 'outer' | 'encrypted'): void {
  if (where === 'outer') checkOuterPayloads(m.header.exchangeType, m.header.response, m.payloads);
  else checkInnerPayloads(m.header.exchangeType, m.header.response, m.payloads);
}
