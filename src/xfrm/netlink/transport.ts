// The seam between netlink framing and a real socket. Unit tests implement it with recorded
// datagrams; production uses RawNetlinkTransport over the native addon's netlink socket.
export interface NetlinkTransport {
  /** Port id the kernel addresses replies to (nlmsg_pid of our requests may stay 0). */
  readonly portId: number;
  /** Send one datagram (one or more whole messages) to the kernel. */
  send(datagram: Uint8Array): void;
  /** Register the single receiver of datagrams and socket errors. */
  setReceiver(onDatagram: (datagram: Uint8Array) => void, onError: (err: Error) => void): void;
  addMembership(group: number): void;
  /** Keep the event loop alive (event subscribers) or not (request-only use). */
  setRef(ref: boolean): void;
  close(): void;
}
