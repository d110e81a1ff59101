// Typed Notification Data for the notifies the engine reads and writes. Each decoder takes a
// NotifyPayload of the right type and throws IkeCodecError (INVALID_SYNTAX) on malformed data.
//   NAT_DETECTION_SOURCE_IP / _DESTINATION_IP  RFC 7296 §2.23: SHA-1(SPIi | SPIr | IP | port), 20 octets
//   COOKIE                                     RFC 7296 §2.6: 1..64 octets, opaque
//   INVALID_KE_PAYLOAD                         RFC 7296 §1.3: the accepted DH group, 2 octets
//   SIGNATURE_HASH_ALGORITHMS                  RFC 7427 §4: a list of 16-bit hash algorithm numbers
//   REKEY_SA                                   RFC 7296 §1.3.3: no data; Protocol ID + SPI of the SA being rekeyed
//   SET_WINDOW_SIZE                            RFC 7296 §2.3: 4-octet window size
//   UNSUPPORTED_CRITICAL_PAYLOAD               RFC 7296 §3.10.1: the one-octet type of the payload
import type { ParseError } from '../../../common/errors.js';
import { IkeCodecError, notifyForError, UnsupportedCriticalPayloadError } from '../errors.js';
import { NotifyError, NotifyStatus, ProtocolId } from '../../constants.js';
import { notify, type NotifyPayload } from './notify.js';

function bad(code: string, message: string): never { throw new IkeCodecError(code, message, 0); }

function expectType(p: NotifyPayload, type: number, name: string): void {
  if (p.type !== type) bad('ERR_IKE_NOTIFY_TYPE', `notify type is ${p.type}, want ${type} (${name})`);
}

export const NAT_DETECTION_HASH_BYTES = 20;

/** The 20-byte SHA-1 hash of a NAT_DETECTION_SOURCE_IP or _DESTINATION_IP notify. */
export function natDetectionHash(p: NotifyPayload): Uint8Array {
  if (p.type !== NotifyStatus.NAT_DETECTION_SOURCE_IP && p.type !== NotifyStatus.NAT_DETECTION_DESTINATION_IP)
    bad('ERR_IKE_NOTIFY_TYPE', `notify type is ${p.type}, want NAT_DETECTION_SOURCE_IP or _DESTINATION_IP`);
  if (p.data.length !== NAT_DETECTION_HASH_BYTES)
    bad('ERR_IKE_NAT_DETECTION_LENGTH', `NAT detection hash is ${p.data.length} bytes, want ${NAT_DETECTION_HASH_BYTES}`);
  return p.data;
}

/**
 * The input the NAT detection hash is computed over (RFC 7296 §2.23): SPIi | SPIr | IP | port.
 * Hashing it (SHA-1) is the crypto module's job; the codec only lays out the bytes.
 */
export function natDetectionInput(initiatorSpi: bigint, responderSpi: bigint, address: Uint8Array, port: number): Uint8Array {
  if (address.length !== 4 && address.length !== 16) throw new RangeError(`address is ${address.length} bytes, want 4 or 16`);
  const out = new Uint8Array(16 + address.length + 2);
  const v = new DataView(out.buffer);
  v.setBigUint64(0, initiatorSpi);
  v.setBigUint64(8, responderSpi);
  out.set(address, 16);
  v.setUint16(16 + address.length, port);
  return out;
}

export function natDetectionNotify(type: 'source' | 'destination', hash: Uint8Array): NotifyPayload {
  if (hash.length !== NAT_DETECTION_HASH_BYTES) throw new RangeError(`NAT detection hash is ${hash.length} bytes, want 20`);
  return notify(type === 'source' ? NotifyStatus.NAT_DETECTION_SOURCE_IP : NotifyStatus.NAT_DETECTION_DESTINATION_IP, hash);
}

export const COOKIE_MIN_BYTES = 1;
export const COOKIE_MAX_BYTES = 64;

export function cookieData(p: NotifyPayload): Uint8Array {
  expectType(p, NotifyStatus.COOKIE, 'COOKIE');
  if (p.data.length < COOKIE_MIN_BYTES || p.data.length > COOKIE_MAX_BYTES)
    bad('ERR_IKE_COOKIE_LENGTH', `cookie is ${p.data.length} bytes, want ${COOKIE_MIN_BYTES}..${COOKIE_MAX_BYTES}`);
  return p.data;
}

export function cookieNotify(cookie: Uint8Array): NotifyPayload {
  if (cookie.length < COOKIE_MIN_BYTES || cookie.length > COOKIE_MAX_BYTES) throw new RangeError(`cookie is ${cookie.length} bytes, want 1..64`);
  return notify(NotifyStatus.COOKIE, cookie);
}

/** The DH group the responder wants (INVALID_KE_PAYLOAD, RFC 7296 §1.3). */
export function invalidKeGroup(p: NotifyPayload): number {
  expectType(p, NotifyError.INVALID_KE_PAYLOAD, 'INVALID_KE_PAYLOAD');
  if (p.data.length !== 2) bad('ERR_IKE_INVALID_KE_LENGTH', `INVALID_KE_PAYLOAD data is ${p.data.length} bytes, want 2`);
  return (p.data[0]! << 8) | p.data[1]!;
}

export function invalidKeNotify(group: number): NotifyPayload {
  return notify(NotifyError.INVALID_KE_PAYLOAD, new Uint8Array([group >> 8, group & 0xff]));
}

/** RFC 7427 §4: the hash algorithms the peer supports, in its order. */
export function signatureHashAlgorithms(p: NotifyPayload): number[] {
  expectType(p, NotifyStatus.SIGNATURE_HASH_ALGORITHMS, 'SIGNATURE_HASH_ALGORITHMS');
  if (p.data.length % 2 !== 0)
    bad('ERR_IKE_HASH_ALGORITHMS_LENGTH', `SIGNATURE_HASH_ALGORITHMS data is ${p.data.length} bytes, want an even number`);
  const out: number[] = [];
  for (let i = 0; i < p.data.length; i += 2) out.push((p.data[i]! << 8) | p.data[i + 1]!);
  return out;
}

export function signatureHashAlgorithmsNotify(algorithms: readonly number[]): NotifyPayload {
  const data = new Uint8Array(algorithms.length * 2);
  algorithms.forEach((a, i) => { data[2 * i] = a >> 8; data[2 * i + 1] = a & 0xff; });
  return notify(NotifyStatus.SIGNATURE_HASH_ALGORITHMS, data);
}

/** REKEY_SA: which Child SA (protocol, 4-byte SPI) a CREATE_CHILD_SA rekeys. */
export function rekeySa(p: NotifyPayload): { protocolId: number; spi: Uint8Array } {
  expectType(p, NotifyStatus.REKEY_SA, 'REKEY_SA');
  if (p.protocolId !== ProtocolId.AH && p.protocolId !== ProtocolId.ESP)
    bad('ERR_IKE_REKEY_SA_PROTOCOL', `REKEY_SA protocol is ${p.protocolId}, want 2 (AH) or 3 (ESP)`);
  if (p.spi.length !== 4) bad('ERR_IKE_REKEY_SA_SPI', `REKEY_SA SPI is ${p.spi.length} bytes, want 4`);
  return { protocolId: p.protocolId, spi: p.spi };
}

export function rekeySaNotify(protocolId: number, spi: Uint8Array): NotifyPayload {
  if (spi.length !== 4) throw new RangeError(`REKEY_SA SPI is ${spi.length} bytes, want 4`);
  return { kind: 'notify', protocolId, type: NotifyStatus.REKEY_SA, spi, data: new Uint8Array(0) };
}

export function setWindowSize(p: NotifyPayload): number {
  expectType(p, NotifyStatus.SET_WINDOW_SIZE, 'SET_WINDOW_SIZE');
  if (p.data.length !== 4) bad('ERR_IKE_WINDOW_SIZE_LENGTH', `SET_WINDOW_SIZE data is ${p.data.length} bytes, want 4`);
  return new DataView(p.data.buffer, p.data.byteOffset, 4).getUint32(0);
}

/** RFC 7296 §3.10.1: UNSUPPORTED_CRITICAL_PAYLOAD carries the offending payload type in one octet. */
export function unsupportedCriticalPayloadNotify(payloadType: number): NotifyPayload {
  return notify(NotifyError.UNSUPPORTED_CRITICAL_PAYLOAD, new Uint8Array([payloadType & 0xff]));
}

/**
 * The notify to answer a request that failed to decode (RFC 7296 §2.21.1 / §3.10.1): INVALID_SYNTAX,
 * INVALID_MAJOR_VERSION, or UNSUPPORTED_CRITICAL_PAYLOAD with the payload type.
 */
export function replyNotifyFor(e: ParseError): NotifyPayload {
  if (e instanceof UnsupportedCriticalPayloadError) return unsupportedCriticalPayloadNotify(e.payloadType);
  return notify(notifyForError(e));
}
