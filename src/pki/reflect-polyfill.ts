// The minimal Reflect metadata API that tsyringe (a dependency of @peculiar/x509) checks for at
// load time. We cannot add the reflect-metadata package, and tsyringe only uses defineMetadata,
// getMetadata and getOwnMetadata; this module must be imported before @peculiar/x509.
type Key = string | symbol | undefined;
const store = new WeakMap<object, Map<Key, Map<unknown, unknown>>>();

function own(target: object, prop: Key, create: boolean): Map<unknown, unknown> | undefined {
  let byProp = store.get(target);
  if (!byProp) { if (!create) return undefined; byProp = new Map(); store.set(target, byProp); }
  let m = byProp.get(prop);
  if (!m) { if (!create) return undefined; m = new Map(); byProp.set(prop, m); }
  return m;
}

interface ReflectMetadata {
  defineMetadata?: (k: unknown, v: unknown, target: object, prop?: Key) => void;
  getOwnMetadata?: (k: unknown, target: object, prop?: Key) => unknown;
  getMetadata?: (k: unknown, target: object, prop?: Key) => unknown;
}

const R = Reflect as unknown as ReflectMetadata;
if (typeof R.getMetadata !== 'function') {
  R.defineMetadata = (k, v, target, prop) => { own(target, prop, true)!.set(k, v); };
  R.getOwnMetadata = (k, target, prop) => own(target, prop, false)?.get(k);
  R.getMetadata = (k, target, prop) => {
    for (let t: object | null = target; t; t = Object.getPrototypeOf(t) as object | null) {
      const m = own(t, prop, false);
      if (m?.has(k)) return m.get(k);
    }
    return undefined;
  };
}
export {};
