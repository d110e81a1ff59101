// Cursor reader and growable writer over Uint8Array, network byte order unless a method says
// otherwise. Every read is bounds-checked and fails with ParseError so decoders of untrusted
// input (IKE datagrams, netlink replies) never throw RangeError or read past a boundary.
import { ParseError } from './errors.js';

export class Reader {
  private readonly buf: Uint8Array;
  private readonly view: DataView;
  private readonly end: number;
  private pos: number;

  /** `view` is internal: sub-readers share their parent's DataView over the same buffer. */
  constructor(buf: Uint8Array, start = 0, end = buf.length, view?: DataView) {
    if (start < 0 || end > buf.length || start > end) throw new RangeError('Reader: bad bounds');
    this.buf = buf;
    this.view = view ?? new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.end = end;
    this.pos = start;
  }

  /** The whole underlying buffer (for checksums and signatures over already-read bytes). */
  get source(): Uint8Array { return this.buf; }

  get offset(): number { return this.pos; }
  get remaining(): number { return this.end - this.pos; }
  get done(): boolean { return this.pos >= this.end; }

  private need(n: number, what: string): void {
    if (n < 0 || this.pos + n > this.end)
      throw new ParseError('ERR_TRUNCATED', `${what}: need ${n} bytes, have ${this.end - this.pos}`, this.pos);
  }

  u8(what = 'u8'): number { this.need(1, what); return this.view.getUint8(this.pos++); }
  u16(what = 'u16'): number { this.need(2, what); const v = this.view.getUint16(this.pos); this.pos += 2; return v; }
  u32(what = 'u32'): number { this.need(4, what); const v = this.view.getUint32(this.pos); this.pos += 4; return v; }
  u64(what = 'u64'): bigint { this.need(8, what); const v = this.view.getBigUint64(this.pos); this.pos += 8; return v; }
  /** Host (little-endian on every platform we run on) order, for kernel structs. */
  u16le(what = 'u16'): number { this.need(2, what); const v = this.view.getUint16(this.pos, true); this.pos += 2; return v; }
  u32le(what = 'u32'): number { this.need(4, what); const v = this.view.getUint32(this.pos, true); this.pos += 4; return v; }
  u64le(what = 'u64'): bigint { this.need(8, what); const v = this.view.getBigUint64(this.pos, true); this.pos += 8; return v; }

  /** A view (not a copy) of the next n bytes. */
  bytes(n: number, what = 'bytes'): Uint8Array {
    this.need(n, what);
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  /** Everything up to the reader's end. */
  rest(): Uint8Array { return this.bytes(this.remaining, 'rest'); }

  /** Step over n bytes (reserved fields, padding). */
  advance(n: number, what = 'advance'): void { this.need(n, what); this.pos += n; }

  /** A reader over the next n bytes; this reader advances past them. */
  sub(n: number, what = 'sub'): Reader {
    this.need(n, what);
    // Share the DataView: one per payload was a measurable part of decoding (every IKE payload
    // and netlink attribute gets a sub-reader).
    const r = new Reader(this.buf, this.pos, this.pos + n, this.view);
    this.pos += n;
    return r;
  }
}

export class Writer {
  private buf: Uint8Array;
  private view: DataView;
  private pos = 0;

  constructor(initial = 256) {
    this.buf = new Uint8Array(initial);
    this.view = new DataView(this.buf.buffer);
  }

  get length(): number { return this.pos; }

  private grow(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  u8(v: number): this { this.grow(1); this.view.setUint8(this.pos, v); this.pos += 1; return this; }
  u16(v: number): this { this.grow(2); this.view.setUint16(this.pos, v); this.pos += 2; return this; }
  u32(v: number): this { this.grow(4); this.view.setUint32(this.pos, v); this.pos += 4; return this; }
  u64(v: bigint): this { this.grow(8); this.view.setBigUint64(this.pos, v); this.pos += 8; return this; }
  u16le(v: number): this { this.grow(2); this.view.setUint16(this.pos, v, true); this.pos += 2; return this; }
  u32le(v: number): this { this.grow(4); this.view.setUint32(this.pos, v, true); this.pos += 4; return this; }
  u64le(v: bigint): this { this.grow(8); this.view.setBigUint64(this.pos, v, true); this.pos += 8; return this; }
  bytes(b: Uint8Array): this { this.grow(b.length); this.buf.set(b, this.pos); this.pos += b.length; return this; }
  zeros(n: number): this { this.grow(n); this.buf.fill(0, this.pos, this.pos + n); this.pos += n; return this; }

  /** Reserve space now, fill it later (length fields written after the body). */
  reserve(n: number): number { const at = this.pos; this.zeros(n); return at; }
  setU16(at: number, v: number): void { this.view.setUint16(at, v); }
  setU32(at: number, v: number): void { this.view.setUint32(at, v); }
  setU16le(at: number, v: number): void { this.view.setUint16(at, v, true); }
  setU32le(at: number, v: number): void { this.view.setUint32(at, v, true); }

  /** A copy of the written bytes. */
  finish(): Uint8Array { return this.buf.slice(0, this.pos); }
}

export function concatBytes(...parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function toHex(b: Uint8Array): string { return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex'); }

export function fromHex(s: string): Uint8Array {
  const clean = s.replace(/\s+/g, '');
  if (clean.length % 2 !== 0 || /[^0-9a-fA-F]/.test(clean)) throw new RangeError(`fromHex: not hex: ${clean.slice(0, 16)}…`);
  return new Uint8Array(Buffer.from(clean, 'hex'));
}
