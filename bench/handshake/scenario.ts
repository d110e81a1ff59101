// bench/handshake-vs-strongswan: the scenario both of its processes share (the driver in the root
// namespace, the load generator in `gen`): who responds where, the proposals, the initiators'
// addresses, and the generator's command protocol (JSON lines).

export const TARGETS = ['agent', 'swan'] as const;
export type Target = (typeof TARGETS)[number];
export const RESPONDER: Readonly<Record<Target, { readonly address: string; readonly gen: string; readonly dev: string }>> = {
  agent: { address: '198.51.100.1', gen: '198.51.100.2', dev: 'eth0' },
  swan: { address: '203.0.113.1', gen: '203.0.113.2', dev: 'eth1' },
};
export const IKE_PROPOSAL = 'aes256gcm16-prfsha256-x25519';
export const ESP_PROPOSAL = 'aes256gcm16';
export const PSK = 'kipsec bench: handshake-vs-strongswan psk';
export const RESPONDER_SUBNET = '10.200.0.0/16';
/** Initiator i: outer (IKE) address 10.64.x.y, inner (traffic selector) address 10.65.x.y. */
export const outer = (i: number): string => `10.64.${((i + 1) >> 8) & 255}.${(i + 1) & 255}`;
export const inner = (i: number): string => `10.65.${((i + 1) >> 8) & 255}.${(i + 1) & 255}`;
export const MAX_INITIATORS = 60_000;

export type GenCommand =
  | { readonly cmd: 'rate'; readonly target: Target; readonly rampMs: number; readonly ms: number; readonly concurrency: number }
  | { readonly cmd: 'establish'; readonly target: Target; readonly from: number; readonly to: number; readonly concurrency: number; readonly timeoutMs: number }
  | { readonly cmd: 'burst'; readonly target: Target; readonly n: number; readonly timeoutMs: number }
  | { readonly cmd: 'exit' };

export interface RateReply { readonly inWindow: number; readonly total: number; readonly failed: number; readonly windowMs: number; readonly elapsedMs: number; readonly cpuMs: number; readonly medianMs: number }
export interface PoolReply { readonly done: number; readonly failed: number; readonly elapsedMs: number; readonly firstError?: string }
/**
 * A burst: `done` initiators with their Child SA, `lastMs` when the last of them got it (from the
 * moment all were started), percentiles of the time each took, and why the others failed (the
 * engine's error code and notify: ERR_IKE_TIMEOUT is an initiator that gave up retransmitting).
 */
export interface BurstReply { readonly done: number; readonly failed: number; readonly lastMs: number; readonly p50Ms: number; readonly p90Ms: number; readonly p99Ms: number; readonly failures: Readonly<Record<string, number>>; readonly cpuMs: number }

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** The q-quantile (0..1) of `xs` by nearest rank; 0 for none. */
export const quantile = (xs: readonly number[], q: number): number => { const s = [...xs].sort((a, b) => a - b); return s.length ? s[Math.min(s.length - 1, Math.floor(s.length * q))]! : 0; };
export const median = (xs: readonly number[]): number => quantile(xs, 0.5);
export function cpuMs(): number { const u = process.cpuUsage(); return (u.user + u.system) / 1000; }
