// The engine's IKE SAs by peer name (core.ts), so per-peer questions do not scan every SA (mesh:
// O(nodes) peers). A peer has one SA most of the time: the entry is that SA itself, and a list in
// registration order only while it has more (a Set per peer was ~180 bytes per IKE SA).
export class ByPeer<T extends object> {
  readonly #m = new Map<string, T | T[]>();

  add(name: string, x: T): void {
    const held = this.#m.get(name);
    if (held === undefined) this.#m.set(name, x);
    else if (Array.isArray(held)) { if (!held.includes(x)) held.push(x); } else if (held !== x) this.#m.set(name, [held, x]);
  }

  delete(name: string, x: T): void {
    const held = this.#m.get(name);
    if (held === x) { this.#m.delete(name); return; }
    if (!Array.isArray(held)) return;
    const i = held.indexOf(x);
    if (i >= 0) held.splice(i, 1);
    const only = held[0];
    if (held.length > 1) return;
    if (only === undefined) this.#m.delete(name); else this.#m.set(name, only);
  }

  /** The peer's entries in registration order (a copy: safe to change the index meanwhile). */
  of(name: string): T[] {
    const held = this.#m.get(name);
    return held === undefined ? [] : Array.isArray(held) ? [...held] : [held];
  }
}
