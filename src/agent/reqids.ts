// Which XFRM reqid each Child SA configuration uses. Policies and SAs reference the reqid, and a
// restarted agent recognises its kernel state by it (adopt.ts), so a key keeps its reqid for as
// long as the kernel may hold state of it: the table is saved in the state directory, whose
// checkpoints share the kernel's lifetime.
//
// The preferred reqid of a key is its FNV-1a hash in kipsec's range (tunnel.ts reqidFor), which
// is what standalone agents always used, so their kernel state is recognised after an upgrade.
// Two keys can hash alike — with thousands of mesh peers it is likely, and node names cannot be
// renamed to dodge it — so a taken value moves the newcomer to the next free one in the range.
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { KipsecError } from '../common/errors.js';
import { REQID_BASE, isOurReqid, reqidFor } from './tunnel.js';

/** A child's key: its peer and child names ("t/t" for a standalone tunnel's one child). */
export function reqidKey(peer: string, child: string): string { return `${peer}/${child}`; }

/** The hash input of a key: a standalone tunnel keeps the reqid its name always had. */
function preferred(key: string): number {
  const slash = key.indexOf('/');
  const peer = key.slice(0, slash); const child = key.slice(slash + 1);
  return reqidFor(peer === child ? peer : key);
}

const RANGE = 0x01000000;

export interface ReqidStore {
  load(): Record<string, number> | undefined;
  save(table: Record<string, number>): void;
  remove(): void;
}

/** The table's file name in the state directory (checkpoints.ts leaves it alone). */
export const REQID_FILE = 'reqids.json';

/** The table as `reqids.json` in the state directory (written atomically, owner-only). */
export function fileReqidStore(dir: string): ReqidStore {
  const path = join(dir, REQID_FILE);
  return {
    load: () => {
      let text: string;
      try { text = readFileSync(path, 'utf8'); } catch { return undefined; }
      const v: unknown = JSON.parse(text);
      if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new KipsecError('ERR_STATE_DIR', `${path} is not a reqid table`);
      const out: Record<string, number> = {};
      for (const [k, r] of Object.entries(v as Record<string, unknown>)) {
        if (typeof r !== 'number' || !Number.isInteger(r) || !isOurReqid(r) || !k.includes('/')) throw new KipsecError('ERR_STATE_DIR', `${path}: entry "${k}" is not a kipsec reqid`);
        out[k] = r;
      }
      return out;
    },
    save: (table) => {
      const tmp = `${path}.${process.pid}.tmp`;
      writeFileSync(tmp, `${JSON.stringify(table, null, 1)}\n`, { mode: 0o600 });
      renameSync(tmp, path);
    },
    remove: () => { rmSync(path, { force: true }); },
  };
}

export class ReqidTable {
  readonly #byKey = new Map<string, number>();
  readonly #byReqid = new Map<number, string>();
  readonly #store: ReqidStore | undefined;

  /** Loads the saved table; a table that cannot be read is an error (the state directory is broken). */
  constructor(store?: ReqidStore) {
    this.#store = store;
    const saved = store?.load();
    for (const [k, r] of Object.entries(saved ?? {})) {
      if (this.#byReqid.has(r)) continue; // a corrupt duplicate: the first keeps it
      this.#byKey.set(k, r); this.#byReqid.set(r, k);
    }
  }

  /** The key's reqid, allocating one (and saving the table) if it has none. */
  allocate(key: string): number { return this.#allocate(key, true); }

  #allocate(key: string, save: boolean): number {
    const have = this.#byKey.get(key);
    if (have !== undefined) return have;
    const start = preferred(key) - REQID_BASE;
    for (let i = 0; i < RANGE; i++) {
      const r = (REQID_BASE + ((start + i) % RANGE)) >>> 0;
      if (r === REQID_BASE) continue; // keep the range's zero value out: it reads like "no reqid"
      if (this.#byReqid.has(r)) continue;
      this.#byKey.set(key, r); this.#byReqid.set(r, key);
      if (save) this.#save();
      return r;
    }
    throw new KipsecError('ERR_REQID_EXHAUSTED', `no free reqid left for ${key}`);
  }

  /** Allocate several keys in name order, so a restart without a saved table picks the same values. */
  allocateAll(keys: Iterable<string>): void {
    const before = this.#byKey.size;
    for (const k of [...keys].sort()) this.#allocate(k, false);
    if (this.#byKey.size !== before) this.#save();
  }

  get(key: string): number | undefined { return this.#byKey.get(key); }
  keyOf(reqid: number): string | undefined { return this.#byReqid.get(reqid >>> 0); }
  get size(): number { return this.#byKey.size; }

  /** Forget keys whose kernel state is gone. */
  release(keys: Iterable<string>): void {
    let changed = false;
    for (const k of keys) {
      const r = this.#byKey.get(k);
      if (r === undefined) continue;
      this.#byKey.delete(k); this.#byReqid.delete(r); changed = true;
    }
    if (changed) this.#save();
  }

  entries(): [string, number][] { return [...this.#byKey]; }

  /** Nothing of ours is left in the kernel: forget every key and remove the saved table. */
  clear(): void { this.#byKey.clear(); this.#byReqid.clear(); this.#store?.remove(); }

  #save(): void { this.#store?.save(Object.fromEntries([...this.#byKey].sort(([a], [b]) => a.localeCompare(b)))); }
}
