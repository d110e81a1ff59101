// The logger shape the operator modules take (pino's). One root pino logger is made in the
// command's main and passed down; secrets are redacted at that logger (see rootLogger).
import pino from 'pino';

export type Logger = Pick<pino.Logger, 'debug' | 'info' | 'warn' | 'error' | 'child'>;

/** The process's root logger: JSON to stderr, key material paths redacted. */
export function rootLogger(level: string, destination: pino.DestinationStream = pino.destination(2)): pino.Logger {
  return pino({
    level,
    base: { component: 'kipsec-operator' },
    redact: { paths: ['*.privateKey', '*.key', '*.data', 'secret', '*.token', '*.psk'], censor: '[redacted]' },
  }, destination);
}

/** A logger that drops everything (tests). */
export function silentLogger(): pino.Logger { return pino({ level: 'silent' }); }
