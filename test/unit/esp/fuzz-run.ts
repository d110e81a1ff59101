// Driver of the ESP input-path fuzz: one engine on 127.0.0.1 with the four inbound SAs of
// fuzz-model.ts, a UDP peer sending the model's inputs, and after every batch an exact comparison
// of the engine's counters with the model's predictions. Loopback UDP can drop datagrams when the
// receive buffer fills; the driver paces instead (a batch of at most 256 datagrams or 1 MiB, then
// wait until the engine's own rxDatagrams has read them all), so that every input is accounted for
// and a loss is reported as a loss rather than absorbed by a looser assertion.
import { createSocket } from 'node:dgram';
import { SecretBytes } from '../../../src/common/secret.js';
import { EspEngine } from '../../../src/esp/engine.js';
import { ESP_DROP_REASONS, type EspStats } from '../../../src/esp/codec.js';
import { cidrSelector } from '../../../src/esp/selector.js';
import { EspFuzzModel, type InputKind, type Outcome } from './fuzz-model.js';

export interface EspFuzzOptions {
  readonly count: number;
  readonly seed: number;
  readonly batch?: number;
  readonly timeLimitMs?: number;
  /** Check each delivered inner packet's bytes (memory grows with the count: CI sizes only). */
  readonly checkInner?: boolean;
  readonly onProgress?: (sent: number, elapsedMs: number) => void;
}

export interface EspFuzzResult {
  readonly inputs: number;
  readonly seconds: number;
  readonly maxRssMb: number;
  readonly timedOut: boolean;
  readonly rxDatagrams: bigint;
  /** Engine counts by outcome (summed over SAs), and the model's. */
  readonly got: ReadonlyMap<Outcome, bigint>;
  readonly expected: ReadonlyMap<Outcome, number>;
  readonly kinds: ReadonlyMap<InputKind, number>;
  /** Inner events that came up, and ones the bounded event queue dropped (counted). */
  readonly innerEvents: number;
  readonly eventsDropped: bigint;
  readonly innerMismatches: number;
  /** Each SA's highest verified sequence number at the end (ESN SAs pass 2^32 in long runs). */
  readonly tops: ReadonlyArray<{ readonly algorithm: string; readonly esn: boolean; readonly seq: bigint }>;
  /** Human-readable differences; empty = every input was counted where the model said. */
  readonly mismatches: readonly string[];
}

const SPI_OUTCOMES = ['delivered', ...ESP_DROP_REASONS] as const;

/** Engine counts by outcome: engine-wide counters, per-SA drops and packets. */
export function engineOutcomes(s: EspStats): { total: Map<Outcome, bigint>; perSa: Map<string, bigint> } {
  const c = s.counters;
  const total = new Map<Outcome, bigint>([['keepalive', c.keepalives], ['ike', c.ike + c.ikeDropped], ['runt', c.runts], ['unknownSpi', c.unknownSpi]]);
  const perSa = new Map<string, bigint>();
  for (const sa of s.sas) {
    for (const o of SPI_OUTCOMES) {
      const n = o === 'delivered' ? sa.packets : sa.drops[o];
      total.set(o, (total.get(o) ?? 0n) + n);
      perSa.set(`${sa.spi}:${o}`, n);
    }
  }
  return { total, perSa };
}

/** Datagrams the engine has charged to some counter (each is charged to exactly one). */
function charged(s: EspStats): bigint { let n = 0n; for (const v of engineOutcomes(s).total.values()) n += v; return n; }

function sleep(ms: number): Promise<void> { return new Promise((r) => setTimeout(r, ms)); }

export async function runEspFuzz(o: EspFuzzOptions): Promise<EspFuzzResult> {
  const model = new EspFuzzModel(o.seed);
  const engine = EspEngine.open({ tunFd: null, address: '127.0.0.1', port: 0 });
  const peer = createSocket('udp4');
  const start = Date.now();
  const deadline = start + (o.timeLimitMs ?? 600_000);
  const expected = new Map<Outcome, number>();
  const expectedPerSa = new Map<string, number>();
  const kinds = new Map<InputKind, number>();
  const mismatches: string[] = [];
  const pendingInner = new Map<string, number>();
  let innerEvents = 0, innerMismatches = 0, sent = 0, timedOut = false;
  try {
    await new Promise<void>((r) => peer.bind(0, '127.0.0.1', r));
    for (const sa of model.sas) {
      engine.addSa({
        direction: 'in', spi: sa.ref.spi, reqid: 1, algorithm: sa.ref.algorithm, key: new SecretBytes(sa.ref.key),
        ...(sa.ref.integrityKey ? { integrityKey: new SecretBytes(sa.ref.integrityKey) } : {}), esn: sa.ref.esn ?? false, replayWindow: sa.window.window,
        sources: [cidrSelector('10.2.0.0/24'), cidrSelector('2001:db8:2::/64')], destinations: [cidrSelector('10.1.0.0/24'), cidrSelector('2001:db8:1::/64')],
      });
    }
    engine.on((e) => {
      if (e.kind !== 'inner') return;
      innerEvents++;
      if (!o.checkInner) return;
      const k = e.data.toString('hex');
      const n = pendingInner.get(k) ?? 0;
      if (n === 0) innerMismatches++;
      else if (n === 1) pendingInner.delete(k);
      else pendingInner.set(k, n - 1);
    });
    const batch = o.batch ?? 256;
    while (sent < o.count) {
      if (Date.now() > deadline) { timedOut = true; break; }
      const sends: Array<Promise<void>> = [];
      const batchKinds: string[] = [];
      let bytes = 0;
      while (sends.length < batch && bytes < 1 << 20 && sent + sends.length < o.count) {
        const input = model.next();
        bytes += input.data.length + 64;
        kinds.set(input.kind, (kinds.get(input.kind) ?? 0) + 1);
        expected.set(input.outcome, (expected.get(input.outcome) ?? 0) + 1);
        if (input.spi !== null) expectedPerSa.set(`${input.spi}:${input.outcome}`, (expectedPerSa.get(`${input.spi}:${input.outcome}`) ?? 0) + 1);
        if (o.checkInner && input.inner) { const k = input.inner.toString('hex'); pendingInner.set(k, (pendingInner.get(k) ?? 0) + 1); }
        if (o.batch === 1) batchKinds.push(`${input.kind} → ${input.outcome} (${input.data.subarray(0, 24).toString('hex')}…, ${input.data.length} bytes)`);
        sends.push(new Promise((resolve, reject) => peer.send(input.data, engine.port, '127.0.0.1', (err) => (err ? reject(err) : resolve()))));
      }
      await Promise.all(sends);
      sent += sends.length;
      // Pace: the engine has read every datagram sent so far (its own counter) and charged each
      // (rxDatagrams is bumped per recvmmsg batch, before its datagrams are processed).
      const readBy = Date.now() + 5000;
      let s = engine.stats();
      while ((s.counters.rxDatagrams < BigInt(sent) || charged(s) < s.counters.rxDatagrams) && Date.now() < readBy) {
        await sleep(s.counters.rxDatagrams + 64n < BigInt(sent) ? 1 : 0);
        s = engine.stats();
      }
      if (s.counters.rxDatagrams !== BigInt(sent)) {
        mismatches.push(`the engine read ${s.counters.rxDatagrams} of ${sent} datagrams: lost in the socket before it could count them`);
        break;
      }
      const diff = compare(engineOutcomes(s), expected, expectedPerSa);
      if (diff.length > 0) {
        mismatches.push(`after ${sent} inputs (seed ${o.seed}): ${diff.join('; ')}`, ...batchKinds.map((k) => `  last input: ${k}`));
        break;
      }
      o.onProgress?.(sent, Date.now() - start);
    }
    // Delivered packets come up as events through a bounded queue: all of them, or counted drops.
    const delivered = BigInt(expected.get('delivered') ?? 0);
    const settleBy = Date.now() + 5000;
    while (BigInt(innerEvents) + engine.stats().counters.eventsDropped < delivered && Date.now() < settleBy) await sleep(2);
    const s = engine.stats();
    if (mismatches.length === 0 && BigInt(innerEvents) + s.counters.eventsDropped !== delivered)
      mismatches.push(`${innerEvents} inner events + ${s.counters.eventsDropped} dropped events ≠ ${delivered} delivered`);
    if (innerMismatches > 0) mismatches.push(`${innerMismatches} inner packets came up that were not sent as valid`);
    return {
      inputs: sent, seconds: (Date.now() - start) / 1000, maxRssMb: process.resourceUsage().maxRSS / 1024, timedOut,
      rxDatagrams: s.counters.rxDatagrams, got: engineOutcomes(s).total, expected, kinds, innerEvents, eventsDropped: s.counters.eventsDropped,
      innerMismatches, mismatches,
      tops: model.sas.map((m) => ({ algorithm: m.ref.algorithm, esn: m.ref.esn ?? false, seq: s.sas.find((x) => x.spi === m.ref.spi)?.seq ?? -1n })),
    };
  } finally {
    engine.close();
    peer.close();
  }
}

function compare(got: ReturnType<typeof engineOutcomes>, expected: ReadonlyMap<Outcome, number>, perSa: ReadonlyMap<string, number>): string[] {
  const out: string[] = [];
  for (const [k, n] of got.total) if (n !== BigInt(expected.get(k) ?? 0)) out.push(`${k}: engine ${n}, model ${expected.get(k) ?? 0}`);
  for (const [k, n] of got.perSa) if (n !== BigInt(perSa.get(k) ?? 0)) out.push(`SA ${k}: engine ${n}, model ${perSa.get(k) ?? 0}`);
  return out;
}
