// Key material wrapper: the bytes are reachable through `.expose()` only, and every way a value
// can reach a log line (JSON, util.inspect, template strings) prints `[redacted]`.
import { inspect } from 'node:util';

export class SecretBytes {
  readonly #bytes: Uint8Array;
  constructor(bytes: Uint8Array) { this.#bytes = bytes; }
  get length(): number { return this.#bytes.length; }
  /** The raw bytes; call sites that need them are the ones to audit. */
  expose(): Uint8Array { return this.#bytes; }
  /** Overwrite in place once the key is no longer needed. */
  wipe(): void { this.#bytes.fill(0); }
  toJSON(): string { return '[redacted]'; }
  toString(): string { return '[redacted]'; }
  [inspect.custom](): string { return `SecretBytes(${this.#bytes.length})[redacted]`; }
}
