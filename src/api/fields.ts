// Reusable schema pieces: addresses, CIDRs, durations, proposals, conditions, secret references.
// Each CEL rule sits next to its TypeScript twin.
import { parseDurationMs } from '../common/duration.js';
import { DNS_NAME_PATTERN, DURATION_PATTERN, isCidr, isIp, isMaskedCidr } from './net.js';
import { bool, int, list, obj, oneOf, opt, req, str, type Node } from './schema.js';
import { ALL_TOKENS, celList, tokensOf } from './transforms.js';

export const durationMs = (s: string): number => parseDurationMs(s, 'duration');

export function duration(): Node<string> {
  return str({ pattern: DURATION_PATTERN, maxLength: 32 });
}

export function ipAddress(): Node<string> {
  return str({ maxLength: 45 }).rule('isIP(self)', 'must be an IP address', (s) => isIp(s));
}

export function hostAddress(): Node<string> {
  return str({ maxLength: 253 }).rule(`isIP(self) || self.matches(r'${DNS_NAME_PATTERN}')`, 'must be an IP address or a DNS name',
    (s) => isIp(s) || new RegExp(DNS_NAME_PATTERN).test(s));
}

export function cidr(): Node<string> {
  return str({ maxLength: 49 })
    .rule('isCIDR(self)', 'must be a CIDR such as 10.1.0.0/16', (s) => isCidr(s))
    .rule('!isCIDR(self) || cidr(self).masked() == cidr(self)', 'must be a network address (host bits zero), e.g. 10.1.0.0/16', (s) => !isCidr(s) || isMaskedCidr(s));
}

/** "10.0.0.1/30": an interface address with prefix (host bits allowed). */
export function interfaceAddress(): Node<string> {
  return str({ maxLength: 49 }).rule('isCIDR(self)', 'must be an address with prefix such as 169.254.10.1/30', (s) => isCidr(s));
}

const ALL = celList(ALL_TOKENS);
const AEAD = celList(tokensOf('aead'));
const ENCR = celList(tokensOf('encr'));
const INTEG = celList(tokensOf('integ'));
const PRF = celList(tokensOf('prf'));
const DH = celList(tokensOf('dh'));
const ESN = celList(tokensOf('esn'));

const has = (p: string, kind: Parameters<typeof tokensOf>[0]): boolean => p.split('-').some((x) => tokensOf(kind).includes(x));

/** One proposal string; `for` decides the IKE- or ESP-specific structure rules. */
export function proposal(forProto: 'ike' | 'esp'): Node<string> {
  // Structure rules apply only once every token is known, so a typo gives one error, not three.
  const known = (s: string): boolean => s.split('-').every((x) => ALL_TOKENS.includes(x));
  const structural = (n: Node<string>, cel: string, message: string, check: (s: string) => boolean): Node<string> =>
    n.rule(`!self.split('-').all(t, t in ${ALL}) || (${cel})`, message, (s) => !known(s) || check(s));
  let n = str({ maxLength: 128, minLength: 1 })
    .rule(`self.split('-').all(t, t in ${ALL})`, 'unknown transform', known,
      { messageExpression: `'unknown transform "' + self.split('-').filter(t, !(t in ${ALL}))[0] + '"'`,
        tsMessage: (s) => `unknown transform "${s.split('-').find((x) => !ALL_TOKENS.includes(x)) ?? ''}"` });
  n = structural(n, `self.split('-').exists(t, t in ${AEAD} || t in ${ENCR})`, 'needs an encryption algorithm (e.g. aes256gcm16)', (s) => has(s, 'aead') || has(s, 'encr'));
  n = structural(n, `!self.split('-').exists(t, t in ${ENCR}) || self.split('-').exists(t, t in ${INTEG})`, 'a non-AEAD cipher needs an integrity algorithm (e.g. sha256)', (s) => !has(s, 'encr') || has(s, 'integ'));
  n = structural(n, `!(self.split('-').exists(t, t in ${AEAD}) && self.split('-').exists(t, t in ${INTEG}))`, 'do not mix AEAD and non-AEAD algorithms in one proposal', (s) => !(has(s, 'aead') && has(s, 'integ')));
  if (forProto === 'ike') {
    n = structural(n, `!self.split('-').exists(t, t in ${AEAD}) || self.split('-').exists(t, t in ${PRF})`, 'an AEAD IKE proposal needs a PRF (e.g. prfsha384)', (s) => !has(s, 'aead') || has(s, 'prf'));
    n = structural(n, `self.split('-').exists(t, t in ${DH})`, 'an IKE proposal needs a key exchange group (e.g. x25519)', (s) => has(s, 'dh'));
    return structural(n, `!self.split('-').exists(t, t in ${ESN})`, 'esn/noesn belong in ESP proposals', (s) => !has(s, 'esn'));
  }
  return structural(n, `!self.split('-').exists(t, t in ${PRF})`, 'a PRF belongs in IKE proposals, not ESP', (s) => !has(s, 'prf'));
}

export const DEFAULT_IKE_PROPOSALS = ['aes256gcm16-prfsha384-x25519', 'aes256gcm16-prfsha256-ecp256'];
export const DEFAULT_ESP_PROPOSALS = ['aes256gcm16-x25519', 'aes256gcm16-ecp256'];

/**
 * Defaults on or off: the mesh has them; an IPsecTunnel does not, because its profile supplies
 * them (profiles/index.ts) and an apiserver-filled default would hide the profile's value.
 */
export interface SettingsOptions { readonly defaults: boolean }

/** Attach a schema default only when the resource wants one. */
function dflt<T>(n: Node<T>, v: T, o: SettingsOptions): Node<T> { return o.defaults ? n.default(v) : n; }

export function ikeSettings(o: SettingsOptions = { defaults: true }) {
  const s = obj({
    proposals: opt(dflt(list(proposal('ike'), { maxItems: 8, minItems: 1 }), DEFAULT_IKE_PROPOSALS, o).describe('strongSwan proposal syntax; first match wins')),
    rekeyTime: opt(dflt(duration(), '4h', o)),
  }).rule(`!has(self.rekeyTime) || duration(self.rekeyTime) >= duration('5m')`, 'must be at least 5m', (s) => s.rekeyTime === undefined || durationMs(s.rekeyTime) >= 300_000, { fieldPath: '.rekeyTime' });
  return o.defaults ? s.default({}) : s;
}

export function espSettings(o: SettingsOptions = { defaults: true }) {
  const s = obj({
    proposals: opt(dflt(list(proposal('esp'), { maxItems: 8, minItems: 1 }), DEFAULT_ESP_PROPOSALS, o).describe('a DH group here means PFS on rekey')),
    rekeyTime: opt(dflt(duration(), '1h', o)),
    lifeTime: opt(dflt(duration(), '66m', o)),
    // The kernel soft-expires the SA at 90% of these, which starts a rekey; at 100% it deletes it.
    lifePackets: opt(int({ minimum: 1000, maximum: 4294967295 }).describe('hard packet limit per Child SA (rekey at 90%); default 2^31 without ESN so the 32-bit sequence number never wraps (RFC 4303 §3.3.3), none with ESN')),
    lifeBytes: opt(int({ minimum: 1048576, maximum: Number.MAX_SAFE_INTEGER }).describe('hard byte limit per Child SA (rekey at 90%); default none')),
  }).rule(`!has(self.rekeyTime) || duration(self.rekeyTime) >= duration('1m')`, 'must be at least 1m', (s) => s.rekeyTime === undefined || durationMs(s.rekeyTime) >= 60_000, { fieldPath: '.rekeyTime' })
    .rule(`!has(self.rekeyTime) || !has(self.lifeTime) || duration(self.lifeTime) > duration(self.rekeyTime)`, 'must be longer than rekeyTime (the SA must outlive its rekey)',
      (s) => s.rekeyTime === undefined || s.lifeTime === undefined || durationMs(s.lifeTime) > durationMs(s.rekeyTime), { fieldPath: '.lifeTime' });
  return o.defaults ? s.default({}) : s;
}

export function dpdSettings(o: SettingsOptions = { defaults: true }) {
  const s = obj({
    interval: opt(dflt(duration(), '30s', o)),
    timeout: opt(dflt(duration(), '150s', o)),
    action: opt(dflt(oneOf(['restart', 'clear', 'hold'] as const), 'restart', o)),
  }).rule(`!has(self.interval) || !has(self.timeout) || duration(self.timeout) > duration(self.interval)`, 'must be longer than interval',
    (s) => s.interval === undefined || s.timeout === undefined || durationMs(s.timeout) > durationMs(s.interval), { fieldPath: '.timeout' });
  return o.defaults ? s.default({}) : s;
}

export function secretKeyRef() {
  return obj({
    name: req(str({ maxLength: 253, minLength: 1 })),
    namespace: req(str({ maxLength: 63, minLength: 1 })),
    key: opt(str({ maxLength: 253 })),
  });
}

export const CONDITION_STATUSES = ['True', 'False', 'Unknown'] as const;

/** metav1.Condition, as a list map keyed by type so several field managers can own entries. */
export function conditions() {
  const c = obj({
    type: req(str({ maxLength: 316, pattern: '^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$' })),
    status: req(oneOf(CONDITION_STATUSES)),
    reason: req(str({ maxLength: 1024, minLength: 1, pattern: '^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$' })),
    message: req(str({ maxLength: 32768 })),
    lastTransitionTime: req(str({ format: 'date-time', maxLength: 64 })),
    observedGeneration: opt(int({ minimum: 0 })),
  });
  const l = list(c, { maxItems: 16 });
  l.openapi['x-kubernetes-list-type'] = 'map';
  l.openapi['x-kubernetes-list-map-keys'] = ['type'];
  return l;
}

export { bool, int };
