// Durations as strings the way Kubernetes and strongSwan users write them: "20s", "4h", "1h30m",
// "500ms", "2d". Returned in milliseconds; anything else is a ConfigError naming the field.
import { ConfigError } from './errors.js';

const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

export function parseDurationMs(text: string, path: string): number {
  const s = text.trim();
  if (s === '') throw new ConfigError(path, 'empty duration');
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/gy;
  let total = 0;
  let matched = 0;
  for (let m = re.exec(s); m; m = re.exec(s)) {
    const unit = m[2] as keyof typeof UNIT_MS;
    total += Number(m[1]) * UNIT_MS[unit];
    matched = re.lastIndex;
  }
  if (matched !== s.length)
    throw new ConfigError(path, `invalid duration "${text}" (want e.g. 30s, 4h, 1h30m)`);
  return Math.round(total);
}

export function formatDurationMs(ms: number): string {
  if (ms % UNIT_MS.h === 0 && ms > 0) return `${ms / UNIT_MS.h}h`;
  if (ms % UNIT_MS.m === 0 && ms > 0) return `${ms / UNIT_MS.m}m`;
  if (ms % UNIT_MS.s === 0) return `${ms / UNIT_MS.s}s`;
  return `${ms}ms`;
}
