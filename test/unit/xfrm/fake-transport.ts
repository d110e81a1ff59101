// A NetlinkTransport for unit tests: records what the code sends and answers with datagrams a
// test supplies (recorded kernel bytes or built ones), asynchronously like a real socket.
import type { NetlinkTransport } from '../../../src/xfrm/netlink/transport.js';
import { splitNlmsgs, type NlMessage } from '../../../src/xfrm/netlink/nlmsghdr.js';

export const PORT = 0x1234;

export type Responder = (req: NlMessage, raw: Uint8Array) => Uint8Array[];

export class FakeTransport implements NetlinkTransport {
  readonly portId = PORT;
  readonly sent: Uint8Array[] = [];
  readonly groups: number[] = [];
  closed = false;
  #onDatagram: (d: Uint8Array) => void = () => {};
  #onError: (e: Error) => void = () => {};
  responder: Responder;

  // Like the kernel: an ACK only when asked for (NLM_F_ACK); errors are injected by responders.
  constructor(responder: Responder = (req) => (req.hdr.nlmsg_flags & 0x4 ? [ack(req)] : [])) { this.responder = responder; }

  send(datagram: Uint8Array): void {
    this.sent.push(datagram);
    const replies: Uint8Array[] = [];
    for (const m of splitNlmsgs(datagram)) replies.push(...this.responder(m, datagram));
    for (const r of replies) setImmediate(() => this.#onDatagram(r));
  }
  setReceiver(onDatagram: (d: Uint8Array) => void, onError: (e: Error) => void): void { this.#onDatagram = onDatagram; this.#onError = onError; }
  addMembership(group: number): void { this.groups.push(group); }
  setRef(): void {}
  close(): void { this.closed = true; }

  /** Push a datagram as if the kernel sent it (multicast events). */
  inject(d: Uint8Array): void { this.#onDatagram(d); }
  fail(e: Error): void { this.#onError(e); }
}

function hdr(len: number, type: number, flags: number, seq: number, pid: number): Uint8Array {
  const b = new Uint8Array(16); const v = new DataView(b.buffer);
  v.setUint32(0, len, true); v.setUint16(4, type, true); v.setUint16(6, flags, true); v.setUint32(8, seq, true); v.setUint32(12, pid, true);
  return b;
}

/** NLMSG_ERROR with `errno` (0 = ACK), echoing the request header, addressed to our port. */
export function ack(req: NlMessage, errno = 0): Uint8Array {
  const out = new Uint8Array(16 + 4 + 16);
  out.set(hdr(out.length, 2, 0x100 /* CAPPED */, req.hdr.nlmsg_seq, PORT), 0);
  new DataView(out.buffer).setInt32(16, -errno, true);
  out.set(hdr(req.hdr.nlmsg_len, req.hdr.nlmsg_type, req.hdr.nlmsg_flags, req.hdr.nlmsg_seq, req.hdr.nlmsg_pid), 20);
  return out;
}

/** A message of `type` answering `req` (same seq), with the given payload. */
export function reply(req: NlMessage, type: number, payload: Uint8Array, flags = 0): Uint8Array {
  const out = new Uint8Array(16 + payload.length);
  out.set(hdr(out.length, type, flags, req.hdr.nlmsg_seq, PORT), 0);
  out.set(payload, 16);
  return out;
}

export function done(req: NlMessage, flags = 2 /* MULTI */): Uint8Array {
  const out = new Uint8Array(20);
  out.set(hdr(20, 3, flags, req.hdr.nlmsg_seq, PORT), 0);
  return out;
}

export function concatDatagram(...msgs: Uint8Array[]): Uint8Array {
  const n = msgs.reduce((a, m) => a + ((m.length + 3) & ~3), 0);
  const out = new Uint8Array(n); let at = 0;
  for (const m of msgs) { out.set(m, at); at += (m.length + 3) & ~3; }
  return out;
}
