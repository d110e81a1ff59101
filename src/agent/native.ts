// Socket options Node lacks, behind one interface (DESIGN.md §5): UDP_ENCAP on the 4500 socket
// so the kernel decapsulates ESP-in-UDP (RFC 3948), and per-socket IPsec bypass policies so our
// own tunnels' policies never capture IKE packets. The implementation is src/xfrm's N-API addon;
// when it cannot load, `missingTuning` records why, and `kipsec diagnose` and status say so
// (IKE still works; NAT-T's ESP-in-UDP and host-to-host selectors covering the IKE ports do not).
import type { Socket } from 'node:dgram';
import { errorMessage } from '../common/errors.js';
import { loadNative, setIpsecBypass, setUdpEncap, type KipsecNative } from '../xfrm/native.js';

export interface SocketTuning {
  /** "native addon" when it does the work, else why not. */
  readonly description: string;
  readonly available: boolean;
  udpEncap(s: Socket): void;
  bypass(s: Socket, address: string): void;
}

export function missingTuning(reason: string): SocketTuning {
  return { description: `native addon unavailable: ${reason}`, available: false, udpEncap: () => { /* not possible */ }, bypass: () => { /* not possible */ } };
}

export function addonTuning(native: KipsecNative): SocketTuning {
  return {
    description: 'native addon (UDP_ENCAP, per-socket bypass)', available: true,
    udpEncap: (s) => setUdpEncap(s, native),
    bypass: (s) => setIpsecBypass(s, native),
  };
}

/** The addon if it loads, else a tuning that says why not. */
export function loadTuning(): SocketTuning {
  try { return addonTuning(loadNative()); } catch (e) { return missingTuning(errorMessage(e)); }
}
