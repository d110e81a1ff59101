// RFC 7296 §3.6 Certificate payload: Cert Encoding (1), Certificate Data. For X.509 signature
// certificates (encoding 4) the data is one DER certificate; parsing it is the PKI module's job.
import type { Reader, Writer } from '../../../common/bytes.js';
import { fail, type PayloadFlags } from './base.js';

export interface CertPayload extends PayloadFlags { readonly kind: 'cert'; readonly encoding: number; readonly data: Uint8Array }

export function decodeCert(r: Reader): CertPayload {
  const encoding = r.u8('cert encoding');
  const data = r.rest();
  if (data.length === 0) fail(r, 'ERR_IKE_CERT_EMPTY', `certificate payload (encoding ${encoding}) has no data`);
  return { kind: 'cert', encoding, data };
}

export function encodeCert(w: Writer, p: CertPayload): void { w.u8(p.encoding).bytes(p.data); }
