// RFC 7296 §3.4 Key Exchange payload: DH Group Num (2), RESERVED (2), Key Exchange Data.
// The data length is fixed per group (RFC 7296 §3.4: "MUST be ... the length of the prime" for
// MODP; RFC 5903 §7 x||y for ECP; RFC 8031 §2 32/56 octets for Curve25519/448). Checking it here
// turns a wrong-sized share into INVALID_SYNTAX before any crypto runs; value validation (point on
// curve, 1 < y < p-1) is the crypto module's job.
import type { Reader, Writer } from '../../../common/bytes.js';
import { DhId } from '../../constants.js';
import { fail, skipReserved, type PayloadFlags } from './base.js';

export interface KePayload extends PayloadFlags { readonly kind: 'ke'; readonly group: number; readonly data: Uint8Array }

/** Key Exchange Data length per group; groups not listed only need non-empty data. */
export const KE_DATA_BYTES: ReadonlyMap<number, number> = new Map([
  [DhId.MODP_768, 96], [DhId.MODP_1024, 128], [DhId.MODP_1536, 192], [DhId.MODP_2048, 256],
  [DhId.MODP_3072, 384], [DhId.MODP_4096, 512], [DhId.MODP_6144, 768], [DhId.MODP_8192, 1024],
  [DhId.ECP_256, 64], [DhId.ECP_384, 96], [DhId.ECP_521, 132],
  [DhId.MODP_1024_160, 128], [DhId.MODP_2048_224, 256], [DhId.MODP_2048_256, 256],
  [DhId.CURVE25519, 32], [DhId.CURVE448, 56],
]);

export function decodeKe(r: Reader): KePayload {
  const group = r.u16('KE group');
  skipReserved(r, 2);
  const data = r.rest();
  const want = KE_DATA_BYTES.get(group);
  if (want !== undefined && data.length !== want)
    fail(r, 'ERR_IKE_KE_LENGTH', `key exchange data for group ${group} is ${data.length} bytes, want ${want}`);
  if (data.length === 0) fail(r, 'ERR_IKE_KE_LENGTH', `key exchange data for group ${group} is empty`);
  return { kind: 'ke', group, data };
}

export function encodeKe(w: Writer, p: KePayload): void {
  w.u16(p.group).u16(0).bytes(p.data);
}
