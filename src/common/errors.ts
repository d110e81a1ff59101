// Error classes shared by every module. Each failure has a fixed `code` (undici style) so callers
// and tests branch on the code, never on message text.

/** Base class: a stable machine-readable code plus a human message. */
export class KipsecError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** Malformed bytes from the network or the kernel; `offset` is where the reader stopped. */
export class ParseError extends KipsecError {
  readonly offset: number;
  constructor(code: string, message: string, offset: number) {
    super(code, `${message} (at offset ${offset})`);
    this.offset = offset;
  }
}

/** Bad configuration or API input; `path` names the field (`spec.ike.proposals[0]`). */
export class ConfigError extends KipsecError {
  readonly path: string;
  constructor(path: string, message: string) {
    super('ERR_CONFIG', `${path}: ${message}`);
    this.path = path;
  }
}

/** Narrow an unknown thrown value to a printable message without leaking objects. */
export function errorMessage(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}
