// The engine's CheckpointStore (src/ike/ports.ts) as files: one per IKE SA in the agent's state
// directory, so a crashed or killed agent resumes its IKE SAs (src/ike/sa/checkpoint.ts says why).
// The default directory sits next to the control socket under /run: tmpfs, gone after a reboot
// together with the kernel SAs the files describe.
//
// The files hold IKE SA keys. The directory is 0700 and each file 0600, owned by the agent's user;
// a file is written to a temporary name and renamed, so a reader (the next agent) sees the old or
// the new checkpoint, never half of one. On load, anything that is not a regular file of ours with
// owner-only permissions is refused (and named), not read.
import { closeSync, fstatSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, chmodSync, writeFileSync, constants } from 'node:fs';
import { join } from 'node:path';
import { KipsecError } from '../common/errors.js';
import { SecretBytes } from '../common/secret.js';
import type { CheckpointStore } from '../ike/ports.js';

const ID = /^[0-9a-f]{16}$/;
/** Other files of the agent's own in the state directory (reqids.ts, the boot id of cluster mode). */
const OTHER_FILES = new Set(['reqids.json', 'boot-id']);
const SUFFIX = '.ikesa';
/** A checkpoint is a few kB; anything much larger is not one of ours. */
const MAX_BYTES = 1 << 20;

export interface LoadedCheckpoints {
  readonly items: readonly { readonly id: string; readonly data: SecretBytes }[];
  /** Files that were not read, with the reason (logged by the daemon, left for the admin to look at). */
  readonly refused: readonly { readonly file: string; readonly reason: string }[];
}

export class FileCheckpoints implements CheckpointStore {
  readonly dir: string;
  readonly #uid: number;

  private constructor(dir: string) { this.dir = dir; this.#uid = process.getuid?.() ?? 0; }

  /** Create (0700) or check the directory: it must be ours and closed to group and others. */
  static open(dir: string): FileCheckpoints {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const st = lstatSync(dir);
    const uid = process.getuid?.() ?? 0;
    if (!st.isDirectory()) throw new KipsecError('ERR_STATE_DIR', `state directory ${dir} is not a directory`);
    if (st.uid !== uid) throw new KipsecError('ERR_STATE_DIR', `state directory ${dir} belongs to uid ${st.uid}, not to this agent (uid ${uid})`);
    if ((st.mode & 0o077) !== 0) chmodSync(dir, 0o700);
    return new FileCheckpoints(dir);
  }

  #path(id: string): string {
    if (!ID.test(id)) throw new KipsecError('ERR_CHECKPOINT_ID', `checkpoint id "${id}" is not 16 hex digits`);
    return join(this.dir, `${id}${SUFFIX}`);
  }

  save(id: string, data: SecretBytes): void {
    const path = this.#path(id);
    const tmp = join(this.dir, `.${id}.${process.pid}.tmp`);
    writeFileSync(tmp, data.expose(), { mode: 0o600 });
    renameSync(tmp, path);
  }

  remove(id: string): void { rmSync(this.#path(id), { force: true }); }

  /** Every checkpoint file, read once at start (before the engine resumes them). */
  load(): LoadedCheckpoints {
    const items: { id: string; data: SecretBytes }[] = [];
    const refused: { file: string; reason: string }[] = [];
    for (const name of readdirSync(this.dir)) {
      const path = join(this.dir, name);
      if (name.startsWith('.') && name.endsWith('.tmp')) { rmSync(path, { force: true }); continue; } // a save cut short
      if (OTHER_FILES.has(name) || name.endsWith('.tmp')) continue;
      const id = name.endsWith(SUFFIX) ? name.slice(0, -SUFFIX.length) : '';
      if (!ID.test(id)) { refused.push({ file: path, reason: 'not a checkpoint file name' }); continue; }
      let fd: number;
      try { fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW); } catch (e) {
        refused.push({ file: path, reason: `cannot open: ${(e as NodeJS.ErrnoException).code ?? String(e)}` });
        continue;
      }
      try {
        const st = fstatSync(fd);
        if (!st.isFile()) { refused.push({ file: path, reason: 'not a regular file' }); continue; }
        if (st.uid !== this.#uid) { refused.push({ file: path, reason: `owned by uid ${st.uid}, not by this agent` }); continue; }
        if ((st.mode & 0o077) !== 0) { refused.push({ file: path, reason: `mode ${(st.mode & 0o777).toString(8)} lets others read key material (want 600)` }); continue; }
        if (st.size > MAX_BYTES) { refused.push({ file: path, reason: `${st.size} bytes is too large for a checkpoint` }); continue; }
        items.push({ id, data: new SecretBytes(new Uint8Array(readFileSync(fd))) });
      } finally { closeSync(fd); }
    }
    return { items, refused };
  }

  /** After SIGTERM deleted every SA there is nothing to resume. */
  clear(): void {
    for (const name of readdirSync(this.dir)) if (name.endsWith(SUFFIX) || name.endsWith('.tmp')) rmSync(join(this.dir, name), { force: true });
  }
}
