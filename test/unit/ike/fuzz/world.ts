// The world one state-machine fuzz episode runs in (state-fuzz.ts): the genuine pair (harness.ts
// Pair: alice initiates, bob responds, one PSK or one PKI), optionally a live intruder from a
// second Pair with the same identities but a wrong PSK (it holds neither side's keys), and a
// hostile network: nothing is delivered unless the generator says so, in order or not.
//
// What is genuine is decided from the wire, not from engine internals: an IKE SA is the genuine
// pair's when its SPIi came from an IKE_SA_INIT request one genuine engine sent and its SPIr from
// the other genuine engine's IKE_SA_INIT response to that SPIi (RFC 7296 §2.6), or when it
// replaced such an SA by a rekey (§1.3.2), which only someone holding the old SA's keys can do.
import { ExchangeType } from '../../../../src/ike/constants.js';
import type { IkeEngine } from '../../../../src/ike/engine.js';
import type { EspAlgorithms } from '../../../../src/ike/ports.js';
import { ALICE, BOB, HOUR, Pair, type Packet, type PairOptions, type Side } from '../pair/harness.js';

export const VARIANTS = ['psk', 'fragmented', 'cert', 'cookies'] as const;
export type Variant = (typeof VARIANTS)[number];
/** Where the genuine pair is when the hostile sequence starts. */
export const START_STATES = ['idle', 'half-open', 'auth-sent', 'established', 'child-rekey', 'ike-rekey'] as const;
export type StartState = (typeof START_STATES)[number];
/** genuine: no live intruder; intruder-initiator: a wrong-PSK "alice" initiates to bob; intruder-responder: alice's requests to bob reach a wrong-PSK "bob". */
export const MODES = ['genuine', 'intruder-initiator', 'intruder-responder'] as const;
export type Mode = (typeof MODES)[number];

const WRONG_PSK = 'an intruder who guessed the PSK wrong';
/** Seed pairs of the genuine engines; few, so the reference corpora below are computed once each. */
export const GENUINE_SEEDS: readonly (readonly [number, number])[] = [[11, 22], [101, 202], [3_001, 4_002]];

function pairOptions(variant: Variant, seeds: readonly [number, number], intruder: boolean): PairOptions {
  const base: PairOptions = { seeds: [seeds[0], seeds[1]] };
  const psk = intruder ? { alicePsk: WRONG_PSK, bobPsk: WRONG_PSK } : {};
  switch (variant) {
    case 'psk': return { ...base, ...psk };
    // A 200-byte MTU splits IKE_AUTH and CREATE_CHILD_SA into SKF fragments (RFC 7383): reassembly in play.
    case 'fragmented': return { ...base, ...psk, alice: { fragmentMtu: 200 }, bob: { fragmentMtu: 200 } };
    // The intruder never holds the genuine certificates' keys: it tries a PSK against them.
    case 'cert': return intruder ? { ...base, ...psk } : { ...base, auth: 'cert' };
    // COOKIEs from the first half-open SA on (RFC 7296 §2.6).
    case 'cookies': return { ...base, ...psk, aliceOptions: { cookieThreshold: 1 }, bobOptions: { cookieThreshold: 1 } };
  }
}

/** A full lifecycle (IKE_SA_INIT, IKE_AUTH, Child rekey, IKE rekey, DPD, Delete), every datagram sent. */
async function lifecycle(o: PairOptions): Promise<Packet[]> {
  const p = new Pair(o);
  await p.connect();
  p.alice.engine.rekey('to-bob', { child: true });
  await p.net.pump();
  p.bob.engine.rekey('to-alice', { ike: true });
  await p.net.pump();
  await p.advance(60_000);
  await p.alice.engine.terminate('to-bob');
  await p.net.pump();
  await p.alice.engine.close(); await p.bob.engine.close();
  return [...p.net.log];
}

const corpora = new Map<string, Promise<Packet[]>>();
/** Datagrams of a whole genuine (or intruder-pair) lifecycle with these seeds; cached per process. */
export function corpus(variant: Variant, seeds: readonly [number, number], intruder: boolean): Promise<Packet[]> {
  const key = `${variant}|${seeds.join(',')}|${intruder}`;
  let c = corpora.get(key);
  // The intruder pair gets other seeds: with the same nonces and DH values its IKE SA keys would be
  // the genuine pair's (SKEYSEED does not depend on the PSK), and its messages would verify.
  if (!c) { c = lifecycle(pairOptions(variant, intruder ? intruderSeeds(seeds) : seeds, intruder)); corpora.set(key, c); }
  return c;
}

function intruderSeeds(s: readonly [number, number]): [number, number] { return [s[0] + 7, s[1] + 7]; }

export interface Flight { readonly p: Packet; readonly net: 'g' | 'f' }

function spis(d: Uint8Array): { readonly i: bigint; readonly r: bigint } {
  if (d.length < 16) return { i: 0n, r: 0n };
  const v = new DataView(d.buffer, d.byteOffset, d.byteLength);
  return { i: v.getBigUint64(0), r: v.getBigUint64(8) };
}

function parseSpis(ikeSpis: string): { readonly i: bigint; readonly r: bigint } | null {
  const m = /^([0-9a-f]{16})_i ([0-9a-f]{16})_r$/.exec(ikeSpis);
  return m ? { i: BigInt(`0x${m[1]!}`), r: BigInt(`0x${m[2]!}`) } : null;
}

function sameKeys(a: EspAlgorithms, b: EspAlgorithms): boolean {
  const eq = (x: { expose(): Uint8Array }, y: { expose(): Uint8Array }): boolean => Buffer.compare(Buffer.from(x.expose()), Buffer.from(y.expose())) === 0;
  if (a.kind === 'aead' && b.kind === 'aead') return eq(a.key, b.key);
  if (a.kind === 'cipher+auth' && b.kind === 'cipher+auth') return eq(a.encryption.key, b.encryption.key) && eq(a.integrity.key, b.integrity.key);
  return false;
}

/** Most datagrams the hostile network holds; the oldest are lost beyond it (it is the network, not an engine). */
const INFLIGHT_MAX = 64;
const HISTORY_MAX = 128;

export class World {
  readonly g: Pair;
  /** The intruder's pair (its alice or bob is live in the intruder modes); null in 'genuine'. */
  readonly f: Pair | null;
  mode: Mode = 'genuine';
  inflight: Flight[] = [];
  /** Recent datagrams the genuine engines sent (replay sources). */
  readonly history: Packet[] = [];
  /** SPIi of IKE_SA_INIT requests by genuine sender address; "SPIi|SPIr" of responses likewise. */
  readonly initRequests = new Map<bigint, string>();
  readonly initResponses = new Map<string, string>();
  /** SPIi of the intruder's own IKE_SA_INIT requests (to route bob's answers back to it). */
  readonly intruderInits = new Set<bigint>();
  /** recover() had to start a new IKE SA (after forged input). */
  recoveredFresh = false;
  /** Exceptions that escaped receive or a timer callback since the last check. */
  readonly escaped: string[] = [];

  readonly variant: Variant;

  constructor(variant: Variant, seeds: readonly [number, number], mode: Mode) {
    this.variant = variant;
    this.g = new Pair(pairOptions(variant, seeds, false));
    this.f = mode === 'genuine' ? null : new Pair(pairOptions(variant, intruderSeeds(seeds), true));
    this.g.net.onSend = (p) => {
      this.history.push(p);
      if (this.history.length > HISTORY_MAX) this.history.shift();
      this.genuine(p);
    };
    if (this.f) this.f.net.onSend = (p) => { if (p.exchange === ExchangeType.IKE_SA_INIT && !p.response) this.intruderInits.add(spis(p.datagram).i); };
  }

  /**
   * `p` was sent by a genuine engine: by this episode's, or by the identical engines (same seeds,
   * same keys) of the reference lifecycle, whose IKE_SA_INIT a replay can make bob repeat exactly.
   */
  genuine(p: Packet): void {
    if (p.exchange !== ExchangeType.IKE_SA_INIT) return;
    const s = spis(p.datagram);
    if (!p.response) this.initRequests.set(s.i, p.from.address);
    else if (s.r !== 0n) this.initResponses.set(`${s.i}|${s.r}`, p.from.address);
  }

  get alice(): Side { return this.g.alice; }
  get bob(): Side { return this.g.bob; }
  /** Every engine in play, genuine first. */
  engines(): IkeEngine[] { return [this.g.alice.engine, this.g.bob.engine, ...(this.f ? [this.f.alice.engine, this.f.bob.engine] : [])]; }

  /**
   * Was the IKE SA "SPIi_i SPIr_r" (status / event text) negotiated between the two genuine
   * engines, one of them `me`? See the module comment.
   */
  genuineInit(ikeSpis: string, me: string): boolean {
    const s = parseSpis(ikeSpis);
    if (!s) return false;
    const by = this.initRequests.get(s.i); const answeredBy = this.initResponses.get(`${s.i}|${s.r}`);
    return by !== undefined && answeredBy !== undefined && by !== answeredBy && (by === me || answeredBy === me);
  }

  /** Did a genuine engine send or answer the IKE_SA_INIT of this SA (rather than a rekey creating it)? */
  fromInit(ikeSpis: string): boolean {
    const s = parseSpis(ikeSpis);
    return s === null || this.initRequests.has(s.i) || this.initResponses.has(`${s.i}|${s.r}`);
  }

  /** Move what the engines sent into the hostile network's hands. */
  collect(): void {
    for (const p of this.g.net.queue) this.inflight.push({ p, net: 'g' });
    this.g.net.queue.length = 0; this.g.net.log.length = 0;
    if (this.f) {
      for (const p of this.f.net.queue) this.inflight.push({ p, net: 'f' });
      this.f.net.queue.length = 0; this.f.net.log.length = 0;
    }
    if (this.inflight.length > INFLIGHT_MAX) this.inflight.splice(0, this.inflight.length - INFLIGHT_MAX);
  }

  /** Which engine a datagram on the wire reaches in this episode's mode (null: nobody listens). */
  route(fl: Flight): IkeEngine | null {
    const { p } = fl;
    const genuine = (): IkeEngine | null => this.g.net.engines.get(p.to.address) ?? null;
    if (this.mode === 'genuine' || !this.f) return fl.net === 'g' ? genuine() : null;
    if (this.mode === 'intruder-initiator') {
      // The intruder sits at alice's address: bob's answers to its SPIi reach it, the rest reach alice.
      if (fl.net === 'f') return p.from.address === ALICE && p.to.address === BOB ? this.g.bob.engine : null;
      return p.to.address === ALICE && this.intruderInits.has(spis(p.datagram).i) ? this.f.alice.engine : genuine();
    }
    // intruder-responder: whatever alice sends to bob's address reaches the intruder.
    if (fl.net === 'f') return p.from.address === BOB && p.to.address === ALICE ? this.g.alice.engine : null;
    return p.to.address === BOB ? this.f.bob.engine : genuine();
  }

  async idle(): Promise<void> { for (const e of this.engines()) await e.idle(); }

  /** One datagram into one engine; an exception out of receive is recorded, never thrown on. */
  async deliver(e: IkeEngine, datagram: Uint8Array, from: Packet['from'], to: Packet['to']): Promise<void> {
    try { await e.receive(new Uint8Array(datagram), from, to); } catch (err) { this.escaped.push(`receive: ${err instanceof Error ? err.stack ?? err.message : String(err)}`); }
    await this.idle();
    this.collect();
  }

  /** Deliver everything in flight, in order, as a good network would (routing by mode). */
  async settle(max = 500): Promise<void> {
    for (let n = 0; n < max; n++) {
      const fl = this.inflight.shift();
      if (!fl) return;
      const e = this.route(fl);
      if (e) await this.deliver(e, fl.p.datagram, fl.p.from, fl.p.to);
    }
  }

  /** Let time pass timer by timer; with `deliver`, a good network delivers what each timer sends. */
  async advance(ms: number, deliver: boolean): Promise<void> {
    const target = this.g.clock.now() + ms;
    for (let guard = 0; guard < 10_000; guard++) {
      const due = this.g.clock.nextDue();
      if (due === null || due > target) break;
      this.#tick(() => this.g.clock.advance(Math.max(0, due - this.g.clock.now())));
      await this.idle(); this.collect();
      if (deliver) await this.settle();
    }
    this.#tick(() => this.g.clock.advance(Math.max(0, target - this.g.clock.now())));
    if (this.f) { const f = this.f; this.#tick(() => f.clock.advance(ms)); }
    await this.idle(); this.collect();
    if (deliver) await this.settle();
  }

  #tick(f: () => void): void {
    try { f(); } catch (err) { this.escaped.push(`timer: ${err instanceof Error ? err.stack ?? err.message : String(err)}`); }
  }

  /** Bring the genuine pair to `start` over a good network; what it would send next stays in flight. */
  async setup(start: StartState, who: 'alice' | 'bob'): Promise<void> {
    if (start === 'idle') return;
    this.alice.engine.initiate('to-bob');
    await this.idle(); this.collect();
    if (start === 'half-open' || start === 'auth-sent') {
      // COOKIE variant: bob's first answer is a COOKIE demand; settle the retry in too.
      for (let n = 0; n < (start === 'half-open' ? 1 : 2) + (this.variant === 'cookies' ? 2 : 0); n++) {
        const fl = this.inflight.shift();
        const e = fl ? this.route(fl) : null;
        if (fl && e) await this.deliver(e, fl.p.datagram, fl.p.from, fl.p.to);
      }
      return;
    }
    await this.settle();
    if (start === 'established') return;
    const side = this[who];
    side.engine.rekey(side === this.alice ? 'to-bob' : 'to-alice', start === 'ike-rekey' ? { ike: true } : { child: true });
    await this.idle(); this.collect();
  }

  /**
   * After the hostile sequence: a good network and time (half-open SAs expire, DPD finds dead SAs,
   * retransmissions run out), then alice initiates if nothing is up. Returns why the genuine pair
   * cannot carry traffic, or null when a Child SA is installed on both sides with the same keys.
   */
  async recover(fresh: boolean): Promise<string | null> {
    this.mode = 'genuine';
    await this.settle();
    for (let n = 0; n < 20; n++) await this.advance(30_000, true);
    this.alice.engine.initiate('to-bob');
    await this.idle(); this.collect(); await this.settle();
    await this.advance(60_000, true);
    if (fresh && this.unusable() !== null) {
      // After forged input (see Episode.forged) the peers may hold different Child SAs; a new IKE SA must still work.
      this.recoveredFresh = true;
      await this.alice.engine.terminate('to-bob');
      this.collect(); await this.settle();
      this.alice.engine.initiate('to-bob');
      await this.idle(); this.collect(); await this.settle();
      await this.advance(60_000, true);
    }
    const broken = this.unusable();
    if (broken) return broken;
    // And it still rekeys: a Child SA rekey completes over a good network.
    const before = this.alice.events.filter((e) => e.type === 'child-rekeyed').length;
    try { this.alice.engine.rekey('to-bob', { child: true }); } catch (err) {
      const status = this.alice.engine.status().peers[0]?.ike;
      return `alice refuses a Child SA rekey after recovery (${err instanceof Error ? err.message : String(err)}); her IKE SA ${status?.ikeSpis ?? 'none'} has children ${status?.children.map((c) => c.state).join(', ') ?? 'none'}; sizes ${JSON.stringify(this.alice.engine.sizes())}`;
    }
    await this.idle(); this.collect(); await this.settle();
    await this.advance(10_000, true);
    if (this.alice.events.filter((e) => e.type === 'child-rekeyed').length === before) return 'a Child SA rekey after recovery did not complete';
    return this.unusable();
  }

  unusable(): string | null {
    const ike = this.alice.engine.status().peers[0]?.ike;
    if (ike?.state !== 'established') return `alice's IKE SA is ${ike?.state ?? 'absent'}, bob's ${this.bob.engine.status().peers[0]?.ike?.state ?? 'absent'}`;
    for (const c of ike.children) {
      const a = this.alice.kernel.installed.get(c.ref.inboundSpi);
      const b = this.bob.kernel.installed.get(c.ref.outboundSpi);
      if (a && b && a.active && b.active && b.outbound.spi === a.inbound.spi && sameKeys(a.inbound.algorithms, b.outbound.algorithms) && sameKeys(a.outbound.algorithms, b.inbound.algorithms)) return null;
    }
    const hex = (n: number): string => n.toString(16);
    const bob = this.bob.engine.status().peers[0]?.ike;
    return `no Child SA of alice's IKE SA ${ike.ikeSpis} is installed on both sides with the same keys: alice's children ` +
      `${ike.children.map((c) => `${c.state} in ${hex(c.ref.inboundSpi)} out ${hex(c.ref.outboundSpi)}`).join(', ') || 'none'}; ` +
      `bob's IKE SA ${bob?.ikeSpis ?? 'none'} ${bob?.state ?? ''}, kernel ${[...this.bob.kernel.installed.values()].map((s) => `in ${hex(s.inbound.spi)} out ${hex(s.outbound.spi)}${s.active ? '' : ' (inactive)'}`).join(', ') || 'empty'}`;
  }

  async close(): Promise<void> { for (const e of this.engines()) await e.close(); }
}

export { ALICE, BOB, HOUR };
