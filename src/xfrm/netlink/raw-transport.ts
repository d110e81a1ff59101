// NetlinkTransport over the project's N-API addon (native/kipsec_native.c: socket(AF_NETLINK),
// polled by libuv; NETLINK_XFRM and NETLINK_ROUTE). The addon only moves datagrams: framing,
// sequence matching and errors are ours so they can be tested with recorded bytes. (The npm
// `netlink` package did this job first; its binding crashed the process in two ways, see the
// addon's netlink section.)
import type { NetlinkTransport } from './transport.js';
import { NetlinkSocketError } from './errors.js';
import { loadNative, type KipsecNative, type NetlinkHandle } from '../native.js';

export interface RawTransportOptions {
  /** SO_RCVBUF in bytes; large dumps and event bursts need room (strongSwan uses 2 MiB+). */
  readonly recvBufferSize?: number;
  readonly sendBufferSize?: number;
  /** The addon (tests pass a path-loaded one); default: the built addon. */
  readonly native?: KipsecNative;
}

function socketError(e: unknown, what: string): NetlinkSocketError {
  const code = (e as { code?: unknown }).code;
  const name = typeof code === 'string' ? code : 'EUNKNOWN';
  return new NetlinkSocketError(name, `${what}: ${e instanceof Error ? e.message : String(e)}`);
}

export class RawNetlinkTransport implements NetlinkTransport {
  readonly #native: KipsecNative;
  readonly #h: NetlinkHandle;
  readonly portId: number;
  #onDatagram: ((d: Uint8Array) => void) | undefined;
  #onError: ((e: Error) => void) | undefined;

  constructor(protocol: number, opts: RawTransportOptions = {}) {
    this.#native = opts.native ?? loadNative();
    try {
      this.#h = this.#native.netlinkOpen(protocol, opts.recvBufferSize ?? 4 << 20, opts.sendBufferSize ?? 1 << 20, (err, datagrams) => this.#read(err, datagrams));
    } catch (e) {
      throw socketError(e, `netlink socket (protocol ${protocol})`);
    }
    this.portId = this.#native.netlinkPort(this.#h);
    // Request-only users must not keep the process alive; event subscribers call setRef(true).
    this.#native.netlinkRef(this.#h, false);
  }

  /** One wake-up's datagrams, then its error. A throw from a receiver goes to onError, never up into the addon. */
  #read(err: (Error & { code?: string }) | null, datagrams: readonly Buffer[]): void {
    for (const d of datagrams) {
      if (!this.#onDatagram) break; // nobody listens yet: nothing was asked, nothing to answer
      try { this.#onDatagram(new Uint8Array(d.buffer, d.byteOffset, d.byteLength)); } catch (e) { this.#onError?.(e instanceof Error ? e : new Error(String(e))); }
    }
    if (err) this.#onError?.(socketError(err, `netlink socket error ${err.code ?? ''}`.trimEnd()));
  }

  send(datagram: Uint8Array): void {
    try { this.#native.netlinkSend(this.#h, datagram); } catch (e) { throw socketError(e, 'netlink send failed'); }
  }

  setReceiver(onDatagram: (d: Uint8Array) => void, onError: (e: Error) => void): void {
    this.#onDatagram = onDatagram;
    this.#onError = onError;
  }

  addMembership(group: number): void { this.#native.netlinkAddMembership(this.#h, group); }
  setRef(ref: boolean): void { this.#native.netlinkRef(this.#h, ref); }
  close(): void { this.#native.netlinkClose(this.#h); }
}
