// IKEv2 state-machine fuzz (issue 14 "Hardening"; DESIGN.md §9: network input never throws out of
// the engine). Each episode builds a World (world.ts) in one start state, then feeds the engines a
// seeded random sequence: the genuine exchange's datagrams in order, out of order, dropped,
// duplicated and replayed; datagrams of the same pair's whole lifecycle before they are due;
// mutated copies (mutate.ts); datagrams of an intruder pair with a wrong PSK, and in two modes a
// live wrong-PSK intruder in the middle; time passing (retransmissions, DPD, expiries); operator
// rekeys. After every input it checks, and throws a StateFuzzFailure naming seed and episode:
//   - no exception escapes engine.receive or a timer callback, no task fails ('internal-error');
//   - the engines' state stays within BOUNDS (IKE SAs, half-open, Child SAs, reassembly bytes,
//     pending timers, kernel SAs, distinct drop reasons);
//   - every ike-up / ike-rekeyed / child event and every established IKE SA in status() belongs
//     to an exchange between the two genuine engines (so its AUTH was verified against the real peer);
// and after the episode the genuine pair still establishes and rekeys over a good network.
// Used by test/unit/ike/fuzz/state-machine.test.ts (bounded) and scripts/fuzz-ike-state.ts (long runs).
import { ExchangeType } from '../../../../src/ike/constants.js';
import type { IkeEngine } from '../../../../src/ike/engine.js';
import type { IkeEvent } from '../../../../src/ike/ports.js';
import { REASSEMBLY_BYTES_LIMIT } from '../../../../src/ike/sa/defaults.js';
import type { Packet } from '../pair/harness.js';
import { mutate, Rng } from './mutate.js';
import { ALICE, BOB, corpus, GENUINE_SEEDS, HOUR, MODES, START_STATES, VARIANTS, World, type Mode, type StartState, type Variant } from './world.js';

/**
 * Fixed ceilings, per engine, that no input sequence may push past. Two genuine peers hold at most
 * two live IKE SAs (rekey, reauth or a collision), one more being deleted, and HALF_OPEN_PER_ADDRESS
 * (5) half-open ones per source address; Child SAs are two per IKE SA during a rekey.
 */
export const BOUNDS = {
  ikeSas: 16, halfOpen: 10, childSas: 16, reassemblyBytes: REASSEMBLY_BYTES_LIMIT,
  timers: 128, kernelSas: 16, dropReasons: 64,
} as const;
type Sizes = { -readonly [K in keyof typeof BOUNDS]: number };

export interface StateFuzzOptions {
  readonly seed: number;
  /** Datagrams to feed in total (the run ends with the episode that reaches it). */
  readonly inputs: number;
  readonly start?: StartState;
  readonly mode?: Mode;
  readonly variant?: Variant;
  /** Most inputs per episode (each episode takes a random length up to this). */
  readonly episodeInputs?: number;
  /** Start at this episode number (reproduce one episode: firstEpisode E, inputs 1). */
  readonly firstEpisode?: number;
  /** Check recovery after every n-th episode only (1 = all). */
  readonly recoverEvery?: number;
  readonly onEpisode?: (r: StateFuzzReport) => void;
}

export interface StateFuzzReport {
  seed: number;
  inputs: number;
  episodes: number;
  timerSteps: number;
  operatorSteps: number;
  recoveries: number;
  /** Recoveries that needed a new IKE SA (only after forged input, see Episode.forged). */
  freshRecoveries: number;
  /** Inputs by start state, mode and receiving engine's role in the genuine pair. */
  readonly byStart: Record<string, number>;
  readonly byMode: Record<string, number>;
  readonly byTarget: { initiator: number; responder: number; intruder: number };
  readonly byAction: Record<string, number>;
  /** Drops by reason, summed over the genuine engines of every episode. */
  readonly drops: Record<string, number>;
  readonly peak: Sizes;
  /** `error` events of the genuine engines by code (ERR_IKE_AUTH_FAILED: an AUTH that did not verify). */
  readonly errors: Record<string, number>;
  /** ike-up events of the genuine pair (all checked genuine). */
  genuineIkeUp: number;
}

export class StateFuzzFailure extends Error {
  readonly seed: number;
  readonly episode: number;
  readonly trace: readonly string[];
  constructor(seed: number, episode: number, step: number, what: string, trace: readonly string[]) {
    super(`${what}\n  seed ${seed}, episode ${episode}, step ${step}; reproduce: npx tsx scripts/fuzz-ike-state.ts --seed ${seed} --episode ${episode}\n  last steps:\n    ${trace.join('\n    ')}`);
    this.name = 'StateFuzzFailure';
    this.seed = seed; this.episode = episode; this.trace = trace;
  }
}

/** Per-episode seed: episodes are independent, so one can be rerun alone. */
export function episodeSeed(seed: number, episode: number): number {
  return (Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(episode + 1, 0x85ebca6b)) >>> 0 || 1;
}

const ACTIONS = {
  deliver: 30, reorder: 8, drop: 4, duplicate: 4, replay: 10, ahead: 8, mutate: 28, foreign: 8, timer: 4, operator: 2,
} as const;
type Action = keyof typeof ACTIONS;
const OPERATIONS = ['rekey child', 'rekey child', 'rekey ike', 'rekey ike', 'reauth', 'initiate', 'terminate'] as const;
/** Mostly short steps (retransmissions); long ones (retransmit limit, half-open timeout, rekey time) rarely, or every SA would be dead most of the time. */
const TIMER_STEPS_MS = [50, 500, 500, 2_000, 2_000, 5_000, 5_000, 15_000, 30_000, 200_000, HOUR] as const;

interface Corpora { readonly reference: readonly Packet[]; readonly referenceInit: readonly Packet[]; readonly foreign: readonly Packet[] }

class Episode {
  readonly trace: string[] = [];
  readonly seen = { alice: 0, bob: 0 };
  /** IKE SAs ("SPIi_i SPIr_r") each genuine engine reported up with the genuine peer. */
  readonly genuineSas = { alice: new Set<string>(), bob: new Set<string>() };
  step = 0;
  inputs = 0;
  /**
   * A protected message of the reference lifecycle was fed: the identical engines' next message,
   * one the live engine has not sent yet. Only seeded randomness makes it verify (real nonces never
   * repeat), so the peers may rightly disagree afterwards; recovery may then need a new IKE SA.
   */
  forged = false;

  readonly w: World;
  readonly r: Rng;
  readonly c: Corpora;
  /** The engine most mutated datagrams go to. */
  readonly target: 'alice' | 'bob';
  readonly report: StateFuzzReport;
  readonly fail: (step: number, what: string, trace: readonly string[]) => never;

  constructor(o: Pick<Episode, 'w' | 'r' | 'c' | 'target' | 'report' | 'fail'>) {
    this.w = o.w; this.r = o.r; this.c = o.c; this.target = o.target; this.report = o.report; this.fail = o.fail;
  }

  note(s: string): void { this.trace.push(`${this.step}: ${s}`); if (this.trace.length > 16) this.trace.shift(); }

  /** Feed one datagram to `e`, counted as an input. */
  async feed(e: IkeEngine, d: Uint8Array, from: Packet['from'], to: Packet['to'], what: string): Promise<void> {
    const role = e === this.w.alice.engine ? 'initiator' : e === this.w.bob.engine ? 'responder' : 'intruder';
    this.note(`${what} → ${role} (${d.length} B)`);
    this.inputs++;
    this.report.byTarget[role]++;
    await this.w.deliver(e, d, from, to);
  }

  genuineEngineAt(address: string): IkeEngine { return address === ALICE ? this.w.alice.engine : this.w.bob.engine; }

  async act(a: Action): Promise<void> {
    const { w, r } = this;
    switch (a) {
      case 'deliver': case 'reorder': case 'duplicate': case 'drop': {
        if (w.inflight.length === 0) return this.act('timer');
        const i = a === 'deliver' ? 0 : r.int(w.inflight.length);
        const fl = w.inflight[i]!;
        if (a !== 'duplicate') w.inflight.splice(i, 1);
        if (a === 'drop') { this.note(`drop in-flight exchange ${fl.p.exchange} id ${fl.p.messageId}`); return; }
        const e = w.route(fl);
        if (e) await this.feed(e, fl.p.datagram, fl.p.from, fl.p.to, `${a} ${fl.net} exchange ${fl.p.exchange}${fl.p.response ? ' response' : ''} id ${fl.p.messageId}`);
        return;
      }
      case 'replay': case 'ahead': case 'foreign': {
        const pool = a === 'replay' ? w.history : a === 'ahead' ? this.c.reference : this.c.foreign;
        if (pool.length === 0) return this.act('mutate');
        const p = r.pick(pool);
        if (a === 'ahead' && p.exchange !== ExchangeType.IKE_SA_INIT) this.forged = true;
        return this.feed(this.genuineEngineAt(p.to.address), p.datagram, p.from, p.to, `${a} exchange ${p.exchange}${p.response ? ' response' : ''} id ${p.messageId}`);
      }
      case 'mutate': {
        // Mostly what the live SAs sent (their SPIs and keys), so mutations get as far as integrity
        // checks; of the reference lifecycle only IKE_SA_INIT (its protected messages are 'ahead').
        const pool = (): readonly Packet[] => {
          const k = r.weighted({ history: 4, inflight: 2, reference: 2, foreign: 2 });
          const x = k === 'history' ? w.history.slice(r.chance(0.7) ? -16 : 0) : k === 'inflight' ? w.inflight.map((f) => f.p) : k === 'reference' ? this.c.referenceInit : this.c.foreign;
          return x.length > 0 ? x : this.c.referenceInit;
        };
        const src = r.pick(pool()); const donor = r.pick(pool());
        const m = mutate(r, src.datagram, donor.datagram);
        const toBob = r.chance(0.7) ? this.target === 'bob' : this.target !== 'bob';
        const to = { address: toBob ? BOB : ALICE, port: 500 };
        // Mostly from the peer's own address; sometimes its NAT-T port or a stranger.
        const from = { address: r.chance(0.9) ? (toBob ? ALICE : BOB) : '198.51.100.7', port: r.chance(0.9) ? 500 : 4500 };
        return this.feed(toBob ? w.bob.engine : w.alice.engine, m.bytes, from, to, `${m.kind} of exchange ${src.exchange}${src.response ? ' response' : ''} id ${src.messageId}`);
      }
      case 'timer': {
        const ms = r.pick(TIMER_STEPS_MS);
        this.note(`time +${ms} ms`);
        this.report.timerSteps++;
        return w.advance(ms, false);
      }
      case 'operator': {
        this.report.operatorSteps++;
        const op = r.int(OPERATIONS.length);
        const side = op % 2 === 0 ? w.alice : w.bob; const peer = side === w.alice ? 'to-bob' : 'to-alice';
        this.note(`operator ${OPERATIONS[op]!} at ${op >= 4 ? 'alice' : side.name}`);
        try {
          if (op <= 1) side.engine.rekey(peer, { child: true });
          else if (op <= 3) side.engine.rekey(peer, { ike: true });
          else if (op === 4) w.alice.engine.rekey('to-bob', { reauth: true });
          else if (op === 5) w.alice.engine.initiate('to-bob');
          else if (r.chance(0.2)) await w.alice.engine.terminate('to-bob');
        } catch (err) {
          // rekey() refuses when nothing is up or a rekey runs (documented KipsecErrors): not a finding.
          if (!(err instanceof Error && 'code' in err && String(err.code).startsWith('ERR_IKE'))) throw err;
        }
        await w.idle(); w.collect();
      }
    }
  }

  /** The invariants, after every step. */
  check(): void {
    const { w } = this;
    const fail = (what: string): never => this.fail(this.step, what, this.trace);
    if (w.escaped.length > 0) fail(`an exception escaped: ${w.escaped[0]!}`);
    for (const e of w.engines()) {
      const s = e.status();
      if ((s.drops['internal-error'] ?? 0) > 0) fail(`an engine task failed (drops: ${JSON.stringify(s.drops)})`);
    }
    for (const side of [w.alice, w.bob]) {
      const z = side.engine.sizes();
      const sizes: Sizes = { ...z, timers: w.g.clock.pending, kernelSas: side.kernel.installed.size, dropReasons: Object.keys(side.engine.status().drops).length };
      for (const k of Object.keys(BOUNDS) as (keyof Sizes)[]) {
        if (sizes[k] > this.report.peak[k]) this.report.peak[k] = sizes[k];
        if (sizes[k] > BOUNDS[k]) fail(`${side.name}: ${k} ${sizes[k]} > bound ${BOUNDS[k]} (${JSON.stringify(sizes)})`);
      }
      this.checkEvents(side.name === 'alice' ? 'alice' : 'bob', fail);
    }
  }

  checkEvents(name: 'alice' | 'bob', fail: (what: string) => never): void {
    const side = this.w[name]; const me = name === 'alice' ? ALICE : BOB;
    const mine = this.genuineSas[name];
    for (; this.seen[name] < side.events.length; this.seen[name]++) {
      const ev: IkeEvent = side.events[this.seen[name]]!;
      if (ev.type === 'ike-up') {
        if (!this.w.genuineInit(ev.ikeSpis, me)) fail(`${name} reported IKE SA ${ev.ikeSpis} up, but it was not negotiated with the genuine peer`);
        mine.add(ev.ikeSpis);
        this.report.genuineIkeUp++;
      } else if (ev.type === 'ike-rekeyed') {
        // The old SA may itself be a rekey successor whose own ike-rekeyed is still to come (a
        // rekey responder reports it at the older SA's Delete): then it never was in an IKE_SA_INIT.
        if (!mine.has(ev.oldIkeSpis) && this.w.fromInit(ev.oldIkeSpis)) fail(`${name} reported ${ev.oldIkeSpis} rekeyed to ${ev.ikeSpis}, but the old SA was never genuinely up`);
        mine.add(ev.ikeSpis);
      } else if (ev.type === 'error') {
        this.report.errors[ev.error.code] = (this.report.errors[ev.error.code] ?? 0) + 1;
      } else if ((ev.type === 'child-up' || ev.type === 'child-rekeyed') && mine.size === 0) {
        fail(`${name} reported ${ev.type} for ${ev.child} with no genuine IKE SA ever up`);
      }
    }
    // Also without an event: an established IKE SA negotiated by IKE_SA_INIT must be the genuine
    // pair's. (A rekey responder's new SA is up before its ike-rekeyed, which waits for the old
    // SA's Delete; its SPIs were never in an IKE_SA_INIT and it needs the old SA's keys.)
    const ike = side.engine.status().peers[0]?.ike;
    if ((ike?.state === 'established' || ike?.state === 'rekeying') && !mine.has(ike.ikeSpis) && this.w.fromInit(ike.ikeSpis) && !this.w.genuineInit(ike.ikeSpis, me))
      fail(`${name}'s status shows IKE SA ${ike.ikeSpis} ${ike.state}, negotiated with someone other than the genuine peer`);
  }
}

export function emptyReport(seed: number): StateFuzzReport {
  return {
    seed, inputs: 0, episodes: 0, timerSteps: 0, operatorSteps: 0, recoveries: 0, freshRecoveries: 0,
    byStart: {}, byMode: {}, byTarget: { initiator: 0, responder: 0, intruder: 0 }, byAction: {}, drops: {}, errors: {},
    peak: { ikeSas: 0, halfOpen: 0, childSas: 0, reassemblyBytes: 0, timers: 0, kernelSas: 0, dropReasons: 0 }, genuineIkeUp: 0,
  };
}

/** One whole episode (its length depends only on its seed, so `firstEpisode` replays it exactly). */
async function runEpisode(o: StateFuzzOptions, n: number, report: StateFuzzReport): Promise<number> {
  const r = new Rng(episodeSeed(o.seed, n));
  const variant = o.variant ?? r.weighted({ psk: 5, fragmented: 2, cert: 1, cookies: 2 });
  const seeds = r.pick(GENUINE_SEEDS);
  const start = o.start ?? r.pick(START_STATES);
  const mode = o.mode ?? r.weighted({ genuine: 6, 'intruder-initiator': 2, 'intruder-responder': 2 });
  const target = r.chance(0.5) ? 'alice' : 'bob';
  const reference = await corpus(variant, seeds, false);
  const c: Corpora = { reference, referenceInit: reference.filter((p) => p.exchange === ExchangeType.IKE_SA_INIT), foreign: await corpus(r.pick(VARIANTS), seeds, true) };
  const w = new World(variant, seeds, mode);
  for (const p of c.reference) w.genuine(p);
  const fail = (step: number, what: string, trace: readonly string[]): never => {
    throw new StateFuzzFailure(o.seed, n, step, `${what} [${variant}, start ${start}, ${mode}, target ${target}]`, trace);
  };
  const ep = new Episode({ w, r, c, target, report, fail });
  await w.setup(start, r.chance(0.5) ? 'alice' : 'bob');
  w.mode = mode;
  if (mode === 'intruder-initiator') { w.f!.alice.engine.initiate('to-bob'); await w.idle(); w.collect(); }
  ep.check();
  const length = (1 + r.int(r.chance(0.05) ? 10 * (o.episodeInputs ?? 400) : (o.episodeInputs ?? 400)));
  while (ep.inputs < length) {
    ep.step++;
    const a = r.weighted(ACTIONS);
    report.byAction[a] = (report.byAction[a] ?? 0) + 1;
    await ep.act(a);
    ep.check();
    if (ep.step > 20 * length) break; // nothing left to feed (every pool empty): end the episode
  }
  report.byStart[start] = (report.byStart[start] ?? 0) + ep.inputs;
  report.byMode[mode] = (report.byMode[mode] ?? 0) + ep.inputs;
  if (n % (o.recoverEvery ?? 1) === 0) {
    ep.note('recovery: good network, time, alice initiates');
    const broken = await w.recover(ep.forged);
    ep.check();
    if (broken) fail(ep.step, `the genuine pair does not work after the hostile sequence: ${broken}`, ep.trace);
    report.recoveries++;
    if (w.recoveredFresh) report.freshRecoveries++;
  }
  for (const side of [w.alice, w.bob]) for (const [k, v] of Object.entries(side.engine.status().drops)) report.drops[k] = (report.drops[k] ?? 0) + v;
  await w.close();
  return ep.inputs;
}

/** Run episodes until `inputs` datagrams were fed; throws StateFuzzFailure on the first broken invariant. */
export async function runStateFuzz(o: StateFuzzOptions): Promise<StateFuzzReport> {
  const report = emptyReport(o.seed);
  const rejections: unknown[] = [];
  const onRejection = (e: unknown): void => { rejections.push(e); };
  process.on('unhandledRejection', onRejection);
  try {
    for (let n = o.firstEpisode ?? 0; report.inputs < o.inputs; n++) {
      report.inputs += await runEpisode(o, n, report);
      report.episodes++;
      if (rejections.length > 0) throw new StateFuzzFailure(o.seed, n, 0, `unhandled rejection: ${String(rejections[0])}`, []);
      o.onEpisode?.(report);
    }
  } finally { process.off('unhandledRejection', onRejection); }
  return report;
}

export { MODES, START_STATES, VARIANTS, type Mode, type StartState, type Variant };
