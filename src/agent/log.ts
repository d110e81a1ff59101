// The agent's structured log: pino, JSON lines. main() creates the one root logger and passes it
// down; modules take a child (`log.child({ tunnel })`). Secrets cannot reach a line: key material
// lives in SecretBytes (serialises as "[redacted]") and the logger also censors the field names
// secrets travel under, should a plain value ever slip into one.
import { pino, type DestinationStream, type Logger, type LevelWithSilent } from 'pino';

export type { Logger } from 'pino';

export const LOG_LEVELS: readonly LevelWithSilent[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** Field names censored wherever they appear (top level or one object down). */
export const REDACT_KEYS = ['psk', 'secret', 'key', 'keys', 'keyPem', 'privateKey', 'skeyseed', 'sk_d', 'keymat', 'password'] as const;

export function isLogLevel(s: string): s is LevelWithSilent { return (LOG_LEVELS as readonly string[]).includes(s); }

export function createLogger(opts: { level?: LevelWithSilent; destination?: DestinationStream } = {}): Logger {
  const paths = REDACT_KEYS.flatMap((k) => [k, `*.${k}`]);
  return pino({
    level: opts.level ?? 'info',
    base: { name: 'kipsec-agent' },
    redact: { paths, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  }, opts.destination ?? pino.destination({ dest: 2, sync: true }));
}
