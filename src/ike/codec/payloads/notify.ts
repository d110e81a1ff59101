// RFC 7296 §3.10 Notify payload: Protocol ID (1), SPI Size (1), Notify Message Type (2), SPI,
// Notification Data. Protocol ID is 0 (or 1) when the notify concerns the IKE SA, then the SPI is
// empty; for Child SAs (AH/ESP) the SPI is 4 octets. Typed data helpers are in notify-data.ts.
import type { Reader, Writer } from '../../../common/bytes.js';
import { ProtocolId } from '../../constants.js';
import { fail, type PayloadFlags } from './base.js';

export interface NotifyPayload extends PayloadFlags {
  readonly kind: 'notify';
  readonly protocolId: number;
  readonly type: number;
  readonly spi: Uint8Array;
  readonly data: Uint8Array;
}

export function decodeNotify(r: Reader): NotifyPayload {
  const protocolId = r.u8('notify protocol id');
  if (protocolId > ProtocolId.ESP)
    fail(r, 'ERR_IKE_NOTIFY_PROTOCOL', `notify protocol id is ${protocolId}, want 0..3`);
  const spiSize = r.u8('notify spi size');
  // §3.10: SPI size is 0 for the IKE SA (the SPIs are in the header) and 4 for AH/ESP. 8 (an IKE
  // SPI) is tolerated rather than failing the whole message over a notify the handler may ignore;
  // typed readers (notify-data.ts) check the SPI they need.
  if (spiSize !== 0 && spiSize !== 4 && spiSize !== 8)
    fail(r, 'ERR_IKE_NOTIFY_SPI_SIZE', `notify SPI size is ${spiSize}, want 0, 4 or 8`);
  const type = r.u16('notify type');
  const spi = r.bytes(spiSize, 'notify spi');
  return { kind: 'notify', protocolId, type, spi, data: r.rest() };
}

export function encodeNotify(w: Writer, p: NotifyPayload): void {
  w.u8(p.protocolId).u8(p.spi.length).u16(p.type).bytes(p.spi).bytes(p.data);
}

/** §3.10.1: types below 16384 are errors; the rest are status notifies. */
export function isErrorNotify(p: NotifyPayload): boolean { return p.type < 16384; }

/** A notify about the IKE SA with no SPI, the common case. */
export function notify(type: number, data: Uint8Array = new Uint8Array(0)): NotifyPayload {
  return { kind: 'notify', protocolId: 0, type, spi: new Uint8Array(0), data };
}
