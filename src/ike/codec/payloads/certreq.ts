// RFC 7296 §3.7 Certificate Request payload: Cert Encoding (1), Certification Authority. For X.509
// (encoding 4) the authority field is a concatenation of 20-octet SHA-1 hashes of trusted CAs'
// SubjectPublicKeyInfo; it may be empty ("any CA"). We send our trust anchors' hashes, as strongSwan does.
import type { Reader, Writer } from '../../../common/bytes.js';
import { CertEncoding } from '../../constants.js';
import { IkeCodecError } from '../errors.js';
import type { PayloadFlags } from './base.js';

export interface CertReqPayload extends PayloadFlags { readonly kind: 'certreq'; readonly encoding: number; readonly authorities: Uint8Array }

export const CA_HASH_BYTES = 20;

export function decodeCertReq(r: Reader): CertReqPayload {
  const encoding = r.u8('certreq encoding');
  return { kind: 'certreq', encoding, authorities: r.rest() };
}

export function encodeCertReq(w: Writer, p: CertReqPayload): void { w.u8(p.encoding).bytes(p.authorities); }

/** The CA key hashes of an X.509 CERTREQ, each 20 bytes (views into the payload). */
export function certReqHashes(p: CertReqPayload): Uint8Array[] {
  if (p.encoding !== CertEncoding.X509_CERT_SIGNATURE)
    throw new IkeCodecError('ERR_IKE_CERTREQ_ENCODING', `certificate request encoding is ${p.encoding}, want ${CertEncoding.X509_CERT_SIGNATURE}`, 0);
  if (p.authorities.length % CA_HASH_BYTES !== 0)
    throw new IkeCodecError('ERR_IKE_CERTREQ_LENGTH', `certificate request authorities are ${p.authorities.length} bytes, want a multiple of ${CA_HASH_BYTES}`, 0);
  const out: Uint8Array[] = [];
  for (let at = 0; at < p.authorities.length; at += CA_HASH_BYTES) out.push(p.authorities.subarray(at, at + CA_HASH_BYTES));
  return out;
}
