// Entry of one crypto worker thread (pool.ts): runs each batch of jobs it is sent, in order, and
// answers with one message per batch. A job's failure is data in the answer, not a crash.
import { parentPort } from 'node:worker_threads';
import { jobFailure, runCryptoJob, transferablesOf, type CryptoJob } from './jobs.js';
import type { WorkerAnswer, WorkerBatch } from './pool.js';

const port = parentPort;
if (port) {
  port.on('message', (batch: WorkerBatch) => {
    const transfer: ArrayBuffer[] = [];
    const results: WorkerAnswer['results'] = batch.jobs.map((job: CryptoJob) => {
      try {
        const value = runCryptoJob(job);
        transfer.push(...transferablesOf(value));
        return { ok: true, value };
      } catch (e) { return { ok: false, error: jobFailure(e) }; }
    });
    const answer: WorkerAnswer = { id: batch.id, results };
    port.postMessage(answer, transfer);
  });
}
