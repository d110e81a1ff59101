// Socket options Node lacks, behind one interface (DESIGN.md §5): UDP_ENCAP on the 4500 socket
// so the kernel decapsulates ESP-in-UDP (RFC 3948), and per-socket IPsec bypass policies so our
// own tunnels' policies never capture IKE packets. The implementation is src/xfrm's N-API addon;
// when it cannot load, `missingTuning` records why, and `kipsec diagnose` and status say so
// (IKE still works; NAT-T's ESP-in-UDP and host-to-host selectors covering the IKE ports do not).
import type { Socket } from 'node:dgram';
import { errorMessage } from '../common/errors.js';
import { loadNative, setIpsecBypass, setRecvBuffer, setUdpEncap, type KipsecNative } from '../xfrm/native.js';

export interface SocketTuning {
  /** "native addon" when it does the work, else why not. */
  readonly description: string;
  readonly available: boolean;
  udpEncap(s: Socket): void;
  bypass(s: Socket, address: string): void;
  /** IKE_RECV_BUFFER for an IKE socket (without the addon: Node's SO_RCVBUF, capped by rmem_max). */
  receiveBuffer(s: Socket): void;
}

/**
 * Receive buffer of the IKE sockets. The kernel default (~208 KiB) holds only a few hundred small
 * datagrams: when thousands of peers start IKE_SA_INIT at once (a node reboot, a CA rotation) the
 * rest were dropped before the event loop read them (5,937 of 12,624 in a 2,000-peer burst), and
 * each drop costs its initiator a retransmission timeout. The ESP engine's socket uses the same.
 */
export const IKE_RECV_BUFFER = 4 << 20;

/** Node's own setter, which stays within net.core.rmem_max; a failure leaves the default. */
function plainReceiveBuffer(s: Socket): void {
  try { s.setRecvBufferSize(IKE_RECV_BUFFER); } catch { /* the default stays */ }
}

export function missingTuning(reason: string): SocketTuning {
  return { description: `native addon unavailable: ${reason}`, available: false, udpEncap: () => { /* not possible */ }, bypass: () => { /* not possible */ }, receiveBuffer: plainReceiveBuffer };
}

export function addonTuning(native: KipsecNative): SocketTuning {
  return {
    description: 'native addon (UDP_ENCAP, per-socket bypass)', available: true,
    udpEncap: (s) => setUdpEncap(s, native),
    bypass: (s) => setIpsecBypass(s, native),
    receiveBuffer: (s) => setRecvBuffer(s, IKE_RECV_BUFFER, native),
  };
}

/** The addon if it loads, else a tuning that says why not. */
export function loadTuning(): SocketTuning {
  try { return addonTuning(loadNative()); } catch (e) { return missingTuning(errorMessage(e)); }
}
