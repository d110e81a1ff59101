// IKE SA checkpoints written to the store (EnginePorts.checkpoints) as SAs change: only when the
// encoded state differs from what the store holds, and never a failure that stops the exchange.
import { createHash } from 'node:crypto';
import { errorMessage } from '../../common/errors.js';
import { SecretBytes } from '../../common/secret.js';
import { encodeCheckpoint, snapshotSa } from './checkpoint.js';
import type { EngineHost } from './host.js';
import { ikeSpisText, ourSpi, spiHex, type IkeSa } from './ike-sa.js';

export class CheckpointWriter {
  readonly #e: EngineHost;
  /** Digest of what the store holds per checkpoint id, so an unchanged SA is not written again. */
  readonly #saved = new Map<string, string>();

  constructor(e: EngineHost) { this.#e = e; }

  /**
   * Save `sa`'s checkpoint if it changed (or remove it once the SA is not resumable). Called before
   * any of its datagrams leave, so the stored message IDs are never behind the wire.
   */
  persist(sa: IkeSa): void {
    const store = this.#e.ports.checkpoints;
    if (!store || this.#e.closed) return;
    const id = spiHex(ourSpi(sa));
    const cp = this.#e.sas.get(ourSpi(sa)) === sa ? snapshotSa(sa) : null;
    if (cp === null) { this.forget(id); return; }
    const data = encodeCheckpoint(cp);
    const digest = createHash('sha256').update(data).digest('base64');
    if (this.#saved.get(id) === digest) { data.fill(0); return; }
    try {
      store.save(id, new SecretBytes(data));
      this.#saved.set(id, digest);
    } catch (err) {
      this.#saved.delete(id);
      this.#e.drop('checkpoint-failed');
      this.#e.log?.warn({ peer: sa.peer.config.name, ikeSpis: ikeSpisText(sa), err: errorMessage(err) }, 'IKE SA checkpoint not saved: a restart will re-establish this SA');
    } finally { data.fill(0); }
  }

  forget(id: string): void {
    if (!this.#saved.delete(id) || this.#e.closed) return;
    try { this.#e.ports.checkpoints?.remove(id); } catch (err) { this.#e.log?.warn({ id, err: errorMessage(err) }, 'IKE SA checkpoint not removed'); }
  }
}
