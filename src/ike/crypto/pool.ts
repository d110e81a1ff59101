// A pool of worker threads for IKE public-key work (jobs.ts), so a burst of handshakes uses every
// core instead of queueing on the engine's one JavaScript thread.
//
//  - Size: os.availableParallelism() by default (cryptoWorkersFromEnv); 0 runs every job on the
//    calling thread (unit tests, or where workers are unavailable), with the same code (runCryptoJob).
//  - Back-pressure: at most `maxQueued` jobs submitted and unfinished; beyond that run() rejects at
//    once with CryptoQueueFullError, which the exchange code counts as a drop (the peer retransmits;
//    cookies and the half-open limits keep guarding the responder before any work is queued, so
//    the bound sits above what they admit: see DEFAULT_MAX_QUEUED).
//  - Batching: jobs submitted in one turn of the event loop leave as one message per worker
//    (setImmediate), since a postMessage round trip costs about as much as an X25519 derivation.
//  - Small batches of light jobs run here instead (`inlineUpTo`, default 2): a lone X25519 costs
//    this thread ~105 µs of CPU inline against ~55–110 µs for its message round trip plus ~170 µs
//    on a worker; only a batch spreads the message's cost over enough jobs to pay for it.
//  - Workers start on first use, are unref'd while idle (an idle pool keeps no process alive) and
//    ref'd while they hold jobs; close() terminates them. A worker that dies fails its jobs with
//    CryptoWorkerError and is replaced on the next submission.
//  - The worker entry is crypto-worker.{ts,js,mjs} beside this module (tsx, tsc's dist/, esbuild
//    bundles with the worker as a second entry point); if it is missing, the pool runs jobs on the
//    calling thread and says why in fallbackReason.
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { KipsecError } from '../../common/errors.js';
import { DhId } from '../constants.js';
import { CryptoJobError, runCryptoJob, type CryptoJob, type CryptoJobFailure, type CryptoJobResult, type CryptoJobResults } from './jobs.js';

/** One message to a worker: jobs in submission order. */
export interface WorkerBatch { readonly id: number; readonly jobs: readonly CryptoJob[] }
/** A worker's answer to one batch, a result per job in the same order. */
export interface WorkerAnswer {
  readonly id: number;
  readonly results: readonly ({ readonly ok: true; readonly value: CryptoJobResult } | { readonly ok: false; readonly error: CryptoJobFailure })[];
}

/** run() refused a job: `maxQueued` jobs are already waiting (counted by the caller as a drop). */
export class CryptoQueueFullError extends KipsecError {
  constructor(limit: number) { super('ERR_IKE_CRYPTO_QUEUE_FULL', `crypto queue full (${limit} jobs waiting)`); }
}

/** The worker running a job exited or failed, or the pool was closed before the job finished. */
export class CryptoWorkerError extends KipsecError {
  constructor(message: string) { super('ERR_IKE_CRYPTO_WORKER', message); }
}

export interface CryptoPoolOptions {
  /** Worker threads; 0 runs jobs on the calling thread. Default: os.availableParallelism(). */
  readonly size?: number;
  /** Jobs submitted and not yet finished, over all workers, before run() rejects. Default DEFAULT_MAX_QUEUED. */
  readonly maxQueued?: number;
  /** The worker entry (tests point it elsewhere). Default: crypto-worker beside this module. */
  readonly workerUrl?: URL;
  /** A turn's batch of at most this many light jobs (isLightJob) runs on this thread. Default: inlineUpToFromEnv(). */
  readonly inlineUpTo?: number;
}

export interface CryptoPoolStats {
  /** Threads the pool runs jobs on (0: the calling thread). */
  readonly workers: number;
  /** Workers started so far (a replaced worker counts again). */
  readonly started: number;
  readonly submitted: number;
  readonly completed: number;
  /** Jobs refused with CryptoQueueFullError. */
  readonly rejected: number;
  /** Jobs that failed: the operation threw, or the worker died. */
  readonly failed: number;
  /** Messages sent to workers: (submitted - inline) / batches is the mean batch size. */
  readonly batches: number;
  /** Jobs a worker pool ran on this thread anyway, as a small batch of light jobs (inlineUpTo). */
  readonly inline: number;
  readonly pending: number;
  readonly fallbackReason: string | null;
}

interface Entry { readonly job: CryptoJob; resolve(v: CryptoJobResult): void; reject(e: Error): void }
interface Slot { readonly worker: Worker; readonly batches: Map<number, Entry[]>; load: number; dead: boolean }

/**
 * Admission is the job of the cookies and the half-open limits (sa/defaults.ts HALF_OPEN_LIMIT,
 * 1,000; each half-open IKE SA has at most one key-exchange and then one AUTH job in flight), so
 * the queue holds what they admit: a burst of peers they let in is queued, not dropped, since a
 * dropped IKE_SA_INIT costs its initiator a whole retransmission timeout (4 s). The bound remains
 * for memory, should a raised limit or a bug let more in.
 */
export const DEFAULT_MAX_QUEUED = 2_048;

/** KIPSEC_IKE_CRYPTO_WORKERS (a whole number, 0 = no workers), else os.availableParallelism(). */
export function cryptoWorkersFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const v = env['KIPSEC_IKE_CRYPTO_WORKERS'];
  if (v === undefined || v === '') return availableParallelism();
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new KipsecError('ERR_CONFIG', `KIPSEC_IKE_CRYPTO_WORKERS=${v}: want a whole number >= 0`);
  return n;
}

/** Batches of light jobs up to this size run on the calling thread (CryptoPoolOptions.inlineUpTo). */
export const DEFAULT_INLINE_UP_TO = 2;

/** KIPSEC_IKE_CRYPTO_INLINE (a whole number, 0 = every job to a worker), else DEFAULT_INLINE_UP_TO. */
export function inlineUpToFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const v = env['KIPSEC_IKE_CRYPTO_INLINE'];
  if (v === undefined || v === '') return DEFAULT_INLINE_UP_TO;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new KipsecError('ERR_CONFIG', `KIPSEC_IKE_CRYPTO_INLINE=${v}: want a whole number >= 0`);
  return n;
}

/** Cheaper on the calling thread than a message round trip to a worker: an X25519 key exchange (RFC 7748). */
export function isLightJob(job: CryptoJob): boolean {
  return job.op === 'dh' && job.group === DhId.CURVE25519;
}

/** Zero a private value still held here (one handed to a worker is detached: nothing left to wipe). */
function wipe(v: Uint8Array): void {
  if (v.byteLength > 0) v.fill(0);
}

function ownsWholeBuffer(v: Uint8Array): boolean {
  return v.buffer instanceof ArrayBuffer && v.byteOffset === 0 && v.byteLength === v.buffer.byteLength;
}

function defaultWorkerUrl(): URL {
  const here = import.meta.url;
  const ext = here.endsWith('.ts') ? '.ts' : here.endsWith('.mjs') ? '.mjs' : '.js';
  return new URL(`./crypto-worker${ext}`, here);
}

/**
 * Under tsx (tests, benches from source) the entry is TypeScript: Node 20 does not apply tsx's
 * --import hooks to a worker's entry, so the worker registers tsx itself, then imports it.
 */
function tsWorker(url: URL): Worker {
  const api = import.meta.resolve('tsx/esm/api');
  const code = `import(${JSON.stringify(api)}).then((m) => { m.register(); return import(${JSON.stringify(url.href)}); });`;
  return new Worker(code, { eval: true, name: 'kipsec-ike-crypto' });
}

export class CryptoPool {
  readonly size: number;
  readonly maxQueued: number;
  readonly inlineUpTo: number;
  readonly #url: URL;
  readonly #slots: Slot[] = [];
  #outbox: Entry[] = [];
  #flushScheduled = false;
  #nextBatch = 1;
  #pending = 0;
  #closed = false;
  #fallbackReason: string | null = null;
  #started = 0; #submitted = 0; #completed = 0; #rejected = 0; #failed = 0; #batches = 0; #inline = 0;

  constructor(opts: CryptoPoolOptions = {}) {
    const size = opts.size ?? availableParallelism();
    if (!Number.isInteger(size) || size < 0) throw new KipsecError('ERR_CONFIG', `crypto pool size ${size}: want a whole number >= 0`);
    this.#url = opts.workerUrl ?? defaultWorkerUrl();
    if (size > 0 && this.#url.protocol === 'file:' && !existsSync(fileURLToPath(this.#url))) {
      this.#fallbackReason = `worker entry ${fileURLToPath(this.#url)} not found: jobs run on the calling thread`;
      this.size = 0;
    } else this.size = size;
    this.maxQueued = opts.maxQueued ?? DEFAULT_MAX_QUEUED;
    this.inlineUpTo = opts.inlineUpTo ?? inlineUpToFromEnv();
    if (!Number.isInteger(this.inlineUpTo) || this.inlineUpTo < 0) throw new KipsecError('ERR_CONFIG', `crypto pool inlineUpTo ${this.inlineUpTo}: want a whole number >= 0`);
  }

  /** Jobs submitted and not yet finished. */
  get pending(): number { return this.#pending; }

  /** Run `job` (on a worker, or here when size is 0). Rejects with CryptoQueueFullError when full. */
  run<K extends CryptoJob['op']>(job: Extract<CryptoJob, { op: K }>): Promise<CryptoJobResults[K]> {
    return this.#submit(job) as Promise<CryptoJobResults[K]>;
  }

  #submit(job: CryptoJob): Promise<CryptoJobResult> {
    if (this.#closed) return Promise.reject(new CryptoWorkerError('crypto pool is closed'));
    if (this.#pending >= this.maxQueued) {
      this.#rejected++;
      if (job.op === 'dh') wipe(job.privateValue);
      return Promise.reject(new CryptoQueueFullError(this.maxQueued));
    }
    this.#submitted++;
    if (job.op === 'dh' && !ownsWholeBuffer(job.privateValue)) {
      // A view into a larger buffer would be cloned whole by postMessage: move just its bytes.
      const own = new Uint8Array(job.privateValue);
      job.privateValue.fill(0);
      job = { ...job, privateValue: own };
    }
    if (this.size === 0) {
      try {
        const v = runCryptoJob(job);
        this.#completed++;
        return Promise.resolve(v);
      } catch (e) {
        this.#failed++;
        return Promise.reject(e instanceof Error ? e : new Error(String(e)));
      }
    }
    this.#pending++;
    return new Promise<CryptoJobResult>((resolve, reject) => {
      this.#outbox.push({ job, resolve, reject });
      if (!this.#flushScheduled) { this.#flushScheduled = true; setImmediate(() => this.#flush()); }
    });
  }

  stats(): CryptoPoolStats {
    return {
      workers: this.size, started: this.#started, submitted: this.#submitted, completed: this.#completed, rejected: this.#rejected,
      failed: this.#failed, batches: this.#batches, inline: this.#inline, pending: this.#pending, fallbackReason: this.#fallbackReason,
    };
  }

  /** Terminate every worker; jobs not yet finished fail with CryptoWorkerError. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const out = this.#outbox; this.#outbox = [];
    for (const e of out) this.#settle(e, new CryptoWorkerError('crypto pool closed'));
    const slots = this.#slots.splice(0);
    for (const s of slots) this.#fail(s, 'crypto pool closed');
    await Promise.all(slots.map((s) => s.worker.terminate()));
  }

  #flush(): void {
    this.#flushScheduled = false;
    const jobs = this.#outbox; this.#outbox = [];
    if (jobs.length === 0 || this.#closed) return;
    if (jobs.length <= this.inlineUpTo && jobs.every((e) => isLightJob(e.job))) { this.#runHere(jobs); return; }
    while (this.#slots.length < this.size) this.#spawn();
    // Least-loaded worker per job; then one message per worker.
    const perSlot = new Map<Slot, Entry[]>();
    for (const e of jobs) {
      let best = this.#slots[0]!;
      for (const s of this.#slots) if (s.load < best.load) best = s;
      best.load++;
      const list = perSlot.get(best);
      if (list) list.push(e); else perSlot.set(best, [e]);
    }
    for (const [slot, entries] of perSlot) {
      const id = this.#nextBatch++;
      slot.batches.set(id, entries);
      if (slot.load === entries.length) slot.worker.ref();
      const transfer: ArrayBuffer[] = [];
      for (const e of entries) {
        // The private value leaves this thread: move its bytes instead of copying them.
        if (e.job.op === 'dh' && ownsWholeBuffer(e.job.privateValue)) transfer.push(e.job.privateValue.buffer as ArrayBuffer);
      }
      const batch: WorkerBatch = { id, jobs: entries.map((e) => e.job) };
      this.#batches++;
      try { slot.worker.postMessage(batch, transfer); } catch (err) {
        slot.batches.delete(id);
        slot.load -= entries.length;
        for (const e of entries) this.#settle(e, new CryptoWorkerError(`crypto job not sent to a worker: ${(err as Error).message}`));
      }
    }
  }

  /** A small batch of light jobs, run on this thread (still after the submitting turn, as a worker's would be). */
  #runHere(entries: readonly Entry[]): void {
    for (const e of entries) {
      let v: CryptoJobResult;
      try { v = runCryptoJob(e.job); } catch (err) { this.#settle(e, err instanceof Error ? err : new Error(String(err))); continue; }
      this.#pending--; this.#completed++; this.#inline++;
      e.resolve(v);
    }
  }

  #spawn(): void {
    const worker = this.#url.pathname.endsWith('.ts') ? tsWorker(this.#url) : new Worker(this.#url, { name: 'kipsec-ike-crypto' });
    this.#started++;
    worker.unref();
    const slot: Slot = { worker, batches: new Map(), load: 0, dead: false };
    // An unref() before the thread is online does not cover the port it opens while starting: again once online.
    worker.on('online', () => { if (slot.load === 0) worker.unref(); });
    worker.on('message', (a: WorkerAnswer) => this.#answer(slot, a));
    worker.on('error', (err) => this.#fail(slot, `crypto worker failed: ${err.message}`));
    worker.on('exit', (code) => this.#fail(slot, `crypto worker exited with code ${code}`));
    this.#slots.push(slot);
  }

  #answer(slot: Slot, a: WorkerAnswer): void {
    const entries = slot.batches.get(a.id);
    if (!entries) return;
    slot.batches.delete(a.id);
    slot.load -= entries.length;
    if (slot.load === 0) slot.worker.unref();
    entries.forEach((e, i) => {
      const r = a.results[i];
      if (r === undefined) this.#settle(e, new CryptoWorkerError('crypto worker answered without a result'));
      else if (r.ok) { this.#pending--; this.#completed++; e.resolve(r.value); }
      else this.#settle(e, new CryptoJobError(r.error));
    });
  }

  /** The slot's worker is gone: fail its jobs, forget it (the next flush starts another). */
  #fail(slot: Slot, message: string): void {
    if (slot.dead) return;
    slot.dead = true;
    const i = this.#slots.indexOf(slot);
    if (i >= 0) this.#slots.splice(i, 1);
    for (const entries of slot.batches.values()) for (const e of entries) this.#settle(e, new CryptoWorkerError(message));
    slot.batches.clear();
    slot.load = 0;
    slot.worker.unref();
  }

  #settle(e: Entry, err: Error): void {
    this.#pending--;
    this.#failed++;
    if (e.job.op === 'dh') wipe(e.job.privateValue);
    e.reject(err);
  }
}

// One pool per process and size, shared by the engines in it (workers are per core, not per engine).
const shared = new Map<number, { pool: CryptoPool; refs: number }>();

/** The process's pool of `size` workers; give it back with releaseCryptoPool when done. */
export function acquireCryptoPool(size: number): CryptoPool {
  let s = shared.get(size);
  if (!s || s.refs === 0) { s = { pool: new CryptoPool({ size }), refs: 0 }; shared.set(size, s); }
  s.refs++;
  return s.pool;
}

/** Drop one reference; the last one closes the pool (its workers end). A pool not from acquireCryptoPool is closed. */
export async function releaseCryptoPool(pool: CryptoPool): Promise<void> {
  for (const [size, s] of shared) {
    if (s.pool !== pool) continue;
    if (--s.refs > 0) return;
    shared.delete(size);
    break;
  }
  await pool.close();
}
