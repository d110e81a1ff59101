// IKE identities (RFC 7296 §3.5) between config, ID payloads and status text.
import { ConfigError } from '../../common/errors.js';
import { equalBytes, fromHex, toHex } from '../../common/bytes.js';
import { IdType } from '../constants.js';
import type { IdPayload } from '../codec/payloads/id.js';
import { bytesToIp, ipToBytes, isIp } from './addr.js';
import type { IkeIdentity } from './config.js';

/**
 * strongSwan-style text: an IP literal, "user@example.com", "gw.example.com", or "keyid:hex".
 * DNs need their DER and are built by the caller (e.g. from the certificate's subject).
 */
export function identityFromString(text: string, path = 'id'): IkeIdentity {
  const t = text.trim();
  if (t === '') throw new ConfigError(path, 'empty identity');
  if (isIp(t)) return { type: t.includes(':') ? 'ipv6' : 'ipv4', value: t };
  if (t.startsWith('keyid:')) { const der = fromHex(t.slice(6)); return { type: 'keyid', der, text: t }; }
  if (t.includes('@')) return { type: 'email', value: t };
  return { type: 'fqdn', value: t };
}

export function idPayloadOf(kind: 'idi' | 'idr', id: IkeIdentity): IdPayload {
  switch (id.type) {
    case 'ipv4': return { kind, idType: IdType.ID_IPV4_ADDR, data: ipToBytes(id.value) };
    case 'ipv6': return { kind, idType: IdType.ID_IPV6_ADDR, data: ipToBytes(id.value) };
    case 'fqdn': return { kind, idType: IdType.ID_FQDN, data: new TextEncoder().encode(id.value) };
    case 'email': return { kind, idType: IdType.ID_RFC822_ADDR, data: new TextEncoder().encode(id.value) };
    case 'dn': return { kind, idType: IdType.ID_DER_ASN1_DN, data: id.der };
    case 'keyid': return { kind, idType: IdType.ID_KEY_ID, data: id.der };
  }
}

export function identityText(id: IkeIdentity): string {
  return 'value' in id ? id.value : id.text;
}

/** Printable form of a received ID payload, for status and errors. */
export function idPayloadText(p: { readonly idType: number; readonly data: Uint8Array }): string {
  switch (p.idType) {
    case IdType.ID_IPV4_ADDR: case IdType.ID_IPV6_ADDR: return bytesToIp(p.data);
    case IdType.ID_FQDN: case IdType.ID_RFC822_ADDR: return new TextDecoder().decode(p.data).replace(/[^\x20-\x7e]/g, '?');
    case IdType.ID_DER_ASN1_DN: return `dn:${toHex(p.data).slice(0, 64)}`;
    default: return `id${p.idType}:${toHex(p.data).slice(0, 64)}`;
  }
}

/** Does the received ID payload name exactly this configured identity? (FQDN/email case-insensitive.) */
export function identityMatches(id: IkeIdentity, p: { readonly idType: number; readonly data: Uint8Array }): boolean {
  const want = idPayloadOf('idi', id);
  if (want.idType !== p.idType) return false;
  if (id.type === 'fqdn' || id.type === 'email')
    return new TextDecoder().decode(p.data).toLowerCase() === identityText(id).toLowerCase();
  return equalBytes(want.data, p.data);
}
