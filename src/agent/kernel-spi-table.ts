// Records of SAs keyed by their SPI and an address (XFRM tells SAs apart by destination and SPI),
// for the kernel port (kernel.ts: Child SAs by local address and inbound SPI) and the userspace
// XFRM port (userspace/esp-xfrm.ts: SAs by destination and SPI).
//
// Why not a `${address}|${spi}` string key: that string was 40-100 bytes per SA kept for as long as
// the SA (docs/memory.md). Here the key is the SPI as an int32, a small integer V8 stores in the
// Map's entry itself. SPIs are random 32-bit values, so records sharing one (another address, or the
// same SPI in the other direction) are rare: they share the slot as an array, in insertion order.

export class SpiTable<T extends object> {
  readonly #slots = new Map<number, T | T[]>();
  readonly #addressOf: (t: T) => string;
  #size = 0;

  /** addressOf: the address part of a record's key (it must not change while the record is in). */
  constructor(addressOf: (t: T) => string) { this.#addressOf = addressOf; }

  get size(): number { return this.#size; }

  /** The record at (address, spi). */
  get(address: string, spi: number): T | undefined {
    return this.find(spi, (t) => this.#addressOf(t) === address);
  }

  /** Of the records with this SPI, the last added that `match` accepts. */
  find(spi: number, match: (t: T) => boolean): T | undefined {
    const s = this.#slots.get(spi | 0);
    if (s === undefined) return undefined;
    if (!Array.isArray(s)) return match(s) ? s : undefined;
    for (let i = s.length - 1; i >= 0; i--) if (match(s[i]!)) return s[i];
    return undefined;
  }

  /** Adds t under (addressOf(t), spi), replacing the record held there. */
  set(spi: number, t: T): void {
    const k = spi | 0;
    const s = this.#slots.get(k);
    const address = this.#addressOf(t);
    if (s === undefined) { this.#slots.set(k, t); this.#size++; return; }
    const list = Array.isArray(s) ? s : [s];
    const i = list.findIndex((x) => this.#addressOf(x) === address);
    if (i >= 0) list.splice(i, 1); else this.#size++;
    list.push(t);
    this.#slots.set(k, list.length === 1 ? list[0]! : list);
  }

  /** Takes this record (by identity) out; false if it was not in under this SPI. */
  delete(spi: number, t: T): boolean {
    const k = spi | 0;
    const s = this.#slots.get(k);
    if (s === t) { this.#slots.delete(k); this.#size--; return true; }
    if (!Array.isArray(s)) return false;
    const i = s.indexOf(t);
    if (i < 0) return false;
    s.splice(i, 1);
    this.#size--;
    this.#slots.set(k, s.length === 1 ? s[0]! : s);
    return true;
  }

  *values(): IterableIterator<T> {
    for (const s of this.#slots.values()) {
      if (Array.isArray(s)) yield* s.slice(); else yield s;
    }
  }
}
