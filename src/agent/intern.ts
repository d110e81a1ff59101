// Strings of a parsed config, copied flat and one copy per distinct value. The YAML parser's
// scalars are V8 sliced strings of the whole file's text, so any one kept alive keeps the file
// (1.8 MB for 5,000 tunnels); and each tunnel had its own copy of the values every tunnel repeats
// (local address and subnets, proposals, "respond"). Config-time only.

/** A flat copy of `s`: JSON keeps lone surrogates, and its parser allocates a new string. */
function flatCopy(s: string): string { return JSON.parse(JSON.stringify(s)) as string; }

/**
 * `v` with every string replaced by the one flat copy of its value in `seen`; arrays and plain
 * objects are copied (own enumerable properties, in order), anything else is kept as it is.
 */
export function internStrings<T>(v: T, seen: Map<string, string> = new Map()): T {
  if (typeof v === 'string') {
    let s = seen.get(v);
    if (s === undefined) { s = flatCopy(v); seen.set(s, s); }
    return s as T;
  }
  if (Array.isArray(v)) return v.map((x: unknown) => internStrings(x, seen)) as T;
  if (v !== null && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, internStrings(x, seen)])) as T;
  }
  return v;
}
