// NetlinkTransport over the npm `netlink` package's RawNetlinkSocket (its prebuilt binary opens
// NETLINK_XFRM and NETLINK_ROUTE sockets; see DESIGN.md §5). We use only its raw layer: framing,
// sequence matching and errors are ours so they can be tested with recorded bytes.
import { RawNetlinkSocket } from 'netlink';
import type { NetlinkTransport } from './transport.js';
import { NetlinkSocketError } from './errors.js';

export interface RawTransportOptions {
  /** SO_RCVBUF in bytes; large dumps and event bursts need room (strongSwan uses 2 MiB+). */
  readonly recvBufferSize?: number;
  readonly sendBufferSize?: number;
}

export class RawNetlinkTransport implements NetlinkTransport {
  readonly #sock: RawNetlinkSocket;
  readonly portId: number;

  constructor(protocol: number, opts: RawTransportOptions = {}) {
    this.#sock = new RawNetlinkSocket(protocol, {
      recvBufferSize: opts.recvBufferSize ?? 4 << 20,
      sendBufferSize: opts.sendBufferSize ?? 1 << 20,
    });
    this.portId = this.#sock.address().port;
    this.#sock.unref();
  }

  send(datagram: Uint8Array): void {
    // The addon accepts Buffers only (a plain Uint8Array aborts inside its C++ code).
    this.#sock.send(Buffer.from(datagram.buffer, datagram.byteOffset, datagram.byteLength), {}, (err) => {
      if (err) this.#onError?.(new NetlinkSocketError(err.code, `netlink send failed: ${err.code}`));
    });
  }

  #onError: ((e: Error) => void) | undefined;

  setReceiver(onDatagram: (d: Uint8Array) => void, onError: (e: Error) => void): void {
    this.#onError = onError;
    // These callbacks run inside the addon's native frame: an exception escaping them aborts the
    // process (C++ Napi::Error, no stack). Route any throw to onError instead.
    this.#sock.on('message', (msg) => {
      try { onDatagram(new Uint8Array(msg.buffer, msg.byteOffset, msg.byteLength)); } catch (e) { onError(e instanceof Error ? e : new Error(String(e))); }
    });
    this.#sock.on('truncatedMessage', () => onError(new NetlinkSocketError('EMSGSIZE', 'netlink datagram truncated')));
    this.#sock.on('error', (err) => onError(new NetlinkSocketError(err.code, `netlink socket error: ${err.code}`)));
  }

  addMembership(group: number): void { this.#sock.addMembership(group); }
  setRef(ref: boolean): void { if (ref) this.#sock.ref(); else this.#sock.unref(); }
  close(): void { this.#sock.close(); }
}
