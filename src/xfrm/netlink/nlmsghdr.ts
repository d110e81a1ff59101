// struct nlmsghdr (include/uapi/linux/netlink.h), host byte order:
//   struct nlmsghdr {
//     __u32 nlmsg_len;    /* length of message including header */
//     __u16 nlmsg_type;   /* message content */
//     __u16 nlmsg_flags;  /* additional flags */
//     __u32 nlmsg_seq;    /* sequence number */
//     __u32 nlmsg_pid;    /* sending process port ID */
//   };
import { Reader, Writer } from '../../common/bytes.js';
import { ParseError } from '../../common/errors.js';
import { getU16, getU32, putU16, putU32, setU32At } from '../structs/host.js';
import { nlAlign } from './constants.js';


export const NLMSG_HDRLEN = 16;

export interface Nlmsghdr {
  readonly nlmsg_len: number;
  readonly nlmsg_type: number;
  readonly nlmsg_flags: number;
  readonly nlmsg_seq: number;
  readonly nlmsg_pid: number;
}

/** One netlink message: header plus payload (a view into the datagram). */
export interface NlMessage {
  readonly hdr: Nlmsghdr;
  readonly payload: Uint8Array;
}

export function decodeNlmsghdr(r: Reader): Nlmsghdr {
  return {
    nlmsg_len: getU32(r, 'nlmsg_len'),
    nlmsg_type: getU16(r, 'nlmsg_type'),
    nlmsg_flags: getU16(r, 'nlmsg_flags'),
    nlmsg_seq: getU32(r, 'nlmsg_seq'),
    nlmsg_pid: getU32(r, 'nlmsg_pid'),
  };
}

export function encodeNlmsghdr(w: Writer, h: Nlmsghdr): void {
  putU32(w, h.nlmsg_len); putU16(w, h.nlmsg_type); putU16(w, h.nlmsg_flags);
  putU32(w, h.nlmsg_seq); putU32(w, h.nlmsg_pid);
}

/**
 * Build one message. The body writer callback appends the payload; nlmsg_len is patched
 * afterwards. Like iproute2 (NLMSG_LENGTH(sizeof body), then NLMSG_ALIGN + RTA_ALIGN per
 * attribute), a struct is padded only when attributes follow, and every attribute is padded.
 */
export function buildNlmsg(type: number, flags: number, seq: number, pid: number, body: (w: Writer) => void, sizeHint = 512): Uint8Array {
  const w = new Writer(sizeHint);
  encodeNlmsghdr(w, { nlmsg_len: 0, nlmsg_type: type, nlmsg_flags: flags, nlmsg_seq: seq, nlmsg_pid: pid });
  body(w);
  setU32At(w, 0, w.length);
  return w.finish();
}

/** Append one message to `w` (NLMSG_ALIGNed start), for packing many requests in one datagram. */
export function appendNlmsg(w: Writer, type: number, flags: number, seq: number, pid: number, body: (w: Writer) => void): void {
  const pad = nlAlign(w.length) - w.length;
  if (pad) w.zeros(pad);
  const at = w.length;
  encodeNlmsghdr(w, { nlmsg_len: 0, nlmsg_type: type, nlmsg_flags: flags, nlmsg_seq: seq, nlmsg_pid: pid });
  body(w);
  setU32At(w, at, w.length - at);
}

/** Split a datagram into messages (NLMSG_OK / NLMSG_NEXT); a short or overlong length is a ParseError. */
export function splitNlmsgs(datagram: Uint8Array): NlMessage[] {
  const out: NlMessage[] = [];
  // One reader for the whole datagram: per-message readers (each with its own DataView) cost
  // more than the parsing when thousands of ACKs arrive.
  const r = new Reader(datagram);
  let at = 0;
  while (datagram.length - at >= NLMSG_HDRLEN) {
    r.advance(at - r.offset);
    const hdr = decodeNlmsghdr(r);
    if (hdr.nlmsg_len < NLMSG_HDRLEN || at + hdr.nlmsg_len > datagram.length)
      throw new ParseError('ERR_NETLINK_LENGTH', `nlmsg_len ${hdr.nlmsg_len} does not fit the ${datagram.length - at} bytes left`, at);
    out.push({ hdr, payload: datagram.subarray(at + NLMSG_HDRLEN, at + hdr.nlmsg_len) });
    at += nlAlign(hdr.nlmsg_len);
  }
  return out;
}

/** Copy of a message with nlmsg_seq and nlmsg_pid zeroed, for comparing against recordings. */
export function withoutSeqPid(msg: Uint8Array): Uint8Array {
  const c = msg.slice();
  c.fill(0, 8, 16);
  return c;
}
