// RFC 7296 §3.11 Delete payload: Protocol ID (1), SPI Size (1), Num of SPIs (2), SPIs. Deleting
// the IKE SA uses protocol 1 with SPI size 0 and no SPIs (the SPIs are in the header); Child SAs
// use protocol 2/3 with 4-octet SPIs (the SPIs the sender expects in inbound packets).
import type { Reader, Writer } from '../../../common/bytes.js';
import { ProtocolId } from '../../constants.js';
import { MAX_DELETE_SPIS } from '../limits.js';
import { fail, type PayloadFlags } from './base.js';

export interface DeletePayload extends PayloadFlags {
  readonly kind: 'delete';
  readonly protocolId: number;
  readonly spis: readonly Uint8Array[];
}

export function decodeDelete(r: Reader): DeletePayload {
  const protocolId = r.u8('delete protocol id');
  const spiSize = r.u8('delete spi size');
  const count = r.u16('delete spi count');
  if (protocolId === ProtocolId.IKE) {
    if (spiSize !== 0 || count !== 0)
      fail(r, 'ERR_IKE_DELETE_SPI_SIZE', `IKE SA delete has SPI size ${spiSize} and ${count} SPIs, want 0 and 0`);
  } else if (protocolId === ProtocolId.AH || protocolId === ProtocolId.ESP) {
    if (spiSize !== 4) fail(r, 'ERR_IKE_DELETE_SPI_SIZE', `delete SPI size is ${spiSize} for protocol ${protocolId}, want 4`);
  } else {
    fail(r, 'ERR_IKE_DELETE_PROTOCOL', `delete protocol id is ${protocolId}, want 1, 2 or 3`);
  }
  if (count > MAX_DELETE_SPIS) fail(r, 'ERR_IKE_DELETE_COUNT', `delete lists ${count} SPIs, want at most ${MAX_DELETE_SPIS}`);
  if (r.remaining !== count * spiSize)
    fail(r, 'ERR_IKE_DELETE_LENGTH', `delete has ${r.remaining} bytes of SPIs, want ${count} x ${spiSize}`);
  const spis: Uint8Array[] = [];
  for (let i = 0; i < count; i++) spis.push(r.bytes(spiSize, 'delete spi'));
  return { kind: 'delete', protocolId, spis };
}

export function encodeDelete(w: Writer, p: DeletePayload): void {
  const spiSize = p.protocolId === ProtocolId.IKE ? 0 : 4;
  w.u8(p.protocolId).u8(spiSize).u16(p.spis.length);
  for (const s of p.spis) w.bytes(s);
}
