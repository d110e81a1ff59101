// RFC 3948 §2.2 / RFC 7296 §2.23: on UDP port 4500, IKE messages are prefixed by a 4-octet non-ESP
// marker (zero, where ESP would have its non-zero SPI); a single 0xFF octet is a NAT-keepalive
// (RFC 3948 §2.3) and anything else is ESP-in-UDP for the data plane.
import { concatBytes } from '../../common/bytes.js';
import { NON_ESP_MARKER } from '../constants.js';

export type Port4500Datagram =
  | { readonly kind: 'ike'; readonly message: Uint8Array }
  | { readonly kind: 'esp'; readonly packet: Uint8Array }
  | { readonly kind: 'keepalive' }
  | { readonly kind: 'invalid'; readonly reason: string };

export function classifyPort4500(datagram: Uint8Array): Port4500Datagram {
  if (datagram.length === 1 && datagram[0] === 0xff) return { kind: 'keepalive' };
  if (datagram.length < 4) return { kind: 'invalid', reason: `datagram is ${datagram.length} bytes, too short for a marker or an SPI` };
  if (datagram[0] === 0 && datagram[1] === 0 && datagram[2] === 0 && datagram[3] === 0) return { kind: 'ike', message: datagram.subarray(4) };
  return { kind: 'esp', packet: datagram };
}

/** Prefix an encoded IKE message with the non-ESP marker for sending on port 4500. */
export function withNonEspMarker(message: Uint8Array): Uint8Array { return concatBytes(NON_ESP_MARKER, message); }
