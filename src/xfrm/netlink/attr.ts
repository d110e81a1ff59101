// Netlink attributes (struct nlattr / struct rtattr — same layout), 4-byte aligned, nestable:
//   struct nlattr { __u16 nla_len; __u16 nla_type; };  /* then payload, padded to NLA_ALIGNTO */
// nla_len counts header + payload but not the padding. NLA_F_NESTED marks nests on newer
// families; XFRM and rtnetlink's IFLA_LINKINFO don't set it, so nesting is by type, not flag.
import { Reader, Writer } from '../../common/bytes.js';
import { ParseError } from '../../common/errors.js';
import { getU16, putU16, setU16At } from '../structs/host.js';
import { nlAlign, NLA_F_NESTED, NLA_F_NET_BYTEORDER, NLA_TYPE_MASK } from './constants.js';

export const NLA_HDRLEN = 4;

export interface NlAttr {
  /** Type without the NESTED / NET_BYTEORDER flag bits. */
  readonly type: number;
  /** The flag bits as received, so re-encoding is exact. */
  readonly flags: number;
  readonly data: Uint8Array;
}

export function putAttr(w: Writer, type: number, data: Uint8Array): void {
  putU16(w, NLA_HDRLEN + data.length); putU16(w, type);
  w.bytes(data);
  w.zeros(nlAlign(data.length) - data.length);
}

/** Attribute whose payload is written by a callback (structs encoded in place, nests). */
export function putAttrWith(w: Writer, type: number, body: (w: Writer) => void): void {
  const at = w.reserve(NLA_HDRLEN);
  body(w);
  setU16At(w, at, w.length - at);
  setU16At(w, at + 2, type);
  const pad = nlAlign(w.length) - w.length;
  if (pad) w.zeros(pad);
}

export function putAttrU32(w: Writer, type: number, v: number): void {
  putAttrWith(w, type, (b) => { b.u32le(v >>> 0); });
}

export function putAttrString(w: Writer, type: number, s: string): void {
  const b = new TextEncoder().encode(s);
  const z = new Uint8Array(b.length + 1); z.set(b);
  putAttr(w, type, z);
}

/** Parse a run of attributes (the rest of a message or a nest's payload). */
export function parseAttrs(buf: Uint8Array, baseOffset = 0): NlAttr[] {
  const out: NlAttr[] = [];
  let at = 0;
  while (buf.length - at >= NLA_HDRLEN) {
    const r = new Reader(buf, at, at + NLA_HDRLEN);
    const len = getU16(r, 'nla_len');
    const rawType = getU16(r, 'nla_type');
    if (len < NLA_HDRLEN || at + len > buf.length)
      throw new ParseError('ERR_NETLINK_ATTR_LENGTH', `nla_len ${len} (type ${rawType & NLA_TYPE_MASK}) does not fit ${buf.length - at} bytes`, baseOffset + at);
    out.push({ type: rawType & NLA_TYPE_MASK, flags: rawType & (NLA_F_NESTED | NLA_F_NET_BYTEORDER), data: buf.subarray(at + NLA_HDRLEN, at + len) });
    at += nlAlign(len);
  }
  return out;
}

/** Re-emit parsed attributes unchanged (unknown attributes survive a decode/encode). */
export function putRawAttr(w: Writer, a: NlAttr): void {
  putAttr(w, a.type | a.flags, a.data);
}

export function attrU32(a: NlAttr): number {
  if (a.data.length < 4) throw new ParseError('ERR_NETLINK_ATTR_LENGTH', `attribute ${a.type}: want 4 bytes, got ${a.data.length}`, 0);
  return new Reader(a.data).u32le();
}

export function attrString(a: NlAttr): string {
  const nul = a.data.indexOf(0);
  return new TextDecoder().decode(nul < 0 ? a.data : a.data.subarray(0, nul));
}
