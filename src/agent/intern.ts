// Strings of a parsed config, copied flat and one copy per distinct value. The YAML parser's
// scalars are V8 sliced strings of the whole file's text, so any one kept alive keeps the file
// (1.8 MB for 5,000 tunnels); and each tunnel had its own copy of the values every tunnel repeats
// (local address and subnets, proposals, "respond"). Config-time only.
import { flatString } from '../common/bounded-memo.js';

/** What one config's copy has seen: strings and lists of strings, each by value. */
export interface Interned {
  readonly strings: Map<string, string>;
  readonly lists: Map<string, readonly string[]>;
}

export function newInterned(): Interned { return { strings: new Map(), lists: new Map() }; }

/**
 * `v` with every string replaced by the one flat copy of its value, and every list of strings by
 * the one list of its values (read-only: a config's subnets and proposal texts, the same in most
 * tunnels); other arrays and plain objects are copied (own enumerable properties, in order),
 * anything else is kept as it is.
 */
export function internStrings<T>(v: T, seen: Interned = newInterned()): T {
  if (typeof v === 'string') {
    let s = seen.strings.get(v);
    if (s === undefined) { s = flatString(v); seen.strings.set(s, s); }
    return s as T;
  }
  if (Array.isArray(v)) {
    const copy = v.map((x: unknown) => internStrings(x, seen));
    if (!copy.every((x) => typeof x === 'string')) return copy as T;
    const key = JSON.stringify(copy);
    const known = seen.lists.get(key);
    if (known !== undefined) return known as T;
    seen.lists.set(key, copy as string[]);
    return copy as T;
  }
  if (v !== null && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, internStrings(x, seen)])) as T;
  }
  return v;
}
