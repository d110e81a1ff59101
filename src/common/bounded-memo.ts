// Bounded tables of values shared by key, for pure conversions and read-only parsed values that
// many SAs or tunnels repeat (suite names, address bytes, parsed proposals and selectors, XFRM
// limits and selectors). Cleared when full rather than evicting by age: at worst a value is built
// again, never wrong, and no bookkeeping is kept per entry.

/** The value kept under `key`, from `make()` the first time; a make() that throws keeps nothing. */
export function boundedMemo<K, V>(m: Map<K, V>, key: K, make: () => V, limit = 4_096): V {
  let v = m.get(key);
  if (v === undefined) {
    v = make();
    if (m.size >= limit) m.clear();
    m.set(key, v);
  }
  return v;
}

/**
 * A flat copy of a string. V8 keeps a concatenation as a tree of its parts and a slice as a view of
 * its parent (a whole parsed file); a string kept for long should be neither. JSON's parser
 * allocates a new sequential string and keeps lone surrogates.
 */
export function flatString(s: string): string { return JSON.parse(JSON.stringify(s)) as string; }
